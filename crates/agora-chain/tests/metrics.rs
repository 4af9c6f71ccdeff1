//! `GET /metrics` on a chain node over its real HTTP RPC: the finalized
//! height agrees with `GET /head`, the mempool and transaction outcomes are
//! counted, and hostile paths add no series.

use agora_chain::{ChainConfig, Node};
use agora_chain_client::ChainClient;
use agora_testkit::GenesisBuilder;
use agora_types::{Keypair, SignedTransaction, Transaction, TxKind};

const CHAIN: &str = "metrics-test";

fn transfer(from: &Keypair, to: &Keypair, nonce: u64) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN.into(),
        from: from.account(),
        nonce,
        kind: TxKind::Transfer {
            to: to.account(),
            amount: 10,
        },
    }
    .sign(from)
}

async fn scrape(url: &str) -> String {
    let resp = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], agora_metrics::CONTENT_TYPE);
    resp.text().await.unwrap()
}

/// The value of the sample named exactly `name` (no labels).
fn value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn height_mempool_and_transaction_outcomes_are_scraped() {
    let (a, b) = (Keypair::generate(), Keypair::generate());
    let genesis = GenesisBuilder::new(CHAIN)
        .fund_keys([&a, &b], 1_000)
        .without_fees()
        .build();
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(
        dir.path(),
        &genesis,
        Keypair::generate(),
        ChainConfig::default(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = node.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let rpc = ChainClient::new(&url);

    rpc.submit(&transfer(&a, &b, 0)).await.unwrap();
    rpc.submit(&transfer(&a, &b, 1)).await.unwrap();
    assert!(rpc.submit(&transfer(&a, &b, 7)).await.is_err());
    for i in 0..30 {
        let _ = reqwest::get(format!("{url}/block/{}", 1000 + i))
            .await
            .unwrap();
        let _ = reqwest::get(format!("{url}/nowhere/{i}")).await.unwrap();
    }
    let text = scrape(&url).await;
    for line in [
        "agora_chain_mempool_transactions 2",
        r#"agora_chain_transactions_submitted_total{outcome="accepted"} 2"#,
        r#"agora_chain_transactions_submitted_total{outcome="bad_nonce"} 1"#,
        r#"agora_http_requests_total{route="/block/{height}",method="GET",status="404"} 30"#,
        r#"agora_http_requests_total{route="unmatched",method="GET",status="404"} 30"#,
    ] {
        assert!(has(&text, line), "no {line} in\n{text}");
    }
    assert!(
        !text.contains("nowhere") && !text.contains("/block/10"),
        "{text}"
    );

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    node.produce_block(now_ms).unwrap();
    node.produce_block(now_ms + 1).unwrap();
    let head = rpc.head().await.unwrap();
    let text = scrape(&url).await;
    assert!(
        value(&text, "agora_chain_height") >= head.height as f64,
        "{text}"
    );
    assert_eq!(value(&text, "agora_chain_height"), 2.0);
    assert_eq!(value(&text, "agora_chain_mempool_transactions"), 0.0);
    assert_eq!(
        value(&text, "agora_chain_transactions_committed_total"),
        2.0
    );
    let lag = value(&text, "agora_chain_seconds_since_last_block");
    assert!((0.0..60.0).contains(&lag), "{lag}");
}
