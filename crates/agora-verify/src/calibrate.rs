//! Calibration: run honest jobs under varied conditions (thread counts,
//! concurrent batch compositions), audit them, and derive [`Thresholds`]
//! from the worst honest figures times a safety factor.
//!
//! Batched prefill is not bit-identical to step-by-step decoding, so honest
//! jobs do not replay perfectly; the thresholds must sit above what honest
//! runs show on this model and build, and calibration measures exactly that.

use std::path::PathBuf;
use std::time::Instant;

use agora_engine::{
    Commitments, EngineError, EngineEvent, GenerateRequest, InferenceEngine, LlamaEngine,
    LlamaEngineConfig,
};
use agora_types::{
    commitments_hash, hash_tokens, ChatMessage, Hash32, JobInput, Keypair, ModelId,
    OutputTextHasher, Price, Receipt, SamplingParams, Transcript, Usage,
};
use serde::{Deserialize, Serialize};

use crate::{check_job, CommitmentStats, Thresholds, TokenStats, VerifyError};

/// What to run.
#[derive(Clone, Debug)]
pub struct CalibrationConfig {
    /// The GGUF file.
    pub model: PathBuf,
    /// Jobs per (thread count, concurrency) combination.
    pub jobs: usize,
    /// Tokens per job at most.
    pub max_tokens: u32,
    /// Generation thread counts to try.
    pub thread_counts: Vec<usize>,
    /// Jobs decoded together in one batch, to try.
    pub concurrency: Vec<usize>,
    /// Thresholds = worst honest figure × this (or its complement for rates).
    pub safety_factor: f64,
}

impl CalibrationConfig {
    /// 8 jobs of ≤ 48 tokens for each of threads {1, 2} × concurrency {1, 4}, factor 2.
    pub fn new(model: PathBuf) -> Self {
        CalibrationConfig {
            model,
            jobs: 8,
            max_tokens: 48,
            thread_counts: vec![1, 2],
            concurrency: vec![1, 4],
            safety_factor: 2.0,
        }
    }
}

/// One audited honest job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Generation threads.
    pub threads: usize,
    /// Jobs in the batch with it.
    pub concurrency: usize,
    /// Its sampling temperature.
    pub temperature: f32,
    /// Output tokens.
    pub output_tokens: usize,
    /// Replay figures.
    pub tokens: TokenStats,
    /// Commitment figures.
    pub commitments: Option<CommitmentStats>,
    /// Bytes of its output-chunk commitments (2 per coefficient; the prompt's excluded).
    pub chunk_bytes: usize,
    /// Wall time of the job, submission to `Finished` (batched jobs overlap).
    pub generate_seconds: f64,
    /// Wall time of its audit ([`check_job`]: prefill, commitment check, replay).
    pub check_seconds: f64,
}

/// Calibration result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Every honest job audited.
    pub samples: Vec<Sample>,
    /// Thresholds derived from them.
    pub thresholds: Thresholds,
}

/// Why calibration failed.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// The engine refused or failed a job.
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// Auditing a job failed.
    #[error("{0}")]
    Verify(#[from] VerifyError),
    /// A job ended without finishing.
    #[error("job failed: {0}")]
    Job(String),
    /// Nothing to calibrate on.
    #[error("calibration needs at least one job, thread count and concurrency")]
    Empty,
}

const PROMPTS: [(&str, &str); 8] = [
    ("", "Describe the sea in two sentences."),
    ("You are a terse assistant.", "List five fruits."),
    ("", "Write a haiku about winter."),
    (
        "You answer like a pirate.",
        "What is the capital of France?",
    ),
    ("", "Explain what a prime number is."),
    ("", "Give three tips for sleeping well."),
    ("You are a helpful teacher.", "Why is the sky blue?"),
    ("", "Tell a very short story about a cat."),
];

/// The chat input and sampling parameters of calibration job `i`.
pub fn honest_job(i: usize, max_tokens: u32) -> (JobInput, SamplingParams) {
    let (system, user) = PROMPTS[i % PROMPTS.len()];
    let mut messages = Vec::new();
    if !system.is_empty() {
        messages.push(ChatMessage {
            role: "system".into(),
            content: system.into(),
        });
    }
    messages.push(ChatMessage {
        role: "user".into(),
        content: user.into(),
    });
    let seed = 1000 + i as u64;
    let mut params = match i % 4 {
        0 => SamplingParams::new(max_tokens, 0.0, 1.0, vec![], seed),
        1 => SamplingParams::new(max_tokens, 0.7, 0.9, vec![], seed),
        2 => SamplingParams::new(max_tokens, 1.0, 1.0, vec![], seed),
        _ => SamplingParams::new(max_tokens, 0.8, 0.95, vec![], seed),
    };
    if i % 4 == 3 {
        params.presence_penalty = 0.5;
        params.frequency_penalty = 0.3;
    }
    (JobInput::Chat { messages }, params)
}

