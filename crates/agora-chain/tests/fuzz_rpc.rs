//! Fuzzing the chain RPC's handlers in-process (`oneshot` on the real
//! router over a real redb store): arbitrary methods, paths and query
//! strings on every route, arbitrary bodies, and JSON of the right shape
//! with hostile values (huge, negative, wrong types, deep nesting, huge or
//! invalid UTF-8 strings, hex that decodes to garbage, signed transactions
//! with extreme fields). Every answer must be a sensible status (never a
//! 5xx for client garbage, except 503 when the mempool is full) and every
//! error the RPC's `{"error": {"code", "message"}}` JSON.
//!
//! CI runs a short budget. The long run is the same test with more cases:
//! `PROPTEST_CASES=1000000 cargo test -p agora-chain --test fuzz_rpc`
//! (figures in docs/benchmarks.md).

use std::sync::OnceLock;

use agora_chain::{ChainConfig, Node};
use agora_ledger::{Genesis, GenesisAccount};
use agora_testkit::fuzz;
use agora_types::{codec, AccountId, Hash32, Keypair, SignedTransaction, Transaction, TxKind};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use proptest::prelude::*;
use serde_json::{json, Value};

/// The funded key whose signed transactions the fuzzer sends.
fn funded() -> Keypair {
    Keypair::from_seed([7; 32])
}

/// One node for every case: its store, its router and a runtime to drive it.
struct Fixture {
    _dir: tempfile::TempDir,
    router: Router,
    runtime: tokio::runtime::Runtime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let genesis = Genesis {
            chain_id: "fuzz".into(),
            timestamp_ms: 0,
            params: agora_ledger::Params::default(),
            accounts: vec![GenesisAccount {
                id: funded().account(),
                balance: 1_000_000,
            }],
            models: vec![],
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let node = runtime.block_on(async {
            Node::open(
                dir.path(),
                &genesis,
                Keypair::generate(),
                ChainConfig::default(),
            )
            .unwrap()
        });
        Fixture {
            _dir: dir,
            router: node.router(),
            runtime,
        }
    })
}

/// Send one request through the router; its status and body.
fn call(request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let f = fixture();
    fuzz::call(&f.runtime, &f.router, request)
}

/// The properties every answer keeps: no 5xx but a full mempool's 503, and
/// errors in the RPC's JSON shape.
fn check(method: &Method, status: StatusCode, body: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(body);
    prop_assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "{status}: {text}"
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        prop_assert!(
            text.contains("mempool"),
            "503 not from a full mempool: {text}"
        );
    }
    prop_assert!(status.is_success() || status.is_client_error() || status.is_server_error());
    if !status.is_success() && method != Method::HEAD {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| TestCaseError::fail(format!("{status}: not JSON ({e}): {text}")))?;
        prop_assert!(v["error"]["code"].is_string(), "{status}: {text}");
        prop_assert!(v["error"]["message"].is_string(), "{status}: {text}");
    }
    Ok(())
}

/// Every route of the RPC, `{}` where a path segment goes.
const ROUTES: &[&str] = &[
    "/tx",
    "/txs",
    "/tx/{}",
    "/head",
    "/status",
    "/account/{}",
    "/providers",
    "/models",
    "/block/{}",
    "/finality/{}",
    "/proof/account/{}",
    "/validators",
    "/committee",
    "/params",
    "/channel/{}",
    "/batches",
    "/disputes",
    "/audits/{}",
    "/supply",
    "/datasets",
    "/dataset/{}",
    "/algorithms",
    "/data/job/{}",
    "/data/batch/{}",
    "/data/settled/{}",
    "/batch/{}",
    "/verdicts/{}",
    "/agents",
    "/agent/{}",
    "/agent/{}/feedback",
    "/validations",
    "/explorer/blocks",
    "/explorer/supply",
    "/explorer/emissions",
    "/explorer/slashes",
    "/explorer/accounts",
    "/explorer/providers",
    "/explorer/earnings/{}",
];

/// A hostile path segment or query value (already URI-safe).
/// Hostile JSON (the test kit's), with a funded account among its leaves.
fn hostile_json() -> impl Strategy<Value = Value> {
    fuzz::hostile_json(vec![json!(funded().account().to_hex())])
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(hex::encode),
        any::<[u8; 32]>().prop_map(|b| AccountId(b).to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999999999999999999".to_string()),
        Just("-0".to_string()),
        Just("1e308".to_string()),
        Just("%FF%FE%00".to_string()),
        Just("..".to_string()),
        Just(String::new()),
        "[0-9a-f]{0,80}",
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| fuzz::percent_encode(&b)),
        // Up to five of these make a URI, which `http` caps at 64 KiB.
        (0usize..12_000).prop_map(|n| "a".repeat(n)),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        4 => Just(Method::GET),
        2 => Just(Method::POST),
        1 => Just(Method::PUT),
        1 => Just(Method::DELETE),
        1 => Just(Method::PATCH),
        1 => Just(Method::HEAD),
        1 => Just(Method::OPTIONS),
    ]
}

