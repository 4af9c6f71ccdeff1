//! Running a completion on providers. Each of the request's `n` choices is a
//! job of its own (choice `i` samples from RNG stream `i`); a provider that
//! fails before the client has seen its output is replaced by the next one in
//! the routing plan; after that, failures are reported in-band.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use agora_keys::{Ask, Hold};

use agora_types::{
    hash_embeddings, hash_output_text, Hash32, JobEvent, JobInput, JobRequest, OutputTextHasher,
    ProviderInfo, SignedReceipt, TokenLogprob, Usage,
};
use agora_wire::headers::{JOB_ID_HEADER, PROVIDER_HEADER, RECEIPT_HEADER};
use agora_wire::openai::{self, Billed, Endpoint, ResponseMeta};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::future::{join_all, try_join_all};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::access::{presented, Access};
use crate::handlers::read_body;
use crate::metrics::ProviderFailure;
use crate::provider_client::{self, JobStream, StartError};
use crate::request::{self, CompletionRequest};
use crate::tools::Tools;
use crate::{ApiError, Directory, Gateway};

type Tx = mpsc::Sender<Result<Event, Infallible>>;

/// The request's reservation on its key, shared by its choices (none on an
/// open gateway); the last job to finish drops it, which charges the key.
pub(crate) type Charge = Option<Arc<Mutex<Hold>>>;

/// The most `jobs` may cost on any provider of `plan` (a failover may pick
/// any of them) and the most tokens they may use.
fn ask(jobs: &[JobRequest], plan: &[ProviderInfo]) -> Ask {
    let (mut max_cost, mut max_tokens) = (0u64, 0u64);
    for job in jobs {
        let prompt = max_prompt_tokens(&job.input);
        let completion = u64::from(job.params.max_tokens);
        let dearest = plan
            .iter()
            .map(|p| p.price.cost(prompt, completion))
            .max()
            .unwrap_or(0);
        max_cost = max_cost.saturating_add(dearest);
        max_tokens = max_tokens.saturating_add(prompt.saturating_add(completion));
    }
    Ask {
        max_cost,
        max_tokens,
    }
}

/// Parse, route and run a completion request: on its `model`, then on each
/// of its `models` fallbacks while the one tried is unknown, unserved, or
/// failed on every provider before the client saw anything.
pub(crate) async fn complete<D: Directory>(
    gw: Arc<Gateway<D>>,
    endpoint: Endpoint,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, gw.config.max_body_bytes).await?;
    let req = request::parse(endpoint, &bytes)?;
    let mut models = std::iter::once(req.model.clone())
        .chain(req.fallbacks.clone())
        .peekable();
    while let Some(model) = models.next() {
        let attempt = CompletionRequest {
            model,
            ..req.clone()
        };
        match complete_on(gw.clone(), endpoint, &headers, attempt).await {
            Err(e) if models.peek().is_some() && falls_back(&e) => {
                tracing::info!(error = %e.message, "trying the next of the request's models");
            }
            outcome => return outcome,
        }
    }
    Err(ApiError::invalid("model", "`model` is required"))
}

/// Whether another model may answer where this error came from: the model
/// is unknown or has no usable provider, or every provider failed.
fn falls_back(e: &ApiError) -> bool {
    matches!(
        e.code,
        "model_not_found" | "no_provider" | "provider_failed"
    )
}

/// Route and run `req` on its `model`.
async fn complete_on<D: Directory>(
    gw: Arc<Gateway<D>>,
    endpoint: Endpoint,
    headers: &HeaderMap,
    req: CompletionRequest,
) -> Result<Response, ApiError> {
    let (jobs, plan, charge) = prepare(&gw, headers, &req).await?;
    if req.stream {
        stream(gw, endpoint, req, jobs, plan, charge).await
    } else {
        collect(gw, endpoint, req, jobs, plan, charge).await
    }
}

