//! Starting each role: chain node, provider, gateway. `agora devnet` starts
//! all three in one process; the role subcommands start one each.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agora_chain::{spawn_validator, ChainConfig, Node, ValidatorSetup};
use agora_chain_client::ChainClient;
use agora_engine::{InferenceEngine, LlamaEngine, LlamaEngineConfig};
use agora_gateway::{ApiKeys, ChainFunding, Gateway, GatewayConfig, Payer, PayerConfig};
use agora_ledger::Genesis;
use agora_provider::{
    register_on_chain, AdversarialEngine, Adversary, BatchCommitter, BatchConfig, ChainAuditGate,
    Provider, TranscriptStore, VoucherSettler,
};
use agora_types::{Amount, Keypair, ModelEntry, Price};
use agora_upstream::{UpstreamConfig, UpstreamEngine};
use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::directory::ChainDirectory;
use crate::{keys, shutdown::Shutdown};

/// Bind a listener with a readable error.
pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for the {what}"))
}

/// A started chain node: its RPC URL and the tasks to await on shutdown.
pub struct NodeHandle {
    /// Base URL of the RPC.
    pub rpc_url: String,
    /// Block production and RPC server tasks.
    pub tasks: Vec<JoinHandle<Result<()>>>,
}

/// Open the chain under `dir` and start the RPC. Blocks come from the
/// single-node producer, or, with `validator`, from the BFT engine.
pub async fn start_node(
    dir: &Path,
    genesis: &Genesis,
    rpc: SocketAddr,
    block_ms: u64,
    validator: Option<ValidatorSetup>,
    shutdown: Shutdown,
) -> Result<NodeHandle> {
    let key = keys::load_or_create(&dir.join("node.key"))?;
    let config = ChainConfig {
        block_interval: Duration::from_millis(block_ms.max(1)),
        ..ChainConfig::default()
    };
    let node =
        Node::open(&dir.join("chain"), genesis, key, config).context("opening the chain store")?;
    let listener = bind(rpc, "chain RPC").await?;
    let rpc_url = format!("http://{}", listener.local_addr()?);
    let router = node.router();
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.wait())
            .await
            .context("chain RPC server")
    });
    let blocks = match validator {
        None => {
            tokio::spawn(async move { node.run(shutdown.wait()).await.context("block production") })
        }
        Some(setup) => {
            let seat = setup.seat.clone();
            let thread = spawn_validator(node, genesis.clone(), setup, shutdown.wait())?;
            tokio::task::spawn_blocking(move || {
                thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("validator {seat:?} panicked"))?
                    .context("consensus")
            })
        }
    };
    Ok(NodeHandle {
        rpc_url,
        tasks: vec![server, blocks],
    })
}

/// What a provider needs to start.
pub struct ProviderSetup {
    /// Where its key and transcripts live.
    pub data_dir: PathBuf,
    /// GGUF file.
    pub model_path: PathBuf,
    /// Registry entry to use if the chain does not know the model yet
    /// (`None`: derive one from the file).
    pub model_entry: Option<ModelEntry>,
    /// Name for a derived entry.
    pub model_name: Option<String>,
    /// Chain RPC URL.
    pub chain_url: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// Advertised URL (default: from the bound address).
    pub public_url: Option<String>,
    /// Price.
    pub price: Price,
    /// Collateral.
    pub stake: Amount,
    /// Inference threads.
    pub threads: Option<usize>,
    /// When receipt batches are committed on chain.
    pub batches: BatchConfig,
    /// Cheat on purpose (testing verification; development chains only).
    pub adversary: Option<Adversary>,
}

/// A started provider.
pub struct ProviderHandle {
    /// Advertised URL.
    pub endpoint: String,
    /// The model's registry entry.
    pub model: ModelEntry,
    /// The HTTP server task.
    pub task: JoinHandle<Result<()>>,
}

/// Load the model, serve jobs, and register on the chain.
pub async fn start_provider(setup: ProviderSetup, shutdown: Shutdown) -> Result<ProviderHandle> {
    start_provider_with(setup, None, shutdown).await
}

/// An OpenAI-compatible server a provider forwards its jobs to (`agora provider --upstream`).
pub struct UpstreamSetup {
    /// The server's OpenAI base URL, e.g. `http://127.0.0.1:8000/v1`.
    pub url: String,
    /// Its name for the model (`None`: the only model it lists).
    pub model: Option<String>,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
}

