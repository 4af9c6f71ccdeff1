//! Test doubles for the gateway: a scripted provider speaking the job protocol
//! over real HTTP, and a directory holding a fixed (but replaceable) snapshot.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_gateway::{Directory, DirectoryError, Gateway, GatewayConfig, Snapshot};
use agora_types::{
    hash_output_text, hash_tokens, FinishReason, Hash32, JobEvent, JobRequest, Keypair, ModelEntry,
    Price, ProviderInfo, Receipt, Usage,
};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// What a stub provider does with a job.
#[derive(Clone, Debug)]
pub enum Script {
    /// Stream these deltas, then `done`.
    Deltas(Vec<&'static str>),
    /// Stream one delta, then end the body cleanly without `done`.
    EofAfterOne,
    /// Stream one delta, then abort the connection.
    AbortAfterOne,
    /// Stream one delta, then an `error` event.
    ErrorAfterOne,
    /// Stream one delta, then go silent forever.
    Stall,
    /// Answer 400 (e.g. prompt too long).
    Refuse,
    /// Answer 503 busy with `retry-after`.
    Busy,
    /// Stream these deltas, then `done` with a receipt that lies in the
    /// provider's favour as [`Greed`] says (an attacker's provider).
    Greedy(Vec<&'static str>, Greed),
    /// An embedding job: send `sent`, then `done` with a receipt whose output
    /// hash commits to `hashed` (the same vectors, for an honest provider).
    Vectors {
        /// The vectors sent to the gateway.
        sent: Vec<Vec<f32>>,
        /// The vectors the receipt commits to.
        hashed: Vec<Vec<f32>>,
    },
}

/// How a greedy provider's receipt lies.
#[derive(Clone, Copy, Debug)]
pub enum Greed {
    /// Charges far more than its price makes the tokens cost.
    Cost,
    /// Claims another price than the registered one (and charges by it).
    Price,
    /// Counts more prompt tokens than the prompt holds.
    PromptTokens,
    /// Counts more completion tokens than `max_tokens` (stream and receipt agree).
    CompletionTokens,
    /// Receipt counts differ from what the stream reported.
    Mismatch,
    /// Signed for another chain, so the same job could be counted on two
    /// networks.
    OtherChain,
    /// Streams other text than its receipt commits to: the receipt (and the
    /// transcript an auditor replays) hash honest text, the client got junk.
    Text,
    /// Signs for other sampling parameters than the job's: no output
    /// constraint, so an auditor would replay free text as honest.
    Unconstrained,
}

/// What a [`Greed::Text`] provider's receipt claims it streamed.
/// Prompt tokens a scripted completion says it took from its prompt cache.
pub const MOCK_CACHED_TOKENS: u32 = 4;

pub const CLAIMED_TEXT: &str = "the honest answer";

/// The chain every test snapshot and honest stub receipt names.
pub const CHAIN_ID: &str = "gateway-test";

/// A provider double.
pub struct Stub {
    /// Its signing key.
    pub key: Keypair,
    /// What it charges.
    pub price: Price,
    /// Its behaviour.
    pub script: Script,
    /// Every job it received.
    pub requests: Mutex<Vec<JobRequest>>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Stub {
    /// The chain's record of this provider, serving `models`.
    pub fn info(&self, models: &[Hash32]) -> ProviderInfo {
        ProviderInfo {
            id: self.key.account(),
            endpoint: format!("http://{}", self.addr),
            models: models.to_vec(),
            price: self.price,
            stake: 1,
            registered_at: 0,
            replayable: true,
        }
    }

    /// The jobs received so far.
    pub fn jobs(&self) -> Vec<JobRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// Start a stub provider on a loopback port.
pub async fn stub(script: Script, price: Price) -> Arc<Stub> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stub = Arc::new(Stub {
        key: Keypair::generate(),
        price,
        script,
        requests: Mutex::new(Vec::new()),
        addr,
    });
    if matches!(stub.script, Script::AbortAfterOne) {
        tokio::spawn(raw_abort_server(listener, stub.clone()));
        return stub;
    }
    let app = Router::new()
        .route("/v1/jobs", post(run_job))
        .with_state(stub.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    stub
}

/// A hand-written HTTP/1.1 server: it answers 200 with headers and one delta,
/// flushes them, then drops the connection without finishing the chunked body.
async fn raw_abort_server(listener: tokio::net::TcpListener, stub: Arc<Stub>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let stub = stub.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, length) = loop {
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0, "client went away");
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    break (i + 4, length);
                }
            };
            while buf.len() < head_end + length {
                let n = socket.read(&mut chunk).await.unwrap();
                assert!(n > 0, "client went away");
                buf.extend_from_slice(&chunk[..n]);
            }
            let req: JobRequest =
                serde_json::from_slice(&buf[head_end..head_end + length]).unwrap();
            stub.requests.lock().unwrap().push(req);
            let id = Hash32(rand::random());
            let event = format!(
                "data: {}\n\n",
                serde_json::to_string(&JobEvent::Delta {
                    text: "partial".into()
                })
                .unwrap()
            );
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-agora-job-id: {}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{}\r\n",
                id.to_hex(),
                event.len(),
                event
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.flush().await.unwrap();
            // Dropping the socket here cuts the body short.
        });
    }
}

