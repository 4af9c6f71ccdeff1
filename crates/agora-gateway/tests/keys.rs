//! Keys bound to accounts, budgets that fail closed, rate limits, usage and
//! the admin API, through real HTTP against stub providers.

mod common;

use std::sync::Arc;

use agora_gateway::{Gateway, GatewayConfig, Limits};
use agora_types::Price;
use common::{openai_error, stub, RecordingPayer, Script, TestBook, TestDirectory};
use serde_json::{json, Value};

/// 1 per prompt token, 2 per completion token.
const PRICE: Price = Price {
    input_per_1k: 1000,
    output_per_1k: 2000,
};
const ALICE: &str = "sk-agora-alice-test-key";
const ADMIN: &str = "sk-agora-admin-test-key";
/// The stub's receipts: 11 prompt tokens, one completion token per delta.
const COST_OF_TWO_DELTAS: u64 = 11 + 2 * 2;

fn body(max_tokens: u32) -> Value {
    json!({"model": "tiny", "max_tokens": max_tokens,
           "messages": [{"role": "user", "content": "hello"}]})
}

/// The gateway's documented reservation for [`body`]: every prompt byte (and
/// role byte) a token, 32 template tokens per message and 256 once, plus
/// `max_tokens`, at [`PRICE`].
fn reservation(max_tokens: u32) -> u64 {
    let prompt = ("hello".len() + "user".len()) as u64 + 32 + 256;
    PRICE.cost(prompt, max_tokens.into())
}

struct Net {
    base: String,
    payer: Arc<RecordingPayer>,
    book: TestBook,
    http: reqwest::Client,
    _provider: Arc<common::Stub>,
}

async fn net(config: GatewayConfig) -> Net {
    let provider = stub(Script::Deltas(vec!["a", "b"]), PRICE).await;
    let m = common::model("tiny");
    let directory = TestDirectory::default();
    directory.set(Some(agora_gateway::Snapshot {
        chain_id: common::CHAIN_ID.into(),
        providers: vec![provider.info(&[m.id])],
        models: vec![m],
    }));
    let payer = Arc::new(RecordingPayer::default());
    let book = TestBook::with_key(ALICE);
    let gateway = Gateway::with_payer(directory, config, book.book.clone(), payer.clone());
    gateway.refresh().await.unwrap();
    gateway.refresh_funds().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, gateway.router()).await.unwrap() });
    Net {
        base,
        payer,
        book,
        http: reqwest::Client::new(),
        _provider: provider,
    }
}

impl Net {
    async fn chat(&self, key: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/chat/completions", self.base))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, key: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }
}

/// Two users with their own keys and accounts: alice's budget runs out and
/// she is refused (402, OpenAI's shape) while bob keeps working; each job
/// is paid from the asking key's own account; usage shows each their own.
#[tokio::test]
async fn one_key_exhausts_its_budget_while_another_keeps_working() {
    let net = net(GatewayConfig::default()).await;
    let alice_account = net.book.account;
    // Alice may spend two requests' actual cost plus one reservation.
    let alice_id = net.book.book.identify(Some(ALICE)).unwrap();
    net.book.book.revoke(&alice_id).unwrap();
    let limits = Limits {
        total: Some(reservation(8) + COST_OF_TWO_DELTAS),
        ..Limits::default()
    };
    let (alice, _) = net
        .book
        .book
        .create_key("alice", alice_account, limits)
        .unwrap();
    let bob_account = net.book.book.create_account().unwrap();
    let (bob, _) = net
        .book
        .book
        .create_key("bob", bob_account, Limits::default())
        .unwrap();
    net.book.book.set_funds(bob_account, 1 << 40);

    for _ in 0..2 {
        assert_eq!(net.chat(&alice, &body(8)).await.status(), 200);
    }
    let resp = net.chat(&alice, &body(8)).await;
    let e = openai_error(resp, 402).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("insufficient_quota"), Some("budget_exceeded"))
    );
    for _ in 0..3 {
        assert_eq!(net.chat(&bob, &body(8)).await.status(), 200);
    }
    let paid = net.payer.paid.lock().unwrap().clone();
    let from = |a| paid.iter().filter(|(acc, _)| *acc == a).count();
    assert_eq!(
        (from(alice_account), from(bob_account), paid.len()),
        (2, 3, 5)
    );

    let usage: Value = net.get(&alice, "/v1/usage").await.json().await.unwrap();
    let rows = usage["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{usage}");
    assert_eq!(rows[0]["requests"], 2);
    assert_eq!(rows[0]["cost"], 2 * COST_OF_TWO_DELTAS);
    assert_eq!(usage["key"]["spend"]["total"], 2 * COST_OF_TWO_DELTAS);
    let alice_id = net.book.book.identify(Some(&alice)).unwrap();
    let metrics = net.get(&alice, "/metrics").await.text().await.unwrap();
    let line = format!(
        "agora_gateway_spend_total{{key=\"{alice_id}\"}} {}",
        2 * COST_OF_TWO_DELTAS
    );
    assert!(
        metrics.lines().any(|l| l == line),
        "no {line} in\n{metrics}"
    );
    assert!(!metrics.contains(&alice));
    // Her budget left: one reservation's worth less what two requests cost beyond it.
    let left = reservation(8) + COST_OF_TWO_DELTAS - 2 * COST_OF_TWO_DELTAS;
    let line = format!("agora_gateway_remaining_budget{{key=\"{alice_id}\"}} {left}");
    assert!(
        metrics.lines().any(|l| l == line),
        "no {line} in\n{metrics}"
    );
    let usage: Value = net.get(&bob, "/v1/usage").await.json().await.unwrap();
    assert_eq!(usage["data"][0]["requests"], 3);
    assert_eq!(usage["data"][0]["model"], "tiny");
    // The revoked key is refused, and so is a guess.
    for key in [ALICE, "sk-agora-guess-guess-guess"] {
        let e = openai_error(net.chat(key, &body(8)).await, 401).await;
        assert_eq!(e["code"], "invalid_api_key");
        openai_error(net.get(key, "/v1/usage").await, 401).await;
    }
}

