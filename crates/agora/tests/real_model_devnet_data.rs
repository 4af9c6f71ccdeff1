//! The data market on a real devnet (every job audited): the devnet's data
//! node serves its demo dataset with the three examples allowed; a buyer
//! (the faucet key) runs each example with `agora data run` and gets its
//! output and signed receipt; the devnet's own validators (`agora
//! validator`, which re-runs data jobs beside replaying inference) pass all
//! three re-runs, read from `agora status --json`.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

#[test]
fn the_devnet_serves_audited_data_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet_with(
        dir.path(),
        &[
            "--threads",
            "1",
            "--audit-rate-ppm",
            "1000000",
            "--no-embeddings",
        ],
    );
    let rpc = devnet.value("chain RPC");
    let dataset = devnet.value("dataset");
    let host = devnet.value("data host");
    let faucet = devnet.value("faucet key");
    let runs = [
        ("csv_stats", ""),
        ("quantiles", "column=x bins=4"),
        ("kmeans", "columns=x,y k=3"),
    ];
    for (example, params) in runs {
        let (ok, out, err) = common::run(&[
            "data",
            "run",
            "--rpc",
            &rpc,
            "--key",
            &faucet,
            "--dataset",
            &dataset,
            "--example",
            example,
            "--params",
            params,
        ]);
        assert!(ok, "agora data run --example {example} failed: {err}");
        let got: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(got["status"], "success", "{example}: {got}");
        assert_eq!(got["receipt"]["host"], host.as_str());
        let output: Value = serde_json::from_str(got["output"].as_str().unwrap()).unwrap();
        assert!(output.is_object(), "{example}: {output}");
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let s = common::status(&rpc);
        let entry = s["providers"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["id"] == host.as_str()).cloned());
        let passed = entry
            .as_ref()
            .and_then(|p| p["audits_passed"].as_u64())
            .unwrap_or(0);
        assert!(
            entry.as_ref().is_some_and(|p| p["slashed"] == false),
            "the honest data node must stay registered and unslashed: {s}"
        );
        if passed == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the data jobs' re-runs never all passed: {s}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
