//! Prometheus metrics for agora's servers. Each server (gateway, provider,
//! chain node) owns one [`MetricsRegistry`], registers its own metrics in it,
//! serves it at `GET /metrics` ([`MetricsRegistry::response`], Prometheus
//! text format 0.0.4) and wraps its router in [`HttpMetrics`], which counts
//! requests per matched route template, never per raw path.
//!
//! Every label value comes from a bounded set (route templates, a fixed list
//! of methods, status codes, static error codes, or values admitted by a
//! [`LabelCap`]), so no client can grow the output or the memory behind it.

mod http;
mod labels;
mod registry;

pub use http::{HttpMetrics, HttpMetricsLayer, HttpMetricsService, UNMATCHED_ROUTE};
pub use labels::LabelCap;
pub use registry::{
    buckets, MetricsError, MetricsRegistry, CONTENT_TYPE, METRICS_ROUTE, METRIC_PREFIX,
};

/// The metric types servers register, re-exported so they need no direct
/// `prometheus-client` dependency.
pub mod types {
    pub use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
    pub use prometheus_client::metrics::counter::Counter;
    pub use prometheus_client::metrics::family::Family;
    pub use prometheus_client::metrics::gauge::Gauge;
    pub use prometheus_client::metrics::histogram::Histogram;
}
