//! A minimal llama.cpp decode loop with greedy argmax and nothing else: the
//! yardstick `agora bench infer` holds the engine against, built from the same
//! llama.cpp and run with the same model and threads.

use std::num::NonZeroU32;
use std::path::Path;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::llama::backend;
use crate::EngineError;

/// What one run of the reference loop measured.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceFigures {
    /// Sequences decoded together in one batch.
    pub sequences: usize,
    /// Prompt tokens processed per second (all sequences' prompts in one batch).
    pub prefill_tokens_per_s: f64,
    /// Generated tokens per second, summed over sequences.
    pub decode_tokens_per_s: f64,
    /// Generated tokens over prefill plus decode time, summed over sequences.
    pub wall_tokens_per_s: f64,
}

fn fail(e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidRequest(format!("reference loop: {e}"))
}

/// Prefill `prompt` into `sequences` sequences, then generate `tokens` tokens
/// in each (end-of-generation tokens are ignored so every run has equal length).
pub fn reference_loop(
    path: &Path,
    threads: usize,
    prompt: &str,
    tokens: u32,
    sequences: usize,
) -> Result<ReferenceFigures, EngineError> {
    let load_error = |reason: String| EngineError::Load {
        path: path.display().to_string(),
        reason,
    };
    let backend = backend().map_err(load_error)?;
    let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
        .map_err(|e| load_error(e.to_string()))?;
    let prompt_tokens = model.vocab().tokenize(prompt.as_bytes(), true, false);
    let sequences = sequences.max(1);
    let per_seq = prompt_tokens.len() + tokens as usize + 8;
    let threads = i32::try_from(threads.max(1)).unwrap_or(i32::MAX);
    // Same batch geometry as the engine's default, so only the loop differs.
    let batch_tokens = (prompt_tokens.len() * sequences).max(512);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(
            u32::try_from(per_seq * sequences).map_err(fail)?,
        ))
        .with_n_seq_max(u32::try_from(sequences).map_err(fail)?)
        .with_n_batch(u32::try_from(batch_tokens).map_err(fail)?)
        .with_n_ubatch(u32::try_from(batch_tokens).map_err(fail)?)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model.new_context(backend, params).map_err(fail)?;
    let mut batch = LlamaBatch::new(batch_tokens, i32::try_from(sequences).map_err(fail)?);

    // Warm-up (first touch of weights and compute buffers), then start clean.
    batch.add_sequence(&prompt_tokens, 0, false).map_err(fail)?;
    ctx.decode(&mut batch).map_err(fail)?;
    batch.clear();
    ctx.clear_kv_cache();
    let started = Instant::now();
    for seq in 0..sequences {
        batch
            .add_sequence(&prompt_tokens, seq as i32, false)
            .map_err(fail)?;
    }
    ctx.decode(&mut batch).map_err(fail)?;
    let prefill_s = started.elapsed().as_secs_f64();
    // Index in the batch of each sequence's last token (whose logits were requested).
    let mut logit_index: Vec<i32> = (0..sequences)
        .map(|s| ((s + 1) * prompt_tokens.len() - 1) as i32)
        .collect();

    let started = Instant::now();
    for step in 0..tokens {
        let next: Vec<LlamaToken> = logit_index
            .iter()
            .map(|&i| {
                let logits = ctx.get_logits_ith(i);
                let best = logits
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                LlamaToken(best as i32)
            })
            .collect();
        batch.clear();
        let pos = (prompt_tokens.len() + step as usize) as i32;
        for (seq, token) in next.into_iter().enumerate() {
            batch.add(token, pos, &[seq as i32], true).map_err(fail)?;
        }
        ctx.decode(&mut batch).map_err(fail)?;
        logit_index = (0..sequences as i32).collect();
    }
    let decode_s = started.elapsed().as_secs_f64();
    Ok(ReferenceFigures {
        sequences,
        prefill_tokens_per_s: (prompt_tokens.len() * sequences) as f64 / prefill_s,
        decode_tokens_per_s: f64::from(tokens) * sequences as f64 / decode_s,
        wall_tokens_per_s: f64::from(tokens) * sequences as f64 / (prefill_s + decode_s),
    })
}
