//! Starting a provider as a role: load the engine, serve jobs, check the
//! stake, register on chain, and spawn the voucher settler and the receipt
//! batch committer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agora_chain_client::ChainClient;
use agora_engine::{
    InferenceEngine, LlamaEmbedder, LlamaEmbedderConfig, LlamaEngine, LlamaEngineConfig,
};
use agora_tasks::{bind, fail, serve, Context, Failure, Refusal, ServeLimits, Shutdown, Task};
use agora_types::{Amount, Keypair, ModelEntry, Price};

use crate::guard::ensure_development_chain;
use crate::served::{
    connect_upstream, derive_entry, is_embedding_model, ServedEngine, UpstreamSetup,
};
use crate::{
    register_on_chain, AdversarialEngine, Adversary, AuditGate, BatchCommitter, BatchConfig,
    ChainAuditGate, Provider, TranscriptStore, VoucherSettler,
};

/// How the provider protects itself. `POST /v1/jobs` sends its SSE head as
/// soon as the engine queues the job (a job waiting its turn waits in the
/// body, which is never timed), and every other route is a quick read, so
/// the head deadline only has to cover reading a request body of up to
/// 4 MiB from a slow gateway: 2 minutes. 30 s to send a request head (and of
/// keep-alive idleness); 256 requests in flight (streams included) is far
/// more than an engine runs at once, and the engine's own queue answers 503
/// before that.
pub fn serve_limits() -> ServeLimits {
    ServeLimits {
        header_read: Duration::from_secs(30),
        max_in_flight: 256,
        // Its clients are gateways (one address for many users): no
        // tighter share than the cap itself.
        max_per_client: 256,
        response_head: Duration::from_secs(120),
        refuse: refusal,
    }
}

/// A refused request in OpenAI's error shape, like the provider's others.
fn refusal(refusal: Refusal) -> axum::response::Response {
    let code = match refusal {
        Refusal::Overloaded(_) => "provider_busy",
        Refusal::ClientBusy(_) | Refusal::TimedOut(_) => refusal.code(),
    };
    let response =
        crate::service::error(refusal.status(), refusal.kind(), code, refusal.to_string());
    refusal.with_retry_after(response)
}

/// What a provider needs to start.
pub struct ProviderSetup {
    /// Where its transcripts live.
    pub data_dir: PathBuf,
    /// The provider's key (its account on chain).
    pub key: Keypair,
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
    /// Cheat on purpose (testing verification; refused outside development chains).
    pub adversary: Option<Adversary>,
    /// Serve through this OpenAI-compatible server instead of a local
    /// llama.cpp engine (the GGUF still gives the model id and the tokenizer).
    pub upstream: Option<UpstreamSetup>,
}

/// A started provider.
pub struct ProviderHandle {
    /// Advertised URL.
    pub endpoint: String,
    /// The model's registry entry.
    pub model: ModelEntry,
    /// The HTTP server task.
    pub task: Task,
}

