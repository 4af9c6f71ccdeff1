//! Re-quantizing the real default model with llama.cpp, and the vocabulary-only
//! [`Tokenizer`] agreeing with the full engine.

use agora_engine::{
    quantize, EngineEvent, GenerateRequest, InferenceEngine, LlamaEngine, LlamaEngineConfig,
    QuantType, Tokenizer,
};
use agora_testkit::model;
use agora_types::{ChatMessage, JobInput, SamplingParams};

fn config() -> LlamaEngineConfig {
    LlamaEngineConfig {
        context_length: 256,
        queue_capacity: 2,
        max_sequences: 1,
        ..model::config()
    }
}

fn chat(text: &str) -> JobInput {
    JobInput::Chat {
        messages: vec![ChatMessage {
            role: "user".into(),
            content: text.into(),
        }],
    }
}

/// Greedy output tokens of a short job.
fn greedy(engine: &LlamaEngine, input: JobInput) -> Vec<i32> {
    let request = GenerateRequest {
        input,
        params: SamplingParams::new(16, 0.0, 1.0, vec![], 1),
    };
    let mut rx = engine.generate(request).unwrap();
    while let Some(event) = rx.blocking_recv() {
        match event {
            EngineEvent::Finished { output_tokens, .. } => return output_tokens,
            EngineEvent::Failed(m) => panic!("job failed: {m}"),
            EngineEvent::Embeddings(_) => panic!("vectors for a completion job"),
            _ => {}
        }
    }
    panic!("the engine stopped before finishing")
}

#[test]
fn requantized_copy_loads_and_reports_its_type() {
    let src = model::path();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("copy.Q8_0.gguf");
    let started = std::time::Instant::now();
    quantize(&src, &dst, QuantType::Q8_0).expect("quantizes");
    eprintln!("Q4_1 -> Q8_0 took {:?}", started.elapsed());
    let src_id = agora_models::model_id(&src).unwrap();
    let dst_id = agora_models::model_id(&dst).unwrap();
    assert_ne!(src_id, dst_id, "the copy is a different file");

    let copy = LlamaEngine::load(&dst, config()).expect("the copy loads");
    assert_eq!(copy.model_info().quantization, "Q8_0");
    let original = LlamaEngine::load(&src, config()).unwrap();
    assert_eq!(original.model_info().quantization, "Q4_1");
    assert_eq!(copy.vocab_size(), original.vocab_size());
    let input = chat("Name a colour.");
    let tokens = greedy(&copy, input.clone());
    assert!(!tokens.is_empty(), "the copy generates");
    assert_eq!(
        copy.tokenize(&input).unwrap(),
        original.tokenize(&input).unwrap()
    );
}

#[test]
fn tokenizer_matches_the_engine_and_round_trips_text() {
    let path = model::path();
    let engine = LlamaEngine::load(&path, config()).unwrap();
    let (tokenizer, info) = Tokenizer::load(&path, Some(256)).unwrap();
    assert_eq!(info.quantization, "Q4_1");
    assert_eq!(tokenizer.vocab_size(), engine.vocab_size());
    let input = chat("What is the capital of France?");
    assert_eq!(
        tokenizer.prompt(&input).unwrap(),
        engine.tokenize(&input).unwrap()
    );
    let output = greedy(&engine, input);
    let text: Vec<u8> = output.iter().flat_map(|&t| tokenizer.piece(t)).collect();
    let text = String::from_utf8(text).unwrap();
    assert!(!text.is_empty());
    let pieces: Vec<u8> = tokenizer
        .text(&text)
        .iter()
        .flat_map(|&t| tokenizer.piece(t))
        .collect();
    assert_eq!(
        String::from_utf8(pieces).unwrap(),
        text,
        "text -> tokens -> text"
    );
    assert!(output.iter().all(|&t| tokenizer.is_text_token(t)));
    assert!(!tokenizer.is_text_token(-1));
    assert!(!tokenizer.is_text_token(tokenizer.vocab_size() as i32));
}
