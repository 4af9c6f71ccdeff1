//! The `agora` binary: parses the command line and starts the chosen role.

mod auditors;
mod bench;
mod bench_chain;
mod bench_infer;
mod bench_verify;
mod channel;
mod cli;
mod devnet;
mod directory;
mod economics;
mod genesis;
mod keys;
mod localnet;
mod node;
mod roles;
mod shutdown;
mod stake;
mod status;
mod verify;
mod wallet;

use std::time::Duration;

use agora_chain_client::ChainClient;
use agora_types::{AccountId, Price, TxKind};
use anyhow::{Context, Result};
use clap::Parser;

use cli::{BenchCommand, Cli, Command, ModelCommand};
use shutdown::Shutdown;

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            // llama.cpp reports every tensor at info level; keep its warnings only by default.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,llama-cpp-2=warn,llama_cpp_2=warn".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Devnet(args) => devnet::run(args).await,
        Command::Node(args) => node::run(args).await,
        Command::Localnet(args) => localnet::run(args).await,
        Command::Provider(args) => {
            let shutdown = Shutdown::on_signals();
            let setup = roles::ProviderSetup {
                data_dir: args.data_dir,
                model_path: args.model,
                model_entry: None,
                model_name: args.model_name,
                chain_url: args.chain,
                listen: args.http,
                public_url: args.public_url,
                price: Price {
                    input_per_1k: args.price_in,
                    output_per_1k: args.price_out,
                },
                stake: args.stake,
                threads: args.threads,
                batches: agora_provider::BatchConfig {
                    max_jobs: args.batch_jobs.max(1),
                    max_age: std::time::Duration::from_secs(args.batch_secs),
                    settle_every: std::time::Duration::from_secs(args.settle_secs.max(1)),
                },
                adversary: args
                    .adversary
                    .map(|m| m.parse())
                    .transpose()
                    .context("--adversary")?,
            };
            let upstream = args.upstream.map(|url| roles::UpstreamSetup {
                url,
                model: args.upstream_model,
                api_key: args.upstream_api_key,
            });
            let provider = roles::start_provider_with(setup, upstream, shutdown).await?;
            println!(
                "provider: {} serving {} ({})",
                provider.endpoint, provider.model.name, provider.model.id
            );
            println!("agora provider ready");
            devnet::join(vec![provider.task]).await
        }
        Command::Gateway(args) => {
            let shutdown = Shutdown::on_signals();
            let payer = match &args.payer_key {
                Some(path) => Some(roles::PayerSetup {
                    key: keys::load(path)?,
                    deposit: args.channel_deposit,
                    api_keys: match &args.api_keys {
                        Some(file) => agora_gateway::ApiKeys::load(file)?,
                        None => anyhow::bail!("--payer-key needs --api-keys FILE"),
                    },
                }),
                None => None,
            };
            let gateway =
                roles::start_gateway_paying(&args.chain, args.http, payer, shutdown).await?;
            println!("OpenAI base URL: {}/v1", gateway.url);
            println!("agora gateway ready");
            devnet::join(vec![gateway.task]).await
        }
        Command::Status(args) => status::run(&args.rpc, args.json).await,
        Command::Transfer(args) => {
            let key = keys::load(&args.key)?;
            let to: AccountId = args
                .to
                .parse()
                .context("--to is not an account id (64 hex characters)")?;
            let chain = ChainClient::new(&args.rpc);
            let kind = TxKind::Transfer {
                to,
                amount: args.amount,
            };
            let height = chain
                .send_and_wait(&key, kind, Duration::from_secs(60))
                .await?;
            println!("transferred {} to {to} in block {height}", args.amount);
            Ok(())
        }
        Command::Wallet(command) => wallet::run(command).await,
        Command::Stake(args) => stake::stake(args).await,
        Command::Unstake(args) => stake::unstake(args).await,
        Command::Delegate(args) => stake::delegate(args).await,
        Command::Announce(args) => stake::announce(args).await,
        Command::Channel(command) => channel::run(command).await,
        Command::Model(ModelCommand::Fetch { substitute }) => {
            let path = if substitute {
                agora_models::ensure_substitute_model(&mut std::io::stderr())?
            } else {
                agora_models::ensure_default_model(&mut std::io::stderr())?
            };
            println!("{}", path.display());
            Ok(())
        }
        Command::Bench(BenchCommand::Gateway(args)) => bench::run(args).await,
        Command::Bench(BenchCommand::Chain(args)) => bench_chain::run(args).await,
        Command::Bench(BenchCommand::Infer(args)) => {
            tokio::task::spawn_blocking(move || bench_infer::run(args)).await?
        }
        Command::Bench(BenchCommand::Verify(args)) => {
            tokio::task::spawn_blocking(move || bench_verify::run(args)).await?
        }
        Command::Validator(args) => auditors::run(args).await,
        Command::Verify(command) => {
            tokio::task::spawn_blocking(move || verify::run(command)).await?
        }
        Command::Model(ModelCommand::Id { path }) => {
            println!("{}", agora_models::model_id(&path)?);
            Ok(())
        }
    }
}
