//! The real engine on the real default model (fetched by `agora model fetch`
//! or `scripts/test.sh`; these tests fail with a clear message if it is absent).

use agora_engine::{
    EngineError, EngineEvent, GenerateRequest, InferenceEngine, LlamaEngine, LlamaEngineConfig,
};
use agora_testkit::model;
use agora_types::{ChatMessage, FinishReason, JobInput, SamplingParams, TokenLogprob};

fn engine(threads: usize) -> LlamaEngine {
    model::load(LlamaEngineConfig {
        threads,
        ..model::config()
    })
}

/// The test kit's shared two-thread engine, for most tests.
fn shared() -> &'static LlamaEngine {
    model::shared_engine()
}

fn chat(text: &str) -> JobInput {
    JobInput::Chat {
        messages: vec![ChatMessage {
            role: "user".into(),
            content: text.into(),
        }],
    }
}

fn params(max_tokens: u32, temperature: f32, seed: u64) -> SamplingParams {
    SamplingParams::new(max_tokens, temperature, 0.95, vec![], seed)
}

/// Everything a job produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    prompt_tokens: Vec<i32>,
    text: String,
    finish_reason: FinishReason,
    output_tokens: Vec<i32>,
    logprobs: Vec<TokenLogprob>,
}

fn run(engine: &LlamaEngine, input: JobInput, params: SamplingParams) -> Outcome {
    let mut rx = engine
        .generate(GenerateRequest { input, params })
        .expect("job accepted");
    let mut prompt_tokens = None;
    let mut text = String::new();
    let mut logprobs = Vec::new();
    while let Some(event) = rx.blocking_recv() {
        match event {
            EngineEvent::Started {
                prompt_tokens: p, ..
            } => prompt_tokens = Some(p),
            EngineEvent::Logprob(lp) => logprobs.push(lp),
            EngineEvent::Text(t) => {
                assert!(prompt_tokens.is_some(), "text before Started");
                text.push_str(&t);
            }
            EngineEvent::Finished {
                finish_reason,
                output_tokens,
                ..
            } => {
                return Outcome {
                    prompt_tokens: prompt_tokens.unwrap(),
                    text,
                    finish_reason,
                    output_tokens,
                    logprobs,
                }
            }
            EngineEvent::Failed(m) => panic!("job failed: {m}"),
            EngineEvent::Embeddings(_) => panic!("vectors for a completion job"),
        }
    }
    panic!("event stream ended without Finished");
}

#[test]
fn reports_model_metadata() {
    let info = shared().model_info();
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.quantization, "Q4_1");
    assert!(info.name.to_lowercase().contains("smollm2"), "{info:?}");
    assert_eq!(info.context_length, 512);
}

#[test]
fn chat_uses_the_models_template_and_answers() {
    let out = run(
        shared(),
        chat("What is the capital of France?"),
        params(24, 0.0, 0),
    );
    // ChatML from the GGUF metadata: the prompt ends by opening the assistant turn.
    let rendered = shared()
        .tokenize(&chat("What is the capital of France?"))
        .unwrap();
    assert_eq!(out.prompt_tokens, rendered);
    assert!(out.prompt_tokens.len() > 8);
    assert!(out.text.contains("Paris"), "{:?}", out.text);
    assert!(!out.output_tokens.is_empty() && out.output_tokens.len() <= 24);
}

#[test]
fn max_tokens_is_honoured() {
    let out = run(
        shared(),
        JobInput::Text {
            prompt: "Once upon a time".into(),
        },
        params(5, 0.0, 0),
    );
    assert_eq!(out.output_tokens.len(), 5);
    assert_eq!(out.finish_reason, FinishReason::Length);
}

#[test]
fn same_seed_same_tokens_other_seed_other_tokens() {
    let input = chat("Tell me a story about a cat.");
    let a = run(shared(), input.clone(), params(32, 0.9, 1234));
    let b = run(shared(), input.clone(), params(32, 0.9, 1234));
    assert_eq!(a, b);
    let others: Vec<Outcome> = (1..4)
        .map(|s| run(shared(), input.clone(), params(32, 0.9, 1234 + s)))
        .collect();
    assert!(
        others.iter().any(|o| o.output_tokens != a.output_tokens),
        "three other seeds all matched"
    );
}

