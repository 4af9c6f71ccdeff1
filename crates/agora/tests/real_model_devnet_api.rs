//! End to end on the real default model: `agora devnet`, then the OpenAI API
//! over real HTTP, receipts checked against the provider's stored transcript.

mod common;

use agora_types::{hash_output_text, hash_tokens, Transcript};
use serde_json::{json, Value};

const MODEL: &str = "smollm2-135m-instruct";

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// POST `body` to `path` and read the answer as JSON (whatever its status).
    async fn post_json(&self, path: &str, body: Value) -> Value {
        self.post(path, body).await.json().await.unwrap()
    }

    /// Non-streaming chat; returns (content, body, receipt id).
    async fn chat(&self, seed: u64, temperature: f64) -> (String, Value, String) {
        let body = json!({
            "model": MODEL,
            "messages": [{"role": "user", "content": "Write one sentence about the sea."}],
            "max_tokens": 24, "seed": seed, "temperature": temperature,
        });
        let resp = self.post("/chat/completions", body).await;
        assert_eq!(resp.status(), 200);
        let receipt = resp.headers()["x-agora-receipt"]
            .to_str()
            .unwrap()
            .to_string();
        let v: Value = resp.json().await.unwrap();
        (
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string(),
            v,
            receipt,
        )
    }
}

