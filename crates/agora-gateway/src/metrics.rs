//! The gateway's metrics, served at `GET /metrics`: per-route HTTP metrics,
//! completion jobs (time to first token, tokens, tokens per second),
//! provider failures by kind, and spend and remaining budget per API key
//! ([`GatewayMetrics::record_spend`], [`GatewayMetrics::set_remaining_budget`]).
//! Nothing secret is a label: keys appear only by their short public id,
//! and prompts and outputs never.

use std::sync::Arc;
use std::time::Duration;

use agora_metrics::types::{Counter, EncodeLabelSet, Family, Gauge, Histogram};
use agora_metrics::{buckets, HttpMetrics, HttpMetricsLayer, LabelCap, MetricsRegistry};
use axum::extract::State;
use axum::response::Response;

use crate::{Directory, Gateway};

/// Most distinct API key ids labelled; later ones are counted as `other`.
const MAX_KEY_LABELS: usize = 1_024;
/// Longest key id accepted as a label (a short public id, never a key).
const MAX_KEY_ID_LEN: usize = 32;
/// Label of key ids that look like secrets or are not short public ids.
const INVALID_KEY_ID: &str = "invalid";

/// How a provider failed a job, as the `kind` label.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ProviderFailure {
    /// It could not be reached or would not start the job (busy, down).
    Unavailable,
    /// It refused the request as invalid (passed on to the client).
    Refused,
    /// It reported an error event during the job.
    JobError,
    /// Its stream broke off or went silent.
    Stream,
    /// Its receipt did not match the job, the stream or the on-chain price.
    BadReceipt,
}

impl ProviderFailure {
    fn label(self) -> &'static str {
        match self {
            ProviderFailure::Unavailable => "unavailable",
            ProviderFailure::Refused => "refused",
            ProviderFailure::JobError => "job_error",
            ProviderFailure::Stream => "stream",
            ProviderFailure::BadReceipt => "bad_receipt",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: bool,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KeyLabel {
    key: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn ttft_histogram() -> Histogram {
    Histogram::new(buckets::SECONDS.iter().copied())
}

/// The gateway's metrics; cheap to clone. Other parts of the gateway (API
/// keys, budgets) report through [`GatewayMetrics::record_spend`] and
/// [`GatewayMetrics::set_remaining_budget`].
#[derive(Clone, Debug)]
pub struct GatewayMetrics {
    registry: MetricsRegistry,
    http: HttpMetrics,
    first_token: Histograms<StreamLabel>,
    completion_tokens: Counter,
    tokens_per_second: Histogram,
    provider_failures: Family<KindLabel, Counter>,
    spend: Family<KeyLabel, Counter>,
    budget: Family<KeyLabel, Gauge>,
    keys: Arc<LabelCap>,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new(MetricsRegistry::new())
    }
}

impl GatewayMetrics {
    /// The gateway's metrics, registered in `registry`.
    pub fn new(registry: MetricsRegistry) -> Self {
        let first_token = registry.metric(
            "gateway_time_to_first_token_seconds",
            "Time from a provider accepting a completion job to its first token, by whether the client streams",
            || Histograms::new_with_constructor(ttft_histogram),
        );
        GatewayMetrics {
            http: HttpMetrics::new(&registry),
            first_token,
            completion_tokens: registry.counter(
                "gateway_completion_tokens",
                "Completion tokens of jobs whose receipt checked out",
            ),
            tokens_per_second: registry.histogram(
                "gateway_tokens_per_second",
                "Decode speed of each finished job (tokens after the first per second)",
                buckets::TOKENS_PER_SECOND,
            ),
            provider_failures: registry.metric(
                "gateway_provider_failures",
                "Jobs a provider failed, by kind (unavailable, refused, job_error, stream, bad_receipt)",
                Family::default,
            ),
            spend: registry.metric(
                "gateway_spend",
                "Base units spent per API key, by the key's short public id",
                Family::default,
            ),
            budget: registry.metric(
                "gateway_remaining_budget",
                "Base units an API key may still spend, by the key's short public id",
                Family::default,
            ),
            keys: Arc::new(LabelCap::new(MAX_KEY_LABELS)),
            registry,
        }
    }

    /// The registry these metrics are rendered from.
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    /// The layer recording per-route HTTP metrics.
    pub(crate) fn http_layer(&self) -> HttpMetricsLayer {
        self.http.layer()
    }

    /// Add `amount` base units to what the key with public id `key_id` spent.
    /// Pass the key's short public id, never the key itself.
    pub fn record_spend(&self, key_id: &str, amount: u64) {
        let key = self.key_label(key_id).to_string();
        self.spend.get_or_create(&KeyLabel { key }).inc_by(amount);
    }

    /// Set what the key with public id `key_id` may still spend.
    /// Pass the key's short public id, never the key itself.
    pub fn set_remaining_budget(&self, key_id: &str, amount: u64) {
        let key = self.key_label(key_id).to_string();
        let amount = i64::try_from(amount).unwrap_or(i64::MAX);
        self.budget.get_or_create(&KeyLabel { key }).set(amount);
    }

    /// `key_id` as a label: short ids of plain characters only (anything
    /// that looks like a secret key is `invalid`), at most [`MAX_KEY_LABELS`].
    fn key_label<'a>(&self, key_id: &'a str) -> &'a str {
        let plain = key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if key_id.is_empty() || key_id.len() > MAX_KEY_ID_LEN || !plain || key_id.starts_with("sk-")
        {
            return INVALID_KEY_ID;
        }
        self.keys.admit(key_id)
    }

