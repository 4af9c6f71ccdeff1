//! Provenance of an output: the evidence that a text came from a job whose
//! signed receipt sits in a receipt batch created by a transaction of a
//! finalized block, and the pure checks of that chain of evidence. Checking
//! the finalization certificate itself needs the consensus verifier and
//! lives in `agora_consensus::provenance`; everything else is here.

use serde::{Deserialize, Serialize};

use crate::audit::receipt_leaf;
use crate::block::tx_root;
use crate::merkle::MerkleProof;
use crate::{
    hash_output_text, AccountId, Block, Hash32, Height, SignedReceipt, SignedTransaction, TxKind,
};

/// Where a provider put a job's receipt: the root it committed (a sealed
/// batch's `CommitReceipts` or a settled voucher's `receipts_root`), the
/// leaf index and the Merkle proof of the receipt leaf under that root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiptInclusion {
    /// The committed Merkle root.
    pub root: Hash32,
    /// Proof of the receipt leaf (its `index` is the leaf index).
    pub proof: MerkleProof,
    /// Height the provider saw the root land at (a hint; never trusted).
    pub height: Option<Height>,
    /// The payment channel whose settlement committed it, if any.
    pub channel: Option<Hash32>,
}

/// A provider's public `GET /v1/receipts/{job}`: the signed receipt and,
/// once committed, its inclusion proof (never the prompt or the output).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProviderReceipt {
    /// The signed receipt.
    pub receipt: SignedReceipt,
    /// Its inclusion in a committed root; `None` until committed.
    pub inclusion: Option<ReceiptInclusion>,
}

/// The on-chain receipt batch a job's receipt belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRef {
    /// The batch id (`audit::batch_id` of the creating transaction).
    pub batch: Hash32,
    /// Height of the block whose transaction created it.
    pub height: Height,
    /// The batch's Merkle root.
    pub root: Hash32,
    /// The receipt's leaf index under `root`.
    pub index: u64,
    /// Proof of the receipt leaf under `root`.
    pub proof: MerkleProof,
}

/// The provider that served a job, as the gateway called it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServedBy {
    /// Provider account.
    pub id: AccountId,
    /// Its registered endpoint.
    pub endpoint: String,
}

/// The gateway's `GET /v1/receipts/{id}`: what a client needs to check an output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiptRecord {
    /// The signed receipt.
    pub receipt: SignedReceipt,
    /// Who served it.
    pub provider: ServedBy,
    /// The batch holding it, once committed on chain.
    pub batch: Option<BatchRef>,
}

/// One audit verdict on a job, as the chain's `GET /verdicts/{batch}` lists them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerdictEntry {
    /// Leaf index of the audited job.
    pub index: u64,
    /// The validator who judged it.
    pub auditor: AccountId,
    /// Whether the job passed.
    pub passed: bool,
}

/// Everything that ties an output to a finalized block, checkable offline
/// against the validator set's identity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputEvidence {
    /// The provider's signed receipt.
    pub receipt: SignedReceipt,
    /// The batch root the receipt is under.
    pub root: Hash32,
    /// Proof of the receipt leaf under `root`.
    pub proof: MerkleProof,
    /// The block holding the creating transaction: its header and every
    /// transaction, which hash to the header's `tx_root`.
    pub block: Block,
    /// Position in `block.txs` of the transaction that created the batch.
    pub tx_index: u64,
    /// The block's encoded finalization certificate (hex).
    pub certificate: String,
}

/// Why a piece of provenance evidence was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvenanceError {
    /// The text does not hash to the receipt's `text_hash`.
    #[error("the text hashes to {got}, the receipt says {want}")]
    TextMismatch {
        /// What the receipt signs.
        want: Hash32,
        /// What the text hashes to.
        got: Hash32,
    },
    /// The receipt's provider signature does not verify.
    #[error("the receipt's provider signature does not verify")]
    BadReceiptSignature,
    /// The receipt leaf is not under the batch root.
    #[error("the Merkle proof does not lead from the receipt to root {0}")]
    NotInBatch(Hash32),
    /// The listed transaction ids do not hash to the header's `tx_root`.
    #[error("the block's transactions do not match its tx_root")]
    TxRootMismatch,
    /// The block has no transaction at the given position.
    #[error("block {1} has no transaction {0}")]
    TxNotInBlock(u64, Height),
    /// The creating transaction's signature does not verify.
    #[error("the batch transaction's signature does not verify")]
    BadTxSignature,
    /// The transaction does not create a batch with this root by this provider.
    #[error("the transaction does not commit root {root} for provider {provider}")]
    NotTheBatchTx {
        /// The batch root.
        root: Hash32,
        /// The receipt's provider.
        provider: AccountId,
    },
    /// The block, transaction and receipt name different chains.
    #[error("chain mismatch: receipt {receipt}, block {block}, transaction {tx}")]
    ChainMismatch {
        /// The receipt's chain.
        receipt: String,
        /// The block's chain.
        block: String,
        /// The transaction's chain.
        tx: String,
    },
    /// The finalization certificate does not finalize this block under the identity.
    #[error("finality: {0}")]
    Finality(String),
    /// A manifest that does not hold what an agora manifest must.
    #[error("malformed manifest: {0}")]
    Manifest(String),
}

