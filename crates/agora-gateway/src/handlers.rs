//! HTTP handlers: model listing and the two completion endpoints, streaming
//! and not, with failover across providers until the client has seen output.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use agora_types::{JobEvent, JobRequest, ProviderInfo, SignedReceipt};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::openai::{self, CompletionRequest, Endpoint, ResponseMeta};
use crate::upstream::{self, JobStream, StartError};
use crate::{ApiError, Directory, Gateway};

/// Response header with the receipt id (the provider's job id).
pub const RECEIPT_HEADER: &str = "x-agora-receipt";
/// Response header with the provider's job id (equal to the receipt id).
pub const JOB_ID_HEADER: &str = "x-agora-job-id";
/// Response header with the serving provider's account.
pub const PROVIDER_HEADER: &str = "x-agora-provider";

type Gw<D> = State<Arc<Gateway<D>>>;

/// `GET /health`.
pub async fn health<D: Directory>(State(gw): Gw<D>) -> Json<Value> {
    let snap = gw.snapshot();
    Json(json!({"directory": snap.is_some(), "providers": snap.map_or(0, |s| s.providers.len())}))
}

fn model_object(snap: &crate::Snapshot, m: &agora_types::ModelEntry) -> Value {
    let providers: Vec<&ProviderInfo> = snap.providers_of(m).collect();
    let cheapest = providers
        .iter()
        .map(|p| p.price)
        .min_by_key(|p| p.input_per_1k.saturating_add(p.output_per_1k));
    json!({
        "id": m.name, "object": "model", "created": 0, "owned_by": "agora",
        "agora": {
            "model_id": m.id, "architecture": m.architecture, "quantization": m.quantization,
            "size_bytes": m.size_bytes, "license": m.license, "providers": providers.len(),
            "cheapest_price_per_1k": cheapest,
        },
    })
}

async fn current<D: Directory>(gw: &Gateway<D>) -> Result<crate::Snapshot, ApiError> {
    if let Some(s) = gw.snapshot() {
        return Ok(s);
    }
    gw.refresh()
        .await
        .map_err(|e| ApiError::directory(format!("the network directory cannot be read: {e}")))?;
    gw.snapshot()
        .ok_or_else(|| ApiError::directory("the network directory is empty"))
}

