//! The provider's HTTP service: `POST /v1/jobs` streams a job as SSE events
//! ending in a signed receipt; `GET /v1/transcripts/{id}` returns a stored
//! transcript for audit; `GET /v1/batches/{root}/{index}` a batch job's
//! transcript with its Merkle proof; `POST /v1/vouchers` takes payment
//! channel vouchers; `GET /health` says what is served. Every refusal,
//! including unknown routes, wrong methods, undecodable paths and oversized
//! bodies, is OpenAI's JSON error shape.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use agora_blobs::BlobStore;
use agora_engine::{EngineError, EngineEvent, GenerateRequest, InferenceEngine};
use agora_types::{
    commitments_hash, hash_embeddings, hash_tokens, Commitments, Hash32, JobEvent, JobInput,
    JobRequest, Keypair, ModelId, OutputTextHasher, Price, Receipt, SamplingParams, Transcript,
    Usage,
};
use agora_wire::headers::{JOB_ID_HEADER, PAYMENT_CHANNEL, PAYMENT_HEADER};
use agora_wire::openai::error_json;
use agora_wire::provider::{ProviderEndpoint, MAX_STOPS, MAX_STOP_BYTES};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream::{self, Stream};
use serde_json::json;
use tokio::sync::mpsc;

use crate::access::AuditGate;
use crate::metrics::{JobWatch, Outcome, ProviderMetrics};
use crate::vouchers::ChannelLookup;
use crate::{CommitPath, TranscriptStore};

const MAX_BODY_BYTES: usize = 4 << 20;

/// A provider serving one model.
pub struct Provider<E> {
    chain_id: String,
    engine: Arc<E>,
    key: Keypair,
    model: ModelId,
    price: Price,
    pub(crate) transcripts: Arc<TranscriptStore>,
    pub(crate) channels: Option<Arc<dyn ChannelLookup>>,
    pub(crate) gate: Option<Arc<dyn AuditGate>>,
    pub(crate) metrics: ProviderMetrics,
    /// Blobs served to peers at `GET /v1/blobs/{id}` (its model, at least).
    blobs: Option<Arc<BlobStore>>,
}

/// An error in OpenAI's JSON shape, so the gateway can pass it through.
pub(crate) fn error(status: StatusCode, kind: &str, code: &str, message: String) -> Response {
    (status, Json(error_json(&message, kind, None, code))).into_response()
}

/// A body axum could not read (too large, cut short), as an OpenAI-shaped error.
pub(crate) fn body_rejection(e: BytesRejection) -> Response {
    error(
        e.status(),
        "invalid_request_error",
        "invalid_body",
        e.body_text(),
    )
}

/// A path segment axum could not decode (not UTF-8), as an OpenAI-shaped error.
pub(crate) fn path_rejection(e: PathRejection) -> Response {
    error(
        e.status(),
        "invalid_request_error",
        "invalid_path",
        e.body_text(),
    )
}

/// Fallback for paths the provider does not serve.
async fn unknown_route(uri: Uri) -> Response {
    let path: String = uri.path().chars().take(200).collect();
    error(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "unknown_route",
        format!("no route {path:?} on this provider"),
    )
}

/// Fallback for a served path called with the wrong method.
async fn wrong_method() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "this route does not take that method".into(),
    )
}

/// Refuse what no engine should see, whichever engine runs the job: stop
/// sequences beyond [`MAX_STOPS`] or [`MAX_STOP_BYTES`] (the gateway's
/// bounds; every partial match is held back and rescanned per token), and
/// non-finite floats (JSON has no infinity, so the receipt, which signs
/// the parameters, could not be read back). Returns the parameter at fault.
fn check_params(params: &SamplingParams) -> Result<(), (&'static str, String)> {
    if params.stop.len() > MAX_STOPS {
        let n = params.stop.len();
        return Err((
            "stop",
            format!("at most {MAX_STOPS} stop sequences are allowed, not {n}"),
        ));
    }
    if let Some(long) = params.stop.iter().find(|s| s.len() > MAX_STOP_BYTES) {
        let n = long.len();
        return Err((
            "stop",
            format!("a stop sequence may be at most {MAX_STOP_BYTES} bytes long, not {n}"),
        ));
    }
    for (name, value) in [
        ("temperature", params.temperature),
        ("top_p", params.top_p),
        ("presence_penalty", params.presence_penalty),
        ("frequency_penalty", params.frequency_penalty),
    ] {
        if !value.is_finite() {
            return Err((name, format!("{name} must be a finite number")));
        }
    }
    Ok(())
}

