//! Each role as its own process, as a network spanning machines would run
//! them; and a provider that dies mid-request yields an error, not a hang.

mod common;

use std::time::Duration;

use agora_testkit::model;
use common::Agora;
use serde_json::json;
use sse::next_event;

/// A tiny SSE reader over reqwest's byte stream, so the test can act between events.
mod sse {
    pub async fn next_event(resp: &mut reqwest::Response, buf: &mut String) -> Option<String> {
        loop {
            if let Some(i) = buf.find("\n\n") {
                let event = buf[..i].trim().to_string();
                buf.drain(..i + 2);
                return Some(event);
            }
            match resp.chunk().await {
                Ok(Some(bytes)) => buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_roles_and_a_provider_dying_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let node = common::fast_node(&dir.path().join("node"));
    let rpc = node.value("chain RPC");
    let model = model::path();
    assert!(
        model.exists(),
        "default model missing at {}: run scripts/test.sh (it fetches the model)",
        model.display()
    );
    let model = model.to_str().unwrap();

    // An unfunded provider is told exactly what to do.
    let (ok, _, err) = common::run(&[
        "provider",
        "--chain",
        &rpc,
        "--model",
        model,
        "--data-dir",
        &path("poor"),
        "--http",
        "127.0.0.1:0",
    ]);
    assert!(!ok);
    assert!(err.contains("fund it first"), "{err}");

    // Fund a provider key, then start the provider with it.
    let key = common::funded_provider_key(
        &rpc,
        &dir.path().join("node/faucet.key"),
        &dir.path().join("prov"),
    );
    let mut provider = Agora::start(&[
        "provider",
        "--chain",
        &rpc,
        "--model",
        model,
        "--data-dir",
        &path("prov"),
        "--http",
        "127.0.0.1:0",
        "--threads",
        "2",
    ]);
    let gateway = Agora::start(&["gateway", "--chain", &rpc, "--http", "127.0.0.1:0"]);
    let base = gateway.value("OpenAI base URL");

    let status = common::status(&rpc);
    assert_eq!(
        status["providers"][0]["id"],
        key.account().to_hex().as_str()
    );
    assert_eq!(
        status["providers"][0]["endpoint"],
        provider.value("provider").as_str()
    );

    // The provider serves its model as a blob: fetch it whole, verified, with the CLI.
    let id = model::id().to_hex();
    let fetched = path("fetched.gguf");
    let (ok, out, err) = common::run(&[
        "blob",
        "get",
        &id,
        "--peer",
        &provider.value("provider"),
        "--dir",
        &path("blobs"),
        "--out",
        &fetched,
        "--json",
    ]);
    assert!(ok, "agora blob get failed: {out} {err}");
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    let size = std::fs::metadata(model::path()).unwrap().len();
    assert_eq!(got["size"], size);
    assert_eq!(got["from"][0]["bytes"], size, "{got}");
    assert_eq!(
        agora_models::model_id(std::path::Path::new(&fetched)).unwrap(),
        model::id()
    );

    let http = reqwest::Client::new();
    let request = json!({
        "model": "smollm2-135m-instruct", "stream": true, "temperature": 0, "max_tokens": 400,
        "messages": [{"role": "user", "content": "Tell a long story about a lighthouse keeper."}],
    });
    let mut resp = http
        .post(format!("{base}/chat/completions"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut buf = String::new();
    let first = next_event(&mut resp, &mut buf)
        .await
        .expect("a first chunk");
    assert!(first.starts_with("data: {"), "{first}");

    // Kill the provider mid-stream: the stream must end with an error event, promptly.
    provider.kill();
    let rest = tokio::time::timeout(Duration::from_secs(60), async {
        let mut events = Vec::new();
        while let Some(e) = next_event(&mut resp, &mut buf).await {
            events.push(e);
        }
        events
    })
    .await
    .expect("the stream hung after its provider died");
    let error = rest
        .iter()
        .find(|e| e.contains("\"error\""))
        .unwrap_or_else(|| panic!("no error event in {rest:?}"));
    let v: serde_json::Value = serde_json::from_str(error.strip_prefix("data: ").unwrap()).unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");

    // With its only provider gone, the model is unavailable: 503 in OpenAI's shape, not a hang.
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        http.post(format!("{base}/chat/completions"))
            .json(&json!({"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "hi"}]}))
            .send(),
    )
    .await
    .expect("request hung")
    .unwrap();
    assert_eq!(resp.status(), 503);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");
}
