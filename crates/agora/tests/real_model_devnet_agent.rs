//! The example agent on a real devnet (`agora devnet --agent`): it
//! registers on chain with its own key, summarises the audits of each span
//! of blocks with the real default model through the gateway, paying with
//! its own API key (each summary's log entry names the job's receipt), and
//! anchors its log; the log verifies against the chain's anchors and a
//! tampered copy does not; a paying client rates it, and only that client
//! can; and a validation request for the agent's job (nothing is sampled)
//! has the devnet's validators replay it and pass it.

mod common;

use std::time::{Duration, Instant};

use agora_types::Keypair;
use serde_json::Value;

#[test]
fn the_example_agent_pays_summarises_logs_anchors_and_is_rated() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet_with(
        dir.path(),
        &[
            "--threads",
            "1",
            "--no-embeddings",
            "--no-data",
            "--agent",
            "--agent-blocks",
            "5",
            // Nothing is sampled: the only audit is the one requested below.
            "--audit-rate-ppm",
            "0",
        ],
    );
    let rpc = devnet.value("chain RPC");
    let agent = devnet.value("agent");
    let log = devnet.value("agent log");
    let faucet = devnet.value("faucet key");

    let listed = common::run_json(&[
        "agent",
        "list",
        "--rpc",
        &rpc,
        "--capability",
        "summarise",
        "--json",
    ]);
    assert_eq!(listed[0]["id"], agent.as_str(), "{listed}");

    // Wait until a summary is logged and anchored.
    let deadline = Instant::now() + Duration::from_secs(240);
    let shown = loop {
        let shown = common::run_json(&["agent", "show", "--rpc", &rpc, "--id", &agent, "--json"]);
        let anchored = shown["agent"]["anchors"]
            .as_array()
            .is_some_and(|a| !a.is_empty());
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if anchored && text.contains("\"summarise\"") {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "no anchored summary: {shown}\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let copy = dir.path().join("copy.log");
    std::fs::copy(&log, &copy).unwrap();
    let copy_path = copy.to_str().unwrap();
    let report = common::run_json(&[
        "agent", "log", "verify", "--rpc", &rpc, "--log", copy_path, "--json",
    ]);
    assert!(report["anchored"].as_u64().unwrap() >= 2, "{report}");
    let entries: Vec<Value> = std::fs::read_to_string(&copy)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries[0]["entry"]["action"], "register");
    let summary = entries
        .iter()
        .find(|e| e["entry"]["action"] == "summarise")
        .unwrap();
    assert_eq!(
        summary["entry"]["receipts"].as_array().unwrap().len(),
        1,
        "a summary names the receipt of the job it paid for"
    );
    let detail: Value = serde_json::from_str(summary["entry"]["detail"].as_str().unwrap()).unwrap();
    assert!(!detail["summary"].as_str().unwrap().is_empty(), "{detail}");
    assert!(
        shown["agent"]["profile"]["models"]
            .as_array()
            .unwrap()
            .len()
            == 1
    );

    // A tampered copy: the summary rewritten.
    let tampered: Vec<String> = std::fs::read_to_string(&copy)
        .unwrap()
        .lines()
        .map(|l| {
            if l.contains("\"summarise\"") {
                l.replacen("summary", "sumary", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&copy, tampered.join("\n")).unwrap();
    common::run_fails(
        &["agent", "log", "verify", "--rpc", &rpc, "--log", copy_path],
        "was edited",
    );

    // The faucet pays the agent and rates it; another key cannot use that payment.
    let paid = common::run_json(&[
        "agent", "pay", "--rpc", &rpc, "--key", &faucet, "--agent", &agent, "--amount", "100",
        "--json",
    ]);
    let payment = paid["payment"].as_str().unwrap().to_string();
    let stranger = dir.path().join("stranger.key");
    let key = Keypair::generate();
    std::fs::write(&stranger, hex::encode(key.seed())).unwrap();
    common::transfer(
        &rpc,
        std::path::Path::new(&faucet),
        &key.account(),
        1_000_000,
    );
    common::run_fails(
        &[
            "agent",
            "feedback",
            "--rpc",
            &rpc,
            "--key",
            stranger.to_str().unwrap(),
            "--payment",
            &payment,
            "--score",
            "0",
        ],
        "only the payer",
    );
    common::run_json(&[
        "agent",
        "feedback",
        "--rpc",
        &rpc,
        "--key",
        &faucet,
        "--payment",
        &payment,
        "--score",
        "80",
        "--json",
    ]);
    let shown = common::run_json(&["agent", "show", "--rpc", &rpc, "--id", &agent, "--json"]);
    assert_eq!(shown["agent"]["reputation"]["count"], 1);
    assert_eq!(shown["agent"]["reputation"]["score_sum"], 80);

    // Ask for the agent's job to be audited; the devnet's validators replay it.
    let job = summary["entry"]["receipts"][0]
        .as_str()
        .unwrap()
        .to_string();
    let gateway = devnet.value("OpenAI base URL");
    let deadline = Instant::now() + Duration::from_secs(120);
    let requested = loop {
        let (ok, out, err) = common::run(&[
            "agent",
            "request-validation",
            "--rpc",
            &rpc,
            "--key",
            &faucet,
            "--receipt",
            &job,
            "--gateway",
            &gateway,
            "--json",
        ]);
        if ok {
            break serde_json::from_str::<Value>(&out).unwrap();
        }
        // Until the provider commits the job, and for the one block before
        // the chain draws the new batch's audits, the request must wait.
        let early =
            err.contains("not in a committed batch yet") || err.contains("audits_not_drawn");
        assert!(early && Instant::now() < deadline, "{err}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(requested["auditor"].is_string(), "{requested}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = common::status(&rpc);
        let passed: u64 = s["providers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["audits_passed"].as_u64())
            .sum();
        if passed == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the requested audit never passed: {s}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
