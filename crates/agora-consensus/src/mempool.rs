//! Where proposers get transactions: a narrow [`TxSource`] trait and a simple
//! in-memory implementation.

use std::sync::{Arc, Mutex, MutexGuard};

use agora_ledger::State;
use agora_types::{Block, Hash32, SignedTransaction};

/// A source of candidate transactions for proposals.
pub trait TxSource: Clone + Send + Sync + 'static {
    /// Up to `max` transactions to try, in order; the ledger drops those that fail.
    fn candidates(&self, max: usize) -> Vec<SignedTransaction>;
    /// Called once per finalized block, in height order, with the post-state.
    fn on_finalized(&self, block: &Block, state: &State);
    /// A transaction gossiped by a peer; duplicates and invalid ones are dropped.
    fn admit(&self, tx: SignedTransaction);
    /// Transactions gossiped by a peer in one message, in order.
    fn admit_batch(&self, txs: Vec<SignedTransaction>) {
        for tx in txs {
            self.admit(tx);
        }
    }
    /// Whether this exact signed transaction's signature was already verified
    /// here (so block checks can skip it). `false` is always safe.
    fn signature_verified(&self, _tx: &SignedTransaction) -> bool {
        false
    }
}

/// A FIFO pool in memory; finalized and stale (nonce already used) transactions are evicted.
#[derive(Clone, Debug, Default)]
pub struct InMemoryTxSource {
    pool: Arc<Mutex<Vec<SignedTransaction>>>,
}

impl InMemoryTxSource {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SignedTransaction>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a transaction (duplicates by id are ignored).
    pub fn submit(&self, tx: SignedTransaction) {
        let mut pool = self.lock();
        let id = tx.id();
        if !pool.iter().any(|t| t.id() == id) {
            pool.push(tx);
        }
    }

    /// Number of queued transactions.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl TxSource for InMemoryTxSource {
    fn candidates(&self, max: usize) -> Vec<SignedTransaction> {
        self.lock().iter().take(max).cloned().collect()
    }

    fn on_finalized(&self, block: &Block, state: &State) {
        let included: std::collections::HashSet<Hash32> =
            block.txs.iter().map(|t| t.id()).collect();
        self.lock().retain(|t| {
            !included.contains(&t.id()) && t.tx.nonce >= state.account(&t.tx.from).nonce
        });
    }

    fn admit(&self, tx: SignedTransaction) {
        if tx.verify_signature().is_ok() {
            self.submit(tx);
        }
    }
}

/// A source that never has transactions.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoTxs;

impl TxSource for NoTxs {
    fn candidates(&self, _max: usize) -> Vec<SignedTransaction> {
        Vec::new()
    }

    fn on_finalized(&self, _block: &Block, _state: &State) {}

    fn admit(&self, _tx: SignedTransaction) {}
}
