//! [`LlamaEngine`]: one GGUF model, one llama.cpp context, one worker thread
//! that runs queued jobs in order.
//!
//! Prompts are rendered and tokenized on the caller's thread, so bad input is
//! refused before it takes a queue slot; the worker only decodes and samples.

use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use agora_types::JobInput;
use llama_cpp_2::context::params::KvCacheType;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use crate::batch::{self, Job};
use crate::score::{self, ScoreRequest, Scored};
use crate::text::Piece;
use crate::{EngineError, EngineEvent, GenerateRequest, InferenceEngine, ModelInfo};

/// How the engine uses the machine.
#[derive(Clone, Debug)]
pub struct LlamaEngineConfig {
    /// CPU threads for decoding and prompt processing.
    pub threads: usize,
    /// Context window in tokens (prompt plus completion).
    pub context_length: u32,
    /// Jobs that may wait for a free sequence before callers get [`EngineError::Busy`].
    pub queue_capacity: usize,
    /// Tokens decoded per llama.cpp call (decode steps plus prompt chunks).
    pub batch_size: u32,
    /// Jobs decoded together in one batch (continuous batching); each gets
    /// its own `context_length` of KV cache.
    pub max_sequences: usize,
    /// Compute TOPLOC activation commitments while generating (needs the
    /// final hidden state of every decoded token; see `agora-toploc`).
    pub commitments: bool,
    /// Element type of the KV cache, for generation and scoring alike.
    pub kv_cache: KvCache,
    /// Prompt caching: a job whose prompt starts like an earlier job's
    /// (system prompt, earlier turns) reuses that job's KV cache for the
    /// shared prefix instead of computing it again.
    pub prompt_cache: bool,
}

/// Element type of the KV cache (keys and values).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KvCache {
    /// 16-bit floats: 2 bytes per element.
    F16,
    /// 8-bit blocks (llama.cpp `q8_0`): about 1.06 bytes per element; needs
    /// flash attention, which llama.cpp then switches on. The default: half
    /// the memory of f16, and on this llama.cpp build prefill scoring then
    /// reproduces generation's logprobs exactly (`tests/real_model_score.rs`).
    #[default]
    Q8_0,
}

impl KvCache {
    /// The llama.cpp cache type.
    pub(crate) fn llama_type(self) -> KvCacheType {
        match self {
            KvCache::F16 => KvCacheType::F16,
            KvCache::Q8_0 => KvCacheType::Q8_0,
        }
    }
}

impl Default for LlamaEngineConfig {
    fn default() -> Self {
        LlamaEngineConfig {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            context_length: 2048,
            queue_capacity: 64,
            batch_size: 128,
            max_sequences: 8,
            commitments: true,
            kv_cache: KvCache::default(),
            prompt_cache: true,
        }
    }
}

/// The real [`InferenceEngine`]: llama.cpp on the CPU.
pub struct LlamaEngine {
    info: ModelInfo,
    model: Arc<LlamaModel>,
    template: Option<LlamaChatTemplate>,
    config: LlamaEngineConfig,
    jobs: SyncSender<Job>,
    /// The worker thread, joined by [`LlamaEngine::shutdown`].
    worker: std::thread::JoinHandle<()>,
    /// One scoring pass at a time, so at most one scoring context is alive.
    scoring: Mutex<()>,
    /// The vocabulary as constrained jobs see it, built by the first one.
    vocab: OnceLock<Arc<agora_grammar::Vocab>>,
}

/// llama.cpp's backend may be initialised once per process; every crate that
/// loads a GGUF (the engine, `agora-upstream`'s tokenizer) shares this one.
pub fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// What loading `path` failed on, naming the file.
pub(crate) fn load_error(path: &Path, reason: String) -> EngineError {
    EngineError::Load {
        path: path.display().to_string(),
        reason,
    }
}

/// The GGUF at `path`, loaded with its weights on the shared backend.
pub(crate) fn load_model(
    path: &Path,
) -> Result<(&'static LlamaBackend, Arc<LlamaModel>), EngineError> {
    if !path.is_file() {
        return Err(load_error(path, "no such file".into()));
    }
    let backend = backend().map_err(|e| load_error(path, e))?;
    let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        .map_err(|e| load_error(path, e.to_string()))?;
    Ok((backend, Arc::new(model)))
}