#[test]
fn sampling_does_not_depend_on_the_thread_count() {
    let input = chat("Name three colours.");
    let p = params(24, 0.8, 77);
    let two = run(shared(), input.clone(), p.clone());
    let one = run(&engine(1), input, p);
    assert_eq!(one.output_tokens, two.output_tokens);
    assert_eq!(one.text, two.text);
}

#[test]
fn stop_strings_cut_the_text() {
    let input = JobInput::Text {
        prompt: "1, 2, 3, 4,".into(),
    };
    let free = run(shared(), input.clone(), params(16, 0.0, 0));
    let cut_at = free.text.find('7').expect("greedy counting reaches 7");
    let mut p = params(16, 0.0, 0);
    p.stop = vec!["7".into(), "never-appears".into()];
    let stopped = run(shared(), input, p);
    assert_eq!(stopped.text, free.text[..cut_at]);
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert!(stopped.output_tokens.len() < free.output_tokens.len());
}

#[test]
fn bad_requests_are_refused_before_queueing() {
    let e = shared();
    let refuse = |input: JobInput, p: SamplingParams| match e
        .generate(GenerateRequest { input, params: p })
    {
        Err(EngineError::InvalidRequest(m)) => m,
        Err(other) => panic!("expected InvalidRequest, got {other}"),
        Ok(_) => panic!("expected InvalidRequest, got a job"),
    };
    assert!(refuse(chat("hi"), params(0, 0.0, 0)).contains("max_tokens"));
    assert!(refuse(
        chat("hi"),
        SamplingParams {
            top_p: 0.0,
            ..params(4, 1.0, 0)
        }
    )
    .contains("top_p"));
    assert!(refuse(chat("hi"), params(4, f32::NAN, 0)).contains("temperature"));
    let tool = JobInput::Chat {
        messages: vec![ChatMessage {
            role: "tool".into(),
            content: "x".into(),
        }],
    };
    assert!(refuse(tool, params(4, 0.0, 0)).contains("role"));
    assert!(refuse(JobInput::Chat { messages: vec![] }, params(4, 0.0, 0)).contains("empty"));
    let long = JobInput::Text {
        prompt: "word ".repeat(2000),
    };
    assert!(refuse(long, params(4, 0.0, 0)).contains("context window"));
}

#[test]
fn dropping_the_receiver_cancels_and_the_engine_keeps_serving() {
    let e = engine(2);
    let rx = e
        .generate(GenerateRequest {
            input: chat("Write a long essay."),
            params: params(400, 0.0, 0),
        })
        .unwrap();
    drop(rx);
    let out = run(&e, chat("Say hi"), params(4, 0.0, 0));
    assert!(!out.output_tokens.is_empty());
}

#[test]
fn a_missing_file_is_a_load_error() {
    let err = LlamaEngine::load(
        std::path::Path::new("/nonexistent/model.gguf"),
        LlamaEngineConfig::default(),
    );
    assert!(matches!(err, Err(EngineError::Load { .. })));
}

/// Start a job and hand back its receiver without waiting.
fn submit(
    e: &LlamaEngine,
    input: JobInput,
    p: SamplingParams,
) -> tokio::sync::mpsc::Receiver<EngineEvent> {
    e.generate(GenerateRequest { input, params: p })
        .expect("job accepted")
}

/// Drain a receiver to its `Finished` tokens.
fn drain(mut rx: tokio::sync::mpsc::Receiver<EngineEvent>) -> Vec<i32> {
    while let Some(event) = rx.blocking_recv() {
        match event {
            EngineEvent::Finished { output_tokens, .. } => return output_tokens,
            EngineEvent::Failed(m) => panic!("job failed: {m}"),
            EngineEvent::Embeddings(_) => panic!("vectors for a completion job"),
            _ => {}
        }
    }
    panic!("no Finished event");
}

