//! Client requests: an OpenAI completion body parsed and validated (with
//! field-precise errors) into a [`CompletionRequest`]. The shapes live in
//! `agora_wire::openai`; the limits and defaults here are the gateway's policy.

use agora_types::{ChatMessage, JobInput, SamplingParams};
use agora_wire::openai::Endpoint;
use agora_wire::provider::{MAX_STOPS, MAX_STOP_BYTES};
use serde_json::{Map, Value};

use crate::tools::{self, Tools};
use crate::{ApiError, Routing};

/// `max_tokens` when the client sends neither it nor `max_completion_tokens`.
pub const DEFAULT_MAX_TOKENS: u32 = 256;
/// Most completions one request may ask for (`n`).
pub const MAX_CHOICES: u32 = 8;
/// Most models one request may name (`model` and `models` together).
pub const MAX_MODELS: usize = 8;

/// A validated completion request.
#[derive(Clone, Debug, PartialEq)]
pub struct CompletionRequest {
    /// The `model` string exactly as sent (echoed back), or the first of `models`.
    pub model: String,
    /// OpenRouter's `models`: tried in order after `model` when it has no
    /// provider, is unknown, or every provider failed before answering.
    pub fallbacks: Vec<String>,
    /// The prompt.
    pub input: JobInput,
    /// Sampling; `seed` is `None` when the client sent none.
    pub params: SamplingParams,
    /// Whether the client sent a seed.
    pub seeded: bool,
    /// Completions to generate; choice `i` samples from RNG stream `i`.
    pub n: u32,
    /// SSE streaming.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// OpenRouter-style provider preferences.
    pub routing: Routing,
    /// Functions the model may call (`None`: no tools, or `tool_choice: none`).
    pub tools: Option<Tools>,
}

/// Parse a request body for `endpoint`.
pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<CompletionRequest, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("We could not parse the JSON body: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(ApiError::malformed(
            "The request body must be a JSON object",
        ));
    };
    let mut fallbacks = models(&obj)?;
    let model = match obj.get("model") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) if !fallbacks.is_empty() => {
            fallbacks.remove(0)
        }
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(ApiError::invalid("model", "`model` is required"))
        }
        Some(_) => return Err(ApiError::invalid("model", "`model` must be a string")),
    };
    let mut seen = std::collections::HashSet::from([model.clone()]);
    fallbacks.retain(|m| seen.insert(m.clone()));
    // Key order matters inside schemas; the body is parsed again, ordered,
    // only when one is there, and at most once.
    let ordered_body = std::cell::OnceCell::new();
    let ordered = || -> Result<&tools::Json, ApiError> {
        if let Some(parsed) = ordered_body.get() {
            return Ok(parsed);
        }
        let parsed = tools::ordered(body)?;
        Ok(ordered_body.get_or_init(|| parsed))
    };
    let format = tools::response_format(&obj, ordered)?;
    let tools = match endpoint {
        Endpoint::Chat => tools::tools(&obj, ordered)?,
        Endpoint::Completions if obj.get("tools").is_some_and(|t| !t.is_null()) => {
            return Err(ApiError::invalid(
                "tools",
                "`tools` needs the chat endpoint",
            ))
        }
        Endpoint::Completions => None,
    };
    let forced = tools.as_ref().and_then(Tools::constraint);
    if forced.is_some() && format.is_some() {
        return Err(ApiError::invalid(
            "response_format",
            "`response_format` cannot be combined with a `tool_choice` that forces a call",
        ));
    }
    let input = match endpoint {
        Endpoint::Chat => {
            let mut messages = messages(&obj)?;
            if let Some(tools) = &tools {
                tools::instruct(&mut messages, tools);
            }
            JobInput::Chat { messages }
        }
        Endpoint::Completions => JobInput::Text {
            prompt: prompt(&obj)?,
        },
    };
    let (max_key, max_value) = match uint(&obj, "max_completion_tokens")? {
        Some(n) => ("max_completion_tokens", Some(n)),
        None => ("max_tokens", uint(&obj, "max_tokens")?),
    };
    let max_tokens = match max_value {
        Some(0) => {
            return Err(ApiError::invalid(
                max_key,
                format!("`{max_key}` must be at least 1"),
            ))
        }
        Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
        None => DEFAULT_MAX_TOKENS,
    };
    let temperature = number(&obj, "temperature")?.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            "temperature",
            "`temperature` must be between 0 and 2",
        ));
    }
    let top_p = number(&obj, "top_p")?.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(
            "top_p",
            "`top_p` must be greater than 0 and at most 1",
        ));
    }
    let seed = match obj.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_i64().map(|i| i as u64))
                .ok_or_else(|| ApiError::invalid("seed", "`seed` must be an integer"))?,
        ),
    };
    let stream = boolean(&obj, "stream")?.unwrap_or(false);
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => boolean(o, "include_usage")
            .map_err(|e| rename(e, "stream_options.include_usage"))?
            .unwrap_or(false),
        Some(_) => {
            return Err(ApiError::invalid(
                "stream_options",
                "`stream_options` must be an object",
            ))
        }
    };
    let mut routing = match obj.get("provider") {
        None | Some(Value::Null) => Routing::default(),
        Some(v) => Routing::parse(v)?,
    };
    let mut params = SamplingParams::new(
        max_tokens,
        temperature as f32,
        top_p as f32,
        stops(&obj)?,
        seed.unwrap_or_else(rand::random),
    );
    params.presence_penalty = penalty(&obj, "presence_penalty")?;
    params.frequency_penalty = penalty(&obj, "frequency_penalty")?;
    params.logprobs = logprobs(endpoint, &obj)?;
    params.constraint = forced.or(format);
    // Only engines that sample themselves can mask tokens; upstream-backed
    // providers refuse constrained jobs, so they are never planned for one.
    routing.require_replayable |= params.constraint.is_some();
    let n = match uint(&obj, "n")? {
        None => 1,
        Some(n) if (1..=u64::from(MAX_CHOICES)).contains(&n) => n as u32,
        Some(_) => {
            return Err(ApiError::invalid(
                "n",
                format!("`n` must be between 1 and {MAX_CHOICES}"),
            ))
        }
    };
    Ok(CompletionRequest {
        model,
        fallbacks,
        input,
        params,
        seeded: seed.is_some(),
        n,
        stream,
        include_usage,
        routing,
        tools,
    })
}

