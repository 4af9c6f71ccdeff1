//! The gateway behind `agora_tasks::serve` over real sockets: requests
//! beyond the in-flight cap and completions with no head in time are
//! refused in OpenAI's error shape (503 with `retry-after`, 504), a running
//! stream is not cut, and the gateway recovers.

mod common;

use std::time::Duration;

use agora_gateway::{serve_limits, Gateway, GatewayConfig, Snapshot};
use agora_tasks::ServeLimits;
use agora_types::Price;
use common::{model, stub, Script, TestDirectory};
use serde_json::{json, Value};

const PRICE: Price = Price {
    input_per_1k: 1_000,
    output_per_1k: 2_000,
};

/// Serve a gateway over one provider running `script`, under `limits`.
async fn serve_gateway(script: Script, limits: ServeLimits) -> String {
    let provider = stub(script, PRICE).await;
    let m = model("tiny");
    let directory = TestDirectory::default();
    directory.set(Some(Snapshot {
        chain_id: common::CHAIN_ID.into(),
        providers: vec![provider.info(&[m.id])],
        models: vec![m],
    }));
    let config = GatewayConfig {
        provider_idle_timeout: Duration::from_secs(60),
        ..GatewayConfig::default()
    };
    let gateway = Gateway::new(directory, config);
    gateway.refresh().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = gateway.router();
    tokio::spawn(agora_tasks::serve(
        listener,
        router,
        limits,
        std::future::pending(),
    ));
    base
}

fn completion(stream: bool) -> Value {
    json!({"model": "tiny", "prompt": "hi", "max_tokens": 4, "stream": stream})
}

/// OpenAI's error shape, with the expected code.
fn assert_openai_error(body: &Value, code: &str) {
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert_eq!(error["type"], "server_error", "{body}");
    assert!(error.as_object().unwrap().contains_key("param"), "{body}");
    assert_eq!(error["code"], code, "{body}");
}

#[tokio::test]
async fn requests_beyond_the_cap_get_an_openai_503_and_the_gateway_recovers() {
    let limits = ServeLimits {
        max_in_flight: 1,
        ..serve_limits()
    };
    let base = serve_gateway(Script::Stall, limits).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/completions");
    // A stream whose provider stalls after one delta holds the only permit.
    let mut streaming = http
        .post(&url)
        .json(&completion(true))
        .send()
        .await
        .unwrap();
    assert_eq!(streaming.status(), 200);
    let first = streaming.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data:"));
    let refused = http
        .post(&url)
        .json(&completion(true))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_openai_error(&refused.json().await.unwrap(), "overloaded");
    let models = http.get(format!("{base}/v1/models")).send().await.unwrap();
    assert_eq!(models.status(), 503);
    // The client goes away: its permit comes back.
    drop(streaming);
    let recovered = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let r = http.get(format!("{base}/v1/models")).send().await.unwrap();
            if r.status() == 200 {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(recovered.is_ok(), "the permit never came back");
}

#[tokio::test]
async fn a_completion_without_a_head_in_time_gets_an_openai_504() {
    let limits = ServeLimits {
        response_head: Duration::from_millis(300),
        ..serve_limits()
    };
    let base = serve_gateway(Script::Stall, limits).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/completions");
    // Not streamed: the head waits for the whole generation, which stalls.
    let late = http
        .post(&url)
        .json(&completion(false))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 504);
    assert_openai_error(&late.json().await.unwrap(), "timeout");
    // Streamed: the head goes out at once and the stream is not cut by the
    // deadline; it outlives it by far and still carries the first delta.
    let mut streaming = http
        .post(&url)
        .json(&completion(true))
        .send()
        .await
        .unwrap();
    assert_eq!(streaming.status(), 200);
    let first = streaming.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data:"));
    let next = tokio::time::timeout(Duration::from_secs(1), streaming.chunk()).await;
    assert!(
        next.is_err(),
        "the stream ended instead of staying open: {next:?}"
    );
}

#[test]
fn refusals_use_openai_statuses() {
    let busy = agora_gateway::ApiError::refused(agora_tasks::Refusal::Overloaded(3));
    assert_eq!(busy.status, 503);
    assert_eq!(busy.retry_after, Some(1));
    let late =
        agora_gateway::ApiError::refused(agora_tasks::Refusal::TimedOut(Duration::from_secs(1)));
    assert_eq!(late.status, 504);
    assert_eq!(late.code, "timeout");
    // One client over its share: OpenAI's rate-limit answer, which clients back off from.
    let greedy = agora_gateway::ApiError::refused(agora_tasks::Refusal::ClientBusy(256));
    assert_eq!(greedy.status, 429);
    assert_eq!(greedy.code, "rate_limit_exceeded");
    assert_eq!(greedy.body()["error"]["type"], "rate_limit_error");
    assert_eq!(greedy.retry_after, Some(1));
}