/// An address nothing listens on.
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn event(e: &JobEvent) -> Result<Bytes, std::io::Error> {
    Ok(Bytes::from(format!(
        "data: {}\n\n",
        serde_json::to_string(e).unwrap()
    )))
}

async fn run_job(State(s): State<Arc<Stub>>, body: Bytes) -> Response {
    let req: JobRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    s.requests.lock().unwrap().push(req.clone());
    let id = Hash32(rand::random());
    let delta = |t: &str| {
        event(&JobEvent::Delta {
            text: t.to_string(),
        })
    };
    let events: Vec<Result<Bytes, std::io::Error>> = match &s.script {
        Script::Refuse => {
            let err = json!({"error": {"message": "prompt is too long for the context window", "type": "invalid_request_error", "param": null, "code": "invalid_request"}});
            return (StatusCode::BAD_REQUEST, Json(err)).into_response();
        }
        Script::Busy => {
            let err = json!({"error": {"message": "busy", "type": "server_error", "param": null, "code": "provider_busy"}});
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "1")],
                Json(err),
            )
                .into_response();
        }
        Script::Deltas(deltas) | Script::Greedy(deltas, _) => {
            let greed = match &s.script {
                Script::Greedy(_, g) => Some(*g),
                _ => None,
            };
            let mut out: Vec<_> = deltas.iter().map(|d| delta(d)).collect();
            let mut usage = Usage {
                prompt_tokens: 11,
                completion_tokens: deltas.len() as u32,
            };
            match greed {
                Some(Greed::PromptTokens) => usage.prompt_tokens = 1_000_000,
                Some(Greed::CompletionTokens) => {
                    usage.completion_tokens = req.params.max_tokens + 1_000
                }
                _ => {}
            }
            let price = match greed {
                Some(Greed::Price) => Price {
                    input_per_1k: s.price.input_per_1k * 1_000,
                    output_per_1k: s.price.output_per_1k * 1_000,
                },
                _ => s.price,
            };
            let mut cost = price.cost(usage.prompt_tokens.into(), usage.completion_tokens.into());
            if let Some(Greed::Cost) = greed {
                cost = u64::MAX / 2;
            }
            let mut receipt_usage = usage;
            if let Some(Greed::Mismatch) = greed {
                receipt_usage.completion_tokens += 1;
                cost = price.cost(
                    receipt_usage.prompt_tokens.into(),
                    receipt_usage.completion_tokens.into(),
                );
            }
            let chain_id = match greed {
                Some(Greed::OtherChain) => "another-network",
                _ => CHAIN_ID,
            };
            let text_hash = match greed {
                Some(Greed::Text) => hash_output_text(CLAIMED_TEXT),
                _ => hash_output_text(&deltas.concat()),
            };
            let receipt = Receipt {
                chain_id: chain_id.into(),
                id,
                provider: s.key.account(),
                model: req.model,
                prompt_hash: hash_tokens(&[1, 2, 3]),
                output_hash: hash_tokens(&[4, 5]),
                text_hash,
                params: match greed {
                    Some(Greed::Unconstrained) => agora_types::SamplingParams {
                        constraint: None,
                        ..req.params.clone()
                    },
                    _ => req.params.clone(),
                },
                usage: receipt_usage,
                price,
                cost,
                timestamp_ms: 1,
                commitments: Hash32::ZERO,
            }
            .sign(&s.key);
            out.push(event(&JobEvent::Done {
                finish_reason: FinishReason::Length,
                usage,
                receipt,
                cached_tokens: MOCK_CACHED_TOKENS,
            }));
            out
        }
        Script::Vectors { sent, hashed } => {
            let tokens: u32 = match &req.input {
                agora_types::JobInput::Embed { inputs } => {
                    inputs.iter().map(|i| i.split(' ').count() as u32 + 2).sum()
                }
                _ => 0,
            };
            let usage = Usage {
                prompt_tokens: tokens,
                completion_tokens: 0,
            };
            let receipt = Receipt {
                chain_id: CHAIN_ID.into(),
                id,
                provider: s.key.account(),
                model: req.model,
                prompt_hash: hash_tokens(&[1, 2, 3]),
                output_hash: agora_types::hash_embeddings(hashed),
                text_hash: hash_output_text(""),
                params: req.params.clone(),
                usage,
                price: s.price,
                cost: s.price.cost(tokens.into(), 0),
                timestamp_ms: 1,
                commitments: Hash32::ZERO,
            }
            .sign(&s.key);
            vec![
                event(&JobEvent::Embeddings {
                    vectors: sent.clone(),
                }),
                event(&JobEvent::Done {
                    finish_reason: FinishReason::Stop,
                    usage,
                    receipt,
                    cached_tokens: 0,
                }),
            ]
        }
        Script::EofAfterOne | Script::Stall => vec![delta("partial")],
        Script::AbortAfterOne => unreachable!("served by raw_abort_server"),
        Script::ErrorAfterOne => {
            vec![
                delta("partial"),
                event(&JobEvent::Error {
                    message: "engine crashed".into(),
                }),
            ]
        }
    };
    let body = if matches!(s.script, Script::Stall) {
        Body::from_stream(futures::StreamExt::chain(
            futures::stream::iter(events),
            futures::stream::pending(),
        ))
    } else {
        Body::from_stream(futures::stream::iter(events))
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header("x-agora-job-id", id.to_hex())
        .body(body)
        .unwrap()
}

