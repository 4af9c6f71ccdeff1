//! [`UpstreamEngine`] against a real OpenAI-compatible server: an in-process
//! agora gateway routing to an agora provider that runs the real llama.cpp
//! engine on the real default model (fetched by `agora model fetch` or
//! `scripts/test.sh`). The same `LlamaEngine` is also called directly, so
//! every answer through the upstream can be compared with the local one.
//!
//! A few failure paths a real server cannot be made to take on demand
//! (malformed streams) use a scripted server at the end.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use agora_engine::{
    EngineError, EngineEvent, GenerateRequest, InferenceEngine, LlamaEngine, LlamaEngineConfig,
};
use agora_gateway::{Directory, DirectoryError, Gateway, GatewayConfig, Snapshot};
use agora_provider::{Provider, TranscriptStore};
use agora_testkit::model;
use agora_types::{
    ChatMessage, FinishReason, JobInput, Keypair, ModelEntry, Price, ProviderInfo, SamplingParams,
    TokenLogprob,
};
use agora_upstream::{list_models, UpstreamConfig, UpstreamEngine, UpstreamError};
use tokio::sync::mpsc;

/// The registry name the gateway serves the default model under.
const MODEL_NAME: &str = "smollm2-135m-instruct";
/// The chain the provider signs receipts for and the gateway checks them against.
const CHAIN_ID: &str = "upstream-test";
/// No job in these tests should take longer than this.
const JOB_LIMIT: Duration = Duration::from_secs(120);

/// The running upstream and the engine behind it.
struct Network {
    /// The gateway's OpenAI base URL, `http://127.0.0.1:PORT/v1`.
    openai: String,
    /// The gateway's root, without `/v1`.
    root: String,
    /// The provider's engine, for local comparisons.
    local: Arc<LlamaEngine>,
}

/// A directory that always lists the one provider.
struct Fixed(Snapshot);

impl Directory for Fixed {
    async fn snapshot(&self) -> Result<Snapshot, DirectoryError> {
        Ok(self.0.clone())
    }
}

/// Start (once per test binary) a provider and a gateway on a runtime of their
/// own, so they outlive each test's runtime.
fn network() -> &'static Network {
    static NETWORK: OnceLock<Network> = OnceLock::new();
    NETWORK.get_or_init(|| {
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let _ = ready.send(start().await);
                std::future::pending::<()>().await;
            });
        });
        started
            .recv()
            .expect("the network thread died while starting")
    })
}

async fn start() -> Network {
    let path = model::path();
    let config = LlamaEngineConfig {
        context_length: 2048,
        queue_capacity: 16,
        ..model::config()
    };
    let local = Arc::new(model::load(config));
    let model = model::id();
    let dir = tempfile::tempdir().unwrap().keep();
    let transcripts = TranscriptStore::open(&dir.join("transcripts.redb")).unwrap();
    let key = Keypair::generate();
    let price = Price {
        input_per_1k: 1,
        output_per_1k: 2,
    };
    let provider = Provider::new(
        CHAIN_ID,
        local.clone(),
        key.clone(),
        model,
        price,
        transcripts,
    )
    .router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, provider).await });

    let snapshot = Snapshot {
        chain_id: CHAIN_ID.into(),
        models: vec![ModelEntry {
            id: model,
            name: MODEL_NAME.into(),
            architecture: "llama".into(),
            quantization: "Q4_1".into(),
            size_bytes: std::fs::metadata(&path).unwrap().len(),
            license: "Apache-2.0".into(),
            owner: agora_types::no_owner(),
            royalty_ppm: 0,
            tokenizer_hash: Default::default(),
        }],
        providers: vec![ProviderInfo {
            id: key.account(),
            endpoint,
            models: vec![model],
            price,
            stake: 1,
            registered_at: 0,
            replayable: false,
        }],
    };
    let gateway = Gateway::new(Fixed(snapshot), GatewayConfig::default());
    gateway.refresh().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    let router = gateway.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Network {
        openai: format!("{root}/v1"),
        root,
        local,
    }
}

