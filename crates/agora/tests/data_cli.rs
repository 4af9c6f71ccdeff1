//! The data market from the command line against a real `agora node`
//! (50 ms blocks, every job audited): a data node (`agora data serve`)
//! registers itself, an owner publishes an example algorithm and registers
//! a dataset the node holds, a buyer runs a job and reads its result again
//! (JSON), two validators (`agora data audit`) re-run it and pass it, and
//! an algorithm the dataset's policy does not allow is refused before any
//! escrow is taken.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use agora_ledger::Params;
use agora_types::Keypair;
use common::{run_fails, run_json, status, transfer, Agora};
use serde_json::Value;

/// A key file at `path` funded with 5,000,000 from `faucet`.
fn funded_key(rpc: &str, faucet: &Path, path: &Path) -> Keypair {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let key = Keypair::generate();
    std::fs::write(path, hex::encode(key.seed())).unwrap();
    transfer(rpc, faucet, &key.account(), 5_000_000);
    key
}

/// A node whose genesis audits every job, funding a faucet key it keeps in `dir`.
fn node(dir: &Path) -> Agora {
    let mut params = Params::default();
    params.audit.audit_rate_ppm = 1_000_000;
    common::node_with_genesis(dir, params, vec![])
}

#[test]
fn a_buyer_runs_a_job_from_the_cli_and_validators_pass_its_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(&dir.path().join("node"));
    let rpc = node.value("chain RPC");
    let faucet = dir.path().join("node/faucet.key");
    let data = dir.path().join("dataset");
    std::fs::create_dir_all(&data).unwrap();
    let mut csv = String::from("a,b\n");
    for i in 0..200 {
        csv.push_str(&format!("{i},{}\n", i * i));
    }
    std::fs::write(data.join("data.csv"), csv).unwrap();

    let host_dir = dir.path().join("host");
    let host = funded_key(&rpc, &faucet, &host_dir.join("provider.key"));
    let _serve = Agora::start(&[
        "data",
        "serve",
        "--chain",
        &rpc,
        "--data-dir",
        host_dir.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--settle-secs",
        "1",
    ]);
    let mut auditors = Vec::new();
    for name in ["v1", "v2"] {
        let vdir = dir.path().join(name);
        funded_key(&rpc, &faucet, &vdir.join("validator.key"));
        auditors.push(Agora::start(&[
            "data",
            "audit",
            "--chain",
            &rpc,
            "--data-dir",
            vdir.to_str().unwrap(),
            "--poll-ms",
            "100",
            "--grace-blocks",
            "600",
        ]));
    }

    let owner = faucet.to_str().unwrap();
    let published = run_json(&[
        "data",
        "publish-algorithm",
        "--rpc",
        &rpc,
        "--key",
        owner,
        "--example",
        "csv_stats",
        "--price",
        "5",
        "--json",
    ]);
    let algorithm = published["algorithm"].as_str().unwrap().to_string();
    run_json(&[
        "data",
        "publish-algorithm",
        "--rpc",
        &rpc,
        "--key",
        owner,
        "--example",
        "kmeans",
        "--json",
    ]);
    let host_hex = host.account().to_hex();
    let registered = run_json(&[
        "data",
        "register",
        "--rpc",
        &rpc,
        "--key",
        owner,
        "--dir",
        data.to_str().unwrap(),
        "--name",
        "squares",
        "--host",
        &host_hex,
        "--allow",
        "csv_stats",
        "--price-per-run",
        "100",
        "--price-per-mfuel",
        "1",
        "--json",
    ]);
    let dataset = registered["dataset"].as_str().unwrap().to_string();
    assert_eq!(registered["files"], 1);

    let buyer_path = dir.path().join("buyer.key");
    funded_key(&rpc, &faucet, &buyer_path);
    let buyer_key = buyer_path.to_str().unwrap();
    let got = run_json(&[
        "data",
        "run",
        "--rpc",
        &rpc,
        "--key",
        buyer_key,
        "--dataset",
        &dataset,
        "--example",
        "csv_stats",
    ]);
    assert_eq!(got["status"], "success", "{got}");
    assert_eq!(got["receipt"]["receipt"]["algorithm"], algorithm.as_str());
    let output: Value = serde_json::from_str(got["output"].as_str().unwrap()).unwrap();
    assert_eq!(output["rows"], 200);
    assert_eq!(output["columns"][1]["max"], 199.0 * 199.0);
    let job = got["job"].as_str().unwrap().to_string();
    let again = run_json(&[
        "data", "result", "--rpc", &rpc, "--key", buyer_key, "--job", &job, "--host", &host_hex,
    ]);
    assert_eq!(again["receipt"], got["receipt"]);
    // Another key cannot read the buyer's result.
    run_fails(
        &[
            "data", "result", "--rpc", &rpc, "--key", owner, "--job", &job, "--host", &host_hex,
        ],
        "403",
    );

    // The policy allows csv_stats only: kmeans is refused on chain, before escrow.
    run_fails(
        &[
            "data",
            "run",
            "--rpc",
            &rpc,
            "--key",
            buyer_key,
            "--dataset",
            &dataset,
            "--example",
            "kmeans",
        ],
        "policy",
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = status(&rpc);
        let passed = s["providers"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["id"] == host_hex.as_str()))
            .and_then(|p| p["audits_passed"].as_u64())
            .unwrap_or(0);
        if passed == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job's audit never passed: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The buyer checks its receipt against the settled one: an honest host's match.
    let receipt_path = dir.path().join("run.json");
    std::fs::write(&receipt_path, got.to_string()).unwrap();
    let checked = run_json(&[
        "data",
        "check",
        "--rpc",
        &rpc,
        "--key",
        buyer_key,
        "--receipt",
        receipt_path.to_str().unwrap(),
    ]);
    assert_eq!(checked["verdict"], "matches", "{checked}");
}