/// A directory whose snapshot the test can replace; `None` = unreadable.
#[derive(Clone, Default)]
pub struct TestDirectory(pub Arc<Mutex<Option<Snapshot>>>);

impl TestDirectory {
    /// Replace the snapshot.
    pub fn set(&self, snap: Option<Snapshot>) {
        *self.0.lock().unwrap() = snap;
    }
}

impl Directory for TestDirectory {
    async fn snapshot(&self) -> Result<Snapshot, DirectoryError> {
        self.0
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| DirectoryError("chain unreachable".into()))
    }
}

/// A registry entry named `name`.
pub fn model(name: &str) -> ModelEntry {
    ModelEntry {
        id: Hash32::digest(name.as_bytes()),
        name: name.to_string(),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: 1234,
        license: "Apache-2.0".into(),
        owner: agora_types::no_owner(),
        royalty_ppm: 0,
        tokenizer_hash: Default::default(),
    }
}

/// A running gateway.
pub struct Running {
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The gateway itself.
    pub gateway: Arc<Gateway<TestDirectory>>,
    /// Its directory.
    pub directory: TestDirectory,
    /// An HTTP client.
    pub http: reqwest::Client,
}

impl Running {
    /// POST JSON to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POST `body` to `path` and read the answer as JSON (whatever its status).
    pub async fn post_json(&self, path: &str, body: &Value) -> Value {
        self.post(path, body).await.json().await.unwrap()
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

/// Start a gateway over `snapshot` (read once before serving when readable).
pub async fn gateway_with(snapshot: Option<Snapshot>, config: GatewayConfig) -> Running {
    let directory = TestDirectory::default();
    directory.set(snapshot.clone());
    let gateway = Gateway::new(directory.clone(), config);
    if snapshot.is_some() {
        gateway.refresh().await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = gateway.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Running {
        base,
        gateway,
        directory,
        http: reqwest::Client::new(),
    }
}

/// Start a gateway with the default configuration.
pub async fn gateway(snapshot: Snapshot) -> Running {
    gateway_with(Some(snapshot), GatewayConfig::default()).await
}

/// The JSON `data:` payloads of an SSE body, `[DONE]` as the string `"[DONE]"`.
pub fn sse_data(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if data.is_empty() {
                return None;
            }
            let data = data.join("\n");
            Some(if data == "[DONE]" {
                Value::String(data)
            } else {
                serde_json::from_str(&data).unwrap()
            })
        })
        .collect()
}

/// Read a whole response body, failing instead of hanging.
pub async fn text(resp: reqwest::Response) -> String {
    tokio::time::timeout(Duration::from_secs(20), resp.text())
        .await
        .expect("response body never ended")
        .unwrap()
}

/// Check the OpenAI error shape and return the `error` object.
pub async fn openai_error(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        resp.headers()
    );
    let body: Value = serde_json::from_str(&text(resp).await).unwrap();
    let err = body["error"].clone();
    for key in ["message", "type", "param", "code"] {
        assert!(err.get(key).is_some(), "missing {key} in {body}");
    }
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    err
}

