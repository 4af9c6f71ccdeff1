//! `agora devnet`: chain (a single BFT validator), one provider with the
//! default model, the audit daemon with a few validator identities, and the
//! gateway in one process, persisted under one data directory; with
//! `--adversary MODE` a second provider cheats beside the honest one.

use std::path::Path;
use std::time::Duration;

use agora_chain::{Timeouts, ValidatorSetup};
use agora_chain_client::ChainClient;
use agora_provider::BatchConfig;
use agora_types::{Keypair, Price, TxKind};
use anyhow::{Context, Result};
use tokio::task::JoinHandle;

use crate::auditors::{start_auditors, AuditorsSetup};
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

/// Stake each devnet audit identity bonds.
pub const AUDITOR_STAKE: u64 = 1_000_000;
/// What the faucet gives a devnet key that holds nothing (e.g. one added
/// after the genesis was written).
const TOP_UP: u64 = 1_000_000_000;

/// Fund `key` from the faucet if its account is empty.
async fn fund(client: &ChainClient, faucet: &Keypair, key: &Keypair) -> Result<()> {
    let account = client.account(&key.account()).await?;
    if account.balance > 0 {
        return Ok(());
    }
    client
        .send_and_wait(
            faucet,
            TxKind::Transfer {
                to: key.account(),
                amount: TOP_UP,
            },
            Duration::from_secs(30),
        )
        .await
        .with_context(|| format!("funding {} from the faucet", key.account()))?;
    Ok(())
}

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
    let cheater_key = keys::load_or_create(&dir.join("cheater").join("provider.key"))?;
    let auditor_keys = (0..args.auditors)
        .map(|i| keys::load_or_create(&dir.join("validator").join(format!("auditor-{i}.key"))))
        .collect::<Result<Vec<_>>>()?;
    let mut params = agora_ledger::Params::default();
    if let Some(rate) = args.audit_rate_ppm {
        params.audit.audit_rate_ppm = rate.min(1_000_000);
    }
    if let Some(tempo) = args.tempo_blocks {
        params.tempo_blocks = tempo;
    }
    let mut funded = vec![
        faucet.account(),
        provider_key.account(),
        cheater_key.account(),
    ];
    funded.extend(auditor_keys.iter().map(|k| k.account()));
    let genesis = genesis::load_or_create_with(&dir.join("genesis.toml"), &funded, params)?;

    // One validator on the BFT engine: the same code path as a localnet, so
    // devnet blocks carry finalization certificates and randomness too.
    keys::load_or_create(&dir.join("dealer.key"))?;
    let validator = ValidatorSetup {
        devnet_seed: crate::node::dealer_seed(&dir.join("dealer.key"))?,
        seat: agora_chain::Seat::Genesis(0),
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
    let batches = BatchConfig {
        max_age: Duration::from_secs(args.batch_secs.max(1)),
        settle_every: Duration::from_secs(args.batch_secs.max(1)),
        ..BatchConfig::default()
    };
    let setup = ProviderSetup {
        data_dir: dir.join("provider"),
        model_path: model_path.clone(),
        model_entry: model_entry.clone(),
        model_name: None,
        chain_url: node.rpc_url.clone(),
        listen: args.provider_http,
        public_url: None,
        price: DEVNET_PRICE,
        stake: DEVNET_STAKE,
        threads: args.threads,
        batches,
        adversary: None,
    };
    let provider = roles::start_provider(setup, shutdown.clone()).await?;
    println!(
        "provider: {} serving {} ({})",
        provider.endpoint, provider.model.name, provider.model.id
    );
    let mut tasks = node.tasks;
    tasks.push(provider.task);
    if let Some(mode) = &args.adversary {
        let adversary = mode.parse().context("--adversary")?;
        let client = ChainClient::new(&node.rpc_url);
        fund(&client, &faucet, &cheater_key).await?;
        let setup = ProviderSetup {
            data_dir: dir.join("cheater"),
            model_path: model_path.clone(),
            model_entry: model_entry.clone(),
            model_name: None,
            chain_url: node.rpc_url.clone(),
            listen: args.cheater_http,
            public_url: None,
            price: DEVNET_PRICE,
            stake: DEVNET_STAKE,
            threads: args.threads,
            batches,
            adversary: Some(adversary),
        };
        let cheater = roles::start_provider(setup, shutdown.clone()).await?;
        println!(
            "cheater: {} (account {}, cheats with --adversary {mode})",
            cheater.endpoint,
            cheater_key.account()
        );
        tasks.push(cheater.task);
    }
    if args.auditors > 0 {
        let client = ChainClient::new(&node.rpc_url);
        for key in &auditor_keys {
            fund(&client, &faucet, key).await?;
        }
        let setup = AuditorsSetup {
            chain_url: node.rpc_url.clone(),
            keys: auditor_keys,
            model_path,
            thresholds: None,
            stake: AUDITOR_STAKE,
            threads: args.threads,
            poll: Duration::from_millis(300),
            fetch_grace_blocks: 50,
        };
        tasks.extend(start_auditors(setup, shutdown.clone()).await?);
        println!("validators: {} auditing", args.auditors);
    }
    // The gateway pays the providers through channels funded by the faucet,
    // so only holders of a client key (DIR/api-keys, made on first start) may spend.
    let (api_keys, client_key) = devnet_api_key(&dir.join("api-keys"))?;
    let payer = roles::PayerSetup {
        key: faucet.clone(),
        deposit: args.channel_deposit,
        api_keys,
    };
    let gateway =
        roles::start_gateway_paying(&node.rpc_url, args.http, Some(payer), shutdown.clone())
            .await?;
    gateway.wait_for_model(&provider.model.name).await?;
    println!("OpenAI base URL: {}/v1", gateway.url);
    println!("model: {}", provider.model.name);
    println!("faucet key: {}", dir.join("faucet.key").display());
    println!("api key: {client_key}");
    println!("agora devnet ready");

    tasks.push(gateway.task);
    join(tasks).await
}

/// The devnet's client keys at `path` (one generated on first start) and
/// the first of them, which the devnet prints.
fn devnet_api_key(path: &Path) -> Result<(agora_gateway::ApiKeys, String)> {
    if !path.exists() {
        let key = agora_gateway::ApiKeys::generate();
        std::fs::write(
            path,
            format!("# client API keys of this devnet's gateway, one per line\n{key}\n"),
        )
        .with_context(|| format!("writing {}", path.display()))?;
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .with_context(|| format!("{} holds no key", path.display()))?
        .to_string();
    Ok((agora_gateway::ApiKeys::load(path)?, first))
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