    /// A job finished with a receipt that checked out.
    pub(crate) fn job_finished(
        &self,
        streamed: bool,
        first_token: Option<Duration>,
        completion_tokens: u32,
        tokens_per_second: f64,
    ) {
        if let Some(wait) = first_token {
            let label = StreamLabel { stream: streamed };
            self.first_token
                .get_or_create(&label)
                .observe(wait.as_secs_f64());
        }
        self.completion_tokens.inc_by(completion_tokens.into());
        if tokens_per_second > 0.0 {
            self.tokens_per_second.observe(tokens_per_second);
        }
    }

    /// A provider failed a job.
    pub(crate) fn provider_failed(&self, failure: ProviderFailure) {
        let kind = failure.label();
        self.provider_failures
            .get_or_create(&KindLabel { kind })
            .inc();
    }
}

/// `GET /metrics`: the gateway's metrics in Prometheus text format.
pub(crate) async fn scrape<D: Directory>(State(gw): State<Arc<Gateway<D>>>) -> Response {
    if let crate::access::Access::Keyed { book, .. } = &gw.access {
        for (key, left) in book.remaining_budgets() {
            gw.metrics.set_remaining_budget(&key, left);
        }
    }
    gw.metrics.registry.response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_labels_are_public_ids_only_and_bounded() {
        let metrics = GatewayMetrics::default();
        metrics.record_spend("key-1", 40);
        metrics.record_spend("key-1", 2);
        metrics.set_remaining_budget("key-1", 958);
        metrics.record_spend("sk-agora-0123456789abcdef", 5);
        metrics.record_spend("key with spaces", 5);
        for i in 0..(MAX_KEY_LABELS + 10) {
            metrics.record_spend(&format!("k{i}"), 1);
        }
        let text = metrics.registry().render();
        assert!(
            text.contains(r#"agora_gateway_spend_total{key="key-1"} 42"#),
            "{text}"
        );
        assert!(
            text.contains(r#"agora_gateway_remaining_budget{key="key-1"} 958"#),
            "{text}"
        );
        assert!(
            text.contains(r#"agora_gateway_spend_total{key="invalid"} 10"#),
            "{text}"
        );
        assert!(!text.contains("sk-agora"), "{text}");
        // "key-1" and "k0".. fill the cap; the 11 beyond it share "other".
        let other = format!(r#"agora_gateway_spend_total{{key="other"}} {}"#, 11);
        assert!(text.contains(&other), "{other} missing");
        let series = text
            .lines()
            .filter(|l| l.starts_with("agora_gateway_spend_total{"))
            .count();
        assert_eq!(series, MAX_KEY_LABELS + 2);
    }
}