/// A payer double that records what the gateway hands it, for which account,
/// and says every account holds `funds`.
pub struct RecordingPayer {
    /// (paying account, receipt) of every job handed over.
    pub paid: Mutex<Vec<(agora_types::AccountId, agora_types::SignedReceipt)>>,
    /// What every account can spend.
    pub funds: u64,
}

impl Default for RecordingPayer {
    fn default() -> Self {
        RecordingPayer {
            paid: Mutex::new(Vec::new()),
            funds: 1 << 40,
        }
    }
}

impl RecordingPayer {
    /// The receipts handed over so far.
    pub fn receipts(&self) -> Vec<agora_types::SignedReceipt> {
        self.paid
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }
}

impl agora_gateway::JobPayer for RecordingPayer {
    fn job_done(
        self: Arc<Self>,
        account: agora_types::AccountId,
        _provider: ProviderInfo,
        receipt: agora_types::SignedReceipt,
    ) {
        self.paid.lock().unwrap().push((account, receipt));
    }

    fn available(
        self: Arc<Self>,
        _account: agora_types::AccountId,
    ) -> futures::future::BoxFuture<'static, Result<u64, agora_gateway::PayError>> {
        let funds = self.funds;
        Box::pin(async move { Ok(funds) })
    }
}

/// A key book in its own temporary directory with one custodial account
/// and `key` bound to it without limits.
pub struct TestBook {
    /// The book.
    pub book: Arc<agora_gateway::KeyBook>,
    /// The account.
    pub account: agora_types::AccountId,
    _dir: tempfile::TempDir,
}

impl TestBook {
    /// A book holding `key`.
    pub fn with_key(key: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let book = agora_gateway::KeyBook::open(&dir.path().join("keys.redb")).unwrap();
        let account = book.create_account().unwrap();
        book.import_key(key, "test", account, agora_gateway::Limits::default())
            .unwrap();
        TestBook {
            book,
            account,
            _dir: dir,
        }
    }
}

/// A gateway over `directory` that serves only `book`'s keys and pays
/// through `payer`, with funds read and the directory refreshed.
pub async fn keyed_gateway(
    directory: TestDirectory,
    book: &TestBook,
    payer: Arc<dyn agora_gateway::JobPayer>,
) -> Arc<Gateway<TestDirectory>> {
    let gateway = Gateway::with_payer(
        directory,
        GatewayConfig::default(),
        book.book.clone(),
        payer,
    );
    gateway.refresh().await.unwrap();
    gateway.refresh_funds().await;
    gateway
}
