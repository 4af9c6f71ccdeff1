//! In-memory post-states of blocks: the last finalized state plus the states of
//! proposed or verified blocks that are not finalized yet (pruned on finalization),
//! and the recent committees the ledger elected, for the consensus epochs.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use agora_ledger::{CommitteeMember, State};
use agora_types::{Hash32, Height};
use commonware_utils::channel::oneshot;

/// Elections remembered (by election height); older ones are never asked for.
const COMMITTEES_KEPT: usize = 8;

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
    /// Finalized elections by height; an election below the first key is unknown.
    committees: BTreeMap<Height, Vec<CommitteeMember>>,
    /// Tasks waiting for the finalized height to reach a value.
    waiters: Vec<(Height, oneshot::Sender<()>)>,
}

impl LedgerView {
    /// A view whose only known state is `genesis` (height 0).
    pub fn new(genesis: State) -> Self {
        let committees = BTreeMap::from([(0, genesis.committee.members.clone())]);
        let genesis = Arc::new(genesis);
        Self {
            inner: Arc::new(Mutex::new(Inner {
                finalized: genesis.clone(),
                genesis,
                pending: HashMap::new(),
                committees,
                waiters: Vec::new(),
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
        let elected_at = state.committee.elected_at;
        if !inner.committees.contains_key(&elected_at) {
            if height > inner.finalized.height + 1 {
                // A jump (restart from a stored state): elections in between are unknown.
                inner.committees.clear();
            }
            inner
                .committees
                .insert(elected_at, state.committee.members.clone());
            while inner.committees.len() > COMMITTEES_KEPT {
                inner.committees.pop_first();
            }
        }
        inner.finalized = state;
        let waiters = std::mem::take(&mut inner.waiters);
        for (at, tx) in waiters {
            if at <= height {
                let _ = tx.send(());
            } else if !tx.is_closed() {
                inner.waiters.push((at, tx));
            }
        }
    }

    /// The committee in force after finalized height `height`: the latest
    /// election at or below it, or `None` if that election is not remembered.
    pub fn committee_at(&self, height: Height) -> Option<Vec<CommitteeMember>> {
        let inner = self.lock();
        let (first, _) = inner.committees.first_key_value()?;
        if *first > height {
            return None;
        }
        inner
            .committees
            .range(..=height)
            .next_back()
            .map(|(_, members)| members.clone())
    }

    /// Resolves once the finalized height is at least `height`.
    pub async fn finalized_at_least(&self, height: Height) {
        let rx = {
            let mut inner = self.lock();
            if inner.finalized.height >= height {
                return;
            }
            let (tx, rx) = oneshot::channel();
            inner.waiters.push((height, tx));
            rx
        };
        // A dropped view (shutdown) also ends the wait.
        let _ = rx.await;
    }

    /// Number of unfinalized post-states held (for tests and metrics).
    pub fn pending_len(&self) -> usize {
        self.lock().pending.len()
    }
}
