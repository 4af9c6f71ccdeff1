//! Teacher-forced prefill ("scoring"): given a job's prompt and generated
//! tokens, one batched llama.cpp pass returns what the model predicted at
//! every generated position, so a verifier need not replay decoding token by
//! token.
//!
//! The pass decodes `prompt ++ output[..n-1]` (in chunks of `batch_size` only
//! when longer) and reads logits at the positions that predict generated
//! tokens: the last prompt position and every output position but the last.
//! Hidden states come from the same pass: with embeddings enabled and pooling
//! `NONE`, llama.cpp returns both the logits and the final-norm hidden state
//! of every token (it then outputs every token of the batch, so asking for
//! hidden states costs the output projection of the prompt positions too).
//!
//! Logprobs are of the raw model logits: no temperature, no penalties.
//! Batched prefill is not bit-identical to step-by-step decoding (different
//! matrix kernels); the tests bound the difference.

use std::num::NonZeroU32;

use agora_types::TokenLogprob;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::llama::backend;
use crate::logits::{logprobs, MAX_TOP_LOGPROBS};
use crate::{EngineError, LlamaEngineConfig};

/// A finished job to score: its prompt and the tokens that were generated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScoreRequest {
    /// Prompt token ids, as the job's `Started` event reported them (at least one).
    pub prompt_tokens: Vec<i32>,
    /// Generated token ids, as the job's `Finished` event reported them (at least one).
    pub output_tokens: Vec<i32>,
    /// Most likely alternatives to report per position (at most [`MAX_TOP_LOGPROBS`]).
    pub top_k: usize,
    /// Also return the final hidden state at each scored position.
    pub want_hidden: bool,
    /// Also return the full raw logits (vocabulary-sized) at each scored position.
    pub want_logits: bool,
}

/// What the model predicted for one generated token.
#[derive(Clone, Debug, PartialEq)]
pub struct PositionScore {
    /// Log-probability of the generated token (`chosen`) and the `top_k` most likely ones.
    pub logprob: TokenLogprob,
    /// Final hidden state (after the output norm) whose projection gave these
    /// logits, `embedding_width` floats; only when asked for.
    pub hidden: Option<Vec<f32>>,
    /// Raw logits over the vocabulary; only when asked for.
    pub logits: Option<Vec<f32>>,
}

/// The result of scoring: one entry per generated token, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// `positions[i]` describes `output_tokens[i]`.
    pub positions: Vec<PositionScore>,
    /// Hidden states of the last ≤ [`agora_toploc::CHUNK_TOKENS`] prompt
    /// positions, in order (what a prompt commitment covers); only when
    /// `want_hidden`.
    pub prompt_hidden: Vec<Vec<f32>>,
}

/// Check a request against the model and window; returns the tokens to decode.
fn validate(
    request: &ScoreRequest,
    n_vocab: i32,
    window: usize,
) -> Result<Vec<LlamaToken>, EngineError> {
    let invalid = |m: String| Err(EngineError::InvalidRequest(m));
    if request.prompt_tokens.is_empty() {
        return invalid("prompt_tokens must not be empty".into());
    }
    if request.output_tokens.is_empty() {
        return invalid("output_tokens must not be empty".into());
    }
    if request.top_k > usize::from(MAX_TOP_LOGPROBS) {
        return invalid(format!("top_k must be at most {MAX_TOP_LOGPROBS}"));
    }
    let all = request.prompt_tokens.iter().chain(&request.output_tokens);
    if let Some(bad) = all.clone().find(|&&t| !(0..n_vocab).contains(&t)) {
        return invalid(format!(
            "token {bad} is outside the vocabulary (0..{n_vocab})"
        ));
    }
    // The last generated token is never decoded: nothing after it is scored.
    let decoded = request.prompt_tokens.len() + request.output_tokens.len() - 1;
    if decoded > window {
        return invalid(format!(
            "prompt and output need {decoded} positions but the context window is {window}"
        ));
    }
    Ok(all.take(decoded).map(|&t| LlamaToken(t)).collect())
}

fn internal(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("{what}: {e}"))
}

