//! The marshal [`Application`]: proposes agora blocks built by the ledger from
//! mempool transactions and verifies peers' blocks by re-executing them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agora_ledger::{apply_block_with, build_block_with, BlockCandidate, BlockError, State};
use agora_types::{codec, AccountId, Block, SignedTransaction};
use commonware_consensus::{
    marshal::ancestry::Ancestry, simplex::types::Context, Application, Heightable,
};
use commonware_cryptography::{bls12381::primitives::variant::MinSig, Digested, Digestible};
use commonware_runtime::Clock;
use futures::StreamExt;
use tracing::{debug, warn};

use crate::block::{consensus_commitment, to_hash, ConsensusBlock, Digest, RoundContext};
use crate::keys::{PrivateKey, PublicKey, Scheme};
use crate::ledger::LedgerView;
use crate::mempool::TxSource;
use crate::seeds::{check_parent_seed, seed_randomness, Seed, SeedBook, SeedError, SeedVerifier};

/// Limits a proposer respects and a verifier enforces.
#[derive(Clone, Copy, Debug)]
pub struct BlockLimits {
    /// Most transactions in one block.
    pub max_txs: usize,
    /// Largest encoded agora block in bytes.
    pub max_block_bytes: usize,
    /// How far a block's timestamp may be ahead of the local clock before the
    /// verifier abstains (waits) instead of voting.
    pub max_future_drift: Duration,
    /// Least time a proposer leaves after its parent's timestamp (pacing, so
    /// an idle chain does not finalize empty blocks as fast as the network allows).
    pub min_block_interval: Duration,
}

impl Default for BlockLimits {
    fn default() -> Self {
        Self {
            // ~165 bytes per transfer: 5,000 of them fit the 1 MiB block, and
            // at the 200 ms pacing a full block every view is 25,000 transfers/s.
            max_txs: 5_000,
            max_block_bytes: crate::block::DEFAULT_MAX_BLOCK_BYTES,
            max_future_drift: Duration::from_secs(2),
            min_block_interval: Duration::from_millis(200),
        }
    }
}