/// An upstream engine pointed at the gateway.
fn upstream() -> UpstreamEngine {
    upstream_with(UpstreamConfig::new(&network().openai, MODEL_NAME))
}

fn upstream_with(config: UpstreamConfig) -> UpstreamEngine {
    UpstreamEngine::new(&model::path(), config).expect("the tokenizer loads")
}

fn chat(text: &str) -> JobInput {
    JobInput::Chat {
        messages: vec![ChatMessage {
            role: "user".into(),
            content: text.into(),
        }],
    }
}

fn text(prompt: &str) -> JobInput {
    JobInput::Text {
        prompt: prompt.into(),
    }
}

fn greedy(max_tokens: u32) -> SamplingParams {
    SamplingParams::new(max_tokens, 0.0, 1.0, vec![], 7)
}

/// Everything a job reported.
#[derive(Debug)]
struct Outcome {
    prompt_tokens: Vec<i32>,
    text: String,
    /// How many `Text` events the text came in.
    pieces: usize,
    finish_reason: FinishReason,
    output_tokens: Vec<i32>,
    logprobs: Vec<TokenLogprob>,
}

/// Collect a job's events; `Err` carries a `Failed` message.
async fn collect(mut events: mpsc::Receiver<EngineEvent>) -> Result<Outcome, String> {
    let mut prompt_tokens = None;
    let mut text = String::new();
    let mut pieces = 0;
    let mut logprobs = Vec::new();
    loop {
        let event = tokio::time::timeout(JOB_LIMIT, events.recv())
            .await
            .expect("the job went silent")
            .expect("the engine dropped the job without a final event");
        match event {
            EngineEvent::Started {
                prompt_tokens: p, ..
            } => {
                assert!(prompt_tokens.is_none(), "Started twice");
                assert!(text.is_empty(), "Started after text");
                prompt_tokens = Some(p);
            }
            EngineEvent::Text(t) => {
                assert!(prompt_tokens.is_some(), "text before Started");
                text.push_str(&t);
                pieces += 1;
            }
            EngineEvent::Logprob(lp) => logprobs.push(lp),
            EngineEvent::Finished {
                finish_reason,
                output_tokens,
                ..
            } => {
                return Ok(Outcome {
                    prompt_tokens: prompt_tokens.expect("finished without Started"),
                    text,
                    pieces,
                    finish_reason,
                    output_tokens,
                    logprobs,
                })
            }
            EngineEvent::Failed(message) => return Err(message),
            EngineEvent::Embeddings(_) => panic!("vectors for a completion job"),
        }
    }
}

async fn run(
    engine: &impl InferenceEngine,
    input: JobInput,
    params: SamplingParams,
) -> Result<Outcome, String> {
    let events = engine
        .generate(GenerateRequest { input, params })
        .expect("the engine accepts the job");
    collect(events).await
}

/// `text` tokenized by the local engine itself (as a raw prompt, minus the BOS
/// token if the model adds one): an independent check of the upstream
/// engine's re-tokenization.
fn local_tokens(text: &str) -> Vec<i32> {
    let local = &network().local;
    let adds_bos = local.tokenize(&self::text("a")).unwrap().len() == 2;
    let mut tokens = local.tokenize(&self::text(text)).unwrap();
    if adds_bos {
        tokens.remove(0);
    }
    tokens
}

#[tokio::test]
async fn greedy_chat_through_the_upstream_equals_the_local_engine() {
    let net = network();
    let input = chat("Name three colors.");
    let through = run(&upstream(), input.clone(), greedy(24)).await.unwrap();
    let local = run(&*net.local, input.clone(), greedy(24)).await.unwrap();
    assert!(!through.text.is_empty());
    assert_eq!(through.text, local.text);
    assert_eq!(through.finish_reason, local.finish_reason);
    assert!(through.pieces > 1, "the text was not streamed: {through:?}");
    // Receipt tokens: the prompt as the local engine renders it, the output as
    // the text tokenizes.
    assert_eq!(through.prompt_tokens, net.local.tokenize(&input).unwrap());
    assert_eq!(through.prompt_tokens, local.prompt_tokens);
    assert_eq!(through.output_tokens, local_tokens(&through.text));
    // Here re-tokenizing the text gives back exactly the sampled tokens.
    assert_eq!(through.output_tokens, local.output_tokens);
    assert!(through.logprobs.is_empty(), "logprobs were not asked for");
}

