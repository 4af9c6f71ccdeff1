//! The gateway's client of the provider job protocol: start a job
//! (`POST /v1/jobs`), then read its event stream.

use std::collections::VecDeque;
use std::time::Duration;

use agora_types::{JobEvent, JobRequest, ProviderInfo};
use agora_wire::headers::{JOB_ID_HEADER, PAYMENT_CHANNEL, PAYMENT_HEADER};
use agora_wire::provider::ProviderEndpoint;
use agora_wire::sse::SseDecoder;
use serde_json::Value;

use crate::ApiError;

/// Largest SSE line or event accepted from a provider.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// Why a provider did not take a job.
#[derive(Debug)]
pub enum StartError {
    /// The request itself is at fault (the provider said 400): do not try others.
    Refused(ApiError),
    /// This provider cannot serve it now: try the next one.
    Unavailable(String),
}

/// A job a provider accepted: its id and its event stream.
pub struct JobStream {
    /// The provider's job id, which is also the receipt id.
    pub job_id: String,
    /// The job asked for log-probabilities.
    pub wants_logprobs: bool,
    response: reqwest::Response,
    decoder: SseDecoder,
    ready: VecDeque<String>,
    idle_timeout: Duration,
}

/// Ask `provider` to run `job`; `paid_by_channel` when a payment channel
/// will pay for it (the provider then commits it by settlement).
pub async fn start(
    http: &reqwest::Client,
    provider: &ProviderInfo,
    job: &JobRequest,
    paid_by_channel: bool,
    idle_timeout: Duration,
) -> Result<JobStream, StartError> {
    let url = ProviderEndpoint::Jobs.url(&provider.endpoint);
    let mut request = http.post(&url).json(job);
    if paid_by_channel {
        request = request.header(PAYMENT_HEADER, PAYMENT_CHANNEL);
    }
    let send = request.send();
    let response = match tokio::time::timeout(idle_timeout, send).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(StartError::Unavailable(format!("{url}: {e}"))),
        Err(_) => {
            return Err(StartError::Unavailable(format!(
                "{url}: no answer within {idle_timeout:?}"
            )))
        }
    };
    let status = response.status();
    if status.is_success() {
        let job_id = response
            .headers()
            .get(JOB_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                StartError::Unavailable(format!("{url}: answer without a {JOB_ID_HEADER} header"))
            })?;
        return Ok(JobStream {
            job_id,
            wants_logprobs: job.params.logprobs.is_some(),
            response,
            decoder: SseDecoder::new(MAX_EVENT_BYTES),
            ready: VecDeque::new(),
            idle_timeout,
        });
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let message = body["error"]["message"]
        .as_str()
        .unwrap_or("no error message")
        .to_string();
    if status == reqwest::StatusCode::BAD_REQUEST {
        let mut e = ApiError::invalid("messages", message);
        e.param = body["error"]["param"].as_str().map(str::to_string);
        return Err(StartError::Refused(e));
    }
    Err(StartError::Unavailable(format!(
        "{url} answered {status}: {message}"
    )))
}

impl JobStream {
    /// The next event. An error means the provider broke the stream: it ended
    /// early, went silent for longer than the idle timeout, or sent garbage
    /// (an event larger than [`MAX_EVENT_BYTES`] included).
    pub async fn next(&mut self) -> Result<JobEvent, String> {
        loop {
            if let Some(data) = self.ready.pop_front() {
                return serde_json::from_str(&data)
                    .map_err(|e| format!("provider sent an invalid event ({e}): {data}"));
            }
            match tokio::time::timeout(self.idle_timeout, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => match self.decoder.push(&bytes) {
                    Ok(events) => self.ready.extend(events),
                    Err(e) => return Err(format!("the provider's stream is unusable: {e}")),
                },
                Ok(Ok(None)) => {
                    return Err("the provider closed the stream before the job finished".into())
                }
                Ok(Err(e)) => return Err(format!("the provider's stream broke: {e}")),
                Err(_) => {
                    return Err(format!(
                        "the provider sent nothing for {:?}",
                        self.idle_timeout
                    ))
                }
            }
        }
    }
}
