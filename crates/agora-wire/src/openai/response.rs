//! Responses as a server sends them: complete responses, stream chunks, the
//! trailing usage chunk, usage and logprobs objects.

use agora_types::{FinishReason, TokenLogprob, Usage};
use serde_json::{json, Map, Value};

use super::{finish_reason, Endpoint};

/// Log-probabilities in the shape of `endpoint`'s choice objects.
pub fn logprobs_json(endpoint: Endpoint, tokens: &[TokenLogprob]) -> Value {
    let alt = |t: &agora_types::TopLogprob| json!({"token": t.token, "logprob": t.logprob, "bytes": t.bytes});
    match endpoint {
        Endpoint::Chat => {
            let content: Vec<Value> = tokens
                .iter()
                .map(|lp| {
                    let mut v = alt(&lp.chosen);
                    v["top_logprobs"] = lp.top.iter().map(alt).collect();
                    v
                })
                .collect();
            json!({"content": content, "refusal": null})
        }
        Endpoint::Completions => {
            let mut offset = 0;
            let mut offsets = Vec::with_capacity(tokens.len());
            for lp in tokens {
                offsets.push(offset);
                offset += lp.chosen.token.chars().count();
            }
            json!({
                "tokens": tokens.iter().map(|lp| lp.chosen.token.clone()).collect::<Vec<_>>(),
                "token_logprobs": tokens.iter().map(|lp| lp.chosen.logprob).collect::<Vec<_>>(),
                "top_logprobs": tokens.iter().map(|lp| {
                    lp.top.iter().map(|t| (t.token.clone(), json!(t.logprob))).collect::<Map<String, Value>>()
                }).collect::<Vec<_>>(),
                "text_offset": offsets,
            })
        }
    }
}

/// What a response's jobs used and cost, summed over its choices.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Billed {
    /// Prompt and completion tokens.
    pub usage: Usage,
    /// Prompt tokens the providers took from their prompt caches.
    pub cached_tokens: u32,
    /// What the jobs cost, in base units.
    pub cost: u64,
}

impl Billed {
    /// Both together (token counts saturate rather than wrap).
    pub fn plus(self, other: Billed) -> Billed {
        let add = |a: u32, b: u32| a.saturating_add(b);
        Billed {
            usage: Usage {
                prompt_tokens: add(self.usage.prompt_tokens, other.usage.prompt_tokens),
                completion_tokens: add(self.usage.completion_tokens, other.usage.completion_tokens),
            },
            cached_tokens: add(self.cached_tokens, other.cached_tokens),
            cost: self.cost.saturating_add(other.cost),
        }
    }

    /// The `usage` object: OpenAI's counts (cached prompt tokens under
    /// `prompt_tokens_details`), with agora's `cost` (base units) added as
    /// OpenRouter does.
    pub fn json(&self) -> Value {
        let Usage {
            prompt_tokens,
            completion_tokens,
        } = self.usage;
        json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": u64::from(prompt_tokens) + u64::from(completion_tokens),
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens},
            "cost": self.cost,
        })
    }
}

/// One entry of a message's `tool_calls`.
pub fn tool_call_json(id: &str, name: &str, arguments: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
}

/// Identity shared by every object of one response.
#[derive(Clone, Debug)]
pub struct ResponseMeta {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// `chatcmpl-…` or `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model string the client sent.
    pub model: String,
}

impl ResponseMeta {
    /// Metadata for a job with provider job id `job` (hex).
    pub fn new(endpoint: Endpoint, job: &str, model: &str) -> Self {
        let prefix = match endpoint {
            Endpoint::Chat => "chatcmpl",
            Endpoint::Completions => "cmpl",
        };
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        ResponseMeta {
            endpoint,
            id: format!("{prefix}-{job}"),
            created,
            model: model.to_string(),
        }
    }

    /// One choice object of a complete (non-streaming) response.
    pub fn choice(
        &self,
        index: usize,
        text: String,
        reason: FinishReason,
        logprobs: Option<&[TokenLogprob]>,
    ) -> Value {
        let logprobs = logprobs.map_or(Value::Null, |lp| logprobs_json(self.endpoint, lp));
        match self.endpoint {
            Endpoint::Chat => json!({
                "index": index, "message": {"role": "assistant", "content": text},
                "finish_reason": finish_reason(reason), "logprobs": logprobs,
            }),
            Endpoint::Completions => json!({
                "index": index, "text": text, "finish_reason": finish_reason(reason), "logprobs": logprobs,
            }),
        }
    }

