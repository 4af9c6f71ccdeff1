//! The HTTP middleware on a real axum router (in-process, `oneshot`):
//! requests are counted by route template, hostile paths and methods add
//! no series, and `/metrics` answers in Prometheus text format.

use agora_metrics::{HttpMetrics, MetricsRegistry, CONTENT_TYPE, METRICS_ROUTE};
use axum::body::{to_bytes, Body};
use axum::http::{header, Method, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use tower::ServiceExt;

fn app(registry: &MetricsRegistry) -> Router {
    let scraped = registry.clone();
    Router::new()
        .route(
            "/items/{id}",
            get(|| async { "item" }).post(|| async { "made" }),
        )
        .route(
            METRICS_ROUTE,
            get(move || async move { scraped.response() }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such route") })
        .layer(HttpMetrics::new(registry).layer())
}

async fn call(app: &Router, method: Method, uri: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Lines of the scrape that are samples of `name` (not comments).
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .collect()
}

#[tokio::test]
async fn requests_are_counted_by_route_template_method_and_status() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    for i in 0..5 {
        assert_eq!(
            call(&app, Method::GET, &format!("/items/{i}")).await.0,
            StatusCode::OK
        );
    }
    call(&app, Method::POST, "/items/x").await;
    assert_eq!(
        call(&app, Method::DELETE, "/items/x").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );

    let request = Request::get(METRICS_ROUTE).body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    let get = r#"agora_http_requests_total{route="/items/{id}",method="GET",status="200"} 5"#;
    let post = r#"agora_http_requests_total{route="/items/{id}",method="POST",status="200"} 1"#;
    let wrong = r#"agora_http_requests_total{route="/items/{id}",method="DELETE",status="405"} 1"#;
    for line in [get, post, wrong] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    let count = r#"agora_http_request_duration_seconds_count{route="/items/{id}"} 7"#;
    assert!(text.lines().any(|l| l == count), "no {count} in\n{text}");
    // Raw paths never become labels.
    assert!(!text.contains("/items/3"), "{text}");
}

#[tokio::test]
async fn hostile_paths_and_methods_add_no_series() {
    let registry = MetricsRegistry::new();
    let app = app(&registry);
    for i in 0..500 {
        call(
            &app,
            Method::GET,
            &format!("/probe/{i}/%2e%2e/{}", "x".repeat(i % 50)),
        )
        .await;
        let odd = Method::from_bytes(format!("HACK{i}").as_bytes()).unwrap();
        call(&app, odd, &format!("/items/{i}")).await;
    }
    let (_, text) = call(&app, Method::GET, METRICS_ROUTE).await;
    let unmatched = r#"agora_http_requests_total{route="unmatched",method="GET",status="404"} 500"#;
    assert!(
        text.lines().any(|l| l == unmatched),
        "no {unmatched} in\n{text}"
    );
    let requests = samples(&text, "agora_http_requests_total");
    // GET unmatched 404, and the odd methods on /items/{id} as one "other" series.
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests
        .iter()
        .any(|l| l.contains(r#"method="other""#) && l.ends_with(" 500")));
    assert!(!text.contains("probe") && !text.contains("HACK"), "{text}");
    // One histogram per route seen (unmatched, /items/{id}): 16 buckets + sum + count each.
    let histograms = samples(&text, "agora_http_request_duration_seconds");
    assert_eq!(histograms.len(), 2 * 18, "{histograms:#?}");
}