impl<E: InferenceEngine> Provider<E> {
    /// A provider for the chain `chain_id` that runs `model` on `engine`,
    /// signing receipts (which name the chain) with `key`.
    pub fn new(
        chain_id: impl Into<String>,
        engine: Arc<E>,
        key: Keypair,
        model: ModelId,
        price: Price,
        transcripts: TranscriptStore,
    ) -> Self {
        Provider {
            chain_id: chain_id.into(),
            engine,
            key,
            model,
            price,
            transcripts: Arc::new(transcripts),
            channels: None,
            gate: None,
            metrics: ProviderMetrics::default(),
            blobs: None,
        }
    }

    /// Serve the blobs of `store` (verified ranges, `agora_blobs::serve`),
    /// so other providers can fetch the model from this one.
    pub fn with_blobs(mut self, store: Arc<BlobStore>) -> Self {
        self.blobs = Some(store);
        self
    }

    /// Serve batch transcripts to the validators `gate` says were drawn for
    /// them (without a gate, `GET /v1/batches/...` serves nobody).
    pub fn with_audit_gate(mut self, gate: Arc<dyn AuditGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Take payment channel vouchers, checking their channels in `lookup` (the chain).
    pub fn with_channels(mut self, lookup: Arc<dyn ChannelLookup>) -> Self {
        self.channels = Some(lookup);
        self
    }

    /// The provider's account.
    pub fn account(&self) -> agora_types::AccountId {
        self.key.account()
    }

    /// The transcript store (shared with a [`crate::BatchCommitter`]).
    pub fn transcripts(&self) -> Arc<TranscriptStore> {
        self.transcripts.clone()
    }

    /// The provider's metrics (served at `GET /metrics`).
    pub fn metrics(&self) -> &ProviderMetrics {
        &self.metrics
    }

    /// The HTTP routes.
    pub fn router(self) -> Router {
        let http_metrics = self.metrics.http_layer();
        let blobs = self.blobs.clone().map(agora_blobs::serve::router);
        let router = Router::new()
            .route(ProviderEndpoint::Jobs.route(), post(run_job::<E>))
            .route(ProviderEndpoint::Transcript.route(), get(transcript::<E>))
            .route(
                ProviderEndpoint::Batch.route(),
                get(crate::batches::job_proof::<E>),
            )
            .route(
                ProviderEndpoint::Vouchers.route(),
                post(crate::vouchers::post_voucher::<E>),
            )
            .route(
                ProviderEndpoint::Receipt.route(),
                get(crate::receipts::receipt::<E>),
            )
            .route(ProviderEndpoint::Health.route(), get(health::<E>))
            .route(
                agora_metrics::METRICS_ROUTE,
                get(crate::metrics::scrape::<E>),
            )
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .fallback(unknown_route)
            .method_not_allowed_fallback(wrong_method)
            .layer(http_metrics)
            .with_state(Arc::new(self));
        match blobs {
            Some(blobs) => router.merge(blobs),
            None => router,
        }
    }
}

async fn health<E: InferenceEngine>(State(p): State<Arc<Provider<E>>>) -> Json<serde_json::Value> {
    Json(json!({
        "provider": p.key.account(),
        "model": p.model,
        "name": p.engine.model_info().name,
        // false for engines whose sampling agora cannot replay (an upstream server).
        "replayable": p.engine.replayable(),
    }))
}

async fn transcript<E: InferenceEngine>(
    State(p): State<Arc<Provider<E>>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    by_job(p.transcripts.clone(), id, "transcript", |store, id| {
        store.get(id)
    })
    .await
}

/// Answer a `/{id}` route: parse the job id from the path, look it up in
/// the transcript store off the async runtime with `find`, and answer its
/// JSON, or 400/404/500 in OpenAI's error shape naming `what`.
pub(crate) async fn by_job<T, F>(
    store: Arc<TranscriptStore>,
    id: Result<Path<String>, PathRejection>,
    what: &'static str,
    find: F,
) -> Response
where
    T: serde::Serialize + Send + 'static,
    F: FnOnce(&TranscriptStore, &Hash32) -> Result<Option<T>, crate::ProviderError>
        + Send
        + 'static,
{
    let id = match id {
        Ok(Path(id)) => id,
        Err(e) => return path_rejection(e),
    };
    let Ok(id) = id.parse::<Hash32>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_id",
            format!("{id:?} is not a job id"),
        );
    };
    let store_error = |e: String| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "store",
            e,
        )
    };
    match tokio::task::spawn_blocking(move || find(&store, &id)).await {
        Ok(Ok(Some(found))) => Json(found).into_response(),
        Ok(Ok(None)) => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            format!("no {what} for job {id}"),
        ),
        Ok(Err(e)) => store_error(e.to_string()),
        Err(e) => store_error(e.to_string()),
    }
}

