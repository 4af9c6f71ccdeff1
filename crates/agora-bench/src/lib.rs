//! The benchmarks behind `agora bench`: each runs against a model file or a
//! running network and prints a table (or JSON). [`gateway`] times streamed
//! completions through a gateway, and [`overhead`] what the gateway adds to
//! each request against an instant provider (and another proxy's, for
//! comparison); [`infer`] compares the engine with a
//! minimal llama.cpp loop; [`chain`] measures finality latency and load;
//! [`verify`] measures audit detection per adversary and the cheater's
//! expected profit; [`blob`] times the blob store against b3sum and plain HTTP; [`data`] times
//! the compute-to-data sandbox against native code; [`soak`] runs a whole network with honest and cheating
//! providers side by side and reads slashes and earnings from the chain. [`verify_command`] is `agora verify`: threshold
//! calibration (a table too) and checking one transcript.

mod args;
pub mod blob;
pub mod chain;
pub mod data;
mod error;
pub mod gateway;
pub mod infer;
mod node;
pub mod overhead;
pub mod soak;
pub mod verify;
pub mod verify_command;

pub use args::{
    BenchCommand, BlobArgs, ChainArgs, DataArgs, GatewayArgs, InferArgs, SoakArgs, VerifyArgs,
};
pub use error::{BenchError, Result};
pub use verify_command::{run_verify, VerifyCalibrateArgs, VerifyCheckArgs, VerifyCommand};

/// Run one `agora bench` subcommand; the blocking ones on a blocking thread.
pub async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Gateway(args) => gateway::run(args).await,
        BenchCommand::Chain(args) => chain::run(args).await,
        BenchCommand::Infer(args) => tokio::task::spawn_blocking(move || infer::run(args)).await?,
        BenchCommand::Soak(args) => soak::run(args).await,
        BenchCommand::Blob(args) => blob::run(args).await,
        BenchCommand::Data(args) => data::run(args).await,
        BenchCommand::Verify(args) => {
            tokio::task::spawn_blocking(move || verify::run(args)).await?
        }
    }
}