/// A request made ready to run: one job per choice, the providers to try,
/// and the reservation on the caller's key.
pub(crate) async fn prepare<D: Directory>(
    gw: &Gateway<D>,
    headers: &HeaderMap,
    req: &CompletionRequest,
) -> Result<(Vec<JobRequest>, Vec<ProviderInfo>, Charge), ApiError> {
    let (entry, candidates) = gw.resolve(&req.model).await?;
    let plan = {
        let health = gw.health.lock().unwrap_or_else(|e| e.into_inner());
        req.routing.plan(candidates, &health)
    };
    if plan.is_empty() {
        let msg = format!(
            "No provider of `{}` matches your provider preferences",
            req.model
        );
        return Err(ApiError::no_provider(msg));
    }
    let jobs: Vec<JobRequest> = (0..req.n)
        .map(|choice| {
            let mut params = req.params.clone();
            params.choice = choice;
            JobRequest {
                model: entry.id,
                input: req.input.clone(),
                params,
            }
        })
        .collect();
    let charge = match &gw.access {
        Access::Keyed { book, .. } => {
            let hold = book.reserve(presented(headers), ask(&jobs, &plan), &req.model)?;
            Some(Arc::new(Mutex::new(hold)))
        }
        Access::Open => None,
    };
    Ok((jobs, plan, charge))
}

