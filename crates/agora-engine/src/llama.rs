//! [`LlamaEngine`]: one GGUF model, one llama.cpp context, one worker thread
//! that runs queued jobs in order.
//!
//! Prompts are rendered and tokenized on the caller's thread, so bad input is
//! refused before it takes a queue slot; the worker only decodes and samples.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use agora_types::{FinishReason, JobInput, SamplingParams};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;

use crate::sampling::sample;
use crate::stop::{StopMatcher, Utf8Stream};
use crate::{EngineError, EngineEvent, GenerateRequest, InferenceEngine, ModelInfo};

/// How the engine uses the machine.
#[derive(Clone, Debug)]
pub struct LlamaEngineConfig {
    /// CPU threads for decoding and prompt processing.
    pub threads: usize,
    /// Context window in tokens (prompt plus completion).
    pub context_length: u32,
    /// Jobs that may wait behind the running one before callers get [`EngineError::Busy`].
    pub queue_capacity: usize,
    /// Prompt tokens decoded per llama.cpp call.
    pub batch_size: u32,
}

impl Default for LlamaEngineConfig {
    fn default() -> Self {
        LlamaEngineConfig {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            context_length: 2048,
            queue_capacity: 64,
            batch_size: 512,
        }
    }
}

/// A job waiting for the worker.
struct Job {
    prompt: Vec<LlamaToken>,
    params: SamplingParams,
    events: mpsc::Sender<EngineEvent>,
}

/// The real [`InferenceEngine`]: llama.cpp on the CPU.
pub struct LlamaEngine {
    info: ModelInfo,
    model: Arc<LlamaModel>,
    template: Option<LlamaChatTemplate>,
    config: LlamaEngineConfig,
    jobs: SyncSender<Job>,
}

/// llama.cpp's backend may be initialised once per process.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

impl LlamaEngine {
    /// Load `path` and start the worker thread.
    pub fn load(path: &Path, config: LlamaEngineConfig) -> Result<Self, EngineError> {
        let load_error = |reason: String| EngineError::Load {
            path: path.display().to_string(),
            reason,
        };
        if !path.is_file() {
            return Err(load_error("no such file".into()));
        }
        let backend = backend().map_err(load_error)?;
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| load_error(e.to_string()))?;
        let model = Arc::new(model);
        let info = model_info(&model, path, config.context_length);
        let template = model
            .chat_template(None)
            .ok()
            .or_else(|| LlamaChatTemplate::new("chatml").ok());

