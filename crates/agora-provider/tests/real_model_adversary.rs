//! Each adversarial mode, served through the real provider over loopback HTTP
//! on the real default model: its transcript is internally consistent (hashes
//! match, receipt signed) and claims the client's prompt and parameters, yet
//! its output (or the text it streamed) is not what the honest engine produces
//! for the same job, and the verifier (`agora-verify`) fails it while it
//! passes the honest engine, also on jobs cut by a stop string and on
//! multi-byte UTF-8 output.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use agora_engine::{
    EngineEvent, GenerateRequest, InferenceEngine, LlamaEngine, LlamaEngineConfig, QuantType,
    Tokenizer,
};
use agora_provider::adversary::{ensure_requantized, FORGED_TEXT};
use agora_provider::{AdversarialEngine, Adversary, AdversaryError, Provider, TranscriptStore};
use agora_testkit::model;
use agora_types::{
    hash_output_text, hash_tokens, ChatMessage, FinishReason, Hash32, JobEvent, JobInput,
    JobRequest, Keypair, Price, SamplingParams, Transcript,
};
use agora_verify::{check_job, check_job_statistically, Thresholds, Verdict};

const PRICE: Price = Price {
    input_per_1k: 1_000,
    output_per_1k: 2_000,
};
const MAX_TOKENS: u32 = 32;

fn config() -> LlamaEngineConfig {
    LlamaEngineConfig {
        queue_capacity: 4,
        max_sequences: 2,
        ..model::config()
    }
}

fn claimed_id() -> Hash32 {
    model::id()
}

fn honest() -> &'static LlamaEngine {
    model::shared_engine()
}

fn tokenizer() -> &'static Tokenizer {
    static TOKENIZER: OnceLock<Tokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| Tokenizer::load(&model::path(), Some(512)).unwrap().0)
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

fn job(input: JobInput, temperature: f32, seed: u64) -> JobRequest {
    JobRequest {
        model: claimed_id(),
        input,
        params: SamplingParams::new(MAX_TOKENS, temperature, 1.0, vec![], seed),
    }
}

/// What an engine outputs for a job, run directly.
async fn direct(engine: &impl InferenceEngine, job: &JobRequest) -> (Vec<i32>, Vec<i32>) {
    let mut rx = engine
        .generate(GenerateRequest {
            input: job.input.clone(),
            params: job.params.clone(),
        })
        .unwrap();
    let mut prompt = Vec::new();
    while let Some(event) = rx.recv().await {
        match event {
            EngineEvent::Started { prompt_tokens, .. } => prompt = prompt_tokens,
            EngineEvent::Finished { output_tokens, .. } => return (prompt, output_tokens),
            EngineEvent::Failed(m) => panic!("job failed: {m}"),
            EngineEvent::Embeddings(_) => panic!("vectors for a completion job"),
            _ => {}
        }
    }
    panic!("engine stopped before finishing")
}

/// A cheating provider on a loopback port.
struct Cheater {
    url: String,
    engine: Arc<AdversarialEngine>,
    _dir: tempfile::TempDir,
}

async fn cheater(mode: Adversary) -> Cheater {
    let path = model::path();
    let engine =
        tokio::task::spawn_blocking(move || AdversarialEngine::load(mode, &path, config()))
            .await
            .unwrap()
            .expect("the adversary loads");
    let engine = Arc::new(engine);
    let dir = tempfile::tempdir().unwrap();
    let store = TranscriptStore::open(&dir.path().join("transcripts.redb")).unwrap();
    let router = Provider::new(
        "adversary-test",
        engine.clone(),
        Keypair::generate(),
        claimed_id(),
        PRICE,
        store,
    )
    .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Cheater {
        url,
        engine,
        _dir: dir,
    }
}

/// Run `job` on the cheater; check the transcript is self-consistent and
/// claims exactly what an honest provider would, then return it.
async fn run_and_check(cheater: &Cheater, job: &JobRequest) -> Transcript {
    run_job(&cheater.url, job).await
}

