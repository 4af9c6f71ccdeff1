//! `POST /v1/embeddings`: texts in, one unit vector per text out, run as an
//! embedding job ([`JobInput::Embed`]) on a provider of an embedding model,
//! with the same keys, reservations, receipts and payments as completions.

use std::sync::Arc;

use agora_types::{JobInput, SamplingParams};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::completion::{prepare, run_to_end, with_headers};
use crate::handlers::read_body;
use crate::request::CompletionRequest;
use crate::{ApiError, Directory, Gateway, Routing};

/// The route.
pub const EMBEDDINGS_ROUTE: &str = "/v1/embeddings";
/// Most texts one request may embed (the engine's limit too).
pub const MAX_INPUTS: usize = 2048;

/// How vectors are written in the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    /// JSON arrays of numbers.
    Float,
    /// Base64 of the little-endian `f32` bytes (what OpenAI's SDKs ask for).
    Base64,
}

/// `POST /v1/embeddings`.
pub async fn embeddings<D: Directory>(
    State(gw): State<Arc<Gateway<D>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(e) = gw.authorize(&headers) {
        return e.into_response();
    }
    run(gw, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn run<D: Directory>(
    gw: Arc<Gateway<D>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&headers, body, gw.config.max_body_bytes).await?;
    let (req, encoding) = parse(&bytes)?;
    let (jobs, plan, charge) = prepare(&gw, &headers, &req).await?;
    let done = run_to_end(&gw, &req.model, &jobs[0], plan, &charge).await?;
    let data: Vec<Value> = done
        .embeddings
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = match encoding {
                Encoding::Float => json!(v),
                Encoding::Base64 => {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                }
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let usage = json!({
        "prompt_tokens": done.billed.usage.prompt_tokens,
        "total_tokens": done.billed.usage.prompt_tokens,
        "cost": done.billed.cost,
    });
    let body = json!({"object": "list", "data": data, "model": req.model, "usage": usage});
    Ok(with_headers(
        Json(body).into_response(),
        &[done.job_id.as_str()],
        &done.provider,
    ))
}

/// Parse and check a request body.
fn parse(body: &[u8]) -> Result<(CompletionRequest, Encoding), ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("We could not parse the JSON body: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ApiError::malformed(
            "The request body must be a JSON object",
        ));
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => {
            return Err(ApiError::invalid(
                "model",
                "`model` is required and must be a string",
            ))
        }
    };
    let inputs = inputs(&obj)?;
    let encoding = match obj.get("encoding_format") {
        None | Some(Value::Null) => Encoding::Float,
        Some(Value::String(f)) if f == "float" => Encoding::Float,
        Some(Value::String(f)) if f == "base64" => Encoding::Base64,
        Some(_) => {
            return Err(ApiError::invalid(
                "encoding_format",
                "`encoding_format` must be `float` or `base64`",
            ))
        }
    };
    if obj.get("dimensions").is_some_and(|d| !d.is_null()) {
        // The vectors are the model's own width; truncating would change them.
        return Err(ApiError::invalid(
            "dimensions",
            "`dimensions` is not supported: vectors have the model's own width",
        ));
    }
    let routing = match obj.get("provider") {
        None | Some(Value::Null) => Routing::default(),
        Some(v) => Routing::parse(v)?,
    };
    let req = CompletionRequest {
        model,
        fallbacks: Vec::new(),
        input: JobInput::Embed { inputs },
        // No sampling: fixed parameters, which the receipt signs like any job's.
        params: SamplingParams::new(1, 0.0, 1.0, Vec::new(), 0),
        seeded: false,
        n: 1,
        stream: false,
        include_usage: false,
        routing,
        tools: None,
    };
    Ok((req, encoding))
}

/// `input`: one string or an array of 1..=[`MAX_INPUTS`] non-empty strings.
fn inputs(obj: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let inputs = match obj.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .map(|s| s.as_str().unwrap_or_default().to_string())
            .collect(),
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid(
                "input",
                "`input` must be a string or an array of strings (token arrays are not supported)",
            ))
        }
        None | Some(Value::Null) => return Err(ApiError::invalid("input", "`input` is required")),
        Some(_) => {
            return Err(ApiError::invalid(
                "input",
                "`input` must be a string or an array of strings",
            ))
        }
    };
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        let msg = format!("`input` must hold between 1 and {MAX_INPUTS} strings");
        return Err(ApiError::invalid("input", msg));
    }
    if let Some(i) = inputs.iter().position(String::is_empty) {
        return Err(ApiError::invalid(
            &format!("input[{i}]"),
            "Inputs must not be empty",
        ));
    }
    Ok(inputs)
}