/// [`start_provider`], serving through `upstream` instead of a local llama.cpp
/// engine when one is given (the GGUF still gives the model id and the tokenizer).
pub async fn start_provider_with(
    setup: ProviderSetup,
    upstream: Option<UpstreamSetup>,
    shutdown: Shutdown,
) -> Result<ProviderHandle> {
    std::fs::create_dir_all(&setup.data_dir)
        .with_context(|| format!("creating {}", setup.data_dir.display()))?;
    let key = keys::load_or_create(&setup.data_dir.join("provider.key"))?;
    tracing::info!(account = %key.account(), "provider key");
    let chain = ChainClient::new(&setup.chain_url);
    let mut config = LlamaEngineConfig::default();
    if let Some(t) = setup.threads {
        config.threads = t.max(1);
    }
    let engine = match (upstream, setup.adversary.clone()) {
        (Some(_), Some(_)) => anyhow::bail!("--adversary cannot be combined with --upstream"),
        (None, Some(mode)) => {
            ensure_development_chain(&chain, &mode).await?;
            let path = setup.model_path.clone();
            let engine =
                tokio::task::spawn_blocking(move || AdversarialEngine::load(mode, &path, config))
                    .await?
                    .context("setting up the adversary")?;
            ServedEngine::Adversarial(Box::new(engine))
        }
        (None, None) => {
            let path = setup.model_path.clone();
            let engine = tokio::task::spawn_blocking(move || LlamaEngine::load(&path, config))
                .await?
                .with_context(|| format!("loading model {}", setup.model_path.display()))?;
            ServedEngine::Local(engine)
        }
        (Some(upstream), None) => {
            ServedEngine::Upstream(connect_upstream(&setup.model_path, upstream).await?)
        }
    };
    let model = match setup.model_entry {
        Some(entry) => entry,
        None => derive_entry(&setup.model_path, setup.model_name, &engine)?,
    };
    let transcripts = TranscriptStore::open(&setup.data_dir.join("transcripts.redb"))?;
    let listener = bind(setup.listen, "provider").await?;
    let endpoint = setup
        .public_url
        .unwrap_or(format!("http://{}", listener.local_addr()?));
    let provider = Provider::new(
        Arc::new(engine),
        key.clone(),
        model.id,
        setup.price,
        transcripts,
    )
    .with_channels(Arc::new(chain.clone()))
    .with_audit_gate(Arc::new(
        ChainAuditGate::connect(chain.clone())
            .await
            .with_context(|| format!("reading the chain at {}", setup.chain_url))?,
    ));
    let batch_store = provider.transcripts();
    let router = provider.router();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.wait())
            .await
            .context("provider server")
    });
    let needed = setup.stake;
    let balance = chain.account(&key.account()).await?.balance;
    let already = chain
        .providers()
        .await?
        .into_iter()
        .find(|p| p.id == key.account())
        .map_or(0, |p| p.stake);
    if balance + already < needed {
        anyhow::bail!(
            "provider account {} holds {} but must lock {} as stake; fund it first, e.g. \
             `agora transfer --key DEVNET_DIR/faucet.key --to {} --amount {}`",
            key.account(),
            balance + already,
            needed,
            key.account(),
            needed
        );
    }
    register_on_chain(&chain, &key, &endpoint, &model, setup.price, setup.stake).await?;
    let settler = VoucherSettler::new(
        batch_store.clone(),
        chain.clone(),
        key.clone(),
        setup.batches.settle_every,
    );
    tokio::spawn(settler.run(shutdown.clone().wait()));
    let committer = BatchCommitter::new(batch_store, chain, key, model.id, setup.batches);
    tokio::spawn(committer.run(shutdown.clone().wait()));
    Ok(ProviderHandle {
        endpoint,
        model,
        task,
    })
}

/// Refuse to cheat anywhere but on a development chain.
async fn ensure_development_chain(chain: &ChainClient, mode: &Adversary) -> Result<()> {
    let chain_id = chain
        .head()
        .await
        .context("reading the chain id (--adversary needs it)")?
        .chain_id;
    if !crate::genesis::is_development_chain(&chain_id) {
        anyhow::bail!(
            "--adversary {mode} is refused on chain {chain_id:?}: adversarial providers run only \
             on development chains ({} or ids ending in -devnet, -localnet, -test)",
            crate::genesis::DEV_CHAIN_ID
        );
    }
    tracing::warn!(%mode, %chain_id, "THIS PROVIDER CHEATS ON PURPOSE (--adversary); testing only");
    Ok(())
}

