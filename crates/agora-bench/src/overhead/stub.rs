//! An OpenAI-compatible upstream that answers at once, for proxies that
//! speak OpenAI's API to their upstream (LiteLLM): `POST
//! /v1/chat/completions` answers [`REPLY`] with fixed usage, `GET
//! /v1/models` lists [`STUB_MODEL`]. It runs on agora's own server loop
//! ([`agora_tasks::serve`], `TCP_NODELAY` on every connection), like the
//! provider that the gateway's side of the benchmark calls.

use std::net::SocketAddr;

use agora_tasks::{bind, serve, Context, Failure, Shutdown, Task};
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::instant::REPLY;

/// The one model the stub lists.
pub const STUB_MODEL: &str = "instant";

/// The stub's routes.
pub fn router() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
}

/// A chat completion of [`REPLY`], naming the requested model.
async fn chat(body: Bytes) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let request: Value = serde_json::from_slice(&body).map_err(|e| {
        let error = json!({"error": {"message": e.to_string(), "type": "invalid_request_error", "param": null, "code": "invalid_json"}});
        (StatusCode::BAD_REQUEST, Json(error))
    })?;
    let model = request["model"].as_str().unwrap_or(STUB_MODEL);
    Ok(Json(json!({
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    })))
}

/// The model list.
async fn models() -> Json<Value> {
    Json(
        json!({"object": "list", "data": [{"id": STUB_MODEL, "object": "model", "created": 0, "owned_by": "agora-bench"}]}),
    )
}

/// Serve the stub on `listen` until `shutdown`; returns its OpenAI base URL.
pub async fn start(listen: SocketAddr, shutdown: Shutdown) -> Result<(String, Task), Failure> {
    let listener = bind(listen, "stub upstream").await?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    let task = tokio::spawn(async move {
        serve(
            listener,
            router(),
            agora_gateway::serve_limits(),
            shutdown.wait(),
        )
        .await
        .context("stub upstream server")
    });
    Ok((url, task))
}