/// A query string: the RPC's own keys and others, with hostile values.
fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("wait_ms".to_string()),
        Just("since".to_string()),
        Just("capability".to_string()),
        Just("model".to_string()),
        Just("all".to_string()),
        "[a-z_]{1,8}",
    ];
    prop::collection::vec((key, segment()), 0..4).prop_map(|pairs| {
        if pairs.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("?{}", parts.join("&"))
    })
}

/// A transaction signed by the funded key (or carrying a forged signature)
/// with extreme fields.
fn hostile_tx() -> impl Strategy<Value = SignedTransaction> {
    (
        ".{0,16}",
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(chain_id, nonce, to, amount, forge)| {
            let key = funded();
            let mut tx = Transaction {
                chain_id: if forge { chain_id } else { "fuzz".into() },
                from: key.account(),
                nonce: nonce % 4,
                kind: TxKind::Transfer {
                    to: AccountId(to),
                    amount,
                },
            }
            .sign(&key);
            if forge {
                tx.tx.nonce = nonce;
            }
            tx
        })
}

/// A value for a `tx` field: hostile JSON, garbage hex, or a real transaction.
fn tx_field() -> impl Strategy<Value = Value> {
    prop_oneof![
        hostile_json(),
        prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| Value::from(hex::encode(b))),
        hostile_tx().prop_map(|tx| Value::from(hex::encode(codec::encode(&tx)))),
    ]
}

/// A body in the right shape for `POST /tx` or `POST /txs`, or nearly.
fn shaped_body() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    prop_oneof![
        tx_field().prop_map(|t| ("/tx", json!({ "tx": t }).to_string().into_bytes())),
        prop::collection::vec(tx_field(), 0..6)
            .prop_map(|txs| ("/txs", json!({ "txs": txs }).to_string().into_bytes())),
        (0usize..1_500).prop_map(|n| {
            let txs = vec!["00"; n];
            ("/txs", json!({ "txs": txs }).to_string().into_bytes())
        }),
        (1usize..100_000).prop_map(|depth| {
            let body = format!("{{\"tx\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
            ("/tx", body.into_bytes())
        }),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| {
            let mut body = b"{\"tx\":\"".to_vec();
            body.extend(b);
            body.extend(b"\"}");
            ("/tx", body)
        }),
        (1usize..3).prop_map(|mib| ("/tx", vec![b' '; (mib << 20) + 1])),
    ]
}

fn json_post(path: &str, body: Vec<u8>, content_type: Option<&str>) -> Request<Body> {
    let mut builder = Request::post(path);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder.body(Body::from(body)).unwrap()
}

proptest! {
    #![proptest_config(fuzz::config())]

    #[test]
    fn arbitrary_paths_and_queries_on_every_route(
        method in method(),
        route in prop::sample::select(ROUTES),
        seg in segment(),
        extra in prop_oneof![Just(String::new()), segment().prop_map(|s| format!("/{s}"))],
        query in query(),
    ) {
        let uri = format!("{}{extra}{query}", route.replace("{}", &seg));
        let request = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let (status, body) = call(request);
        check(&method, status, &body)?;
    }

    #[test]
    fn arbitrary_bodies_to_the_submit_routes(
        path in prop::sample::select(&["/tx", "/txs"][..]),
        body in prop::collection::vec(any::<u8>(), 0..2_048),
        content_type in prop::option::of(prop::sample::select(
            &["application/json", "text/plain", "application/json; charset=utf-8", "\u{0}"][..]
        )),
    ) {
        let request = match Request::post(path).header("content-type", content_type.unwrap_or("x")).body(Body::from(body.clone())) {
            Ok(r) => r,
            Err(_) => json_post(path, body, None),
        };
        let (status, body) = call(request);
        check(&Method::POST, status, &body)?;
    }

    #[test]
    fn hostile_json_in_the_shape_of_submissions((path, body) in shaped_body()) {
        let (status, answer) = call(json_post(path, body, Some("application/json")));
        check(&Method::POST, status, &answer)?;
    }
}

#[test]
fn hostile_transactions_are_refused_or_accepted_never_crash() {
    // A few hand-picked extremes on top of the generated ones.
    let key = funded();
    for (nonce, amount) in [(0, u64::MAX), (u64::MAX, 1), (0, 0)] {
        let tx = Transaction {
            chain_id: "fuzz".into(),
            from: key.account(),
            nonce,
            kind: TxKind::Transfer {
                to: AccountId([1; 32]),
                amount,
            },
        }
        .sign(&key);
        let body = json!({ "tx": hex::encode(codec::encode(&tx)) }).to_string();
        let (status, answer) = call(json_post(
            "/tx",
            body.into_bytes(),
            Some("application/json"),
        ));
        check(&Method::POST, status, &answer).unwrap();
    }
    let unknown = Hash32::digest(b"never submitted").to_hex();
    let (status, _) = call(
        Request::get(format!("/tx/{unknown}?wait_ms=18446744073709551615"))
            .body(Body::empty())
            .unwrap(),
    );
    assert_eq!(status, StatusCode::NOT_FOUND);
}