/// Start the worker thread `name` for the model at `path` and wait until it
/// reports whether its llama.cpp context came up (`run` sends that report).
pub(crate) fn start_worker(
    path: &Path,
    name: &str,
    run: impl FnOnce(&SyncSender<Result<(), String>>) + Send + 'static,
) -> Result<std::thread::JoinHandle<()>, EngineError> {
    let (ready_tx, ready_rx) = sync_channel(1);
    let worker = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || run(&ready_tx))
        .map_err(|e| load_error(path, format!("cannot start worker thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(worker),
        Ok(Err(reason)) => Err(load_error(path, reason)),
        Err(_) => Err(load_error(
            path,
            "worker thread died while creating the context".into(),
        )),
    }
}

impl LlamaEngine {
    /// Load `path` and start the worker thread.
    pub fn load(path: &Path, config: LlamaEngineConfig) -> Result<Self, EngineError> {
        let (backend, model) = load_model(path)?;
        let info = gguf_model_info(&model, path, config.context_length);
        let template = default_chat_template(&model);

        let (jobs, queue) = sync_channel(config.queue_capacity);
        let worker_model = model.clone();
        let worker_config = config.clone();
        let worker = start_worker(path, "agora-llama", move |ready| {
            batch::worker(backend, &worker_model, &worker_config, &queue, ready)
        })?;
        Ok(LlamaEngine {
            info,
            model,
            template,
            config,
            jobs,
            worker,
            scoring: Mutex::new(()),
            vocab: OnceLock::new(),
        })
    }

    /// Stop taking jobs, let queued and running ones finish, and wait until the
    /// worker has freed its llama.cpp context (dropping the engine does not wait).
    pub fn shutdown(self) {
        let LlamaEngine { jobs, worker, .. } = self;
        drop(jobs);
        let _ = worker.join();
    }

    /// Render and tokenize a job's prompt.
    pub fn tokenize(&self, input: &JobInput) -> Result<Vec<i32>, EngineError> {
        Ok(self
            .prompt_tokens(input)?
            .into_iter()
            .map(|t| t.0)
            .collect())
    }

    /// Teacher-forced prefill: what the model predicted at every generated
    /// position of a finished job, from one batched pass (see [`ScoreRequest`]).
    ///
    /// Runs in a llama.cpp context of its own, created for the call, so
    /// concurrent generation is not disturbed; calls are serialised. Blocks
    /// for the whole pass: from async code, call it inside `spawn_blocking`.
    pub fn score(&self, request: &ScoreRequest) -> Result<Scored, EngineError> {
        let _one_at_a_time = self.scoring.lock().unwrap_or_else(|e| e.into_inner());
        score::score(&self.model, &self.config, request)
    }

    /// Width of the hidden states [`LlamaEngine::score`] returns (`n_embd_out`).
    pub fn embedding_width(&self) -> usize {
        usize::try_from(self.model.n_embd_out()).unwrap_or(0)
    }

    /// Number of tokens in the model's vocabulary (valid ids are `0..vocab_size`).
    pub fn vocab_size(&self) -> usize {
        usize::try_from(self.model.n_vocab()).unwrap_or(0)
    }

    /// What token `id` contributes to generated text, exactly as generation
    /// streams it ([`crate::text`]); `None` for an id outside the vocabulary.
    pub fn piece(&self, id: i32) -> Option<Piece> {
        token_piece(&self.model, id)
    }

    /// The vocabulary as constrained jobs see it ([`crate::constraint_vocab`]),
    /// built once.
    pub fn constraint_vocab(&self) -> Arc<agora_grammar::Vocab> {
        self.vocab
            .get_or_init(|| {
                Arc::new(crate::constraint_vocab(self.vocab_size(), |id| {
                    self.piece(id)
                }))
            })
            .clone()
    }

    /// Turn the input into prompt tokens, applying the chat template.
    fn prompt_tokens(&self, input: &JobInput) -> Result<Vec<LlamaToken>, EngineError> {
        render_prompt(
            &self.model,
            self.template.as_ref(),
            self.config.context_length,
            input,
        )
    }
}

/// What `id` contributes to generated text: its bytes (special tokens'
/// text not rendered, as llama.cpp streams them), or the end of generation;
/// `None` for an id outside the vocabulary (llama.cpp must never see one).
pub(crate) fn token_piece(model: &LlamaModel, id: i32) -> Option<Piece> {
    if !(0..model.n_vocab()).contains(&id) {
        return None;
    }
    let vocab = model.vocab();
    let token = LlamaToken(id);
    Some(if vocab.is_eog(token) {
        Piece::End
    } else {
        Piece::Bytes(vocab.token_to_piece(token, false, None))
    })
}

/// The chat template [`LlamaEngine`] uses for `model`: the GGUF's own, else ChatML.
pub fn default_chat_template(model: &LlamaModel) -> Option<LlamaChatTemplate> {
    model
        .chat_template(None)
        .ok()
        .or_else(|| LlamaChatTemplate::new("chatml").ok())
}

/// Render and tokenize a job's input exactly as [`LlamaEngine`] does (chat
/// template for messages, BOS plus text for raw prompts), refusing prompts that
/// do not fit `context_length`; public so engines that run the model elsewhere
/// (`agora-upstream`) put the same prompt tokens in their receipts.
pub fn render_prompt(
    model: &LlamaModel,
    template: Option<&LlamaChatTemplate>,
    context_length: u32,
    input: &JobInput,
) -> Result<Vec<LlamaToken>, EngineError> {
    let vocab = model.vocab();
    let tokens = match input {
        JobInput::Text { prompt } => vocab.tokenize(prompt.as_bytes(), true, false),
        JobInput::Embed { .. } => {
            let msg = "this model generates text; embeddings need an embedding model";
            return Err(EngineError::InvalidRequest(msg.into()));
        }
        JobInput::Chat { messages } => {
            if messages.is_empty() {
                return Err(EngineError::InvalidRequest(
                    "messages must not be empty".into(),
                ));
            }
            let mut chat = Vec::with_capacity(messages.len());
            for m in messages {
                if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
                    let msg = format!(
                        "role {:?} is not supported (use system, user or assistant)",
                        m.role
                    );
                    return Err(EngineError::InvalidRequest(msg));
                }
                let message =
                    LlamaChatMessage::new(m.role.clone(), m.content.clone()).map_err(|_| {
                        EngineError::InvalidRequest("message content contains a NUL byte".into())
                    })?;
                chat.push(message);
            }
            let template = template.ok_or_else(|| {
                EngineError::InvalidRequest("this model has no chat template".into())
            })?;
            let text = model
                .apply_chat_template(template, &chat, true)
                .map_err(|e| {
                    EngineError::InvalidRequest(format!("cannot apply the chat template: {e}"))
                })?;
            vocab.tokenize(text.as_bytes(), true, true)
        }
    };
    if tokens.is_empty() {
        return Err(EngineError::InvalidRequest("the prompt is empty".into()));
    }
    let window = context_length as usize;
    if tokens.len() >= window {
        let msg = format!(
            "the prompt has {} tokens but the context window is {window}",
            tokens.len()
        );
        return Err(EngineError::InvalidRequest(msg));
    }
    Ok(tokens)
}

