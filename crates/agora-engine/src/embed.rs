//! Sentence embeddings: [`EmbeddingEngine`] is the seam a provider serves
//! `/v1/embeddings` through; [`LlamaEmbedder`] runs a mean-pooled BERT GGUF
//! (all-MiniLM-L6-v2, see `agora-models`) on one llama.cpp worker thread.
//!
//! Inputs are tokenized and checked on the caller's thread, so bad requests
//! are refused before they take a queue slot. The worker packs several inputs
//! into one `llama_encode` call as separate sequences, reads each sequence's
//! mean-pooled vector and L2-normalises it (llama.cpp returns it unnormalised),
//! which is what sentence-transformers' `Normalize` module does.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::oneshot;

use crate::llama::{gguf_model_info, load_error, load_model, start_worker};
use crate::{EngineError, ModelInfo};

mod jobs;
mod vector;

pub use jobs::{is_embedding_model, EMBEDDING_ARCHITECTURES};
pub use vector::{cosine, normalized};

/// Most inputs one request may carry (OpenAI's limit for `/v1/embeddings`).
pub const MAX_EMBED_INPUTS: usize = 2048;
/// Most inputs packed into one `llama_encode` call.
const MAX_SEQS_PER_CALL: usize = 64;

/// One input's embedding.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// The unit-length vector.
    pub vector: Vec<f32>,
    /// Tokens the input took, special tokens included (what usage bills).
    pub tokens: u32,
}

/// The embeddings of one request, in input order.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedded {
    /// One entry per input.
    pub data: Vec<Embedding>,
}

impl Embedded {
    /// Tokens of all inputs together: the request's `usage.prompt_tokens`.
    pub fn prompt_tokens(&self) -> u64 {
        self.data.iter().map(|e| u64::from(e.tokens)).sum()
    }
}

/// Where an accepted request's result arrives.
pub type EmbedReply = oneshot::Receiver<Result<Embedded, EngineError>>;

/// The seam between the provider and whatever computes embeddings.
pub trait EmbeddingEngine: Send + Sync + 'static {
    /// Facts about the loaded model.
    fn model_info(&self) -> &ModelInfo;

    /// Width of the vectors this engine returns.
    fn dimensions(&self) -> usize;

    /// Check and queue a request; the result arrives on the returned channel.
    /// Bad input is refused here with [`EngineError::InvalidRequest`], a full
    /// queue with [`EngineError::Busy`].
    fn embed(&self, inputs: Vec<String>) -> Result<EmbedReply, EngineError>;
}

/// How the embedder uses the machine.
#[derive(Clone, Debug)]
pub struct LlamaEmbedderConfig {
    /// CPU threads for encoding.
    pub threads: usize,
    /// Requests that may wait before callers get [`EngineError::Busy`].
    pub queue_capacity: usize,
}

impl Default for LlamaEmbedderConfig {
    fn default() -> Self {
        LlamaEmbedderConfig {
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            queue_capacity: 64,
        }
    }
}

struct EmbedJob {
    inputs: Vec<Vec<LlamaToken>>,
    reply: oneshot::Sender<Result<Embedded, EngineError>>,
}

/// The real [`EmbeddingEngine`]: llama.cpp on the CPU, mean pooling, unit vectors.
pub struct LlamaEmbedder {
    info: ModelInfo,
    model: Arc<LlamaModel>,
    dimensions: usize,
    queue_capacity: usize,
    jobs: SyncSender<EmbedJob>,
    worker: std::thread::JoinHandle<()>,
}

impl LlamaEmbedder {
    /// Load the GGUF at `path` and start the worker. The context window is
    /// the model's training context (512 tokens for MiniLM): the longest input
    /// accepted, and the most tokens encoded per call.
    pub fn load(path: &Path, config: LlamaEmbedderConfig) -> Result<Self, EngineError> {
        let (backend, model) = load_model(path)?;
        let info = gguf_model_info(&model, path, model.n_ctx_train());
        let dimensions = usize::try_from(model.n_embd_out())
            .ok()
            .filter(|&d| d > 0)
            .ok_or_else(|| load_error(path, "the model has no embedding width".into()))?;
        let (jobs, queue) = sync_channel(config.queue_capacity);
        let worker_model = model.clone();
        let window = info.context_length;
        let threads = i32::try_from(config.threads.max(1)).unwrap_or(1);
        let worker = start_worker(path, "agora-embed", move |ready| {
            worker(backend, &worker_model, window, threads, &queue, ready)
        })?;
        Ok(LlamaEmbedder {
            info,
            model,
            dimensions,
            queue_capacity: config.queue_capacity,
            jobs,
            worker,
        })
    }

    /// Stop taking requests, finish queued ones and wait for the worker to exit.
    pub fn shutdown(self) {
        let LlamaEmbedder { jobs, worker, .. } = self;
        drop(jobs);
        let _ = worker.join();
    }

