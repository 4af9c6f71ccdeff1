//! The node: committed state, mempool, block production and persistence.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agora_ledger::{build_block, BlockCandidate, Genesis, State, TxError};
use agora_types::rpc::TxStatus;
use agora_types::{Block, Hash32, Keypair, SignedTransaction};
use tokio::sync::watch;

use crate::mempool::Mempool;
use crate::metrics::ChainMetrics;
use crate::{ChainError, Store, SubmitError};

const MAX_REMEMBERED_REJECTIONS: usize = 10_000;

/// Why a transaction was dropped at block building: its stable code and message.
type Rejection = (&'static str, String);
/// Transaction ids per generation of [`VerifiedIds`] (two generations are kept).
const VERIFIED_IDS_PER_GENERATION: usize = 65_536;

/// Ids of transactions whose signature this node has verified, so each
/// transaction is verified once however it arrives (RPC, gossip, a block).
/// An id hashes the whole signed transaction, signature included, so a
/// forged variant has another id and is verified on its own. Bounded: when
/// the current generation fills, it becomes the previous one and the one
/// before is forgotten (a forgotten id is merely verified again).
#[derive(Default)]
struct VerifiedIds {
    current: HashSet<Hash32>,
    previous: HashSet<Hash32>,
}

impl VerifiedIds {
    fn contains(&self, id: &Hash32) -> bool {
        self.current.contains(id) || self.previous.contains(id)
    }

    fn insert(&mut self, id: Hash32) {
        if self.current.len() >= VERIFIED_IDS_PER_GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(id);
    }
}

/// Block production settings.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    /// Time between blocks.
    pub block_interval: Duration,
    /// Most transactions in one block.
    pub max_block_txs: usize,
    /// Most transactions waiting; beyond it submissions are refused.
    pub mempool_capacity: usize,
    /// Longest chain a restart replays from genesis to rebuild the
    /// explorer's history; a longer one keeps only its newest blocks'
    /// summaries from before the restart.
    pub explorer_replay_blocks: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            block_interval: Duration::from_millis(500),
            max_block_txs: 5_000,
            mempool_capacity: 50_000,
            explorer_replay_blocks: crate::history::MAX_REPLAY_BLOCKS,
        }
    }
}

/// A running single-node chain; cheap to clone and share.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    key: Keypair,
    config: ChainConfig,
    chain_id: String,
    verified: Mutex<VerifiedIds>,
    state: Mutex<Arc<State>>,
    mempool: Mutex<Mempool>,
    rejected: Mutex<HashMap<Hash32, Rejection>>,
    head: watch::Sender<u64>,
    /// Serialises block production so two callers never build on the same parent.
    producing: Mutex<()>,
    /// Where locally submitted transactions are relayed (to other validators).
    relay: Mutex<Option<Relay>>,
    metrics: ChainMetrics,
    /// What the explorer shows beyond the current state.
    history: Mutex<agora_explorer::History>,
}

/// A hook that sends locally submitted transactions to other validators.
pub type Relay = Arc<dyn Fn(&[SignedTransaction]) + Send + Sync>;