/// Start `job` on the first provider in `plan` that takes it.
async fn start_first<D: Directory>(
    gw: &Gateway<D>,
    job: &JobRequest,
    plan: &mut std::vec::IntoIter<ProviderInfo>,
    tried: &mut Vec<String>,
) -> Result<Option<(ProviderInfo, JobStream)>, ApiError> {
    for provider in plan.by_ref() {
        match provider_client::start(
            &gw.http,
            &provider,
            job,
            gw.paid_by_channel(),
            gw.config.provider_idle_timeout,
        )
        .await
        {
            Ok(s) => return Ok(Some((provider, s))),
            Err(StartError::Refused(e)) => {
                gw.metrics.provider_failed(ProviderFailure::Refused);
                return Err(e);
            }
            Err(StartError::Unavailable(why)) => {
                gw.metrics.provider_failed(ProviderFailure::Unavailable);
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

/// Timing of one job, for the health book and the metrics.
struct Timing {
    start: Instant,
    first: Option<Instant>,
    /// Whether the client streams (the metrics' `stream` label).
    streamed: bool,
}

impl Timing {
    fn new(streamed: bool) -> Self {
        Timing {
            start: Instant::now(),
            first: None,
            streamed,
        }
    }

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
        let to_first = self.first.map(|f| f - self.start);
        gw.metrics
            .job_finished(self.streamed, to_first, completion_tokens, tps);
    }
}

/// Chat-template tokens a prompt may add per message, beyond its own bytes.
const TEMPLATE_TOKENS_PER_MESSAGE: u64 = 32;
/// Template tokens a prompt may add once (e.g. a default system prompt).
const TEMPLATE_TOKENS_BASE: u64 = 256;

/// Most prompt tokens an honest tokenizer can make of `input`: every token
/// covers at least one byte, plus the chat template's own tokens.
fn max_prompt_tokens(input: &JobInput) -> u64 {
    let (bytes, messages) = match input {
        JobInput::Chat { messages } => (
            messages
                .iter()
                .map(|m| m.content.len() + m.role.len())
                .sum::<usize>(),
            messages.len(),
        ),
        JobInput::Text { prompt } => (prompt.len(), 1),
        JobInput::Embed { inputs } => (inputs.iter().map(String::len).sum(), inputs.len()),
    };
    (bytes as u64)
        .saturating_add(TEMPLATE_TOKENS_PER_MESSAGE.saturating_mul(messages as u64))
        .saturating_add(TEMPLATE_TOKENS_BASE)
}

/// What the provider streamed for one job, to hold its receipt against.
#[derive(Clone, Copy)]
struct Streamed<'a> {
    /// The job's id (the provider's `x-agora-job-id`).
    job_id: &'a str,
    /// The usage its `done` event reported.
    usage: &'a Usage,
    /// [`agora_types::hash_output_text`] of every delta's text, in order.
    text_hash: Hash32,
    /// [`agora_types::hash_embeddings`] of the vectors an embedding job
    /// streamed (`None` for completions, whose output hash only audits check).
    output_hash: Option<Hash32>,
}

/// A receipt must be signed by the provider we called, name the job it
/// streamed and the model and seed we asked for, commit to the text it
/// streamed (`text_hash`, which audits tie to the output tokens), agree
/// with the usage the stream reported, stay within `max_tokens` and what
/// the prompt can tokenize to, and charge exactly the provider's on-chain
/// price for those tokens: the payer pays what the chain's terms justify,
/// never what a provider claims.
fn check_receipt(
    receipt: &SignedReceipt,
    provider: &ProviderInfo,
    job: &JobRequest,
    streamed: &Streamed<'_>,
    chain_id: &str,
) -> Result<(), String> {
    let Streamed {
        job_id,
        usage,
        text_hash,
        ..
    } = *streamed;
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
    let r = &receipt.receipt;
    let refuse = |why: &str| Err(format!("{}: {why}", provider.endpoint));
    if r.chain_id != chain_id {
        return refuse("the receipt names another chain");
    }
    if r.model != job.model || r.params != job.params {
        // Sampling parameters included: a receipt that drops the output
        // constraint would let an auditor replay free text as honest.
        return refuse("the receipt names another model or other sampling parameters than the job");
    }
    if r.text_hash != text_hash {
        return refuse("the receipt's text hash is not that of the text the provider streamed");
    }
    if streamed.output_hash.is_some_and(|h| h != r.output_hash) {
        return refuse("the receipt's output hash is not that of the vectors the provider sent");
    }
    if r.usage != *usage {
        return refuse("the receipt's token counts differ from the stream's");
    }
    if r.usage.completion_tokens > job.params.max_tokens {
        return refuse("the receipt counts more completion tokens than max_tokens");
    }
    if u64::from(r.usage.prompt_tokens) > max_prompt_tokens(&job.input) {
        return refuse("the receipt counts more prompt tokens than the prompt can hold");
    }
    let due = provider.price.cost(
        u64::from(r.usage.prompt_tokens),
        u64::from(r.usage.completion_tokens),
    );
    if r.price != provider.price || r.cost != due {
        return refuse(&format!(
            "the receipt charges {} at {:?}; the on-chain price makes it {due}",
            r.cost, r.price
        ));
    }
    Ok(())
}

/// A job's `done` event as the gateway received it.
struct Done<'a> {
    provider: &'a ProviderInfo,
    job: &'a JobRequest,
    streamed: Streamed<'a>,
    receipt: &'a SignedReceipt,
}

/// Hold a `done` event's receipt against what was streamed; if it holds,
/// record the job's timing, charge the request's key and pay the provider.
fn accept_done<D: Directory>(
    gw: &Gateway<D>,
    done: &Done<'_>,
    timing: &Timing,
    charge: &Charge,
) -> Result<(), String> {
    let chain = gw.chain_id();
    if let Err(why) = check_receipt(
        done.receipt,
        done.provider,
        done.job,
        &done.streamed,
        &chain,
    ) {
        gw.metrics.provider_failed(ProviderFailure::BadReceipt);
        return Err(why);
    }
    timing.record(gw, done.provider, done.streamed.usage.completion_tokens);
    gw.job_done(done.provider, done.receipt, charge.as_deref());
    Ok(())
}

/// A provider's in-band error or broken stream: counted by `kind`, and
/// described for the client.
fn provider_broke<D: Directory>(
    gw: &Gateway<D>,
    provider: &ProviderInfo,
    kind: ProviderFailure,
    why: impl std::fmt::Display,
) -> String {
    gw.metrics.provider_failed(kind);
    format!("{}: {why}", provider.endpoint)
}

/// Receipt ids (comma-separated when `n` > 1) and the first choice's provider.
pub(crate) fn with_headers(
    mut response: Response,
    receipts: &[&str],
    provider: &ProviderInfo,
) -> Response {
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&receipts.join(",")) {
        h.insert(RECEIPT_HEADER, v.clone());
        h.insert(JOB_ID_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&provider.id.to_hex()) {
        h.insert(PROVIDER_HEADER, v);
    }
    response
}

/// One choice, run to its end.
pub(crate) struct Finished {
    /// An embedding job's vectors (empty for completions).
    pub embeddings: Vec<Vec<f32>>,
    /// What it used and cost.
    pub billed: Billed,
    pub job_id: String,
    pub provider: ProviderInfo,
    text: String,
    reason: agora_types::FinishReason,
    logprobs: Vec<TokenLogprob>,
}

/// Run one job to completion, failing over while nothing has been shown.
pub(crate) async fn run_to_end<D: Directory>(
    gw: &Gateway<D>,
    model: &str,
    job: &JobRequest,
    plan: Vec<ProviderInfo>,
    charge: &Charge,
) -> Result<Finished, ApiError> {
    let mut plan = plan.into_iter();
    let mut tried = Vec::new();
    let mut broke = false;
    while let Some((provider, mut events)) = start_first(gw, job, &mut plan, &mut tried).await? {
        let mut timing = Timing::new(false);
        let (mut text, mut logprobs) = (String::new(), Vec::new());
        let mut embeddings = None;
        let failure = loop {
            match events.next().await {
                Ok(JobEvent::Delta { text: t }) => {
                    timing.first.get_or_insert_with(Instant::now);
                    text.push_str(&t);
                }
                Ok(JobEvent::Embeddings { vectors }) => {
                    timing.first.get_or_insert_with(Instant::now);
                    match vectors_fit(job, &vectors) {
                        Ok(()) => embeddings = Some(vectors),
                        Err(why) => {
                            break provider_broke(gw, &provider, ProviderFailure::Stream, why)
                        }
                    }
                }
                Ok(JobEvent::Logprobs { tokens }) => logprobs.extend(tokens),
                Ok(JobEvent::Done {
                    finish_reason,
                    usage,
                    receipt,
                    cached_tokens,
                }) => {
                    let embedding_job = matches!(job.input, JobInput::Embed { .. });
                    if embedding_job != embeddings.is_some() {
                        let why = "it finished an embedding job without vectors, or sent vectors for a completion";
                        break provider_broke(gw, &provider, ProviderFailure::Stream, why);
                    }
                    let streamed = Streamed {
                        job_id: &events.job_id,
                        usage: &usage,
                        text_hash: hash_output_text(&text),
                        output_hash: embeddings.as_deref().map(hash_embeddings),
                    };
                    let done = Done {
                        provider: &provider,
                        job,
                        streamed,
                        receipt: &receipt,
                    };
                    if let Err(why) = accept_done(gw, &done, &timing, charge) {
                        break why;
                    }
                    return Ok(Finished {
                        embeddings: embeddings.unwrap_or_default(),
                        text,
                        reason: finish_reason,
                        billed: billed(usage, cached_tokens, &receipt),
                        logprobs,
                        job_id: events.job_id,
                        provider,
                    });
                }
                Ok(JobEvent::Error { message }) => {
                    break provider_broke(gw, &provider, ProviderFailure::JobError, message)
                }
                Err(why) => break provider_broke(gw, &provider, ProviderFailure::Stream, why),
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
    Err(exhausted(model, &tried, broke))
}

/// Whether `vectors` answer `job`: one finite vector per input, all of one width.
fn vectors_fit(job: &JobRequest, vectors: &[Vec<f32>]) -> Result<(), String> {
    let JobInput::Embed { inputs } = &job.input else {
        return Err("it sent vectors for a completion".into());
    };
    let width = vectors.first().map_or(0, Vec::len);
    if vectors.len() != inputs.len() || width == 0 {
        return Err(format!(
            "it sent {} vectors for {} inputs",
            vectors.len(),
            inputs.len()
        ));
    }
    if vectors
        .iter()
        .any(|v| v.len() != width || v.iter().any(|x| !x.is_finite()))
    {
        return Err("its vectors differ in width or hold non-finite numbers".into());
    }
    Ok(())
}

/// Summed usage of several jobs.
fn total(parts: impl Iterator<Item = Billed>) -> Value {
    parts.fold(Billed::default(), Billed::plus).json()
}

/// What one job used and cost; a provider's `cached_tokens` can never
/// exceed the prompt it was paid for.
fn billed(usage: Usage, cached_tokens: u32, receipt: &SignedReceipt) -> Billed {
    Billed {
        usage,
        cached_tokens: cached_tokens.min(usage.prompt_tokens),
        cost: receipt.receipt.cost,
    }
}

/// Non-streaming: run every choice to its end, then answer once.
async fn collect<D: Directory>(
    gw: Arc<Gateway<D>>,
    endpoint: Endpoint,
    req: CompletionRequest,
    jobs: Vec<JobRequest>,
    plan: Vec<ProviderInfo>,
    charge: Charge,
) -> Result<Response, ApiError> {
    let runs = join_all(
        jobs.iter()
            .map(|job| run_to_end(&gw, &req.model, job, plan.clone(), &charge)),
    )
    .await;
    let finished = runs.into_iter().collect::<Result<Vec<_>, _>>()?;
    let meta = ResponseMeta::new(endpoint, &finished[0].job_id, &req.model);
    let want = req.params.logprobs.is_some();
    let usage = total(finished.iter().map(|f| f.billed));
    let receipts: Vec<&str> = finished.iter().map(|f| f.job_id.as_str()).collect();
    let choices = finished
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let logprobs = want.then_some(&f.logprobs[..]);
            match tool_call(req.tools.as_ref(), &f.text, &f.job_id) {
                Some(call) => meta.tool_calls_choice(i, vec![call], logprobs),
                None => meta.choice(i, f.text.clone(), f.reason, logprobs),
            }
        })
        .collect();
    let body = meta.complete(choices, usage);
    Ok(with_headers(
        Json(body).into_response(),
        &receipts,
        &finished[0].provider,
    ))
}

/// The `tool_calls` entry for `text`, if the request offered tools and the
/// text calls one of them; its id derives from the job's.
fn tool_call(tools: Option<&Tools>, text: &str, job_id: &str) -> Option<Value> {
    let id = format!("call_{}", &job_id[..job_id.len().min(24)]);
    let call = tools?.parse_call(text, id)?;
    Some(openai::tool_call_json(
        &call.id,
        &call.name,
        &call.arguments,
    ))
}

fn data(value: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(value.to_string()))
}

/// Streaming: once every choice's provider accepted its job the response
/// starts; a failure after that is reported as an `error` data object.
async fn stream<D: Directory>(
    gw: Arc<Gateway<D>>,
    endpoint: Endpoint,
    req: CompletionRequest,
    jobs: Vec<JobRequest>,
    plan: Vec<ProviderInfo>,
    charge: Charge,
) -> Result<Response, ApiError> {
    let mut started = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let (mut order, mut tried) = (plan.clone().into_iter(), Vec::new());
        match start_first(&gw, job, &mut order, &mut tried).await? {
            Some(s) => started.push(s),
            None => return Err(exhausted(&req.model, &tried, false)),
        }
    }
    let meta = ResponseMeta::new(endpoint, &started[0].1.job_id, &req.model);
    let receipts: Vec<String> = started.iter().map(|(_, s)| s.job_id.clone()).collect();
    let provider = started[0].0.clone();
    let (tx, rx) = mpsc::channel(64);
    let run = Run {
        meta,
        include_usage: req.include_usage,
        charge,
        tools: req.tools,
    };
    tokio::spawn(coordinate(gw, run, started, jobs, tx));
    let receipts: Vec<&str> = receipts.iter().map(String::as_str).collect();
    Ok(with_headers(
        Sse::new(ReceiverStream::new(rx)).into_response(),
        &receipts,
        &provider,
    ))
}

