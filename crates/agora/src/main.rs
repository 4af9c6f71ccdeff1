//! The `agora` binary: parses the command line and starts the chosen role
//! (each role is a library crate) or runs the chosen wallet command.

mod agent;
mod api_keys;
mod blob;
mod channel;
mod cli;
mod data;
mod publish;
mod roles;
mod send;
mod stake;
mod status;
mod verify;
mod wallet;

use anyhow::Result;
use clap::Parser;

use cli::{Cli, Command, LogFormat, ModelCommand};

fn main() -> Result<()> {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            // llama.cpp reports every tensor at info level; keep its warnings only by default.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,llama-cpp-2=warn,llama_cpp_2=warn".into()),
        );
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Devnet(args) => roles::devnet(args).await,
        Command::Node(args) => roles::node(args).await,
        Command::Localnet(args) => roles::localnet(args).await,
        Command::Provider(args) => roles::provider(args).await,
        Command::Gateway(args) => roles::gateway(args).await,
        Command::Validator(args) => roles::validator(args).await,
        Command::Status(args) => status::run(&args.rpc, args.json).await,
        Command::Transfer(args) => wallet::transfer(args).await,
        Command::Wallet(command) => wallet::run(command).await,
        Command::Stake(args) => stake::stake(args).await,
        Command::Unstake(args) => stake::unstake(args).await,
        Command::Delegate(args) => stake::delegate(args).await,
        Command::Announce(args) => stake::announce(args).await,
        Command::Channel(command) => channel::run(command).await,
        Command::Keys(command) => api_keys::run(command).await,
        Command::Blob(command) => blob::run(command).await,
        Command::Data(command) => data::run(command).await,
        Command::Agent(command) => agent::run(command).await,
        Command::Model(ModelCommand::Fetch {
            substitute,
            embedding,
        }) => {
            let path = if embedding {
                agora_models::ensure_embedding_model(&mut std::io::stderr())?
            } else if substitute {
                agora_models::ensure_substitute_model(&mut std::io::stderr())?
            } else {
                agora_models::ensure_default_model(&mut std::io::stderr())?
            };
            println!("{}", path.display());
            Ok(())
        }
        Command::Model(ModelCommand::Publish(args)) => publish::run(args).await,
        Command::Model(ModelCommand::Id { path }) => {
            println!("{}", agora_models::model_id(&path)?);
            Ok(())
        }
        Command::Bench(command) => Ok(agora_bench::run(command).await?),
        Command::Verify(command) => verify::run(command).await,
    }
}
