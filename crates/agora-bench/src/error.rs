//! Why a benchmark stopped.

use agora_tasks::Failure;

/// A benchmark's failure: one of the errors of what it drives, or a
/// [`Failure`] that says what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// What the benchmark was doing, and why it failed.
    #[error(transparent)]
    Failure(#[from] Failure),
    /// The chain RPC failed.
    #[error(transparent)]
    Chain(#[from] agora_chain_client::ClientError),
    /// The inference engine failed.
    #[error(transparent)]
    Engine(#[from] agora_engine::EngineError),
    /// The replay check failed.
    #[error(transparent)]
    Verify(#[from] agora_verify::VerifyError),
    /// An honest calibration job failed.
    #[error(transparent)]
    Calibration(#[from] agora_verify::calibrate::CalibrationError),
    /// A threshold book could not be read or written.
    #[error(transparent)]
    Book(#[from] agora_verify::BookError),
    /// An adversary mode did not parse.
    #[error(transparent)]
    Adversary(#[from] agora_provider::AdversaryError),
    /// Encoding a commitment failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The model cache failed.
    #[error(transparent)]
    Model(#[from] agora_models::ModelError),
    /// An HTTP request failed.
    #[error(transparent)]
    Http(#[from] reqwest::Error),
    /// JSON could not be read or written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A benchmark task panicked or was cancelled.
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
}

/// A benchmark's result.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