/// A key's rate limit answers 429 with `retry-after`; a request larger than
/// its tokens-per-minute can ever allow says so instead of asking to wait.
#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let net = net(GatewayConfig::default()).await;
    let limits = Limits {
        rpm: Some(1),
        tpm: Some(400),
        ..Limits::default()
    };
    let (key, _) = net
        .book
        .book
        .create_key("r", net.book.account, limits)
        .unwrap();
    let huge = net.chat(&key, &body(200)).await;
    assert_eq!(huge.status(), 429);
    assert!(huge.headers().get("retry-after").is_none());
    assert_eq!(net.chat(&key, &body(8)).await.status(), 200);
    let resp = net.chat(&key, &body(8)).await;
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let e = openai_error(resp, 429).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("requests"), Some("rate_limit_exceeded"))
    );
}

/// An account whose funds cannot cover a request is refused (402) before
/// any provider is called; so is one whose funds were never read (503).
#[tokio::test]
async fn accounts_without_funds_are_refused_before_any_job() {
    let net = net(GatewayConfig::default()).await;
    net.book
        .book
        .set_funds(net.book.account, reservation(8) - 1);
    let e = openai_error(net.chat(ALICE, &body(8)).await, 402).await;
    assert_eq!(e["code"], "insufficient_funds");
    let unread = net.book.book.create_account().unwrap();
    let (key, _) = net
        .book
        .book
        .create_key("u", unread, Limits::default())
        .unwrap();
    let resp = net.chat(&key, &body(8)).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(openai_error(resp, 503).await["code"], "funds_unknown");
    assert!(net.payer.receipts().is_empty());
}

/// 256 concurrent requests race one key whose budget fits ten reservations:
/// at most ten are served, and what is charged never passes the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_requests_never_overrun_a_budget() {
    let net = Arc::new(net(GatewayConfig::default()).await);
    let budget = 10 * reservation(8);
    let limits = Limits {
        total: Some(budget),
        ..Limits::default()
    };
    let (key, _) = net
        .book
        .book
        .create_key("race", net.book.account, limits)
        .unwrap();
    let tasks: Vec<_> = (0..256)
        .map(|_| {
            let (net, key) = (net.clone(), key.clone());
            tokio::spawn(async move { net.chat(&key, &body(8)).await.status().as_u16() })
        })
        .collect();
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    let served = codes.iter().filter(|&&c| c == 200).count();
    assert!(codes.iter().all(|&c| c == 200 || c == 402), "{codes:?}");
    let id = net.book.book.identify(Some(&key)).unwrap();
    let rows = net.book.book.usage(Some(&id)).unwrap();
    let charged: u64 = rows.iter().map(|r| r.cost).sum();
    assert!(charged <= budget, "charged {charged} of {budget}");
    assert_eq!(charged, served as u64 * COST_OF_TWO_DELTAS);
    // The first ten reservations always fit.
    assert!(served >= 10, "{served}");
}

/// The admin API issues, lists and revokes keys and creates accounts, only
/// for the admin key; listings never show a secret; an open gateway has no
/// admin API at all.
#[tokio::test]
async fn the_admin_api_manages_keys_and_accounts() {
    let config = GatewayConfig {
        admin_key_hash: Some(agora_keys::hash(ADMIN)),
        ..GatewayConfig::default()
    };
    let net = net(config).await;
    for key in [ALICE, "sk-agora-not-the-admin"] {
        let resp = net.get(key, "/admin/keys").await;
        openai_error(resp, 401).await;
    }
    let account: Value = net
        .http
        .post(format!("{}/admin/accounts", net.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = account["account"].as_str().unwrap().to_string();
    let made = net
        .http
        .post(format!("{}/admin/keys", net.base))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "carol", "account": account, "daily": 500, "rpm": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    let secret = made["key"].as_str().unwrap().to_string();
    assert!(secret.starts_with(agora_gateway::KEY_PREFIX));
    assert_eq!(made["limits"]["daily"], 500);
    let listed = net.get(ADMIN, "/admin/keys").await.text().await.unwrap();
    assert!(listed.contains("carol") && !listed.contains(&secret) && !listed.contains(ALICE));
    // Unknown fields and unknown accounts are refused with a clear error.
    for bad in [
        json!({"name": "x", "account": account, "budget": 5}),
        json!({"name": "x", "account": agora_types::Keypair::generate().account()}),
    ] {
        let resp = net
            .http
            .post(format!("{}/admin/keys", net.base))
            .bearer_auth(ADMIN)
            .json(&bad)
            .send()
            .await
            .unwrap();
        openai_error(resp, 400).await;
    }
    let id = made["id"].as_str().unwrap();
    let revoke = net
        .http
        .delete(format!("{}/admin/keys/{id}", net.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    openai_error(net.chat(&secret, &body(8)).await, 401).await;
    let missing = net
        .http
        .delete(format!("{}/admin/keys/key_000000000000", net.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    openai_error(missing, 404).await;
    let open = common::gateway_with(None, GatewayConfig::default()).await;
    assert_eq!(open.get("/admin/keys").await.status(), 404);
}