/// What a provider runs its jobs on: llama.cpp here, an upstream server, or
/// (testing only) a cheating wrapper.
enum ServedEngine {
    Local(LlamaEngine),
    Upstream(UpstreamEngine),
    Adversarial(Box<AdversarialEngine>),
}

impl InferenceEngine for ServedEngine {
    fn model_info(&self) -> &agora_engine::ModelInfo {
        match self {
            ServedEngine::Local(e) => e.model_info(),
            ServedEngine::Upstream(e) => e.model_info(),
            ServedEngine::Adversarial(e) => e.model_info(),
        }
    }

    fn generate(
        &self,
        request: agora_engine::GenerateRequest,
    ) -> Result<tokio::sync::mpsc::Receiver<agora_engine::EngineEvent>, agora_engine::EngineError>
    {
        match self {
            ServedEngine::Local(e) => e.generate(request),
            ServedEngine::Upstream(e) => e.generate(request),
            ServedEngine::Adversarial(e) => e.generate(request),
        }
    }

    fn replayable(&self) -> bool {
        match self {
            ServedEngine::Local(e) => e.replayable(),
            ServedEngine::Upstream(e) => e.replayable(),
            ServedEngine::Adversarial(e) => e.replayable(),
        }
    }
}

/// Check the upstream answers, pick its model name, and load the GGUF's tokenizer.
async fn connect_upstream(gguf: &Path, upstream: UpstreamSetup) -> Result<UpstreamEngine> {
    let listed = agora_upstream::list_models(&upstream.url, upstream.api_key.as_deref())
        .await
        .context("asking the upstream server for its models")?;
    let model = match (upstream.model, listed.as_slice()) {
        (Some(model), _) => {
            if !listed.contains(&model) {
                tracing::warn!(%model, ?listed, "the upstream does not list this model; using it anyway");
            }
            model
        }
        (None, [only]) => only.clone(),
        (None, []) => anyhow::bail!("the upstream at {} lists no models", upstream.url),
        (None, many) => anyhow::bail!(
            "the upstream at {} serves several models ({}); pick one with --upstream-model",
            upstream.url,
            many.join(", ")
        ),
    };
    let mut config = UpstreamConfig::new(upstream.url, model);
    config.api_key = upstream.api_key;
    let path = gguf.to_path_buf();
    let engine = tokio::task::spawn_blocking(move || UpstreamEngine::new(&path, config))
        .await?
        .with_context(|| format!("preparing the upstream engine for {}", gguf.display()))?;
    tracing::info!(
        upstream = engine.base_url(),
        model = engine.upstream_model(),
        "serving through an upstream server: its jobs cannot be replayed by verifiers"
    );
    Ok(engine)
}

/// Registry entry for a model file the chain may not know yet.
fn derive_entry(
    path: &Path,
    name: Option<String>,
    engine: &impl InferenceEngine,
) -> Result<ModelEntry> {
    let id = agora_models::model_id(path)?;
    let size_bytes = std::fs::metadata(path)?.len();
    if id.to_hex() == agora_models::DEFAULT_MODEL_BLAKE3 {
        return Ok(crate::genesis::default_model_entry());
    }
    let info = engine.model_info();
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
    Ok(ModelEntry {
        id,
        name: name.unwrap_or_else(|| stem.to_lowercase()),
        architecture: info.architecture.clone(),
        quantization: info.quantization.clone(),
        size_bytes,
        license: "unknown".into(),
        owner: agora_types::no_owner(),
        royalty_ppm: 0,
    })
}

/// A started gateway.
pub struct GatewayHandle {
    /// Base URL (the OpenAI base URL is this plus `/v1`).
    pub url: String,
    /// The HTTP server and directory refresh task.
    pub task: JoinHandle<Result<()>>,
    gateway: Arc<Gateway<ChainDirectory>>,
}

impl GatewayHandle {
    /// Wait until the chain lists a provider for `model`, so the first request succeeds.
    pub async fn wait_for_model(&self, model: &str) -> Result<()> {
        self.gateway
            .wait_for_model(model, MODEL_WAIT)
            .await
            .with_context(|| format!("the gateway never saw a provider for {model}"))
    }
}

