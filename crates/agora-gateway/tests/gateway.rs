//! The gateway over real loopback HTTP, against stub providers (small axum
//! servers speaking the provider protocol) and a fixed directory. The real
//! provider and chain-backed directory are exercised by the `agora` crate's
//! end-to-end tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_gateway::{Directory, DirectoryError, Gateway, GatewayConfig, Snapshot};
use agora_types::{
    FinishReason, Hash32, JobEvent, JobRequest, Keypair, ModelEntry, Price, ProviderInfo, Receipt, Usage,
};
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use axum::routing;
use axum::{Json, Router};
use serde_json::{json, Value};

/// A fixed directory (test double of the chain-backed one).
struct Fixed(Snapshot);

impl Directory for Fixed {
    async fn snapshot(&self) -> Result<Snapshot, DirectoryError> {
        Ok(self.0.clone())
    }
}

/// How a stub provider behaves.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Streams "Hello", " world" and a signed receipt.
    Good,
    /// Streams one delta, then drops the connection.
    DiesMidStream,
}

/// A stub provider: records the jobs it receives.
struct Stub {
    key: Keypair,
    url: String,
    jobs: Arc<Mutex<Vec<JobRequest>>>,
}

async fn stub(behaviour: Behaviour) -> Stub {
    let key = Keypair::generate();
    let jobs = Arc::new(Mutex::new(Vec::new()));
    let (k, j) = (key.clone(), jobs.clone());
    let app = Router::new().route(
        "/v1/jobs",
        routing::post(move |Json(job): Json<JobRequest>| {
            let (key, jobs) = (k.clone(), j.clone());
            async move {
                jobs.lock().unwrap().push(job.clone());
                let id = Hash32(rand::random());
                let usage = Usage { prompt_tokens: 5, completion_tokens: 2 };
                let price = Price { input_per_1k: 1000, output_per_1k: 3000 };
                let receipt = Receipt {
                    id,
                    provider: key.account(),
                    model: job.model,
                    prompt_hash: Hash32::digest(b"p"),
                    output_hash: Hash32::digest(b"o"),
                    params: job.params.clone(),
                    usage,
                    price,
                    cost: price.cost(5, 2),
                    timestamp_ms: 1,
                }
                .sign(&key);
                let events = match behaviour {
                    Behaviour::Good => vec![
                        JobEvent::Delta { text: "Hello".into() },
                        JobEvent::Delta { text: " world".into() },
                        JobEvent::Done { finish_reason: FinishReason::Stop, usage, receipt },
                    ],
                    Behaviour::DiesMidStream => vec![JobEvent::Delta { text: "Hel".into() }],
                };
                let body: String =
                    events.iter().map(|e| format!("data: {}\n\n", serde_json::to_string(e).unwrap())).collect();
                let mut resp = ([("content-type", "text/event-stream")], body).into_response();
                resp.headers_mut().insert("x-agora-job-id", HeaderValue::from_str(&id.to_hex()).unwrap());
                resp
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Stub { key, url, jobs }
}

/// An address nothing listens on.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

fn model() -> ModelEntry {
    ModelEntry {
        id: Hash32::digest(b"gguf"),
        name: "tiny".into(),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: 1,
        license: "MIT".into(),
    }
}

fn listing(id: agora_types::AccountId, endpoint: &str, price: u64) -> ProviderInfo {
    ProviderInfo {
        id,
        endpoint: endpoint.into(),
        models: vec![model().id],
        price: Price { input_per_1k: price, output_per_1k: price },
        stake: 1,
        registered_at: 1,
    }
}

/// Start a gateway over `providers`; returns its OpenAI base URL.
async fn gateway(providers: Vec<ProviderInfo>, max_body_bytes: usize) -> String {
    let unserved = ModelEntry { id: Hash32::digest(b"other"), name: "unserved".into(), ..model() };
    let snapshot = Snapshot { models: vec![model(), unserved], providers };
    let config = GatewayConfig { max_body_bytes, ..GatewayConfig::default() };
    let gw = Gateway::new(Fixed(snapshot), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let router = gw.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

async fn post(url: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new().post(format!("{url}/chat/completions")).json(body).send().await.unwrap()
}

async fn expect_error(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    let v: Value = resp.json().await.unwrap();
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string() && e.get("param").is_some() && e.get("code").is_some(), "{v}");
    v
}

/// Split an SSE body into its `data` payloads.
fn sse_data(raw: &str) -> Vec<String> {
    raw.split("\n\n").filter_map(|e| e.trim().strip_prefix("data: ").map(str::to_string)).collect()
}

#[tokio::test]
async fn models_and_non_streaming_chat() {
    let p = stub(Behaviour::Good).await;
    let url = gateway(vec![listing(p.key.account(), &p.url, 10)], 1 << 20).await;

    let models: Value = reqwest::get(format!("{url}/models")).await.unwrap().json().await.unwrap();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["tiny"], "only served models are listed");
    assert_eq!(models["data"][0]["object"], "model");
    let one: Value = reqwest::get(format!("{url}/models/tiny")).await.unwrap().json().await.unwrap();
    assert_eq!(one["id"], "tiny");

    let body = chat(json!({"max_tokens": 9, "temperature": 0.3, "top_p": 0.5, "stop": ["x", "y"], "seed": 11}));
    let resp = post(&url, &body).await;
    assert_eq!(resp.status(), 200);
    let receipt = resp.headers()["x-agora-receipt"].to_str().unwrap().to_string();
    assert_eq!(resp.headers()["x-agora-provider"], p.key.account().to_hex().as_str());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["id"], format!("chatcmpl-{receipt}"));
    assert_eq!(v["model"], "tiny");
    assert_eq!(v["choices"][0]["message"], json!({"role": "assistant", "content": "Hello world"}));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"], json!({"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "cost": 11}));

    // Sampling parameters reach the provider exactly; the model is sent by id.
    let job = p.jobs.lock().unwrap()[0].clone();
    assert_eq!(job.model, model().id);
    assert_eq!(job.params.max_tokens, 9);
    assert_eq!(job.params.temperature, 0.3);
    assert_eq!(job.params.top_p, 0.5);
    assert_eq!(job.params.stop, ["x", "y"]);
    assert_eq!(job.params.seed, 11);

    // Without a seed the gateway picks one, so every job is replayable.
    post(&url, &chat(json!({}))).await;
    post(&url, &chat(json!({}))).await;
    let jobs = p.jobs.lock().unwrap().clone();
    assert_ne!(jobs[1].params.seed, jobs[2].params.seed);
}