/// Load the model, serve jobs, and register on the chain.
pub async fn start(setup: ProviderSetup, shutdown: Shutdown) -> Result<ProviderHandle, Failure> {
    std::fs::create_dir_all(&setup.data_dir)
        .with_context(|| format!("creating {}", setup.data_dir.display()))?;
    let key = setup.key;
    tracing::info!(account = %key.account(), "provider key");
    let chain = ChainClient::new(&setup.chain_url);
    let mut config = LlamaEngineConfig::default();
    if let Some(t) = setup.threads {
        config.threads = t.max(1);
    }
    let engine = match (setup.upstream, setup.adversary.clone()) {
        (Some(_), Some(_)) => fail!("--adversary cannot be combined with --upstream"),
        (None, Some(mode)) => {
            ensure_development_chain(&chain, &mode).await?;
            let path = setup.model_path.clone();
            let engine =
                tokio::task::spawn_blocking(move || AdversarialEngine::load(mode, &path, config))
                    .await?
                    .context("setting up the adversary")?;
            ServedEngine::Adversarial(Box::new(engine))
        }
        (None, None) if is_embedding_model(&setup.model_path)? => {
            let path = setup.model_path.clone();
            let mut config = LlamaEmbedderConfig::default();
            if let Some(t) = setup.threads {
                config.threads = t.max(1);
            }
            let engine = tokio::task::spawn_blocking(move || LlamaEmbedder::load(&path, config))
                .await?
                .with_context(|| {
                    format!("loading embedding model {}", setup.model_path.display())
                })?;
            ServedEngine::Embedding(engine)
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
        None => derive_entry(&setup.model_path, setup.model_name)?,
    };
    let transcripts =
        TranscriptStore::open(&setup.data_dir.join("transcripts.redb")).map_err(Failure::other)?;
    let listener = bind(setup.listen, "provider").await?;
    let endpoint = setup
        .public_url
        .unwrap_or(format!("http://{}", listener.local_addr()?));
    // The gate reads the chain's id once; receipts name the same chain.
    let gate = ChainAuditGate::connect(chain.clone())
        .await
        .with_context(|| format!("reading the chain at {}", setup.chain_url))?;
    let replayable = engine.replayable();
    let provider = Provider::new(
        gate.chain_id(),
        Arc::new(engine),
        key.clone(),
        model.id,
        setup.price,
        transcripts,
    )
    .with_channels(Arc::new(chain.clone()))
    .with_audit_gate(Arc::new(gate));
    let provider =
        provider.with_blobs(serve_model_blob(&setup.data_dir, &setup.model_path, &model).await?);
    let batch_store = provider.transcripts();
    let router = provider.router();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        serve(listener, router, serve_limits(), stop.wait())
            .await
            .context("provider server")
    });
    ensure_stake(&chain, &key, setup.stake).await?;
    let (price, stake) = (setup.price, setup.stake);
    register_on_chain(&chain, &key, &endpoint, &model, price, stake, replayable)
        .await
        .map_err(Failure::other)?;
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

/// The provider's blob store (`DATA_DIR/blobs`) holding its model file,
/// imported in place (only the bao outboard is written), so peers can fetch
/// the model from it verified.
async fn serve_model_blob(
    data_dir: &std::path::Path,
    model_path: &std::path::Path,
    model: &ModelEntry,
) -> Result<Arc<agora_blobs::BlobStore>, Failure> {
    let (dir, path) = (data_dir.join("blobs"), model_path.to_path_buf());
    let id = model.id;
    let (store, info) = tokio::task::spawn_blocking(move || {
        let store = agora_blobs::BlobStore::open(&dir)?;
        // Held already (fetched from peers, or imported by an earlier run
        // from a file still there): no need to hash it again.
        if let (true, Some(size)) = (store.held(&id)?, store.size(&id)?) {
            return Ok((store, agora_blobs::BlobInfo { id, size }));
        }
        let info = store.import_in_place(&path)?;
        Ok::<_, agora_blobs::BlobError>((store, info))
    })
    .await?
    .context("serving the model file as a blob")?;
    if info.id != model.id {
        tracing::warn!(blob = %info.id, model = %model.id, "the model file's blob id is not the registered model id");
    }
    Ok(Arc::new(store))
}

/// Refuse to register unless the account holds (or already locked) `needed`.
async fn ensure_stake(chain: &ChainClient, key: &Keypair, needed: Amount) -> Result<(), Failure> {
    let balance = chain
        .account(&key.account())
        .await
        .map_err(Failure::other)?
        .balance;
    let already = chain
        .providers()
        .await
        .map_err(Failure::other)?
        .into_iter()
        .find(|p| p.id == key.account())
        .map_or(0, |p| p.stake);
    if balance + already < needed {
        fail!(
            "provider account {} holds {} but must lock {} as stake; fund it first, e.g. \
             `agora transfer --key DEVNET_DIR/faucet.key --to {} --amount {}`",
            key.account(),
            balance + already,
            needed,
            key.account(),
            needed
        );
    }
    Ok(())
}
