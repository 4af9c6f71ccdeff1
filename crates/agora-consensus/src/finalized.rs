//! Delivery of finalized blocks to the chain node: in height order, each height
//! exactly once from the consumer's point of view, with the post-state and the
//! per-block randomness from the finalization certificate's VRF seed.

use std::sync::Arc;

use agora_ledger::{apply_block_with, State};
use agora_types::{AccountId, Block, Hash32};
use commonware_actor::Feedback;
use commonware_codec::Encode;
use commonware_consensus::{
    marshal::{core::Mailbox, standard::Standard, Update},
    simplex::scheme::bls12381_threshold::vrf::Seedable,
    types::Height,
    Heightable, Reporter,
};
use commonware_cryptography::Digested;
use commonware_glue::dkg::types;
use commonware_utils::{acknowledgement::Exact, channel::mpsc, Acknowledgement};
use tracing::{debug, error, info};

use crate::block::{to_hash, ConsensusBlock};
use crate::keys::Scheme;
use crate::ledger::LedgerView;
use crate::mempool::TxSource;
use crate::seeds::{randomness_from_seed, SeedBook};

/// A finalized agora block with what a chain node needs to persist it.
#[derive(Clone, Debug)]
pub struct Finalized {
    /// Block height (≥ 1).
    pub height: u64,
    /// The block.
    pub block: Block,
    /// The state after the block.
    pub state: Arc<State>,
    /// Root of [`Self::state`] (equals `block.header.state_root`).
    pub state_root: Hash32,
    /// 32 bytes derived from the BLS threshold VRF seed of the block's own
    /// finalization certificate; `None` when this node only knows the block as
    /// finalized through a descendant's certificate.
    ///
    /// The seed is unique per round, so every node that has it agrees on it. The
    /// round's leader can learn it before proposing, so it must not decide
    /// anything about the block's own contents (commit-then-reveal: use it for
    /// later blocks).
    pub randomness: Option<[u8; 32]>,
    /// The encoded finalization certificate, when known (see [`Self::randomness`]).
    pub certificate: Option<Vec<u8>>,
    /// Set on an epoch's final block: who signs from the next block on.
    pub epoch_change: Option<EpochChange>,
}

/// A committee handover, carried by the final block of an epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochChange {
    /// The epoch that starts after this block.
    pub epoch: u64,
    /// Whether the key resharing succeeded (if not, the previous shares carry over).
    pub reshared: bool,
    /// The validators holding key shares in that epoch, as agora accounts.
    pub signers: Vec<AccountId>,
}

impl EpochChange {
    /// The handover `block` announces, if it is an epoch's final block.
    pub fn of(block: &ConsensusBlock) -> Option<Self> {
        let ConsensusBlock::Agora { payload, .. } = block else {
            return None;
        };
        let types::Payload::EpochInfo(info) = payload.as_deref()? else {
            return None;
        };
        Some(EpochChange {
            epoch: info.epoch.get(),
            reshared: info.outcome == types::EpochOutcome::Success,
            signers: info
                .output
                .players()
                .iter()
                .map(crate::application::proposer_account)
                .collect(),
        })
    }
}

/// The consumer of finalized blocks (the chain node's store).
pub trait FinalizedSink: Send + 'static {
    /// The state the consumer has durably applied (`None`: nothing beyond genesis).
    /// Called once at start; blocks at or below its height are not delivered again.
    fn last_applied(&self) -> Option<State>;
    /// Persist one finalized block. Returns once durable: marshal is only told the
    /// block is processed afterwards. An error stops the validator (nothing is skipped).
    fn deliver(&mut self, finalized: Finalized) -> Result<(), String>;
}

/// Marshal reporter forwarding finalized blocks to the delivery task.
#[derive(Clone)]
pub(crate) struct BlockForwarder {
    pub(crate) tx: mpsc::UnboundedSender<(Digested<ConsensusBlock>, Exact)>,
}

impl Reporter for BlockForwarder {
    type Activity = Update<ConsensusBlock>;

    fn report(&mut self, activity: Update<ConsensusBlock>) -> Feedback {
        match activity {
            Update::Tip(..) => Feedback::Ok,
            Update::Block(block, ack) => match self.tx.send((block, ack)) {
                Ok(()) => Feedback::Ok,
                Err(_) => Feedback::Closed,
            },
        }
    }
}

