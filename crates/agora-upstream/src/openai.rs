//! The OpenAI wire format as the upstream speaks it: request bodies for
//! `/chat/completions` and `/completions`, and the streamed chunks and error
//! bodies that come back.

use agora_types::{FinishReason, JobInput, SamplingParams};
use serde_json::{json, Map, Value};

/// Which OpenAI endpoint a job goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `POST {base}/chat/completions`: the upstream applies its chat template.
    Chat,
    /// `POST {base}/completions`: a raw text prompt.
    Completions,
}

impl Endpoint {
    /// The path below the base URL.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat/completions",
            Endpoint::Completions => "completions",
        }
    }
}

/// The seed sent upstream for a job: the job's seed for choice 0, a distinct
/// one for every further choice of an `n > 1` request (each choice is its own
/// job with the same seed; an upstream given equal seeds would repeat itself).
///
/// Sent as a signed 64-bit integer: vLLM refuses seeds outside `i64`, and
/// agora's own gateway reads a negative seed back as the same `u64`.
pub(crate) fn upstream_seed(params: &SamplingParams) -> i64 {
    let seed = match params.choice {
        0 => params.seed,
        c => params
            .seed
            .wrapping_add(u64::from(c).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    };
    seed as i64
}

/// The streaming request body for a job.
pub(crate) fn request_body(
    model: &str,
    input: &JobInput,
    params: &SamplingParams,
) -> (Endpoint, Value) {
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
    };
    body.insert("stream".into(), json!(true));
    body.insert("max_tokens".into(), json!(params.max_tokens));
    body.insert("temperature".into(), decimal(params.temperature));
    body.insert("top_p".into(), decimal(params.top_p));
    body.insert("seed".into(), json!(upstream_seed(params)));
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
    (endpoint, Value::Object(body))
}

/// `x` as the shortest decimal that reads back as the same `f32` (0.9, not
/// 0.8999999761581421), so the upstream sees the number the client sent.
fn decimal(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .map_or_else(|_| json!(x), |d| json!(d))
}

/// One alternative at a position, as the upstream reported it (no token id).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawAlternative {
    /// The token's text.
    pub token: String,
    /// Its bytes when the upstream sent them, else the text's UTF-8.
    pub bytes: Vec<u8>,
    /// Natural-log probability.
    pub logprob: f32,
}

/// The log-probabilities of one generated token.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawLogprob {
    /// The generated token.
    pub chosen: RawAlternative,
    /// The strongest alternatives, best first.
    pub top: Vec<RawAlternative>,
}

/// How a streamed choice ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Ending {
    /// Normally, for this reason.
    Finished(FinishReason),
    /// The upstream gave up on the request (vLLM's `abort`, an `error` reason).
    Aborted(String),
}

/// What one `data:` payload of the stream says.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Chunk {
    /// New text of choice 0.
    pub text: String,
    /// Log-probabilities of the tokens behind `text`.
    pub logprobs: Vec<RawLogprob>,
    /// Set on the chunk that ends choice 0.
    pub ending: Option<Ending>,
}

/// What one event of the stream is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StreamItem {
    /// `data: [DONE]`.
    Done,
    /// A completion chunk (possibly empty: a usage-only chunk, a role announcement).
    Chunk(Chunk),
    /// The upstream reported an error inside the stream (`{"error": ...}`).
    Error(String),
}

/// Interpret one event's `data`; `Err` says why it is not an OpenAI chunk.
pub(crate) fn parse_event(endpoint: Endpoint, data: &str) -> Result<StreamItem, String> {
    if data.trim() == "[DONE]" {
        return Ok(StreamItem::Done);
    }
    let value: Value = serde_json::from_str(data)
        .map_err(|e| format!("event data is not JSON ({e}): {}", excerpt(data)))?;
    let Value::Object(obj) = value else {
        return Err(format!(
            "event data is not a JSON object: {}",
            excerpt(data)
        ));
    };
    if let Some(err) = obj.get("error").filter(|e| !e.is_null()) {
        return Ok(StreamItem::Error(error_message(err)));
    }
    let choices = match obj.get("choices") {
        Some(Value::Array(choices)) => choices,
        _ => return Err(format!("event has no `choices` array: {}", excerpt(data))),
    };
    let Some(choice) = choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
    else {
        return Ok(StreamItem::Chunk(Chunk::default()));
    };
    let text = match endpoint {
        Endpoint::Chat => choice.get("delta").and_then(|d| d.get("content")),
        Endpoint::Completions => choice.get("text"),
    };
    let text = match text {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(format!("choice text is not a string: {other}")),
    };
    let logprobs = match choice.get("logprobs") {
        None | Some(Value::Null) => Vec::new(),
        Some(lp) => match endpoint {
            Endpoint::Chat => chat_logprobs(lp)?,
            Endpoint::Completions => completion_logprobs(lp)?,
        },
    };
    let ending = match choice.get("finish_reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(match r.as_str() {
            "length" => Ending::Finished(FinishReason::Length),
            "abort" | "error" => {
                Ending::Aborted(format!("it ended the job with finish_reason {r:?}"))
            }
            // stop, eos, content_filter...: the model (or a filter) ended the text.
            _ => Ending::Finished(FinishReason::Stop),
        }),
        Some(other) => return Err(format!("finish_reason is not a string: {other}")),
    };
    Ok(StreamItem::Chunk(Chunk {
        text,
        logprobs,
        ending,
    }))
}