/// (a) `text` hashes to the receipt's `text_hash` (the text the provider
/// streamed; its `output_hash`, over tokens, is implied by the signature).
pub fn check_text(receipt: &SignedReceipt, text: &str) -> Result<(), ProvenanceError> {
    let got = hash_output_text(text);
    let want = receipt.receipt.text_hash;
    if got != want {
        return Err(ProvenanceError::TextMismatch { want, got });
    }
    Ok(())
}

/// (b) The receipt carries its provider's signature.
pub fn check_receipt(receipt: &SignedReceipt) -> Result<(), ProvenanceError> {
    receipt
        .verify()
        .map_err(|_| ProvenanceError::BadReceiptSignature)
}

/// (c) The receipt's leaf is under `root` by `proof`.
pub fn check_inclusion(
    receipt: &SignedReceipt,
    root: &Hash32,
    proof: &MerkleProof,
) -> Result<(), ProvenanceError> {
    if !proof.verify(receipt_leaf(receipt), *root) {
        return Err(ProvenanceError::NotInBatch(*root));
    }
    Ok(())
}

/// Whether `tx` is one the ledger turns into a receipt batch with `root`
/// for `provider`: its `CommitReceipts` of that root, or its `SettleChannel`
/// of a voucher whose `receipts_root` is that root.
pub fn creates_batch(tx: &SignedTransaction, provider: &AccountId, root: &Hash32) -> bool {
    if tx.tx.from != *provider {
        return false;
    }
    match &tx.tx.kind {
        TxKind::CommitReceipts { root: r, .. } => r == root,
        TxKind::SettleChannel { voucher } => voucher.voucher.receipts_root == *root,
        _ => false,
    }
}

/// (d, without the certificate) The block header commits to `tx_ids`, the
/// creating transaction is one of them, is signed, is the provider's and
/// creates a batch with the evidence's root, all on the receipt's chain.
pub fn check_block(e: &OutputEvidence) -> Result<(), ProvenanceError> {
    let header = &e.block.header;
    if tx_root(&e.block.txs) != header.tx_root {
        return Err(ProvenanceError::TxRootMismatch);
    }
    let tx = usize::try_from(e.tx_index)
        .ok()
        .and_then(|i| e.block.txs.get(i))
        .ok_or(ProvenanceError::TxNotInBlock(e.tx_index, header.height))?;
    tx.verify_signature()
        .map_err(|_| ProvenanceError::BadTxSignature)?;
    let provider = e.receipt.receipt.provider;
    if !creates_batch(tx, &provider, &e.root) {
        return Err(ProvenanceError::NotTheBatchTx {
            root: e.root,
            provider,
        });
    }
    let chain = &e.receipt.receipt.chain_id;
    if header.chain_id != *chain || tx.tx.chain_id != *chain {
        return Err(ProvenanceError::ChainMismatch {
            receipt: chain.clone(),
            block: header.chain_id.clone(),
            tx: tx.tx.chain_id.clone(),
        });
    }
    Ok(())
}

/// Checks (a) to (d) short of the certificate: the text, the receipt, its
/// inclusion and the block. The caller checks the certificate against
/// `e.block.header.id()`.
pub fn check_evidence(e: &OutputEvidence, text: &str) -> Result<(), ProvenanceError> {
    check_text(&e.receipt, text)?;
    check_receipt(&e.receipt)?;
    check_inclusion(&e.receipt, &e.root, &e.proof)?;
    check_block(e)
}

/// Position in `txs` of the transaction that created `provider`'s batch with `root`.
pub fn find_batch_tx(
    txs: &[SignedTransaction],
    provider: &AccountId,
    root: &Hash32,
) -> Option<u64> {
    txs.iter()
        .position(|tx| creates_batch(tx, provider, root))
        .map(|i| i as u64)
}