/// Marshal mailbox type of an agora node.
pub(crate) type MarshalMailbox = Mailbox<Scheme, Standard<ConsensusBlock>>;

/// The delivery loop: applies finalized blocks in order and hands them to `sink`.
pub(crate) struct Delivery<K: FinalizedSink, T: TxSource> {
    pub(crate) sink: K,
    pub(crate) ledger: LedgerView,
    pub(crate) txs: T,
    pub(crate) marshal: MarshalMailbox,
    /// Where finalization seeds go, for proposals on finalized parents.
    pub(crate) seeds: SeedBook,
}

impl<K: FinalizedSink, T: TxSource> Delivery<K, T> {
    /// Run until marshal closes the channel or a finalized block fails to apply.
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<(Digested<ConsensusBlock>, Exact)>,
    ) {
        let mut state = match self.sink.last_applied() {
            Some(s) => Arc::new(s),
            None => self.ledger.genesis(),
        };
        self.ledger.finalize(state.clone());
        // After a restart the next proposal builds on the last finalized block
        // (or a notarized one the engine reports again): give leaders its seed.
        if state.height > 0 {
            if let Some(f) = self
                .marshal
                .get_finalization(Height::new(state.height))
                .await
            {
                self.seeds.insert(f.seed());
            }
        }
        while let Some((block, ack)) = rx.recv().await {
            let height = block.height().get();
            if height <= state.height {
                // Re-delivery after a restart: already applied by the consumer.
                ack.acknowledge();
                continue;
            }
            // The consumer is behind marshal's processed floor (it lost state): replay.
            while state.height + 1 < height {
                let next = Height::new(state.height + 1);
                let Some(missing) = self.marshal.get_block(next).await else {
                    error!(height = next.get(), "finalized block missing from marshal");
                    return;
                };
                match self.apply(&state, &missing).await {
                    Some(s) => state = s,
                    None => return,
                }
            }
            match self.apply(&state, &block).await {
                Some(s) => state = s,
                None => return,
            }
            ack.acknowledge();
        }
    }

    async fn apply(
        &mut self,
        parent: &Arc<State>,
        block: &Digested<ConsensusBlock>,
    ) -> Option<Arc<State>> {
        let Some(agora) = block.inner().agora_block() else {
            error!("genesis anchor delivered as a finalized block");
            return None;
        };
        let id = to_hash(&commonware_cryptography::Digestible::digest(block.inner()));
        let state = match self.ledger.state_after(&id) {
            Some(s) if s.height == agora.header.height => s,
            _ => match apply_block_with(parent, agora, |tx| self.txs.signature_verified(tx)) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    // Only possible if more than f validators are faulty, or local state is corrupt.
                    error!(height = agora.header.height, error = %e, "finalized block does not apply");
                    return None;
                }
            },
        };
        let height = Height::new(agora.header.height);
        let finalization = self.marshal.get_finalization(height).await;
        let randomness = finalization.as_ref().map(|f| {
            let seed = f.seed();
            let randomness = randomness_from_seed(&seed);
            self.seeds.insert(seed);
            randomness
        });
        let certificate = finalization.as_ref().map(|f| f.encode().to_vec());
        self.ledger.finalize(state.clone());
        self.txs.on_finalized(agora, &state);
        if agora.txs.is_empty() {
            debug!(height = height.get(), "finalized");
        } else {
            info!(height = height.get(), txs = agora.txs.len(), "finalized");
        }
        let epoch_change = EpochChange::of(block.inner());
        if let Some(change) = &epoch_change {
            info!(
                height = height.get(),
                next_epoch = change.epoch,
                reshared = change.reshared,
                signers = change.signers.len(),
                "epoch ends"
            );
        }
        let delivered = self.sink.deliver(Finalized {
            height: height.get(),
            block: agora.clone(),
            state_root: agora.header.state_root,
            state: state.clone(),
            randomness,
            certificate,
            epoch_change,
        });
        if let Err(e) = delivered {
            error!(height = height.get(), error = %e, "finalized block could not be stored; stopping");
            return None;
        }
        Some(state)
    }
}
