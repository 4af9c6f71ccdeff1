//! End to end on the real default model: a chat completion through the
//! devnet's paying gateway is proven to come from a finalized block.
//! `agora verify output` checks the text against the receipt, the
//! provider's signature, the Merkle proof into the settled voucher root
//! (the devnet's gateway pays through a channel, so its jobs reach the
//! chain in `SettleChannel` batches) and the block's finalization
//! certificate under the validator set's identity; a tampered text fails;
//! the exported C2PA-style manifest verifies offline, and a tampered one
//! does not.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use agora_chain_client::ChainClient;
use agora_types::provenance::{ReceiptRecord, VerdictEntry};
use serde_json::{json, Value};

/// How long the receipt may take to be settled and its block finalized.
const COMMIT_DEADLINE: Duration = Duration::from_secs(120);

/// Poll the gateway until the job's receipt is in a batch whose block has a
/// finalization certificate; returns the record.
async fn committed(base: &str, rpc: &str, job: &str) -> ReceiptRecord {
    let http = reqwest::Client::new();
    let chain = ChainClient::new(rpc);
    let started = Instant::now();
    loop {
        let resp = http
            .get(format!("{base}/receipts/{job}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "the gateway remembers its jobs");
        let record: ReceiptRecord = resp.json().await.unwrap();
        if let Some(b) = &record.batch {
            let finality = chain.finality(b.height).await.unwrap();
            if finality.certificate.is_some() {
                return record;
            }
        }
        assert!(
            started.elapsed() < COMMIT_DEADLINE,
            "job {job} not committed and finalized in time: {record:?}"
        );
        // The next settlement tick (every second on this devnet) is the event awaited.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A manifest edit: what it changes, the error it must cause, the change.
type Edit = (&'static str, &'static str, fn(&mut Value));

fn verify(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["verify", "output"];
    all.extend_from_slice(args);
    common::run(&all)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_is_proven_to_come_from_a_finalized_block() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet_with(
        dir.path(),
        &[
            "--threads",
            "2",
            "--auditors",
            "1",
            "--audit-rate-ppm",
            "1000000",
            "--batch-secs",
            "1",
        ],
    );
    let rpc = devnet.value("chain RPC");
    let base = devnet.value("OpenAI base URL");
    let identity = dir
        .path()
        .join("node")
        .join("consensus")
        .join("identity.hex");
    assert!(identity.is_file(), "the devnet writes its identity");

    let http = common::keyed_client(&devnet);
    let (job, answer) = common::chat_with_receipt(&http, &base, 3).await;
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let text = dir.path().join("output.txt");
    std::fs::write(&text, &content).unwrap();

    let record = committed(&base, &rpc, &job).await;
    assert_eq!(record.receipt.receipt.id.to_hex(), job);
    assert_eq!(record.provider.endpoint, devnet.value("provider"));

    // Online: every check passes, through the settlement of the channel.
    let manifest = dir.path().join("manifest.json");
    let online = [
        "--receipt",
        &job,
        "--identity",
        s(&identity),
        "--gateway",
        &base,
        "--rpc",
        &rpc,
    ];
    let mut args = online.to_vec();
    args.extend_from_slice(&["--text", s(&text), "--manifest-out", s(&manifest)]);
    let (ok, out, err) = verify(&args);
    assert!(ok, "verify output failed: {out} {err}");
    assert!(out.contains("text: matches"), "{out}");
    assert!(out.contains("SettleChannel"), "{out}");
    assert!(out.trim_end().ends_with("verified"), "{out}");

    // (e) Every job is drawn here: once the auditor's verdict is on chain
    // (GET /verdicts/{batch}), verify output reports it.
    let batch = record.batch.clone().unwrap();
    let started = Instant::now();
    loop {
        let url = format!("{rpc}/verdicts/{}", batch.batch);
        let verdicts: Vec<VerdictEntry> = reqwest::get(&url).await.unwrap().json().await.unwrap();
        if let Some(v) = verdicts.iter().find(|v| v.index == batch.index) {
            assert!(v.passed, "an honest job failed its audit: {v:?}");
            break;
        }
        assert!(started.elapsed() < COMMIT_DEADLINE, "no verdict in time");
        // The auditor's replay and its SubmitVerdict are the event awaited.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (ok, out, err) = verify(&online);
    assert!(ok, "verify output without --text failed: {out} {err}");
    assert!(out.contains("text: not checked"), "{out}");
    assert!(
        out.contains("audit: drawn, auditor") && out.contains(": passed"),
        "{out}"
    );

    // A tampered text fails.
    let tampered = dir.path().join("tampered.txt");
    std::fs::write(&tampered, format!("{content}!")).unwrap();
    let mut args = online.to_vec();
    args.extend_from_slice(&["--text", s(&tampered)]);
    let (ok, out, err) = verify(&args);
    assert!(!ok, "a tampered text verified: {out}");
    assert!(err.contains("text hashes to"), "{err}");

    // Offline, the untampered manifest verifies with the text and identity.
    let id_hex = std::fs::read_to_string(&identity).unwrap();
    let offline = |m: &Path, t: &Path| {
        verify(&[
            "--manifest",
            s(m),
            "--text",
            s(t),
            "--identity",
            id_hex.trim(),
            // Nothing listens here: offline means no network.
            "--rpc",
            "http://127.0.0.1:9",
            "--gateway",
            "http://127.0.0.1:9",
        ])
    };
    let (ok, out, err) = offline(&manifest, &text);
    assert!(ok, "the manifest did not verify offline: {out} {err}");
    assert!(out.contains("verified offline"), "{out}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(doc["assertions"][0]["label"], "c2pa.actions");
    assert_eq!(
        doc["assertions"][0]["data"]["actions"][0]["digitalSourceType"],
        "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    );
    assert_eq!(doc["assertions"][1]["label"], "org.agora.receipt");

    // The tampered text fails offline too.
    let (ok, _, err) = offline(&manifest, &tampered);
    assert!(!ok && err.contains("text hashes to"), "{err}");

    // Tampered manifests fail: a receipt's cost, a block's timestamp.
    let edits: [Edit; 3] = [
        ("receipt cost", "provider signature does not verify", |d| {
            let cost = &mut d["assertions"][1]["data"]["receipt"]["receipt"]["cost"];
            *cost = json!(cost.as_u64().unwrap() + 1);
        }),
        ("block timestamp", "certificate finalizes", |d| {
            let t = &mut d["assertions"][1]["data"]["block"]["header"]["timestamp_ms"];
            *t = json!(t.as_u64().unwrap() + 1);
        }),
        ("Merkle proof", "Merkle proof does not lead", |d| {
            let p = &mut d["assertions"][1]["data"]["proof"]["index"];
            *p = json!(p.as_u64().unwrap() + 1);
            d["assertions"][1]["data"]["proof"]["leaf_count"] = json!(1_000);
        }),
    ];
    for (what, why, edit) in edits {
        let mut bad = doc.clone();
        edit(&mut bad);
        let path = dir.path().join("tampered-manifest.json");
        std::fs::write(&path, serde_json::to_string(&bad).unwrap()).unwrap();
        let (ok, out, err) = offline(&path, &text);
        assert!(!ok, "a manifest with a tampered {what} verified: {out}");
        assert!(err.contains(why), "tampered {what}: {err}");
    }
}
