//! Two users of one network, each with an API key spending from an account
//! of their own: one exhausts its budget and is refused while the other keeps
//! working; usage and `/metrics` show both. Then the gateway is killed with
//! SIGKILL while requests run, restarted on the same data directory, and
//! nothing is lost: every answered job is paid to the provider once, the
//! key was charged exactly what the channel paid, no reservation outlives
//! the crash, and the restarted gateway keeps using the open channel.

mod common;

use std::time::{Duration, Instant};

use agora_chain_client::ChainClient;
use agora_testkit::model;
use agora_types::{channel_id, AccountId};
use common::Agora;
use serde_json::{json, Value};

const MODEL: &str = "smollm2-135m-instruct";
const CHAIN_ID: &str = "agora-devnet";
/// Requests racing when the gateway is killed.
const IN_FLIGHT: usize = 6;
/// How long the provider may take to settle what it was paid.
const SETTLE_DEADLINE: Duration = Duration::from_secs(120);

/// `agora keys SUBCOMMAND ... --json` against the gateway at `url`.
fn keys(url: &str, admin: &str, args: &[&str]) -> Value {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--gateway", url, "--admin-key-file", admin, "--json"]);
    common::run_json(&all)
}

/// One user: a key and the account it spends from.
struct User {
    key: String,
    id: String,
    account: AccountId,
}

fn chat(max_tokens: u32, seed: u64) -> Value {
    ask_for("Name a colour.", max_tokens, seed)
}

fn ask_for(prompt: &str, max_tokens: u32, seed: u64) -> Value {
    json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens, "seed": seed, "temperature": 0.7,
    })
}