async fn run_job<E: InferenceEngine>(
    State(p): State<Arc<Provider<E>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let commit = match headers.get(PAYMENT_HEADER).map(|v| v.as_bytes()) {
        Some(v) if v == PAYMENT_CHANNEL.as_bytes() => CommitPath::Channel,
        _ => CommitPath::Batch,
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_rejection(e),
    };
    let req: JobRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_job",
                format!("invalid job: {e}"),
            )
        }
    };
    if req.model != p.model {
        let msg = format!(
            "model {} is not served here (serving {})",
            req.model, p.model
        );
        return error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            msg,
        );
    }
    if let Err((param, message)) = check_params(&req.params) {
        let code = if param == "stop" {
            "invalid_stop"
        } else {
            "invalid_parameter"
        };
        let body = error_json(&message, "invalid_request_error", Some(param), code);
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    }
    let request = GenerateRequest {
        input: req.input.clone(),
        params: req.params.clone(),
    };
    let events = match p.engine.generate(request) {
        Ok(rx) => rx,
        Err(EngineError::InvalidRequest(m)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
                m,
            )
        }
        Err(e @ (EngineError::Busy(_) | EngineError::Stopped)) => {
            p.metrics.refused(Outcome::Busy);
            let mut r = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "provider_busy",
                e.to_string(),
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            return r;
        }
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "engine",
                e.to_string(),
            )
        }
    };
    let job_id = Hash32(rand::random());
    let job = Job {
        watch: p.metrics.watch(),
        provider: p.clone(),
        id: job_id,
        request: req,
        events,
        prompt_tokens: Vec::new(),
        cached_tokens: 0,
        text: OutputTextHasher::default(),
        embeddings: Vec::new(),
        done: false,
        commit,
    };
    let mut response = Sse::new(job_stream(job)).into_response();
    if let Ok(v) = HeaderValue::from_str(&job_id.to_hex()) {
        response.headers_mut().insert(JOB_ID_HEADER, v);
    }
    response
}

/// One running job: turns engine events into protocol events.
struct Job<E> {
    provider: Arc<Provider<E>>,
    id: Hash32,
    request: JobRequest,
    events: mpsc::Receiver<EngineEvent>,
    prompt_tokens: Vec<i32>,
    /// Leading prompt tokens the engine took from its prompt cache.
    cached_tokens: u32,
    /// Hash of the text streamed so far: the receipt's `text_hash`.
    text: OutputTextHasher,
    /// An embedding job's vectors, kept for the receipt and the transcript.
    embeddings: Vec<Vec<f32>>,
    done: bool,
    /// How its receipt will be committed.
    commit: CommitPath,
    /// Its passage through the engine, for the metrics.
    watch: JobWatch,
}

fn sse(event: &JobEvent) -> Result<Event, Infallible> {
    Ok(Event::default().data(serde_json::to_string(event).unwrap_or_default()))
}

