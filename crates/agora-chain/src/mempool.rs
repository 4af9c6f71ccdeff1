//! Transactions waiting for a block. Each one is checked on arrival against
//! the committed state plus everything already waiting, so a client learns at
//! once (and precisely) why a transaction cannot apply. One sender may hold
//! at most [`MAX_PENDING_PER_SENDER`] of them, so a flood from one account
//! cannot crowd out everybody else's verdicts, votes and settlements.

use std::collections::{HashMap, HashSet, VecDeque};

use agora_ledger::State;
use agora_types::{AccountId, Hash32, SignedTransaction};

/// Most transactions one account may have waiting at once.
pub const MAX_PENDING_PER_SENDER: usize = 1_024;

use crate::SubmitError;

/// Pending transactions in arrival order, with the state they lead to.
pub struct Mempool {
    /// Waiting transactions with their ids (kept so rebasing never rehashes them).
    txs: VecDeque<(Hash32, SignedTransaction)>,
    ids: HashSet<Hash32>,
    /// Waiting transactions per sender.
    per_sender: HashMap<AccountId, usize>,
    pending: State,
    capacity: usize,
}

impl Mempool {
    /// An empty mempool on top of `state`.
    pub fn new(state: State, capacity: usize) -> Self {
        Mempool {
            txs: VecDeque::new(),
            ids: HashSet::new(),
            per_sender: HashMap::new(),
            pending: state,
            capacity,
        }
    }

    /// Number of waiting transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether a transaction is waiting.
    pub fn contains(&self, id: &Hash32) -> bool {
        self.ids.contains(id)
    }

    /// State after all waiting transactions.
    pub fn pending_state(&self) -> &State {
        &self.pending
    }

    /// Admit transaction `id` if it applies on top of everything waiting; the
    /// caller has verified its signature (the node does, before taking the lock).
    pub fn insert_signature_verified(
        &mut self,
        tx: SignedTransaction,
        id: Hash32,
    ) -> Result<Hash32, SubmitError> {
        if self.ids.contains(&id) {
            return Err(SubmitError::Duplicate(id.to_hex()));
        }
        if self.txs.len() >= self.capacity {
            return Err(SubmitError::MempoolFull(self.capacity));
        }
        let sender = tx.tx.from;
        if self.per_sender.get(&sender).copied().unwrap_or(0) >= MAX_PENDING_PER_SENDER {
            return Err(SubmitError::SenderLimit(MAX_PENDING_PER_SENDER));
        }
        let height = self.pending.height + 1;
        self.pending.apply_tx_signature_verified(&tx, height)?;
        self.ids.insert(id);
        *self.per_sender.entry(sender).or_default() += 1;
        self.txs.push_back((id, tx));
        Ok(id)
    }

    /// Up to `max` transactions for the next block, oldest first.
    pub fn peek(&self, max: usize) -> Vec<SignedTransaction> {
        self.txs
            .iter()
            .take(max)
            .map(|(_, tx)| tx.clone())
            .collect()
    }

    /// After a block: forget what it settled (included or rejected) and
    /// re-check the rest against the new state, dropping what no longer applies.
    pub fn rebase(&mut self, state: &State, settled: &HashSet<Hash32>) {
        let remaining: Vec<_> = self
            .txs
            .drain(..)
            .filter(|(id, _)| !settled.contains(id))
            .collect();
        self.ids.clear();
        self.per_sender.clear();
        self.pending = state.clone();
        for (id, tx) in remaining {
            let height = self.pending.height + 1;
            // Its signature was verified on admission.
            if self
                .pending
                .apply_tx_signature_verified(&tx, height)
                .is_ok()
            {
                self.ids.insert(id);
                *self.per_sender.entry(tx.tx.from).or_default() += 1;
                self.txs.push_back((id, tx));
            }
        }
    }
}