/// OpenAI's penalties: numbers in [-2, 2], default 0.
fn penalty(obj: &Map<String, Value>, key: &str) -> Result<f32, ApiError> {
    let p = number(obj, key)?.unwrap_or(0.0);
    if !(-2.0..=2.0).contains(&p) {
        return Err(ApiError::invalid(
            key,
            format!("`{key}` must be between -2 and 2"),
        ));
    }
    Ok(p as f32)
}

/// How many alternatives per token to report: chat uses `logprobs: bool` plus
/// `top_logprobs` (0–20); legacy completions use `logprobs: int` (0–5).
fn logprobs(endpoint: Endpoint, obj: &Map<String, Value>) -> Result<Option<u8>, ApiError> {
    match endpoint {
        Endpoint::Chat => {
            let top = uint(obj, "top_logprobs")?;
            if top.is_some_and(|k| k > 20) {
                return Err(ApiError::invalid(
                    "top_logprobs",
                    "`top_logprobs` must be between 0 and 20",
                ));
            }
            match boolean(obj, "logprobs")? {
                Some(true) => Ok(Some(top.unwrap_or(0) as u8)),
                _ if top.is_some() => Err(ApiError::invalid(
                    "top_logprobs",
                    "`top_logprobs` requires `logprobs: true`",
                )),
                _ => Ok(None),
            }
        }
        Endpoint::Completions => match uint(obj, "logprobs")? {
            Some(k) if k > 5 => Err(ApiError::invalid(
                "logprobs",
                "`logprobs` must be between 0 and 5",
            )),
            Some(k) => Ok(Some(k as u8)),
            None => Ok(None),
        },
    }
}

fn rename(mut e: ApiError, param: &str) -> ApiError {
    e.param = Some(param.to_string());
    e
}

/// OpenRouter's `models`: an array of at most [`MAX_MODELS`] model names.
fn models(obj: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let list = match obj.get("models") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(ApiError::invalid(
                "models",
                "`models` must be an array of model names",
            ))
        }
    };
    if list.len() > MAX_MODELS {
        return Err(ApiError::invalid(
            "models",
            format!("`models` may name at most {MAX_MODELS} models"),
        ));
    }
    list.iter()
        .map(|m| match m {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(ApiError::invalid(
                "models",
                "`models` must hold non-empty strings",
            )),
        })
        .collect()
}

fn messages(obj: &Map<String, Value>) -> Result<Vec<ChatMessage>, ApiError> {
    let Some(list) = obj.get("messages") else {
        return Err(ApiError::invalid("messages", "`messages` is required"));
    };
    let Some(list) = list.as_array() else {
        return Err(ApiError::invalid("messages", "`messages` must be an array"));
    };
    if list.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "`messages` must contain at least one message",
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect()
}

