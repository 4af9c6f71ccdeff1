//! The role subcommands: each turns its flags into its role crate's setup,
//! starts it with the process's shutdown signal, prints where it listens,
//! and runs its tasks until Ctrl-C or SIGTERM.

use std::time::Duration;

use agora_chain::{NodeSetup, Seat, Timeouts, ValidatorSetup};
use agora_devnet::{dealer, genesis, keys, DevnetConfig, LocalnetConfig};
use agora_gateway::{GatewaySetup, PayerSetup};
use agora_provider::{ProviderSetup, UpstreamSetup};
use agora_tasks::{join, Shutdown};
use agora_types::Price;
use agora_validator::AuditorsSetup;
use anyhow::{bail, Context, Result};

use crate::cli::{GatewayArgs, NodeArgs, ProviderArgs, ValidatorArgs};

/// `agora devnet`.
pub async fn devnet(config: DevnetConfig) -> Result<()> {
    let tasks = agora_devnet::devnet::start(config, Shutdown::on_signals()).await?;
    Ok(join(tasks).await?)
}

/// `agora localnet`.
pub async fn localnet(config: LocalnetConfig) -> Result<()> {
    Ok(agora_devnet::localnet::run(config, Shutdown::on_signals()).await?)
}

/// `agora node`: the single-node producer, or one validator of a BFT set.
pub async fn node(args: NodeArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let validator = validator_setup(&args)?;
    if let Some(v) = &validator {
        println!(
            "consensus identity: {}",
            dealer::identity_hex(v.devnet_seed, v.peers.len())?
        );
        println!(
            "consensus key: {}",
            hex::encode(v.seat.consensus_key(v.devnet_seed))
        );
    }
    let genesis = match (&args.genesis, &validator) {
        (Some(path), _) => genesis::load_or_create(path, &[])?,
        (None, Some(_)) => bail!("validators must share one genesis: pass --genesis FILE"),
        (None, None) => {
            let faucet = keys::load_or_create(&args.data_dir.join("faucet.key"))?;
            println!("faucet key: {}", args.data_dir.join("faucet.key").display());
            genesis::load_or_create(&args.data_dir.join("genesis.toml"), &[faucet.account()])?
        }
    };
    let setup = NodeSetup {
        key: keys::load_or_create(&args.data_dir.join("node.key"))?,
        dir: args.data_dir,
        genesis,
        rpc: args.rpc,
        block_ms: args.block_ms,
        validator,
    };
    let node = agora_chain::start(setup, shutdown).await?;
    println!("chain RPC: {}", node.rpc_url);
    println!("agora node ready");
    Ok(join(node.tasks).await?)
}

/// The validator setup `--validators` asks for, if any.
fn validator_setup(args: &NodeArgs) -> Result<Option<ValidatorSetup>> {
    if args.validators.is_empty() {
        return Ok(None);
    }
    let dealer = args
        .dealer_key
        .as_deref()
        .context("a validator needs --dealer-key (the key its threshold share is dealt from)")?;
    let seat = match (&args.join_key, args.p2p_listen) {
        (Some(path), Some(listen)) => Seat::Joiner {
            key_seed: keys::load_or_create(path)?.seed(),
            listen,
        },
        (Some(_), None) => bail!("--join-key needs --p2p-listen (the address peers dial)"),
        (None, _) => Seat::Genesis(args.validator_index),
    };
    if matches!(seat, Seat::Genesis(i) if i >= args.validators.len()) {
        bail!(
            "--validator-index {} is outside the {} addresses of --validators",
            args.validator_index,
            args.validators.len()
        );
    }
    Ok(Some(ValidatorSetup {
        devnet_seed: dealer::dealer_seed(dealer)?,
        seat,
        peers: args.validators.clone(),
        consensus_dir: args.data_dir.join("consensus"),
        timeouts: Timeouts::default(),
    }))
}

/// `agora provider`.
pub async fn provider(args: ProviderArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    let setup = ProviderSetup {
        key: keys::load_or_create(&args.data_dir.join("provider.key"))?,
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
            max_age: Duration::from_secs(args.batch_secs),
            settle_every: Duration::from_secs(args.settle_secs.max(1)),
            ..agora_provider::BatchConfig::default()
        },
        adversary: args
            .adversary
            .map(|m| m.parse())
            .transpose()
            .context("--adversary")?,
        upstream: args.upstream.map(|url| UpstreamSetup {
            url,
            model: args.upstream_model,
            api_key: args.upstream_api_key,
        }),
    };
    let provider = agora_provider::start(setup, shutdown).await?;
    println!(
        "provider: {} serving {} ({})",
        provider.endpoint, provider.model.name, provider.model.id
    );
    println!("agora provider ready");
    Ok(join(vec![provider.task]).await?)
}

/// `agora gateway`.
pub async fn gateway(args: GatewayArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    let payer = match &args.payer_key {
        Some(path) => Some(PayerSetup {
            key: keys::load(path)?,
            deposit: args.channel_deposit,
            api_keys: match &args.api_keys {
                Some(file) => agora_gateway::ApiKeys::load(file)?,
                None => anyhow::bail!("--payer-key needs --api-keys FILE"),
            },
        }),
        None => None,
    };
    let setup = GatewaySetup {
        chain_url: args.chain,
        listen: args.http,
        payer,
    };
    let gateway = agora_gateway::start(setup, shutdown).await?;
    println!("OpenAI base URL: {}/v1", gateway.url);
    println!("agora gateway ready");
    Ok(join(vec![gateway.task]).await?)
}

/// `agora validator`: audit with this data directory's key until Ctrl-C or SIGTERM.
pub async fn validator(args: ValidatorArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    let key = keys::load_or_create(&args.data_dir.join("validator.key"))?;
    println!("validator account: {}", key.account());
    let model_path = match args.model {
        Some(path) => path,
        None => {
            tokio::task::spawn_blocking(|| {
                agora_models::ensure_default_model(&mut std::io::stderr())
            })
            .await??
        }
    };
    let setup = AuditorsSetup {
        chain_url: args.chain,
        keys: vec![key],
        model_path,
        thresholds: args.thresholds,
        stake: args.stake,
        threads: args.threads,
        poll: Duration::from_millis(args.poll_ms.max(50)),
        fetch_grace_blocks: args.fetch_grace_blocks,
    };
    let tasks = agora_validator::start(setup, shutdown).await?;
    println!("agora validator auditing");
    Ok(join(tasks).await?)
}
