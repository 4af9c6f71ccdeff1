//! The console's back end through the real binaries: a chain node and a
//! keyed `agora gateway` in front of it. The page is served at `/`, the
//! chain's read routes and transaction submission pass through `/chain`
//! (nothing else does), and a wallet gets an API key by signing a request
//! with its own key, which forged, replayed, stale or unfunded requests
//! never get.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use agora_types::{Hash32, Keypair, Transaction, TxKind};
use common::{fast_node, Agora};
use serde_json::{json, Value};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The body carrying `request`, signed by `signer` over `digest(request)`.
fn signed(request: Value, signer: &Keypair, digest: fn(&[u8]) -> Hash32) -> Value {
    let request = request.to_string();
    let signature = signer.sign(&digest(request.as_bytes()).0);
    json!({"request": request, "signature": hex::encode(signature.0)})
}

/// The body of a key request for `owner`, signed by `signer`.
fn key_request(owner: &Keypair, signer: &Keypair, issued_at_ms: u64) -> Value {
    let request = json!({"owner": owner.account(), "name": "console test",
                         "issued_at_ms": issued_at_ms, "daily": 5_000});
    signed(request, signer, agora_gateway::key_request_digest)
}

/// The body of a withdrawal of `amount` for `owner`, signed by `signer`.
fn withdrawal(owner: &Keypair, signer: &Keypair, amount: u64) -> Value {
    let request = json!({"owner": owner.account(), "amount": amount, "issued_at_ms": now_ms()});
    signed(request, signer, agora_gateway::withdraw_digest)
}