#[test]
fn output_does_not_depend_on_what_else_is_in_the_batch() {
    let config = LlamaEngineConfig {
        threads: 2,
        context_length: 256,
        queue_capacity: 16,
        max_sequences: 9,
        ..Default::default()
    };
    let e = LlamaEngine::load(&model::path(), config).unwrap();
    let ours = (
        chat("Describe the sea in one sentence."),
        params(20, 0.8, 4242),
    );
    let other = |i: u64| {
        (
            chat(&format!("List {i} fruits.")),
            params(12 + i as u32, 0.7, i),
        )
    };
    let alone = run(&e, ours.0.clone(), ours.1.clone());
    let others_alone: Vec<Vec<i32>> = (0..8)
        .map(|i| run(&e, other(i).0, other(i).1).output_tokens)
        .collect();
    for n in [1usize, 4, 8] {
        let running: Vec<_> = (0..n as u64)
            .map(|i| submit(&e, other(i).0, other(i).1))
            .collect();
        let together = run(&e, ours.0.clone(), ours.1.clone());
        assert_eq!(together, alone, "with {n} other jobs in the batch");
        for (i, rx) in running.into_iter().enumerate() {
            assert_eq!(
                drain(rx),
                others_alone[i],
                "other job {i} with {n} in the batch"
            );
        }
    }
}

#[test]
fn a_job_moved_to_a_lower_sequence_keeps_its_tokens() {
    // Three sequences: two short jobs take ids 0 and 1 and leave first, so the
    // long job on id 2 is moved down (its KV stream copied) while generating.
    let config = LlamaEngineConfig {
        threads: 2,
        context_length: 256,
        queue_capacity: 4,
        max_sequences: 3,
        ..Default::default()
    };
    let e = LlamaEngine::load(&model::path(), config).unwrap();
    let long = (chat("Tell me about rivers."), params(40, 0.9, 77));
    let short = |i: u64| (chat("Say hi."), params(3, 0.5, i));
    let alone = run(&e, long.0.clone(), long.1.clone());
    assert!(alone.output_tokens.len() > 8, "the long job runs long");
    let first = submit(&e, short(1).0, short(1).1);
    let second = submit(&e, short(2).0, short(2).1);
    let together = run(&e, long.0.clone(), long.1.clone());
    assert_eq!(together, alone);
    assert_eq!(drain(first), run(&e, short(1).0, short(1).1).output_tokens);
    assert_eq!(drain(second), run(&e, short(2).0, short(2).1).output_tokens);
}

#[test]
fn a_full_queue_pushes_back_at_once() {
    let config = LlamaEngineConfig {
        threads: 2,
        context_length: 256,
        queue_capacity: 1,
        max_sequences: 1,
        ..Default::default()
    };
    let e = LlamaEngine::load(&model::path(), config).unwrap();
    let mut first = submit(
        &e,
        JobInput::Text {
            prompt: "Once upon a time".into(),
        },
        params(200, 0.0, 0),
    );
    // Wait until the first job holds the only sequence, so the queue is empty.
    assert!(matches!(
        first.blocking_recv(),
        Some(EngineEvent::Started { .. })
    ));
    let queued = submit(&e, chat("hi"), params(4, 0.0, 0));
    match e.generate(GenerateRequest {
        input: chat("hi"),
        params: params(4, 0.0, 0),
    }) {
        Err(EngineError::Busy(1)) => {}
        Err(other) => panic!("expected Busy, got {other}"),
        Ok(_) => panic!("expected Busy, got a job"),
    }
    drop(first);
    assert!(
        !drain(queued).is_empty(),
        "the queued job still runs after the first is cancelled"
    );
}

