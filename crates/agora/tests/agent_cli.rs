//! Agents from the command line against a real `agora node` (50 ms
//! blocks): an agent registers, is found by capability and model, updates
//! its profile, keeps a signed action log and anchors it on chain; the log
//! verifies, one entry is proven, and an edited, a dropped or a reordered
//! entry makes `agora agent log verify` fail naming it. A paying client
//! rates the agent once; the agent cannot pay itself, a stranger cannot
//! rate with another's payment, and the client's second rating is refused.

mod common;

use std::path::Path;

use agora_ledger::Params;
use agora_types::{AccountId, Hash32, Keypair, ModelEntry};
use common::{run, run_fails, run_json, transfer, Agora};
use serde_json::Value;

fn model() -> ModelEntry {
    ModelEntry {
        id: Hash32::digest(b"agent cli model"),
        name: "smol".into(),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: 1,
        license: "Apache-2.0".into(),
        owner: AccountId([0; 32]),
        royalty_ppm: 0,
        tokenizer_hash: Default::default(),
    }
}

fn node(dir: &Path) -> Agora {
    common::node_with_genesis(dir, Params::default(), vec![model()])
}

fn key_file(rpc: &str, faucet: &Path, path: &Path) -> Keypair {
    let key = Keypair::generate();
    std::fs::write(path, hex::encode(key.seed())).unwrap();
    transfer(rpc, faucet, &key.account(), 1_000_000);
    key
}