/// Why a proposed block is invalid on top of its parent.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The block is the genesis anchor, which is never proposed.
    #[error("genesis anchor proposed as a block")]
    Genesis,
    /// The header names someone other than the round's leader as proposer.
    #[error("proposer {got} is not the round leader {expected}")]
    WrongProposer {
        /// The leader's account.
        expected: AccountId,
        /// The header's proposer.
        got: AccountId,
    },
    /// More transactions than [`BlockLimits::max_txs`].
    #[error("block has {0} transactions, more than the limit")]
    TooManyTxs(usize),
    /// Larger than [`BlockLimits::max_block_bytes`].
    #[error("block is {0} bytes, more than the limit")]
    TooLarge(usize),
    /// The ledger rejects the block (chain id, height, parent, time, roots, a tx).
    #[error(transparent)]
    Ledger(#[from] BlockError),
    /// The block names another round than the one it was proposed in.
    #[error("block was built for another round")]
    WrongRound,
    /// The block's parent seed (the ledger's draw randomness) is refused.
    #[error(transparent)]
    Seed(#[from] SeedError),
}

/// How long a leader waits for its parent round's seed before it gives up
/// proposing (the seed normally arrives with the parent's notarization,
/// before the leader is asked to propose).
const SEED_WAIT: Duration = Duration::from_secs(2);

/// What the resharing wrapper hands a proposal: the payload to include.
pub type ProposalInput =
    commonware_glue::dkg::reshare::Input<(), MinSig, PrivateKey, commonware_utils::sequence::Unit>;

/// The agora account that a consensus identity proposes as (same ed25519 key bytes).
pub fn proposer_account(key: &PublicKey) -> AccountId {
    let mut out = [0u8; 32];
    out.copy_from_slice(key.as_ref());
    AccountId(out)
}

/// Milliseconds since the Unix epoch on `clock` (0 before the epoch).
pub fn now_ms(clock: &impl Clock) -> u64 {
    clock
        .current()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Check `block` (proposed by `leader`) on top of `parent` and return its post-state.
///
/// Pure: the same inputs give the same verdict on every node. Time relative to
/// the local clock is checked separately (see [`BlockLimits::max_future_drift`]).
pub fn verify_block(
    parent: &State,
    block: &Block,
    leader: &AccountId,
    limits: &BlockLimits,
    verified: impl Fn(&SignedTransaction) -> bool,
) -> Result<State, VerifyError> {
    if block.header.proposer != *leader {
        return Err(VerifyError::WrongProposer {
            expected: *leader,
            got: block.header.proposer,
        });
    }
    if block.txs.len() > limits.max_txs {
        return Err(VerifyError::TooManyTxs(block.txs.len()));
    }
    let size = codec::encode(block).len();
    if size > limits.max_block_bytes {
        return Err(VerifyError::TooLarge(size));
    }
    Ok(apply_block_with(parent, block, verified)?)
}

/// The round context a block says it was proposed in (`None` for genesis).
fn block_context(block: &ConsensusBlock) -> Option<&RoundContext> {
    match block {
        ConsensusBlock::Agora { context, .. } => Some(context),
        ConsensusBlock::Genesis { .. } => None,
    }
}

/// The marshal application for agora blocks.
#[derive(Clone)]
pub struct AgoraApp<T: TxSource> {
    ledger: LedgerView,
    txs: T,
    limits: BlockLimits,
    /// Parent seeds: where a leader finds them and how a verifier checks
    /// them (`None`: blocks carry none, as on a chain without threshold keys).
    seeds: Option<(SeedBook, SeedVerifier)>,
}

impl<T: TxSource> AgoraApp<T> {
    /// An application over `ledger`, proposing transactions from `txs`.
    pub fn new(ledger: LedgerView, txs: T, limits: BlockLimits) -> Self {
        Self {
            ledger,
            txs,
            limits,
            seeds: None,
        }
    }

    /// Carry each parent round's seed (found in `book`) in every proposal and
    /// require it, checked by `verifier`, in every block verified.
    pub fn with_seeds(mut self, book: SeedBook, verifier: SeedVerifier) -> Self {
        self.seeds = Some((book, verifier));
        self
    }

    /// The seed a block on `parent` must carry: `Ok(None)` without seeds or
    /// on genesis; `Err` if the parent round's seed did not arrive in time.
    async fn parent_seed(
        &self,
        runtime: &impl Clock,
        parent: &ConsensusBlock,
    ) -> Result<Option<Seed>, ()> {
        let (Some((book, _)), Some(context)) = (&self.seeds, block_context(parent)) else {
            return Ok(None);
        };
        let wait = book.wait(context.round);
        let timeout = std::pin::pin!(runtime.sleep(SEED_WAIT));
        match futures::future::select(wait, timeout).await {
            futures::future::Either::Left((Ok(seed), _)) => Ok(Some(seed)),
            _ => {
                warn!(round = ?context.round, "no seed for the parent round: not proposing");
                Err(())
            }
        }
    }

    /// The post-state of `tip`, re-executing unknown ancestors from the ancestry
    /// stream down to the last state we know (finalized, pending or genesis).
    /// `None` if the chain cannot be resolved (conflicts with finality, stream
    /// ended, or an ancestor does not apply).
    async fn state_after(
        &self,
        tip: Digested<ConsensusBlock>,
        ancestry: &mut impl Ancestry<ConsensusBlock>,
    ) -> Option<Arc<State>> {
        let finalized_height = self.ledger.finalized().height;
        let mut unknown: Vec<Digested<ConsensusBlock>> = Vec::new();
        let mut cursor = tip;
        let base = loop {
            if let Some(state) = self.ledger.state_after(&to_hash(&cursor.digest())) {
                break state;
            }
            if cursor.height().get() <= finalized_height {
                // Not the finalized block at this height (or genesis): a dead fork.
                return None;
            }
            unknown.push(cursor);
            cursor = ancestry.next().await?;
        };
        let mut state = base;
        for block in unknown.into_iter().rev() {
            let agora = block.inner().agora_block()?;
            match apply_block_with(&state, agora, |tx| self.txs.signature_verified(tx)) {
                Ok(next) => {
                    state = Arc::new(next);
                    self.ledger.insert(state.clone());
                }
                Err(e) => {
                    warn!(height = agora.header.height, error = %e, "ancestor does not apply");
                    return None;
                }
            }
        }
        Some(state)
    }

    /// Build the block `leader` proposes on `parent` at `timestamp_ms`, within
    /// limits, committing to `consensus` (see [`consensus_commitment`]) and
    /// drawing from `randomness` (its parent round's seed's).
    pub fn build(
        &self,
        parent: &State,
        leader: AccountId,
        timestamp_ms: u64,
        consensus: agora_types::Hash32,
        randomness: agora_types::Hash32,
    ) -> (Block, State) {
        let mut candidates = self.txs.candidates(self.limits.max_txs);
        loop {
            let built = build_block_with(
                parent,
                BlockCandidate {
                    proposer: leader,
                    timestamp_ms,
                    txs: candidates.clone(),
                    randomness,
                },
                |tx| self.txs.signature_verified(tx),
            )
            .with_consensus(consensus);
            let size = codec::encode(&built.block).len();
            if size <= self.limits.max_block_bytes || candidates.is_empty() {
                return (built.block, built.state);
            }
            // Too big: retry with half the candidates (rare; keeps the loop short).
            candidates.truncate(candidates.len() / 2);
        }
    }
}

impl<E, T> Application<E> for AgoraApp<T>
where
    E: Clock + Send + 'static,
    T: TxSource,
{
    type SigningScheme = Scheme;
    type Context = Context<Digest, PublicKey>;
    type Block = ConsensusBlock;
    type Input = ProposalInput;

    async fn propose(
        &mut self,
        (runtime, context): (E, Self::Context),
        mut ancestry: impl Ancestry<ConsensusBlock>,
        input: ProposalInput,
    ) -> Option<Digested<ConsensusBlock>> {
        let parent = ancestry.next().await?;
        let seed = self.parent_seed(&runtime, parent.inner()).await.ok()?;
        let parent_state = self.state_after(parent, &mut ancestry).await?;
        let leader = proposer_account(&context.leader);
        let interval = u64::try_from(self.limits.min_block_interval.as_millis()).unwrap_or(0);
        let earliest = parent_state.last_timestamp_ms.saturating_add(interval);
        if now_ms(&runtime) < earliest {
            runtime
                .sleep_until(UNIX_EPOCH + Duration::from_millis(earliest))
                .await;
        }
        let payload = input.payload;
        let commitment = consensus_commitment(&context, payload.as_ref());
        let randomness = seed_randomness(seed.as_ref());
        let (block, state) = self.build(
            &parent_state,
            leader,
            now_ms(&runtime),
            commitment,
            randomness,
        );
        debug!(
            height = block.header.height,
            txs = block.txs.len(),
            resharing = payload.is_some(),
            "proposing"
        );
        let digest = crate::block::to_digest(block.header.id());
        self.ledger.insert(Arc::new(state));
        let block = ConsensusBlock::agora(block, context, payload, seed);
        debug_assert_eq!(block.digest(), digest);
        Some(Digested::precomputed(block, digest))
    }

    async fn verify(
        &mut self,
        (runtime, context): (E, Self::Context),
        mut ancestry: impl Ancestry<ConsensusBlock>,
    ) -> bool {
        // Inline marshal yields [block, parent, ancestors...] and has checked the links.
        let Some(block) = ancestry.next().await else {
            return futures::future::pending().await;
        };
        let Some(agora) = block.inner().agora_block().cloned() else {
            warn!("genesis anchor proposed");
            return false;
        };
        if block_context(block.inner()) != Some(&context) {
            warn!(height = agora.header.height, error = %VerifyError::WrongRound, "rejecting block");
            return false;
        }
        // A block from the future: abstain until our clock catches up (never a final "no").
        let ts = agora.header.timestamp_ms;
        let drift = u64::try_from(self.limits.max_future_drift.as_millis()).unwrap_or(u64::MAX);
        if ts > now_ms(&runtime).saturating_add(drift) {
            let wake = ts
                .checked_sub(drift)
                .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)));
            match wake {
                Some(at) if at < SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 40) => {
                    runtime.sleep_until(at).await
                }
                _ => return futures::future::pending().await,
            }
        }
        let Some(parent) = ancestry.next().await else {
            return futures::future::pending().await;
        };
        if let Some((book, verifier)) = &self.seeds {
            if let Err(e) = check_parent_seed(parent.inner(), block.inner(), verifier) {
                let e = VerifyError::from(e);
                warn!(height = agora.header.height, error = %e, "rejecting block");
                return false;
            }
            if let Some(seed) = block.inner().seed() {
                book.insert(seed.clone());
            }
        }
        let Some(parent_state) = self.state_after(parent, &mut ancestry).await else {
            // Unresolvable parent (dead fork or missing data): abstain.
            return futures::future::pending().await;
        };
        let leader = proposer_account(&context.leader);
        match verify_block(&parent_state, &agora, &leader, &self.limits, |tx| {
            self.txs.signature_verified(tx)
        }) {
            Ok(state) => {
                self.ledger.insert(Arc::new(state));
                true
            }
            Err(e) => {
                warn!(height = agora.header.height, error = %e, "rejecting block");
                false
            }
        }
    }
}
