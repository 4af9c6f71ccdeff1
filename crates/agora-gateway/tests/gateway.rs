//! The gateway end to end over loopback HTTP, against scripted providers.

mod common;

use std::time::Duration;

use agora_gateway::{GatewayConfig, GatewayError, Snapshot};
use agora_types::{JobInput, Price};
use common::*;
use serde_json::{json, Value};

const CHEAP: Price = Price {
    input_per_1k: 1000,
    output_per_1k: 2000,
};
const DEAR: Price = Price {
    input_per_1k: 50_000,
    output_per_1k: 90_000,
};

fn chat_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

/// One model, `tiny`, served by each of `stubs`.
fn snapshot(stubs: &[&Stub]) -> Snapshot {
    let m = model("tiny");
    Snapshot {
        chain_id: CHAIN_ID.into(),
        providers: stubs.iter().map(|s| s.info(&[m.id])).collect(),
        models: vec![m],
    }
}

#[tokio::test]
async fn models_lists_only_served_models() {
    let p = stub(Script::Deltas(vec!["x"]), CHEAP).await;
    let served = model("tiny");
    let unserved = model("lonely");
    let snap = Snapshot {
        chain_id: CHAIN_ID.into(),
        models: vec![served.clone(), unserved.clone()],
        providers: vec![p.info(&[served.id])],
    };
    let gw = gateway(snap).await;

    let list: Value = gw.get("/v1/models").await.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{list}");
    assert_eq!(data[0]["id"], "tiny");
    assert_eq!(data[0]["object"], "model");
    assert_eq!(data[0]["owned_by"], "agora");
    assert!(data[0]["created"].is_u64());
    assert_eq!(data[0]["agora"]["providers"], 1);
    assert_eq!(data[0]["agora"]["model_id"], served.id.to_hex());

    let one = gw.get("/v1/models/tiny").await;
    assert_eq!(one.status(), 200);
    assert_eq!(one.json::<Value>().await.unwrap()["id"], "tiny");
    let by_hash = gw.get(&format!("/v1/models/{}", served.id.to_hex())).await;
    assert_eq!(by_hash.json::<Value>().await.unwrap()["id"], "tiny");
    let err = openai_error(gw.get("/v1/models/nope").await, 404).await;
    assert_eq!(err["code"], "model_not_found");
}

#[tokio::test]
async fn non_streaming_chat_returns_content_usage_and_receipt() {
    let p = stub(Script::Deltas(vec!["Hel", "lo", " there"]), CHEAP).await;
    let gw = gateway(snapshot(&[&p])).await;
    let model_hex = model("tiny").id.to_hex();
    let body = json!({
        "model": model_hex,
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "you"}]}],
        "max_tokens": 7, "temperature": 0.25, "top_p": 0.5, "stop": ["\n", "END"], "seed": 42,
        "user": "someone", "some_future_field": {"x": 1},
    });
    let resp = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let receipt = resp.headers()["x-agora-receipt"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        resp.headers()["x-agora-provider"].to_str().unwrap(),
        p.key.account().to_hex()
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["id"], format!("chatcmpl-{receipt}"));
    assert_eq!(v["model"], model_hex);
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["choices"][0]["index"], 0);
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello there"})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let usage = &v["usage"];
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64()
        ),
        (Some(11), Some(3))
    );
    assert_eq!(usage["total_tokens"], 14);
    assert_eq!(usage["cost"], CHEAP.cost(11, 3));
    assert_eq!(
        usage["prompt_tokens_details"]["cached_tokens"],
        MOCK_CACHED_TOKENS
    );

    let jobs = p.jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.model, model("tiny").id);
    assert_eq!(job.params.max_tokens, 7);
    assert_eq!(job.params.temperature, 0.25);
    assert_eq!(job.params.top_p, 0.5);
    assert_eq!(job.params.stop, vec!["\n".to_string(), "END".to_string()]);
    assert_eq!(job.params.seed, 42);
    let JobInput::Chat { messages } = &job.input else {
        panic!("not a chat job: {:?}", job.input)
    };
    assert_eq!(messages.len(), 2);
    assert_eq!(
        (messages[0].role.as_str(), messages[0].content.as_str()),
        ("system", "be brief")
    );
    assert_eq!(
        (messages[1].role.as_str(), messages[1].content.as_str()),
        ("user", "hi you")
    );
}