/// The verifier's verdict on a transcript, replayed on the real model.
async fn audit(transcript: &Transcript) -> Verdict {
    let t = transcript.clone();
    tokio::task::spawn_blocking(move || check_job(honest(), &t, &Thresholds::default()))
        .await
        .unwrap()
        .unwrap()
}

/// Run `job` on the provider at `url` and check its transcript's claims.
async fn run_job(url: &str, job: &JobRequest) -> Transcript {
    let streamed = stream_job(url, job).await;
    let transcript = streamed.transcript;
    // The streamed text is what its listed tokens decode to.
    assert_eq!(streamed.text, decoded(&transcript));
    transcript
}

/// What a client received for a job, and the transcript the provider keeps.
struct Streamed {
    /// Every delta's text, in order.
    text: String,
    finish_reason: FinishReason,
    transcript: Transcript,
}

/// Run `job` on the provider at `url` and check the transcript's claims,
/// except that its tokens decode to the streamed text.
async fn stream_job(url: &str, job: &JobRequest) -> Streamed {
    let client = reqwest::Client::new();
    let body = client
        .post(format!("{url}/v1/jobs"))
        .json(job)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<JobEvent> = body
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect();
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let Some(JobEvent::Done {
        receipt,
        usage,
        finish_reason,
        ..
    }) = events.last().cloned()
    else {
        panic!("the job did not finish: {body}");
    };
    receipt.verify().expect("the receipt is signed");
    let r = &receipt.receipt;
    let transcript: Transcript = client
        .get(format!("{url}/v1/transcripts/{}", r.id.to_hex()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(transcript.receipt, receipt);
    assert_eq!(hash_tokens(&transcript.prompt_tokens), r.prompt_hash);
    assert_eq!(hash_tokens(&transcript.output_tokens), r.output_hash);
    assert_eq!(
        usage.completion_tokens as usize,
        transcript.output_tokens.len()
    );
    assert!(!transcript.output_tokens.is_empty());
    assert!(transcript.output_tokens.len() <= MAX_TOKENS as usize);
    // It claims the registered model, the client's input, seed and parameters,
    // and the prompt tokens an honest engine on the claimed model renders.
    assert_eq!(r.model, claimed_id());
    assert_eq!(r.params, job.params);
    assert_eq!(transcript.input, job.input);
    let honest_prompt = honest().tokenize(&job.input).unwrap();
    assert_eq!(transcript.prompt_tokens, honest_prompt);
    // The receipt commits to exactly the text the client was sent.
    assert_eq!(hash_output_text(&text), r.text_hash);
    Streamed {
        text,
        finish_reason,
        transcript,
    }
}

async fn honest_output(job: &JobRequest) -> Vec<i32> {
    direct(honest(), job).await.1
}

/// The verifier fails the transcript; returns its reasons.
async fn assert_caught(transcript: &Transcript) -> Vec<String> {
    let verdict = audit(transcript).await;
    eprintln!("verdict: {:?}", verdict.reasons);
    assert!(!verdict.passed, "the verifier missed it: {verdict:?}");
    verdict.reasons
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_passes_the_honest_provider() {
    // Without this baseline, "caught" below could mean "the verifier fails everything".
    let engine = LlamaEngine::load(&model::path(), config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = TranscriptStore::open(&dir.path().join("transcripts.redb")).unwrap();
    let router = Provider::new(
        "adversary-test",
        Arc::new(engine),
        Keypair::generate(),
        claimed_id(),
        PRICE,
        store,
    )
    .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    for (temperature, seed) in [(0.0, 1), (0.8, 7)] {
        let job = job(chat(None, "Tell me about the moon."), temperature, seed);
        let transcript = run_job(&url, &job).await;
        let verdict = audit(&transcript).await;
        assert!(verdict.passed, "{verdict:?}");
    }
    // The text check on honest jobs whose text is not simply every token's
    // bytes: cut by a stop string in the middle of a token...
    let mut stopped = job(chat(None, "Tell me about the moon."), 0.0, 1);
    stopped.params.stop = vec!["oo".into(), "\n\n".into()];
    let s = stream_job(&url, &stopped).await;
    assert_eq!(s.finish_reason, FinishReason::Stop, "{:?}", s.text);
    assert!(s.transcript.output_tokens.len() < MAX_TOKENS as usize);
    assert!(
        !s.text.contains("oo") && !s.text.contains("\n\n"),
        "{:?}",
        s.text
    );
    let all = decoded(&s.transcript);
    assert!(
        all.starts_with(&s.text) && all.len() > s.text.len(),
        "cut: {all:?}"
    );
    let verdict = audit(&s.transcript).await;
    assert!(verdict.passed, "{verdict:?}");
    // ...and with characters split across tokens (the default model writes
    // CJK and emoji a byte or two per token), with and without a stop string.
    for (prompt, stop) in [
        ("Say hello in Chinese.", Some("\n\n")),
        ("Reply with three emojis.", None),
    ] {
        let mut unicode = job(chat(None, prompt), 0.0, 3);
        unicode.params.stop = stop.into_iter().map(String::from).collect();
        let s = stream_job(&url, &unicode).await;
        eprintln!("{prompt:?}: {:?}", s.text);
        assert!(!s.text.is_ascii(), "{:?}", s.text);
        let split = s
            .transcript
            .output_tokens
            .iter()
            .filter(|&&t| std::str::from_utf8(&tokenizer().piece(t)).is_err())
            .count();
        assert!(
            split > 0,
            "no character was split across tokens: {:?}",
            s.text
        );
        if stop.is_some() {
            assert_eq!(s.finish_reason, FinishReason::Stop, "{:?}", s.text);
        }
        let verdict = audit(&s.transcript).await;
        assert!(verdict.passed, "{prompt:?}: {verdict:?}");
    }
}

/// The text a transcript's output tokens decode to, all of them, no stop strings.
fn decoded(t: &Transcript) -> String {
    let bytes: Vec<u8> = t
        .output_tokens
        .iter()
        .flat_map(|&t| tokenizer().piece(t))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Attack (threat model row 8): a provider runs the real model honestly,
/// so its tokens and commitments are the honest ones and pass the replay,
/// but streams the client other text (the honest text plus an injected ad),
/// and its receipt hashes the text it streamed. The audit renders the text
/// the tokens stream and fails the job on the text hash alone; the same
/// transcript claiming the honest text would pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forge_text_streams_other_text_than_its_tokens_and_fails_the_audit() {
    let cheater = cheater(Adversary::ForgeText).await;
    let job = job(chat(None, "Tell me about the moon."), 0.0, 1);
    let s = stream_job(&cheater.url, &job).await;
    let honest = honest_output(&job).await;
    assert_eq!(s.transcript.output_tokens, honest, "honest tokens");
    assert!(s.text.ends_with(FORGED_TEXT), "{:?}", s.text);
    let reasons = assert_caught(&s.transcript).await;
    assert!(
        reasons.iter().all(|r| r.contains("streamed text")),
        "only the text gives it away: {reasons:?}"
    );
    let verdict = audit(&s.transcript).await;
    assert_eq!(verdict.tokens.match_rate, 1.0, "{verdict:?}");
    // The control: the same facts with the hash of the honest text pass.
    let honest_text = s.text.strip_suffix(FORGED_TEXT).unwrap().to_string();
    let t = &s.transcript;
    let claimed = agora_verify::calibrate::transcript(
        &Keypair::generate(),
        t.receipt.receipt.model,
        t.input.clone(),
        t.receipt.receipt.params.clone(),
        t.prompt_tokens.clone(),
        t.output_tokens.clone(),
        hash_output_text(&honest_text),
        t.commitments.clone(),
    );
    let verdict = audit(&claimed).await;
    assert!(verdict.passed, "{verdict:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tamper_alters_every_eighth_token() {
    let cheater = cheater(Adversary::Tamper).await;
    for (temperature, seed) in [(0.0, 1), (0.8, 7)] {
        let job = job(chat(None, "Tell me about the moon."), temperature, seed);
        let transcript = run_and_check(&cheater, &job).await;
        assert_caught(&transcript).await;
        let forged = transcript.output_tokens;
        let honest = honest_output(&job).await;
        assert_ne!(forged, honest, "T={temperature}");
        // The untouched positions are the honest ones; position 7 is not.
        assert_eq!(forged[..7], honest[..7], "T={temperature}");
        assert_ne!(forged[7], honest[7], "T={temperature}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_returns_fresh_random_tokens() {
    let cheater = cheater(Adversary::Random).await;
    let job = job(chat(None, "Tell me about the moon."), 0.7, 3);
    let transcript = run_and_check(&cheater, &job).await;
    assert_caught(&transcript).await;
    let first = transcript.output_tokens;
    let second = run_and_check(&cheater, &job).await.output_tokens;
    assert_ne!(first, honest_output(&job).await);
    assert_ne!(first, second, "the same seed gives different random tokens");
    assert_eq!(first.len(), MAX_TOKENS as usize);
    assert!(first.iter().all(|&t| tokenizer().is_text_token(t)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_seed_samples_with_its_own_randomness() {
    let cheater = cheater(Adversary::IgnoreSeed).await;
    let job = job(chat(None, "Write a short poem about rain."), 1.0, 11);
    let transcript = run_and_check(&cheater, &job).await;
    assert_caught(&transcript).await;
    let first = transcript.output_tokens;
    let second = run_and_check(&cheater, &job).await.output_tokens;
    let honest = honest_output(&job).await;
    assert_eq!(
        honest,
        honest_output(&job).await,
        "the honest engine replays"
    );
    assert_ne!(first, honest);
    assert_ne!(
        first, second,
        "the client's seed does not determine the output"
    );
}

/// The statistical judgement used for providers flagged as not replayable
/// (issue 13, #9), on the real model: sampling with the model but its own
/// randomness (what an honest upstream server does) passes it although
/// exact replay fails it; random tokens fail it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistical_judging_passes_own_rng_sampling_and_fails_random_tokens() {
    let statistically = |t: Transcript| async move {
        tokio::task::spawn_blocking(move || check_job_statistically(honest(), &t).unwrap())
            .await
            .unwrap()
    };
    let own_rng = cheater(Adversary::IgnoreSeed).await;
    let prompts = [
        "Write a short poem about rain.",
        "Tell me about the moon.",
        "List three fruits.",
    ];
    for (i, prompt) in prompts.iter().enumerate() {
        for temperature in [0.7, 1.0] {
            let job = job(chat(None, prompt), temperature, 20 + i as u64);
            let transcript = run_and_check(&own_rng, &job).await;
            assert!(!audit(&transcript).await.passed, "exact replay fails it");
            let v = statistically(transcript).await;
            eprintln!("own RNG, T={temperature}: {:?}", v.plausibility);
            assert!(
                v.passed,
                "honest sampling flagged: {:?} {:?}",
                v.plausibility, v.reasons
            );
        }
    }
    let random = cheater(Adversary::Random).await;
    for seed in [3, 4] {
        let transcript = run_and_check(
            &random,
            &job(chat(None, "Tell me about the moon."), 0.7, seed),
        )
        .await;
        let v = statistically(transcript).await;
        eprintln!("random tokens: {:?}", v.plausibility);
        assert!(!v.passed, "random tokens passed: {:?}", v.plausibility);
        assert!(v.plausibility.unwrap().z > agora_verify::plausible::MAX_PLAUSIBILITY_Z);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_system_ignores_the_system_prompt_but_claims_it() {
    let cheater = cheater(Adversary::DropSystem).await;
    let system = "The user's name is Zebulon. Always greet the user by name.";
    let user = "Hello! Who am I?";
    let job = job(chat(Some(system), user), 0.0, 5);
    let transcript = run_and_check(&cheater, &job).await;
    assert_caught(&transcript).await;
    let forged = transcript.output_tokens;
    assert_ne!(forged, honest_output(&job).await);
    let mut bare = job.clone();
    bare.input = chat(None, user);
    assert_eq!(
        forged,
        honest_output(&bare).await,
        "what ran had no system prompt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requantize_generates_with_the_cached_requantized_copy() {
    let cheater = cheater(Adversary::Requantize(QuantType::Q4_0)).await;
    let expected = agora_models::requantized_path(&claimed_id(), "Q4_0");
    assert_eq!(cheater.engine.generator_path(), Some(expected.as_path()));
    assert_eq!(
        cheater.engine.generator_info().unwrap().quantization,
        "Q4_0"
    );
    assert_ne!(agora_models::model_id(&expected).unwrap(), claimed_id());
    assert_eq!(
        cheater.engine.model_info().quantization,
        "Q4_1",
        "claims the original"
    );

    let copy = LlamaEngine::load(&expected, config()).unwrap();
    let mut differs = false;
    for prompt in ["Tell me about the moon.", "List three fruits."] {
        let job = job(chat(None, prompt), 0.0, 2);
        let transcript = run_and_check(&cheater, &job).await;
        let forged = transcript.output_tokens.clone();
        assert_eq!(forged, direct(&copy, &job).await.1, "generated by the copy");
        if forged != honest_output(&job).await {
            differs = true;
            assert_caught(&transcript).await;
        }
    }
    assert!(differs, "the Q4_0 copy's greedy output differs from Q4_1's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substitute_serves_another_model_and_retokenizes() {
    let other = tokio::task::spawn_blocking(|| ensure_requantized(&model::path(), QuantType::Q2_K))
        .await
        .unwrap()
        .unwrap();
    let cheater = cheater(Adversary::Substitute(Some(other.clone()))).await;
    assert_eq!(cheater.engine.generator_path(), Some(other.as_path()));
    let job = job(chat(None, "Tell me about the moon."), 0.0, 9);
    let transcript = run_and_check(&cheater, &job).await;
    assert_caught(&transcript).await;
    let forged = transcript.output_tokens;
    assert_ne!(forged, honest_output(&job).await);
    let substitute = LlamaEngine::load(&other, config()).unwrap();
    assert_eq!(
        forged,
        direct(&substitute, &job).await.1,
        "the substitute's text, re-tokenized by the claimed tokenizer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefill_attack_commits_with_the_real_model_but_its_tokens_fail() {
    let cheater = cheater(Adversary::PrefillAttack(None)).await;
    let cheap = agora_models::requantized_path(&claimed_id(), "Q2_K");
    assert_eq!(cheater.engine.generator_path(), Some(cheap.as_path()));
    let copy = LlamaEngine::load(&cheap, config()).unwrap();
    let job = job(chat(None, "Tell me about the moon."), 0.0, 4);
    let transcript = run_and_check(&cheater, &job).await;
    assert!(transcript.commitments.is_some(), "it commits");
    assert_eq!(
        transcript.output_tokens,
        direct(&copy, &job).await.1,
        "generated by the cheap copy"
    );
    assert_ne!(transcript.output_tokens, honest_output(&job).await);
    let reasons = assert_caught(&transcript).await;
    // The commitments are the real model's on these tokens: only the tokens give it away.
    let verdict = audit(&transcript).await;
    assert!(verdict.commitments.is_some());
    assert!(
        reasons.iter().all(|r| !r.contains("commitment")),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_model_files_are_clear_errors() {
    let missing = PathBuf::from("/nonexistent/other.gguf");
    let mode = Adversary::Substitute(Some(missing.clone()));
    let err = AdversarialEngine::load(mode, &model::path(), config())
        .err()
        .expect("refused");
    assert!(
        matches!(&err, AdversaryError::MissingModel { path, .. } if *path == missing),
        "{err}"
    );
    assert!(err.to_string().contains("/nonexistent/other.gguf"), "{err}");
    let claimed_missing = AdversarialEngine::load(Adversary::Tamper, &missing, config())
        .err()
        .expect("refused");
    assert!(
        claimed_missing.to_string().contains("no such file"),
        "{claimed_missing}"
    );
}