/// Chat's `logprobs.content`: `[{token, logprob, bytes, top_logprobs: [...]}]`.
fn chat_logprobs(lp: &Value) -> Result<Vec<RawLogprob>, String> {
    let content = match lp.get("content") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(c)) => c,
        Some(_) => return Err("logprobs.content is not an array".into()),
    };
    content
        .iter()
        .map(|entry| {
            let chosen = alternative(entry)?;
            let top = match entry.get("top_logprobs") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(top)) => top.iter().map(alternative).collect::<Result<_, _>>()?,
                Some(_) => return Err("top_logprobs is not an array".to_string()),
            };
            Ok(RawLogprob { chosen, top })
        })
        .collect()
}

/// One `{token, logprob, bytes}` object.
fn alternative(v: &Value) -> Result<RawAlternative, String> {
    let token = v
        .get("token")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("a logprob entry has no `token`: {v}"))?;
    let logprob = v
        .get("logprob")
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("a logprob entry has no numeric `logprob`: {v}"))?;
    let bytes = match v.get("bytes").and_then(Value::as_array) {
        Some(b) => b
            .iter()
            .map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| format!("a logprob entry has bad `bytes`: {v}"))?,
        None => token.as_bytes().to_vec(),
    };
    Ok(RawAlternative {
        token: token.to_string(),
        bytes,
        logprob: logprob as f32,
    })
}

/// Legacy completions' `logprobs`: parallel `tokens`, `token_logprobs` and
/// `top_logprobs` (one `{token: logprob}` map per position).
fn completion_logprobs(lp: &Value) -> Result<Vec<RawLogprob>, String> {
    let tokens = match lp.get("tokens") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(t)) => t,
        Some(_) => return Err("logprobs.tokens is not an array".into()),
    };
    let numbers = lp.get("token_logprobs").and_then(Value::as_array);
    let tops = lp.get("top_logprobs").and_then(Value::as_array);
    tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let token = token
                .as_str()
                .ok_or_else(|| "logprobs.tokens holds a non-string".to_string())?;
            let logprob = numbers
                .and_then(|n| n.get(i))
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("logprobs.token_logprobs[{i}] is missing"))?;
            let mut top: Vec<RawAlternative> = match tops.and_then(|t| t.get(i)) {
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(t, l)| {
                        let logprob = l.as_f64().ok_or_else(|| {
                            format!("logprobs.top_logprobs[{i}] holds a non-number")
                        })?;
                        Ok(RawAlternative {
                            token: t.clone(),
                            bytes: t.as_bytes().to_vec(),
                            logprob: logprob as f32,
                        })
                    })
                    .collect::<Result<_, String>>()?,
                _ => Vec::new(),
            };
            // A JSON object has no order: restore "best first".
            top.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
            Ok(RawLogprob {
                chosen: RawAlternative {
                    token: token.to_string(),
                    bytes: token.as_bytes().to_vec(),
                    logprob: logprob as f32,
                },
                top,
            })
        })
        .collect()
}

/// The message of an error body: OpenAI's `{"error": {"message"}}`, a bare
/// `{"error": "..."}`, vLLM's older `{"object": "error", "message"}`, or the
/// text itself.
pub(crate) fn error_body_message(body: &str) -> String {
    match serde_json::from_str::<Value>(body) {
        Ok(v) => match (v.get("error"), v.get("message")) {
            (Some(e), _) if !e.is_null() => error_message(e),
            (_, Some(Value::String(m))) => m.clone(),
            _ => excerpt(body),
        },
        Err(_) => excerpt(body),
    }
}

/// The text of an `error` value: an object with `message`, or a string.
fn error_message(err: &Value) -> String {
    match err {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("message") {
            Some(Value::String(m)) => m.clone(),
            _ => err.to_string(),
        },
        other => other.to_string(),
    }
}

