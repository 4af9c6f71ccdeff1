//! Starting the audit daemon as a role: load the model jobs are replayed
//! with, bond each validator key's stake if it is not bonded yet, and run one
//! [`Auditor`] per key until shutdown, beside one data auditor per key
//! ([`agora_data::DataAuditor`]): a data job drawn for this validator is
//! re-run here, so no drawn job goes unaudited.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agora_chain_client::ChainClient;
use agora_engine::{LlamaEmbedder, LlamaEngine, LlamaEngineConfig};
use agora_tasks::{fail, Context, Failure, Shutdown, Task};
use agora_types::{Amount, Keypair};
use agora_verify::{ThresholdBook, Thresholds};

use crate::{Auditor, AuditorConfig, CheckEngine, EngineChecker, HttpTranscripts, RpcChain};

/// How long a provider gets to answer one transcript request.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long bonding may take to be included.
const BOND_TIMEOUT: Duration = Duration::from_secs(30);

/// What an audit daemon needs to start.
pub struct AuditorsSetup {
    /// Chain RPC URL.
    pub chain_url: String,
    /// One key per validator identity this daemon audits for.
    pub keys: Vec<Keypair>,
    /// The GGUF jobs are replayed with (the model the providers claim).
    pub model_path: PathBuf,
    /// More GGUFs whose jobs this daemon checks too (an embedding model, say).
    pub extra_models: Vec<PathBuf>,
    /// Calibrated thresholds by model (default thresholds if `None` or absent).
    pub thresholds: Option<PathBuf>,
    /// Stake each key bonds when it has none.
    pub stake: Amount,
    /// Inference threads for replays.
    pub threads: Option<usize>,
    /// Time between audit rounds.
    pub poll: Duration,
    /// Rounds in which an unreachable provider is retried before its transcript counts as missing.
    pub fetch_grace_blocks: u64,
}

/// Start the daemon: returns once every key is bonded and its auditor runs.
pub async fn start(setup: AuditorsSetup, shutdown: Shutdown) -> Result<Vec<Task>, Failure> {
    if setup.keys.is_empty() {
        fail!("no validator keys to audit with");
    }
    let model = agora_models::model_id(&setup.model_path)
        .with_context(|| format!("hashing {}", setup.model_path.display()))?;
    let thresholds = thresholds_for(setup.thresholds.as_deref(), &model)?;
    let mut config = LlamaEngineConfig {
        // Replays use their own scoring contexts; generation is never asked for.
        max_sequences: 1,
        commitments: false,
        ..LlamaEngineConfig::default()
    };
    if let Some(t) = setup.threads {
        config.threads = t.max(1);
    }
    let engine = load_checker(&setup.model_path, config.clone()).await?;
    let mut extra = Vec::with_capacity(setup.extra_models.len());
    for path in &setup.extra_models {
        let id =
            agora_models::model_id(path).with_context(|| format!("hashing {}", path.display()))?;
        let thresholds = thresholds_for(setup.thresholds.as_deref(), &id)?;
        extra.push((load_checker(path, config.clone()).await?, id, thresholds));
    }
    let client = ChainClient::new(&setup.chain_url);
    let mut tasks = Vec::new();
    let chain_id = client
        .status()
        .await
        .with_context(|| format!("reading the chain at {}", setup.chain_url))?
        .chain_id;
    for key in setup.keys {
        bond(&client, &key, setup.stake).await?;
        let me = key.account();
        tracing::info!(validator = %me, "auditing");
        // Inputs are fetched here for one re-run at a time and deleted after it.
        let scratch = std::env::temp_dir().join(format!("agora-data-audit-{}", me.to_hex()));
        let data = agora_data::DataAuditor::new(
            ChainClient::new(&setup.chain_url),
            key.clone(),
            scratch,
            setup.fetch_grace_blocks,
        )
        .map_err(|e| Failure::msg(format!("starting the data auditor: {e}")))?;
        tasks.push(tokio::spawn(run_data_audits(
            data,
            setup.poll,
            shutdown.clone(),
        )));
        let transcripts = HttpTranscripts::new(FETCH_TIMEOUT, key.clone(), chain_id.clone());
        let auditor = Auditor::new(
            RpcChain::new(ChainClient::new(&setup.chain_url), key),
            transcripts,
            extra.iter().fold(
                EngineChecker::new(engine.clone(), model, thresholds),
                |checker, (engine, id, t)| checker.with_model(engine.clone(), *id, *t),
            ),
            AuditorConfig {
                me,
                chain_id: chain_id.clone(),
                fetch_grace_blocks: setup.fetch_grace_blocks,
                weights_model: Some(model),
            },
        );
        let stop = shutdown.clone();
        let poll = setup.poll;
        tasks.push(tokio::spawn(async move {
            auditor.run(poll, stop.wait()).await;
            Ok(())
        }));
    }
    Ok(tasks)
}

/// Re-run the data jobs drawn for one validator, a round every `poll`, until shutdown.
async fn run_data_audits(
    mut auditor: agora_data::DataAuditor,
    poll: Duration,
    shutdown: Shutdown,
) -> Result<(), Failure> {
    loop {
        if let Err(e) = auditor.step().await {
            tracing::warn!(error = %e, "data audit round");
        }
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.clone().wait() => return Ok(()),
        }
    }
}

/// Load the model at `path` for checking: an embedder for an embedding
/// model, the generative engine otherwise.
async fn load_checker(path: &Path, config: LlamaEngineConfig) -> Result<CheckEngine, Failure> {
    let embedding = agora_engine::is_embedding_model(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let owned = path.to_path_buf();
    let engine = tokio::task::spawn_blocking(move || {
        if embedding {
            let config = agora_engine::LlamaEmbedderConfig {
                threads: config.threads,
                ..Default::default()
            };
            LlamaEmbedder::load(&owned, config).map(|e| CheckEngine::Embedding(Arc::new(e)))
        } else {
            LlamaEngine::load(&owned, config).map(|e| CheckEngine::Generative(Arc::new(e)))
        }
    })
    .await?
    .with_context(|| format!("loading {}", path.display()))?;
    Ok(engine)
}

/// Bond `stake` for `key` unless it already has bonded stake.
async fn bond(client: &ChainClient, key: &Keypair, stake: Amount) -> Result<(), Failure> {
    client
        .ensure_bonded(key, stake, BOND_TIMEOUT)
        .await
        .with_context(|| {
            format!(
                "bonding {stake} for validator {} (is the account funded?)",
                key.account()
            )
        })?;
    Ok(())
}

/// The thresholds for `model`: from the book if it has them, else the defaults.
fn thresholds_for(
    book: Option<&Path>,
    model: &agora_types::ModelId,
) -> Result<Thresholds, Failure> {
    let Some(path) = book else {
        return Ok(Thresholds::default());
    };
    let book = ThresholdBook::load(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(book.get(model).unwrap_or_else(|| {
        tracing::warn!(%model, "no calibrated thresholds for this model; using the defaults");
        Thresholds::default()
    }))
}
