//! `agora bench verify`: runs each adversary (`agora_provider::AdversarialEngine`)
//! and honest jobs under mixed threads and concurrency, audits every job with
//! `agora_verify::check_job` exactly as a validator replays a transcript, and
//! prints detection per adversary, honest false positives, audit cost against
//! generation, commitment bytes per token and the cheater's expected profit.

use std::path::Path;
use std::time::{Duration, Instant};

use agora_engine::{GenerateRequest, InferenceEngine, LlamaEngine, LlamaEngineConfig};
use agora_provider::{AdversarialEngine, Adversary};
use agora_tasks::{fail, Context};
use agora_types::{JobInput, Keypair, ModelId, SamplingParams, Transcript};
use agora_verify::calibrate::{finish_job, honest_job};
use agora_verify::{check_job, Thresholds};
use serde_json::{json, Value};

use crate::{Result, VerifyArgs};
use agora_validator::economics::{break_even_detection, expected_profit, Setting};

/// Honest runs: (generation threads, jobs decoded together).
const HONEST_COMBOS: [(usize, usize); 4] = [(1, 1), (1, 4), (2, 1), (2, 4)];

/// Job `i` of the benchmark: calibration prompt `i` (some with a system
/// message), with the sampling parameters and seed of calibration job
/// `i + i / 8`, so every prompt meets greedy and each sampled temperature.
fn bench_job(i: usize, max_tokens: u32) -> (JobInput, SamplingParams) {
    let (input, _) = honest_job(i, max_tokens);
    let (_, params) = honest_job(i + i / 8, max_tokens);
    (input, params)
}

fn has_system(input: &JobInput) -> bool {
    matches!(input, JobInput::Chat { messages } if messages.iter().any(|m| m.role == "system"))
}

/// The first `n` job indices a mode is measured on: `drop-system` only on
/// jobs that have a system message (without one it runs the honest job).
fn job_indices(mode: &Adversary, n: usize, max_tokens: u32) -> Vec<usize> {
    (0..)
        .filter(|&i| {
            !matches!(mode, Adversary::DropSystem) || has_system(&bench_job(i, max_tokens).0)
        })
        .take(n)
        .collect()
}

/// One audited job.
struct Audited {
    passed: bool,
    output_tokens: usize,
    match_rate: f64,
    reason: Option<String>,
    audit: Duration,
}

fn audit(scorer: &LlamaEngine, t: &Transcript, th: &Thresholds) -> Result<Audited> {
    let start = Instant::now();
    let v = check_job(scorer, t, th)?;
    Ok(Audited {
        passed: v.passed,
        output_tokens: t.output_tokens.len(),
        match_rate: v.tokens.match_rate,
        reason: v.reasons.first().cloned(),
        audit: start.elapsed(),
    })
}

/// Detection figures of one adversary.
struct ModeResult {
    mode: String,
    jobs: usize,
    detected: usize,
    mean_tokens: f64,
    mean_match_rate: f64,
    reason: Option<String>,
}

impl ModeResult {
    fn rate(&self) -> f64 {
        ratio(self.detected as f64, self.jobs as f64)
    }