    /// The token ids of `text` as the model sees it (`[CLS] text [SEP]`),
    /// checked like one input of [`EmbeddingEngine::embed`].
    pub fn tokenize(&self, text: &str) -> Result<Vec<i32>, EngineError> {
        Ok(self.tokens(0, text)?.into_iter().map(|t| t.0).collect())
    }

    /// Tokenize and check one input as [`EmbeddingEngine::embed`] does.
    fn tokens(&self, index: usize, text: &str) -> Result<Vec<LlamaToken>, EngineError> {
        if text.is_empty() {
            let msg = format!("input {index} is an empty string");
            return Err(EngineError::InvalidRequest(msg));
        }
        let tokens = self.model.vocab().tokenize(text.as_bytes(), true, false);
        let window = self.info.context_length as usize;
        if tokens.len() > window {
            let msg = format!(
                "input {index} has {} tokens but the model's context is {window}",
                tokens.len()
            );
            return Err(EngineError::InvalidRequest(msg));
        }
        Ok(tokens)
    }
}

impl EmbeddingEngine for LlamaEmbedder {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed(&self, inputs: Vec<String>) -> Result<EmbedReply, EngineError> {
        self.embed_with_tokens(&inputs).map(|(_, reply)| reply)
    }
}

impl LlamaEmbedder {
    /// [`EmbeddingEngine::embed`], also returning every input's token ids
    /// concatenated in order (what an embedding job's receipt hashes), so
    /// the inputs are tokenized once.
    pub fn embed_with_tokens(
        &self,
        inputs: &[String],
    ) -> Result<(Vec<i32>, EmbedReply), EngineError> {
        if inputs.is_empty() {
            let msg = "input must hold at least one string".into();
            return Err(EngineError::InvalidRequest(msg));
        }
        if inputs.len() > MAX_EMBED_INPUTS {
            let msg = format!(
                "{} inputs, at most {MAX_EMBED_INPUTS} per request",
                inputs.len()
            );
            return Err(EngineError::InvalidRequest(msg));
        }
        let inputs = (inputs.iter().enumerate())
            .map(|(i, text)| self.tokens(i, text))
            .collect::<Result<Vec<_>, _>>()?;
        let ids = inputs.iter().flatten().map(|t| t.0).collect();
        let (reply, rx) = oneshot::channel();
        match self.jobs.try_send(EmbedJob { inputs, reply }) {
            Ok(()) => Ok((ids, rx)),
            Err(TrySendError::Full(_)) => Err(EngineError::Busy(self.queue_capacity)),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::Stopped),
        }
    }
}

/// The worker: one context, requests in order, several inputs per encode call.
fn worker(
    backend: &LlamaBackend,
    model: &LlamaModel,
    window: u32,
    threads: i32,
    queue: &Receiver<EmbedJob>,
    ready: &SyncSender<Result<(), String>>,
) {
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(window))
        .with_n_batch(window)
        .with_n_ubatch(window)
        .with_n_seq_max(MAX_SEQS_PER_CALL as u32)
        .with_embeddings(true)
        .with_pooling_type(LlamaPoolingType::Mean)
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
    let mut batch = LlamaBatch::new(window as usize, 1);
    while let Ok(job) = queue.recv() {
        let mut data = Vec::with_capacity(job.inputs.len());
        let mut result = Ok(());
        let mut start = 0;
        while start < job.inputs.len() && result.is_ok() && !job.reply.is_closed() {
            // Pack inputs [start, end) into one call: each fits the window alone.
            let mut end = start;
            let mut used = 0;
            while end < job.inputs.len()
                && end - start < MAX_SEQS_PER_CALL
                && used + job.inputs[end].len() <= window as usize
            {
                used += job.inputs[end].len();
                end += 1;
            }
            result = encode(&mut ctx, &mut batch, &job.inputs[start..end], &mut data);
            start = end;
        }
        let _ = job.reply.send(result.map(|()| Embedded { data }));
    }
}

/// Encode `inputs` as sequences 0.. of one batch and append their unit vectors.
fn encode(
    ctx: &mut llama_cpp_2::context::LlamaContext<'_>,
    batch: &mut LlamaBatch,
    inputs: &[Vec<LlamaToken>],
    out: &mut Vec<Embedding>,
) -> Result<(), EngineError> {
    let internal =
        |what: &str, e: &dyn std::fmt::Display| EngineError::Internal(format!("{what}: {e}"));
    batch.clear();
    for (seq, tokens) in inputs.iter().enumerate() {
        batch
            .add_sequence(tokens, seq as i32, true)
            .map_err(|e| internal("batch", &e))?;
    }
    ctx.encode(batch)
        .map_err(|e| internal("llama_encode", &e))?;
    for (seq, tokens) in inputs.iter().enumerate() {
        let pooled = ctx
            .embeddings_seq_ith(seq as i32)
            .map_err(|e| internal("no pooled embedding", &e))?;
        let vector = normalized(pooled)
            .ok_or_else(|| EngineError::Internal("the pooled embedding has no length".into()))?;
        let tokens = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
        out.push(Embedding { vector, tokens });
    }
    Ok(())
}
