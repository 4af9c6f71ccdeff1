//! A provider joins with a model id alone: `agora provider --model-id ID`
//! fetches the weights the chain registered under that id from the provider
//! already serving them, verified chunk group by chunk group, then registers
//! and serves jobs with them that pass a validator's replay audits (every
//! job audited); a restart finds them in its blob store.

mod common;

use std::time::{Duration, Instant};

use agora_testkit::model;
use common::Agora;
use serde_json::json;

/// How long the audits may take once the jobs are served (debug build, 2 cores).
const AUDIT_DEADLINE: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_provider_fetches_the_model_by_id_from_the_first_and_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    // A development genesis whose validators audit every job.
    let faucet = agora_devnet::keys::load_or_create(&dir.path().join("node/faucet.key")).unwrap();
    let mut params = agora_ledger::Params::default();
    params.audit.audit_rate_ppm = 1_000_000;
    agora_devnet::genesis::load_or_create_with(
        &dir.path().join("node/genesis.toml"),
        &[faucet.account()],
        params,
    )
    .unwrap();
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
            "--batch-secs",
            "1",
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

    // A validator replays its jobs with its own copy of the model: they pass.
    let auditor = agora_types::Keypair::generate();
    std::fs::create_dir_all(dir.path().join("validator")).unwrap();
    std::fs::write(
        dir.path().join("validator/validator.key"),
        hex::encode(auditor.seed()),
    )
    .unwrap();
    common::transfer(
        &rpc,
        &dir.path().join("node/faucet.key"),
        &auditor.account(),
        5_000_000,
    );
    let _validator = Agora::start(&[
        "validator",
        "--chain",
        &rpc,
        "--data-dir",
        &path("validator"),
        "--model",
        model::path().to_str().unwrap(),
        "--threads",
        "1",
        "--poll-ms",
        "200",
    ]);
    let second_id = second_key.account().to_hex();
    let started = Instant::now();
    let audited = loop {
        let status = common::status(&rpc);
        let entry = status["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == second_id.as_str())
            .cloned();
        if let Some(p) = entry.filter(|p| p["audits_passed"].as_u64().unwrap_or(0) >= 1) {
            break p;
        }
        assert!(
            started.elapsed() < AUDIT_DEADLINE,
            "no audit passed in {AUDIT_DEADLINE:?}: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(audited["audits_failed"], 0, "{audited:#}");
    assert_eq!(audited["slashed"], false, "{audited:#}");

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