/// Start a job on `engine`; [`finish_job`] turns it into a transcript.
pub fn start_job(
    engine: &LlamaEngine,
    input: &JobInput,
    params: &SamplingParams,
) -> Result<tokio::sync::mpsc::Receiver<EngineEvent>, EngineError> {
    engine.generate(GenerateRequest {
        input: input.clone(),
        params: params.clone(),
    })
}

/// Wait for a started job and build the transcript an honest provider
/// (`key`, serving `model`) would store for it.
pub fn finish_job(
    mut events: tokio::sync::mpsc::Receiver<EngineEvent>,
    key: &Keypair,
    model: ModelId,
    input: JobInput,
    params: SamplingParams,
) -> Result<Transcript, CalibrationError> {
    let mut prompt_tokens = Vec::new();
    let mut text = OutputTextHasher::default();
    while let Some(event) = events.blocking_recv() {
        match event {
            EngineEvent::Started {
                prompt_tokens: p, ..
            } => prompt_tokens = p,
            EngineEvent::Text(t) => text.update(&t),
            EngineEvent::Finished {
                output_tokens,
                commitments,
                ..
            } => {
                return Ok(transcript(
                    key,
                    model,
                    input,
                    params,
                    prompt_tokens,
                    output_tokens,
                    text.finish(),
                    commitments,
                ))
            }
            EngineEvent::Failed(m) => return Err(CalibrationError::Job(m)),
            EngineEvent::Logprob(_) | EngineEvent::Embeddings(_) => {}
        }
    }
    Err(CalibrationError::Job("engine stopped".into()))
}

/// A signed transcript for the given job facts, as the provider builds it
/// (`text_hash`: [`agora_types::hash_output_text`] of the text it streamed).
#[allow(clippy::too_many_arguments)]
pub fn transcript(
    key: &Keypair,
    model: ModelId,
    input: JobInput,
    params: SamplingParams,
    prompt_tokens: Vec<i32>,
    output_tokens: Vec<i32>,
    text_hash: Hash32,
    commitments: Option<Commitments>,
) -> Transcript {
    let usage = Usage {
        prompt_tokens: prompt_tokens.len() as u32,
        completion_tokens: output_tokens.len() as u32,
    };
    let receipt = Receipt {
        // Calibration jobs belong to no network; the replay check itself
        // does not look at the chain (the validator does).
        chain_id: "agora-calibration".into(),
        id: Hash32::digest(&hash_tokens(&output_tokens).0),
        provider: key.account(),
        model,
        prompt_hash: hash_tokens(&prompt_tokens),
        output_hash: hash_tokens(&output_tokens),
        text_hash,
        params,
        usage,
        price: Price::default(),
        cost: 0,
        timestamp_ms: 0,
        commitments: commitments_hash(commitments.as_ref()),
    }
    .sign(key);
    Transcript {
        receipt,
        input,
        prompt_tokens,
        output_tokens,
        commitments,
        embeddings: Vec::new(),
    }
}