fn assert_openai_error(v: &Value) {
    let e = &v["error"];
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error.message missing in {v}"
    );
    assert!(e["type"].is_string(), "error.type missing in {v}");
    assert!(
        e.get("param").is_some() && e.get("code").is_some(),
        "error.param/code missing in {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_serves_the_openai_api_with_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = common::devnet(dir.path());
    let api = Api {
        http: common::keyed_client(&devnet),
        base: devnet.value("OpenAI base URL"),
    };
    // The gateway pays providers: a request without the key is refused
    // before anything is spent.
    let anonymous = reqwest::Client::new()
        .post(format!("{}/chat/completions", api.base))
        .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let error: Value = anonymous.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");
    let rpc = devnet.value("chain RPC");
    let provider_url = devnet.value("provider");

    // The model list names the default model.
    let models: Value = api
        .http
        .get(format!("{}/models", api.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == MODEL),
        "{models}"
    );

    // A real answer with consistent usage.
    let (text, body, receipt_id) = api.chat(7, 0.7).await;
    assert!(!text.trim().is_empty());
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert!(["stop", "length"].contains(&body["choices"][0]["finish_reason"].as_str().unwrap()));
    let usage = &body["usage"];
    let (prompt, completion) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(prompt > 5 && (1..=24).contains(&completion), "{usage}");
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), prompt + completion);

    // The receipt is signed, stored, and commits to exactly the tokens that were counted.
    let transcript: Transcript = api
        .http
        .get(format!("{provider_url}/v1/transcripts/{receipt_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = &transcript.receipt.receipt;
    transcript
        .receipt
        .verify()
        .expect("receipt signature verifies");
    assert_eq!(r.id.to_hex(), receipt_id);
    assert_eq!(r.params.seed, 7);
    assert_eq!(r.output_hash, hash_tokens(&transcript.output_tokens));
    assert_eq!(r.prompt_hash, hash_tokens(&transcript.prompt_tokens));
    // ...and to exactly the text the client got.
    assert_eq!(r.text_hash, hash_output_text(&text));
    assert_eq!(u64::from(r.usage.completion_tokens), completion);
    assert_eq!(u64::from(r.usage.prompt_tokens), prompt);

    // Same seed, same text; some other seed gives other text.
    let (again, _, _) = api.chat(7, 0.7).await;
    assert_eq!(again, text);
    let mut differs = false;
    for seed in 100..104 {
        differs |= api.chat(seed, 0.7).await.0 != text;
    }
    assert!(differs, "four other seeds all reproduced seed 7's text");

    // Streaming the same request yields the same text in chunks, then [DONE].
    let body = json!({
        "model": MODEL, "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Write one sentence about the sea."}],
        "max_tokens": 24, "seed": 7, "temperature": 0.7,
    });
    let resp = api.post("/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let raw = resp.text().await.unwrap();
    let events: Vec<&str> = raw
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"), "{raw}");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.len() >= 3, "{raw}");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"]
                .get(0)
                .and_then(|ch| ch["delta"]["content"].as_str())
        })
        .collect();
    assert_eq!(streamed, text);
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"].as_array().unwrap().len(), 0);
    assert_eq!(
        last["usage"]["completion_tokens"].as_u64().unwrap(),
        completion
    );

    // Log-probabilities: one entry per generated token, the greedy choice ranked first.
    let body = json!({
        "model": MODEL, "messages": [{"role": "user", "content": "Name a fruit."}],
        "max_tokens": 8, "temperature": 0, "logprobs": true, "top_logprobs": 2,
    });
    let v: Value = api.post_json("/chat/completions", body).await;
    let content = v["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(
        content.len() as u64,
        v["usage"]["completion_tokens"].as_u64().unwrap()
    );
    for entry in content {
        assert!(entry["logprob"].as_f64().unwrap() <= 0.0);
        assert_eq!(entry["top_logprobs"][0]["token"], entry["token"], "{entry}");
        assert_eq!(entry["top_logprobs"].as_array().unwrap().len(), 2);
    }
    let joined: String = content
        .iter()
        .map(|e| e["token"].as_str().unwrap())
        .collect();
    assert_eq!(
        joined,
        v["choices"][0]["message"]["content"].as_str().unwrap()
    );

    // n = 2: two choices from independent random streams of the same seed, each replayable.
    let body = json!({
        "model": MODEL, "messages": [{"role": "user", "content": "Invent a name for a boat."}],
        "max_tokens": 12, "temperature": 0.9, "seed": 11, "n": 2,
    });
    let first: Value = api
        .post("/chat/completions", body.clone())
        .await
        .json()
        .await
        .unwrap();
    let again: Value = api.post_json("/chat/completions", body).await;
    let texts = |v: &Value| -> Vec<String> {
        v["choices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["message"]["content"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(texts(&first).len(), 2, "{first}");
    assert_ne!(
        texts(&first)[0],
        texts(&first)[1],
        "both choices sampled the same stream"
    );
    assert_eq!(texts(&first), texts(&again));

    // Legacy completions.
    let resp = api.post("/completions", json!({"model": MODEL, "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0})).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(!v["choices"][0]["text"].as_str().unwrap().is_empty());

    // Errors in OpenAI's shape with the right status.
    let resp = api
        .post(
            "/chat/completions",
            json!({"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(resp.status(), 404);
    assert_openai_error(&resp.json().await.unwrap());
    let resp = api
        .http
        .post(format!("{}/chat/completions", api.base))
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_openai_error(&resp.json().await.unwrap());

    // `agora status --json` shows the registries.
    let status = common::status(&rpc);
    assert!(status["height"].as_u64().unwrap() >= 1);
    assert!(status["models"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == MODEL));
    let p = status["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["endpoint"] == provider_url.as_str())
        .expect("the provider is registered");
    assert_eq!(p["endpoint"], provider_url.as_str());
    assert_eq!(p["stake"], 1_000_000);
    assert_eq!(p["id"], r.provider.to_hex().as_str());
    assert_eq!(p["models"][0], r.model.to_hex().as_str());

    // The devnet's chain is a single BFT validator: blocks carry a finalization
    // certificate and randomness, and randomness differs between blocks.
    let client = agora_chain_client::ChainClient::new(&rpc);
    let head = client.head().await.unwrap().height;
    let mut seen = std::collections::HashSet::new();
    for h in 1..=head {
        let f = client.finality(h).await.unwrap();
        if let (Some(r), Some(_)) = (f.randomness, f.certificate) {
            seen.insert(r);
        }
    }
    assert!(
        seen.len() >= 2,
        "certified randomness in {} of {head} blocks",
        seen.len()
    );

    // Embeddings from the devnet's embedding provider, keyed and paid like completions.
    let texts = [
        "The cat sits on the mat.",
        "A kitten is resting on a rug.",
        "Quarterly revenue rose by eight percent.",
    ];
    let resp = api
        .post(
            "/embeddings",
            json!({"model": "all-minilm-l6-v2", "input": texts}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let vectors: Vec<Vec<f64>> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(vectors.len(), 3);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for v in &vectors {
        assert_eq!(v.len(), 384);
        assert!((dot(v, v) - 1.0).abs() < 1e-3, "unit vectors");
    }
    assert!(dot(&vectors[0], &vectors[1]) > dot(&vectors[0], &vectors[2]) + 0.3);
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 10);

    // Structured output on the real model: the reply parses and fits the schema.
    let schema = json!({"type": "object", "properties": {"population": {"type": "integer"}, "coastal": {"type": "boolean"}}, "required": ["population", "coastal"]});
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Describe Lisbon."}],
        "max_tokens": 64, "seed": 1, "temperature": 0.7,
        "response_format": {"type": "json_schema", "json_schema": {"name": "city", "schema": schema}}});
    let v: Value = api.post_json("/chat/completions", body).await;
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    let city: Value = serde_json::from_str(content).unwrap_or_else(|e| panic!("{e}: {content:?}"));
    assert!(
        (city["population"].is_i64() || city["population"].is_u64())
            && city["coastal"].is_boolean(),
        "{city}"
    );

    // A forced tool call comes back as tool_calls with arguments that fit the parameters.
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"unit": {"enum": ["c", "f"]}}, "required": ["unit"]}}}]);
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Weather in Lisbon?"}],
        "max_tokens": 64, "seed": 2, "tools": tools, "tool_choice": "required"});
    let v: Value = api.post_json("/chat/completions", body).await;
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls", "{v}");
    let call = &v["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_weather");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert!(args["unit"] == "c" || args["unit"] == "f", "{args}");
}