/// POST a chat completion as `user`; (status, body).
async fn ask(http: &reqwest::Client, base: &str, user: &User, body: &Value) -> (u16, Value) {
    let resp = http
        .post(format!("{base}/chat/completions"))
        .bearer_auth(&user.key)
        .json(body)
        .send()
        .await
        .expect("the gateway answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Wait until the gateway has read both accounts' funds.
async fn wait_for_funds(url: &str, admin: &str, accounts: &[AccountId]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = keys(url, admin, &["accounts"]);
        let funded = accounts.iter().all(|a| {
            listed["data"].as_array().unwrap().iter().any(|row| {
                row["account"] == a.to_hex().as_str() && row["available"].as_u64() > Some(0)
            })
        });
        if funded {
            return;
        }
        assert!(Instant::now() < deadline, "funds never seen: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_budgets_and_a_gateway_killed_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
    let node = common::fast_node(&dir.path().join("node"));
    let rpc = node.value("chain RPC");
    let chain = ChainClient::new(&rpc);
    let faucet = dir.path().join("node/faucet.key");
    common::funded_provider_key(&rpc, &faucet, &dir.path().join("prov"));
    let _provider = Agora::start(&[
        "provider",
        "--chain",
        &rpc,
        "--model",
        model::path().to_str().unwrap(),
        "--data-dir",
        &path("prov"),
        "--http",
        "127.0.0.1:0",
        "--threads",
        "2",
        "--settle-secs",
        "1",
    ]);
    let gateway_args = [
        "gateway",
        "--chain",
        &rpc,
        "--http",
        "127.0.0.1:0",
        "--data-dir",
        &path("gw"),
        "--channel-deposit",
        "50",
    ];
    let mut gateway = Agora::start(&gateway_args);
    let base = gateway.value("OpenAI base URL");
    let url = base.trim_end_matches("/v1").to_string();
    let admin = path("gw/admin-key");

    // Two users, each with an account of their own, funded apart.
    let mut users = Vec::new();
    for name in ["alice", "bob"] {
        let account = keys(&url, &admin, &["account"])["account"]
            .as_str()
            .unwrap()
            .to_string();
        common::transfer(
            &rpc,
            &faucet,
            &account.parse::<AccountId>().unwrap(),
            1_000_000,
        );
        users.push((name, account));
    }
    let accounts: Vec<AccountId> = users
        .iter()
        .map(|(_, a)| a.parse::<AccountId>().unwrap())
        .collect();
    wait_for_funds(&url, &admin, &accounts).await;

    let http = reqwest::Client::new();
    // Bob has no budget; his first answer prices one request.
    let bob_key = keys(
        &url,
        &admin,
        &["create", "--name", "bob", "--account", &users[1].1],
    );
    let bob = User {
        key: bob_key["key"].as_str().unwrap().into(),
        id: bob_key["id"].as_str().unwrap().into(),
        account: accounts[1],
    };
    let (status, v) = ask(&http, &base, &bob, &chat(8, 0)).await;
    assert_eq!(status, 200, "{v}");
    let one = v["usage"]["cost"].as_u64().unwrap();
    assert!(one > 0);

    // Alice's budget is a few such requests: she is served, then refused
    // with OpenAI's 402 shape, and never spends past her budget.
    let budget = (5 * one).to_string();
    let alice_key = keys(
        &url,
        &admin,
        &[
            "create",
            "--name",
            "alice",
            "--account",
            &users[0].1,
            "--budget",
            &budget,
        ],
    );
    let alice = User {
        key: alice_key["key"].as_str().unwrap().into(),
        id: alice_key["id"].as_str().unwrap().into(),
        account: accounts[0],
    };
    let (mut served, mut refusal) = (0, None);
    for seed in 0..40 {
        let (status, v) = ask(&http, &base, &alice, &chat(8, seed)).await;
        match status {
            200 => served += 1,
            402 => {
                refusal = Some(v);
                break;
            }
            other => panic!("alice got {other}: {v}"),
        }
    }
    let refusal = refusal.expect("alice's budget ran out");
    assert!(served >= 1, "alice was served before her budget ran out");
    assert_eq!(refusal["error"]["code"], "budget_exceeded", "{refusal}");
    assert_eq!(refusal["error"]["type"], "insufficient_quota");
    let listed = keys(&url, &admin, &["list"]);
    let spent = |id: &str| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == id)
            .map(|k| k["spend"]["total"].as_u64().unwrap())
            .unwrap()
    };
    assert!(spent(&alice.id) <= 5 * one, "alice overspent: {listed}");
    // Bob, on his own account, is still served.
    let (status, v) = ask(&http, &base, &bob, &chat(8, 1)).await;
    assert_eq!(status, 200, "bob refused after alice ran out: {v}");
    let mut answered = vec![one, v["usage"]["cost"].as_u64().unwrap()];

    // Each key sees its own usage; the admin sees both, and so do the metrics.
    for (user, requests) in [(&alice, served), (&bob, 2)] {
        let usage: Value = http
            .get(format!("{base}/usage"))
            .bearer_auth(&user.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = usage["data"].as_array().unwrap();
        assert!(rows.iter().all(|r| r["key"] == user.id.as_str()), "{usage}");
        let total: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
        assert_eq!(total, requests, "{usage}");
    }
    let all = keys(&url, &admin, &["usage"]);
    for id in [&alice.id, &bob.id] {
        assert!(
            all["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["key"] == id.as_str()),
            "{id} missing from {all}"
        );
    }
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for id in [&alice.id, &bob.id] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("agora_gateway_spend_total") && l.contains(id.as_str())),
            "no spend line for {id} in /metrics"
        );
    }

    // Load on Bob's key (jobs of 8 to 248 tokens), then SIGKILL the
    // gateway while jobs run.
    let racing: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let (http, base, key) = (http.clone(), base.clone(), bob.key.clone());
            tokio::spawn(async move {
                let resp = http
                    .post(format!("{base}/chat/completions"))
                    .bearer_auth(key)
                    .json(&ask_for(
                        "Tell a long story about a lighthouse keeper.",
                        8 + 48 * i as u32,
                        100 + i as u64,
                    ))
                    .send()
                    .await
                    .ok()?;
                let status = resp.status().as_u16();
                let v: Value = resp.json().await.ok()?;
                (status == 200).then(|| v["usage"]["cost"].as_u64().unwrap())
            })
        })
        .collect();
    // Kill once the provider has finished at least one of them.
    let before_kill = Instant::now();
    while !racing.iter().any(|t| t.is_finished()) {
        assert!(
            before_kill.elapsed() < Duration::from_secs(120),
            "no job finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.kill();
    let mut delivered_under_load = 0;
    for t in racing {
        if let Some(cost) = t.await.unwrap() {
            delivered_under_load += 1;
            answered.push(cost);
        }
    }
    assert!(
        (1..IN_FLIGHT).contains(&delivered_under_load),
        "the kill came with jobs running: {delivered_under_load} of {IN_FLIGHT} answered"
    );

    // Restart on the same data directory: the same keys, their spend, no
    // reservation left over, and the same channel carries on.
    let gateway = Agora::start(&gateway_args);
    let base = gateway.value("OpenAI base URL");
    let url = base.trim_end_matches("/v1").to_string();
    wait_for_funds(&url, &admin, &accounts).await;
    let (status, v) = ask(&http, &base, &bob, &chat(8, 2)).await;
    assert_eq!(status, 200, "bob after the restart: {v}");
    answered.push(v["usage"]["cost"].as_u64().unwrap());
    let (status, _) = ask(&http, &base, &alice, &chat(8, 3)).await;
    assert_eq!(status, 402, "alice's spend survived the restart");

    // Everything Bob's key was charged is what his channel pays the
    // provider, once: wait for the provider to settle it.
    let bob_listed = |listed: &Value| {
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["id"] == bob.id.as_str())
            .cloned()
            .unwrap()
    };
    let row = bob_listed(&keys(&url, &admin, &["list"]));
    assert_eq!(
        row["reserved"], 0,
        "no reservation outlived the crash: {row}"
    );
    let charged = row["spend"]["total"].as_u64().unwrap();
    let bob_account = chain.account(&bob.account).await.unwrap();
    let channels: Vec<_> = {
        let mut out = Vec::new();
        for n in 0..bob_account.nonce {
            if let Ok(c) = chain.channel(&channel_id(CHAIN_ID, &bob.account, n)).await {
                out.push(c);
            }
        }
        out
    };
    assert_eq!(
        channels.len(),
        1,
        "one channel, kept across the restart: {channels:?}"
    );
    let started = Instant::now();
    let channel = loop {
        let c = chain.channel(&channels[0].id).await.unwrap();
        assert!(
            c.paid <= charged,
            "the provider was paid {} > charged {charged}",
            c.paid
        );
        if c.paid == charged {
            break c;
        }
        assert!(
            started.elapsed() < SETTLE_DEADLINE,
            "not settled: paid {} of {charged}",
            c.paid
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Every answered request is in it: Bob's two before the load, those
    // answered under load and the one after the restart; the jobs cut off by
    // the kill may be in it too, but each job at most once.
    let answered_jobs = 2 + delivered_under_load + 1;
    assert!(channel.jobs as usize >= answered_jobs, "{channel:?}");
    assert!(
        channel.jobs as usize <= 2 + IN_FLIGHT + 1,
        "a job was paid twice: {channel:?}"
    );
    let answered_cost: u64 = answered.iter().sum();
    assert!(
        charged >= answered_cost,
        "charged {charged} < answered {answered_cost}"
    );
}