/// Run and audit honest jobs per `config`; derive thresholds.
pub fn calibrate(config: &CalibrationConfig) -> Result<Calibration, CalibrationError> {
    if config.jobs == 0 || config.thread_counts.is_empty() || config.concurrency.is_empty() {
        return Err(CalibrationError::Empty);
    }
    let max_conc = config.concurrency.iter().copied().max().unwrap_or(1).max(1);
    let scorer = LlamaEngine::load(
        &config.model,
        LlamaEngineConfig {
            commitments: false,
            ..LlamaEngineConfig::default()
        },
    )?;
    let key = Keypair::generate();
    let model = Hash32::digest(config.model.display().to_string().as_bytes());
    let lenient = Thresholds {
        min_token_match_rate: 0.0,
        max_token_margin: f64::INFINITY,
        max_mean_margin: f64::INFINITY,
        max_exponent_mismatch_rate: 1.0,
        max_mean_mantissa_diff: f64::INFINITY,
        require_commitments: true,
    };
    let mut samples = Vec::new();
    for &threads in &config.thread_counts {
        let engine = LlamaEngine::load(
            &config.model,
            LlamaEngineConfig {
                threads,
                max_sequences: max_conc,
                queue_capacity: max_conc,
                ..LlamaEngineConfig::default()
            },
        )?;
        for &concurrency in &config.concurrency {
            let concurrency = concurrency.max(1);
            let mut next = 0;
            while next < config.jobs {
                let group: Vec<usize> = (next..config.jobs.min(next + concurrency)).collect();
                next += group.len();
                let mut running = Vec::new();
                let started = Instant::now();
                for &i in &group {
                    let (input, params) = honest_job(i, config.max_tokens);
                    running.push((start_job(&engine, &input, &params)?, input, params));
                }
                for (rx, input, params) in running {
                    let temperature = params.temperature;
                    let t = finish_job(rx, &key, model, input, params)?;
                    let generate_seconds = started.elapsed().as_secs_f64();
                    let checking = Instant::now();
                    let v = check_job(&scorer, &t, &lenient)?;
                    let check_seconds = checking.elapsed().as_secs_f64();
                    if !v.passed {
                        return Err(CalibrationError::Job(v.reasons.join("; ")));
                    }
                    samples.push(Sample {
                        threads,
                        concurrency,
                        temperature,
                        output_tokens: t.output_tokens.len(),
                        tokens: v.tokens,
                        commitments: v.commitments,
                        chunk_bytes: t.commitments.as_ref().map_or(0, |c| {
                            c.chunks.iter().map(|k| 2 * k.coefficients.len()).sum()
                        }),
                        generate_seconds,
                        check_seconds,
                    });
                }
            }
        }
    }
    let thresholds = derive(&samples, config.safety_factor);
    Ok(Calibration {
        samples,
        thresholds,
    })
}

/// Thresholds from honest samples: the worst figure seen, widened by
/// `factor`, with floors so a perfectly clean calibration still tolerates
/// the noise a larger run would show.
pub fn derive(samples: &[Sample], factor: f64) -> Thresholds {
    let worst = |f: &dyn Fn(&Sample) -> f64| samples.iter().map(f).fold(0.0, f64::max);
    let mismatch = worst(&|s| 1.0 - s.tokens.match_rate).max(0.02);
    let commit =
        |f: &dyn Fn(&CommitmentStats) -> f64| worst(&|s| s.commitments.as_ref().map_or(0.0, f));
    Thresholds {
        min_token_match_rate: (1.0 - factor * mismatch).max(0.5),
        max_token_margin: factor * worst(&|s| s.tokens.max_margin).max(0.25),
        max_mean_margin: factor * worst(&|s| s.tokens.mean_margin).max(0.02),
        max_exponent_mismatch_rate: (factor * commit(&|c| c.max_exponent_mismatch_rate).max(0.02))
            .min(1.0),
        max_mean_mantissa_diff: factor * commit(&|c| c.max_mean_mantissa_diff).max(1.0),
        require_commitments: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rate: f64, margin: f64, exp: f64) -> Sample {
        Sample {
            threads: 1,
            concurrency: 1,
            temperature: 0.7,
            output_tokens: 10,
            tokens: TokenStats {
                checked: 10,
                matched: (rate * 10.0) as u32,
                match_rate: rate,
                mean_margin: margin / 10.0,
                max_margin: margin,
            },
            commitments: Some(CommitmentStats {
                chunks: 2,
                max_exponent_mismatch_rate: exp,
                max_mean_mantissa_diff: 3.0,
                max_mantissa_diff: 9,
            }),
            chunk_bytes: 256,
            generate_seconds: 1.0,
            check_seconds: 0.1,
        }
    }

    #[test]
    fn thresholds_widen_the_worst_honest_figures() {
        let t = derive(&[sample(1.0, 0.0, 0.01), sample(0.9, 1.0, 0.1)], 2.0);
        assert!((t.min_token_match_rate - 0.8).abs() < 1e-9);
        assert!((t.max_token_margin - 2.0).abs() < 1e-9);
        assert!((t.max_mean_margin - 0.2).abs() < 1e-9);
        assert!((t.max_exponent_mismatch_rate - 0.2).abs() < 1e-9);
        assert!((t.max_mean_mantissa_diff - 6.0).abs() < 1e-9);
        // A spotless calibration still leaves the floors.
        let clean = derive(&[sample(1.0, 0.0, 0.0)], 2.0);
        assert!((clean.min_token_match_rate - 0.96).abs() < 1e-9);
        assert!((clean.max_token_margin - 0.5).abs() < 1e-9);
    }
}
