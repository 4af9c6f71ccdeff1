//! The replay verifier on the real default model: honest jobs pass (greedy
//! and sampled, alone and in a batch of 4); tampered tokens, a claimed seed
//! that was not used, a dropped system message, commitments of perturbed
//! hidden states, tokens past a stop string and streamed text other than the
//! tokens' fail.

use std::sync::OnceLock;

use agora_engine::text::{render, Piece};
use agora_engine::{LlamaEngine, ScoreRequest};
use agora_grammar::Grammar;
use agora_testkit::model;
use agora_types::{
    hash_output_text, ChatMessage, Hash32, JobInput, Keypair, OutputConstraint, SamplingParams,
    Transcript,
};
use agora_verify::calibrate::{finish_job, honest_job, start_job, transcript};
use agora_verify::{check_job, Thresholds, Verdict};

/// One engine generates (commitments on, 4 sequences) and scores (its own
/// context): the test kit's shared engine.
fn engine() -> &'static LlamaEngine {
    model::shared_engine()
}

fn key() -> &'static Keypair {
    static KEY: OnceLock<Keypair> = OnceLock::new();
    KEY.get_or_init(Keypair::generate)
}

fn model() -> Hash32 {
    Hash32::digest(b"smollm2-135m-instruct q4_1")
}

/// Run jobs concurrently and return their honest transcripts.
fn run(jobs: &[(JobInput, SamplingParams)]) -> Vec<Transcript> {
    let running: Vec<_> = jobs
        .iter()
        .map(|(i, p)| start_job(engine(), i, p).expect("job accepted"))
        .collect();
    running
        .into_iter()
        .zip(jobs)
        .map(|(rx, (i, p))| finish_job(rx, key(), model(), i.clone(), p.clone()).unwrap())
        .collect()
}

fn check(t: &Transcript) -> Verdict {
    check_job(engine(), t, &Thresholds::default()).expect("the job can be audited")
}

/// A transcript of `t` with other claimed facts, consistently re-signed (a
/// dishonest provider signs whatever it claims).
fn claim(
    t: &Transcript,
    input: JobInput,
    params: SamplingParams,
    prompt: Vec<i32>,
    output: Vec<i32>,
) -> Transcript {
    transcript(
        key(),
        model(),
        input,
        params,
        prompt,
        output,
        t.receipt.receipt.text_hash,
        t.commitments.clone(),
    )
}

fn chat(system: Option<&str>, user: &str) -> JobInput {
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(ChatMessage {
            role: "system".into(),
            content: s.into(),
        });
    }
    messages.push(ChatMessage {
        role: "user".into(),
        content: user.into(),
    });
    JobInput::Chat { messages }
}

#[test]
fn honest_jobs_pass_alone_and_in_a_batch_of_four() {
    let jobs: Vec<_> = (0..4).map(|i| honest_job(i, 40)).collect();
    let greedy = jobs.iter().filter(|(_, p)| p.temperature == 0.0).count();
    assert!(
        greedy >= 1 && greedy < jobs.len(),
        "greedy and sampled jobs"
    );
    let alone: Vec<Transcript> = jobs
        .iter()
        .flat_map(|j| run(std::slice::from_ref(j)))
        .collect();
    let batched = run(&jobs);
    for t in alone.iter().chain(&batched) {
        let v = check(t);
        assert!(v.passed, "honest job failed: {v:?}");
        assert!(v.commitments.is_some_and(|c| c.chunks >= 2));
        assert!(v.tokens.checked as usize == t.output_tokens.len());
    }
    // The same job alone and in a batch produces the same tokens and commitments.
    for (a, b) in alone.iter().zip(&batched) {
        assert_eq!(a.output_tokens, b.output_tokens);
        assert_eq!(a.commitments, b.commitments);
    }
}

#[test]
fn tampered_output_tokens_fail() {
    let honest = &run(&[honest_job(1, 40)])[0];
    assert!(check(honest).passed);
    let mut output = honest.output_tokens.clone();
    let k = output.len() / 2;
    output[k] = (output[k] + 1000) % 49_152;
    let forged = claim(
        honest,
        honest.input.clone(),
        honest.receipt.receipt.params.clone(),
        honest.prompt_tokens.clone(),
        output,
    );
    let v = check(&forged);
    assert!(!v.passed, "tampered job passed: {v:?}");
    assert!(
        v.tokens.max_margin > Thresholds::default().max_token_margin,
        "{v:?}"
    );
}