/// Why a choice's stream stopped early.
enum Stopped {
    /// The client went away.
    ClientGone,
    /// The provider failed; the message says how.
    Failed(String),
}

/// What a streamed response carries from its start to its end.
struct Run {
    meta: ResponseMeta,
    include_usage: bool,
    charge: Charge,
    /// With tools offered, text is held back until the end shows whether it
    /// is a call ([`tool_call`]).
    tools: Option<Tools>,
}

/// Pump every choice to the client; then the usage chunk and `[DONE]`.
async fn coordinate<D: Directory>(
    gw: Arc<Gateway<D>>,
    run: Run,
    started: Vec<(ProviderInfo, JobStream)>,
    jobs: Vec<JobRequest>,
    tx: Tx,
) {
    let pumps = started
        .into_iter()
        .zip(&jobs)
        .enumerate()
        .map(|(i, ((p, s), job))| pump(&gw, &run, i, p, s, job, &tx));
    match try_join_all(pumps).await {
        Ok(parts) => {
            if run.include_usage {
                let _ = tx
                    .send(data(&run.meta.usage_chunk(total(parts.into_iter()))))
                    .await;
            }
            let _ = tx.send(Ok(Event::default().data("[DONE]"))).await;
        }
        Err(Stopped::ClientGone) => {}
        Err(Stopped::Failed(failure)) => {
            let error =
                ApiError::provider_failed(format!("The provider failed mid-stream: {failure}"));
            let _ = tx.send(data(&error.body())).await;
        }
    }
}

