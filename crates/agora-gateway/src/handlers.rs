//! HTTP handlers: model listing, the two completion endpoints (run by
//! [`crate::completion`]) and OpenAI-shaped fallbacks.

use std::sync::Arc;

use agora_types::ProviderInfo;
use agora_wire::openai::{self, Endpoint};
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::completion;
use crate::{ApiError, Directory, Gateway};

type Gw<D> = State<Arc<Gateway<D>>>;

/// `GET /health`.
pub async fn health<D: Directory>(State(gw): Gw<D>) -> Json<Value> {
    let snap = gw.snapshot();
    Json(json!({"directory": snap.is_some(), "providers": snap.map_or(0, |s| s.providers.len())}))
}

fn model_object(snap: &crate::Snapshot, m: &agora_types::ModelEntry) -> Value {
    let providers: Vec<&ProviderInfo> = snap.providers_of(m).collect();
    let cheapest = providers
        .iter()
        .map(|p| p.price)
        .min_by_key(|p| p.input_per_1k.saturating_add(p.output_per_1k));
    let mut object = openai::model_object(&m.name, 0, "agora");
    object["agora"] = json!({
        "model_id": m.id, "architecture": m.architecture, "quantization": m.quantization,
        "size_bytes": m.size_bytes, "license": m.license, "providers": providers.len(),
        "cheapest_price_per_1k": cheapest,
    });
    object
}

pub(crate) async fn current<D: Directory>(gw: &Gateway<D>) -> Result<crate::Snapshot, ApiError> {
    if let Some(s) = gw.snapshot() {
        return Ok(s);
    }
    gw.refresh()
        .await
        .map_err(|e| ApiError::directory(format!("the network directory cannot be read: {e}")))?;
    gw.snapshot()
        .ok_or_else(|| ApiError::directory("the network directory is empty"))
}

/// `GET /v1/models`: models with at least one provider.
pub async fn models<D: Directory>(State(gw): Gw<D>) -> Response {
    match current(&gw).await {
        Ok(snap) => {
            let data: Vec<Value> = snap
                .models
                .iter()
                .filter(|m| snap.providers_of(m).next().is_some())
                .map(|m| model_object(&snap, m))
                .collect();
            Json(openai::model_list(data)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/models/{id}`.
pub async fn model<D: Directory>(
    State(gw): Gw<D>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        // Not UTF-8 once percent-decoded: no model has that name.
        Err(e) => return ApiError::invalid("model", e.body_text()).into_response(),
    };
    match current(&gw).await {
        Ok(snap) => match snap.model(&id) {
            Some(m) => Json(model_object(&snap, m)).into_response(),
            None => ApiError::unknown_model(&id).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

/// Fallback for unknown routes.
pub async fn unknown_route(uri: Uri) -> Response {
    ApiError::unknown_route(uri.path()).into_response()
}

/// Fallback for known routes called with the wrong method.
pub async fn wrong_method() -> Response {
    ApiError::wrong_method().into_response()
}

/// `POST /v1/chat/completions`.
pub async fn chat<D: Directory>(State(gw): Gw<D>, headers: HeaderMap, body: Body) -> Response {
    if let Err(e) = gw.authorize(&headers) {
        return e.into_response();
    }
    completion::complete(gw, Endpoint::Chat, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `POST /v1/completions`.
pub async fn completions<D: Directory>(
    State(gw): Gw<D>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = gw.authorize(&headers) {
        return e.into_response();
    }
    completion::complete(gw, Endpoint::Completions, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Read the body, refusing anything over `limit` bytes with a 413.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::malformed(format!("cannot read the request body: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::too_large(limit));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