    /// Jobs (and output tokens) to audit for a 99% chance of at least one
    /// detection, taking jobs as independent: n = ⌈ln 0.01 / ln(1 − d)⌉.
    fn to_99(&self) -> Option<(u64, f64)> {
        let d = self.rate();
        if d <= 0.0 {
            return None;
        }
        let n = if d >= 0.99 {
            1
        } else {
            (0.01f64.ln() / (1.0 - d).ln()).ceil() as u64
        };
        Some((n, n as f64 * self.mean_tokens))
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn run_mode(
    mode: &Adversary,
    path: &Path,
    args: &VerifyArgs,
    threads: usize,
    scorer: &LlamaEngine,
    key: &Keypair,
    model: ModelId,
) -> Result<ModeResult> {
    let config = LlamaEngineConfig {
        threads,
        max_sequences: 1,
        queue_capacity: 1,
        ..LlamaEngineConfig::default()
    };
    let engine = AdversarialEngine::load(mode.clone(), path, config)
        .with_context(|| format!("setting up adversary {mode}"))?;
    let th = Thresholds::default();
    let mut result = ModeResult {
        mode: mode.to_string(),
        jobs: 0,
        detected: 0,
        mean_tokens: 0.0,
        mean_match_rate: 0.0,
        reason: None,
    };
    let (mut tokens, mut matched) = (0usize, 0.0);
    for i in job_indices(mode, args.jobs, args.max_tokens) {
        let (input, params) = bench_job(i, args.max_tokens);
        let rx = engine.generate(GenerateRequest {
            input: input.clone(),
            params: params.clone(),
        })?;
        let t = finish_job(rx, key, model, input, params)?;
        let a = audit(scorer, &t, &th)?;
        result.jobs += 1;
        tokens += a.output_tokens;
        matched += a.match_rate;
        if !a.passed {
            result.detected += 1;
            result.reason = result.reason.or(a.reason);
        }
    }
    result.mean_tokens = ratio(tokens as f64, result.jobs as f64);
    result.mean_match_rate = ratio(matched, result.jobs as f64);
    Ok(result)
}

/// Honest figures of one (threads, concurrency) combination.
#[derive(Default)]
struct HonestRow {
    threads: usize,
    concurrency: usize,
    jobs: usize,
    false_positives: usize,
    tokens: usize,
    generation: Duration,
    audit: Duration,
    /// Borsh bytes of every job's commitments, and of their prompt chunks.
    commitment_bytes: usize,
    prompt_chunk_bytes: usize,
    /// First reason an honest job failed.
    reason: Option<String>,
}

fn run_honest(
    path: &Path,
    args: &VerifyArgs,
    scorer: &LlamaEngine,
    key: &Keypair,
    model: ModelId,
) -> Result<Vec<HonestRow>> {
    let th = Thresholds::default();
    let mut rows = Vec::new();
    let mut next = 0;
    for (c, &(threads, concurrency)) in HONEST_COMBOS.iter().enumerate() {
        let share = args.honest / HONEST_COMBOS.len() + usize::from(c < args.honest % 4);
        let engine = LlamaEngine::load(
            path,
            LlamaEngineConfig {
                threads,
                max_sequences: concurrency,
                queue_capacity: concurrency,
                ..LlamaEngineConfig::default()
            },
        )?;
        let mut row = HonestRow {
            threads,
            concurrency,
            ..HonestRow::default()
        };
        let end = next + share;
        while next < end {
            let group: Vec<usize> = (next..end.min(next + concurrency)).collect();
            next += group.len();
            let start = Instant::now();
            let mut running = Vec::new();
            for &i in &group {
                let (input, params) = bench_job(i, args.max_tokens);
                let rx = engine.generate(GenerateRequest {
                    input: input.clone(),
                    params: params.clone(),
                })?;
                running.push((rx, input, params));
            }
            let mut transcripts = Vec::new();
            for (rx, input, params) in running {
                transcripts.push(finish_job(rx, key, model, input, params)?);
            }
            row.generation += start.elapsed();
            for t in &transcripts {
                let a = audit(scorer, t, &th)?;
                row.jobs += 1;
                row.tokens += a.output_tokens;
                row.audit += a.audit;
                if !a.passed {
                    row.false_positives += 1;
                    row.reason = row.reason.take().or(a.reason);
                }
                if let Some(c) = &t.commitments {
                    row.commitment_bytes += borsh::to_vec(c)?.len();
                    row.prompt_chunk_bytes += borsh::to_vec(&c.prompt)?.len();
                }
            }
        }
        eprintln!(
            "honest threads {threads} concurrency {concurrency}: {} jobs, {} false positives",
            row.jobs, row.false_positives
        );
        rows.push(row);
    }
    Ok(rows)
}

/// Run the benchmark and print tables (or JSON).
pub fn run(args: VerifyArgs) -> Result<()> {
    let path = match args.model.clone() {
        Some(p) => p,
        None => agora_models::ensure_default_model(&mut std::io::stderr())?,
    };
    let modes = args
        .modes
        .iter()
        .map(|m| m.parse::<Adversary>())
        .collect::<Result<Vec<_>, _>>()?;
    if args.max_tokens == 0 {
        fail!("--max-tokens must be at least 1");
    }
    let threads = args
        .threads
        .unwrap_or_else(|| LlamaEngineConfig::default().threads);
    let scorer = LlamaEngine::load(
        &path,
        LlamaEngineConfig {
            threads,
            commitments: false,
            ..LlamaEngineConfig::default()
        },
    )
    .with_context(|| format!("loading {}", path.display()))?;
    let model = agora_models::model_id(&path)?;
    let key = Keypair::generate();
    let started = Instant::now();
    let mut results = Vec::new();
    for mode in &modes {
        let r = run_mode(mode, &path, &args, threads, &scorer, &key, model)?;
        eprintln!("{}: {}/{} detected", r.mode, r.detected, r.jobs);
        results.push(r);
    }
    let honest = run_honest(&path, &args, &scorer, &key, model)?;
    let elapsed = started.elapsed();
    let setting = Setting::new(
        &agora_devnet::devnet::DEVNET_PRICE,
        &agora_ledger::Params::default().audit,
    );
    let report = report(&args, &path, threads, &results, &honest, &setting, elapsed);
    if args.json {
        println!("{report}");
    } else {
        print_tables(&report);
    }
    Ok(())
}

fn report(
    args: &VerifyArgs,
    path: &Path,
    threads: usize,
    results: &[ModeResult],
    honest: &[HonestRow],
    s: &Setting,
    elapsed: Duration,
) -> Value {
    let adversaries: Vec<Value> = results
        .iter()
        .map(|r| {
            let to_99 = r.to_99();
            json!({
                "mode": r.mode, "jobs": r.jobs, "detected": r.detected,
                "detection_rate": r.rate(), "mean_output_tokens": r.mean_tokens,
                "mean_token_match_rate": r.mean_match_rate,
                "jobs_for_99pct": to_99.map(|t| t.0), "tokens_for_99pct": to_99.map(|t| t.1),
                "first_reason": r.reason,
                // Worst case for the network: the cheater keeps the whole price.
                "expected_profit_per_job": expected_profit(s.job_price, 1.0, s.audit_rate, r.rate(), s.collateral),
            })
        })
        .collect();
    let sum = |f: &dyn Fn(&HonestRow) -> f64| honest.iter().map(f).sum::<f64>();
    let jobs = sum(&|r| r.jobs as f64);
    let fps = sum(&|r| r.false_positives as f64);
    let tokens = sum(&|r| r.tokens as f64);
    let gen_s = sum(&|r| r.generation.as_secs_f64());
    let audit_s = sum(&|r| r.audit.as_secs_f64());
    let bytes = sum(&|r| r.commitment_bytes as f64);
    let prompt_bytes = sum(&|r| r.prompt_chunk_bytes as f64);
    let rows: Vec<Value> = honest
        .iter()
        .map(|r| {
            json!({
                "threads": r.threads, "concurrency": r.concurrency, "jobs": r.jobs,
                "false_positives": r.false_positives,
                "generation_ms_per_job": ratio(r.generation.as_secs_f64() * 1e3, r.jobs as f64),
                "audit_ms_per_job": ratio(r.audit.as_secs_f64() * 1e3, r.jobs as f64),
                "audit_over_generation": ratio(r.audit.as_secs_f64(), r.generation.as_secs_f64()),
                "first_reason": r.reason,
            })
        })
        .collect();
    json!({
        "model": path, "threads": threads, "max_tokens": args.max_tokens,
        "thresholds": Thresholds::default(), "seconds": elapsed.as_secs_f64(),
        "adversaries": adversaries,
        "honest": {
            "rows": rows, "jobs": jobs, "false_positives": fps,
            "false_positive_rate": ratio(fps, jobs), "output_tokens": tokens,
            "audit_over_generation": ratio(audit_s, gen_s),
            "audit_over_generation_at_audit_rate": ratio(audit_s, gen_s) * s.audit_rate,
            "commitment_bytes_per_token": ratio(bytes, tokens),
            "commitment_bytes_per_token_without_prompt_chunk": ratio(bytes - prompt_bytes, tokens),
        },
        "economics": {
            "price": agora_devnet::devnet::DEVNET_PRICE, "reference_job_price": s.job_price,
            "collateral": s.collateral, "audit_rate": s.audit_rate,
            "cost_saving_assumed": 1.0,
            "break_even_detection": break_even_detection(s.job_price, 1.0, s.audit_rate, s.collateral),
        },
    })
}

fn print_tables(r: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "model {} | threads {} | ≤ {} tokens per job | default thresholds | {:.0} s",
        r["model"].as_str().unwrap_or("?"),
        r["threads"],
        r["max_tokens"],
        f(&r["seconds"])
    );
    let e = &r["economics"];
    println!();
    println!(
        "| adversary | jobs | detected | detection rate | mean tokens | mean token match | audited jobs (tokens) for 99% | E[profit]/job | first reason |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for a in r["adversaries"].as_array().into_iter().flatten() {
        let to_99 = match (a["jobs_for_99pct"].as_u64(), a["tokens_for_99pct"].as_f64()) {
            (Some(n), Some(t)) => format!("{n} ({t:.0})"),
            _ => "never".into(),
        };
        println!(
            "| {} | {} | {} | {:.1}% | {:.1} | {:.3} | {to_99} | {:.1} | {} |",
            a["mode"].as_str().unwrap_or("?"),
            a["jobs"],
            a["detected"],
            100.0 * f(&a["detection_rate"]),
            f(&a["mean_output_tokens"]),
            f(&a["mean_token_match_rate"]),
            f(&a["expected_profit_per_job"]),
            a["first_reason"].as_str().unwrap_or("-")
        );
    }
    let h = &r["honest"];
    println!();
    println!("| threads | concurrency | honest jobs | false positives | generation ms/job | audit ms/job | audit / generation |");
    println!("|---|---|---|---|---|---|---|");
    for row in h["rows"].as_array().into_iter().flatten() {
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.3} |",
            row["threads"],
            row["concurrency"],
            row["jobs"],
            row["false_positives"],
            f(&row["generation_ms_per_job"]),
            f(&row["audit_ms_per_job"]),
            f(&row["audit_over_generation"])
        );
    }
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| false positives | {:.0} / {:.0} ({:.3}%) |",
        f(&h["false_positives"]),
        f(&h["jobs"]),
        100.0 * f(&h["false_positive_rate"])
    );
    println!(
        "| audit / generation, per audited job | {:.3} |",
        f(&h["audit_over_generation"])
    );
    println!(
        "| audit / generation × audit rate {:.2} | {:.4} |",
        f(&e["audit_rate"]),
        f(&h["audit_over_generation_at_audit_rate"])
    );
    println!(
        "| commitment bytes per output token (prompt chunk included) | {:.1} |",
        f(&h["commitment_bytes_per_token"])
    );
    println!(
        "| commitment bytes per output token (output chunks only) | {:.1} |",
        f(&h["commitment_bytes_per_token_without_prompt_chunk"])
    );
    println!(
        "| economics: reference job price / collateral / audit rate | {} / {} / {:.2} |",
        e["reference_job_price"],
        e["collateral"],
        f(&e["audit_rate"])
    );
    println!(
        "| economics: break-even detection rate (cheater saves the whole price) | {:.3} |",
        f(&e["break_even_detection"])
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_jobs_cover_greedy_and_sampling_on_every_prompt() {
        // Prompt 0 meets greedy (job 0) and a sampled temperature (job 8).
        let (a, pa) = bench_job(0, 16);
        let (b, pb) = bench_job(8, 16);
        assert_eq!(a, b);
        assert_eq!(pa.temperature, 0.0);
        assert!(pb.temperature > 0.0);
        assert_ne!(pa.seed, pb.seed);
    }

    #[test]
    fn drop_system_is_measured_only_on_jobs_with_a_system_message() {
        let idx = job_indices(&Adversary::DropSystem, 5, 16);
        assert_eq!(idx.len(), 5);
        assert!(idx.iter().all(|&i| has_system(&bench_job(i, 16).0)));
        assert_eq!(job_indices(&Adversary::Tamper, 5, 16), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn jobs_for_99_percent_follow_the_detection_rate() {
        let r = |detected| ModeResult {
            mode: "x".into(),
            jobs: 100,
            detected,
            mean_tokens: 32.0,
            mean_match_rate: 0.5,
            reason: None,
        };
        assert_eq!(r(100).to_99(), Some((1, 32.0)));
        // 1 - 0.5^7 = 0.992 ≥ 0.99 > 1 - 0.5^6.
        assert_eq!(r(50).to_99(), Some((7, 224.0)));
        assert_eq!(r(0).to_99(), None);
    }
}
