//! The provider: runs jobs on an [`agora_engine::InferenceEngine`], streams
//! the output, signs a receipt for every job and keeps its transcript so an
//! auditor can replay it later, and commits the receipts in Merkle batches on
//! chain. It takes payment channel vouchers and settles them on chain. It
//! registers itself on the chain at start. [`adversary`] holds the
//! built-in cheating modes that test verification.

mod access;
pub mod adversary;
mod batches;
mod error;
mod register;
mod service;
mod transcripts;
mod vouchers;

pub use access::{AuditGate, ChainAuditGate, GateFuture};
pub use adversary::{AdversarialEngine, Adversary, AdversaryError};
pub use batches::{BatchCommitter, BatchConfig, SealedBatch};
pub use error::ProviderError;
pub use register::register_on_chain;
pub use service::Provider;
pub use transcripts::TranscriptStore;
pub use vouchers::{
    check_voucher, ChannelLookup, HeldVoucher, LookupFuture, VoucherError, VoucherSettler,
};