/// `GET /v1/models`: models with at least one provider.
pub async fn models<D: Directory>(State(gw): Gw<D>) -> Response {
    match current(&gw).await {
        Ok(snap) => {
            let data: Vec<Value> = snap
                .models
                .iter()
                .filter(|m| snap.providers_of(m).next().is_some())
                .map(|m| model_object(&snap, m))
                .collect();
            Json(json!({"object": "list", "data": data})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/models/{id}`.
pub async fn model<D: Directory>(State(gw): Gw<D>, Path(id): Path<String>) -> Response {
    match current(&gw).await {
        Ok(snap) => match snap.model(&id) {
            Some(m) => Json(model_object(&snap, m)).into_response(),
            None => ApiError::unknown_model(&id).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// Fallback for unknown routes.
pub async fn unknown_route(uri: Uri) -> Response {
    ApiError::unknown_route(uri.path()).into_response()
}

/// Fallback for known routes called with the wrong method.
pub async fn wrong_method() -> Response {
    ApiError::wrong_method().into_response()
}

/// `POST /v1/chat/completions`.
pub async fn chat<D: Directory>(State(gw): Gw<D>, headers: HeaderMap, body: Body) -> Response {
    complete(gw, Endpoint::Chat, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v1/completions`.
pub async fn completions<D: Directory>(
    State(gw): Gw<D>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    complete(gw, Endpoint::Completions, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Read the body, refusing anything over `limit` bytes with a 413.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::malformed(format!("cannot read the request body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

async fn complete<D: Directory>(
    gw: Arc<Gateway<D>>,
    endpoint: Endpoint,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, gw.config.max_body_bytes).await?;
    let req = openai::parse(endpoint, &bytes)?;
    let (entry, candidates) = gw.resolve(&req.model).await?;
    let plan = {
        let health = gw.health.lock().unwrap_or_else(|e| e.into_inner());
        req.routing.plan(candidates, &health)
    };
    if plan.is_empty() {
        return Err(ApiError::no_provider(format!(
            "No provider of `{}` matches your provider preferences",
            req.model
        )));
    }
    let job = JobRequest {
        model: entry.id,
        input: req.input.clone(),
        params: req.params.clone(),
    };
    if req.stream {
        stream(gw, endpoint, req, job, plan).await
    } else {
        collect(gw, endpoint, req, job, plan).await
    }
}

/// Start the job on the first provider in `plan` that takes it.
async fn start_first<D: Directory>(
    gw: &Gateway<D>,
    job: &JobRequest,
    plan: &mut std::vec::IntoIter<ProviderInfo>,
    tried: &mut Vec<String>,
) -> Result<Option<(ProviderInfo, JobStream)>, ApiError> {
    for provider in plan.by_ref() {
        match upstream::start(&gw.http, &provider, job, gw.config.provider_idle_timeout).await {
            Ok(s) => return Ok(Some((provider, s))),
            Err(StartError::Refused(e)) => return Err(e),
            Err(StartError::Unavailable(why)) => {
                tracing::warn!(provider = %provider.id, %why, "provider unavailable, trying the next");
                gw.health
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .failed(&provider.id);
                tried.push(why);
            }
        }
    }
    Ok(None)
}

fn exhausted(model: &str, tried: &[String], broke: bool) -> ApiError {
    let detail = tried.join("; ");
    if broke {
        ApiError::provider_failed(format!(
            "Every provider of `{model}` failed the job: {detail}"
        ))
    } else {
        ApiError::no_provider(format!("No provider of `{model}` is reachable: {detail}"))
    }
}

/// Timing of one job, for the health book.
struct Timing {
    start: Instant,
    first: Option<Instant>,
}

impl Timing {
    fn record<D: Directory>(
        &self,
        gw: &Gateway<D>,
        provider: &ProviderInfo,
        completion_tokens: u32,
    ) {
        let now = Instant::now();
        let first = self.first.unwrap_or(now);
        let decode = now.saturating_duration_since(first).as_secs_f64();
        let tps = if decode > 0.0 {
            f64::from(completion_tokens.saturating_sub(1)) / decode
        } else {
            0.0
        };
        gw.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .succeeded(&provider.id, first - self.start, tps);
    }
}

fn with_headers(mut response: Response, receipt: &str, provider: &ProviderInfo) -> Response {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(receipt) {
        h.insert(RECEIPT_HEADER, v.clone());
        h.insert(JOB_ID_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&provider.id.to_hex()) {
        h.insert(PROVIDER_HEADER, v);
    }
    response
}

/// Non-streaming: gather the whole job; a provider that breaks before the end
/// is replaced by the next one, since the client has seen nothing yet.
async fn collect<D: Directory>(
    gw: Arc<Gateway<D>>,
    endpoint: Endpoint,
    req: CompletionRequest,
    job: JobRequest,
    plan: Vec<ProviderInfo>,
) -> Result<Response, ApiError> {
    let mut plan = plan.into_iter();
    let mut tried = Vec::new();
    let mut broke = false;
    while let Some((provider, mut events)) = start_first(&gw, &job, &mut plan, &mut tried).await? {
        let mut timing = Timing {
            start: Instant::now(),
            first: None,
        };
        let mut text = String::new();
        let mut logprobs = Vec::new();
        let failure = loop {
            match events.next().await {
                Ok(JobEvent::Delta { text: t }) => {
                    timing.first.get_or_insert_with(Instant::now);
                    text.push_str(&t);
                }
                Ok(JobEvent::Logprobs { tokens }) => logprobs.extend(tokens),
                Ok(JobEvent::Done {
                    finish_reason,
                    usage,
                    receipt,
                }) => {
                    if let Err(why) = check_receipt(&receipt, &provider, &events.job_id) {
                        break why;
                    }
                    timing.record(&gw, &provider, usage.completion_tokens);
                    let meta = ResponseMeta::new(endpoint, &events.job_id, &req.model);
                    let body = meta.complete(
                        text,
                        finish_reason,
                        openai::usage_json(usage, receipt.receipt.cost),
                        job.params.logprobs.is_some().then_some(&logprobs[..]),
                    );
                    return Ok(with_headers(
                        Json(body).into_response(),
                        &events.job_id,
                        &provider,
                    ));
                }
                Ok(JobEvent::Error { message }) => {
                    break format!("{}: {message}", provider.endpoint)
                }
                Err(why) => break format!("{}: {why}", provider.endpoint),
            }
        };
        tracing::warn!(provider = %provider.id, %failure, "provider failed a job");
        gw.health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failed(&provider.id);
        tried.push(failure);
        broke = true;
    }
    Err(exhausted(&req.model, &tried, broke))
}

/// A receipt must be signed by the provider we called and name the job it streamed.
fn check_receipt(
    receipt: &SignedReceipt,
    provider: &ProviderInfo,
    job_id: &str,
) -> Result<(), String> {
    if receipt.receipt.provider != provider.id || receipt.verify().is_err() {
        return Err(format!(
            "{}: the receipt is not signed by the provider",
            provider.endpoint
        ));
    }
    if receipt.receipt.id.to_hex() != job_id {
        return Err(format!(
            "{}: the receipt names another job",
            provider.endpoint
        ));
    }
    Ok(())
}

fn data(value: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(value.to_string()))
}

/// Streaming: once a provider accepts the job the response starts; a failure
/// after that is reported in-band as an `error` data object.
async fn stream<D: Directory>(
    gw: Arc<Gateway<D>>,
    endpoint: Endpoint,
    req: CompletionRequest,
    job: JobRequest,
    plan: Vec<ProviderInfo>,
) -> Result<Response, ApiError> {
    let mut plan = plan.into_iter();
    let mut tried = Vec::new();
    let Some((provider, events)) = start_first(&gw, &job, &mut plan, &mut tried).await? else {
        return Err(exhausted(&req.model, &tried, false));
    };
    let meta = ResponseMeta::new(endpoint, &events.job_id, &req.model);
    let job_id = events.job_id.clone();
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(pump(
        gw,
        meta,
        req.include_usage,
        provider.clone(),
        events,
        tx,
    ));
    Ok(with_headers(
        Sse::new(ReceiverStream::new(rx)).into_response(),
        &job_id,
        &provider,
    ))
}

/// Forward provider events to the client as OpenAI chunks until the job ends
/// or the client goes away (dropping the provider stream cancels the job).
async fn pump<D: Directory>(
    gw: Arc<Gateway<D>>,
    meta: ResponseMeta,
    include_usage: bool,
    provider: ProviderInfo,
    mut events: JobStream,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    let mut timing = Timing {
        start: Instant::now(),
        first: None,
    };
    let want_logprobs = events.wants_logprobs;
    let mut logprobs = Vec::new();
    if meta.endpoint == Endpoint::Chat
        && tx
            .send(data(&meta.chunk(Some(""), true, None, None)))
            .await
            .is_err()
    {
        return;
    }
    let failure = loop {
        match events.next().await {
            Ok(JobEvent::Logprobs { tokens }) => logprobs.extend(tokens),
            Ok(JobEvent::Delta { text }) => {
                timing.first.get_or_insert_with(Instant::now);
                let lp = want_logprobs.then_some(&logprobs[..]);
                if tx
                    .send(data(&meta.chunk(Some(&text), false, None, lp)))
                    .await
                    .is_err()
                {
                    return;
                }
                logprobs.clear();
            }
            Ok(JobEvent::Done {
                finish_reason,
                usage,
                receipt,
            }) => {
                if let Err(why) = check_receipt(&receipt, &provider, &events.job_id) {
                    break why;
                }
                timing.record(&gw, &provider, usage.completion_tokens);
                let text = (meta.endpoint == Endpoint::Completions).then_some("");
                // Tokens whose text a stop string cut still get their logprobs.
                let lp = (want_logprobs && !logprobs.is_empty()).then_some(&logprobs[..]);
                let _ = tx
                    .send(data(&meta.chunk(text, false, Some(finish_reason), lp)))
                    .await;
                if include_usage {
                    let _ = tx
                        .send(data(
                            &meta.usage_chunk(openai::usage_json(usage, receipt.receipt.cost)),
                        ))
                        .await;
                }
                let _ = tx.send(Ok(Event::default().data("[DONE]"))).await;
                return;
            }
            Ok(JobEvent::Error { message }) => break format!("{}: {message}", provider.endpoint),
            Err(why) => break format!("{}: {why}", provider.endpoint),
        }
    };
    tracing::warn!(provider = %provider.id, %failure, "provider failed a streaming job");
    gw.health
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .failed(&provider.id);
    let error = ApiError::provider_failed(format!("The provider failed mid-stream: {failure}"));
    let _ = tx.send(data(&error.body())).await;
}
