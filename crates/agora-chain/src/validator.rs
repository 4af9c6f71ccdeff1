//! The node as a validator: the BFT engine (through `agora-consensus`, the
//! only crate that sees commonware) decides blocks; this node proposes from
//! its mempool, relays submitted transactions to the other validators, and
//! stores each finalized block with its certificate and randomness.

use std::future::Future;
use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use agora_consensus::{
    gossip_channel, run_validator, BlockLimits, Finalized, FinalizedSink, GenesisPeer, NodeConfig,
    Seat, Timeouts, TxSource,
};
use agora_ledger::{Genesis, State};
use agora_types::{Block, SignedTransaction};

use crate::{ChainError, Finality, Node};

/// Where this validator sits in a devnet/localnet validator set.
#[derive(Clone, Debug)]
pub struct ValidatorSetup {
    /// Which validator this is: the dealt single devnet validator, one of a
    /// DKG genesis set (with its own key), or a joiner.
    pub seat: Seat,
    /// Every genesis validator's identity key and p2p listen address, in order.
    pub peers: Vec<GenesisPeer>,
    /// The chain's epoch 0 (decoded `genesis-epoch.hex`), for a joiner.
    pub genesis_epoch: Option<Vec<u8>>,
    /// Directory of the engine's own storage (consensus journal, block archives).
    pub consensus_dir: PathBuf,
    /// Consensus timing.
    pub timeouts: Timeouts,
}

/// Gossip batches waiting for the admission thread; beyond it batches are
/// dropped (gossip is best effort: a dropped transaction still arrives in a block).
const ADMISSION_QUEUE_BATCHES: usize = 256;

/// Proposals come from the node's mempool; peers' transactions go into it.
#[derive(Clone)]
struct MempoolSource {
    node: Node,
    /// Gossip batches for the admission thread, so their signature checks
    /// never run on (and stall) the consensus runtime's threads.
    admission: SyncSender<Vec<SignedTransaction>>,
}

impl MempoolSource {
    /// A source over `node` with its admission thread (which ends once every
    /// clone of the source is dropped).
    fn start(node: Node) -> Result<Self, ChainError> {
        let (admission, batches) = sync_channel::<Vec<SignedTransaction>>(ADMISSION_QUEUE_BATCHES);
        let admitting = node.clone();
        std::thread::Builder::new()
            .name("gossip-admission".into())
            .spawn(move || {
                for batch in batches {
                    for outcome in admitting.admit_batch(batch) {
                        if let Err(e) = outcome {
                            tracing::debug!(error = %e, "gossiped transaction not admitted");
                        }
                    }
                }
            })
            .map_err(|e| {
                ChainError::Consensus(format!("cannot start the gossip admission thread: {e}"))
            })?;
        Ok(MempoolSource { node, admission })
    }
}

impl TxSource for MempoolSource {
    fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        self.node.pending_txs(max)
    }

    fn on_finalized(&self, _block: &Block, _state: &State) {
        // `Node::commit_finalized` already re-checks the mempool against the new state.
    }

    fn admit(&self, tx: SignedTransaction) {
        self.admit_batch(vec![tx]);
    }

    fn admit_batch(&self, txs: Vec<SignedTransaction>) {
        if let Err(TrySendError::Full(batch)) = self.admission.try_send(txs) {
            tracing::debug!(
                txs = batch.len(),
                "gossip admission queue full; batch dropped"
            );
        }
    }

    fn signature_verified(&self, tx: &SignedTransaction) -> bool {
        // Verified here now if it was not already (the node remembers valid
        // signatures by an id that covers the signature), so a transaction
        // whose block came before its gossip is still verified only once.
        self.node.signature_ok(tx)
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

/// Run `node` as validator `setup.seat` on its own thread (the engine brings
/// its own runtime) until `shutdown` resolves or the engine stops.
pub fn spawn_validator(
    node: Node,
    genesis: Genesis,
    setup: ValidatorSetup,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<JoinHandle<Result<(), ChainError>>, ChainError> {
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
    node.set_relay(Arc::new(move |txs: &[SignedTransaction]| {
        // The receiver lives as long as the engine; once it stops, nothing is relayed.
        for tx in txs {
            let _ = relay.send(tx.clone());
        }
    }));
    let config = NodeConfig {
        seat: setup.seat.clone(),
        peers: setup.peers,
        genesis_epoch: setup.genesis_epoch,
        storage_dir: setup.consensus_dir,
        genesis,
        // Every validator must enforce the same limits: the defaults.
        limits: BlockLimits::default(),
        timeouts: setup.timeouts,
        worker_threads: 2,
    };
    let txs = MempoolSource::start(node.clone())?;
    let sink = StoreSink(node);
    std::thread::Builder::new()
        .name("validator".into())
        .spawn(move || {
            run_validator(config, txs, sink, gossip, shutdown)
                .map_err(|e| ChainError::Consensus(e.to_string()))
        })
        .map_err(|e| ChainError::Consensus(format!("cannot start the validator thread: {e}")))
}
