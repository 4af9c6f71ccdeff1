//! The data market's services (compute-to-data).
//!
//! - [`DataNode`] runs on the data owner's side: it takes a buyer's paid job
//!   (opened on chain), runs the approved WebAssembly algorithm over the
//!   dataset in the [`agora_sandbox`], answers with the output and a signed
//!   run receipt, keeps both for a retention period, and settles receipts
//!   on chain in batches. The dataset itself is served to nobody but the
//!   validators the chain drew to re-run one of its jobs.
//! - [`DataClient`] is the buyer's and the validator's side of its HTTP API.
//! - [`DataAuditor`] is the validator's loop: for every data job the chain
//!   drew for it, fetch the job's inputs from its host over a signed
//!   request, re-run it, and post whether output hash and fuel match
//!   exactly; vote on data disputes the same way.

mod access;
mod auditor;
mod client;
mod error;
mod http;
mod node;
mod shelf;
mod start;

pub use access::{AccessGrant, Purpose, ACCESS_TTL_MS};
pub use auditor::{rerun, DataAuditor, DataAuditorStats, Rerun};
pub use client::{AuditInputs, DataClient};
pub use error::DataError;
pub use http::{router, JobResponse, RunRequest};
pub use node::{DataNode, DataNodeConfig, JobRecord, Tamper};
pub use shelf::{dataset_id_of_dir, Shelf};
pub use start::{start, DataNodeHandle, DataNodeSetup};

/// Turn the sandbox's run status into the receipt's.
pub fn receipt_status(status: agora_sandbox::RunStatus) -> agora_types::DataRunStatus {
    use agora_sandbox::RunStatus as S;
    use agora_types::DataRunStatus as D;
    match status {
        S::Success => D::Success,
        S::Exit(code) => D::Exit(code),
        S::Trap => D::Trap,
        S::OutOfFuel => D::OutOfFuel,
        S::MemoryExceeded => D::MemoryExceeded,
        S::OutputTooLarge => D::OutputTooLarge,
        S::DeadlineExceeded => D::DeadlineExceeded,
    }
}
