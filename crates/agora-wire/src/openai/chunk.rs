//! Stream chunks as a client reads them: the `data` of one server-sent event
//! of a streamed completion, turned into text, logprobs and how the choice ended.

use agora_types::FinishReason;
use serde_json::Value;

use super::error::error_message;
use super::{excerpt, Endpoint};

/// One alternative at a position, as the upstream reported it (no token id).
#[derive(Clone, Debug, PartialEq)]
pub struct RawAlternative {
    /// The token's text.
    pub token: String,
    /// Its bytes when the upstream sent them, else the text's UTF-8.
    pub bytes: Vec<u8>,
    /// Natural-log probability.
    pub logprob: f32,
}

/// The log-probabilities of one generated token.
#[derive(Clone, Debug, PartialEq)]
pub struct RawLogprob {
    /// The generated token.
    pub chosen: RawAlternative,
    /// The strongest alternatives, best first.
    pub top: Vec<RawAlternative>,
}

/// How a streamed choice ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// Normally, for this reason.
    Finished(FinishReason),
    /// The upstream gave up on the request (vLLM's `abort`, an `error` reason).
    Aborted(String),
}

/// What one `data:` payload of the stream says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chunk {
    /// New text of choice 0.
    pub text: String,
    /// Log-probabilities of the tokens behind `text`.
    pub logprobs: Vec<RawLogprob>,
    /// Set on the chunk that ends choice 0.
    pub ending: Option<Ending>,
}

/// What one event of the stream is.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamItem {
    /// `data: [DONE]`.
    Done,
    /// A completion chunk (possibly empty: a usage-only chunk, a role announcement).
    Chunk(Chunk),
    /// The upstream reported an error inside the stream (`{"error": ...}`).
    Error(String),
}

/// Interpret one event's `data`; `Err` says why it is not an OpenAI chunk.
pub fn parse_event(endpoint: Endpoint, data: &str) -> Result<StreamItem, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::{Endpoint, ResponseMeta};
    use agora_types::{TokenLogprob, TopLogprob};
    use serde_json::json;

    fn chunk(endpoint: Endpoint, data: &str) -> Chunk {
        match parse_event(endpoint, data).unwrap() {
            StreamItem::Chunk(c) => c,
            other => panic!("expected a chunk, got {other:?}"),
        }
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
    fn chunks_a_server_builds_read_back_the_same() {
        let alt = |token: &str, logprob: f32| TopLogprob {
            token_id: 0,
            token: token.into(),
            bytes: token.as_bytes().to_vec(),
            logprob,
        };
        let lp = vec![TokenLogprob {
            chosen: alt("Hi", -0.5),
            top: vec![alt("Hi", -0.5), alt("Yo", -1.5)],
        }];
        for endpoint in [Endpoint::Chat, Endpoint::Completions] {
            let meta = ResponseMeta::new(endpoint, "ab", "m");
            let built = meta.chunk(0, Some("Hi"), true, Some(FinishReason::Length), Some(&lp));
            let read = chunk(endpoint, &built.to_string());
            assert_eq!(read.text, "Hi", "{endpoint:?}");
            assert_eq!(read.ending, Some(Ending::Finished(FinishReason::Length)));
            assert_eq!(read.logprobs.len(), 1);
            assert_eq!(read.logprobs[0].chosen.token, "Hi");
            assert_eq!(read.logprobs[0].chosen.logprob, -0.5);
            let top: Vec<&str> = read.logprobs[0]
                .top
                .iter()
                .map(|a| a.token.as_str())
                .collect();
            assert_eq!(top, ["Hi", "Yo"], "{endpoint:?}");
            let usage = meta.usage_chunk(json!({}));
            assert_eq!(chunk(endpoint, &usage.to_string()), Chunk::default());
        }
    }
}
