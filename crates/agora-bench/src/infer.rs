//! `agora bench infer`: the provider's engine against a minimal llama.cpp loop
//! over the same build, model and threads. Prints prefill and decode speeds,
//! time to first token, aggregate decode at several concurrent streams, peak
//! RSS, the engine/reference ratios, and teacher-forced prefill scoring of a
//! 256-token output against generating it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_engine::{
    reference_loop, EngineEvent, GenerateRequest, InferenceEngine, KvCache, LlamaEngine,
    LlamaEngineConfig, ScoreRequest,
};
use agora_tasks::{fail, Context, Failure};
use agora_types::{JobInput, SamplingParams};
use serde_json::json;

use crate::{InferArgs, Result};

/// Prompt of every run: plain text, so no chat template differs between loops.
const PROMPT: &str = "The history of the lighthouse begins with the ancient harbours of the Mediterranean, where fires were lit on hills to guide ships home. Over the centuries";

/// Output tokens scored by the prefill-scoring rows.
const SCORE_TOKENS: usize = 256;

/// One engine job's timings.
struct JobTiming {
    ttft: Duration,
    first_to_last: Duration,
    tokens: usize,
    /// From submitting the job to its `Finished` event.
    total: Duration,
    prompt_tokens: Vec<i32>,
    output_tokens: Vec<i32>,
    /// When each `Text` event arrived (about one per token).
    text_at: Vec<Instant>,
}

/// Aggregate speed of several concurrent streams.
struct Aggregate {
    /// All generated tokens over the wall time from submission to the last
    /// finish (prefill included).
    wall: f64,
    /// Tokens per second while every stream was generating: from the last
    /// stream's first token to the first stream's finish (what the reference
    /// loop's decode figure measures).
    decode: f64,
}

/// Prefill scoring against generation of the same output.
struct ScoringFigures {
    prompt_tokens: usize,
    output_tokens: usize,
    generation_tokens_per_s: f64,
    scoring_tokens_per_s: f64,
    scoring_hidden_tokens_per_s: f64,
}

/// Run one job to completion on the calling thread.
fn job(engine: &LlamaEngine, tokens: u32, seed: u64) -> Result<JobTiming> {
    let params = SamplingParams::new(tokens, 0.0, 1.0, vec![], seed);
    let start = Instant::now();
    let mut rx = engine.generate(GenerateRequest {
        input: JobInput::Text {
            prompt: PROMPT.into(),
        },
        params,
    })?;
    let mut first = None;
    let mut prompt_tokens = Vec::new();
    let mut text_at = Vec::new();
    while let Some(event) = rx.blocking_recv() {
        match event {
            EngineEvent::Started {
                prompt_tokens: p, ..
            } => prompt_tokens = p,
            EngineEvent::Logprob(_) | EngineEvent::Embeddings(_) => {}
            EngineEvent::Text(_) => {
                text_at.push(Instant::now());
                first.get_or_insert_with(Instant::now);
            }
            EngineEvent::Finished { output_tokens, .. } => {
                let first = first.unwrap_or_else(Instant::now);
                return Ok(JobTiming {
                    ttft: first - start,
                    first_to_last: first.elapsed(),
                    tokens: output_tokens.len(),
                    total: start.elapsed(),
                    prompt_tokens,
                    output_tokens,
                    text_at,
                });
            }
            EngineEvent::Failed(m) => fail!("engine job failed: {m}"),
        }
    }
    fail!("engine stopped mid-job")
}

/// Aggregate tokens/s with `streams` jobs submitted at once.
fn engine_aggregate(engine: &Arc<LlamaEngine>, tokens: u32, streams: usize) -> Result<Aggregate> {
    let start = Instant::now();
    let handles: Vec<_> = (0..streams)
        .map(|i| {
            let engine = engine.clone();
            std::thread::spawn(move || job(&engine, tokens, i as u64))
        })
        .collect();
    let mut jobs = Vec::new();
    for h in handles {
        jobs.push(
            h.join()
                .map_err(|_| Failure::msg("bench thread panicked"))??,
        );
    }
    let total: usize = jobs.iter().map(|j| j.tokens).sum();
    let wall = total as f64 / start.elapsed().as_secs_f64();
    // The window in which every stream was generating.
    let from = jobs.iter().filter_map(|j| j.text_at.first()).max();
    let to = jobs.iter().filter_map(|j| j.text_at.last()).min();
    let decode = match (from, to) {
        (Some(&from), Some(&to)) if to > from => {
            let inside = |t: &&Instant| **t > from && **t <= to;
            let n: usize = jobs
                .iter()
                .map(|j| j.text_at.iter().filter(inside).count())
                .sum();
            n as f64 / (to - from).as_secs_f64()
        }
        _ => wall,
    };
    Ok(Aggregate { wall, decode })
}

