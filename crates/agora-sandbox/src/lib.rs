//! The compute-to-data sandbox: an algorithm is a WebAssembly module (WASI
//! preview 1) that reads a read-only dataset mounted at `/data`, takes its
//! parameters on stdin and writes its result to stdout.
//!
//! [`Sandbox`] runs it in wasmtime with metered fuel, an epoch (wall-clock)
//! deadline, a memory cap and an output cap, with no sockets, no environment,
//! a clock frozen at zero and randomness drawn only from the job's seed. Fuel
//! is counted per WebAssembly instruction and floats are NaN-canonicalised, so
//! a validator re-running a job gets the same output and the same fuel on any
//! machine: [`RunOutcome`] is what a run receipt commits to.

mod determinism;
mod error;
mod examples;
mod limits;
mod outcome;
mod sandbox;

pub use error::SandboxError;
pub use examples::{example, Example, EXAMPLES};
pub use limits::Limits;
pub use outcome::{RunOutcome, RunStatus};
pub use sandbox::{Algorithm, CpuFeatures, Sandbox};

/// Where the dataset is mounted inside the sandbox.
pub const DATA_MOUNT: &str = "/data";

/// Content id of an algorithm module: the BLAKE3 hash of its bytes (the same
/// id the blob store gives the file).
pub fn algorithm_id(wasm: &[u8]) -> [u8; 32] {
    *blake3::hash(wasm).as_bytes()
}