fn message(i: usize, m: &Value) -> Result<ChatMessage, ApiError> {
    let at = |field: &str| format!("messages[{i}].{field}");
    let role = match m.get("role") {
        Some(Value::String(r))
            if ["system", "developer", "user", "assistant", "tool"].contains(&r.as_str()) =>
        {
            // `developer` is the newer name for `system`.
            if r == "developer" {
                "system".to_string()
            } else {
                r.clone()
            }
        }
        Some(Value::String(r)) => {
            return Err(ApiError::invalid(
                &at("role"),
                format!("Role `{r}` is not supported (system, developer, user, assistant, tool)"),
            ))
        }
        _ => {
            return Err(ApiError::invalid(
                &at("role"),
                "Each message needs a string `role`",
            ))
        }
    };
    let calls = m.get("tool_calls").filter(|c| !c.is_null());
    let content = match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None if role == "assistant" => match calls {
            Some(calls) => tools::calls_as_text(i, calls)?,
            None => String::new(),
        },
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                match (
                    part.get("type").and_then(Value::as_str),
                    part.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    _ => {
                        let msg = "Only text content parts (`{\"type\": \"text\", \"text\": ...}`) are supported";
                        return Err(ApiError::invalid(
                            &format!("messages[{i}].content[{j}]"),
                            msg,
                        ));
                    }
                }
            }
            text
        }
        _ => {
            return Err(ApiError::invalid(
                &at("content"),
                "`content` must be a string or an array of text parts",
            ))
        }
    };
    if role == "tool" {
        return tools::tool_result(i, m, content);
    }
    Ok(ChatMessage { role, content })
}

fn prompt(obj: &Map<String, Value>) -> Result<String, ApiError> {
    match obj.get("prompt") {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(items)) if items.len() == 1 && items[0].is_string() => {
            Ok(items[0].as_str().unwrap_or_default().to_string())
        }
        Some(Value::Array(_)) => Err(ApiError::invalid(
            "prompt",
            "Only a single prompt string is supported",
        )),
        None | Some(Value::Null) => Err(ApiError::invalid("prompt", "`prompt` is required")),
        Some(_) => Err(ApiError::invalid("prompt", "`prompt` must be a string")),
    }
}

fn stops(obj: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    let stops = match obj.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::invalid("stop", "`stop` must be a string or an array of strings")
            })?,
        Some(_) => {
            return Err(ApiError::invalid(
                "stop",
                "`stop` must be a string or an array of strings",
            ))
        }
    };
    if stops.len() > MAX_STOPS {
        return Err(ApiError::invalid(
            "stop",
            format!("At most {MAX_STOPS} stop sequences are allowed"),
        ));
    }
    if stops.iter().any(|s| s.len() > MAX_STOP_BYTES) {
        return Err(ApiError::invalid(
            "stop",
            format!("A stop sequence may be at most {MAX_STOP_BYTES} bytes long"),
        ));
    }
    Ok(stops)
}

fn number(obj: &Map<String, Value>, key: &str) -> Result<Option<f64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| ApiError::invalid(key, format!("`{key}` must be a number"))),
    }
}

fn uint(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            ApiError::invalid(key, format!("`{key}` must be a non-negative integer"))
        }),
    }
}