/// Generate a [`SCORE_TOKENS`]-token job, then score its prompt and output in
/// one prefill pass (after a warm-up pass), with and without hidden states.
/// Tokens/s of either is output tokens over the whole call's wall time.
fn scoring(engine: &LlamaEngine) -> Result<ScoringFigures> {
    let generated = job(engine, SCORE_TOKENS as u32, 2)?;
    // A job that ends early is cycled up to full length: any tokens can be scored.
    let output: Vec<i32> = generated
        .output_tokens
        .iter()
        .copied()
        .cycle()
        .take(SCORE_TOKENS)
        .collect();
    if output.is_empty() {
        fail!("the scoring job generated no tokens");
    }
    let mut request = ScoreRequest {
        prompt_tokens: generated.prompt_tokens.clone(),
        output_tokens: output,
        top_k: 5,
        ..ScoreRequest::default()
    };
    let timed = |request: &ScoreRequest| -> Result<f64> {
        let start = Instant::now();
        let scored = engine.score(request)?;
        Ok(scored.positions.len() as f64 / start.elapsed().as_secs_f64())
    };
    engine.score(&request).context("scoring warm-up")?;
    let scoring_tokens_per_s = timed(&request)?;
    request.want_hidden = true;
    let scoring_hidden_tokens_per_s = timed(&request)?;
    Ok(ScoringFigures {
        prompt_tokens: generated.prompt_tokens.len(),
        output_tokens: SCORE_TOKENS,
        generation_tokens_per_s: generated.tokens as f64 / generated.total.as_secs_f64(),
        scoring_tokens_per_s,
        scoring_hidden_tokens_per_s,
    })
}

/// Peak resident set size of this process since start or since the last
/// [`reset_peak_rss`], in MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Reset the peak RSS to the current RSS (Linux: `5` into `clear_refs`), so
/// the next phase's peak is its own. Returns false where that is not possible.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak RSS of each phase of the run, in MiB.
struct RssFigures {
    /// The engine (what a provider process holds) through every stream count.
    engine: Option<f64>,
    /// The reference loop alone, after the engine was shut down.
    reference: Option<f64>,
}

