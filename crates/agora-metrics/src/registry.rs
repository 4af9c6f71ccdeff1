//! The registry a server's metrics live in, and its text rendering.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::http::header::CONTENT_TYPE as CONTENT_TYPE_HEADER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

/// Where every agora server serves its metrics.
pub const METRICS_ROUTE: &str = "/metrics";
/// Prefix of every metric name (`agora_...`), so agora's series are easy to select.
pub const METRIC_PREFIX: &str = "agora";
/// `Content-Type` of the rendered metrics: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Why a metric could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The name is already registered as another metric type.
    #[error("metric {0:?} is already registered with another type")]
    TypeClash(String),
}

/// Histogram bucket bounds shared by the servers.
pub mod buckets {
    /// Seconds a request or a job phase takes: 1 ms to 2 min.
    pub const SECONDS: &[f64] = &[
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
    ];
    /// Tokens generated per second by one job: 1 to 4,096.
    pub const TOKENS_PER_SECOND: &[f64] = &[
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
    ];
}

/// The registered metrics, by name, so a second registration returns the first.
struct Inner {
    registry: Registry,
    known: HashMap<String, Box<dyn Any + Send + Sync>>,
}

/// A server's metrics: registered once, shared by clones, rendered on scrape.
/// Registering a name twice hands back the metric registered first, so
/// building a router twice never duplicates a series.
#[derive(Clone)]
pub struct MetricsRegistry {
    inner: Arc<Mutex<Inner>>,
}

impl Default for MetricsRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MetricsRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MetricsRegistry({} metrics)", self.lock().known.len())
    }
}

impl MetricsRegistry {
    /// An empty registry whose metric names start with [`METRIC_PREFIX`].
    pub fn new() -> Self {
        MetricsRegistry {
            inner: Arc::new(Mutex::new(Inner {
                registry: Registry::with_prefix(METRIC_PREFIX),
                known: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update under the lock is a single insertion; a poisoned lock is still whole.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The metric registered as `name`, registering `make()` if there is none.
    /// Counters are named without `_total` and help texts without a final
    /// period: the encoding appends both.
    pub fn get_or_register<M>(
        &self,
        name: &str,
        help: &str,
        make: impl FnOnce() -> M,
    ) -> Result<M, MetricsError>
    where
        M: Metric + Clone + Send + Sync + 'static,
    {
        let mut inner = self.lock();
        if let Some(known) = inner.known.get(name) {
            return known
                .downcast_ref::<M>()
                .cloned()
                .ok_or_else(|| MetricsError::TypeClash(name.to_string()));
        }
        let metric = make();
        inner.registry.register(name, help, metric.clone());
        inner
            .known
            .insert(name.to_string(), Box::new(metric.clone()));
        Ok(metric)
    }

    /// [`Self::get_or_register`] for metrics whose names a crate owns.
    ///
    /// # Panics
    /// If `name` was registered with another type: two metrics of one
    /// server share a name, a bug caught by that server's first test.
    pub fn metric<M>(&self, name: &str, help: &str, make: impl FnOnce() -> M) -> M
    where
        M: Metric + Clone + Send + Sync + 'static,
    {
        self.get_or_register(name, help, make)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A counter (rendered as `agora_{name}_total`); panics as [`Self::metric`].
    pub fn counter(&self, name: &str, help: &str) -> Counter {
        self.metric(name, help, Counter::default)
    }

    /// A gauge; panics as [`Self::metric`].
    pub fn gauge(&self, name: &str, help: &str) -> Gauge {
        self.metric(name, help, Gauge::default)
    }

    /// A histogram with the given bucket bounds; panics as [`Self::metric`].
    pub fn histogram(&self, name: &str, help: &str, bounds: &[f64]) -> Histogram {
        self.metric(name, help, || Histogram::new(bounds.iter().copied()))
    }

    /// Every metric in Prometheus text format 0.0.4.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.lock().registry);
        text
    }

    /// [`Self::render`] as an HTTP response with the right `Content-Type`.
    pub fn response(&self) -> Response {
        let mut response = (StatusCode::OK, self.render()).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(CONTENT_TYPE));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_registers_once_and_a_type_clash_is_refused() {
        let registry = MetricsRegistry::new();
        let first = registry.counter("jobs", "Jobs.");
        let second = registry.counter("jobs", "Jobs.");
        first.inc();
        second.inc();
        let text = registry.render();
        assert_eq!(
            text.matches("# TYPE agora_jobs_total counter").count(),
            1,
            "{text}"
        );
        assert!(text.contains("agora_jobs_total 2"), "{text}");
        let clash = registry.get_or_register("jobs", "Jobs.", Gauge::<i64>::default);
        assert!(matches!(clash, Err(MetricsError::TypeClash(_))));
    }

    #[test]
    fn histograms_render_their_buckets() {
        let registry = MetricsRegistry::new();
        let h = registry.histogram("wait_seconds", "Waits.", buckets::SECONDS);
        h.observe(0.3);
        let text = registry.render();
        assert!(
            text.contains("agora_wait_seconds_bucket{le=\"0.25\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("agora_wait_seconds_bucket{le=\"0.5\"} 1"),
            "{text}"
        );
        assert!(text.contains("agora_wait_seconds_count 1"), "{text}");
    }
}
