//! Per-route HTTP metrics: a tower layer that counts every request by its
//! matched route template (axum's [`MatchedPath`]), method and status, and
//! times it. Requests no route matched share `route="unmatched"`, and
//! methods outside the standard set share `method="other"`, so hostile
//! paths and methods add no series.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::{buckets, MetricsRegistry};

/// The `route` label of requests that matched no route (the fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Labels of `agora_http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

/// Labels of `agora_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

type Durations = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(buckets::SECONDS.iter().copied())
}

/// Request counts and latencies of one server, by route template.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Durations,
}

/// The method as a label value from a fixed set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl HttpMetrics {
    /// `agora_http_requests_total{route,method,status}` and
    /// `agora_http_request_duration_seconds{route}` in `registry`.
    pub fn new(registry: &MetricsRegistry) -> Self {
        let requests = registry.metric(
            "http_requests",
            "HTTP requests answered, by matched route template, method and status",
            Family::default,
        );
        let durations = registry.metric(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response head, by matched route template",
            || Durations::new_with_constructor(duration_histogram),
        );
        HttpMetrics {
            requests,
            durations,
        }
    }

    /// The tower layer recording these metrics. Add it with
    /// `Router::layer` after every route and fallback, so it sees each
    /// request with its [`MatchedPath`].
    pub fn layer(&self) -> HttpMetricsLayer {
        HttpMetricsLayer {
            metrics: self.clone(),
        }
    }

    fn record(&self, route: String, method: &'static str, status: u16, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        let route = RouteLabels { route };
        self.durations.get_or_create(&route).observe(seconds);
        let labels = RequestLabels {
            route: route.route,
            method,
            status,
        };
        self.requests.get_or_create(&labels).inc();
    }
}

/// Wraps a service in [`HttpMetricsService`].
#[derive(Clone, Debug)]
pub struct HttpMetricsLayer {
    metrics: HttpMetrics,
}

impl<S> tower::Layer<S> for HttpMetricsLayer {
    type Service = HttpMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// A service whose every answered request is counted and timed.
#[derive(Clone, Debug)]
pub struct HttpMetricsService<S> {
    inner: S,
    metrics: HttpMetrics,
}

impl<S> tower::Service<Request> for HttpMetricsService<S>
where
    S: tower::Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
            .to_string();
        let method = method_label(request.method());
        let metrics = self.metrics.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            metrics.record(route, method, response.status().as_u16(), started);
            Ok(response)
        })
    }
}
