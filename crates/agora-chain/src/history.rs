//! The explorer's history when a node opens: replayed from genesis through
//! the stored blocks, so supply, emission, slashes and earnings survive a
//! restart exactly as they were recorded; or, past the configured length
//! ([`crate::ChainConfig::explorer_replay_blocks`]) or if a stored block is
//! missing, the newest blocks' summaries only.

use agora_explorer::History;
use agora_ledger::{apply_block_with, Genesis, State};

use crate::{ChainError, Store};

/// Longest chain replayed at start by default.
pub(crate) const MAX_REPLAY_BLOCKS: u64 = 20_000;

/// The history of the chain in `store`, whose committed state is `state`,
/// replayed when it is at most `max_replay` blocks long.
pub(crate) fn rebuild(
    store: &Store,
    genesis: &Genesis,
    state: &State,
    max_replay: u64,
) -> Result<History, ChainError> {
    if state.height <= max_replay {
        if let Some(history) = replay(store, genesis, state)? {
            return Ok(history);
        }
        tracing::warn!(
            height = state.height,
            "the stored blocks do not replay to the stored state; the explorer keeps block summaries only"
        );
    }
    backfill(store, state.height)
}

/// Every stored block applied again from genesis, each absorbed; `None`
/// unless the replay ends at exactly the stored state. Signatures are not
/// checked again: every stored block was checked when it was committed.
fn replay(store: &Store, genesis: &Genesis, last: &State) -> Result<Option<History>, ChainError> {
    let mut history = History::new();
    let Ok(mut state) = genesis.state() else {
        return Ok(None);
    };
    for height in 1..=last.height {
        let Some(block) = store.block(height)? else {
            return Ok(None);
        };
        let Ok(next) = apply_block_with(&state, &block, |_| true) else {
            return Ok(None);
        };
        history.absorb(&state, &block, &next);
        state = next;
    }
    Ok((state.root() == last.root()).then_some(history))
}

/// A history holding the newest stored blocks' summaries only.
fn backfill(store: &Store, height: u64) -> Result<History, ChainError> {
    let mut history = History::new();
    let first = height
        .saturating_sub(agora_explorer::MAX_BLOCKS as u64 - 1)
        .max(1);
    for h in (first..=height).rev() {
        match store.block(h)? {
            Some(block) => history.backfill(&block),
            None => break,
        }
    }
    Ok(history)
}
