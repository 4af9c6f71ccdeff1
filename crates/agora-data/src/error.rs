//! What can go wrong serving, buying or auditing a data job.

use agora_types::Hash32;

/// A data job request or audit that could not go ahead.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The chain has no open job with this id (never opened, settled or cancelled).
    #[error("no open data job {0} on chain")]
    UnknownJob(Hash32),
    /// The job names another host.
    #[error("data job {0} is for another host")]
    NotMyJob(Hash32),
    /// This node does not hold the job's dataset.
    #[error("this node does not host dataset {0}")]
    DatasetNotHere(Hash32),
    /// The parameters sent do not hash to what the buyer committed on chain.
    #[error("the parameters do not match the job's params_hash")]
    ParamsMismatch,
    /// The module bytes do not hash to the job's algorithm id, or none were sent
    /// and the node does not have it.
    #[error("algorithm module {0}: {1}")]
    Module(Hash32, String),
    /// The same job is being run already.
    #[error("data job {0} is already running")]
    Busy(Hash32),
    /// No result is kept for this job (never run here, or past retention).
    #[error("no result kept for data job {0}")]
    NoResult(Hash32),
    /// The request's signature is missing, expired or not the right account's.
    #[error("access denied: {0}")]
    Denied(String),
    /// The sandbox refused to run the job at all.
    #[error(transparent)]
    Sandbox(#[from] agora_sandbox::SandboxError),
    /// The blob store failed.
    #[error(transparent)]
    Blobs(#[from] agora_blobs::BlobError),
    /// The chain could not be read or written.
    #[error("chain: {0}")]
    Chain(#[from] agora_chain_client::ClientError),
    /// A peer (host or client) answered with an error or garbage.
    #[error("{0}")]
    Remote(String),
    /// Inputs fetched for an audit do not hash to what the chain records.
    #[error("audit inputs do not verify: {0}")]
    Unverified(String),
    /// Local files.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
