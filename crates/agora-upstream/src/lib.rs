//! The upstream backend: an [`InferenceEngine`] that forwards each job to an
//! existing OpenAI-compatible inference server (vLLM, llama-server, SGLang,
//! or another agora gateway), so a GPU owner keeps the engine they already run.
//!
//! Chat jobs go to `POST {base}/chat/completions` (the upstream applies its own
//! chat template), raw text prompts to `POST {base}/completions`, always with
//! `stream: true`; the server-sent events are read until `data: [DONE]`.
//!
//! Receipts need token ids, which most servers do not return. The engine loads
//! the claimed GGUF's vocabulary and chat template (not its weights) and
//! tokenizes the prompt exactly as agora's `LlamaEngine` does, and the
//! returned text with the same vocabulary.
//!
//! **Upstream jobs are not replayable.** The upstream samples with its own RNG
//! and its own sampler, not agora's seeded Gumbel-max over (seed, position), so
//! a verifier cannot regenerate the output token for token; it can only check
//! such jobs statistically (e.g. that the output is likely under the model).
//! [`UpstreamEngine`] says so through [`InferenceEngine::replayable`]. Output
//! tokens are the re-tokenized text, which may differ from what the upstream
//! actually sampled (tokenization is not unique, and tokens cut by a stop string
//! are not returned), and the prompt tokens are agora's rendering of the input,
//! which may differ slightly from the upstream's own template.

mod seed;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agora_engine::{
    EngineError, EngineEvent, GenerateRequest, InferenceEngine, ModelInfo, Tokenizer,
};
use agora_types::{FinishReason, SamplingParams, TokenLogprob, TopLogprob};
use agora_wire::openai::{self, Ending, Endpoint, RawAlternative, StreamItem};
use agora_wire::sse::SseDecoder;
use futures::StreamExt;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::seed::upstream_seed;

/// Events buffered per job before the upstream read waits for the consumer.
const EVENT_ROOM: usize = 64;
/// Largest SSE line or event accepted from the upstream.
const MAX_EVENT_BYTES: usize = 1 << 20;
/// Most of an error body read for its message.
const MAX_ERROR_BODY: usize = 64 << 10;

/// How an [`UpstreamEngine`] reaches its server and how much work it takes on.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// OpenAI base URL, e.g. `http://127.0.0.1:8000/v1`; jobs go to
    /// `{base_url}/chat/completions` and `{base_url}/completions`.
    pub base_url: String,
    /// The model name the upstream serves (an id from its `GET /v1/models`).
    pub model: String,
    /// Bearer token, for servers started with an API key.
    pub api_key: Option<String>,
    /// Requests sent to the upstream at the same time.
    pub max_concurrent: usize,
    /// Jobs that may wait for a free request slot before callers get [`EngineError::Busy`].
    pub queue_capacity: usize,
    /// Longest prompt plus completion, published in [`ModelInfo`] and used to
    /// refuse long prompts early (`None`: the GGUF's training context).
    pub context_length: Option<u32>,
    /// How long to wait for the TCP connection.
    pub connect_timeout: Duration,
    /// How long the upstream may stay silent (before answering, or between
    /// chunks) before the job fails.
    pub idle_timeout: Duration,
}

