//! The inference engine: loads a GGUF model through llama.cpp and generates
//! text with sampling that anyone can replay from (seed, position).
//!
//! The [`InferenceEngine`] trait is the narrow seam the provider talks to;
//! [`LlamaEngine`] is the real implementation.

mod batch;
mod constrain;
mod embed;
mod llama;
pub mod logits;
mod pool;
mod prefix;
mod quantize;
mod reference;
pub mod sampling;
mod score;
mod seqs;
pub mod stop;
pub mod text;
mod tokenizer;

pub use constrain::{constraint_vocab, guide_for};
pub use embed::{
    cosine, is_embedding_model, normalized, EmbedReply, Embedded, Embedding, EmbeddingEngine,
    LlamaEmbedder, LlamaEmbedderConfig, EMBEDDING_ARCHITECTURES, MAX_EMBED_INPUTS,
};
pub use llama::{
    backend as llama_backend, default_chat_template, gguf_model_info, render_prompt, KvCache,
    LlamaEngine, LlamaEngineConfig,
};
pub use quantize::{quantize, QuantType, QuantizeError};
pub use reference::{reference_loop, ReferenceFigures};
pub use score::{PositionScore, ScoreRequest, Scored};
pub use tokenizer::Tokenizer;

pub use agora_toploc::Commitments;
use agora_types::{FinishReason, JobInput, SamplingParams, TokenLogprob};
use tokio::sync::mpsc;

/// Facts about the loaded model that the provider publishes on chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// `general.name` from the GGUF metadata (or the file stem).
    pub name: String,
    /// `general.architecture`, e.g. `llama`.
    pub architecture: String,
    /// Quantization of the weights, e.g. `Q4_1`.
    pub quantization: String,
    /// Context window the engine was configured with, in tokens.
    pub context_length: u32,
}

/// One generation job for the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateRequest {
    /// Chat messages (rendered with the model's template) or raw text.
    pub input: JobInput,
    /// Sampling parameters, seed included.
    pub params: SamplingParams,
}

/// What the engine streams back for a job.
#[derive(Clone, Debug, PartialEq)]
pub enum EngineEvent {
    /// The prompt was tokenized and accepted; sent once, before any text.
    Started {
        /// The prompt's token ids.
        prompt_tokens: Vec<i32>,
        /// How many leading prompt tokens were not computed again because the
        /// KV cache still held them from an earlier job (prompt caching).
        cached_tokens: u32,
    },
    /// New text: whole UTF-8 characters, never part of a stop string, as
    /// [`text::TextStream`] renders the tokens (a verifier recomputes it with
    /// [`text::render`]).
    Text(String),
    /// Log-probabilities of the token just generated (only when the job asked
    /// for them); sent before the text that token produces.
    Logprob(TokenLogprob),
    /// An embedding job's vectors, one per input, sent once before `Finished`.
    Embeddings(Vec<Vec<f32>>),
    /// Generation ended; always the last event of a successful job.
    Finished {
        /// Why it ended.
        finish_reason: FinishReason,
        /// Every generated token id (including any that were cut by a stop string,
        /// excluding the end-of-generation token), so a verifier can replay the job.
        output_tokens: Vec<i32>,
        /// Activation commitments of the job's hidden states (`None` when the
        /// engine cannot compute them or they are switched off).
        commitments: Option<Commitments>,
    },
    /// The job failed after it was accepted.
    Failed(String),
}

/// Why the engine refused or could not run a job.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model file could not be loaded.
    #[error("cannot load model {path}: {reason}")]
    Load {
        /// The file.
        path: String,
        /// llama.cpp's reason.
        reason: String,
    },
    /// The job queue is full; try again later.
    #[error("engine is at capacity ({0} jobs queued)")]
    Busy(usize),
    /// The request itself is unusable (prompt longer than the context, bad parameters...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// llama.cpp failed while running an accepted request.
    #[error("engine failure: {0}")]
    Internal(String),
    /// The engine's worker is gone.
    #[error("engine stopped")]
    Stopped,
}

/// The seam between the provider and whatever runs the model.
pub trait InferenceEngine: Send + Sync + 'static {
    /// Facts about the loaded model.
    fn model_info(&self) -> &ModelInfo;

    /// Queue a job. Events arrive on the returned channel; dropping the
    /// receiver cancels the job at the next token.
    fn generate(
        &self,
        request: GenerateRequest,
    ) -> Result<mpsc::Receiver<EngineEvent>, EngineError>;

    /// Whether a verifier can regenerate this engine's jobs token for token
    /// from (seed, params) with agora's seeded Gumbel-max sampling. Engines that
    /// sample elsewhere with their own RNG (an upstream server, `agora-upstream`)
    /// answer `false`: their jobs can only be checked statistically.
    fn replayable(&self) -> bool {
        true
    }
}