#[test]
fn logprobs_describe_the_chosen_tokens() {
    let mut p = params(12, 0.0, 0);
    p.logprobs = Some(3);
    let out = run(shared(), chat("Name a colour."), p.clone());
    assert_eq!(out.logprobs.len(), out.output_tokens.len());
    for (lp, token) in out.logprobs.iter().zip(&out.output_tokens) {
        assert_eq!(lp.chosen.token_id, *token);
        // Greedy: the chosen token is the most likely one.
        assert_eq!(lp.top[0].token_id, *token);
        assert_eq!(lp.top.len(), 3);
        assert!(lp.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
        let mass: f32 = lp.top.iter().map(|t| t.logprob.exp()).sum();
        assert!(lp.chosen.logprob <= 0.0 && mass <= 1.0 + 1e-4, "{lp:?}");
    }
    // Asking for logprobs does not change the tokens.
    p.logprobs = None;
    assert_eq!(
        run(shared(), chat("Name a colour."), p).output_tokens,
        out.output_tokens
    );
}

#[test]
fn penalties_and_choices_change_the_sampling_replayably() {
    let input = JobInput::Text {
        prompt: "one one one one one one".into(),
    };
    let plain = run(shared(), input.clone(), params(24, 0.0, 0));
    let mut p = params(24, 0.0, 0);
    p.frequency_penalty = 2.0;
    p.presence_penalty = 2.0;
    let penalised = run(shared(), input.clone(), p.clone());
    let max_repeat = |tokens: &[i32]| {
        tokens
            .iter()
            .map(|t| tokens.iter().filter(|u| *u == t).count())
            .max()
            .unwrap_or(0)
    };
    assert_ne!(penalised.output_tokens, plain.output_tokens);
    assert!(max_repeat(&penalised.output_tokens) <= max_repeat(&plain.output_tokens));
    assert_eq!(
        run(shared(), input.clone(), p).output_tokens,
        penalised.output_tokens
    );

    let mut a = params(16, 0.9, 5);
    let first = run(shared(), chat("Tell me a joke."), a.clone());
    a.choice = 1;
    let second = run(shared(), chat("Tell me a joke."), a.clone());
    assert_ne!(
        first.output_tokens, second.output_tokens,
        "choice 1 reuses choice 0's random stream"
    );
    assert_eq!(
        run(shared(), chat("Tell me a joke."), a).output_tokens,
        second.output_tokens
    );

    let mut bad = params(4, 0.0, 0);
    bad.presence_penalty = 3.0;
    assert!(matches!(
        shared().generate(GenerateRequest { input, params: bad }),
        Err(EngineError::InvalidRequest(_))
    ));
}

/// Drain a receiver to its `Finished` tokens and commitments.
fn drain_committed(
    mut rx: tokio::sync::mpsc::Receiver<EngineEvent>,
) -> (Vec<i32>, Option<agora_engine::Commitments>) {
    while let Some(event) = rx.blocking_recv() {
        match event {
            EngineEvent::Finished {
                output_tokens,
                commitments,
                ..
            } => return (output_tokens, commitments),
            EngineEvent::Failed(m) => panic!("job failed: {m}"),
            EngineEvent::Embeddings(_) => panic!("vectors for a completion job"),
            _ => {}
        }
    }
    panic!("no Finished event");
}

#[test]
fn commitments_cover_every_output_token_without_changing_it() {
    let off = LlamaEngine::load(
        &model::path(),
        LlamaEngineConfig {
            threads: 2,
            context_length: 256,
            commitments: false,
            ..Default::default()
        },
    )
    .unwrap();
    let job = || {
        (
            chat("Count slowly from one to twenty in words."),
            params(40, 0.9, 77),
        )
    };
    let (plain, none) = drain_committed(submit(&off, job().0, job().1));
    assert!(none.is_none(), "commitments were switched off");
    drop(off);
    // The shared engine computes commitments (the default); run the job alone and in a batch.
    let e = shared();
    let (tokens, commitments) = drain_committed(submit(e, job().0, job().1));
    assert_eq!(tokens, plain, "commitments must not change the output");
    let c = commitments.expect("commitments are on by default");
    assert_eq!(
        c.chunks.len(),
        tokens.len().div_ceil(agora_toploc::CHUNK_TOKENS)
    );
    assert_eq!(c.prompt.coefficients.len(), agora_toploc::TOP_K);
    assert!(c
        .chunks
        .iter()
        .all(|k| k.coefficients.len() == agora_toploc::TOP_K));
    // ≤ 10 bytes per generated token for full chunks.
    assert!(c.chunks[0].coefficients.len() * 2 <= 10 * agora_toploc::CHUNK_TOKENS);
    let other = submit(e, chat("Name three colours."), params(30, 0.7, 5));
    let (again, again_c) = drain_committed(submit(e, job().0, job().1));
    drain(other);
    assert_eq!(again, tokens);
    assert_eq!(again_c.map(|c| c.chunks.len()), Some(c.chunks.len()));
}
