//! Why a job could not be run at all (as opposed to a run that failed, which
//! is a [`crate::RunStatus`]).

/// A job the sandbox refused before running any of the algorithm.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The bytes are not a valid WebAssembly module for this sandbox.
    #[error("invalid algorithm module: {0}")]
    InvalidModule(String),
    /// The module does not export a WASI `_start` command entry point.
    #[error("the module exports no `_start` function (build it as a WASI command)")]
    NoEntryPoint,
    /// The module imports something the sandbox does not provide (only WASI preview 1 is).
    #[error("the module imports what the sandbox does not provide: {0}")]
    UnsupportedImport(String),
    /// The dataset directory could not be mounted.
    #[error("cannot mount dataset directory {path}: {reason}")]
    Dataset {
        /// The host directory.
        path: String,
        /// What failed.
        reason: String,
    },
    /// The limits asked for are unusable.
    #[error("invalid limits: {0}")]
    InvalidLimits(String),
}