#[tokio::test]
async fn text_completion_honours_max_tokens_and_finishes_with_length() {
    let net = network();
    let input = text("The capital of France is");
    let through = run(&upstream(), input.clone(), greedy(5)).await.unwrap();
    let local = run(&*net.local, input.clone(), greedy(5)).await.unwrap();
    assert_eq!(through.finish_reason, FinishReason::Length);
    assert_eq!(through.text, local.text);
    assert_eq!(through.output_tokens, local_tokens(&through.text));
    assert!(through.output_tokens.len() <= 5, "{through:?}");
    assert_eq!(through.prompt_tokens, net.local.tokenize(&input).unwrap());
}

#[tokio::test]
async fn a_stop_string_ends_the_text_with_stop() {
    let net = network();
    let input = chat("Write one sentence about the sea.");
    let free = run(&*net.local, input.clone(), greedy(40)).await.unwrap();
    // Stop at a word in the middle of the greedy answer.
    let words: Vec<&str> = free.text.split_whitespace().collect();
    assert!(words.len() > 4, "answer too short to cut: {:?}", free.text);
    let stop = format!(" {}", words[words.len() / 2]);
    let mut params = greedy(40);
    params.stop = vec![stop.clone()];
    let through = run(&upstream(), input.clone(), params.clone())
        .await
        .unwrap();
    let local = run(&*net.local, input, params).await.unwrap();
    assert_eq!(through.finish_reason, FinishReason::Stop);
    assert!(!through.text.contains(&stop), "{through:?}");
    assert!(free.text.starts_with(&through.text));
    assert!(through.text.len() < free.text.len());
    assert_eq!(through.text, local.text);
}

#[tokio::test]
async fn seeded_sampling_and_penalties_reach_the_upstream() {
    let net = network();
    let input = chat("Tell me a short story.");
    // A seed above i64::MAX: sent as a negative i64, read back as the same u64.
    let mut params = SamplingParams::new(8, 0.9, 0.95, vec![], 12_345_678_901_234_567_890);
    params.presence_penalty = 0.5;
    params.frequency_penalty = 0.25;
    let engine = upstream();
    let first = run(&engine, input.clone(), params.clone()).await.unwrap();
    let second = run(&engine, input.clone(), params.clone()).await.unwrap();
    let local = run(&*net.local, input.clone(), params.clone())
        .await
        .unwrap();
    assert_eq!(first.text, second.text);
    assert_eq!(first.text, local.text);
    // Another choice of the same request samples differently.
    params.choice = 1;
    let other = run(&engine, input, params).await.unwrap();
    assert_ne!(other.text, first.text);
}

#[tokio::test]
async fn logprobs_are_relayed_with_local_token_ids() {
    let net = network();
    for input in [chat("Say hi"), text("Once upon a time")] {
        let mut params = greedy(6);
        // Legacy completions allow at most 5 alternatives.
        params.logprobs = Some(3);
        let through = run(&upstream(), input.clone(), params.clone())
            .await
            .unwrap();
        let local = run(&*net.local, input.clone(), params).await.unwrap();
        assert_eq!(through.text, local.text);
        assert_eq!(through.logprobs.len(), local.logprobs.len(), "{input:?}");
        for (up, loc) in through.logprobs.iter().zip(&local.logprobs) {
            assert_eq!(up.chosen.token_id, loc.chosen.token_id, "{up:?} vs {loc:?}");
            assert_eq!(up.chosen.token, loc.chosen.token);
            assert!((up.chosen.logprob - loc.chosen.logprob).abs() < 1e-4);
            assert_eq!(up.top.len(), 3);
            let ids = |lp: &TokenLogprob| lp.top.iter().map(|t| t.token_id).collect::<Vec<_>>();
            assert_eq!(ids(up), ids(loc), "{input:?}");
        }
        let joined: String = through
            .logprobs
            .iter()
            .map(|lp| lp.chosen.token.as_str())
            .collect();
        assert_eq!(joined, through.text);
    }
}