/// Score `request` in a fresh llama.cpp context of its own (so concurrent
/// generation is untouched). Blocks for the whole pass.
pub(crate) fn score(
    model: &LlamaModel,
    config: &LlamaEngineConfig,
    request: &ScoreRequest,
) -> Result<Scored, EngineError> {
    let window = config.context_length.max(16);
    let tokens = validate(request, model.n_vocab(), window as usize)?;
    let backend = backend().map_err(|e| internal("llama.cpp backend", e))?;
    let threads = i32::try_from(config.threads.max(1)).unwrap_or(i32::MAX);
    let n_batch = config.batch_size.clamp(1, window);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(window))
        .with_n_seq_max(1)
        .with_type_k(config.kv_cache.llama_type())
        .with_type_v(config.kv_cache.llama_type())
        .with_n_batch(n_batch)
        .with_n_ubatch(n_batch)
        .with_n_threads(threads)
        .with_n_threads_batch(threads)
        .with_embeddings(request.want_hidden);
    let params = if request.want_hidden {
        params.with_pooling_type(LlamaPoolingType::None)
    } else {
        params
    };
    let mut ctx = model
        .new_context(backend, params)
        .map_err(|e| internal("cannot create a scoring context", e))?;
    let mut batch = LlamaBatch::new(n_batch as usize, 1);
    // Position `first + i` predicts `output_tokens[i]`.
    let first = request.prompt_tokens.len() - 1;
    let piece = |t: i32| model.vocab().token_to_piece(LlamaToken(t), false, None);
    let mut positions = Vec::with_capacity(request.output_tokens.len());
    let mut prompt_hidden = Vec::new();
    let prompt_len = request.prompt_tokens.len();
    for (c, chunk) in tokens.chunks(n_batch as usize).enumerate() {
        let start = c * n_batch as usize;
        batch.clear();
        for (j, &token) in chunk.iter().enumerate() {
            let pos = start + j;
            // With hidden states llama.cpp outputs every token anyway; say so.
            let output = request.want_hidden || pos >= first;
            let add = batch.add(token, pos as i32, &[0], output);
            add.map_err(|e| internal("batch", e))?;
        }
        ctx.decode(&mut batch)
            .map_err(|e| internal("decode failed", e))?;
        if request.want_hidden {
            for j in 0..chunk.len().min(prompt_len.saturating_sub(start)) {
                if agora_toploc::CommitmentBuilder::wants_prompt(start + j, prompt_len) {
                    let h = ctx.embeddings_ith(j as i32);
                    prompt_hidden.push(h.map_err(|e| internal("hidden state", e))?.to_vec());
                }
            }
        }
        for j in first.saturating_sub(start)..chunk.len() {
            let target = request.output_tokens[start + j - first];
            let raw = ctx.get_logits_ith(j as i32);
            let hidden = if request.want_hidden {
                let h = ctx.embeddings_ith(j as i32);
                Some(h.map_err(|e| internal("hidden state", e))?.to_vec())
            } else {
                None
            };
            positions.push(PositionScore {
                logprob: logprobs(raw, target as usize, request.top_k, piece),
                hidden,
                logits: request.want_logits.then(|| raw.to_vec()),
            });
        }
    }
    Ok(Scored {
        positions,
        prompt_hidden,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt: &[i32], output: &[i32]) -> ScoreRequest {
        ScoreRequest {
            prompt_tokens: prompt.to_vec(),
            output_tokens: output.to_vec(),
            top_k: 2,
            ..Default::default()
        }
    }

    fn refused(r: &ScoreRequest, window: usize) -> String {
        match validate(r, 100, window) {
            Err(EngineError::InvalidRequest(m)) => m,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn decodes_everything_but_the_last_output_token() {
        let tokens = validate(&request(&[1, 2], &[3, 4, 5]), 100, 4).unwrap();
        let ids: Vec<i32> = tokens.iter().map(|t| t.0).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(refused(&request(&[], &[1]), 8).contains("prompt_tokens"));
        assert!(refused(&request(&[1], &[]), 8).contains("output_tokens"));
        assert!(refused(&request(&[1], &[100]), 8).contains("vocabulary"));
        assert!(refused(&request(&[-1], &[1]), 8).contains("vocabulary"));
        assert!(refused(&request(&[1, 2], &[3, 4, 5]), 3).contains("context window"));
        let mut many = request(&[1], &[2]);
        many.top_k = usize::from(MAX_TOP_LOGPROBS) + 1;
        assert!(refused(&many, 8).contains("top_k"));
    }
}
