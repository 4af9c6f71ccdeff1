//! `agora devnet`: chain (a single BFT validator), one provider with the
//! default model, the audit daemon with a few validator identities, and the
//! gateway in one process, persisted under one data directory, and a data
//! node serving a demo dataset; with `--adversary MODE` a second provider
//! cheats beside the honest one.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agora_chain::{NodeSetup, Timeouts, ValidatorSetup};
use agora_chain_client::ChainClient;
use agora_gateway::{GatewaySetup, PayerSetup};
use agora_provider::{BatchConfig, ProviderSetup};
use agora_tasks::{Context, Failure, Shutdown, Task};
use agora_types::{Keypair, Price, TxKind};
use agora_validator::AuditorsSetup;

use crate::{dealer, default_data_dir, genesis, keys};

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

/// What `agora devnet` runs (its flags).
#[derive(clap::Args, Clone, Debug)]
pub struct DevnetConfig {
    /// Where chain, keys and transcripts persist.
    #[arg(long, env = "AGORA_DATA_DIR", default_value_os_t = default_data_dir("devnet"))]
    pub data_dir: PathBuf,
    /// Gateway listen address (the OpenAI base URL is http://ADDR/v1).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Chain RPC listen address.
    #[arg(long, default_value = "127.0.0.1:26657")]
    pub rpc: SocketAddr,
    /// Provider listen address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub provider_http: SocketAddr,
    /// Consensus p2p listen address of the devnet's single validator.
    #[arg(long, default_value = "127.0.0.1:26656")]
    pub p2p: SocketAddr,
    /// GGUF model to serve (default: SmolLM2-135M-Instruct, fetched if missing).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Inference threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Add a second provider that cheats in MODE (see `agora provider --adversary`).
    #[arg(long, value_name = "MODE")]
    pub adversary: Option<String>,
    /// Listen address of the cheating provider.
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub cheater_http: SocketAddr,
    /// Listen address of the embedding provider (all-MiniLM-L6-v2, for `/v1/embeddings`).
    #[arg(long, default_value = "127.0.0.1:8083")]
    pub embedding_http: SocketAddr,
    /// Start no embedding provider (the devnet then has no `/v1/embeddings` model).
    #[arg(long)]
    pub no_embeddings: bool,
    /// Listen address of the data node (compute-to-data over a demo dataset).
    #[arg(long, default_value = "127.0.0.1:8084")]
    pub data_http: SocketAddr,
    /// Start no data node (the devnet then has no dataset).
    #[arg(long)]
    pub no_data: bool,
    /// Run the example agent: it registers on chain, summarises every
    /// `--agent-blocks` blocks' audits with the model (paying through its own
    /// API key) and logs and anchors every action.
    #[arg(long)]
    pub agent: bool,
    /// Blocks per summary of the example agent.
    #[arg(long, default_value_t = 40)]
    pub agent_blocks: u64,
    /// Validator identities the devnet's audit daemon runs (committees need ≥ 2).
    #[arg(long, default_value_t = 3)]
    pub auditors: usize,
    /// Share of jobs audited, parts per million (only when the genesis is created).
    #[arg(long)]
    pub audit_rate_ppm: Option<u32>,
    /// Seconds after which a provider commits a non-empty receipt batch
    /// (and settles its payment channels' latest vouchers).
    #[arg(long, default_value_t = 10)]
    pub batch_secs: u64,
    /// Blocks per reward epoch (only when the genesis is created; default 360).
    #[arg(long)]
    pub tempo_blocks: Option<u64>,
    /// Escrow of each payment channel the gateway opens (and least top-up).
    #[arg(long, default_value_t = 10_000)]
    pub channel_deposit: u64,
    /// Ignored: devnet blocks come from its single validator (kept for old scripts).
    #[arg(long, default_value_t = 500, hide = true)]
    pub block_ms: u64,
}

