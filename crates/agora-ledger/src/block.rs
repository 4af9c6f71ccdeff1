//! Building and applying blocks.

use agora_types::{
    block::{draw_source, tx_root},
    AccountId, Block, BlockHeader, Hash32, SignedTransaction,
};

use crate::{BlockError, State, TxError};

/// What a block producer proposes; the ledger decides which transactions fit.
#[derive(Clone, Debug)]
pub struct BlockCandidate {
    /// Producer's key.
    pub proposer: AccountId,
    /// Producer's clock; raised to the parent's timestamp if it is behind.
    pub timestamp_ms: u64,
    /// Transactions in the order they should be tried.
    pub txs: Vec<SignedTransaction>,
    /// The header's [`randomness`](BlockHeader::randomness): the parent
    /// round's threshold seed under consensus, zero for a single producer.
    pub randomness: Hash32,
}

/// A block ready to persist, with the state it leads to.
#[derive(Clone, Debug)]
pub struct BuiltBlock {
    /// The block, containing only transactions that applied.
    pub block: Block,
    /// State after the block.
    pub state: State,
    /// Transactions left out, with the reason.
    pub rejected: Vec<(Hash32, TxError)>,
}

impl BuiltBlock {
    /// Set the header's consensus commitment (see
    /// [`BlockHeader::consensus`]); the post-state's last block id follows the
    /// new header id. The state root does not depend on it.
    pub fn with_consensus(mut self, consensus: Hash32) -> Self {
        self.block.header.consensus = consensus;
        self.state.last_block_id = self.block.header.id();
        self
    }
}

/// Build the next block on `state`: apply each candidate transaction in order,
/// keep the ones that succeed, and seal the header with the resulting roots.
pub fn build_block(state: &State, candidate: BlockCandidate) -> BuiltBlock {
    build_block_with(state, candidate, |_| false)
}

/// [`build_block`], skipping the signature check of the candidates for which
/// `verified` holds (the caller verified those exact signed bytes already).
pub fn build_block_with(
    state: &State,
    candidate: BlockCandidate,
    verified: impl Fn(&SignedTransaction) -> bool,
) -> BuiltBlock {
    let height = state.height + 1;
    let mut next = state.clone();
    next.begin_block(
        height,
        draw_source(&candidate.randomness, &state.last_block_id),
    );
    let mut txs = Vec::with_capacity(candidate.txs.len());
    let mut rejected = Vec::new();
    for tx in candidate.txs {
        match apply_checked(&mut next, &tx, height, &verified) {
            Ok(()) => txs.push(tx),
            Err(e) => rejected.push((tx.id(), e)),
        }
    }
    let header = BlockHeader {
        chain_id: state.chain_id.clone(),
        height,
        parent: state.last_block_id,
        timestamp_ms: candidate.timestamp_ms.max(state.last_timestamp_ms),
        proposer: candidate.proposer,
        tx_root: tx_root(&txs),
        state_root: Hash32::ZERO,
        consensus: Hash32::ZERO,
        randomness: candidate.randomness,
    };
    next.height = height;
    next.last_timestamp_ms = header.timestamp_ms;
    let mut block = Block { header, txs };
    block.header.state_root = next.root();
    next.last_block_id = block.header.id();
    BuiltBlock {
        block,
        state: next,
        rejected,
    }
}

/// Apply a block to `state`, checking every header field and transaction.
/// Returns the new state; on error `state` is untouched.
pub fn apply_block(state: &State, block: &Block) -> Result<State, BlockError> {
    apply_block_with(state, block, |_| false)
}

/// [`apply_block`], skipping the signature check of the transactions for which
/// `verified` holds (the caller verified those exact signed bytes already,
/// e.g. its mempool admitted them). The result is the same as
/// [`apply_block`]'s whenever `verified` only names correctly signed
/// transactions; signature checks are most of the cost of a block of transfers.
pub fn apply_block_with(
    state: &State,
    block: &Block,
    verified: impl Fn(&SignedTransaction) -> bool,
) -> Result<State, BlockError> {
    let h = &block.header;
    if h.chain_id != state.chain_id {
        return Err(BlockError::WrongChain {
            expected: state.chain_id.clone(),
            got: h.chain_id.clone(),
        });
    }
    if h.height != state.height + 1 {
        return Err(BlockError::WrongHeight {
            expected: state.height + 1,
            got: h.height,
        });
    }
    if h.parent != state.last_block_id {
        return Err(BlockError::WrongParent {
            expected: state.last_block_id,
            got: h.parent,
        });
    }
    if h.timestamp_ms < state.last_timestamp_ms {
        return Err(BlockError::TimeWentBackwards {
            parent: state.last_timestamp_ms,
            got: h.timestamp_ms,
        });
    }
    if h.tx_root != tx_root(&block.txs) {
        return Err(BlockError::TxRootMismatch);
    }
    let mut next = state.clone();
    next.begin_block(h.height, h.draw_source());
    for (index, tx) in block.txs.iter().enumerate() {
        apply_checked(&mut next, tx, h.height, &verified).map_err(|error| {
            BlockError::InvalidTx {
                index,
                id: tx.id(),
                error,
            }
        })?;
    }
    next.height = h.height;
    next.last_timestamp_ms = h.timestamp_ms;
    let computed = next.root();
    if computed != h.state_root {
        return Err(BlockError::StateRootMismatch {
            header: h.state_root,
            computed,
        });
    }
    next.last_block_id = h.id();
    Ok(next)
}

/// Apply `tx`, verifying its signature unless `verified` vouches for it.
fn apply_checked(
    state: &mut State,
    tx: &SignedTransaction,
    height: u64,
    verified: &impl Fn(&SignedTransaction) -> bool,
) -> Result<(), TxError> {
    if verified(tx) {
        state.apply_tx_signature_verified(tx, height)
    } else {
        state.apply_tx(tx, height)
    }
}
