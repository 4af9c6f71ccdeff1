//! The provider's HTTP endpoints: the routes agora-provider serves and the
//! URLs the gateway and the validator call, from one list of paths.

use agora_types::Hash32;

/// Most stop sequences one job may carry (OpenAI's limit); the gateway
/// refuses more in a client's request and the provider in a job.
pub const MAX_STOPS: usize = 4;
/// Longest stop sequence one job may carry, in bytes; enforced like [`MAX_STOPS`].
pub const MAX_STOP_BYTES: usize = 256;

/// An endpoint of a provider's HTTP service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderEndpoint {
    /// `POST /v1/jobs`: run a job, streamed as SSE job events ending in a signed receipt.
    Jobs,
    /// `GET /v1/transcripts/{id}`: a stored transcript, for audit.
    Transcript,
    /// `GET /v1/batches/{root}/{index}`: a committed batch job's transcript with its Merkle proof.
    Batch,
    /// `POST /v1/vouchers`: a payment channel voucher.
    Vouchers,
    /// `GET /v1/receipts/{id}`: a job's signed receipt and, once committed,
    /// the Merkle proof of it under the committed root (public: no prompt, no output).
    Receipt,
    /// `GET /health`: what the provider serves.
    Health,
}

impl ProviderEndpoint {
    /// Every endpoint, for listings and tests.
    pub const ALL: [ProviderEndpoint; 6] = [
        ProviderEndpoint::Jobs,
        ProviderEndpoint::Transcript,
        ProviderEndpoint::Batch,
        ProviderEndpoint::Vouchers,
        ProviderEndpoint::Receipt,
        ProviderEndpoint::Health,
    ];

    /// The path as the provider's router registers it (`{name}` is a parameter).
    pub const fn route(self) -> &'static str {
        match self {
            ProviderEndpoint::Jobs => "/v1/jobs",
            ProviderEndpoint::Transcript => "/v1/transcripts/{id}",
            ProviderEndpoint::Batch => "/v1/batches/{root}/{index}",
            ProviderEndpoint::Vouchers => "/v1/vouchers",
            ProviderEndpoint::Receipt => "/v1/receipts/{id}",
            ProviderEndpoint::Health => "/health",
        }
    }

    /// The URL of this endpoint at the provider reachable at `base` (its
    /// registered endpoint); parameters stay as placeholders, so use
    /// [`transcript_url`] and [`batch_url`] for the endpoints that have some.
    pub fn url(self, base: &str) -> String {
        format!("{}{}", base.trim_end_matches('/'), self.route())
    }
}

/// `GET /v1/transcripts/{id}` of job `id` at the provider reachable at `base`.
pub fn transcript_url(base: &str, id: &Hash32) -> String {
    ProviderEndpoint::Transcript
        .url(base)
        .replace("{id}", &id.to_hex())
}

/// `GET /v1/receipts/{id}` of job `id` at the provider reachable at `base`.
pub fn receipt_url(base: &str, id: &Hash32) -> String {
    ProviderEndpoint::Receipt
        .url(base)
        .replace("{id}", &id.to_hex())
}

/// `GET /v1/batches/{root}/{index}` at the provider reachable at `base`.
pub fn batch_url(base: &str, root: &Hash32, index: u64) -> String {
    ProviderEndpoint::Batch
        .url(base)
        .replace("{root}", &root.to_hex())
        .replace("{index}", &index.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_fill_the_routes() {
        let base = "http://127.0.0.1:9/";
        assert_eq!(
            ProviderEndpoint::Jobs.url(base),
            "http://127.0.0.1:9/v1/jobs"
        );
        assert_eq!(
            ProviderEndpoint::Vouchers.url("http://h"),
            "http://h/v1/vouchers"
        );
        let root = Hash32([0xab; 32]);
        let hex = root.to_hex();
        assert_eq!(
            batch_url(base, &root, 7),
            format!("http://127.0.0.1:9/v1/batches/{hex}/7")
        );
        assert_eq!(
            transcript_url(base, &root),
            format!("http://127.0.0.1:9/v1/transcripts/{hex}")
        );
        assert_eq!(
            receipt_url(base, &root),
            format!("http://127.0.0.1:9/v1/receipts/{hex}")
        );
        for e in ProviderEndpoint::ALL {
            assert!(e.route().starts_with('/'), "{e:?}");
        }
    }
}