/// How long a starting gateway waits for a model to appear on chain.
const MODEL_WAIT: Duration = Duration::from_secs(60);

/// Serve the OpenAI-compatible API for the network behind `chain_url`.
pub async fn start_gateway(
    chain_url: &str,
    addr: SocketAddr,
    shutdown: Shutdown,
) -> Result<GatewayHandle> {
    start_gateway_paying(chain_url, addr, None, shutdown).await
}

/// How a gateway pays providers: through channels funded from `key`.
pub struct PayerSetup {
    /// The funded key that opens channels and signs vouchers.
    pub key: Keypair,
    /// Escrow of each new channel, and the least a top-up adds.
    pub deposit: Amount,
    /// The client keys that may spend through this payer.
    pub api_keys: ApiKeys,
}

/// [`start_gateway`], paying providers for every job when `payer` is given.
pub async fn start_gateway_paying(
    chain_url: &str,
    addr: SocketAddr,
    payer: Option<PayerSetup>,
    shutdown: Shutdown,
) -> Result<GatewayHandle> {
    let chain = ChainClient::new(chain_url);
    let directory = ChainDirectory(chain.clone());
    let gateway = match payer {
        None => Gateway::new(directory, GatewayConfig::default()),
        Some(p) => {
            tracing::info!(account = %p.key.account(), deposit = p.deposit, "the gateway pays providers through channels");
            let config = PayerConfig {
                deposit: p.deposit.max(1),
                ..PayerConfig::default()
            };
            let payer = Payer::new(ChainFunding::new(chain, p.key.clone()), p.key, config);
            tokio::spawn(payer.clone().run_retries(shutdown.clone().wait()));
            let config = GatewayConfig {
                api_keys: Some(p.api_keys),
                ..GatewayConfig::default()
            };
            Gateway::with_payer(directory, config, payer)?
        }
    };
    let listener = bind(addr, "gateway").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = gateway.router();
    let refresher = tokio::spawn(gateway.clone().run_refresh(shutdown.clone().wait()));
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.wait())
            .await
            .context("gateway server")?;
        refresher.await.context("directory refresh task")?;
        Ok(())
    });
    Ok(GatewayHandle { url, task, gateway })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown::Shutdown;

    /// Start a single-producer chain named `chain_id`; returns its RPC URL.
    async fn chain(dir: &Path, chain_id: &str) -> String {
        let genesis = Genesis {
            chain_id: chain_id.into(),
            timestamp_ms: 0,
            params: Default::default(),
            accounts: vec![],
            models: vec![],
        };
        let addr = "127.0.0.1:0".parse().unwrap();
        let node = start_node(dir, &genesis, addr, 50, None, Shutdown::on_signals())
            .await
            .unwrap();
        node.rpc_url
    }

    fn cheating_setup(dir: &Path, chain_url: String) -> ProviderSetup {
        ProviderSetup {
            data_dir: dir.join("provider"),
            // Never reached on a refused chain; on a development chain the
            // missing file is the next error, which shows the check let it through.
            model_path: dir.join("missing.gguf"),
            model_entry: None,
            model_name: None,
            chain_url,
            listen: "127.0.0.1:0".parse().unwrap(),
            public_url: None,
            price: Price {
                input_per_1k: 1,
                output_per_1k: 1,
            },
            stake: 1,
            threads: Some(1),
            batches: Default::default(),
            adversary: Some(Adversary::Tamper),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn adversary_is_refused_outside_development_chains() {
        let dir = tempfile::tempdir().unwrap();
        let url = chain(&dir.path().join("main"), "agora-mainnet").await;
        let setup = cheating_setup(dir.path(), url);
        let err = start_provider_with(setup, None, Shutdown::on_signals())
            .await
            .err()
            .expect("refused");
        let msg = format!("{err:#}");
        assert!(
            msg.contains("--adversary tamper is refused on chain \"agora-mainnet\""),
            "{msg}"
        );

        let dev = tempfile::tempdir().unwrap();
        let url = chain(&dev.path().join("dev"), crate::genesis::DEV_CHAIN_ID).await;
        let err = start_provider_with(
            cheating_setup(dev.path(), url),
            None,
            Shutdown::on_signals(),
        )
        .await
        .err()
        .expect("the model is missing");
        let msg = format!("{err:#}");
        assert!(!msg.contains("refused"), "{msg}");
        assert!(msg.contains("setting up the adversary"), "{msg}");
    }
}
