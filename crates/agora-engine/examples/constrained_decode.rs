//! What the grammar mask costs: the default model generating 64 tokens per
//! job, greedy, the same prompts free and under `response_format:
//! json_object`, one job at a time; prints tokens/s for each and the ratio.
//!
//! `cargo run --release -p agora-engine --example constrained_decode`

use std::time::Instant;

use agora_engine::{EngineEvent, GenerateRequest, InferenceEngine, LlamaEngine, LlamaEngineConfig};
use agora_types::{ChatMessage, JobInput, OutputConstraint, SamplingParams};

const JOBS: usize = 6;
const MAX_TOKENS: u32 = 64;

/// Run one job to its end; returns the tokens generated.
fn run(engine: &LlamaEngine, prompt: &str, constraint: Option<OutputConstraint>) -> usize {
    let mut params = SamplingParams::new(MAX_TOKENS, 0.0, 1.0, vec![], 1);
    params.constraint = constraint;
    let input = JobInput::Chat {
        messages: vec![ChatMessage {
            role: "user".into(),
            content: prompt.into(),
        }],
    };
    let mut rx = engine
        .generate(GenerateRequest { input, params })
        .expect("job accepted");
    while let Some(event) = rx.blocking_recv() {
        match event {
            EngineEvent::Finished { output_tokens, .. } => return output_tokens.len(),
            EngineEvent::Failed(m) => panic!("job failed: {m}"),
            _ => {}
        }
    }
    panic!("no Finished event")
}

fn main() {
    let path = agora_models::default_model_path();
    let config = LlamaEngineConfig {
        threads: 2,
        max_sequences: 1,
        ..LlamaEngineConfig::default()
    };
    let engine = LlamaEngine::load(&path, config).expect("run `agora model fetch` first");
    let prompts = [
        "Describe Lisbon in a few words.",
        "List three colours.",
        "Give me a user profile for Ada.",
    ];
    // Warm up, and build the constrained vocabulary once (as a provider does).
    run(&engine, prompts[0], Some(OutputConstraint::JsonObject));
    println!("| mode | jobs | tokens | seconds | tokens/s |");
    println!("|---|---|---|---|---|");
    let mut rates = Vec::new();
    for (name, constraint) in [
        ("free", None),
        ("json_object", Some(OutputConstraint::JsonObject)),
    ] {
        let start = Instant::now();
        let tokens: usize = (0..JOBS)
            .map(|i| run(&engine, prompts[i % prompts.len()], constraint.clone()))
            .sum();
        let secs = start.elapsed().as_secs_f64();
        let rate = tokens as f64 / secs;
        rates.push(rate);
        println!("| {name} | {JOBS} | {tokens} | {secs:.2} | {rate:.1} |");
    }
    println!("constrained / free: {:.2}", rates[1] / rates[0]);
}
