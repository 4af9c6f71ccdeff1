//! Core agora types shared by every crate: identifiers, amounts, keys and
//! signatures, transactions, blocks, model and provider records, the chain
//! parameters fixed at genesis, and the signed job receipts that providers
//! hand out.
//!
//! Everything that is hashed or signed is encoded with [`borsh`], whose
//! encoding is canonical: one value has exactly one byte string. JSON forms
//! (via `serde`) exist for the RPC and CLI only and are never signed.

pub mod access;
pub mod agent;
pub mod audit;
pub mod block;
pub mod c2pa;
pub mod channel;
pub mod codec;
pub mod data;
pub mod earnings;
pub mod hash;
pub mod job;
pub mod keys;
pub mod merkle;
pub mod network;
pub mod params;
pub mod provenance;
pub mod registry;
pub mod rpc;
pub mod tx;
pub mod weights;

pub use agent::{
    AgentEndpoint, AgentEntry, AgentParams, AgentPayment, AgentProfile, Feedback, LogAnchor,
    Reputation,
};
pub use audit::{Dispute, JobProof, ProviderAudits, ReceiptBatch, ValidationRequest};
pub use block::{Block, BlockHeader};
pub use channel::{channel_id, SignedVoucher, Voucher, VoucherDelivery};
pub use codec::{decode, encode, CodecError};
pub use data::{
    AccessPolicy, AlgorithmEntry, DataJob, DataParams, DataPrices, DataReceipt, DataRunStatus,
    DatasetEntry, SignedDataReceipt,
};
pub use earnings::Earnings;
pub use hash::Hash32;
pub use job::{
    commitments_hash, hash_embeddings, hash_output_text, hash_tokens, ChatMessage, Commitments,
    FinishReason, JobEvent, JobInput, JobRequest, OutputConstraint, OutputTextHasher, Receipt,
    SamplingParams, SignedReceipt, TokenLogprob, TopLogprob, Transcript, Usage,
};
pub use keys::{AccountId, KeyError, Keypair, Signature};
pub use params::{AuditParams, CommitteeParams, Params};
pub use registry::{
    no_owner, royalty_of, ModelEntry, ModelId, Price, ProviderInfo, ROYALTY_PPM_SCALE,
};
pub use tx::{possession_message, SignedTransaction, Transaction, TxKind};
pub use weights::{weights_commitment, MAX_WEIGHTS};

/// Token amounts in base units. The whole supply fits comfortably in 64 bits.
pub type Amount = u64;

/// Block height; genesis state is height 0 and the first block is height 1.
pub type Height = u64;
