//! The provider: runs jobs on an [`agora_engine::InferenceEngine`], streams
//! the output, signs a receipt for every job and keeps its transcript so an
//! auditor can replay it later, and commits the receipts in Merkle batches on
//! chain. It takes payment channel vouchers and settles them on chain. It
//! registers itself on the chain at start ([`start`], which also refuses an
//! adversary outside development chains). [`adversary`] holds the
//! built-in cheating modes that test verification.

mod access;
pub mod adversary;
mod batches;
mod error;
mod guard;
mod metrics;
mod paid;
mod prune;
mod receipts;
mod register;
mod served;
mod service;
mod start;
mod transcripts;
mod vouchers;

pub use access::{AuditGate, ChainAuditGate, GateFuture};
pub use adversary::{AdversarialEngine, Adversary, AdversaryError};
pub use batches::{BatchCommitter, BatchConfig, SealedBatch};
pub use error::ProviderError;
pub use guard::ensure_development_chain;
pub use metrics::ProviderMetrics;
pub use paid::{PaidRoot, MAX_JOBS_PER_SETTLEMENT};
pub use prune::{prunable_through, Pruned};
pub use register::register_on_chain;
pub use served::UpstreamSetup;
pub use service::Provider;
pub use start::{serve_limits, start, ProviderHandle, ProviderSetup};
pub use transcripts::{CommitPath, TranscriptStore};
pub use vouchers::{
    check_voucher, ChannelLookup, HeldVoucher, LookupFuture, VoucherError, VoucherSettler,
};
