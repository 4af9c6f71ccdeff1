//! Prompt caching on the real default model: a job whose prompt starts like
//! an earlier one's reuses that KV cache, says how much it reused, and
//! produces the tokens a cold engine produces.

use agora_engine::{EngineEvent, GenerateRequest, InferenceEngine, LlamaEngine, LlamaEngineConfig};
use agora_testkit::model;
use agora_toploc::CHUNK_TOKENS;
use agora_types::{ChatMessage, JobInput, SamplingParams};

const SYSTEM: &str = "You are a patient assistant for a network of volunteers who \
    run language models on their own machines. Answer briefly, in plain English, \
    without lists or headings. When a question is about prices, say that prices are \
    set by each provider on chain and can change every block. When a question is \
    about privacy, say that prompts are seen by the provider that serves them.";

fn message(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.into(),
    }
}

fn conversation(turns: &[(&str, &str)]) -> JobInput {
    let mut messages = vec![message("system", SYSTEM)];
    messages.extend(turns.iter().map(|(role, text)| message(role, text)));
    JobInput::Chat { messages }
}

fn greedy(max_tokens: u32) -> SamplingParams {
    let mut params = SamplingParams::new(max_tokens, 0.0, 1.0, vec![], 7);
    params.logprobs = Some(0);
    params
}

fn engine(prompt_cache: bool, commitments: bool) -> LlamaEngine {
    model::load(LlamaEngineConfig {
        max_sequences: 1,
        prompt_cache,
        commitments,
        ..model::config()
    })
}

/// What a job reported and produced.
struct Run {
    prompt: Vec<i32>,
    cached: u32,
    tokens: Vec<i32>,
    text: String,
    logprobs: Vec<f32>,
}

fn run(engine: &LlamaEngine, input: JobInput, params: SamplingParams) -> Run {
    let mut rx = engine
        .generate(GenerateRequest { input, params })
        .expect("job accepted");
    let (mut prompt, mut cached, mut text, mut logprobs) = (None, 0, String::new(), Vec::new());
    while let Some(event) = rx.blocking_recv() {
        match event {
            EngineEvent::Started {
                prompt_tokens,
                cached_tokens,
            } => (prompt, cached) = (Some(prompt_tokens), cached_tokens),
            EngineEvent::Text(t) => text.push_str(&t),
            EngineEvent::Logprob(lp) => logprobs.push(lp.chosen.logprob),
            EngineEvent::Finished { output_tokens, .. } => {
                return Run {
                    prompt: prompt.expect("Started before Finished"),
                    cached,
                    tokens: output_tokens,
                    text,
                    logprobs,
                }
            }
            EngineEvent::Failed(m) => panic!("job failed: {m}"),
            EngineEvent::Embeddings(_) => panic!("vectors for a completion"),
        }
    }
    panic!("no Finished event");
}

fn shared_prefix(a: &[i32], b: &[i32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Same tokens as the cold run, and logprobs within batching's float spread.
fn assert_same_output(warm: &Run, cold: &Run) {
    assert_eq!(
        warm.tokens, cold.tokens,
        "the cached job sampled other tokens"
    );
    assert_eq!(warm.text, cold.text);
    assert_eq!(warm.logprobs.len(), cold.logprobs.len());
    for (w, c) in warm.logprobs.iter().zip(&cold.logprobs) {
        assert!(
            (w - c).abs() < 0.05,
            "logprob {w} against {c} computed afresh"
        );
    }
}

#[test]
fn a_shared_system_prompt_is_reused_without_changing_the_output() {
    let warm = engine(true, true);
    let first = run(
        &warm,
        conversation(&[("user", "Who sets the prices?")]),
        greedy(16),
    );
    assert_eq!(first.cached, 0, "nothing was cached before the first job");

    let question = conversation(&[("user", "Can the provider read my prompt?")]);
    let second = run(&warm, question.clone(), greedy(16));
    let shared = shared_prefix(&first.prompt, &second.prompt);
    assert!(shared > 60, "the system prompt is {shared} shared tokens");
    // With activation commitments the last CHUNK_TOKENS prompt positions are
    // always computed: their hidden states are committed to.
    let expected = shared.min(second.prompt.len() - CHUNK_TOKENS);
    assert_eq!(second.cached as usize, expected);

    let cold = run(&engine(false, true), question, greedy(16));
    assert_eq!(cold.cached, 0, "prompt_cache = false caches nothing");
    assert_same_output(&second, &cold);
}

#[test]
fn the_next_turn_of_a_chat_reuses_the_earlier_turns() {
    let warm = engine(true, false);
    let ask = ("user", "Who sets the prices?");
    let first = run(&warm, conversation(&[ask]), greedy(24));
    assert!(!first.text.is_empty());
    let next = conversation(&[ask, ("assistant", &first.text), ("user", "And privacy?")]);
    let second = run(&warm, next.clone(), greedy(16));
    // The sequence holds the first prompt and every reply token but the
    // last (sampled, never decoded); the next prompt reuses as much of that
    // as it repeats, and without commitments computes only its last token.
    let decoded = &first.tokens[..first.tokens.len() - 1];
    let held: Vec<i32> = first.prompt.iter().chain(decoded).copied().collect();
    let expected = shared_prefix(&held, &second.prompt).min(second.prompt.len() - 1);
    assert!(
        expected > first.prompt.len(),
        "the reply is part of the prefix"
    );
    assert_eq!(second.cached as usize, expected);
    assert_same_output(&second, &run(&engine(false, false), next, greedy(16)));
}

#[test]
fn an_identical_prompt_recomputes_only_its_last_token() {
    let warm = engine(true, false);
    let input = conversation(&[("user", "Say something about rivers.")]);
    let first = run(&warm, input.clone(), greedy(12));
    let again = run(&warm, input, greedy(12));
    assert_eq!(again.cached as usize, again.prompt.len() - 1);
    assert_same_output(&again, &first);
}