    /// A chat choice that calls functions (`finish_reason` `tool_calls`);
    /// `calls` are [`tool_call_json`] objects.
    pub fn tool_calls_choice(
        &self,
        index: usize,
        calls: Vec<Value>,
        logprobs: Option<&[TokenLogprob]>,
    ) -> Value {
        let logprobs = logprobs.map_or(Value::Null, |lp| logprobs_json(self.endpoint, lp));
        json!({
            "index": index,
            "message": {"role": "assistant", "content": null, "tool_calls": calls},
            "finish_reason": "tool_calls", "logprobs": logprobs,
        })
    }

    /// A streaming chat chunk whose delta carries whole function calls
    /// (each with its `index` among the choice's calls).
    pub fn tool_calls_chunk(&self, index: usize, calls: Vec<Value>) -> Value {
        let calls: Vec<Value> = calls
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                c["index"] = json!(i);
                c
            })
            .collect();
        let choice = json!({"index": index, "delta": {"tool_calls": calls}, "finish_reason": null, "logprobs": null});
        json!({"id": self.id, "object": self.object(true), "created": self.created, "model": self.model, "choices": [choice]})
    }

    /// The last chunk of a streamed chat choice that called functions.
    pub fn tool_calls_end_chunk(&self, index: usize) -> Value {
        let choice =
            json!({"index": index, "delta": {}, "finish_reason": "tool_calls", "logprobs": null});
        json!({"id": self.id, "object": self.object(true), "created": self.created, "model": self.model, "choices": [choice]})
    }

    /// The complete (non-streaming) response.
    pub fn complete(&self, choices: Vec<Value>, usage: Value) -> Value {
        json!({
            "id": self.id, "object": self.object(false), "created": self.created, "model": self.model,
            "choices": choices, "usage": usage,
        })
    }

    /// A streaming chunk carrying `text` (and, for the first chat chunk, the role).
    pub fn chunk(
        &self,
        index: usize,
        text: Option<&str>,
        role: bool,
        reason: Option<FinishReason>,
        logprobs: Option<&[TokenLogprob]>,
    ) -> Value {
        let reason = reason.map(finish_reason);
        let logprobs = logprobs.map_or(Value::Null, |lp| logprobs_json(self.endpoint, lp));
        let choice = match self.endpoint {
            Endpoint::Chat => {
                let mut delta = Map::new();
                if role {
                    delta.insert("role".into(), json!("assistant"));
                }
                if let Some(t) = text {
                    delta.insert("content".into(), json!(t));
                }
                json!({"index": index, "delta": delta, "finish_reason": reason, "logprobs": logprobs})
            }
            Endpoint::Completions => {
                json!({"index": index, "text": text.unwrap_or(""), "finish_reason": reason, "logprobs": logprobs})
            }
        };
        json!({"id": self.id, "object": self.object(true), "created": self.created, "model": self.model, "choices": [choice]})
    }

    /// The trailing usage chunk of `stream_options.include_usage`: no choices.
    pub fn usage_chunk(&self, usage: Value) -> Value {
        json!({
            "id": self.id, "object": self.object(true), "created": self.created, "model": self.model,
            "choices": [], "usage": usage,
        })
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.endpoint, chunk) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completions, _) => "text_completion",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn billed(prompt: u32, completion: u32, cached: u32, cost: u64) -> Billed {
        Billed {
            usage: Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
            },
            cached_tokens: cached,
            cost,
        }
    }

    #[test]
    fn usage_sums_choices_and_reports_cached_prompt_tokens() {
        let sum = billed(10, 3, 6, 100).plus(billed(10, 5, 0, 120));
        assert_eq!(
            sum.json(),
            json!({
                "prompt_tokens": 20,
                "completion_tokens": 8,
                "total_tokens": 28,
                "prompt_tokens_details": {"cached_tokens": 6},
                "cost": 220,
            })
        );
        // Counts saturate instead of wrapping.
        let big = billed(u32::MAX, u32::MAX, u32::MAX, u64::MAX).plus(billed(1, 1, 1, 1));
        assert_eq!(big.json()["total_tokens"], 2 * u64::from(u32::MAX));
        assert_eq!(big.cost, u64::MAX);
    }
}
