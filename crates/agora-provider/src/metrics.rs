//! The provider's metrics, served at `GET /metrics`: per-route HTTP metrics,
//! jobs by outcome, jobs waiting for the engine and running on it, tokens
//! generated, time to first token, and transcripts served to auditors.

use std::sync::Arc;
use std::time::Instant;

use agora_engine::InferenceEngine;
use agora_metrics::types::{Counter, EncodeLabelSet, Family, Gauge, Histogram};
use agora_metrics::{buckets, HttpMetrics, HttpMetricsLayer, MetricsRegistry};
use axum::extract::State;
use axum::response::Response;

use crate::Provider;

/// How a job ended, as the `outcome` label.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Outcome {
    /// It finished with a signed receipt.
    Completed,
    /// The engine or the transcript store failed it.
    Failed,
    /// The engine was at capacity or stopping, so it was never taken.
    Busy,
    /// The client went away before it finished.
    Abandoned,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::Busy => "busy",
            Outcome::Abandoned => "abandoned",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The provider's metrics; cheap to clone.
#[derive(Clone, Debug)]
pub struct ProviderMetrics {
    registry: MetricsRegistry,
    http: HttpMetrics,
    jobs: Family<OutcomeLabel, Counter>,
    waiting: Gauge,
    running: Gauge,
    completion_tokens: Counter,
    first_token: Histogram,
    proofs_served: Counter,
}

impl Default for ProviderMetrics {
    fn default() -> Self {
        Self::new(MetricsRegistry::new())
    }
}

impl ProviderMetrics {
    /// The provider's metrics, registered in `registry`.
    pub fn new(registry: MetricsRegistry) -> Self {
        ProviderMetrics {
            http: HttpMetrics::new(&registry),
            jobs: registry.metric(
                "provider_jobs",
                "Jobs by outcome (completed, failed, busy, abandoned)",
                Family::default,
            ),
            waiting: registry.gauge(
                "provider_jobs_waiting",
                "Jobs handed to the engine that it has not started yet (its queue)",
            ),
            running: registry.gauge(
                "provider_jobs_running",
                "Jobs the engine has started and not finished",
            ),
            completion_tokens: registry.counter(
                "provider_completion_tokens",
                "Output tokens of completed jobs",
            ),
            first_token: registry.histogram(
                "provider_time_to_first_token_seconds",
                "Time from a job's acceptance (queue wait included) to its first streamed text",
                buckets::SECONDS,
            ),
            proofs_served: registry.counter(
                "provider_audit_proofs_served",
                "Batch transcripts with Merkle proofs served to drawn auditors",
            ),
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

    /// A job ended before the engine took it.
    pub(crate) fn refused(&self, outcome: Outcome) {
        self.count(outcome);
    }

    /// A drawn auditor received a batch transcript with its proof.
    pub(crate) fn proof_served(&self) {
        self.proofs_served.inc();
    }

    fn count(&self, outcome: Outcome) {
        let label = OutcomeLabel {
            outcome: outcome.label(),
        };
        self.jobs.get_or_create(&label).inc();
    }

    /// Watch a job the engine accepted, from its queue to its end.
    pub(crate) fn watch(&self) -> JobWatch {
        self.waiting.inc();
        JobWatch {
            metrics: self.clone(),
            accepted: Instant::now(),
            phase: Phase::Waiting,
            first_token: false,
        }
    }
}

/// Where a watched job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Running,
    Ended,
}

/// One job's passage through the engine; dropping it before the job ends
/// counts the job as abandoned, so the gauges never drift.
pub(crate) struct JobWatch {
    metrics: ProviderMetrics,
    accepted: Instant,
    phase: Phase,
    first_token: bool,
}

impl JobWatch {
    /// The engine sent its first event: the job left the queue.
    pub(crate) fn started(&mut self) {
        if self.phase == Phase::Waiting {
            self.metrics.waiting.dec();
            self.metrics.running.inc();
            self.phase = Phase::Running;
        }
    }

    /// Text was streamed (the first time: time to first token).
    pub(crate) fn text(&mut self) {
        if !self.first_token {
            self.first_token = true;
            let wait = self.accepted.elapsed().as_secs_f64();
            self.metrics.first_token.observe(wait);
        }
    }

    /// The job ended; `tokens` output tokens count if it completed.
    pub(crate) fn ended(&mut self, outcome: Outcome, tokens: usize) {
        match self.phase {
            Phase::Waiting => self.metrics.waiting.dec(),
            Phase::Running => self.metrics.running.dec(),
            Phase::Ended => return,
        };
        self.phase = Phase::Ended;
        if matches!(outcome, Outcome::Completed) {
            self.metrics.completion_tokens.inc_by(tokens as u64);
        }
        self.metrics.count(outcome);
    }
}

impl Drop for JobWatch {
    fn drop(&mut self) {
        self.ended(Outcome::Abandoned, 0);
    }
}

/// `GET /metrics`: the provider's metrics in Prometheus text format.
pub(crate) async fn scrape<E: InferenceEngine>(State(p): State<Arc<Provider<E>>>) -> Response {
    p.metrics.registry.response()
}
