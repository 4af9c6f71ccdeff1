//! Transcripts fetched over HTTP from the provider that ran the job, with a
//! signed request (the provider serves a job only to the validators drawn
//! for it) and a bounded answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agora_types::access::{TranscriptAuth, TRANSCRIPT_AUTH_HEADER};
use agora_types::audit::JobProof;
use agora_types::{Hash32, Keypair};
use agora_wire::provider::batch_url;

use crate::ports::{FetchError, TranscriptSource};

/// Largest transcript answer accepted (a long job with commitments is far smaller).
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// [`TranscriptSource`] over the provider's `GET /v1/batches/{root}/{index}`.
#[derive(Clone)]
pub struct HttpTranscripts {
    http: reqwest::Client,
    key: Keypair,
    chain_id: String,
}

impl HttpTranscripts {
    /// A client that signs its requests as `key` for `chain_id`, never
    /// follows redirects, outside development chains dials public addresses
    /// only, and gives up on a provider after `timeout`.
    pub fn new(timeout: Duration, key: Keypair, chain_id: String) -> Self {
        let builder = reqwest::Client::builder().timeout(timeout);
        let http = agora_tasks::endpoint_client(builder, &chain_id)
            .build()
            .unwrap_or_default();
        HttpTranscripts {
            http,
            key,
            chain_id,
        }
    }
}

impl TranscriptSource for HttpTranscripts {
    async fn fetch(
        &self,
        endpoint: &str,
        root: &Hash32,
        index: u64,
    ) -> Result<JobProof, FetchError> {
        let url = batch_url(endpoint, root, index);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let auth = TranscriptAuth::sign(&self.key, &self.chain_id, root, index, now_ms);
        let mut response = self
            .http
            .get(&url)
            .header(TRANSCRIPT_AUTH_HEADER, auth.to_header())
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
        // Read chunk by chunk so an endless answer is cut at the limit.
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::Unavailable(format!("{url}: {e}")))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(FetchError::Malformed(format!(
                    "{url}: answer exceeds {MAX_ANSWER_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| FetchError::Malformed(format!("{url}: {e}")))
    }
}