#[tokio::test]
async fn streaming_chat_sends_openai_chunks() {
    let p = stub(Script::Deltas(vec!["a", "b", "c"]), CHEAP).await;
    let gw = gateway(snapshot(&[&p])).await;
    let mut body = chat_body("tiny");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert_eq!(
        resp.headers()["x-agora-provider"].to_str().unwrap(),
        p.key.account().to_hex()
    );
    let job_id = resp.headers()["x-agora-job-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(resp.headers()["x-agora-receipt"].to_str().unwrap(), job_id);
    let events = sse_data(&text(resp).await);

    assert_eq!(events.len(), 1 + 3 + 1 + 1 + 1, "{events:#?}");
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks = &events[..events.len() - 1];
    for c in chunks {
        assert_eq!(c["id"], format!("chatcmpl-{job_id}"));
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "tiny");
        assert!(c["created"].is_u64());
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(chunks[0]["choices"][0]["finish_reason"], Value::Null);
    let content: String = chunks[1..4]
        .iter()
        .map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, "abc");
    assert!(chunks[1..4]
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
    assert_eq!(chunks[4]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "length");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["total_tokens"], 14);
    assert_eq!(chunks[5]["usage"]["cost"], CHEAP.cost(11, 3));
    let cached = &chunks[5]["usage"]["prompt_tokens_details"]["cached_tokens"];
    assert_eq!(*cached, MOCK_CACHED_TOKENS);
}

#[tokio::test]
async fn streaming_without_include_usage_has_no_usage_chunk() {
    let p = stub(Script::Deltas(vec!["a"]), CHEAP).await;
    let gw = gateway(snapshot(&[&p])).await;
    let mut body = chat_body("tiny");
    body["stream"] = json!(true);
    let events = sse_data(&text(gw.post("/v1/chat/completions", &body).await).await);
    assert_eq!(events.len(), 4, "{events:#?}");
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    assert_eq!(events[3], "[DONE]");
}