#[tokio::test]
async fn the_engine_reports_what_it_serves() {
    let engine = upstream();
    assert!(!engine.replayable());
    assert!(network().local.replayable());
    assert_eq!(engine.model_info().name, network().local.model_info().name);
    assert_eq!(engine.model_info().quantization, "Q4_1");
    assert_eq!(engine.base_url(), network().openai);
    assert_eq!(engine.upstream_model(), MODEL_NAME);
    let models = list_models(&network().openai, None).await.unwrap();
    assert!(models.iter().any(|m| m == MODEL_NAME), "{models:?}");
}

/// An address nothing listens on.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn an_unreachable_upstream_fails_with_a_clear_message() {
    let url = dead_url();
    let engine = upstream_with(UpstreamConfig::new(&url, MODEL_NAME));
    let err = run(&engine, chat("hi"), greedy(4)).await.unwrap_err();
    assert!(
        err.contains(&format!(
            "cannot reach the upstream at {url}/chat/completions"
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
    let err = list_models(&url, None).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Unreachable { .. }), "{err}");
    engine.drained().await;
}

#[tokio::test]
async fn upstream_error_bodies_surface_their_message() {
    let net = network();
    // Unknown model: the gateway's 404 with an OpenAI error body.
    let engine = upstream_with(UpstreamConfig::new(&net.openai, "no-such-model"));
    let err = run(&engine, chat("hi"), greedy(4)).await.unwrap_err();
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(
        err.contains("The model `no-such-model` does not exist"),
        "{err}"
    );
    // A parameter the upstream refuses (the gateway allows temperature <= 2).
    let mut params = greedy(4);
    params.temperature = 3.0;
    let err = run(&upstream(), chat("hi"), params).await.unwrap_err();
    assert!(err.contains("HTTP 400"), "{err}");
    assert!(err.contains("temperature"), "{err}");
    // A base URL without /v1: a 404 that is not an OpenAI answer gets a hint.
    let engine = upstream_with(UpstreamConfig::new(&net.root, MODEL_NAME));
    let err = run(&engine, chat("hi"), greedy(4)).await.unwrap_err();
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(err.contains("/v1"), "{err}");
}

#[tokio::test]
async fn bad_input_and_bad_configuration_are_refused_up_front() {
    let engine = upstream();
    let refused = |input: JobInput, params: SamplingParams| {
        engine
            .generate(GenerateRequest { input, params })
            .map(|_| ())
            .unwrap_err()
    };
    assert!(
        matches!(refused(chat("hi"), greedy(0)), EngineError::InvalidRequest(m) if m.contains("max_tokens"))
    );
    let long = "word ".repeat(20_000);
    assert!(
        matches!(refused(text(&long), greedy(4)), EngineError::InvalidRequest(m) if m.contains("context window"))
    );
    let tool = JobInput::Chat {
        messages: vec![ChatMessage {
            role: "tool".into(),
            content: "x".into(),
        }],
    };
    assert!(
        matches!(refused(tool, greedy(4)), EngineError::InvalidRequest(m) if m.contains("role"))
    );
    let missing = UpstreamEngine::new(
        std::path::Path::new("/nonexistent/model.gguf"),
        UpstreamConfig::new(&network().openai, MODEL_NAME),
    );
    assert!(matches!(
        missing,
        Err(UpstreamError::Engine(EngineError::Load { .. }))
    ));
    let https = UpstreamEngine::new(&model::path(), UpstreamConfig::new("https://x/v1", "m"));
    assert!(matches!(https, Err(UpstreamError::InvalidUrl { .. })));
}