        let (jobs, queue) = sync_channel(config.queue_capacity);
        let (ready_tx, ready_rx) = sync_channel(1);
        let worker_model = model.clone();
        let worker_config = config.clone();
        std::thread::Builder::new()
            .name("agora-llama".into())
            .spawn(move || worker(backend, &worker_model, &worker_config, &queue, &ready_tx))
            .map_err(|e| load_error(format!("cannot start worker thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Err(load_error(reason)),
            Err(_) => {
                return Err(load_error(
                    "worker thread died while creating the context".into(),
                ))
            }
        }
        Ok(LlamaEngine {
            info,
            model,
            template,
            config,
            jobs,
        })
    }

    /// Render and tokenize a job's prompt.
    pub fn tokenize(&self, input: &JobInput) -> Result<Vec<i32>, EngineError> {
        Ok(self
            .prompt_tokens(input)?
            .into_iter()
            .map(|t| t.0)
            .collect())
    }

    /// Turn the input into prompt tokens, applying the chat template.
    fn prompt_tokens(&self, input: &JobInput) -> Result<Vec<LlamaToken>, EngineError> {
        let vocab = self.model.vocab();
        let tokens = match input {
            JobInput::Text { prompt } => vocab.tokenize(prompt.as_bytes(), true, false),
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
                    let message = LlamaChatMessage::new(m.role.clone(), m.content.clone())
                        .map_err(|_| {
                            EngineError::InvalidRequest(
                                "message content contains a NUL byte".into(),
                            )
                        })?;
                    chat.push(message);
                }
                let template = self.template.as_ref().ok_or_else(|| {
                    EngineError::InvalidRequest("this model has no chat template".into())
                })?;
                let text = self
                    .model
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
        let window = self.config.context_length as usize;
        if tokens.len() >= window {
            let msg = format!(
                "the prompt has {} tokens but the context window is {window}",
                tokens.len()
            );
            return Err(EngineError::InvalidRequest(msg));
        }
        Ok(tokens)
    }
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
        let prompt = self.prompt_tokens(&request.input)?;
        // Room for every token event plus start and finish: the worker never waits on a slow client.
        let room = params.max_tokens.min(self.config.context_length) as usize + 3;
        let (events, rx) = mpsc::channel(room);
        match self.jobs.try_send(Job {
            prompt,
            params,
            events,
        }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(EngineError::Busy(self.config.queue_capacity)),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
    }
}

/// Facts from the GGUF metadata.
fn model_info(model: &LlamaModel, path: &Path, context_length: u32) -> ModelInfo {
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
        Some(t) => file_type_name(t),
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

/// llama.cpp's `llama_ftype` numbers for the common quantizations.
fn file_type_name(file_type: u32) -> String {
    let name = match file_type {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        32 => "BF16",
        other => return format!("ftype {other}"),
    };
    name.into()
}

/// The worker thread: owns the context and runs jobs one after another until
/// the engine (and with it the job sender) is dropped.
fn worker(
    backend: &LlamaBackend,
    model: &LlamaModel,
    config: &LlamaEngineConfig,
    queue: &Receiver<Job>,
    ready: &SyncSender<Result<(), String>>,
) {
    let threads = i32::try_from(config.threads.max(1)).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(config.context_length.max(16)))
        .with_n_batch(config.batch_size.max(1))
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = match model.new_context(backend, params) {
        Ok(ctx) => {
            let _ = ready.send(Ok(()));
            ctx
        }
        Err(e) => {
            let _ = ready.send(Err(format!("cannot create a llama.cpp context: {e}")));
            return;
        }
    };
    let mut batch = LlamaBatch::new(config.batch_size.max(1) as usize, 1);
    while let Ok(job) = queue.recv() {
        if job.events.is_closed() {
            continue;
        }
        let started = Instant::now();
        let events = job.events.clone();
        match run_job(model, &mut ctx, &mut batch, job) {
            Ok(Some(n)) => {
                tracing::debug!(tokens = n, elapsed = ?started.elapsed(), "job finished")
            }
            Ok(None) => tracing::debug!("job cancelled by its client"),
            Err(message) => {
                tracing::warn!(%message, "job failed");
                let _ = events.blocking_send(EngineEvent::Failed(message));
            }
        }
    }
}

/// Decode the prompt, then sample until a stop condition. Returns the number
/// of generated tokens, or `None` if the client went away.
fn run_job(
    model: &LlamaModel,
    ctx: &mut LlamaContext<'_>,
    batch: &mut LlamaBatch,
    job: Job,
) -> Result<Option<usize>, String> {
    let Job {
        prompt,
        params,
        events,
    } = job;
    let send = |e: EngineEvent| events.blocking_send(e).is_ok();
    if !send(EngineEvent::Started {
        prompt_tokens: prompt.iter().map(|t| t.0).collect(),
    }) {
        return Ok(None);
    }
    ctx.clear_kv_cache();
    let n_ctx = ctx.n_ctx() as usize;
    let chunk = ctx.n_batch().max(1) as usize;
    let mut pos = 0usize;
    for piece in prompt.chunks(chunk) {
        batch.clear();
        for &token in piece {
            let last = pos + 1 == prompt.len();
            batch
                .add(token, pos as i32, &[0], last)
                .map_err(|e| e.to_string())?;
            pos += 1;
        }
        ctx.decode(batch)
            .map_err(|e| format!("prompt decode failed: {e}"))?;
    }

    let vocab = model.vocab();
    let mut output: Vec<i32> = Vec::new();
    let mut utf8 = Utf8Stream::default();
    let mut stops = StopMatcher::new(&params.stop);
    let mut stopped_by_string = false;
    let finish_reason = loop {
        if events.is_closed() {
            return Ok(None);
        }
        let logits = ctx.get_logits_ith(batch.n_tokens() - 1);
        let position = u32::try_from(output.len()).unwrap_or(u32::MAX);
        let token =
            sample(logits, &params, position, 0).ok_or("the model produced no finite logits")?;
        let token = LlamaToken(i32::try_from(token).map_err(|e| e.to_string())?);
        if vocab.is_eog(token) {
            break FinishReason::Stop;
        }
        output.push(token.0);
        let released = stops.push(&utf8.push(&vocab.token_to_piece(token, false, None)));
        if !released.text.is_empty() && !send(EngineEvent::Text(released.text)) {
            return Ok(None);
        }
        if released.stopped {
            stopped_by_string = true;
            break FinishReason::Stop;
        }
        if output.len() >= params.max_tokens as usize || pos >= n_ctx {
            break FinishReason::Length;
        }
        batch.clear();
        batch
            .add(token, pos as i32, &[0], true)
            .map_err(|e| e.to_string())?;
        pos += 1;
        ctx.decode(batch)
            .map_err(|e| format!("decode failed at position {pos}: {e}"))?;
    };
    if !stopped_by_string {
        // Flush bytes of an unfinished character and text held back as a possible stop.
        let last = stops.push(&utf8.finish());
        let mut tail = last.text;
        if !last.stopped {
            tail.push_str(&stops.finish());
        }
        if !tail.is_empty() && !send(EngineEvent::Text(tail)) {
            return Ok(None);
        }
    }
    let generated = output.len();
    send(EngineEvent::Finished {
        finish_reason,
        output_tokens: output,
    });
    Ok(Some(generated))
}