#[tokio::test]
async fn legacy_completions_stream_and_not() {
    let p = stub(Script::Deltas(vec!["one", " two"]), CHEAP).await;
    let gw = gateway(snapshot(&[&p])).await;

    let v: Value = gw
        .post(
            "/v1/completions",
            &json!({"model": "tiny", "prompt": ["Once"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(v["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(v["choices"][0]["text"], "one two");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["total_tokens"], 13);
    assert_eq!(
        p.jobs()[0].input,
        JobInput::Text {
            prompt: "Once".into()
        }
    );
    assert_eq!(p.jobs()[0].params.max_tokens, 256);

    let body = json!({"model": "tiny", "prompt": "Once", "stream": true, "stream_options": {"include_usage": true}});
    let events = sse_data(&text(gw.post("/v1/completions", &body).await).await);
    assert_eq!(events.len(), 2 + 1 + 1 + 1, "{events:#?}");
    let id = events[0]["id"].clone();
    for c in &events[..4] {
        assert_eq!(c["object"], "text_completion");
        assert_eq!(c["id"], id);
    }
    assert_eq!(events[0]["choices"][0]["text"], "one");
    assert_eq!(events[1]["choices"][0]["text"], " two");
    assert_eq!(events[2]["choices"][0]["finish_reason"], "length");
    assert_eq!(events[3]["choices"], json!([]));
    assert_eq!(events[3]["usage"]["completion_tokens"], 2);
    assert_eq!(events[4], "[DONE]");

    let err = openai_error(
        gw.post("/v1/completions", &json!({"model": "tiny", "prompt": 5}))
            .await,
        400,
    )
    .await;
    assert_eq!(err["param"], "prompt");
}

#[tokio::test]
async fn bad_requests_get_openai_errors() {
    let p = stub(Script::Deltas(vec!["x"]), CHEAP).await;
    let gw = gateway(snapshot(&[&p])).await;

    let err = openai_error(
        gw.post("/v1/chat/completions", &chat_body("no-such-model"))
            .await,
        404,
    )
    .await;
    assert_eq!(err["code"], "model_not_found");
    assert_eq!(err["type"], "invalid_request_error");

    let resp = gw
        .http
        .post(format!("{}/v1/chat/completions", gw.base))
        .header("content-type", "application/json")
        .body("{\"model\": \"tiny\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(
        openai_error(resp, 400).await["type"],
        "invalid_request_error"
    );

    let cases = [
        (
            json!({"model": "tiny", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}),
            "temperature",
        ),
        (
            json!({"model": "tiny", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
            "max_tokens",
        ),
        (
            json!({"model": "tiny", "messages": [{"role": "user", "content": "x"}], "n": 9}),
            "n",
        ),
        (json!({"model": "tiny", "messages": []}), "messages"),
        (
            json!({"model": 7, "messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (
            json!({"model": "tiny", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            "messages[0].content[0]",
        ),
        (
            json!({"model": "tiny", "messages": [{"role": "user", "content": "x"}], "provider": {"sort": "vibes"}}),
            "provider.sort",
        ),
    ];
    for (body, param) in cases {
        let err = openai_error(gw.post("/v1/chat/completions", &body).await, 400).await;
        assert_eq!(err["param"], param, "{body}");
        assert_eq!(err["type"], "invalid_request_error");
    }
    assert!(
        p.jobs().is_empty(),
        "invalid requests must not reach providers"
    );

    let err = openai_error(gw.get("/v1/nothing/here").await, 404).await;
    assert_eq!(err["code"], "unknown_url");
    openai_error(gw.get("/v1/chat/completions").await, 405).await;
}

#[tokio::test]
async fn oversize_bodies_get_413_in_openai_shape() {
    let p = stub(Script::Deltas(vec!["x"]), CHEAP).await;
    let config = GatewayConfig {
        max_body_bytes: 1024,
        ..GatewayConfig::default()
    };
    let gw = gateway_with(Some(snapshot(&[&p])), config).await;
    let big = json!({"model": "tiny", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let err = openai_error(gw.post("/v1/chat/completions", &big).await, 413).await;
    assert_eq!(err["code"], "request_too_large");

    // The configured limit, not axum's 2 MiB default, is what applies.
    let gw = gateway(snapshot(&[&p])).await;
    let three_mib =
        json!({"model": "nope", "messages": [{"role": "user", "content": "x".repeat(3 << 20)}]});
    openai_error(gw.post("/v1/chat/completions", &three_mib).await, 404).await;
    let five_mib =
        json!({"model": "tiny", "messages": [{"role": "user", "content": "x".repeat(5 << 20)}]});
    openai_error(gw.post("/v1/chat/completions", &five_mib).await, 413).await;
    assert!(p.jobs().is_empty());
}

#[tokio::test]
async fn no_provider_is_503_with_retry_after() {
    let snap = Snapshot {
        chain_id: CHAIN_ID.into(),
        models: vec![model("tiny")],
        providers: vec![],
    };
    let gw = gateway(snap).await;
    let resp = gw.post("/v1/chat/completions", &chat_body("tiny")).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(openai_error(resp, 503).await["code"], "no_provider");

    // Preferences that exclude every provider also leave nobody to serve.
    let p = stub(Script::Deltas(vec!["x"]), DEAR).await;
    let gw = gateway(snapshot(&[&p])).await;
    let mut body = chat_body("tiny");
    body["provider"] = json!({"max_price": {"prompt": 1000, "completion": 1000}});
    let resp = gw.post("/v1/chat/completions", &body).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(openai_error(resp, 503).await["code"], "no_provider");
    assert!(p.jobs().is_empty());
}

#[tokio::test]
async fn unreadable_directory_is_503() {
    let gw = gateway_with(None, GatewayConfig::default()).await;
    openai_error(gw.get("/v1/models").await, 503).await;
    let resp = gw.post("/v1/chat/completions", &chat_body("tiny")).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(
        openai_error(resp, 503).await["code"],
        "directory_unavailable"
    );

    // Once the directory answers, requests read it on demand.
    let p = stub(Script::Deltas(vec!["ok"]), CHEAP).await;
    gw.directory.set(Some(snapshot(&[&p])));
    let v: Value = gw
        .post("/v1/chat/completions", &chat_body("tiny"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "ok");
}

#[tokio::test]
async fn dead_provider_fails_over_to_the_next() {
    let good = stub(Script::Deltas(vec!["fine"]), DEAR).await;
    let dead_key = agora_types::Keypair::generate();
    let m = model("tiny");
    let dead = agora_types::ProviderInfo {
        id: dead_key.account(),
        endpoint: format!("http://{}", dead_addr()),
        models: vec![m.id],
        price: CHEAP,
        stake: 1,
        registered_at: 0,
        replayable: true,
    };
    let snap = Snapshot {
        chain_id: CHAIN_ID.into(),
        models: vec![m.clone()],
        providers: vec![dead.clone(), good.info(&[m.id])],
    };
    let gw = gateway(snap).await;

    for stream in [false, true] {
        let mut body = chat_body("tiny");
        body["stream"] = json!(stream);
        body["provider"] = json!({"order": [dead.id.to_hex()]});
        let resp = gw.post("/v1/chat/completions", &body).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["x-agora-provider"].to_str().unwrap(),
            good.key.account().to_hex()
        );
        let body = text(resp).await;
        assert!(body.contains("fine"), "{body}");
    }
    assert_eq!(good.jobs().len(), 2);

    // Without fallbacks the dead first choice is the answer.
    let mut body = chat_body("tiny");
    body["provider"] = json!({"order": [dead.endpoint], "allow_fallbacks": false});
    let resp = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(openai_error(resp, 503).await["code"], "no_provider");
    assert_eq!(good.jobs().len(), 2);
}

#[tokio::test]
async fn busy_provider_is_skipped_and_refusals_pass_through() {
    let busy = stub(Script::Busy, CHEAP).await;
    let good = stub(Script::Deltas(vec!["fine"]), DEAR).await;
    let gw = gateway(snapshot(&[&busy, &good])).await;
    let mut body = chat_body("tiny");
    body["provider"] = json!({"order": [busy.key.account().to_hex()]});
    let resp = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-agora-provider"].to_str().unwrap(),
        good.key.account().to_hex()
    );
    assert_eq!(busy.jobs().len(), 1);

    let refuse = stub(Script::Refuse, CHEAP).await;
    let other = stub(Script::Deltas(vec!["x"]), CHEAP).await;
    let gw = gateway(snapshot(&[&refuse, &other])).await;
    let mut body = chat_body("tiny");
    body["provider"] = json!({"order": [refuse.key.account().to_hex()]});
    let err = openai_error(gw.post("/v1/chat/completions", &body).await, 400).await;
    assert!(
        err["message"].as_str().unwrap().contains("too long"),
        "{err}"
    );
    assert_eq!(err["type"], "invalid_request_error");
    assert!(
        other.jobs().is_empty(),
        "a request the provider refused is not retried elsewhere"
    );
}

/// OpenRouter's `models`: an unknown model, then one whose only provider is
/// down, are passed over for the next model, whose name the response
/// carries; a request the provider refused as invalid is not retried on
/// another model.
#[tokio::test]
async fn models_fall_back_in_order() {
    let good = stub(Script::Deltas(vec!["fine"]), CHEAP).await;
    let (tiny, down) = (model("tiny"), model("down"));
    let dead = agora_types::ProviderInfo {
        id: agora_types::Keypair::generate().account(),
        endpoint: format!("http://{}", dead_addr()),
        models: vec![down.id],
        price: CHEAP,
        stake: 1,
        registered_at: 0,
        replayable: true,
    };
    let gw = gateway(Snapshot {
        chain_id: CHAIN_ID.into(),
        models: vec![tiny.clone(), down.clone()],
        providers: vec![dead, good.info(&[tiny.id])],
    })
    .await;
    for stream in [false, true] {
        let mut body = chat_body("ghost");
        body["models"] = json!(["down", "tiny"]);
        body["stream"] = json!(stream);
        let resp = gw.post("/v1/chat/completions", &body).await;
        assert_eq!(resp.status(), 200);
        let text = text(resp).await;
        assert!(
            text.contains("\"model\":\"tiny\"") && text.contains("fine"),
            "{text}"
        );
    }
    // Without a fallback that works, the last model's error is the answer.
    let mut body = chat_body("ghost");
    body["models"] = json!(["down"]);
    openai_error(gw.post("/v1/chat/completions", &body).await, 503).await;
    let refuse = stub(Script::Refuse, CHEAP).await;
    let gw = gateway(snapshot(&[&refuse])).await;
    let mut body = chat_body("tiny");
    body["models"] = json!(["tiny", "other"]);
    openai_error(gw.post("/v1/chat/completions", &body).await, 400).await;
    assert_eq!(refuse.jobs().len(), 1);
}

#[tokio::test]
async fn every_provider_down_is_503() {
    let m = model("tiny");
    let dead = |n: u8| agora_types::ProviderInfo {
        id: agora_types::Keypair::from_seed([n; 32]).account(),
        endpoint: format!("http://{}", dead_addr()),
        models: vec![m.id],
        price: CHEAP,
        stake: 1,
        registered_at: 0,
        replayable: true,
    };
    let gw = gateway(Snapshot {
        chain_id: CHAIN_ID.into(),
        models: vec![m.clone()],
        providers: vec![dead(1), dead(2)],
    })
    .await;
    let resp = gw.post("/v1/chat/completions", &chat_body("tiny")).await;
    assert!(resp.headers().contains_key("retry-after"));
    openai_error(resp, 503).await;
}

#[tokio::test]
async fn provider_failing_mid_stream() {
    for script in [
        Script::EofAfterOne,
        Script::AbortAfterOne,
        Script::ErrorAfterOne,
        Script::Stall,
    ] {
        let p = stub(script.clone(), CHEAP).await;
        let config = GatewayConfig {
            provider_idle_timeout: Duration::from_millis(300),
            ..GatewayConfig::default()
        };
        let gw = gateway_with(Some(snapshot(&[&p])), config).await;

        let mut body = chat_body("tiny");
        body["stream"] = json!(true);
        let resp = gw.post("/v1/chat/completions", &body).await;
        assert_eq!(resp.status(), 200, "{script:?}");
        let events = sse_data(&text(resp).await);
        let last = events.last().unwrap();
        assert_eq!(
            last["error"]["code"], "provider_failed",
            "{script:?}: {events:#?}"
        );
        assert_eq!(last["error"]["type"], "server_error");
        assert!(last["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        assert!(
            !events.contains(&Value::String("[DONE]".into())),
            "{script:?}"
        );
        assert!(
            events
                .iter()
                .all(|e| e["choices"][0]["finish_reason"].is_null()),
            "{script:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| e["choices"][0]["delta"]["content"] == "partial"),
            "{script:?}: {events:#?}"
        );

        let err = openai_error(
            gw.post("/v1/chat/completions", &chat_body("tiny")).await,
            502,
        )
        .await;
        assert_eq!(err["code"], "provider_failed", "{script:?}");
    }
}

#[tokio::test]
async fn broken_provider_is_avoided_afterwards() {
    let broken = stub(Script::EofAfterOne, CHEAP).await;
    let good = stub(Script::Deltas(vec!["ok"]), DEAR).await;
    let gw = gateway(snapshot(&[&broken, &good])).await;
    let mut body = chat_body("tiny");
    body["provider"] = json!({"order": [broken.key.account().to_hex()]});
    body["stream"] = json!(true);
    let events = sse_data(&text(gw.post("/v1/chat/completions", &body).await).await);
    assert!(events.last().unwrap().get("error").is_some());
    // Cheaper, but failed moments ago: the healthy provider is preferred.
    let mut body = chat_body("tiny");
    body["provider"] = json!({"sort": "price"});
    let resp = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(
        resp.headers()["x-agora-provider"].to_str().unwrap(),
        good.key.account().to_hex()
    );
    assert_eq!(broken.jobs().len(), 1);
}

#[tokio::test]
async fn missing_seed_is_chosen_and_defaults_apply() {
    let p = stub(Script::Deltas(vec!["x"]), CHEAP).await;
    let gw = gateway(snapshot(&[&p])).await;
    for _ in 0..2 {
        assert_eq!(
            gw.post("/v1/chat/completions", &chat_body("tiny"))
                .await
                .status(),
            200
        );
    }
    let body = json!({"model": "tiny", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 9, "stop": "STOP"});
    assert_eq!(gw.post("/v1/chat/completions", &body).await.status(), 200);
    let jobs = p.jobs();
    assert_eq!(jobs.len(), 3);
    assert_ne!(
        jobs[0].params.seed, jobs[1].params.seed,
        "each unseeded request gets its own random seed"
    );
    assert_eq!(jobs[0].params.max_tokens, 256);
    assert_eq!(jobs[0].params.temperature, 1.0);
    assert_eq!(jobs[0].params.top_p, 1.0);
    assert!(jobs[0].params.stop.is_empty());
    assert_eq!(jobs[2].params.max_tokens, 9);
    assert_eq!(jobs[2].params.stop, vec!["STOP".to_string()]);
}

#[tokio::test]
async fn wait_for_model_sees_a_provider_appear() {
    let gw = gateway_with(None, GatewayConfig::default()).await;
    let err = gw
        .gateway
        .wait_for_model("tiny", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, GatewayError::Directory(_)), "{err:?}");

    gw.directory.set(Some(Snapshot {
        chain_id: CHAIN_ID.into(),
        models: vec![model("tiny")],
        providers: vec![],
    }));
    let err = gw
        .gateway
        .wait_for_model("tiny", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GatewayError::ModelNotServed { .. }),
        "{err:?}"
    );

    let waiter = {
        let g = gw.gateway.clone();
        tokio::spawn(async move { g.wait_for_model("tiny", Duration::from_secs(20)).await })
    };
    let p = stub(Script::Deltas(vec!["x"]), CHEAP).await;
    gw.directory.set(Some(snapshot(&[&p])));
    waiter.await.unwrap().unwrap();
    let list: Value = gw.get("/v1/models").await.json().await.unwrap();
    assert_eq!(list["data"][0]["id"], "tiny");
}

#[tokio::test]
async fn run_refresh_stops_on_shutdown() {
    let p = stub(Script::Deltas(vec!["x"]), CHEAP).await;
    let config = GatewayConfig {
        refresh_interval: Duration::from_millis(20),
        ..GatewayConfig::default()
    };
    let gw = gateway_with(None, config).await;
    gw.directory.set(Some(snapshot(&[&p])));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(gw.gateway.clone().run_refresh(async move {
        let _ = stopped.await;
    }));
    // The loop's first tick reads the directory; waiting for the model proves it ran.
    gw.gateway
        .wait_for_model("tiny", Duration::from_secs(20))
        .await
        .unwrap();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("run_refresh ignored shutdown")
        .unwrap();
}

#[tokio::test]
async fn n_choices_are_separate_jobs_on_separate_rng_streams() {
    let p = stub(Script::Deltas(vec!["Hel", "lo"]), CHEAP).await;
    let gw = gateway(snapshot(&[&p])).await;
    let mut body = chat_body("tiny");
    body["n"] = json!(3);
    body["seed"] = json!(7);
    let resp = gw.post("/v1/chat/completions", &body).await;
    assert_eq!(resp.status(), 200);
    let receipts = resp.headers()["x-agora-receipt"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(receipts.split(',').count(), 3, "{receipts}");
    let v: Value = resp.json().await.unwrap();
    let choices = v["choices"].as_array().unwrap();
    let indices: Vec<u64> = choices
        .iter()
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, [0, 1, 2]);
    assert!(choices.iter().all(|c| c["message"]["content"] == "Hello"));
    assert_eq!(v["usage"]["completion_tokens"], 3 * 2);
    let mut jobs: Vec<(u32, u64)> = p
        .jobs()
        .iter()
        .map(|j| (j.params.choice, j.params.seed))
        .collect();
    jobs.sort_unstable();
    assert_eq!(jobs, [(0, 7), (1, 7), (2, 7)]);

    // Streaming: chunks of both choices, one usage chunk summing both, then [DONE].
    let mut body = chat_body("tiny");
    body["n"] = json!(2);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let raw = text(gw.post("/v1/chat/completions", &body).await).await;
    let events = sse_data(&raw);
    assert_eq!(events.last().unwrap(), &json!("[DONE]"), "{raw}");
    for index in [0, 1] {
        let content = streamed_content(&events, index);
        assert_eq!(content, "Hello", "choice {index} in {raw}");
        let finished = events.iter().any(|e| {
            e["choices"].as_array().is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["index"] == index && c["finish_reason"].is_string())
            })
        });
        assert!(finished, "choice {index} never finished: {raw}");
    }
    let usage = &events[events.len() - 2];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 2 * 2);
}

/// The one client key of the paying gateways below.
const TEST_KEY: &str = "sk-agora-test-key";

/// Attack: a provider (registered at a low price, pinned with
/// `provider.only`) signs receipts that charge more than its on-chain price
/// and the token counts justify. The gateway refuses every such receipt, pays
/// nothing for it, and answers the client with an error; an honest receipt
/// from the same setup is paid exactly its price.
#[tokio::test]
async fn receipts_charging_more_than_the_on_chain_terms_are_never_paid() {
    use common::Greed;
    for greed in [
        Greed::Cost,
        Greed::Price,
        Greed::PromptTokens,
        Greed::CompletionTokens,
        Greed::Mismatch,
        Greed::OtherChain,
    ] {
        let thief = stub(Script::Greedy(vec!["a", "b"], greed), CHEAP).await;
        let m = model("tiny");
        let snap = Snapshot {
            chain_id: CHAIN_ID.into(),
            models: vec![m.clone()],
            providers: vec![thief.info(&[m.id])],
        };
        let payer = std::sync::Arc::new(common::RecordingPayer::default());
        let directory = common::TestDirectory::default();
        directory.set(Some(snap));
        let book = common::TestBook::with_key(TEST_KEY);
        let gateway = common::keyed_gateway(directory, &book, payer.clone()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, gateway.router()).await.unwrap() });
        let http = reqwest::Client::new();
        for stream in [false, true] {
            let mut body = chat_body("tiny");
            body["stream"] = json!(stream);
            body["max_tokens"] = json!(8);
            body["provider"] = json!({"only": [thief.key.account().to_hex()]});
            let resp = http
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(TEST_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            let text = text(resp).await;
            assert!(text.contains("error"), "{greed:?} stream={stream}: {text}");
        }
        assert!(
            payer.receipts().is_empty(),
            "{greed:?}: a dishonest receipt reached the payer"
        );
    }
    // The honest control: the same route pays exactly price × tokens.
    let honest = stub(Script::Deltas(vec!["a", "b"]), CHEAP).await;
    let m = model("tiny");
    let payer = std::sync::Arc::new(common::RecordingPayer::default());
    let directory = common::TestDirectory::default();
    directory.set(Some(Snapshot {
        chain_id: CHAIN_ID.into(),
        models: vec![m.clone()],
        providers: vec![honest.info(&[m.id])],
    }));
    let book = common::TestBook::with_key(TEST_KEY);
    let gateway = common::keyed_gateway(directory, &book, payer.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, gateway.router()).await.unwrap() });
    let http = reqwest::Client::new();
    // Attack (issue 13, #3): without a key, or with a wrong one, nothing is
    // spent: 401 in OpenAI's shape before any provider is called.
    for key in [None, Some("sk-agora-guess")] {
        let mut request = http.post(format!("{base}/v1/chat/completions"));
        if let Some(k) = key {
            request = request.bearer_auth(k);
        }
        let resp = request.json(&chat_body("tiny")).send().await.unwrap();
        let e = openai_error(resp, 401).await;
        assert_eq!(e["code"], "invalid_api_key");
    }
    assert!(
        honest.jobs().is_empty(),
        "no job ran for an unauthorized request"
    );
    assert!(payer.receipts().is_empty());
    let resp = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(TEST_KEY)
        .json(&chat_body("tiny"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let paid = payer.receipts();
    assert_eq!(paid.len(), 1);
    let r = &paid[0].receipt;
    assert_eq!(
        r.cost,
        CHEAP.cost(
            r.usage.prompt_tokens.into(),
            r.usage.completion_tokens.into()
        )
    );
}

/// A paying gateway (keyed, recording what it pays) over `stubs`, serving
/// `tiny`; the key book lives as long as the returned [`common::TestBook`].
async fn paying_gateway(
    stubs: &[&Stub],
) -> (
    String,
    std::sync::Arc<common::RecordingPayer>,
    common::TestBook,
) {
    let payer = std::sync::Arc::new(common::RecordingPayer::default());
    let directory = common::TestDirectory::default();
    directory.set(Some(snapshot(stubs)));
    let book = common::TestBook::with_key(TEST_KEY);
    let gateway = common::keyed_gateway(directory, &book, payer.clone()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, gateway.router()).await.unwrap() });
    (base, payer, book)
}

/// POST a chat completion with the test key.
async fn paid_chat(base: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(TEST_KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The text of choice `index` in a streamed completion's chunks.
fn streamed_content(events: &[Value], index: u64) -> String {
    events
        .iter()
        .filter_map(|e| {
            let c = e["choices"]
                .as_array()?
                .iter()
                .find(|c| c["index"] == index)?;
            c["delta"]["content"].as_str().map(str::to_string)
        })
        .collect()
}

/// Attack (threat model row 8): a provider streams junk to the client while
/// its receipt (and so the transcript an auditor replays) commits to honest
/// text. The gateway hashes the text it received and refuses the receipt:
/// nothing is paid; a non-streamed request gets an OpenAI-shaped error (or
/// the next provider's answer), a streamed one ends in an error event, never
/// a finish; with `n` = 2 too. An honest provider whose deltas carry
/// multi-byte characters is paid.
#[tokio::test]
async fn streamed_text_the_receipt_does_not_hash_is_never_paid() {
    let thief = stub(Script::Greedy(vec!["jun", "k"], Greed::Text), CHEAP).await;
    let (base, payer, _book) = paying_gateway(&[&thief]).await;
    for n in [1, 2] {
        let mut body = chat_body("tiny");
        body["n"] = json!(n);
        let err = openai_error(paid_chat(&base, &body).await, 502).await;
        assert_eq!(err["code"], "provider_failed", "n={n}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains("text hash"),
            "n={n}: {err}"
        );

        body["stream"] = json!(true);
        let resp = paid_chat(&base, &body).await;
        assert_eq!(resp.status(), 200);
        let events = sse_data(&text(resp).await);
        let last = events.last().unwrap();
        assert_eq!(
            last["error"]["code"], "provider_failed",
            "n={n}: {events:#?}"
        );
        assert!(last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("text hash"));
        assert!(!events.contains(&json!("[DONE]")), "n={n}: {events:#?}");
        assert!(
            events.iter().all(|e| e["choices"]
                .as_array()
                .is_none_or(|cs| cs.iter().all(|c| c["finish_reason"].is_null()))),
            "a refused job was finished normally: {events:#?}"
        );
    }
    assert_eq!(thief.jobs().len(), 2 * (1 + 2));
    assert!(
        payer.receipts().is_empty(),
        "a receipt for text the client never got reached the payer"
    );

    // Not streamed, nothing has been shown yet: the gateway fails over to
    // the next provider, whose receipt is the only one paid.
    let honest = stub(Script::Deltas(vec!["h", "é", "llo 🙂"]), DEAR).await;
    let thief = stub(Script::Greedy(vec!["jun", "k"], Greed::Text), CHEAP).await;
    let (base, payer, _book) = paying_gateway(&[&thief, &honest]).await;
    let mut body = chat_body("tiny");
    body["provider"] = json!({"order": [thief.key.account().to_hex()]});
    let resp = paid_chat(&base, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-agora-provider"].to_str().unwrap(),
        honest.key.account().to_hex()
    );
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "héllo 🙂");
    assert_eq!(thief.jobs().len(), 1);
    let paid = payer.receipts();
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0].receipt.provider, honest.key.account());

    // The honest provider alone, streamed with n = 2: both choices finish and are paid.
    let (base, payer, _book) = paying_gateway(&[&honest]).await;
    let mut body = chat_body("tiny");
    body["n"] = json!(2);
    body["stream"] = json!(true);
    let events = sse_data(&text(paid_chat(&base, &body).await).await);
    assert_eq!(events.last().unwrap(), &json!("[DONE]"), "{events:#?}");
    for index in [0, 1] {
        assert_eq!(streamed_content(&events, index), "héllo 🙂");
    }
    assert_eq!(payer.receipts().len(), 2);
}
