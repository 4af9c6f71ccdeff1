//! The validator daemon: audits a random sample of providers' jobs.
//!
//! Providers commit Merkle roots of their signed receipts on chain. Once the
//! block carrying a batch is final, its randomness (which neither the
//! provider nor any single validator could predict) selects a fraction of the
//! batch's jobs and, stake-weighted, the validator that must audit each. The
//! [`Auditor`] fetches each assigned job's transcript from the provider,
//! checks it against the on-chain root, replays it with the claimed model and
//! posts a verdict; a missing transcript past the grace period is a failure.
//! When another validator's verdict opens a dispute and this validator sits on
//! its committee, it re-checks the job and votes. Each epoch it also sets
//! weights over its model's providers by commit-reveal, from their audit records.
//!
//! The daemon talks to the world through three narrow ports
//! ([`AuditChain`], [`TranscriptSource`], [`JobChecker`]) so its logic runs
//! unchanged against doubles in deterministic tests. [`start`] runs the
//! daemon as a role (one auditor per validator key); [`economics`] is the
//! cheater's expected profit under the audit parameters.

mod auditor;
mod chain;
mod daemon;
pub mod economics;
mod http;
mod ports;
mod replay;
mod weights;

pub use auditor::{Auditor, AuditorConfig, AuditorStats};
pub use chain::RpcChain;
pub use daemon::{start, AuditorsSetup};
pub use http::HttpTranscripts;
pub use ports::{
    AuditChain, AuditError, BatchInfo, CheckOutcome, DisputeInfo, FetchError, JobChecker, Judging,
    ProviderScore, RequestedAudit, Served, TranscriptSource,
};
pub use replay::{CheckEngine, EngineChecker};
pub use weights::weights_from_scores;
