//! In-memory post-states of blocks: the last finalized state plus the states of
//! proposed or verified blocks that are not finalized yet (pruned on finalization).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use agora_ledger::State;
use agora_types::Hash32;

/// Post-states shared by the application (propose/verify) and finalized delivery.
#[derive(Clone, Debug)]
pub struct LedgerView {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    genesis: Arc<State>,
    finalized: Arc<State>,
    pending: HashMap<Hash32, Arc<State>>,
}

impl LedgerView {
    /// A view whose only known state is `genesis` (height 0).
    pub fn new(genesis: State) -> Self {
        let genesis = Arc::new(genesis);
        Self {
            inner: Arc::new(Mutex::new(Inner {
                finalized: genesis.clone(),
                genesis,
                pending: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated
        // (every mutation is a single insert/assign), so poisoning is ignorable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The genesis state.
    pub fn genesis(&self) -> Arc<State> {
        self.lock().genesis.clone()
    }

    /// The last finalized state.
    pub fn finalized(&self) -> Arc<State> {
        self.lock().finalized.clone()
    }

    /// The post-state of block `id`, if known.
    pub fn state_after(&self, id: &Hash32) -> Option<Arc<State>> {
        let inner = self.lock();
        if inner.finalized.last_block_id == *id {
            return Some(inner.finalized.clone());
        }
        if inner.genesis.last_block_id == *id {
            return Some(inner.genesis.clone());
        }
        inner.pending.get(id).cloned()
    }

    /// Record the post-state of a proposed or verified block (keyed by its id).
    pub fn insert(&self, state: Arc<State>) {
        let mut inner = self.lock();
        if state.height > inner.finalized.height {
            inner.pending.insert(state.last_block_id, state);
        }
    }

    /// Record `state` as finalized and drop every pending state at or below its height.
    pub fn finalize(&self, state: Arc<State>) {
        let mut inner = self.lock();
        let height = state.height;
        inner.pending.retain(|_, s| s.height > height);
        inner.finalized = state;
    }

    /// Number of unfinalized post-states held (for tests and metrics).
    pub fn pending_len(&self) -> usize {
        self.lock().pending.len()
    }
}
