//! The body of a completion request as a client sends it (agora's upstream
//! engine, to an OpenAI-compatible server): always streamed.

use agora_types::{JobInput, SamplingParams};
use serde_json::{json, Map, Value};

use super::Endpoint;

/// The streaming request body for a job, sent with `seed`; returns the
/// endpoint it goes to (chat for messages, completions for a text prompt),
/// or `None` for an embedding job, which is no completion.
pub fn request_body(
    model: &str,
    input: &JobInput,
    params: &SamplingParams,
    seed: i64,
) -> Option<(Endpoint, Value)> {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    let endpoint = match input {
        JobInput::Chat { messages } => {
            let messages: Vec<Value> = messages
                .iter()
                .map(|m| json!({"role": m.role, "content": m.content}))
                .collect();
            body.insert("messages".into(), Value::Array(messages));
            Endpoint::Chat
        }
        JobInput::Text { prompt } => {
            body.insert("prompt".into(), json!(prompt));
            Endpoint::Completions
        }
        JobInput::Embed { .. } => return None,
    };
    body.insert("stream".into(), json!(true));
    body.insert("max_tokens".into(), json!(params.max_tokens));
    body.insert("temperature".into(), decimal(params.temperature));
    body.insert("top_p".into(), decimal(params.top_p));
    body.insert("seed".into(), json!(seed));
    if !params.stop.is_empty() {
        body.insert("stop".into(), json!(params.stop));
    }
    if params.presence_penalty != 0.0 {
        body.insert("presence_penalty".into(), decimal(params.presence_penalty));
    }
    if params.frequency_penalty != 0.0 {
        body.insert(
            "frequency_penalty".into(),
            decimal(params.frequency_penalty),
        );
    }
    if let Some(k) = params.logprobs {
        match endpoint {
            Endpoint::Chat => {
                body.insert("logprobs".into(), json!(true));
                body.insert("top_logprobs".into(), json!(k));
            }
            Endpoint::Completions => {
                body.insert("logprobs".into(), json!(k));
            }
        }
    }
    Some((endpoint, Value::Object(body)))
}

/// `x` as the shortest decimal that reads back as the same `f32` (0.9, not
/// 0.8999999761581421), so the upstream sees the number the client sent.
fn decimal(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .map_or_else(|_| json!(x), |d| json!(d))
}
