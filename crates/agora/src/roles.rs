//! The role subcommands: each turns its flags into its role crate's setup,
//! starts it with the process's shutdown signal, prints where it listens,
//! and runs its tasks until Ctrl-C or SIGTERM.

use std::time::Duration;

use agora_chain::{GenesisPeer, NodeSetup, Seat, Timeouts, ValidatorSetup};
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
        match &v.seat {
            Seat::Dealt { seed } => {
                println!("consensus identity: {}", dealer::identity_hex(*seed)?)
            }
            Seat::Genesis { .. } => println!(
                "consensus identity: {} (written after the genesis DKG)",
                v.consensus_dir.join(agora_chain::IDENTITY_FILE).display()
            ),
            Seat::Joiner { .. } => {}
        }
        println!("consensus key: {}", hex::encode(v.seat.consensus_key()));
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
    let entries = args
        .validators
        .iter()
        .map(|entry| parse_validator(entry))
        .collect::<Result<Vec<_>>>()?;
    let seat = match (&args.join_key, args.p2p_listen, &args.dealer_key) {
        (Some(path), Some(listen), _) => Seat::Joiner {
            key_seed: keys::load_or_create(path)?.seed(),
            listen,
        },
        (Some(_), None, _) => bail!("--join-key needs --p2p-listen (the address peers dial)"),
        (None, _, Some(dealer)) => {
            if entries.len() != 1 {
                bail!(
                    "--dealer-key deals a single-validator devnet only; {} validators run \
                     the genesis DKG (give each --validators entry as KEY@ADDR instead)",
                    entries.len()
                );
            }
            Seat::Dealt {
                seed: dealer::dealer_seed(dealer)?,
            }
        }
        (None, _, None) => {
            let path = args
                .validator_key
                .clone()
                .unwrap_or_else(|| args.data_dir.join("consensus.key"));
            Seat::Genesis {
                key_seed: keys::load_or_create(&path)?.seed(),
            }
        }
    };
    let peers = entries
        .into_iter()
        .map(|(key, addr)| match (key, &seat) {
            (Some(key), _) => Ok(GenesisPeer { key, addr }),
            (None, Seat::Dealt { .. }) => Ok(GenesisPeer {
                key: seat.consensus_key(),
                addr,
            }),
            (None, _) => bail!("--validators entry {addr} needs its identity key: KEY@{addr}"),
        })
        .collect::<Result<Vec<_>>>()?;
    if let Seat::Genesis { .. } = seat {
        let mine = seat.consensus_key();
        if !peers.iter().any(|p| p.key == mine) {
            bail!(
                "this validator's key {} is not in --validators",
                hex::encode(mine)
            );
        }
    }
    let genesis_epoch = match (&seat, &args.genesis_epoch) {
        // Before the genesis DKG the file does not exist yet.
        (Seat::Genesis { .. }, Some(path)) if !path.exists() => None,
        (Seat::Joiner { .. } | Seat::Genesis { .. }, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(
                hex::decode(text.trim())
                    .with_context(|| format!("{} is not hex", path.display()))?,
            )
        }
        (Seat::Joiner { .. }, None) => bail!("--join-key needs --genesis-epoch FILE"),
        _ => None,
    };
    Ok(Some(ValidatorSetup {
        seat,
        peers,
        genesis_epoch,
        consensus_dir: args.data_dir.join("consensus"),
        timeouts: Timeouts::default(),
    }))
}

/// One `--validators` entry: `KEY@IP:PORT` or a bare `IP:PORT`.
fn parse_validator(entry: &str) -> Result<(Option<[u8; 32]>, std::net::SocketAddr)> {
    let (key, addr) = match entry.split_once('@') {
        Some((key, addr)) => {
            let bytes = hex::decode(key.trim())
                .with_context(|| format!("validator key {key} is not hex"))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("validator key {key} is not 32 bytes"))?;
            (Some(key), addr)
        }
        None => (None, entry),
    };
    let addr = addr
        .trim()
        .parse()
        .with_context(|| format!("validator address {addr} is not IP:PORT"))?;
    Ok((key, addr))
}

/// `agora provider`.
pub async fn provider(args: ProviderArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    let (model_path, model_entry) = match (&args.model, &args.model_id) {
        (Some(path), _) => (path.clone(), None),
        (None, Some(id)) => {
            let (path, entry) =
                crate::blob::model_from_peers(id, &args.chain, &args.data_dir).await?;
            (path, Some(entry))
        }
        (None, None) => anyhow::bail!("give --model PATH or --model-id ID"),
    };
    let setup = ProviderSetup {
        key: keys::load_or_create(&args.data_dir.join("provider.key"))?,
        data_dir: args.data_dir,
        model_path,
        model_entry,
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
    let payer = match &args.data_dir {
        Some(dir) => Some(PayerSetup {
            data_dir: dir.clone(),
            deposit: args.channel_deposit,
            import: args.payer_key.as_deref().map(keys::load).transpose()?,
            import_keys: match &args.api_keys {
                Some(file) => agora_gateway::client_keys(file, false)
                    .with_context(|| format!("client keys in {}", file.display()))?,
                None => Vec::new(),
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
    println!("console: {}/", gateway.url);
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
        extra_models: args.also_models,
        thresholds: args.thresholds,
        stake: args.stake,
        threads: args.threads,
        poll: Duration::from_millis(args.poll_ms.max(50)),
        fetch_grace_blocks: args.fetch_grace_blocks,
    };
    let tasks = agora_validator::start(setup, shutdown).await?;
    println!("agora validator ready: auditing");
    Ok(join(tasks).await?)
}
