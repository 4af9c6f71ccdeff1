//! Fuzzing the gateway's request parsing in-process (`oneshot` on the real
//! router, a scripted provider behind it): arbitrary methods, paths and
//! query strings, arbitrary bodies and headers on `/v1/chat/completions`,
//! `/v1/completions` and `/v1/models`, and completion bodies of the right
//! shape with hostile values (huge, negative, wrong types, deep nesting,
//! huge or invalid UTF-8 strings). Every answer must be a sensible status
//! (never a 500; a 5xx only as 502/503 for routing) and every error
//! OpenAI's `{"error": {"message", "type", "param", "code"}}`.
//!
//! CI runs a short budget. The long run is the same test with more cases:
//! `PROPTEST_CASES=1000000 cargo test -p agora-gateway --test fuzz_requests`
//! (figures in docs/benchmarks.md).

mod common;

use std::sync::{Arc, OnceLock};

use agora_gateway::{Gateway, GatewayConfig, Snapshot};
use agora_testkit::fuzz;
use agora_types::Price;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use common::{model, stub, Script, Stub, TestDirectory};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// The served model's name.
const MODEL: &str = "tiny";

/// Two gateways over one scripted provider: one open, one with API keys.
struct Fixture {
    open: Router,
    keyed: Router,
    key: String,
    runtime: tokio::runtime::Runtime,
    _provider: Arc<Stub>,
    _book: common::TestBook,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let key = agora_keys::generate();
        let (open, keyed, provider, book) = runtime.block_on(async {
            let price = Price {
                input_per_1k: 1_000,
                output_per_1k: 2_000,
            };
            let provider = stub(Script::Deltas(vec!["hel", "lo"]), price).await;
            let m = model(MODEL);
            let snapshot = Snapshot {
                chain_id: common::CHAIN_ID.into(),
                providers: vec![provider.info(&[m.id])],
                models: vec![m],
            };
            let directory = TestDirectory::default();
            directory.set(Some(snapshot));
            let open = Gateway::new(directory.clone(), GatewayConfig::default());
            let payer = Arc::new(common::RecordingPayer::default());
            let book = common::TestBook::with_key(&key);
            let keyed = common::keyed_gateway(directory, &book, payer).await;
            open.refresh().await.unwrap();
            (open.router(), keyed.router(), provider, book)
        });
        Fixture {
            open,
            keyed,
            key,
            runtime,
            _provider: provider,
            _book: book,
        }
    })
}

/// Send one request through `router`; its status and body.
fn call(router: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    fuzz::call(&fixture().runtime, router, request)
}

/// The properties every answer keeps: no 500 (a 5xx only as a routing 502
/// or 503), and errors in OpenAI's JSON shape.
fn check(method: &Method, status: StatusCode, body: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(body);
    prop_assert!(
        status.is_success()
            || status.is_client_error()
            || status == StatusCode::BAD_GATEWAY
            || status == StatusCode::SERVICE_UNAVAILABLE,
        "{status}: {text}"
    );
    if status.is_success() || method == Method::HEAD {
        return Ok(());
    }
    fuzz::openai_error(status, body)?;
    Ok(())
}

/// Hostile JSON (the test kit's), with the served model's name among its leaves.
fn hostile_json() -> impl Strategy<Value = Value> {
    fuzz::hostile_json(vec![json!(MODEL)])
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(MODEL.to_string()),
        Just(String::new()),
        Just("%FF%FE%00".to_string()),
        Just("..".to_string()),
        any::<[u8; 32]>().prop_map(hex::encode),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| fuzz::percent_encode(&b)),
        // Up to four of these make a URI, which `http` caps at 64 KiB.
        (0usize..15_000).prop_map(|n| "m".repeat(n)),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        3 => Just(Method::POST),
        3 => Just(Method::GET),
        1 => Just(Method::PUT),
        1 => Just(Method::DELETE),
        1 => Just(Method::HEAD),
        1 => Just(Method::OPTIONS),
    ]
}

/// The gateway's routes (and near misses), `{}` where a segment goes.
const ROUTES: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/models",
    "/v1/models/{}",
    "/health",
    "/v1/{}",
    "/{}",
];

/// A plausible value for a completion field, or a hostile one.
fn field(plausible: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        3 => Just(None),
        2 => plausible.prop_map(Some),
        1 => hostile_json().prop_map(Some),
    ]
    .boxed()
}

fn message() -> impl Strategy<Value = Value> {
    let role = prop_oneof![
        Just(json!("user")),
        Just(json!("system")),
        Just(json!("assistant")),
        Just(json!("developer")),
        hostile_json(),
    ];
    let content = prop_oneof![
        ".{0,64}".prop_map(Value::from),
        ".{0,16}".prop_map(|t| json!([{"type": "text", "text": t}])),
        hostile_json(),
    ];
    (role, content).prop_map(|(role, content)| json!({"role": role, "content": content}))
}