#[test]
fn an_agent_registers_logs_anchors_and_is_rated_only_by_paying_clients() {
    let dir = tempfile::tempdir().unwrap();
    let node = node(&dir.path().join("node"));
    let rpc = node.value("chain RPC");
    let faucet = dir.path().join("node/faucet.key");
    let (agent_path, client_path, stranger_path) = (
        dir.path().join("agent.key"),
        dir.path().join("client.key"),
        dir.path().join("stranger.key"),
    );
    let agent = key_file(&rpc, &faucet, &agent_path);
    key_file(&rpc, &faucet, &client_path);
    key_file(&rpc, &faucet, &stranger_path);
    let (agent_key, client_key, stranger_key) = (
        agent_path.to_str().unwrap(),
        client_path.to_str().unwrap(),
        stranger_path.to_str().unwrap(),
    );
    let id = agent.account().to_hex();

    let registered = run_json(&[
        "agent",
        "register",
        "--rpc",
        &rpc,
        "--key",
        agent_key,
        "--name",
        "watcher",
        "--endpoint",
        "http://127.0.0.1:7000=openai-chat",
        "--capability",
        "summarise",
        "--model",
        "smol",
        "--json",
    ]);
    assert_eq!(registered["sequence"], 0);
    let found = run_json(&[
        "agent",
        "list",
        "--rpc",
        &rpc,
        "--capability",
        "summarise",
        "--model",
        "smol",
        "--json",
    ]);
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], id.as_str());
    let none = run_json(&[
        "agent",
        "list",
        "--rpc",
        &rpc,
        "--capability",
        "trading",
        "--json",
    ]);
    assert!(none.as_array().unwrap().is_empty());
    let updated = run_json(&[
        "agent",
        "update",
        "--rpc",
        &rpc,
        "--key",
        agent_key,
        "--name",
        "watcher-2",
        "--capability",
        "summarise",
        "--capability",
        "chain-watch",
        "--json",
    ]);
    assert_eq!(updated["sequence"], 1);

    // The log: three entries, anchored; then a fourth, unanchored.
    let log = dir.path().join("agent.log");
    let log_path = log.to_str().unwrap();
    for action in ["start", "summarise", "pay"] {
        run_json(&[
            "agent", "log", "append", "--key", agent_key, "--log", log_path, "--action", action,
            "--detail", "{}",
        ]);
    }
    let anchored = run_json(&[
        "agent", "log", "anchor", "--rpc", &rpc, "--key", agent_key, "--log", log_path, "--json",
    ]);
    assert_eq!(anchored["count"], 3);
    run_json(&[
        "agent", "log", "append", "--key", agent_key, "--log", log_path, "--action", "idle",
    ]);
    let report = run_json(&[
        "agent", "log", "verify", "--rpc", &rpc, "--log", log_path, "--json",
    ]);
    assert_eq!(
        (report["entries"].as_u64(), report["anchored"].as_u64()),
        (Some(4), Some(3))
    );

    let proof = dir.path().join("proof.json");
    let (ok, out, err) = run(&[
        "agent", "log", "prove", "--rpc", &rpc, "--log", log_path, "--index", "1",
    ]);
    assert!(ok, "{err}");
    std::fs::write(&proof, out).unwrap();
    let checked = run_json(&[
        "agent",
        "log",
        "verify-entry",
        "--rpc",
        &rpc,
        "--proof",
        proof.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(checked["verified"], true);

    // Tampered copies of the log fail, naming the fault.
    let lines: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let tampered = dir.path().join("tampered.log");
    let tampered_path = tampered.to_str().unwrap();
    let verify = [
        "agent",
        "log",
        "verify",
        "--rpc",
        &rpc,
        "--log",
        tampered_path,
    ];
    let edited: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 1 {
                l.replace("summarise", "summarize")
            } else {
                l.clone()
            }
        })
        .collect();
    std::fs::write(&tampered, edited.join("\n")).unwrap();
    run_fails(&verify, "entry 1 was edited");
    let dropped = [&lines[0], &lines[2], &lines[3]].map(|s| s.as_str());
    std::fs::write(&tampered, dropped.join("\n")).unwrap();
    run_fails(&verify, "entries were dropped or reordered");
    let reordered = [&lines[0], &lines[2], &lines[1], &lines[3]].map(|s| s.as_str());
    std::fs::write(&tampered, reordered.join("\n")).unwrap();
    run_fails(&verify, "entry 1 says it is entry 2");
    std::fs::write(&tampered, lines[..2].join("\n")).unwrap();
    run_fails(&verify, "entries were dropped");
    let mut forged_proof: Value = serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    forged_proof["entry"]["entry"]["detail"] = "forged".into();
    std::fs::write(&proof, forged_proof.to_string()).unwrap();
    run_fails(
        &[
            "agent",
            "log",
            "verify-entry",
            "--rpc",
            &rpc,
            "--proof",
            proof.to_str().unwrap(),
        ],
        "does not verify",
    );

    // Reputation: only a paying client, once per payment.
    run_fails(
        &[
            "agent", "pay", "--rpc", &rpc, "--key", agent_key, "--agent", &id, "--amount", "100",
        ],
        "cannot pay itself",
    );
    let paid = run_json(&[
        "agent", "pay", "--rpc", &rpc, "--key", client_key, "--agent", &id, "--amount", "100",
        "--json",
    ]);
    let payment = paid["payment"].as_str().unwrap().to_string();
    run_fails(
        &[
            "agent",
            "feedback",
            "--rpc",
            &rpc,
            "--key",
            stranger_key,
            "--payment",
            &payment,
            "--score",
            "0",
        ],
        "only the payer",
    );
    run_json(&[
        "agent",
        "feedback",
        "--rpc",
        &rpc,
        "--key",
        client_key,
        "--payment",
        &payment,
        "--score",
        "90",
        "--tag",
        "summary",
        "--json",
    ]);
    run_fails(
        &[
            "agent",
            "feedback",
            "--rpc",
            &rpc,
            "--key",
            client_key,
            "--payment",
            &payment,
            "--score",
            "100",
        ],
        "entitles no feedback",
    );
    let shown = run_json(&["agent", "show", "--rpc", &rpc, "--id", &id, "--json"]);
    let reputation = &shown["agent"]["reputation"];
    assert_eq!(
        (
            reputation["count"].as_u64(),
            reputation["score_sum"].as_u64()
        ),
        (Some(1), Some(90))
    );
    assert_eq!(shown["agent"]["profile"]["name"], "watcher-2");
    assert_eq!(shown["agent"]["anchors"][0]["count"], 3);
    assert_eq!(shown["feedback"][0]["score"], 90);
    assert_eq!(shown["live"], true);
}