/// Forward one choice's provider events as OpenAI chunks until its job ends.
async fn pump<D: Directory>(
    gw: &Gateway<D>,
    run: &Run,
    index: usize,
    provider: ProviderInfo,
    mut events: JobStream,
    job: &JobRequest,
    tx: &Tx,
) -> Result<Billed, Stopped> {
    let (meta, charge) = (&run.meta, &run.charge);
    let send = |v: Value| async move { tx.send(data(&v)).await.map_err(|_| Stopped::ClientGone) };
    let mut timing = Timing::new(true);
    let want = events.wants_logprobs;
    let mut logprobs = Vec::new();
    // The text the client is sent, hashed as it passes (buffered only when
    // tools are offered: it may turn out to be a call).
    let mut text_hash = OutputTextHasher::default();
    let mut held = run.tools.as_ref().map(|_| String::new());
    if meta.endpoint == Endpoint::Chat {
        send(meta.chunk(index, Some(""), true, None, None)).await?;
    }
    let failure = loop {
        match events.next().await {
            Ok(JobEvent::Logprobs { tokens }) => logprobs.extend(tokens),
            Ok(JobEvent::Embeddings { .. }) => {
                let why = "it sent vectors for a completion";
                break provider_broke(gw, &provider, ProviderFailure::Stream, why);
            }
            Ok(JobEvent::Delta { text }) => {
                timing.first.get_or_insert_with(Instant::now);
                text_hash.update(&text);
                if let Some(held) = held.as_mut() {
                    held.push_str(&text);
                    continue;
                }
                send(meta.chunk(
                    index,
                    Some(&text),
                    false,
                    None,
                    want.then_some(&logprobs[..]),
                ))
                .await?;
                logprobs.clear();
            }
            Ok(JobEvent::Done {
                finish_reason,
                usage,
                receipt,
                cached_tokens,
            }) => {
                let streamed = Streamed {
                    job_id: &events.job_id,
                    usage: &usage,
                    text_hash: text_hash.finish(),
                    output_hash: None,
                };
                let done = Done {
                    provider: &provider,
                    job,
                    streamed,
                    receipt: &receipt,
                };
                if let Err(why) = accept_done(gw, &done, &timing, charge) {
                    break why;
                }
                if let Some(held) = held {
                    match tool_call(run.tools.as_ref(), &held, &events.job_id) {
                        Some(call) => {
                            send(meta.tool_calls_chunk(index, vec![call])).await?;
                            send(meta.tool_calls_end_chunk(index)).await?;
                            return Ok(billed(usage, cached_tokens, &receipt));
                        }
                        None if !held.is_empty() => {
                            let lp = want.then_some(&logprobs[..]);
                            send(meta.chunk(index, Some(&held), false, None, lp)).await?;
                            logprobs.clear();
                        }
                        None => {}
                    }
                }
                let text = (meta.endpoint == Endpoint::Completions).then_some("");
                // Tokens whose text a stop string cut still get their logprobs.
                let lp = (want && !logprobs.is_empty()).then_some(&logprobs[..]);
                send(meta.chunk(index, text, false, Some(finish_reason), lp)).await?;
                return Ok(billed(usage, cached_tokens, &receipt));
            }
            Ok(JobEvent::Error { message }) => {
                break provider_broke(gw, &provider, ProviderFailure::JobError, message)
            }
            Err(why) => break provider_broke(gw, &provider, ProviderFailure::Stream, why),
        }
    };
    tracing::warn!(provider = %provider.id, %failure, "provider failed a streaming job");
    gw.health
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .failed(&provider.id);
    Err(Stopped::Failed(failure))
}