/// A completion body for `endpoint`'s shape, each field plausible, hostile or absent.
fn shaped_body(chat: bool) -> impl Strategy<Value = Vec<u8>> {
    let input = if chat {
        field(prop::collection::vec(message(), 0..4).prop_map(Value::from))
    } else {
        field(prop_oneof![
            ".{0,64}".prop_map(Value::from),
            ".{0,16}".prop_map(|p| json!([p])),
        ])
    };
    let number = |lo: f64, hi: f64| field((lo..hi).prop_map(|f| json!(f)));
    let fields = (
        field(Just(json!(MODEL))),
        input,
        field((1u64..64).prop_map(Value::from)),
        number(-0.5, 2.5),
        number(-0.5, 1.5),
        field(any::<u64>().prop_map(Value::from)),
        field(any::<bool>().prop_map(Value::from)),
        field(prop::collection::vec(".{0,4}", 0..6).prop_map(Value::from)),
        number(-3.0, 3.0),
        field((0u64..10).prop_map(Value::from)),
        field(any::<bool>().prop_map(|b| json!({"include_usage": b}))),
        field(Just(json!({"sort": "price", "allow_fallbacks": true}))),
    );
    let keys = [
        "model",
        if chat { "messages" } else { "prompt" },
        "max_tokens",
        "temperature",
        "top_p",
        "seed",
        "stream",
        "stop",
        "presence_penalty",
        "n",
        "stream_options",
        "provider",
    ];
    fields.prop_map(move |(a, b, c, d, e, f, g, h, i, j, k, l)| {
        let mut obj = Map::new();
        for (key, value) in keys.iter().zip([a, b, c, d, e, f, g, h, i, j, k, l]) {
            if let Some(v) = value {
                obj.insert(key.to_string(), v);
            }
        }
        Value::Object(obj).to_string().into_bytes()
    })
}

/// Bodies that attack the parser itself rather than the fields.
fn raw_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2_048),
        (1usize..100_000).prop_map(|depth| {
            format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
        }),
        (1usize..20_000).prop_map(|depth| {
            let open = "{\"model\":".repeat(depth);
            format!("{open}1{}", "}".repeat(depth)).into_bytes()
        }),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| {
            let mut body = b"{\"model\":\"".to_vec();
            body.extend(b);
            body.extend(b"\",\"prompt\":\"x\"}");
            body
        }),
        (0usize..3).prop_map(|extra| vec![b' '; (4 << 20) + extra]),
    ]
}

fn request(method: Method, uri: &str, body: Vec<u8>, content_type: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder.body(Body::from(body)).unwrap()
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(
        &["application/json", "text/plain", "multipart/form-data"][..],
    ))
}

proptest! {
    #![proptest_config(fuzz::config())]

    #[test]
    fn arbitrary_requests_to_every_route(
        method in method(),
        route in prop::sample::select(ROUTES),
        seg in segment(),
        extra in prop_oneof![Just(String::new()), segment().prop_map(|s| format!("/{s}"))],
        query in prop::collection::vec(("[a-z_]{1,8}", segment()), 0..3),
        body in prop_oneof![raw_body(), shaped_body(true), shaped_body(false)],
        content_type in content_type(),
    ) {
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let uri = format!("{}{extra}?{}", route.replace("{}", &seg), query.join("&"));
        let (status, answer) = call(&fixture().open, request(method.clone(), &uri, body, content_type));
        check(&method, status, &answer)?;
    }

    #[test]
    fn arbitrary_bodies_to_the_completion_endpoints(
        chat in any::<bool>(),
        body in raw_body(),
        content_type in content_type(),
    ) {
        let path = if chat { "/v1/chat/completions" } else { "/v1/completions" };
        let (status, answer) = call(&fixture().open, request(Method::POST, path, body, content_type));
        check(&Method::POST, status, &answer)?;
        prop_assert!(status.is_client_error(), "{status}");
    }

    #[test]
    fn hostile_values_in_the_shape_of_completions(
        (chat, body) in any::<bool>().prop_flat_map(|chat| (Just(chat), shaped_body(chat))),
    ) {
        let path = if chat { "/v1/chat/completions" } else { "/v1/completions" };
        let (status, answer) = call(&fixture().open, request(Method::POST, path, body, Some("application/json")));
        check(&Method::POST, status, &answer)?;
    }

    #[test]
    fn arbitrary_authorization_headers(
        header in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..128),
            ".{0,64}".prop_map(|s| format!("Bearer {s}").into_bytes()),
            Just(Vec::new()),
        ],
        right in any::<bool>(),
    ) {
        let f = fixture();
        let body = json!({"model": MODEL, "prompt": "hi", "max_tokens": 2}).to_string();
        let mut builder = Request::post("/v1/completions").header("content-type", "application/json");
        let value = if right { format!("Bearer {}", f.key).into_bytes() } else { header };
        if let Ok(v) = axum::http::HeaderValue::from_bytes(&value) {
            builder = builder.header("authorization", v);
        }
        let (status, answer) = call(&f.keyed, builder.body(Body::from(body)).unwrap());
        check(&Method::POST, status, &answer)?;
        if right {
            prop_assert_eq!(status, StatusCode::OK);
        } else if value != format!("Bearer {}", f.key).into_bytes() {
            prop_assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
}

#[test]
fn models_answer_even_for_hostile_ids() {
    let f = fixture();
    for id in ["", "%00", "%FF", &"a".repeat(60_000)] {
        let uri = format!("/v1/models/{id}");
        let (status, body) = call(&f.open, request(Method::GET, &uri, Vec::new(), None));
        check(&Method::GET, status, &body).unwrap();
    }
    let (status, body) = call(
        &f.open,
        request(Method::GET, "/v1/models", Vec::new(), None),
    );
    assert_eq!(status, StatusCode::OK);
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["data"][0]["id"], MODEL);
}