#[test]
fn a_claimed_seed_that_was_not_used_fails() {
    let (input, params) = (
        chat(None, "Write a short poem about rivers."),
        SamplingParams::new(48, 1.0, 1.0, vec![], 11),
    );
    let honest = &run(&[(input.clone(), params.clone())])[0];
    assert!(check(honest).passed);
    let mut claimed = params.clone();
    claimed.seed = 12;
    let forged = claim(
        honest,
        input,
        claimed,
        honest.prompt_tokens.clone(),
        honest.output_tokens.clone(),
    );
    let v = check(&forged);
    assert!(!v.passed, "wrong seed passed: {v:?}");
    assert!(
        v.tokens.match_rate < Thresholds::default().min_token_match_rate,
        "{v:?}"
    );
}

#[test]
fn a_dropped_system_message_fails() {
    let full = chat(Some("You always answer in French."), "Name three animals.");
    let dropped = chat(None, "Name three animals.");
    let params = SamplingParams::new(40, 0.0, 1.0, vec![], 3);
    let ran = &run(&[(dropped, params.clone())])[0];
    assert!(check(ran).passed);
    // Claiming the full input with the prompt tokens that actually ran.
    let v = check(&claim(
        ran,
        full.clone(),
        params.clone(),
        ran.prompt_tokens.clone(),
        ran.output_tokens.clone(),
    ));
    assert!(!v.passed);
    assert!(v.reasons.iter().any(|r| r.contains("render")), "{v:?}");
    // Claiming the full input and its prompt tokens, with what the shorter prompt produced.
    let full_tokens = engine().tokenize(&full).unwrap();
    let v = check(&claim(
        ran,
        full,
        params,
        full_tokens,
        ran.output_tokens.clone(),
    ));
    assert!(!v.passed, "prefill attack passed: {v:?}");
    assert!(!v.reasons.iter().any(|r| r.contains("render")), "{v:?}");
}

#[test]
fn commitments_of_perturbed_hidden_states_fail() {
    let honest = &run(&[honest_job(2, 40)])[0];
    assert!(check(honest).passed);
    let scored = engine()
        .score(&ScoreRequest {
            prompt_tokens: honest.prompt_tokens.clone(),
            output_tokens: honest.output_tokens.clone(),
            want_hidden: true,
            ..Default::default()
        })
        .unwrap();
    let hidden: Vec<Vec<f32>> = scored
        .positions
        .iter()
        .map(|p| p.hidden.clone().unwrap())
        .collect();
    // Recommitting the verifier's own hidden states passes: the check is not trivially strict.
    let same = agora_toploc::commit_job(&scored.prompt_hidden, &hidden);
    let mut t = honest.clone();
    t.commitments = Some(same);
    let t = claim(
        &t,
        t.input.clone(),
        t.receipt.receipt.params.clone(),
        t.prompt_tokens.clone(),
        t.output_tokens.clone(),
    );
    assert!(check(&t).passed);
    // A ±10% drift of every activation. (Drifts below ~5% hide in the honest
    // decode-versus-prefill noise of this build: see docs/benchmarks.md.)
    let drift = |rows: &[Vec<f32>]| -> Vec<Vec<f32>> {
        rows.iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .map(|(i, v)| v * if i % 2 == 0 { 1.1 } else { 0.9 })
                    .collect()
            })
            .collect()
    };
    let mut t = honest.clone();
    t.commitments = Some(agora_toploc::commit_job(
        &drift(&scored.prompt_hidden),
        &drift(&hidden),
    ));
    let t = claim(
        &t,
        t.input.clone(),
        t.receipt.receipt.params.clone(),
        t.prompt_tokens.clone(),
        t.output_tokens.clone(),
    );
    let v = check(&t);
    assert!(!v.passed, "perturbed commitments passed: {v:?}");
    assert!(v.reasons.iter().all(|r| r.contains("commitment")), "{v:?}");
}

#[test]
fn a_forged_signature_or_hash_fails_before_any_replay_question() {
    let honest = &run(&[honest_job(0, 16)])[0];
    let mut t = honest.clone();
    t.output_tokens.push(t.output_tokens[0]);
    let v = check(&t);
    assert!(v.reasons.iter().any(|r| r.contains("output hash")), "{v:?}");
    let mut t = honest.clone();
    t.commitments = None;
    let v = check(&t);
    assert!(
        v.reasons.iter().any(|r| r.contains("commitments hash")),
        "{v:?}"
    );
    assert!(
        v.reasons.iter().any(|r| r.contains("no commitments")),
        "{v:?}"
    );
    let mut t = honest.clone();
    t.receipt.receipt.timestamp_ms += 1;
    let v = check(&t);
    assert!(v.reasons.iter().any(|r| r.contains("signature")), "{v:?}");
    assert_ne!(v.evidence_hash, check(honest).evidence_hash);
}

