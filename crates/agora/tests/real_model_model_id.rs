//! A provider joins with a model id alone: `agora provider --model-id ID`
//! fetches the weights the chain registered under that id from the provider
//! already serving them, verified chunk group by chunk group, then registers
//! and serves jobs with them; a restart finds them in its blob store.

mod common;

use agora_testkit::model;
use common::Agora;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_provider_fetches_the_model_by_id_from_the_first_and_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let node = common::fast_node(&dir.path().join("node"));
    let rpc = node.value("chain RPC");
    let provider = |name: &str, model_flag: &str, model_value: &str| {
        let key = common::funded_provider_key(
            &rpc,
            &dir.path().join("node/faucet.key"),
            &dir.path().join(name),
        );
        let args = [
            "provider",
            "--chain",
            &rpc,
            model_flag,
            model_value,
            "--data-dir",
            &path(name),
            "--http",
            "127.0.0.1:0",
            "--threads",
            "2",
        ];
        (key, Agora::start(&args))
    };
    let id = model::id().to_hex();
    let (_first_key, _first) = provider("first", "--model", model::path().to_str().unwrap());
    // An id the chain does not know is refused with the fix.
    let (ok, _, err) = common::run(&[
        "provider",
        "--chain",
        &rpc,
        "--model-id",
        &"ab".repeat(32),
        "--data-dir",
        &path("none"),
    ]);
    assert!(!ok);
    assert!(err.contains("publish it first"), "{err}");

    let (second_key, mut second) = provider("second", "--model-id", &id);
    let fetched = dir.path().join("second/blobs/blobs").join(&id);
    assert_eq!(
        agora_models::model_id(&fetched).unwrap(),
        model::id(),
        "the fetched weights are the registered model"
    );

    // It serves jobs: route one to it alone.
    let gateway = Agora::start(&["gateway", "--chain", &rpc, "--http", "127.0.0.1:0"]);
    let base = gateway.value("OpenAI base URL");
    let resp = reqwest::Client::new()
        .post(format!("{base}/chat/completions"))
        .json(&json!({
            "model": "smollm2-135m-instruct", "max_tokens": 8, "seed": 1,
            "messages": [{"role": "user", "content": "Say hi."}],
            "provider": {"only": [second_key.account().to_hex()]},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-agora-provider"],
        second_key.account().to_hex().as_str()
    );

    // A restart needs no peer: the weights are in its store.
    second.kill();
    let modified = std::fs::metadata(&fetched).unwrap().modified().unwrap();
    let args = [
        "provider",
        "--chain",
        &rpc,
        "--model-id",
        &id,
        "--data-dir",
        &path("second"),
        "--http",
        "127.0.0.1:0",
        "--threads",
        "2",
    ];
    let _again = Agora::start(&args);
    assert_eq!(
        std::fs::metadata(&fetched).unwrap().modified().unwrap(),
        modified
    );
}
