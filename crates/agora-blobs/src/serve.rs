//! Serving blobs over HTTP: `GET /v1/blobs/{id}?start=S&end=E` answers the
//! bao encoding of bytes `S..E` (whole chunk groups with their proof), with
//! the blob's size in `x-agora-blob-size`; `HEAD` the same URL for the size
//! alone. Errors are OpenAI-shaped JSON: 400 for a malformed id or a range
//! over [`MAX_RANGE_BYTES`], 404 for a blob not held, 416 for a range
//! outside it, 500 for a stored copy that no longer verifies.

use std::sync::Arc;

use agora_types::Hash32;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::{BlobError, BlobStore};

/// The route, as a router registers it.
pub const BLOB_ROUTE: &str = "/v1/blobs/{id}";

/// The header carrying the blob's size.
pub const SIZE_HEADER: &str = "x-agora-blob-size";

/// Most bytes one request may ask for (the encoding is built in memory).
pub const MAX_RANGE_BYTES: u64 = 16 << 20;

/// The URL of blob `id` at the peer reachable at `base`.
pub fn blob_url(base: &str, id: &Hash32) -> String {
    format!("{}/v1/blobs/{}", base.trim_end_matches('/'), id.to_hex())
}

#[derive(Deserialize)]
struct RangeQuery {
    start: Option<u64>,
    end: Option<u64>,
}

fn refuse(status: StatusCode, code: &str, message: String) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "code": code, "param": null}});
    (status, Json(body)).into_response()
}

fn with_size(mut response: Response, size: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&size.to_string()) {
        response.headers_mut().insert(SIZE_HEADER, v);
    }
    response
}

/// The blob routes over `store`.
pub fn router(store: Arc<BlobStore>) -> Router {
    Router::new()
        .route(BLOB_ROUTE, get(range).head(size))
        .with_state(store)
}

fn parse(id: &str) -> Result<Hash32, Box<Response>> {
    id.parse::<Hash32>().map_err(|_| {
        Box::new(refuse(
            StatusCode::BAD_REQUEST,
            "bad_blob_id",
            format!("{id:?} is not a blob id (64 hex digits)"),
        ))
    })
}

async fn size(State(store): State<Arc<BlobStore>>, Path(id): Path<String>) -> Response {
    let id = match parse(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match store.size(&id) {
        Ok(Some(size)) => with_size(StatusCode::OK.into_response(), size),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn range(
    State(store): State<Arc<BlobStore>>,
    Path(id): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let id = match parse(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let size = match store.size(&id) {
        Ok(Some(size)) => size,
        Ok(None) => {
            return refuse(
                StatusCode::NOT_FOUND,
                "unknown_blob",
                format!("no blob {id} here"),
            )
        }
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
    };
    let (start, end) = (q.start.unwrap_or(0), q.end.unwrap_or(size));
    if end.saturating_sub(start) > MAX_RANGE_BYTES {
        let msg = format!("at most {MAX_RANGE_BYTES} bytes per request");
        return refuse(StatusCode::BAD_REQUEST, "range_too_large", msg);
    }
    let encoded = tokio::task::spawn_blocking(move || store.encode(&id, start..end)).await;
    let response = match encoded {
        Ok(Ok(bytes)) => bytes.into_response(),
        Ok(Err(e @ BlobError::OutOfRange { .. })) => refuse(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "bad_range",
            e.to_string(),
        ),
        Ok(Err(e)) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
        Err(e) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string()),
    };
    with_size(response, size)
}
