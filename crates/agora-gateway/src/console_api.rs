//! What the console reads through the gateway, so a browser needs one
//! origin only: `GET /v1/providers` (each provider with the latency and
//! throughput this gateway measured) and `/chain/...`, the chain RPC's read
//! routes and `POST /chain/tx`, passed through unchanged.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::handlers::{current, read_body};
use crate::{ApiError, Directory, Gateway};

/// Where the chain RPC is mounted.
pub const CHAIN_ROUTE: &str = "/chain/{*path}";
/// Providers with their measured latency and throughput.
pub const PROVIDERS_ROUTE: &str = "/v1/providers";
/// The one chain route that takes a body: submitting a signed transaction.
const SUBMIT_PATH: &str = "/tx";
/// Largest transaction submission passed on (the chain RPC's own limit).
const MAX_SUBMIT_BYTES: usize = 1 << 20;
/// Longest a chain call may take (the RPC's `wait_ms` is at most 30 s).
const CHAIN_TIMEOUT: Duration = Duration::from_secs(35);

type Gw<D> = State<Arc<Gateway<D>>>;

/// `GET /v1/providers`: every registered provider, the models it serves by
/// name, its price and what this gateway measured of it.
pub async fn providers<D: Directory>(State(gw): Gw<D>) -> Response {
    let snap = match current(&gw).await {
        Ok(snap) => snap,
        Err(e) => return e.into_response(),
    };
    let health = gw.health.lock().unwrap_or_else(|e| e.into_inner());
    let data: Vec<Value> = snap
        .providers
        .iter()
        .map(|p| {
            let (ttft_ms, tokens_per_s, failing) = health.measured(&p.id);
            let models: Vec<&str> = snap
                .models
                .iter()
                .filter(|m| p.models.contains(&m.id))
                .map(|m| m.name.as_str())
                .collect();
            json!({
                "id": p.id, "endpoint": p.endpoint, "models": models, "price": p.price,
                "stake": p.stake, "replayable": p.replayable,
                "ttft_ms": ttft_ms, "tokens_per_s": tokens_per_s, "failing": failing,
            })
        })
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

fn chain_http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(CHAIN_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

fn bad_gateway(message: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "server_error",
        "chain_unreachable",
        message,
    )
}

/// `/chain/...`: the chain RPC's `GET` routes, and `POST /chain/tx`.
/// Nothing else passes: the gateway never lends the browser its own access.
pub async fn chain<D: Directory>(
    State(gw): Gw<D>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match pass_through(&gw, method, &uri, &headers, body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn pass_through<D: Directory>(
    gw: &Gateway<D>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(chain) = gw.directory.chain() else {
        return Err(ApiError::unknown_route(uri.path()));
    };
    let path = uri.path().strip_prefix("/chain").unwrap_or_default();
    if path.split('/').any(|s| s == ".." || s == ".") {
        return Err(ApiError::invalid("path", "dot segments are not allowed"));
    }
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let url = format!("{}{path}{query}", chain.url().trim_end_matches('/'));
    let request = match method {
        Method::GET => chain_http().get(&url),
        Method::POST if path == SUBMIT_PATH => {
            let bytes = read_body(headers, body, MAX_SUBMIT_BYTES).await?;
            chain_http()
                .post(&url)
                .header(header::CONTENT_TYPE, "application/json")
                .body(bytes)
        }
        _ => return Err(ApiError::wrong_method()),
    };
    let resp = request
        .send()
        .await
        .map_err(|e| bad_gateway(format!("the chain RPC cannot be reached: {e}")))?;
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    Ok((
        status,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(resp.bytes_stream()),
    )
        .into_response())
}