fn boolean(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| ApiError::invalid(key, format!("`{key}` must be a boolean"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(body: Value) -> Result<CompletionRequest, ApiError> {
        parse(Endpoint::Chat, body.to_string().as_bytes())
    }

    #[test]
    fn models_name_fallbacks_after_the_primary() {
        let msgs = json!([{"role": "user", "content": "x"}]);
        let r =
            chat(json!({"model": "a", "models": ["a", "b", "c", "b"], "messages": msgs})).unwrap();
        assert_eq!(
            (r.model.as_str(), r.fallbacks.clone()),
            ("a", vec!["b".to_string(), "c".into()])
        );
        let r = chat(json!({"models": ["b", "c"], "messages": msgs})).unwrap();
        assert_eq!(
            (r.model.as_str(), r.fallbacks.clone()),
            ("b", vec!["c".to_string()])
        );
        let many: Vec<String> = (0..9).map(|i| format!("m{i}")).collect();
        for bad in [json!("a"), json!([1]), json!([""]), json!(many)] {
            let e = chat(json!({"model": "a", "models": bad, "messages": msgs})).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("models"), "{bad}");
        }
        assert_eq!(
            chat(json!({"models": [], "messages": msgs}))
                .unwrap_err()
                .param
                .as_deref(),
            Some("model")
        );
    }

    #[test]
    fn response_formats_set_the_constraint_and_route_to_replayable_providers() {
        let msgs = json!([{"role": "user", "content": "x"}]);
        let text =
            chat(json!({"model": "a", "messages": msgs, "response_format": {"type": "text"}}))
                .unwrap();
        assert_eq!(text.params.constraint, None);
        assert!(!text.routing.require_replayable);
        let object = chat(
            json!({"model": "a", "messages": msgs, "response_format": {"type": "json_object"}}),
        )
        .unwrap();
        assert_eq!(
            object.params.constraint,
            Some(agora_types::OutputConstraint::JsonObject)
        );
        assert!(object.routing.require_replayable);
        let e = chat(
            json!({"model": "a", "messages": msgs, "response_format": {"type": "json_schema"}}),
        )
        .unwrap_err();
        assert_eq!(
            e.param.as_deref(),
            Some("response_format.json_schema.schema")
        );
    }

    #[test]
    fn defaults_and_fields_are_read() {
        let r = chat(json!({
            "model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
            "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "stop": "x", "seed": 3, "stream": true,
            "stream_options": {"include_usage": true}, "presence_penalty": 0, "n": 1, "user": "u",
        }))
        .unwrap();
        assert_eq!(
            r.input,
            JobInput::Chat {
                messages: vec![ChatMessage {
                    role: "user".into(),
                    content: "ab".into()
                }]
            }
        );
        assert_eq!(
            r.params,
            SamplingParams::new(7, 0.5, 0.9, vec!["x".into()], 3)
        );
        assert!(r.seeded && r.stream && r.include_usage);
        let r = chat(json!({
            "model": "m", "messages": [{"role": "user", "content": "x"}],
            "logprobs": true, "top_logprobs": 3, "presence_penalty": 0.5, "frequency_penalty": -1,
        }))
        .unwrap();
        assert_eq!(r.params.logprobs, Some(3));
        assert_eq!(
            (r.params.presence_penalty, r.params.frequency_penalty),
            (0.5, -1.0)
        );
        let r = parse(
            Endpoint::Completions,
            json!({"model": "m", "prompt": "p", "logprobs": 2})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(r.params.logprobs, Some(2));
        let r =
            chat(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})).unwrap();
        assert!(!r.seeded);
        assert_eq!(r.params.max_tokens, DEFAULT_MAX_TOKENS);
        assert_eq!(r.params.temperature, 1.0);
    }

    #[test]
    fn bad_fields_name_their_param() {
        let cases = [
            (
                json!({"messages": [{"role": "user", "content": "hi"}]}),
                "model",
            ),
            (json!({"model": "m"}), "messages"),
            (json!({"model": "m", "messages": []}), "messages"),
            (
                json!({"model": "m", "messages": [{"role": "function", "content": "x"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": 5}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}),
                "max_tokens",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
                "max_tokens",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}),
                "temperature",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": 0}),
                "top_p",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": ["a","b","c","d","e"]}),
                "stop",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "s".repeat(257)}),
                "stop",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 9}),
                "n",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 0}),
                "n",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": "s"}),
                "seed",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}),
                "top_logprobs",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 21}),
                "top_logprobs",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "presence_penalty": 2.5}),
                "presence_penalty",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}),
                "stream",
            ),
        ];
        for (body, param) in cases {
            let e = chat(body.clone()).unwrap_err();
            assert_eq!(e.status, 400, "{body}");
            assert_eq!(e.param.as_deref(), Some(param), "{body}");
        }
        assert_eq!(
            parse(Endpoint::Chat, b"{\"model\": ").unwrap_err().code,
            "invalid_json"
        );
        assert_eq!(
            parse(Endpoint::Chat, b"[1]").unwrap_err().code,
            "invalid_json"
        );
    }

    #[test]
    fn completions_take_a_prompt() {
        let r = parse(
            Endpoint::Completions,
            json!({"model": "m", "prompt": ["p"]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(r.input, JobInput::Text { prompt: "p".into() });
        assert_eq!(r.params.max_tokens, DEFAULT_MAX_TOKENS);
        let e = parse(
            Endpoint::Completions,
            json!({"model": "m", "prompt": ["a", "b"]})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(e.unwrap_err().param.as_deref(), Some("prompt"));
    }
}