/// Fund `key` from the faucet if its account is empty.
pub(crate) async fn fund(
    client: &ChainClient,
    faucet: &Keypair,
    key: &Keypair,
) -> Result<(), Failure> {
    let account = client
        .account(&key.account())
        .await
        .map_err(Failure::other)?;
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

/// Start the devnet; returns its tasks once it is ready (run them until
/// `shutdown` with [`agora_tasks::join`]).
pub async fn start(args: DevnetConfig, shutdown: Shutdown) -> Result<Vec<Task>, Failure> {
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (model_path, model_entry) = match args.model {
        Some(path) => (path, None),
        None => {
            let path = tokio::task::spawn_blocking(|| {
                agora_models::ensure_default_model(&mut std::io::stderr())
            })
            .await?
            .map_err(Failure::other)?;
            (path, Some(agora_models::default_model_entry()))
        }
    };
    let embedding_path = if args.no_embeddings {
        None
    } else {
        let path = tokio::task::spawn_blocking(|| {
            agora_models::ensure_embedding_model(&mut std::io::stderr())
        })
        .await?
        .map_err(Failure::other)?;
        Some(path)
    };
    let faucet = keys::load_or_create(&dir.join("faucet.key"))?;
    let provider_key = keys::load_or_create(&dir.join("provider").join("provider.key"))?;
    let cheater_key = keys::load_or_create(&dir.join("cheater").join("provider.key"))?;
    let auditor_keys = (0..args.auditors)
        .map(|i| keys::load_or_create(&dir.join("validator").join(format!("auditor-{i}.key"))))
        .collect::<Result<Vec<_>, _>>()?;
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

    // One validator on the BFT engine, so devnet blocks carry finalization
    // certificates and randomness too. With no other validator to distrust,
    // its threshold key is dealt from the dealer key (a localnet runs a DKG).
    keys::load_or_create(&dir.join("dealer.key"))?;
    let seat = agora_chain::Seat::Dealt {
        seed: dealer::dealer_seed(&dir.join("dealer.key"))?,
    };
    let validator = ValidatorSetup {
        peers: vec![agora_chain::GenesisPeer {
            key: seat.consensus_key(),
            addr: args.p2p,
        }],
        seat,
        genesis_epoch: None,
        consensus_dir: dir.join("node").join("consensus"),
        timeouts: Timeouts::default(),
    };
    let node = agora_chain::start(
        NodeSetup {
            dir: dir.join("node"),
            key: keys::load_or_create(&dir.join("node").join("node.key"))?,
            genesis,
            rpc: args.rpc,
            block_ms: args.block_ms,
            validator: Some(validator),
        },
        shutdown.clone(),
    )
    .await?;
    println!("chain RPC: {}", node.rpc_url);
    let batches = BatchConfig {
        max_age: Duration::from_secs(args.batch_secs.max(1)),
        settle_every: Duration::from_secs(args.batch_secs.max(1)),
        ..BatchConfig::default()
    };
    // Every devnet provider: this chain, the devnet's price and stake, its
    // threads and batches; each names its own directory, key, address and model.
    let devnet_provider =
        |name: &str, key: Keypair, listen: SocketAddr, model: &Path| ProviderSetup {
            data_dir: dir.join(name),
            key,
            model_path: model.to_path_buf(),
            model_entry: model_entry.clone(),
            model_name: None,
            chain_url: node.rpc_url.clone(),
            listen,
            public_url: None,
            price: DEVNET_PRICE,
            stake: DEVNET_STAKE,
            threads: args.threads,
            batches,
            adversary: None,
            upstream: None,
        };
    let setup = devnet_provider("provider", provider_key, args.provider_http, &model_path);
    let provider = agora_provider::start(setup, shutdown.clone()).await?;
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
            adversary: Some(adversary),
            ..devnet_provider(
                "cheater",
                cheater_key.clone(),
                args.cheater_http,
                &model_path,
            )
        };
        let cheater = agora_provider::start(setup, shutdown.clone()).await?;
        println!(
            "cheater: {} (account {}, cheats with --adversary {mode})",
            cheater.endpoint,
            cheater_key.account()
        );
        tasks.push(cheater.task);
    }
    let mut embedding_model = None;
    if let Some(path) = &embedding_path {
        let key = keys::load_or_create(&dir.join("embedder").join("provider.key"))?;
        fund(&ChainClient::new(&node.rpc_url), &faucet, &key).await?;
        let setup = ProviderSetup {
            model_entry: None,
            model_name: Some(agora_models::EMBEDDING_MODEL_NAME.into()),
            ..devnet_provider("embedder", key, args.embedding_http, path)
        };
        let embedder = agora_provider::start(setup, shutdown.clone()).await?;
        println!(
            "embedding provider: {} serving {} ({})",
            embedder.endpoint, embedder.model.name, embedder.model.id
        );
        embedding_model = Some(embedder.model.name.clone());
        tasks.push(embedder.task);
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
            extra_models: embedding_path.into_iter().collect(),
            thresholds: None,
            stake: AUDITOR_STAKE,
            threads: args.threads,
            poll: Duration::from_millis(300),
            fetch_grace_blocks: 50,
        };
        tasks.extend(agora_validator::start(setup, shutdown.clone()).await?);
        println!("validators: {} auditing", args.auditors);
    }
    if !args.no_data {
        let data_dir = dir.join("data");
        let key = keys::load_or_create(&data_dir.join("provider.key"))?;
        fund(&ChainClient::new(&node.rpc_url), &faucet, &key).await?;
        let (data, dataset) = crate::data_market::start(
            &node.rpc_url,
            &data_dir,
            key,
            &faucet,
            args.data_http,
            DEVNET_STAKE,
            shutdown.clone(),
        )
        .await?;
        println!("data node: {}", data.url);
        println!("data host: {}", data.node.account());
        println!("dataset: {dataset} (csv_stats, quantiles and kmeans allowed)");
        tasks.extend(data.tasks);
    }
    // The gateway pays the providers through channels funded by the faucet,
    // so only holders of a client key (DIR/api-keys, made on first start) may spend.
    let keys_file = dir.join("api-keys");
    let client_keys = agora_gateway::client_keys(&keys_file, true)
        .with_context(|| format!("client API keys in {}", keys_file.display()))?;
    let client_key = client_keys[0].clone();
    let setup = GatewaySetup {
        chain_url: node.rpc_url.clone(),
        listen: args.http,
        payer: Some(PayerSetup {
            data_dir: dir.join("gateway"),
            deposit: args.channel_deposit,
            import: Some(faucet.clone()),
            import_keys: client_keys,
        }),
    };
    let gateway = agora_gateway::start(setup, shutdown.clone()).await?;
    gateway.wait_for_model(&provider.model.name).await?;
    if let Some(name) = &embedding_model {
        gateway.wait_for_model(name).await?;
    }
    println!("OpenAI base URL: {}/v1", gateway.url);
    println!("console: {}/", gateway.url);
    println!("model: {}", provider.model.name);
    if let Some(name) = &embedding_model {
        println!("embedding model: {name}");
    }
    println!("faucet key: {}", dir.join("faucet.key").display());
    println!("api key: {client_key}");
    println!(
        "admin key: {} (for `agora keys`)",
        dir.join("gateway").join("admin-key").display()
    );
    if args.agent {
        let agent = crate::example_agent::start(
            &dir.join("agent"),
            &ChainClient::new(&node.rpc_url),
            &gateway.url,
            &faucet,
            &provider.model,
            args.agent_blocks,
            shutdown.clone(),
        )
        .await?;
        println!("agent: {}", agent.account);
        println!("agent log: {}", agent.log.display());
        tasks.push(agent.task);
    }
    println!("agora devnet ready");

    tasks.push(gateway.task);
    Ok(tasks)
}
