//! `GET /metrics` on a gateway over loopback HTTP, against scripted
//! providers: request counts by route template, completion metrics,
//! provider failures by kind, and nothing secret in the output.

mod common;

use agora_gateway::{GatewayConfig, Snapshot};
use agora_types::Price;
use common::*;
use serde_json::json;

const PRICE: Price = Price {
    input_per_1k: 1000,
    output_per_1k: 2000,
};
const KEY: &str = "sk-agora-metrics-test-secret";
const PROMPT: &str = "a prompt nobody may read in the metrics";

fn snapshot(stubs: &[&Stub]) -> Snapshot {
    let m = model("tiny");
    Snapshot {
        chain_id: CHAIN_ID.into(),
        providers: stubs.iter().map(|s| s.info(&[m.id])).collect(),
        models: vec![m],
    }
}

async fn post(gw: &Running, stream: bool) -> reqwest::Response {
    let body = json!({"model": "tiny", "stream": stream,
        "messages": [{"role": "user", "content": PROMPT}]});
    gw.http
        .post(format!("{}/v1/chat/completions", gw.base))
        .bearer_auth(KEY)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Whether the scrape has exactly this sample line.
fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn metrics_count_routes_jobs_and_failures_without_secrets() {
    let good = stub(Script::Deltas(vec!["a", "b", "c"]), PRICE).await;
    // An open gateway: the bearer key is sent and must never show up.
    let config = GatewayConfig::default();
    let gw = gateway_with(Some(snapshot(&[&good])), config.clone()).await;
    for _ in 0..3 {
        let resp = post(&gw, true).await;
        assert_eq!(resp.status(), 200);
        assert!(text(resp).await.contains("[DONE]"));
    }
    for _ in 0..2 {
        assert_eq!(post(&gw, false).await.status(), 200);
    }
    for i in 0..50 {
        assert_eq!(gw.get(&format!("/v1/models/nope-{i}")).await.status(), 404);
        assert_eq!(gw.get(&format!("/hostile/{i}")).await.status(), 404);
    }
    gw.gateway.metrics().record_spend("key-a1", 17);
    gw.gateway.metrics().set_remaining_budget("key-a1", 983);

    // No API key needed to scrape.
    let resp = gw.get("/metrics").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], agora_metrics::CONTENT_TYPE);
    let metrics = text(resp).await;
    for line in [
        r#"agora_http_requests_total{route="/v1/chat/completions",method="POST",status="200"} 5"#,
        r#"agora_http_requests_total{route="/v1/models/{*id}",method="GET",status="404"} 50"#,
        r#"agora_http_requests_total{route="unmatched",method="GET",status="404"} 50"#,
        "agora_gateway_completion_tokens_total 15",
        r#"agora_gateway_time_to_first_token_seconds_count{stream="true"} 3"#,
        r#"agora_gateway_time_to_first_token_seconds_count{stream="false"} 2"#,
        r#"agora_gateway_spend_total{key="key-a1"} 17"#,
        r#"agora_gateway_remaining_budget{key="key-a1"} 983"#,
    ] {
        assert!(has(&metrics, line), "no {line} in\n{metrics}");
    }
    assert!(metrics.contains("# TYPE agora_gateway_tokens_per_second histogram"));
    assert!(!metrics.contains("nope-") && !metrics.contains("hostile"));
    assert!(!metrics.contains(KEY) && !metrics.contains("sk-agora"));
    assert!(!metrics.contains(PROMPT));

    // A provider that errors mid-job and one that is down.
    let broken = stub(Script::ErrorAfterOne, PRICE).await;
    let gw = gateway_with(Some(snapshot(&[&broken])), config.clone()).await;
    assert_eq!(post(&gw, false).await.status(), 502);
    let mut down = snapshot(&[&good]);
    down.providers[0].endpoint = format!("http://{}", dead_addr());
    let gw2 = gateway_with(Some(down), config).await;
    assert_eq!(post(&gw2, false).await.status(), 503);
    let broken_metrics = text(gw.get("/metrics").await).await;
    let line = r#"agora_gateway_provider_failures_total{kind="job_error"} 1"#;
    assert!(has(&broken_metrics, line), "{broken_metrics}");
    let down_metrics = text(gw2.get("/metrics").await).await;
    let line = r#"agora_gateway_provider_failures_total{kind="unavailable"} 1"#;
    assert!(has(&down_metrics, line), "{down_metrics}");
}
