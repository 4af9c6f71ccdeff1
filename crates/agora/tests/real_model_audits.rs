//! Proof of Sampling end to end on the real default model: a devnet with an
//! honest provider and one that tampers with its outputs (`--adversary
//! tamper`), every job audited (`--audit-rate-ppm 1000000`). The cheater must
//! end slashed and deregistered, the honest provider untouched with passing
//! audits and paid emission through the validators' commit-reveal weights
//! (a 10-block tempo), all read from `agora status --json`.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long the audits may take once the jobs are served (debug build, 2 cores).
const AUDIT_DEADLINE: Duration = Duration::from_secs(300);
/// Collateral the devnet's providers lock (`devnet::DEVNET_STAKE`).
const DEVNET_STAKE: u64 = 1_000_000;

/// Chat through the gateway, pinned to one provider.
async fn chat(http: &reqwest::Client, base: &str, provider: &str, seed: u64) {
    let body = json!({
        "model": "smollm2-135m-instruct",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a colour of the sea."}
        ],
        "max_tokens": 12, "seed": seed, "temperature": 0.7,
        "provider": {"order": [provider], "allow_fallbacks": false},
    });
    let resp = http
        .post(format!("{base}/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "chat via {provider}: {text}");
}

/// The `audits` entry of `account` in a status JSON.
fn record<'a>(status: &'a Value, account: &str) -> Option<&'a Value> {
    status["audits"]
        .as_array()?
        .iter()
        .find(|a| a["provider"] == account)
}

/// The `providers` entry of `account`, if it is registered.
fn provider<'a>(status: &'a Value, account: &str) -> Option<&'a Value> {
    status["providers"]
        .as_array()?
        .iter()
        .find(|p| p["id"] == account)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampering_provider_is_caught_slashed_and_deregistered() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::tampering_devnet(dir.path(), &[]);
    let base = devnet.value("OpenAI base URL");
    let rpc = devnet.value("chain RPC");
    let honest_url = devnet.value("provider");
    let cheater_url = devnet.value("cheater");
    let status = common::status(&rpc);
    let (honest, cheater) = (
        common::provider_at(&status, &honest_url),
        common::provider_at(&status, &cheater_url),
    );

    let http = common::keyed_client(&devnet);
    for seed in 0..2 {
        chat(&http, &base, &honest_url, seed).await;
        chat(&http, &base, &cheater_url, seed).await;
    }

    // Wait for the outcome: the cheater slashed, the honest provider audited
    // and paid emission by the validators' revealed weights (Yuma, per tempo).
    let started = Instant::now();
    let status = loop {
        let status = common::status(&rpc);
        let cheater_slashed =
            record(&status, &cheater).is_some_and(|r| r["audits"]["slashed"] == true);
        let honest_audited = provider(&status, &honest)
            .is_some_and(|p| p["audits_passed"].as_u64().unwrap_or(0) >= 2);
        let honest_rewarded = provider(&status, &honest)
            .is_some_and(|p| p["earned"]["emissions"].as_u64().unwrap_or(0) > 0);
        if cheater_slashed && honest_audited && honest_rewarded {
            break status;
        }
        assert!(
            started.elapsed() < AUDIT_DEADLINE,
            "audits did not conclude in {AUDIT_DEADLINE:?}: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // The cheater: deregistered, its whole collateral slashed, failure on record.
    assert!(
        provider(&status, &cheater).is_none(),
        "cheater still registered: {status:#}"
    );
    let c = &record(&status, &cheater).unwrap()["audits"];
    assert_eq!(c["slashed_amount"], DEVNET_STAKE);
    assert!(c["audits_failed"].as_u64().unwrap() >= 1);
    assert_eq!(
        c["audits_passed"], 0,
        "no tampered job may pass: {status:#}"
    );

    // The honest provider: registered, stake intact, nothing failed.
    let h = provider(&status, &honest).unwrap();
    assert_eq!(h["stake"], DEVNET_STAKE);
    assert_eq!(h["slashed"], false);
    assert_eq!(h["audits_failed"], 0);
}