#[tokio::test]
async fn streaming_chat_and_completions() {
    let p = stub(Behaviour::Good).await;
    let url = gateway(vec![listing(p.key.account(), &p.url, 10)], 1 << 20).await;

    let resp = post(&url, &chat(json!({"stream": true, "stream_options": {"include_usage": true}}))).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let receipt = resp.headers()["x-agora-receipt"].to_str().unwrap().to_string();
    let data = sse_data(&resp.text().await.unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert!(chunks.iter().all(|c| c["id"] == format!("chatcmpl-{receipt}") && c["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks.iter().filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Hello world");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 7);

    // Without include_usage there is no usage chunk.
    let data = sse_data(&post(&url, &chat(json!({"stream": true}))).await.text().await.unwrap());
    assert!(data.iter().all(|d| !d.contains("\"usage\"")));

    let client = reqwest::Client::new();
    let resp = client.post(format!("{url}/completions")).json(&json!({"model": "tiny", "prompt": "Once"})).send().await.unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "Hello world");
    let body = json!({"model": "tiny", "prompt": "Once", "stream": true});
    let raw = client.post(format!("{url}/completions")).json(&body).send().await.unwrap().text().await.unwrap();
    let data = sse_data(&raw);
    let text: String = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap()["choices"][0]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text, "Hello world");
}

#[tokio::test]
async fn errors_have_openai_shape_and_status() {
    let p = stub(Behaviour::Good).await;
    let url = gateway(vec![listing(p.key.account(), &p.url, 10)], 4096).await;
    let client = reqwest::Client::new();

    let v = expect_error(post(&url, &json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]})).await, 404).await;
    assert_eq!(v["error"]["code"], "model_not_found");
    expect_error(post(&url, &json!({"model": "unserved", "messages": [{"role": "user", "content": "hi"}]})).await, 503).await;
    let resp = client.post(format!("{url}/chat/completions")).body("{\"model\": ").send().await.unwrap();
    expect_error(resp, 400).await;
    let v = expect_error(post(&url, &chat(json!({"temperature": "hot"}))).await, 400).await;
    assert_eq!(v["error"]["param"], "temperature");
    let v = expect_error(post(&url, &chat(json!({"n": 2}))).await, 400).await;
    assert_eq!(v["error"]["param"], "n");
    let huge = chat(json!({"messages": [{"role": "user", "content": "x".repeat(10_000)}]}));
    expect_error(post(&url, &huge).await, 413).await;
    expect_error(client.get(format!("{url}/nowhere")).send().await.unwrap(), 404).await;
    expect_error(client.get(format!("{url}/chat/completions")).send().await.unwrap(), 405).await;
    let v = expect_error(post(&url, &chat(json!({"provider": {"only": ["nobody"]}}))).await, 503).await;
    assert_eq!(v["error"]["code"], "no_provider");
    assert!(p.jobs.lock().unwrap().is_empty(), "no invalid request reached the provider");
}

#[tokio::test]
async fn fails_over_to_the_next_provider() {
    let good = stub(Behaviour::Good).await;
    let dead = dead_url().await;
    let dead_id = Keypair::generate().account();
    let url = gateway(vec![listing(dead_id, &dead, 1), listing(good.key.account(), &good.url, 100)], 1 << 20).await;

    // The cheap provider is down; the request still succeeds via the other one.
    let resp = post(&url, &chat(json!({"provider": {"order": [dead.clone()]}}))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-agora-provider"], good.key.account().to_hex().as_str());

    // Without fallbacks the first choice's failure is final.
    let body = chat(json!({"provider": {"order": [dead_id.to_hex()], "allow_fallbacks": false}}));
    let v = expect_error(post(&url, &body).await, 503).await;
    assert!(v["error"]["message"].as_str().unwrap().contains(&dead), "{v}");
}

#[tokio::test]
async fn a_provider_dying_mid_job_is_an_error_not_a_hang() {
    let dying = stub(Behaviour::DiesMidStream).await;
    let url = gateway(vec![listing(dying.key.account(), &dying.url, 10)], 1 << 20).await;

    let resp = tokio::time::timeout(Duration::from_secs(30), post(&url, &chat(json!({})))).await.expect("hung");
    let v = expect_error(resp, 502).await;
    assert_eq!(v["error"]["code"], "provider_failed");

    let resp = post(&url, &chat(json!({"stream": true}))).await;
    assert_eq!(resp.status(), 200);
    let raw = tokio::time::timeout(Duration::from_secs(30), resp.text()).await.expect("stream hung").unwrap();
    let data = sse_data(&raw);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "provider_failed", "{raw}");
    assert!(!raw.contains("[DONE]"));
}
