//! The node as a validator: the BFT engine (through `agora-consensus`, the
//! only crate that sees commonware) decides blocks; this node proposes from
//! its mempool, relays submitted transactions to the other validators, and
//! stores each finalized block with its certificate and randomness.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use agora_consensus::{
    gossip_channel, run_validator, BlockLimits, Finalized, FinalizedSink, NodeConfig, Timeouts,
    TxSource,
};
use agora_ledger::{Genesis, State};
use agora_types::{Block, SignedTransaction};

use crate::{ChainError, Finality, Node};

/// Where this validator sits in a devnet/localnet validator set.
#[derive(Clone, Debug)]
pub struct ValidatorSetup {
    /// Seed every validator's keys are dealt from (identical on all of them).
    pub devnet_seed: u64,
    /// This validator's index in `peers`.
    pub index: usize,
    /// p2p listen address of every validator, by index.
    pub peers: Vec<SocketAddr>,
    /// Directory of the engine's own storage (consensus journal, block archives).
    pub consensus_dir: PathBuf,
    /// Consensus timing.
    pub timeouts: Timeouts,
}

/// Proposals come from the node's mempool; peers' transactions go into it.
#[derive(Clone)]
struct MempoolSource(Node);

impl TxSource for MempoolSource {
    fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        self.0.pending_txs(max)
    }

    fn on_finalized(&self, _block: &Block, _state: &State) {
        // `Node::commit_finalized` already re-checks the mempool against the new state.
    }

    fn admit(&self, tx: SignedTransaction) {
        if let Err(e) = self.0.admit(tx) {
            tracing::debug!(error = %e, "gossiped transaction not admitted");
        }
    }

    fn signature_verified(&self, tx: &SignedTransaction) -> bool {
        // The mempool admits only verified transactions, keyed by an id that covers the signature.
        self.0.in_mempool(&tx.id())
    }
}

/// Finalized blocks land in the node's store.
struct StoreSink(Node);

impl FinalizedSink for StoreSink {
    fn last_applied(&self) -> Option<State> {
        let state = self.0.state();
        (state.height > 0).then(|| (*state).clone())
    }

    fn deliver(&mut self, f: Finalized) -> Result<(), String> {
        let finality = Finality {
            randomness: f.randomness,
            certificate: f.certificate,
        };
        self.0
            .commit_finalized(&f.block, (*f.state).clone(), &finality)
            .map_err(|e| e.to_string())
    }
}

/// Run `node` as validator `setup.index` on its own thread (the engine brings
/// its own runtime) until `shutdown` resolves or the engine stops.
pub fn spawn_validator(
    node: Node,
    genesis: Genesis,
    setup: ValidatorSetup,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<Result<(), ChainError>>, ChainError> {
    if setup.index >= setup.peers.len() {
        return Err(ChainError::Consensus(format!(
            "validator index {} is outside the {} peers",
            setup.index,
            setup.peers.len()
        )));
    }
    let fresh_engine = !setup.consensus_dir.exists();
    if fresh_engine && node.state().height > 0 {
        return Err(ChainError::Consensus(format!(
            "the chain store is at height {} but {} has no consensus data: it was \
             produced without this validator set; use a fresh data directory",
            node.state().height,
            setup.consensus_dir.display()
        )));
    }
    std::fs::create_dir_all(&setup.consensus_dir)
        .map_err(|e| ChainError::Store(format!("{}: {e}", setup.consensus_dir.display())))?;
    let (relay, gossip) = gossip_channel();
    node.set_relay(Arc::new(move |tx: &SignedTransaction| {
        // The receiver lives as long as the engine; once it stops, nothing is relayed.
        let _ = relay.send(tx.clone());
    }));
    let config = NodeConfig {
        devnet_seed: setup.devnet_seed,
        index: setup.index,
        peers: setup.peers,
        storage_dir: setup.consensus_dir,
        genesis,
        // Every validator must enforce the same limits: the defaults.
        limits: BlockLimits::default(),
        timeouts: setup.timeouts,
        worker_threads: 2,
    };
    let txs = MempoolSource(node.clone());
    let sink = StoreSink(node);
    std::thread::Builder::new()
        .name(format!("validator-{}", config.index))
        .spawn(move || {
            run_validator(config, txs, sink, gossip, shutdown)
                .map_err(|e| ChainError::Consensus(e.to_string()))
        })
        .map_err(|e| ChainError::Consensus(format!("cannot start the validator thread: {e}")))
}