impl InferenceEngine for LlamaEngine {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn generate(
        &self,
        request: GenerateRequest,
    ) -> Result<mpsc::Receiver<EngineEvent>, EngineError> {
        let params = request.params;
        if params.max_tokens == 0 {
            return Err(EngineError::InvalidRequest(
                "max_tokens must be at least 1".into(),
            ));
        }
        if !(params.temperature.is_finite() && params.temperature >= 0.0) {
            return Err(EngineError::InvalidRequest(
                "temperature must be a finite number >= 0".into(),
            ));
        }
        if !(params.top_p > 0.0 && params.top_p <= 1.0) {
            return Err(EngineError::InvalidRequest(
                "top_p must be in (0, 1]".into(),
            ));
        }
        for (name, value) in [
            ("presence_penalty", params.presence_penalty),
            ("frequency_penalty", params.frequency_penalty),
        ] {
            if !(-2.0..=2.0).contains(&value) {
                let msg = format!("{name} must be between -2 and 2");
                return Err(EngineError::InvalidRequest(msg));
            }
        }
        if params
            .logprobs
            .is_some_and(|k| k > crate::logits::MAX_TOP_LOGPROBS)
        {
            let msg = format!(
                "at most {} top logprobs per token",
                crate::logits::MAX_TOP_LOGPROBS
            );
            return Err(EngineError::InvalidRequest(msg));
        }
        let guide = crate::guide_for(&params, || self.constraint_vocab())?;
        let prompt = self.prompt_tokens(&request.input)?;
        // Room for every token's text and logprob events plus start and finish:
        // the worker never waits on a slow client.
        let room = 2 * params.max_tokens.min(self.config.context_length) as usize + 3;
        let (events, rx) = mpsc::channel(room);
        match self.jobs.try_send(Job {
            prompt,
            params,
            guide,
            events,
        }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(EngineError::Busy(self.config.queue_capacity)),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
    }
}

/// Facts from the GGUF metadata (name, architecture, quantization), with the
/// context window capped at the model's training context.
pub fn gguf_model_info(model: &LlamaModel, path: &Path, context_length: u32) -> ModelInfo {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string();
    let quantization = match model
        .meta_val_str("general.file_type")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    {
        Some(t) => agora_models::gguf::file_type_name(t),
        None => "unknown".into(),
    };
    ModelInfo {
        name: model.meta_val_str("general.name").unwrap_or(stem),
        architecture: model
            .meta_val_str("general.architecture")
            .unwrap_or_else(|_| "unknown".into()),
        quantization,
        context_length: context_length.min(model.n_ctx_train().max(1)),
    }
}