/// Run the benchmark and print a table (or JSON).
///
/// The engine runs first and is shut down (its context freed) before the
/// reference loop starts, so only one llama.cpp context computes at a time.
pub fn run(args: InferArgs) -> Result<()> {
    let path = match args.model.clone() {
        Some(p) => p,
        None => agora_models::ensure_default_model(&mut std::io::stderr())?,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| LlamaEngineConfig::default().threads);
    let max_streams = args.streams.iter().copied().max().unwrap_or(1);
    let defaults = LlamaEngineConfig::default();
    let config = LlamaEngineConfig {
        threads,
        queue_capacity: max_streams.max(1),
        commitments: !args.no_commitments,
        context_length: args.context_length.unwrap_or(defaults.context_length),
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        kv_cache: if args.kv_f16 {
            KvCache::F16
        } else {
            defaults.kv_cache
        },
        // Every job here repeats one prompt: measure computing it, not a cache hit.
        prompt_cache: false,
        ..defaults
    };
    let engine = Arc::new(
        LlamaEngine::load(&path, config).with_context(|| format!("loading {}", path.display()))?,
    );
    job(&engine, 8, 0).context("warm-up")?;
    let single = job(&engine, args.tokens, 1)?;
    let prompt_tokens = engine
        .tokenize(&JobInput::Text {
            prompt: PROMPT.into(),
        })?
        .len();
    let engine_decode = single.tokens.saturating_sub(1) as f64 / single.first_to_last.as_secs_f64();
    let engine_prefill = prompt_tokens as f64 / single.ttft.as_secs_f64();

    let mut ours = Vec::new();
    for &streams in &args.streams {
        ours.push(engine_aggregate(&engine, args.tokens, streams)?);
    }
    let engine_rss = peak_rss_mib();
    let scored = scoring(&engine)?;
    Arc::try_unwrap(engine)
        .map_err(|_| Failure::msg("engine still shared after its jobs"))?
        .shutdown();

    let reset = reset_peak_rss();
    let mut rows = Vec::new();
    for (&streams, ours) in args.streams.iter().zip(ours) {
        let reference = reference_loop(&path, threads, PROMPT, args.tokens, streams)?;
        rows.push((streams, ours, reference));
    }
    let rss = RssFigures {
        engine: engine_rss,
        reference: peak_rss_mib().filter(|_| reset),
    };
    print(
        &args,
        &path,
        threads,
        prompt_tokens,
        engine_prefill,
        engine_decode,
        single.ttft,
        &rows,
        &scored,
        &rss,
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn print(
    args: &InferArgs,
    path: &Path,
    threads: usize,
    prompt_tokens: usize,
    prefill: f64,
    decode: f64,
    ttft: Duration,
    rows: &[(usize, Aggregate, agora_engine::ReferenceFigures)],
    scored: &ScoringFigures,
    rss: &RssFigures,
) {
    let one = rows.iter().find(|r| r.0 == 1).map(|r| &r.2);
    if args.json {
        let streams: Vec<_> = rows
            .iter()
            .map(|(n, ours, r)| json!({"streams": n,
                "engine_decode_tokens_per_s": ours.decode, "reference_decode_tokens_per_s": r.decode_tokens_per_s, "decode_ratio": ours.decode / r.decode_tokens_per_s,
                "engine_wall_tokens_per_s": ours.wall, "reference_wall_tokens_per_s": r.wall_tokens_per_s, "wall_ratio": ours.wall / r.wall_tokens_per_s}))
            .collect();
        let v = json!({
            "model": path, "threads": threads, "prompt_tokens": prompt_tokens, "tokens_per_stream": args.tokens,
            "engine": {"prefill_tokens_per_s": prefill, "decode_tokens_per_s": decode, "ttft_ms": ttft.as_secs_f64() * 1e3},
            "reference_single": one.map(|r| json!({"prefill_tokens_per_s": r.prefill_tokens_per_s, "decode_tokens_per_s": r.decode_tokens_per_s})),
            "aggregate": streams,
            "engine_peak_rss_mib": rss.engine, "reference_peak_rss_mib": rss.reference,
            "scoring": {"prompt_tokens": scored.prompt_tokens, "output_tokens": scored.output_tokens,
                "generation_tokens_per_s": scored.generation_tokens_per_s,
                "prefill_scoring_tokens_per_s": scored.scoring_tokens_per_s,
                "prefill_scoring_hidden_tokens_per_s": scored.scoring_hidden_tokens_per_s,
                "scoring_over_generation": scored.scoring_tokens_per_s / scored.generation_tokens_per_s},
        });
        println!("{v}");
        return;
    }
    println!(
        "model {} | threads {threads} | prompt {prompt_tokens} tokens | {} tokens per stream",
        path.display(),
        args.tokens
    );
    let defaults = LlamaEngineConfig::default();
    println!(
        "engine: context {} per sequence | batch {} | KV cache {}",
        args.context_length.unwrap_or(defaults.context_length),
        args.batch_size.unwrap_or(defaults.batch_size),
        if args.kv_f16 { "f16" } else { "q8_0" }
    );
    println!();
    println!("| figure | engine | reference loop | engine / reference |");
    println!("|---|---|---|---|");
    if let Some(r) = one {
        println!(
            "| prefill tok/s | {prefill:.0} | {:.0} | {:.2} |",
            r.prefill_tokens_per_s,
            prefill / r.prefill_tokens_per_s
        );
        println!(
            "| single-stream decode tok/s | {decode:.1} | {:.1} | {:.2} |",
            r.decode_tokens_per_s,
            decode / r.decode_tokens_per_s
        );
    }
    println!(
        "| time to first token (ms) | {:.1} | | |",
        ttft.as_secs_f64() * 1e3
    );
    for (n, ours, r) in rows {
        println!(
            "| aggregate decode tok/s, {n} streams (all generating) | {:.1} | {:.1} | {:.2} |",
            ours.decode,
            r.decode_tokens_per_s,
            ours.decode / r.decode_tokens_per_s
        );
        println!(
            "| aggregate tok/s, {n} streams (wall, prefill included) | {:.1} | {:.1} | {:.2} |",
            ours.wall,
            r.wall_tokens_per_s,
            ours.wall / r.wall_tokens_per_s
        );
    }
    let n = scored.output_tokens;
    println!(
        "| generation tok/s, {n}-token job (prompt {} tokens, wall time) | {:.1} | | |",
        scored.prompt_tokens, scored.generation_tokens_per_s
    );
    println!(
        "| prefill scoring tok/s, same {n} tokens | {:.0} | | |",
        scored.scoring_tokens_per_s
    );
    println!(
        "| prefill scoring with hidden states tok/s | {:.0} | | |",
        scored.scoring_hidden_tokens_per_s
    );
    println!(
        "| prefill scoring / generation | {:.1} | | |",
        scored.scoring_tokens_per_s / scored.generation_tokens_per_s
    );
    let mib = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.0}"));
    println!(
        "| peak RSS (MiB), up to {} streams | {} | {} | |",
        args.streams.iter().copied().max().unwrap_or(1),
        mib(rss.engine),
        mib(rss.reference)
    );
}
