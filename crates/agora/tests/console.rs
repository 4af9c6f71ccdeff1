//! The console's back end through the real binaries: a chain node and a
//! keyed `agora gateway` in front of it. The page is served at `/`, the
//! chain's read routes and transaction submission pass through `/chain`
//! (nothing else does), and a wallet gets an API key by signing a request
//! with its own key, which forged, replayed, stale or unfunded requests
//! never get.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use agora_types::{Keypair, Transaction, TxKind};
use common::{fast_node, Agora};
use serde_json::{json, Value};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The body of a key request for `owner`, signed by `signer`.
fn key_request(owner: &Keypair, signer: &Keypair, issued_at_ms: u64) -> Value {
    let request = json!({"owner": owner.account(), "name": "console test",
                         "issued_at_ms": issued_at_ms, "daily": 5_000})
    .to_string();
    let digest = agora_gateway::key_request_digest(request.as_bytes());
    let signature = signer.sign(&digest.0);
    json!({"request": request, "signature": hex::encode(signature.0)})
}

async fn status_and_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
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
    let head: Value = http
        .get(format!("{base}/chain/head"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let direct: Value = reqwest::get(format!("{rpc}/head"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(head["chain_id"], direct["chain_id"]);
    let (status, blocks) = status_and_json(
        http.get(format!("{base}/chain/explorer/blocks?limit=2"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{blocks}");
    assert!(blocks["blocks"].as_array().unwrap().len() <= 2);
    let (status, _) = status_and_json(
        http.post(format!("{base}/chain/head"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405);
    let (status, body) = status_and_json(
        http.get(format!("{base}/chain/no/such/route"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // A transaction the page signed is submitted through /chain/tx.
    let seed = std::fs::read_to_string(dir.path().join("node/faucet.key")).unwrap();
    let seed: [u8; 32] = hex::decode(seed.trim()).unwrap().try_into().unwrap();
    let faucet = Keypair::from_seed(seed);
    let account: Value = http
        .get(format!("{base}/chain/account/{}", faucet.account()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wallet = Keypair::generate();
    let tx = Transaction {
        chain_id: head["chain_id"].as_str().unwrap().into(),
        from: faucet.account(),
        nonce: account["next_nonce"].as_u64().unwrap(),
        kind: TxKind::Transfer {
            to: wallet.account(),
            amount: 50_000,
        },
    }
    .sign(&faucet);
    let (status, submitted) = status_and_json(
        http.post(format!("{base}/chain/tx"))
            .json(&json!({"tx": hex::encode(agora_types::codec::encode(&tx))}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(submitted["id"], tx.id().to_hex());
    let (status, _) = status_and_json(
        http.get(format!(
            "{base}/chain/tx/{}?wait_ms=10000",
            tx.id().to_hex()
        ))
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    // Wallet keys: only a fresh request signed by a funded owner gets one.
    let keys = format!("{base}/v1/keys");
    let post = |body: Value| http.post(&keys).json(&body).send();
    let stranger = Keypair::generate();
    let (status, body) = status_and_json(
        post(key_request(&wallet, &stranger, now_ms()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_signature")),
        "{body}"
    );
    let (status, body) = status_and_json(
        post(key_request(&wallet, &wallet, now_ms() - 10 * 60 * 1000))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("stale_request")),
        "{body}"
    );
    let (status, body) = status_and_json(
        post(key_request(&stranger, &stranger, now_ms()))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("insufficient_balance")),
        "{body}"
    );
    let (status, body) = status_and_json(
        post(json!({"request": "{}", "signature": "00"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].is_string());

    let signed = key_request(&wallet, &wallet, now_ms());
    let (status, issued) = status_and_json(post(signed.clone()).await.unwrap()).await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["owner"], wallet.account().to_hex());
    assert_ne!(
        issued["account"],
        wallet.account().to_hex(),
        "a custodial account"
    );
    let (status, body) = status_and_json(post(signed).await.unwrap()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("replayed_request"))
    );

    // The key works: its usage shows its budget and owner.
    let (status, usage) = status_and_json(
        http.get(format!("{base}/v1/usage"))
            .bearer_auth(issued["key"].as_str().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["key"]["owner"], wallet.account().to_hex());
    assert_eq!(usage["key"]["limits"]["daily"], 5_000);

    // No provider yet: an empty list, not an error.
    let (status, providers) = status_and_json(
        http.get(format!("{base}/v1/providers"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(providers["data"], json!([]));
}
