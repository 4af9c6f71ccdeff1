//! Embedding throughput of [`LlamaEmbedder`] on the cached embedding model
//! (`agora model fetch --embedding`): 20 requests of 32 short sentences each,
//! then the same 32 sentences one request at a time. Two threads.
//!
//! `cargo run --release -p agora-engine --example embed_throughput`

use std::time::Instant;

use agora_engine::{Embedded, EmbeddingEngine, LlamaEmbedder, LlamaEmbedderConfig};

const ROUNDS: usize = 20;

fn run(engine: &LlamaEmbedder, inputs: Vec<String>) -> Embedded {
    let reply = engine.embed(inputs).expect("request accepted");
    reply
        .blocking_recv()
        .expect("worker replied")
        .expect("embedded")
}

fn main() {
    let path = agora_models::embedding_model_path();
    let config = LlamaEmbedderConfig {
        threads: 2,
        queue_capacity: 8,
    };
    let engine = LlamaEmbedder::load(&path, config).expect("run `agora model fetch --embedding`");
    let base = [
        "The cat sits on the mat.",
        "A kitten is resting on a rug.",
        "Quarterly revenue rose by eight percent.",
        "Rust programs compile to native code.",
    ];
    let inputs: Vec<String> = (0..32).map(|i| format!("{} ({i})", base[i % 4])).collect();
    run(&engine, inputs.clone()); // warm-up
    let start = Instant::now();
    let tokens: u64 = (0..ROUNDS)
        .map(|_| run(&engine, inputs.clone()).prompt_tokens())
        .sum();
    let secs = start.elapsed().as_secs_f64();
    let n = (ROUNDS * inputs.len()) as f64;
    println!(
        "batch of 32: {:.1} inputs/s, {:.0} tokens/s ({:.1} tokens per input)",
        n / secs,
        tokens as f64 / secs,
        tokens as f64 / n
    );
    let start = Instant::now();
    for text in &inputs {
        run(&engine, vec![text.clone()]);
    }
    let secs = start.elapsed().as_secs_f64();
    println!("one at a time: {:.1} inputs/s", inputs.len() as f64 / secs);
}
