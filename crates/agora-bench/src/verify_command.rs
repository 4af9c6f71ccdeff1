//! `agora verify`: calibrate replay thresholds on honest jobs (a table of
//! score distributions and audit cost) and check one transcript.

use std::path::PathBuf;

use agora_engine::{LlamaEngine, LlamaEngineConfig};
use agora_tasks::{fail, Context};
use agora_types::Transcript;
use agora_verify::{calibrate, check_job, CalibrationConfig, ThresholdBook, Thresholds};
use clap::{Args, Subcommand};

use crate::Result;

/// `agora verify ...`.
#[derive(Subcommand, Debug)]
pub enum VerifyCommand {
    /// Run honest jobs (thread counts × batch sizes), audit them, print the score distribution and thresholds.
    Calibrate(VerifyCalibrateArgs),
    /// Audit one transcript (JSON, as `GET /v1/transcripts/{id}` returns it) against a model.
    Check(VerifyCheckArgs),
}

/// `agora verify calibrate`.
#[derive(Args, Debug)]
pub struct VerifyCalibrateArgs {
    /// GGUF file (default: the default model, fetched if missing).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Jobs per (thread count, concurrency) combination.
    #[arg(long, default_value_t = 8)]
    pub jobs: usize,
    /// Tokens per job at most.
    #[arg(long, default_value_t = 48)]
    pub tokens: u32,
    /// Generation thread counts to try.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Concurrent jobs per batch to try.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub concurrency: Vec<usize>,
    /// Store the thresholds for this model in this threshold book (JSON).
    #[arg(long)]
    pub book: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `agora verify check`.
#[derive(Args, Debug)]
pub struct VerifyCheckArgs {
    /// Transcript JSON file.
    #[arg(long)]
    pub transcript: PathBuf,
    /// GGUF file of the receipt's model (default: the default model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Threshold book to read the model's thresholds from (default thresholds otherwise).
    #[arg(long)]
    pub book: Option<PathBuf>,
}

/// Run an `agora verify` subcommand (blocking).
pub fn run_verify(command: VerifyCommand) -> Result<()> {
    match command {
        VerifyCommand::Calibrate(args) => run_calibrate(args),
        VerifyCommand::Check(args) => run_check(args),
    }
}

fn model_path(model: Option<PathBuf>) -> Result<PathBuf> {
    Ok(match model {
        Some(p) => p,
        None => agora_models::ensure_default_model(&mut std::io::stderr())?,
    })
}

fn run_calibrate(args: VerifyCalibrateArgs) -> Result<()> {
    let path = model_path(args.model)?;
    let config = CalibrationConfig {
        jobs: args.jobs,
        max_tokens: args.tokens,
        thread_counts: args.threads,
        concurrency: args.concurrency,
        ..CalibrationConfig::new(path.clone())
    };
    let started = std::time::Instant::now();
    let result = calibrate(&config)?;
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(book_path) = &args.book {
        let mut book = ThresholdBook::load(book_path)?;
        book.insert(&agora_models::model_id(&path)?, result.thresholds);
        book.save(book_path)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
        return Ok(());
    }
    println!(
        "{} honest jobs in {elapsed:.1} s\n{:>7} {:>5} {:>5} {:>6} {:>7} {:>10} {:>10} {:>8} {:>9}",
        result.samples.len(),
        "threads",
        "conc",
        "temp",
        "tokens",
        "match",
        "mean marg",
        "max marg",
        "exp mis",
        "mant diff"
    );
    for s in &result.samples {
        let (exp, mant) = s.commitments.map_or((f64::NAN, f64::NAN), |c| {
            (c.max_exponent_mismatch_rate, c.max_mean_mantissa_diff)
        });
        println!(
            "{:>7} {:>5} {:>5.2} {:>6} {:>7.3} {:>10.4} {:>10.4} {:>8.3} {:>9.2}",
            s.threads,
            s.concurrency,
            s.temperature,
            s.output_tokens,
            s.tokens.match_rate,
            s.tokens.mean_margin,
            s.tokens.max_margin,
            exp,
            mant
        );
    }
    // Audit cost against generation, over jobs that ran alone (no batch overlap).
    let alone: Vec<_> = result
        .samples
        .iter()
        .filter(|s| s.concurrency == 1)
        .collect();
    let tokens: usize = alone.iter().map(|s| s.output_tokens).sum();
    let generate: f64 = alone.iter().map(|s| s.generate_seconds).sum();
    let check: f64 = alone.iter().map(|s| s.check_seconds).sum();
    if generate > 0.0 && check > 0.0 {
        println!(
            "jobs run alone: generation {:.1} tok/s, audit {:.1} tok/s (audit time / generation time {:.2})",
            tokens as f64 / generate,
            tokens as f64 / check,
            check / generate
        );
    }
    let bytes: usize = result.samples.iter().map(|s| s.chunk_bytes).sum();
    let all_tokens: usize = result.samples.iter().map(|s| s.output_tokens).sum();
    if all_tokens > 0 {
        println!(
            "chunk commitment bytes per generated token: {:.2}",
            bytes as f64 / all_tokens as f64
        );
    }
    println!(
        "thresholds: {}",
        serde_json::to_string_pretty(&result.thresholds)?
    );
    Ok(())
}

fn run_check(args: VerifyCheckArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.transcript)
        .with_context(|| format!("reading {}", args.transcript.display()))?;
    let transcript: Transcript = serde_json::from_str(&text)
        .with_context(|| format!("parsing the transcript {}", args.transcript.display()))?;
    let path = model_path(args.model)?;
    let model = agora_models::model_id(&path)?;
    if model != transcript.receipt.receipt.model {
        fail!(
            "{} is model {model}, but the receipt names {}",
            path.display(),
            transcript.receipt.receipt.model
        );
    }
    let thresholds = match &args.book {
        Some(book) => ThresholdBook::load(book)?.get(&model).unwrap_or_default(),
        None => Thresholds::default(),
    };
    let engine = LlamaEngine::load(
        &path,
        LlamaEngineConfig {
            commitments: false,
            ..LlamaEngineConfig::default()
        },
    )?;
    let verdict = check_job(&engine, &transcript, &thresholds)?;
    println!("{}", serde_json::to_string_pretty(&verdict)?);
    if !verdict.passed {
        fail!("the job failed verification");
    }
    Ok(())
}