fn job_stream<E: InferenceEngine>(job: Job<E>) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(job, |mut job| async move {
        if job.done {
            return None;
        }
        loop {
            let received = job.events.recv().await;
            if received.is_some() {
                job.watch.started();
            }
            let event = match received {
                Some(EngineEvent::Started {
                    prompt_tokens,
                    cached_tokens,
                }) => {
                    job.prompt_tokens = prompt_tokens;
                    job.cached_tokens = cached_tokens;
                    continue;
                }
                Some(EngineEvent::Text(text)) => {
                    // Hashed as sent: the receipt commits to exactly this text.
                    job.text.update(&text);
                    job.watch.text();
                    JobEvent::Delta { text }
                }
                Some(EngineEvent::Logprob(lp)) => JobEvent::Logprobs { tokens: vec![lp] },
                Some(EngineEvent::Embeddings(vectors)) => {
                    job.embeddings.clone_from(&vectors);
                    JobEvent::Embeddings { vectors }
                }
                Some(EngineEvent::Finished {
                    finish_reason,
                    output_tokens,
                    commitments,
                }) => {
                    job.done = true;
                    let tokens = output_tokens.len();
                    match job.finish(output_tokens, commitments).await {
                        Ok((usage, receipt)) => {
                            job.watch.ended(Outcome::Completed, tokens);
                            JobEvent::Done {
                                finish_reason,
                                usage,
                                receipt,
                                cached_tokens: job.cached_tokens,
                            }
                        }
                        Err(message) => {
                            job.watch.ended(Outcome::Failed, 0);
                            JobEvent::Error { message }
                        }
                    }
                }
                Some(EngineEvent::Failed(message)) => {
                    job.done = true;
                    job.watch.ended(Outcome::Failed, 0);
                    JobEvent::Error { message }
                }
                None => {
                    job.done = true;
                    job.watch.ended(Outcome::Failed, 0);
                    JobEvent::Error {
                        message: "engine stopped before the job finished".into(),
                    }
                }
            };
            return Some((sse(&event), job));
        }
    })
}

impl<E: InferenceEngine> Job<E> {
    /// Sign the receipt and persist the transcript before telling the client.
    async fn finish(
        &mut self,
        output_tokens: Vec<i32>,
        commitments: Option<Commitments>,
    ) -> Result<(Usage, agora_types::SignedReceipt), String> {
        let p = &self.provider;
        let usage = Usage {
            prompt_tokens: u32::try_from(self.prompt_tokens.len()).unwrap_or(u32::MAX),
            completion_tokens: u32::try_from(output_tokens.len()).unwrap_or(u32::MAX),
        };
        let receipt = Receipt {
            chain_id: p.chain_id.clone(),
            id: self.id,
            provider: p.key.account(),
            model: p.model,
            prompt_hash: hash_tokens(&self.prompt_tokens),
            output_hash: if self.embeddings.is_empty() {
                hash_tokens(&output_tokens)
            } else {
                hash_embeddings(&self.embeddings)
            },
            text_hash: self.text.finish(),
            params: self.request.params.clone(),
            usage,
            price: p.price,
            cost: p
                .price
                .cost(usage.prompt_tokens.into(), usage.completion_tokens.into()),
            timestamp_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            commitments: commitments_hash(commitments.as_ref()),
        }
        .sign(&p.key);
        let transcript = Transcript {
            receipt: receipt.clone(),
            input: std::mem::replace(
                &mut self.request.input,
                JobInput::Text {
                    prompt: String::new(),
                },
            ),
            prompt_tokens: std::mem::take(&mut self.prompt_tokens),
            output_tokens,
            commitments,
            embeddings: std::mem::take(&mut self.embeddings),
        };
        let (store, commit) = (p.transcripts.clone(), self.commit);
        tokio::task::spawn_blocking(move || store.put(&transcript, commit))
            .await
            .map_err(|e| format!("transcript task failed: {e}"))?
            .map_err(|e| format!("cannot persist transcript: {e}"))?;
        Ok((usage, receipt))
    }
}
