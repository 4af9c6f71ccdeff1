//! Transcripts fetched over HTTP from the provider that ran the job.

use std::time::Duration;

use agora_types::audit::JobProof;
use agora_types::Hash32;

use crate::ports::{FetchError, TranscriptSource};

/// Largest transcript answer accepted (a long job with commitments is far smaller).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// [`TranscriptSource`] over the provider's `GET /v1/batches/{root}/{index}`.
#[derive(Clone, Debug)]
pub struct HttpTranscripts {
    http: reqwest::Client,
}

impl HttpTranscripts {
    /// A client that gives up on a provider after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        HttpTranscripts { http }
    }
}

impl TranscriptSource for HttpTranscripts {
    async fn fetch(
        &self,
        endpoint: &str,
        root: &Hash32,
        index: u64,
    ) -> Result<JobProof, FetchError> {
        let url = format!(
            "{}/v1/batches/{}/{index}",
            endpoint.trim_end_matches('/'),
            root.to_hex()
        );
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| FetchError::Unavailable(format!("{url}: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(FetchError::Missing);
        }
        if !status.is_success() {
            return Err(FetchError::Unavailable(format!("{url}: HTTP {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| FetchError::Unavailable(format!("{url}: {e}")))?;
        if body.len() > MAX_ANSWER_BYTES {
            return Err(FetchError::Malformed(format!(
                "{url}: answer of {} bytes exceeds {MAX_ANSWER_BYTES}",
                body.len()
            )));
        }
        serde_json::from_slice(&body).map_err(|e| FetchError::Malformed(format!("{url}: {e}")))
    }
}
