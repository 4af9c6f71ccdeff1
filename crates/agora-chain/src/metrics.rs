//! The chain node's metrics, served at `GET /metrics`: per-route HTTP
//! metrics, the finalized height, seconds since the last finalized block,
//! mempool size, transactions by outcome (accepted or the refusal's code at
//! submission, dropped at block building, committed) and audit verdicts in
//! finalized blocks. Gauges read from the node are set when scraped.

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use agora_metrics::types::{Counter, EncodeLabelSet, Family, Gauge};
use agora_metrics::{HttpMetrics, HttpMetricsLayer, MetricsRegistry};
use agora_types::{Block, TxKind};
use axum::extract::State;
use axum::response::Response;

use crate::Node;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: &'static str,
}

/// The chain node's metrics; cheap to clone.
#[derive(Clone, Debug)]
pub struct ChainMetrics {
    registry: MetricsRegistry,
    http: HttpMetrics,
    height: Gauge,
    since_last_block: Gauge<f64, AtomicU64>,
    mempool: Gauge,
    submitted: Family<OutcomeLabel, Counter>,
    dropped: Family<CodeLabel, Counter>,
    committed: Counter,
    verdicts: Family<VerdictLabel, Counter>,
}

impl Default for ChainMetrics {
    fn default() -> Self {
        Self::new(MetricsRegistry::new())
    }
}

impl ChainMetrics {
    /// The node's metrics, registered in `registry`.
    pub fn new(registry: MetricsRegistry) -> Self {
        ChainMetrics {
            http: HttpMetrics::new(&registry),
            height: registry.gauge("chain_height", "Height of the last finalized block"),
            since_last_block: registry.metric(
                "chain_seconds_since_last_block",
                "Seconds since the timestamp of the last finalized block (finality lag)",
                Gauge::default,
            ),
            mempool: registry.gauge(
                "chain_mempool_transactions",
                "Transactions waiting in the mempool",
            ),
            submitted: registry.metric(
                "chain_transactions_submitted",
                "Transactions offered to the mempool (RPC or gossip), by outcome: accepted or the refusal's code",
                Family::default,
            ),
            dropped: registry.metric(
                "chain_transactions_dropped",
                "Admitted transactions dropped at block building, by code",
                Family::default,
            ),
            committed: registry.counter(
                "chain_transactions_committed",
                "Transactions in blocks this node finalized since it started",
            ),
            verdicts: registry.metric(
                "chain_audit_verdicts",
                "Audit verdicts in blocks this node finalized since it started, by verdict (passed, failed)",
                Family::default,
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

    /// A transaction was admitted (`None`) or refused with `code`.
    pub(crate) fn submitted(&self, refusal: Option<&'static str>) {
        let outcome = refusal.unwrap_or("accepted");
        self.submitted
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// A block was finalized, dropping transactions with these codes.
    pub(crate) fn finalized(&self, block: &Block, dropped: impl Iterator<Item = &'static str>) {
        self.height
            .set(i64::try_from(block.header.height).unwrap_or(i64::MAX));
        self.committed.inc_by(block.txs.len() as u64);
        for code in dropped {
            self.dropped.get_or_create(&CodeLabel { code }).inc();
        }
        for tx in &block.txs {
            if let TxKind::SubmitVerdict { passed, .. } = tx.tx.kind {
                let verdict = if passed { "passed" } else { "failed" };
                self.verdicts.get_or_create(&VerdictLabel { verdict }).inc();
            }
        }
    }
}

/// `GET /metrics`: the node's metrics in Prometheus text format, with the
/// gauges read from the node now.
pub(crate) async fn scrape(State(node): State<Node>) -> Response {
    let metrics = node.metrics();
    let state = node.state();
    metrics
        .height
        .set(i64::try_from(state.height).unwrap_or(i64::MAX));
    metrics
        .mempool
        .set(i64::try_from(node.mempool_len()).unwrap_or(i64::MAX));
    if state.last_timestamp_ms > 0 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let lag = now_ms.saturating_sub(state.last_timestamp_ms) as f64 / 1000.0;
        metrics.since_last_block.set(lag);
    }
    metrics.registry.response()
}