impl UpstreamConfig {
    /// Defaults for a server at `base_url` serving `model`: 8 concurrent
    /// requests, 64 more queued, 10 s to connect, 5 minutes of silence at most.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        UpstreamConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            max_concurrent: 8,
            queue_capacity: 64,
            context_length: None,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// Why the upstream could not be used; a failed job's [`EngineEvent::Failed`]
/// carries one of these as text.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The base URL is unusable.
    #[error("invalid upstream URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The GGUF (for the tokenizer) could not be loaded.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// No connection (refused, DNS, connect timeout...).
    #[error("cannot reach the upstream at {url}: {reason}")]
    Unreachable {
        /// The request URL.
        url: String,
        /// The transport's reason.
        reason: String,
    },
    /// The upstream answered with a non-2xx status.
    #[error("the upstream at {url} answered HTTP {status}: {message}")]
    Status {
        /// The request URL.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The message of its error body (OpenAI's `error.message` when present).
        message: String,
    },
    /// The response is not an OpenAI event stream (or JSON body) as expected.
    #[error("the upstream at {url} sent a malformed response: {reason}")]
    Malformed {
        /// The request URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The upstream reported an error inside the stream, or aborted the job.
    #[error("the upstream at {url} reported an error: {message}")]
    Reported {
        /// The request URL.
        url: String,
        /// Its message.
        message: String,
    },
    /// The connection broke or ended before the job finished.
    #[error("the upstream at {url} broke off the response: {reason}")]
    Broken {
        /// The request URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// The upstream stayed silent for longer than the idle timeout.
    #[error("the upstream at {url} sent nothing for {secs} s")]
    Timeout {
        /// The request URL.
        url: String,
        /// The idle timeout, in seconds.
        secs: u64,
    },
}

/// An [`InferenceEngine`] backed by an OpenAI-compatible server; see the crate docs.
pub struct UpstreamEngine {
    info: ModelInfo,
    shared: Arc<Shared>,
    /// Jobs accepted and not yet ended (running or waiting for a request slot).
    load: watch::Sender<usize>,
}

/// What every job task needs.
struct Shared {
    tokenizer: Tokenizer,
    http: reqwest::Client,
    config: UpstreamConfig,
    /// One permit per concurrent upstream request.
    permits: Semaphore,
}

impl UpstreamEngine {
    /// An engine for the model in `gguf` (its vocabulary and template make the
    /// receipts' token ids) served by the upstream `config` describes. Loads
    /// only the vocabulary, so it is quick and needs little memory; does not
    /// contact the upstream (see [`list_models`] for a startup check).
    pub fn new(gguf: &Path, mut config: UpstreamConfig) -> Result<Self, UpstreamError> {
        config.base_url = normalize_base_url(&config.base_url)?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| UpstreamError::InvalidUrl {
                url: config.base_url.clone(),
                reason: format!("cannot build an HTTP client: {e}"),
            })?;
        let (tokenizer, info) = Tokenizer::load(gguf, config.context_length)?;
        let permits = Semaphore::new(config.max_concurrent.max(1));
        Ok(UpstreamEngine {
            info,
            shared: Arc::new(Shared {
                tokenizer,
                http,
                config,
                permits,
            }),
            load: watch::Sender::new(0),
        })
    }

    /// The normalized OpenAI base URL jobs go to (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.shared.config.base_url
    }

    /// The upstream model name sent with every job.
    pub fn upstream_model(&self) -> &str {
        &self.shared.config.model
    }

    /// Wait until no job is running or queued: lets a provider drain before
    /// shutting down, and shows that dropped jobs really stopped.
    pub async fn drained(&self) {
        let mut load = self.load.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = load.wait_for(|n| *n == 0).await;
    }
}

/// A job's claim on the engine's capacity, given back when the job task ends.
struct Slot(watch::Sender<usize>);