/// At most 200 characters of `text`, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_types::ChatMessage;

    fn chunk(endpoint: Endpoint, data: &str) -> Chunk {
        match parse_event(endpoint, data).unwrap() {
            StreamItem::Chunk(c) => c,
            other => panic!("expected a chunk, got {other:?}"),
        }
    }

    #[test]
    fn bodies_carry_every_parameter() {
        let mut params = SamplingParams::new(7, 0.5, 0.9, vec!["x".into()], u64::MAX);
        params.presence_penalty = 0.25;
        params.frequency_penalty = -1.0;
        params.logprobs = Some(3);
        let chat = JobInput::Chat {
            messages: vec![ChatMessage {
                role: "user".into(),
                content: "hi".into(),
            }],
        };
        let (endpoint, body) = request_body("m", &chat, &params);
        assert_eq!(endpoint, Endpoint::Chat);
        assert_eq!(
            body,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true,
                   "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": -1,
                   "stop": ["x"], "presence_penalty": 0.25, "frequency_penalty": -1.0,
                   "logprobs": true, "top_logprobs": 3})
        );
        let text = JobInput::Text { prompt: "p".into() };
        let (endpoint, body) =
            request_body("m", &text, &SamplingParams::new(1, 0.0, 1.0, vec![], 5));
        assert_eq!(endpoint, Endpoint::Completions);
        assert_eq!(
            body,
            json!({"model": "m", "prompt": "p", "stream": true, "max_tokens": 1,
                   "temperature": 0.0, "top_p": 1.0, "seed": 5})
        );
        params.logprobs = Some(2);
        let (_, body) = request_body("m", &text, &params);
        assert_eq!(body["logprobs"], json!(2));
    }

    #[test]
    fn every_choice_gets_its_own_seed() {
        let mut params = SamplingParams::new(1, 1.0, 1.0, vec![], 42);
        let first = upstream_seed(&params);
        assert_eq!(first, 42);
        params.choice = 1;
        assert_ne!(upstream_seed(&params), first);
    }

    #[test]
    fn chunks_of_both_endpoints_are_read() {
        let c = chunk(
            Endpoint::Chat,
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null,
               "logprobs":{"content":[{"token":"Hi","logprob":-0.5,"bytes":[72,105],
               "top_logprobs":[{"token":"Hi","logprob":-0.5,"bytes":[72,105]},{"token":"Yo","logprob":-1.5}]}]}}]}"#,
        );
        assert_eq!(c.text, "Hi");
        assert_eq!(c.ending, None);
        assert_eq!(c.logprobs.len(), 1);
        assert_eq!(c.logprobs[0].chosen.bytes, b"Hi");
        assert_eq!(c.logprobs[0].top[1].token, "Yo");
        assert_eq!(c.logprobs[0].top[1].bytes, b"Yo");
        let c = chunk(
            Endpoint::Chat,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#,
        );
        assert_eq!(c.ending, Some(Ending::Finished(FinishReason::Length)));
        let c = chunk(
            Endpoint::Completions,
            r#"{"choices":[{"index":0,"text":" there","finish_reason":"stop",
               "logprobs":{"tokens":[" there"],"token_logprobs":[-0.1],"top_logprobs":[{" here":-3.0," there":-0.1}]}}]}"#,
        );
        assert_eq!(c.text, " there");
        assert_eq!(c.ending, Some(Ending::Finished(FinishReason::Stop)));
        assert_eq!(c.logprobs[0].top[0].token, " there", "sorted best first");
        // A usage-only chunk and [DONE].
        assert_eq!(
            chunk(
                Endpoint::Chat,
                r#"{"choices":[],"usage":{"prompt_tokens":3}}"#
            ),
            Chunk::default()
        );
        assert_eq!(parse_event(Endpoint::Chat, "[DONE]"), Ok(StreamItem::Done));
        let c = chunk(
            Endpoint::Chat,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"abort"}]}"#,
        );
        assert!(matches!(c.ending, Some(Ending::Aborted(m)) if m.contains("abort")));
    }

    #[test]
    fn malformed_chunks_are_errors_naming_the_problem() {
        let cases = [
            ("not json", "not JSON"),
            ("[1,2]", "not a JSON object"),
            (r#"{"id":"x"}"#, "no `choices`"),
            (
                r#"{"choices":[{"index":0,"delta":{"content":5}}]}"#,
                "not a string",
            ),
            (
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":1}]}"#,
                "finish_reason",
            ),
            (
                r#"{"choices":[{"index":0,"delta":{"content":"a"},"logprobs":{"content":[{"logprob":-1}]}}]}"#,
                "no `token`",
            ),
        ];
        for (data, expected) in cases {
            let err = parse_event(Endpoint::Chat, data).unwrap_err();
            assert!(err.contains(expected), "{data}: {err}");
        }
        assert_eq!(
            parse_event(
                Endpoint::Chat,
                r#"{"error":{"message":"CUDA out of memory","type":"server_error"}}"#
            ),
            Ok(StreamItem::Error("CUDA out of memory".into()))
        );
        let err = parse_event(
            Endpoint::Completions,
            r#"{"choices":[{"index":0,"text":"a","logprobs":{"tokens":["a"],"token_logprobs":[]}}]}"#,
        )
        .unwrap_err();
        assert!(err.contains("token_logprobs[0]"), "{err}");
    }

    #[test]
    fn error_bodies_of_known_servers_yield_their_message() {
        let openai = r#"{"error":{"message":"The model `x` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#;
        assert_eq!(error_body_message(openai), "The model `x` does not exist");
        assert_eq!(error_body_message(r#"{"error":"bad"}"#), "bad");
        let vllm = r#"{"object":"error","message":"max_tokens too large","type":"BadRequestError","code":400}"#;
        assert_eq!(error_body_message(vllm), "max_tokens too large");
        assert_eq!(error_body_message("Not Found"), "Not Found");
        let long = "x".repeat(500);
        assert_eq!(error_body_message(&long).chars().count(), 201);
    }
}
