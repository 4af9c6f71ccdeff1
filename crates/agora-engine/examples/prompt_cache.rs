//! What prompt caching saves: the default model answering chat requests
//! that share a long system prompt (about 700 tokens), one job at a time,
//! with the prompt cache off and on; prints the mean time to the first
//! token, the cached tokens per job and the speed-up.
//!
//! `cargo run --release -p agora-engine --example prompt_cache`

use std::time::{Duration, Instant};

use agora_engine::{EngineEvent, GenerateRequest, InferenceEngine, LlamaEngine, LlamaEngineConfig};
use agora_types::{ChatMessage, JobInput, SamplingParams};

const QUESTIONS: [&str; 6] = [
    "Who sets the prices?",
    "Can a provider read my prompt?",
    "How are cheaters caught?",
    "What does a validator do?",
    "How do I get an API key?",
    "What happens when my budget runs out?",
];

/// A system prompt of the length agents and tools often send.
fn system_prompt() -> String {
    let rule = "Providers run open models on their own machines and are paid per token. \
        Validators audit a random fraction of jobs by replaying them, and slash \
        providers whose answers do not match. ";
    format!(
        "You answer questions about a decentralized inference network. {}",
        rule.repeat(18)
    )
}

/// Run one job; returns the time to its first event after `Started`, and
/// the cached prompt tokens it reported.
fn first_token(engine: &LlamaEngine, system: &str, question: &str) -> (Duration, u32) {
    let message = |role: &str, content: &str| ChatMessage {
        role: role.into(),
        content: content.into(),
    };
    let input = JobInput::Chat {
        messages: vec![message("system", system), message("user", question)],
    };
    let params = SamplingParams::new(4, 0.0, 1.0, vec![], 1);
    let start = Instant::now();
    let mut rx = engine
        .generate(GenerateRequest { input, params })
        .expect("job accepted");
    let mut cached = 0;
    while let Some(event) = rx.blocking_recv() {
        match event {
            EngineEvent::Started { cached_tokens, .. } => cached = cached_tokens,
            EngineEvent::Text(_) | EngineEvent::Finished { .. } => {
                let elapsed = start.elapsed();
                while rx.blocking_recv().is_some() {}
                return (elapsed, cached);
            }
            EngineEvent::Failed(m) => panic!("job failed: {m}"),
            _ => {}
        }
    }
    panic!("no output")
}

fn main() {
    let path = agora_models::default_model_path();
    let system = system_prompt();
    println!("| prompt cache | jobs | prompt tokens | cached tokens/job | mean time to first token (ms) |");
    println!("|---|---|---|---|---|");
    let mut means = Vec::new();
    for cache in [false, true] {
        let config = LlamaEngineConfig {
            threads: 2,
            max_sequences: 1,
            prompt_cache: cache,
            ..LlamaEngineConfig::default()
        };
        let engine = LlamaEngine::load(&path, config).expect("run `agora model fetch` first");
        let prompt_tokens = engine
            .tokenize(&JobInput::Chat {
                messages: vec![ChatMessage {
                    role: "system".into(),
                    content: system.clone(),
                }],
            })
            .expect("the prompt fits")
            .len();
        // Warm up (and, with the cache on, leave the system prompt behind).
        first_token(&engine, &system, "Hello.");
        let (mut total, mut cached) = (Duration::ZERO, 0u64);
        for question in QUESTIONS {
            let (elapsed, c) = first_token(&engine, &system, question);
            total += elapsed;
            cached += u64::from(c);
        }
        let jobs = QUESTIONS.len() as u32;
        let mean = total / jobs;
        means.push(mean);
        println!(
            "| {} | {jobs} | ~{prompt_tokens} | {} | {:.1} |",
            if cache { "on" } else { "off" },
            cached / u64::from(jobs),
            mean.as_secs_f64() * 1e3
        );
        engine.shutdown();
    }
    println!(
        "\ntime to first token with the cache: {:.2}x faster",
        means[0].as_secs_f64() / means[1].as_secs_f64()
    );
}