impl Slot {
    /// Take a slot if fewer than `capacity` jobs are accepted.
    fn take(load: &watch::Sender<usize>, capacity: usize) -> Option<Slot> {
        let mut taken = false;
        load.send_if_modified(|n| {
            taken = *n < capacity;
            if taken {
                *n += 1;
            }
            taken
        });
        taken.then(|| Slot(load.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl InferenceEngine for UpstreamEngine {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    /// The upstream samples with its own RNG: jobs cannot be replayed, only
    /// checked statistically.
    fn replayable(&self) -> bool {
        false
    }

    fn generate(
        &self,
        request: GenerateRequest,
    ) -> Result<mpsc::Receiver<EngineEvent>, EngineError> {
        validate(&request.params)?;
        let prompt_tokens = self.shared.tokenizer.prompt(&request.input)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            EngineError::Internal("UpstreamEngine::generate must run inside a tokio runtime".into())
        })?;
        let config = &self.shared.config;
        let capacity = config.max_concurrent.max(1) + config.queue_capacity;
        let slot =
            Slot::take(&self.load, capacity).ok_or(EngineError::Busy(config.queue_capacity))?;
        let seed = upstream_seed(&request.params);
        let (endpoint, body) =
            openai::request_body(&config.model, &request.input, &request.params, seed).ok_or_else(
                || EngineError::InvalidRequest("embedding jobs are not forwarded upstream".into()),
            )?;
        let job = Job {
            shared: self.shared.clone(),
            url: format!("{}/{}", config.base_url, endpoint.path()),
            endpoint,
            body,
            prompt_tokens,
            logprobs: request.params.logprobs.is_some(),
        };
        let (events, rx) = mpsc::channel(EVENT_ROOM);
        runtime.spawn(job.run(events, slot));
        Ok(rx)
    }
}

/// Refuse what the local engine refuses, before using a request slot.
fn validate(params: &SamplingParams) -> Result<(), EngineError> {
    let invalid = |m: &str| Err(EngineError::InvalidRequest(m.to_string()));
    if params.max_tokens == 0 {
        return invalid("max_tokens must be at least 1");
    }
    if !(params.temperature.is_finite() && params.temperature >= 0.0) {
        return invalid("temperature must be a finite number >= 0");
    }
    if !(params.top_p > 0.0 && params.top_p <= 1.0) {
        return invalid("top_p must be in (0, 1]");
    }
    if !(-2.0..=2.0).contains(&params.presence_penalty) {
        return invalid("presence_penalty must be between -2 and 2");
    }
    if !(-2.0..=2.0).contains(&params.frequency_penalty) {
        return invalid("frequency_penalty must be between -2 and 2");
    }
    let most = agora_engine::logits::MAX_TOP_LOGPROBS;
    if params.logprobs.is_some_and(|k| k > most) {
        return invalid(&format!("at most {most} top logprobs per token"));
    }
    if params.constraint.is_some() {
        // The upstream samples on its own: nothing here could mask its tokens,
        // and a receipt must not claim a constraint no one enforced.
        return invalid("output constraints (response_format, forced tool calls) need a provider that runs the model itself");
    }
    Ok(())
}

/// `http://host:port/v1` without a trailing slash; https is refused because
/// this build has no TLS.
fn normalize_base_url(url: &str) -> Result<String, UpstreamError> {
    let invalid = |reason: &str| UpstreamError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| invalid(&e.to_string()))?;
    match parsed.scheme() {
        "http" => {}
        "https" => {
            return Err(invalid(
                "https is not supported (agora is built without TLS); reach the server over \
                 http:// on a trusted network or through a local tunnel",
            ))
        }
        _ => return Err(invalid("the URL must start with http://")),
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("the base URL must not have a query or fragment"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_string())
}

/// The models an OpenAI-compatible server lists at `GET {base_url}/models`
/// (their `id`s), e.g. to pick the upstream model or check the server at startup.
pub async fn list_models(
    base_url: &str,
    api_key: Option<&str>,
) -> Result<Vec<String>, UpstreamError> {
    let base = normalize_base_url(base_url)?;
    let url = format!("{base}/{}", openai::MODELS_PATH);
    let mut request = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(30));
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .map_err(|e| UpstreamError::Unreachable {
            url: url.clone(),
            reason: describe(&e),
        })?;
    let status = response.status();
    let body = response.text().await.map_err(|e| UpstreamError::Broken {
        url: url.clone(),
        reason: describe(&e),
    })?;
    if !status.is_success() {
        return Err(UpstreamError::Status {
            message: status_message(status, &body, &base),
            status: status.as_u16(),
            url,
        });
    }
    openai::model_ids(&body).map_err(|reason| UpstreamError::Malformed { url, reason })
}

/// A transport error with its causes, which hold the useful part
/// ("Connection refused") that reqwest's own message leaves out.
fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        parts.push("timed out".into());
    }
    if parts.is_empty() {
        parts.push(e.to_string());
    }
    parts.join(": ")
}

/// The message for a non-2xx answer: the body's error message, plus a hint
/// when a 404 may come from a base URL without the usual `/v1`.
fn status_message(status: reqwest::StatusCode, body: &str, base_url: &str) -> String {
    let mut message = openai::error_body_message(body);
    if message.is_empty() {
        message = status
            .canonical_reason()
            .unwrap_or("no message")
            .to_string();
    }
    if status == reqwest::StatusCode::NOT_FOUND && !base_url.ends_with("/v1") {
        message.push_str(" (is the base URL right? OpenAI-compatible servers serve under /v1)");
    }
    message
}

/// One job on its way to the upstream.
struct Job {
    shared: Arc<Shared>,
    url: String,
    endpoint: Endpoint,
    body: serde_json::Value,
    prompt_tokens: Vec<i32>,
    /// Whether the job asked for log-probabilities.
    logprobs: bool,
}