#[tokio::test]
async fn dropping_the_receiver_cancels_the_upstream_request() {
    let mut config = UpstreamConfig::new(&network().openai, MODEL_NAME);
    config.max_concurrent = 1;
    config.queue_capacity = 0;
    let engine = upstream_with(config);
    // A job that would run for the whole context window if left alone.
    let long = GenerateRequest {
        input: text("1, 2, 3, 4, 5, 6, 7, 8,"),
        params: greedy(1800),
    };
    let mut events = engine.generate(long.clone()).unwrap();
    loop {
        match events.recv().await {
            Some(EngineEvent::Text(_)) => break,
            Some(EngineEvent::Started { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // The one slot is taken: a second job is refused, not queued.
    assert!(matches!(
        engine.generate(long.clone()),
        Err(EngineError::Busy(0))
    ));
    drop(events);
    // The job task ends (dropping the upstream request) promptly, long before
    // 1,800 tokens could have been generated.
    tokio::time::timeout(Duration::from_secs(10), engine.drained())
        .await
        .expect("the upstream request was not abandoned");
    let after = run(&engine, text("1, 2, 3,"), greedy(3)).await.unwrap();
    assert_eq!(after.finish_reason, FinishReason::Length);
}

#[tokio::test]
async fn jobs_beyond_the_concurrency_limit_wait_their_turn() {
    let mut config = UpstreamConfig::new(&network().openai, MODEL_NAME);
    config.max_concurrent = 1;
    config.queue_capacity = 2;
    let engine = upstream_with(config);
    let jobs: Vec<_> = (0..3)
        .map(|i| {
            engine
                .generate(GenerateRequest {
                    input: chat(&format!("Count to {}", i + 2)),
                    params: greedy(6),
                })
                .unwrap()
        })
        .collect();
    assert!(matches!(
        engine.generate(GenerateRequest {
            input: chat("one too many"),
            params: greedy(6),
        }),
        Err(EngineError::Busy(2))
    ));
    for events in jobs {
        let outcome = collect(events).await.unwrap();
        assert!(!outcome.text.is_empty());
    }
    engine.drained().await;
}

/// A scripted server answering every POST with `status`, `content_type` and `body`.
async fn scripted(status: u16, content_type: &'static str, body: &'static str) -> String {
    use axum::http::{header, StatusCode};
    let app = axum::Router::new().fallback(move || async move {
        (
            StatusCode::from_u16(status).unwrap(),
            [(header::CONTENT_TYPE, content_type)],
            body,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn malformed_streams_fail_the_job_with_the_reason() {
    let sse = "text/event-stream";
    let cases = [
        (
            200,
            sse,
            "data: {not json\n\n",
            "malformed response: event data is not JSON",
        ),
        (
            200,
            "application/json",
            "{\"choices\":[]}",
            "expected an event stream",
        ),
        (
            200,
            sse,
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n",
            "broke off the response: the stream ended before the job finished",
        ),
        (200, sse, "data: [DONE]\n\n", "[DONE] but no finish_reason"),
        (
            200,
            sse,
            "data: {\"error\":{\"message\":\"CUDA out of memory\"}}\n\n",
            "reported an error: CUDA out of memory",
        ),
        (
            200,
            sse,
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"abort\"}]}\n\n",
            "reported an error",
        ),
        (
            500,
            "text/plain",
            "internal failure",
            "HTTP 500: internal failure",
        ),
    ];
    for (status, content_type, body, expected) in cases {
        let url = scripted(status, content_type, body).await;
        let engine = upstream_with(UpstreamConfig::new(&url, "m"));
        let err = run(&engine, chat("hi"), greedy(4)).await.unwrap_err();
        assert!(err.contains(expected), "{body:?}: {err}");
    }
    // A well-formed stream without [DONE] still finishes.
    let url = scripted(
        200,
        sse,
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":\"length\"}]}\n\n",
    )
    .await;
    let engine = upstream_with(UpstreamConfig::new(&url, "m"));
    let outcome = run(&engine, chat("hi"), greedy(4)).await.unwrap();
    assert_eq!(outcome.text, "Hello");
    assert_eq!(outcome.finish_reason, FinishReason::Length);
    assert_eq!(outcome.output_tokens, local_tokens("Hello"));
}
