//! What the in-process fuzz tests of every HTTP server share (chain RPC,
//! gateway, provider): the case budget, URI-safe encoding of arbitrary
//! bytes, hostile JSON, one request through a router, and the OpenAI error
//! shape the gateway and provider must answer in.

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::Router;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};
use tower::ServiceExt;

/// 512 cases per property in CI; `PROPTEST_CASES=N` for a long run. Failures
/// are not persisted: the fuzz tests name their regressions as tests.
pub fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Percent-encode everything but unreserved characters, so any bytes make a valid URI.
pub fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (*b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Any JSON, nested up to 6 deep: extreme numbers, long strings, hex and
/// numeric-looking strings, plus the caller's `plausible` leaves (at least
/// one: a served model's name or id), so some values reach deeper validation.
pub fn hostile_json(plausible: Vec<Value>) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(-0.0)),
        Just(json!(1e308)),
        ".{0,40}".prop_map(Value::from),
        any::<Vec<u8>>().prop_map(|b| Value::from(hex::encode(b))),
        (0usize..100_000, prop_oneof![Just("0"), Just("x")])
            .prop_map(|(n, c)| Value::from(c.repeat(n))),
        proptest::sample::select(plausible),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Send `request` through `router` on `runtime`; the status and whole body.
pub fn call(
    runtime: &tokio::runtime::Runtime,
    router: &Router,
    request: Request<Body>,
) -> (StatusCode, Vec<u8>) {
    runtime.block_on(async {
        let response = router
            .clone()
            .oneshot(request)
            .await
            .expect("a router never fails");
        let status = response.status();
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the body is read whole");
        (status, body.to_vec())
    })
}

/// The `error` object of an OpenAI-shaped error body: `message` and `type`
/// strings, `param` present (a string or null), `code` a string or null.
pub fn openai_error(status: StatusCode, body: &[u8]) -> Result<Value, TestCaseError> {
    let text = String::from_utf8_lossy(body);
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TestCaseError::fail(format!("{status}: not JSON ({e}): {text}")))?;
    let error = v["error"].clone();
    prop_assert!(error["message"].is_string(), "{status}: {text}");
    prop_assert!(error["type"].is_string(), "{status}: {text}");
    prop_assert!(
        error["param"].is_string() || error["param"].is_null(),
        "{status}: {text}"
    );
    prop_assert!(
        error["code"].is_string() || error["code"].is_null(),
        "{status}: {text}"
    );
    prop_assert!(
        error.as_object().is_some_and(|o| o.contains_key("param")),
        "{status}: {text}"
    );
    Ok(error)
}