impl Job {
    /// Run the job, reporting on `events`; dropping the receiver drops the
    /// upstream request wherever it is (queued, connecting, streaming).
    async fn run(self, events: mpsc::Sender<EngineEvent>, _slot: Slot) {
        let outcome = tokio::select! {
            biased;
            () = events.closed() => return,
            outcome = self.stream(&events) => outcome,
        };
        let event = match outcome {
            Ok(Some(finished)) => finished,
            Ok(None) => return, // the receiver went away mid-send
            Err(e) => {
                tracing::warn!(error = %e, "upstream job failed");
                EngineEvent::Failed(e.to_string())
            }
        };
        let _ = events.send(event).await;
    }

    /// Send the request and relay its stream; `Ok(None)` when the consumer left.
    async fn stream(
        &self,
        events: &mpsc::Sender<EngineEvent>,
    ) -> Result<Option<EngineEvent>, UpstreamError> {
        let shared = &self.shared;
        let _permit = shared
            .permits
            .acquire()
            .await
            .map_err(|_| self.broken("the engine is shutting down"))?;
        let idle = shared.config.idle_timeout;
        let mut request = shared
            .http
            .post(&self.url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .json(&self.body);
        if let Some(key) = &shared.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = tokio::time::timeout(idle, request.send())
            .await
            .map_err(|_| self.timeout())?
            .map_err(|e| UpstreamError::Unreachable {
                url: self.url.clone(),
                reason: describe(&e),
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = self.read_error_body(response).await;
            return Err(UpstreamError::Status {
                url: self.url.clone(),
                status: status.as_u16(),
                message: status_message(status, &body, &self.shared.config.base_url),
            });
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !content_type.starts_with("text/event-stream") {
            let body = self.read_error_body(response).await;
            return Err(self.malformed(format!(
                "expected an event stream (text/event-stream), got {:?}: {}",
                content_type,
                openai::excerpt(&body)
            )));
        }
        let started = EngineEvent::Started {
            prompt_tokens: self.prompt_tokens.clone(),
            cached_tokens: 0,
        };
        if events.send(started).await.is_err() {
            return Ok(None);
        }

        let mut body = response.bytes_stream();
        let mut parser = SseDecoder::new(MAX_EVENT_BYTES);
        let mut text = String::new();
        let mut finish_reason = None;
        loop {
            let next = tokio::time::timeout(idle, body.next())
                .await
                .map_err(|_| self.timeout())?;
            let (data, ended) = match next {
                Some(Ok(bytes)) => (parser.push(&bytes), false),
                Some(Err(e)) => return Err(self.broken(&describe(&e))),
                None => (parser.finish().map(|d| d.into_iter().collect()), true),
            };
            for data in data.map_err(|e| self.malformed(e.to_string()))? {
                match openai::parse_event(self.endpoint, &data).map_err(|e| self.malformed(e))? {
                    StreamItem::Done => {
                        let Some(reason) = finish_reason else {
                            return Err(self.malformed(
                                "the stream ended with [DONE] but no finish_reason".into(),
                            ));
                        };
                        return Ok(Some(self.finished(reason, &text)));
                    }
                    StreamItem::Error(message) => {
                        return Err(UpstreamError::Reported {
                            url: self.url.clone(),
                            message,
                        })
                    }
                    StreamItem::Chunk(chunk) => {
                        if self.logprobs {
                            for lp in chunk.logprobs {
                                let lp = TokenLogprob {
                                    chosen: self.alternative(lp.chosen),
                                    top: lp.top.into_iter().map(|a| self.alternative(a)).collect(),
                                };
                                if events.send(EngineEvent::Logprob(lp)).await.is_err() {
                                    return Ok(None);
                                }
                            }
                        }
                        if !chunk.text.is_empty() {
                            text.push_str(&chunk.text);
                            if events.send(EngineEvent::Text(chunk.text)).await.is_err() {
                                return Ok(None);
                            }
                        }
                        match chunk.ending {
                            Some(Ending::Finished(reason)) => finish_reason = Some(reason),
                            Some(Ending::Aborted(message)) => {
                                return Err(UpstreamError::Reported {
                                    url: self.url.clone(),
                                    message,
                                })
                            }
                            None => {}
                        }
                    }
                }
            }
            if ended {
                // Some servers end the body without `[DONE]`; that is fine once
                // the choice has finished.
                return match finish_reason {
                    Some(reason) => Ok(Some(self.finished(reason, &text))),
                    None => Err(self.broken("the stream ended before the job finished")),
                };
            }
        }
    }

    /// The final event: the output tokens are the text re-tokenized locally.
    fn finished(&self, finish_reason: FinishReason, text: &str) -> EngineEvent {
        EngineEvent::Finished {
            finish_reason,
            output_tokens: self.shared.tokenizer.text(text),
            // The upstream server does not expose hidden states.
            commitments: None,
        }
    }

    /// An upstream alternative with its id looked up in the local vocabulary.
    fn alternative(&self, a: RawAlternative) -> TopLogprob {
        TopLogprob {
            token_id: self.shared.tokenizer.token_id(&a.bytes),
            token: a.token,
            bytes: a.bytes,
            logprob: a.logprob,
        }
    }

    /// Up to [`MAX_ERROR_BODY`] bytes of a response body, for its message.
    async fn read_error_body(&self, mut response: reqwest::Response) -> String {
        let idle = self.shared.config.idle_timeout;
        let mut body = Vec::new();
        while body.len() < MAX_ERROR_BODY {
            match tokio::time::timeout(idle, response.chunk()).await {
                Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(MAX_ERROR_BODY);
        String::from_utf8_lossy(&body).into_owned()
    }

    fn malformed(&self, reason: String) -> UpstreamError {
        UpstreamError::Malformed {
            url: self.url.clone(),
            reason,
        }
    }

    fn broken(&self, reason: &str) -> UpstreamError {
        UpstreamError::Broken {
            url: self.url.clone(),
            reason: reason.to_string(),
        }
    }

    fn timeout(&self) -> UpstreamError {
        UpstreamError::Timeout {
            url: self.url.clone(),
            secs: self.shared.config.idle_timeout.as_secs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalized_or_refused() {
        assert_eq!(
            normalize_base_url("http://127.0.0.1:8000/v1/").unwrap(),
            "http://127.0.0.1:8000/v1"
        );
        assert_eq!(
            normalize_base_url(" http://h:1/v1 ").unwrap(),
            "http://h:1/v1"
        );
        for bad in [
            "",
            "localhost:8000",
            "ftp://h/v1",
            "https://h/v1",
            "http://h/v1?x=1",
        ] {
            let err = normalize_base_url(bad).unwrap_err().to_string();
            assert!(err.contains("invalid upstream URL"), "{bad}: {err}");
        }
        assert!(normalize_base_url("https://h/v1")
            .unwrap_err()
            .to_string()
            .contains("https is not supported"));
    }

    #[test]
    fn parameters_the_engine_refuses() {
        let ok = SamplingParams::new(4, 0.0, 1.0, vec![], 1);
        assert!(validate(&ok).is_ok());
        let mut cases = Vec::new();
        let mut p = ok.clone();
        p.max_tokens = 0;
        cases.push((p, "max_tokens"));
        let mut p = ok.clone();
        p.temperature = f32::NAN;
        cases.push((p, "temperature"));
        let mut p = ok.clone();
        p.top_p = 0.0;
        cases.push((p, "top_p"));
        let mut p = ok.clone();
        p.presence_penalty = 3.0;
        cases.push((p, "presence_penalty"));
        let mut p = ok.clone();
        p.frequency_penalty = -3.0;
        cases.push((p, "frequency_penalty"));
        let mut p = ok.clone();
        p.logprobs = Some(21);
        cases.push((p, "logprobs"));
        for (p, field) in cases {
            let err = validate(&p).unwrap_err();
            assert!(
                matches!(&err, EngineError::InvalidRequest(m) if m.contains(field)),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn slots_bound_the_accepted_jobs() {
        let load = watch::Sender::new(0);
        let a = Slot::take(&load, 2).unwrap();
        let b = Slot::take(&load, 2).unwrap();
        assert!(Slot::take(&load, 2).is_none());
        assert_eq!(*load.borrow(), 2);
        drop(a);
        let c = Slot::take(&load, 2).unwrap();
        drop((b, c));
        assert_eq!(*load.borrow(), 0);
    }
}