/// What consensus proved about a finalized block, kept beside it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Finality {
    /// Per-block randomness from the finalization certificate's threshold VRF seed.
    pub randomness: Option<[u8; 32]>,
    /// The encoded finalization certificate.
    pub certificate: Option<Vec<u8>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock cannot leave these structures half-updated
    // (every update is a single assignment), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Node {
    /// Open the chain stored in `dir`, initialising it from `genesis` on first start.
    pub fn open(
        dir: &Path,
        genesis: &Genesis,
        key: Keypair,
        config: ChainConfig,
    ) -> Result<Self, ChainError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ChainError::Store(format!("{}: {e}", dir.display())))?;
        let store = Store::open(&dir.join("chain.redb"))?;
        let state = match store.load()? {
            Some((stored, state)) => {
                if stored != genesis.hash() {
                    return Err(ChainError::GenesisMismatch {
                        stored: stored.to_hex(),
                        given: genesis.hash().to_hex(),
                    });
                }
                state
            }
            None => {
                let state = genesis.state()?;
                store.init(genesis.hash(), &state)?;
                state
            }
        };
        let (head, _) = watch::channel(state.height);
        let mempool = Mempool::new(state.clone(), config.mempool_capacity);
        let history =
            crate::history::rebuild(&store, genesis, &state, config.explorer_replay_blocks)?;
        Ok(Node {
            inner: Arc::new(Inner {
                store,
                key,
                config,
                chain_id: state.chain_id.clone(),
                verified: Mutex::new(VerifiedIds::default()),
                state: Mutex::new(Arc::new(state)),
                mempool: Mutex::new(mempool),
                rejected: Mutex::new(HashMap::new()),
                head,
                producing: Mutex::new(()),
                relay: Mutex::new(None),
                metrics: ChainMetrics::default(),
                history: Mutex::new(history),
            }),
        })
    }

    /// The explorer's history (blocks, supply, emissions, slashes, earnings).
    pub fn history(&self) -> MutexGuard<'_, agora_explorer::History> {
        lock(&self.inner.history)
    }

    /// Committed state.
    pub fn state(&self) -> Arc<State> {
        lock(&self.inner.state).clone()
    }

    /// The node's metrics (served at `GET /metrics`).
    pub fn metrics(&self) -> &ChainMetrics {
        &self.inner.metrics
    }

    /// Watch the committed height.
    pub fn subscribe_height(&self) -> watch::Receiver<u64> {
        self.inner.head.subscribe()
    }

    /// Number of transactions waiting.
    pub fn mempool_len(&self) -> usize {
        lock(&self.inner.mempool).len()
    }

    /// Next nonce for `account` counting the mempool.
    pub fn next_nonce(&self, account: &agora_types::AccountId) -> u64 {
        lock(&self.inner.mempool)
            .pending_state()
            .account(account)
            .nonce
    }

    /// Admit a transaction to the mempool and relay it to other validators.
    pub fn submit(&self, tx: SignedTransaction) -> Result<Hash32, SubmitError> {
        self.submit_batch(vec![tx])
            .pop()
            .expect("one outcome per transaction")
    }

    /// Admit transactions in order (each gets its own outcome, so one refusal
    /// does not stop the rest) and relay the admitted ones to other validators.
    /// Signatures are verified before the mempool lock is taken.
    pub fn submit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash32, SubmitError>> {
        let relay = lock(&self.inner.relay).clone();
        let (outcomes, admitted) = self.admit_all(txs, relay.is_some());
        if let (Some(relay), false) = (relay, admitted.is_empty()) {
            relay(&admitted);
        }
        outcomes
    }

    /// Admit a transaction to the mempool without relaying it (it came from a peer).
    pub fn admit(&self, tx: SignedTransaction) -> Result<Hash32, SubmitError> {
        self.admit_batch(vec![tx])
            .pop()
            .expect("one outcome per transaction")
    }

    /// [`Node::admit`] for several transactions, in order, under one mempool lock.
    pub fn admit_batch(&self, txs: Vec<SignedTransaction>) -> Vec<Result<Hash32, SubmitError>> {
        self.admit_all(txs, false).0
    }

    /// Admit `txs`; with `keep`, also return clones of the admitted ones.
    fn admit_all(
        &self,
        txs: Vec<SignedTransaction>,
        keep: bool,
    ) -> (Vec<Result<Hash32, SubmitError>>, Vec<SignedTransaction>) {
        // Everything slow (store lookups, signatures) happens before the mempool lock.
        let ids: Vec<Hash32> = txs.iter().map(|tx| tx.id()).collect();
        // A store error only means committed duplicates are caught later (by nonce).
        let committed = self
            .inner
            .store
            .tx_heights(&ids)
            .unwrap_or_else(|_| vec![None; ids.len()]);
        let checked: Vec<_> = txs
            .into_iter()
            .zip(ids)
            .zip(committed)
            .map(|((tx, id), committed)| {
                if committed.is_some() {
                    return Err(SubmitError::Duplicate(id.to_hex()));
                }
                // A transaction for another chain is refused as such by the mempool,
                // whatever its signature.
                if tx.tx.chain_id == self.inner.chain_id && !self.signature_ok_with_id(&tx, id) {
                    return Err(SubmitError::Invalid(TxError::BadSignature(tx.tx.from)));
                }
                Ok((tx, id))
            })
            .collect();
        let mut admitted = Vec::new();
        let mut mempool = lock(&self.inner.mempool);
        let outcomes = checked
            .into_iter()
            .map(|checked| {
                let (tx, id) = checked?;
                let kept = keep.then(|| tx.clone());
                mempool.insert_signature_verified(tx, id)?;
                admitted.extend(kept);
                Ok(id)
            })
            .collect::<Vec<Result<Hash32, SubmitError>>>();
        drop(mempool);
        for outcome in &outcomes {
            let refusal = outcome.as_ref().err().map(SubmitError::code);
            self.inner.metrics.submitted(refusal);
        }
        (outcomes, admitted)
    }

    /// Whether `tx`'s signature verifies. Each transaction is verified once:
    /// the answer for a valid one is remembered by id (which covers the signature).
    pub fn signature_ok(&self, tx: &SignedTransaction) -> bool {
        self.signature_ok_with_id(tx, tx.id())
    }

    fn signature_ok_with_id(&self, tx: &SignedTransaction, id: Hash32) -> bool {
        if lock(&self.inner.verified).contains(&id) {
            return true;
        }
        let ok = tx.verify_signature().is_ok();
        if ok {
            lock(&self.inner.verified).insert(id);
        }
        ok
    }

    /// Relay every later locally submitted transaction through `relay`.
    pub fn set_relay(&self, relay: Relay) {
        *lock(&self.inner.relay) = Some(relay);
    }

    /// Whether transaction `id` waits in the mempool (its signature was verified on admission).
    pub fn in_mempool(&self, id: &Hash32) -> bool {
        lock(&self.inner.mempool).contains(id)
    }

    /// Up to `max` waiting transactions, oldest first (a proposer's candidates).
    pub fn pending_txs(&self, max: usize) -> Vec<SignedTransaction> {
        lock(&self.inner.mempool).peek(max)
    }

    /// What consensus proved about the block at `height`, if it was finalized by consensus.
    pub fn finality(&self, height: u64) -> Result<Option<Finality>, ChainError> {
        self.inner.store.finality(height)
    }

    /// Where a transaction stands, or `None` if the node never saw it.
    pub fn tx_status(&self, id: &Hash32) -> Result<Option<TxStatus>, ChainError> {
        // The mempool first: a commit writes the store (and the rejections)
        // before it takes the block's transactions out of the mempool, so a
        // transaction gone from the mempool is already in one of those.
        // Asking the store first left a window in which a commit landing
        // between the two reads made a committed transaction "unknown".
        if lock(&self.inner.mempool).contains(id) {
            return Ok(Some(TxStatus::Pending));
        }
        if let Some(height) = self.inner.store.tx_height(id)? {
            return Ok(Some(TxStatus::Committed { height }));
        }
        Ok(lock(&self.inner.rejected)
            .get(id)
            .map(|(code, error)| TxStatus::Rejected {
                code: (*code).to_string(),
                error: error.clone(),
            }))
    }

    /// A committed block by height.
    pub fn block(&self, height: u64) -> Result<Option<Block>, ChainError> {
        self.inner.store.block(height)
    }

    /// Build, persist and publish the next block from the mempool. Blocks are
    /// produced even when empty, so height tracks time like a heartbeat.
    pub fn produce_block(&self, timestamp_ms: u64) -> Result<Block, ChainError> {
        let _producing = lock(&self.inner.producing);
        let parent = self.state();
        let txs = lock(&self.inner.mempool).peek(self.inner.config.max_block_txs);
        let built = build_block(
            &parent,
            BlockCandidate {
                proposer: self.inner.key.account(),
                timestamp_ms,
                txs,
                randomness: agora_types::Hash32::ZERO,
            },
        );
        let rejected: Vec<(Hash32, Rejection)> = built
            .rejected
            .iter()
            .map(|(id, e)| (*id, (crate::tx_error_code(e), e.to_string())))
            .collect();
        self.commit(&built.block, built.state, &rejected, &Finality::default())?;
        Ok(built.block)
    }

    /// Persist and publish a block finalized by consensus (its successor of the
    /// committed state; anything else is refused so nothing is skipped).
    pub fn commit_finalized(
        &self,
        block: &Block,
        state: State,
        finality: &Finality,
    ) -> Result<(), ChainError> {
        let _producing = lock(&self.inner.producing);
        let committed = self.state().height;
        if block.header.height != committed + 1 || state.height != block.header.height {
            return Err(ChainError::OutOfOrder {
                committed,
                got: block.header.height,
            });
        }
        self.commit(block, state, &[], finality)
    }

    fn commit(
        &self,
        block: &Block,
        state: State,
        rejected: &[(Hash32, Rejection)],
        finality: &Finality,
    ) -> Result<(), ChainError> {
        self.inner.store.commit_block(block, &state, finality)?;
        let mut settled: HashSet<Hash32> = block.txs.iter().map(|t| t.id()).collect();
        {
            let mut remembered = lock(&self.inner.rejected);
            if remembered.len() > MAX_REMEMBERED_REJECTIONS {
                remembered.clear();
            }
            for (id, (code, error)) in rejected {
                tracing::warn!(%id, %error, "transaction dropped at block building");
                remembered.insert(*id, (code, error.clone()));
                settled.insert(*id);
            }
        }
        let state = Arc::new(state);
        let before = std::mem::replace(&mut *lock(&self.inner.state), state.clone());
        lock(&self.inner.history).absorb(&before, block, &state);
        lock(&self.inner.mempool).rebase(&state, &settled);
        self.inner.head.send_replace(state.height);
        let dropped = rejected.iter().map(|(_, (code, _))| *code);
        self.inner.metrics.finalized(block, dropped);
        Ok(())
    }

    /// Produce blocks every `block_interval` until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), ChainError> {
        let mut ticks = agora_tasks::Periodic::every(self.inner.config.block_interval, shutdown);
        while ticks.tick().await {
            let node = self.clone();
            let block = tokio::task::spawn_blocking(move || node.produce_block(now_ms()))
                .await
                .map_err(|e| ChainError::Store(format!("block production task failed: {e}")))??;
            tracing::debug!(
                height = block.header.height,
                txs = block.txs.len(),
                "block committed"
            );
        }
        Ok(())
    }
}

/// Wall-clock milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
