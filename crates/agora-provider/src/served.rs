//! What a started provider runs its jobs on: llama.cpp here, an upstream
//! OpenAI-compatible server, or (testing only) a cheating wrapper; and the
//! registry entry it claims for its model file.

use std::path::Path;

use agora_engine::{InferenceEngine, LlamaEmbedder, LlamaEngine};
use agora_tasks::{fail, Context, Failure};
use agora_types::ModelEntry;
use agora_upstream::{UpstreamConfig, UpstreamEngine};

use crate::AdversarialEngine;

/// An OpenAI-compatible server a provider forwards its jobs to (`agora provider --upstream`).
pub struct UpstreamSetup {
    /// The server's OpenAI base URL, e.g. `http://127.0.0.1:8000/v1`.
    pub url: String,
    /// Its name for the model (`None`: the only model it lists).
    pub model: Option<String>,
    /// Bearer token, if the server wants one.
    pub api_key: Option<String>,
}

/// What a provider runs its jobs on: llama.cpp here, an upstream server, or
/// (testing only) a cheating wrapper.
pub(crate) enum ServedEngine {
    Local(LlamaEngine),
    Embedding(LlamaEmbedder),
    Upstream(UpstreamEngine),
    Adversarial(Box<AdversarialEngine>),
}

impl InferenceEngine for ServedEngine {
    fn model_info(&self) -> &agora_engine::ModelInfo {
        match self {
            ServedEngine::Local(e) => e.model_info(),
            ServedEngine::Embedding(e) => e.model_info(),
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
            ServedEngine::Embedding(e) => e.generate(request),
            ServedEngine::Upstream(e) => e.generate(request),
            ServedEngine::Adversarial(e) => e.generate(request),
        }
    }

    fn replayable(&self) -> bool {
        match self {
            ServedEngine::Local(e) => e.replayable(),
            ServedEngine::Embedding(e) => e.replayable(),
            ServedEngine::Upstream(e) => e.replayable(),
            ServedEngine::Adversarial(e) => e.replayable(),
        }
    }
}

/// Whether the GGUF at `path` is an embedding model (read from its metadata only).
pub(crate) fn is_embedding_model(path: &Path) -> Result<bool, Failure> {
    agora_engine::is_embedding_model(path).with_context(|| format!("reading {}", path.display()))
}

/// Check the upstream answers, pick its model name, and load the GGUF's tokenizer.
pub(crate) async fn connect_upstream(
    gguf: &Path,
    upstream: UpstreamSetup,
) -> Result<UpstreamEngine, Failure> {
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
        (None, []) => fail!("the upstream at {} lists no models", upstream.url),
        (None, many) => fail!(
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
pub(crate) fn derive_entry(path: &Path, name: Option<String>) -> Result<ModelEntry, Failure> {
    let id = agora_models::model_id(path).map_err(Failure::other)?;
    agora_models::entry_for(path, id, name).map_err(Failure::other)
}