/// An HTTP call's status and JSON body (`null` when the body is not JSON).
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `GET url` as JSON, which must answer 200.
async fn get_ok(url: &str) -> Value {
    let (status, body) = answer(reqwest::Client::new().get(url)).await;
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// Wait (the RPC's own long poll) until transaction `id` is committed.
async fn committed(base: &str, id: &str) {
    let status = get_ok(&format!("{base}/chain/tx/{id}?wait_ms=10000")).await;
    assert_eq!(status["status"], "committed", "{status}");
}

/// The `error.code` of an answer.
fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

#[tokio::test]
async fn the_gateway_serves_the_console_the_chain_and_wallet_keys() {
    let dir = tempfile::tempdir().unwrap();
    let node = fast_node(&dir.path().join("node"));
    let rpc = node.value("chain RPC");
    let gateway_dir = dir.path().join("gateway");
    let gateway = Agora::start(&[
        "gateway",
        "--chain",
        &rpc,
        "--http",
        "127.0.0.1:0",
        "--data-dir",
        gateway_dir.to_str().unwrap(),
    ]);
    let base = gateway.value("console").trim_end_matches('/').to_string();
    let http = reqwest::Client::new();

    // The page, with its script named by hash.
    let page = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("/console/app.js?v="));

    // Chain reads pass through unchanged; writes other than /tx do not.
    let head = get_ok(&format!("{base}/chain/head")).await;
    assert_eq!(
        head["chain_id"],
        get_ok(&format!("{rpc}/head")).await["chain_id"]
    );
    let blocks = get_ok(&format!("{base}/chain/explorer/blocks?limit=2")).await;
    assert!(blocks["blocks"].as_array().unwrap().len() <= 2);
    let (status, _) = answer(http.post(format!("{base}/chain/head"))).await;
    assert_eq!(status, 405);
    let (status, body) = answer(http.get(format!("{base}/chain/no/such/route"))).await;
    assert_eq!((status, code(&body)), (404, Some("not_found")));

    // A transaction the page signed is submitted through /chain/tx.
    let seed = std::fs::read_to_string(dir.path().join("node/faucet.key")).unwrap();
    let seed: [u8; 32] = hex::decode(seed.trim()).unwrap().try_into().unwrap();
    let faucet = Keypair::from_seed(seed);
    let chain_id = head["chain_id"].as_str().unwrap().to_string();
    // Sign a transfer as the page does, submit it through /chain/tx and wait for it.
    let transfer = |to: agora_types::AccountId, amount: u64| {
        let (http, base, chain_id, faucet) = (&http, &base, chain_id.clone(), &faucet);
        async move {
            let account = get_ok(&format!("{base}/chain/account/{}", faucet.account())).await;
            let tx = Transaction {
                chain_id,
                from: faucet.account(),
                nonce: account["next_nonce"].as_u64().unwrap(),
                kind: TxKind::Transfer { to, amount },
            }
            .sign(faucet);
            let body = json!({"tx": hex::encode(agora_types::codec::encode(&tx))});
            let (status, submitted) =
                answer(http.post(format!("{base}/chain/tx")).json(&body)).await;
            assert_eq!(status, 200, "{submitted}");
            assert_eq!(submitted["id"], tx.id().to_hex());
            committed(base, &tx.id().to_hex()).await;
        }
    };
    let wallet = Keypair::generate();
    transfer(wallet.account(), 50_000).await;

    // Wallet keys: only a fresh request signed by a funded owner gets one.
    let keys = format!("{base}/v1/keys");
    let post = |body: Value| answer(http.post(&keys).json(&body));
    let stranger = Keypair::generate();
    let (status, body) = post(key_request(&wallet, &stranger, now_ms())).await;
    assert_eq!(
        (status, code(&body)),
        (401, Some("invalid_signature")),
        "{body}"
    );
    let stale = now_ms() - 10 * 60 * 1000;
    let (status, body) = post(key_request(&wallet, &wallet, stale)).await;
    assert_eq!(
        (status, code(&body)),
        (400, Some("stale_request")),
        "{body}"
    );
    let (status, body) = post(key_request(&stranger, &stranger, now_ms())).await;
    assert_eq!(
        (status, code(&body)),
        (402, Some("insufficient_balance")),
        "{body}"
    );
    let (status, body) = post(json!({"request": "{}", "signature": "00"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].is_string());

    let signed = key_request(&wallet, &wallet, now_ms());
    let (status, issued) = post(signed.clone()).await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["owner"], wallet.account().to_hex());
    assert_ne!(
        issued["account"],
        wallet.account().to_hex(),
        "a custodial account"
    );
    let (status, body) = post(signed).await;
    assert_eq!((status, code(&body)), (409, Some("replayed_request")));

    // What the wallet funds its custodial account with, it can take back;
    // nobody else can, and a wallet without an account is told so.
    let custodial: agora_types::AccountId = issued["account"].as_str().unwrap().parse().unwrap();
    transfer(custodial, 10_000).await;
    let withdraw = format!("{base}/v1/keys/withdraw");
    let post = |body: Value| answer(http.post(&withdraw).json(&body));
    let (status, body) = post(withdrawal(&wallet, &stranger, 4_000)).await;
    assert_eq!(
        (status, code(&body)),
        (401, Some("invalid_signature")),
        "{body}"
    );
    let (status, body) = post(withdrawal(&stranger, &stranger, 4_000)).await;
    assert_eq!(
        (status, code(&body)),
        (404, Some("no_custodial_account")),
        "{body}"
    );
    let before = get_ok(&format!("{base}/chain/account/{}", wallet.account())).await["balance"]
        .as_u64()
        .unwrap();
    let (status, sent) = post(withdrawal(&wallet, &wallet, 4_000)).await;
    assert_eq!(status, 200, "{sent}");
    committed(&base, sent["tx"].as_str().unwrap()).await;
    let after = get_ok(&format!("{base}/chain/account/{}", wallet.account())).await["balance"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 4_000);

    // The key works: its usage shows its budget and owner.
    let key = issued["key"].as_str().unwrap();
    let (status, usage) = answer(http.get(format!("{base}/v1/usage")).bearer_auth(key)).await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["key"]["owner"], wallet.account().to_hex());
    assert_eq!(usage["key"]["limits"]["daily"], 5_000);

    // No provider yet: an empty list, not an error.
    let providers = get_ok(&format!("{base}/v1/providers")).await;
    assert_eq!(providers["data"], json!([]));
}