/// The pieces the engine renders `tokens` from.
fn pieces(tokens: &[i32]) -> Vec<Piece> {
    tokens.iter().map(|&t| engine().piece(t).unwrap()).collect()
}

/// Attack: charging for tokens past a stop string. The client was sent the
/// text up to the stop string, but the transcript lists (and the receipt
/// counts) the tokens the model would have generated after it: they replay
/// exactly and the text hash is that of what the client got, yet generation
/// ended earlier. Also: text other than the tokens stream fails.
#[test]
fn tokens_after_a_stop_string_or_other_text_fail() {
    let (input, params) = honest_job(1, 40);
    let honest = &run(&[(input.clone(), params.clone())])[0];
    assert!(check(honest).passed);
    let full = render(pieces(&honest.output_tokens), &[]).text;
    let chars: Vec<char> = full.chars().collect();
    assert!(chars.len() > 20, "{full:?}");
    let mut claimed = params.clone();
    claimed.stop = vec![chars[4..7].iter().collect()];
    let shown = render(pieces(&honest.output_tokens), &claimed.stop);
    assert!(shown.stopped && shown.kept < honest.output_tokens.len() - 1);
    let forged = transcript(
        key(),
        model(),
        input.clone(),
        claimed,
        honest.prompt_tokens.clone(),
        honest.output_tokens.clone(),
        hash_output_text(&shown.text),
        honest.commitments.clone(),
    );
    let v = check(&forged);
    assert!(!v.passed, "tokens past the stop string passed: {v:?}");
    assert!(
        v.reasons
            .iter()
            .all(|r| r.contains("goes on after generation ended")),
        "{v:?}"
    );
    assert_eq!(v.tokens.match_rate, 1.0, "the tokens themselves replay");

    let mut other = full.clone();
    other.push('!');
    let v = check(&claim_text(honest, &other));
    assert!(!v.passed, "other text passed: {v:?}");
    assert!(
        v.reasons.iter().all(|r| r.contains("streamed text")),
        "{v:?}"
    );
    assert!(check(&claim_text(honest, &full)).passed);
}

/// `t` re-signed claiming `text` was streamed.
fn claim_text(t: &Transcript, text: &str) -> Transcript {
    transcript(
        key(),
        model(),
        t.input.clone(),
        t.receipt.receipt.params.clone(),
        t.prompt_tokens.clone(),
        t.output_tokens.clone(),
        hash_output_text(text),
        t.commitments.clone(),
    )
}

/// Constrained decoding (`json_schema`): the engine's output follows the
/// schema byte for byte and the audit replays it under the same mask. Attack:
/// a provider that generates freely (cheaper, or just ignoring the client's
/// format) and signs a receipt claiming the constraint fails: its first token
/// is one the mask forbids.
#[test]
fn constrained_jobs_replay_under_their_mask_and_free_text_claimed_as_constrained_fails() {
    let schema = r#"{"type":"object","properties":{"title":{"type":"string"},"lines":{"type":"integer"},"rhymes":{"type":"boolean"}},"required":["title","lines","rhymes"]}"#;
    let input = chat(None, "Write a short poem about rivers.");
    let mut params = SamplingParams::new(64, 0.0, 1.0, vec![], 3);
    params.constraint = Some(OutputConstraint::JsonSchema {
        schema: schema.into(),
    });
    let mut sampled = params.clone();
    sampled.temperature = 0.9;
    for p in [&params, &sampled] {
        let honest = &run(&[(input.clone(), p.clone())])[0];
        let text = render(pieces(&honest.output_tokens), &[]).text;
        let grammar = Grammar::compile(p.constraint.as_ref().unwrap()).unwrap();
        let m = grammar.matcher().after(text.as_bytes());
        assert!(m.is_some(), "output breaks the schema: {text:?}");
        if honest.output_tokens.len() < 64 {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(v["title"].is_string() && v["lines"].is_i64() && v["rhymes"].is_boolean());
        }
        let v = check(honest);
        assert!(v.passed, "honest constrained job failed: {v:?}");
        assert_eq!(v.tokens.match_rate, 1.0);
    }
    let mut free = params.clone();
    free.constraint = None;
    let unconstrained = &run(&[(input.clone(), free)])[0];
    assert!(!render(pieces(&unconstrained.output_tokens), &[])
        .text
        .starts_with('{'));
    let forged = claim(
        unconstrained,
        input,
        params,
        unconstrained.prompt_tokens.clone(),
        unconstrained.output_tokens.clone(),
    );
    let v = check(&forged);
    assert!(!v.passed, "free text claimed as constrained passed: {v:?}");
    assert_eq!(v.tokens.max_margin, f64::INFINITY, "{v:?}");
}
