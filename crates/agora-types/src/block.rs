//! Blocks: an ordered batch of transactions with a header that chains to its parent.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{codec, AccountId, Hash32, Height, SignedTransaction};

const BLOCK_ID_DOMAIN: &str = "agora 2026 block id v1";
const TX_ROOT_DOMAIN: &str = "agora 2026 transaction root v1";

/// Block header; its hash is the block id.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Chain the block belongs to.
    pub chain_id: String,
    /// Height; the first block after genesis is 1.
    pub height: Height,
    /// Id of the previous block (the genesis hash for height 1).
    pub parent: Hash32,
    /// Proposer's wall-clock time in milliseconds since the Unix epoch; the
    /// ledger only checks that it never goes backwards.
    pub timestamp_ms: u64,
    /// Who produced the block.
    pub proposer: AccountId,
    /// Hash over the transaction ids, in order.
    pub tx_root: Hash32,
    /// State root after applying the block.
    pub state_root: Hash32,
    /// Commitment to what the consensus engine carries beside the block (its
    /// round context and key-resharing payload), so the block id covers it;
    /// zero where a block has none.
    #[serde(default)]
    pub consensus: Hash32,
    /// Randomness nobody could know or steer when the parent's contents were
    /// fixed: under BFT consensus, the hash of the parent round's threshold
    /// VRF seed, which consensus checks before the block is accepted. The
    /// ledger draws the audits and committees of the parent's batches and
    /// disputes from it ([`draw_source`]). Zero where the chain has no such
    /// seed (a single producer, or the block after genesis).
    #[serde(default)]
    pub randomness: Hash32,
}

impl BlockHeader {
    /// What the ledger draws the parent's audits and committees from: the
    /// header's [`randomness`](Self::randomness), or the parent's id where
    /// there is none.
    pub fn draw_source(&self) -> Hash32 {
        draw_source(&self.randomness, &self.parent)
    }
}

/// [`BlockHeader::draw_source`] from its two inputs.
pub fn draw_source(randomness: &Hash32, parent: &Hash32) -> Hash32 {
    if *randomness == Hash32::ZERO {
        *parent
    } else {
        *randomness
    }
}

/// A header with its transactions.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// Transactions, applied in order.
    pub txs: Vec<SignedTransaction>,
}

impl BlockHeader {
    /// The block id.
    pub fn id(&self) -> Hash32 {
        Hash32::digest_in(BLOCK_ID_DOMAIN, &codec::encode(self))
    }
}

/// The commitment to a list of transactions that a header carries.
pub fn tx_root(txs: &[SignedTransaction]) -> Hash32 {
    let mut hasher = blake3::Hasher::new_derive_key(TX_ROOT_DOMAIN);
    for tx in txs {
        hasher.update(&tx.id().0);
    }
    Hash32(*hasher.finalize().as_bytes())
}
