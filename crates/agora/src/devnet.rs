//! `agora devnet`: chain (a single BFT validator), one provider with the
//! default model, and gateway in one process, persisted under one data directory.

use agora_chain::{Timeouts, ValidatorSetup};
use agora_types::Price;
use anyhow::{Context, Result};
use tokio::task::JoinHandle;

use crate::cli::DevnetArgs;
use crate::roles::{self, ProviderSetup};
use crate::shutdown::Shutdown;
use crate::{genesis, keys};

/// Collateral the devnet provider locks.
pub const DEVNET_STAKE: u64 = 1_000_000;
/// Devnet provider's price per 1k tokens.
pub const DEVNET_PRICE: Price = Price {
    input_per_1k: 10,
    output_per_1k: 20,
};

/// Run the devnet until Ctrl-C or SIGTERM.
pub async fn run(args: DevnetArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (model_path, model_entry) = match args.model {
        Some(path) => (path, None),
        None => {
            let path = tokio::task::spawn_blocking(|| {
                agora_models::ensure_default_model(&mut std::io::stderr())
            })
            .await??;
            (path, Some(genesis::default_model_entry()))
        }
    };
    let faucet = keys::load_or_create(&dir.join("faucet.key"))?;
    let provider_key = keys::load_or_create(&dir.join("provider").join("provider.key"))?;
    let genesis = genesis::load_or_create(
        &dir.join("genesis.toml"),
        &[faucet.account(), provider_key.account()],
    )?;

    // One validator on the BFT engine: the same code path as a localnet, so
    // devnet blocks carry finalization certificates and randomness too.
    keys::load_or_create(&dir.join("dealer.key"))?;
    let validator = ValidatorSetup {
        devnet_seed: crate::node::dealer_seed(&dir.join("dealer.key"))?,
        index: 0,
        peers: vec![args.p2p],
        consensus_dir: dir.join("node").join("consensus"),
        timeouts: Timeouts::default(),
    };
    let node = roles::start_node(
        &dir.join("node"),
        &genesis,
        args.rpc,
        args.block_ms,
        Some(validator),
        shutdown.clone(),
    )
    .await?;
    println!("chain RPC: {}", node.rpc_url);
    let setup = ProviderSetup {
        data_dir: dir.join("provider"),
        model_path,
        model_entry,
        model_name: None,
        chain_url: node.rpc_url.clone(),
        listen: args.provider_http,
        public_url: None,
        price: DEVNET_PRICE,
        stake: DEVNET_STAKE,
        threads: args.threads,
        batches: Default::default(),
        adversary: None,
    };
    let provider = roles::start_provider(setup, shutdown.clone()).await?;
    println!(
        "provider: {} serving {} ({})",
        provider.endpoint, provider.model.name, provider.model.id
    );
    let gateway = roles::start_gateway(&node.rpc_url, args.http, shutdown.clone()).await?;
    gateway.wait_for_model(&provider.model.name).await?;
    println!("OpenAI base URL: {}/v1", gateway.url);
    println!("model: {}", provider.model.name);
    println!("faucet key: {}", dir.join("faucet.key").display());
    println!("agora devnet ready");

    let mut tasks = node.tasks;
    tasks.push(provider.task);
    tasks.push(gateway.task);
    join(tasks).await
}

/// Wait for every task to end; the first failure ends the wait (and the
/// process) at once, so a dead server never leaves the others running alone.
pub async fn join(mut tasks: Vec<JoinHandle<Result<()>>>) -> Result<()> {
    while !tasks.is_empty() {
        let (outcome, _, rest) = futures::future::select_all(tasks).await;
        outcome.context("task panicked")??;
        tasks = rest;
    }
    Ok(())
}
