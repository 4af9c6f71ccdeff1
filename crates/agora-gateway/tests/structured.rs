//! Structured output and function calling through the gateway: what reaches
//! the provider (the output constraint, in the client's key order, and the
//! tool instructions in the prompt), and what the client gets back
//! (`tool_calls`, streamed or not), against scripted providers.

mod common;

use agora_types::{JobInput, OutputConstraint, Price};
use common::*;
use serde_json::{json, Value};

const PRICE: Price = Price {
    input_per_1k: 1000,
    output_per_1k: 2000,
};

const WEATHER_CALL: &str = r#"{"name":"get_weather","arguments":{"city":"Paris","unit":"c"}}"#;

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather", "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city"]},
    }})
}

async fn served(script: Script) -> (std::sync::Arc<Stub>, Running) {
    let p = stub(script, PRICE).await;
    let m = model("tiny");
    let snap = agora_gateway::Snapshot {
        chain_id: CHAIN_ID.into(),
        providers: vec![p.info(&[m.id])],
        models: vec![m],
    };
    let gw = gateway(snap).await;
    (p, gw)
}

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "tiny", "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn response_formats_become_constraints_in_the_clients_key_order() {
    let (p, gw) = served(Script::Deltas(vec!["{\"zeta\":", "1}"])).await;
    // Keys deliberately out of alphabetical order: generation follows the client's order.
    let schema = r#"{"type":"object","properties":{"zeta":{"type":"integer"},"alpha":{"type":"string"}},"required":["zeta"]}"#;
    let body = format!(
        r#"{{"model":"tiny","messages":[{{"role":"user","content":"hi"}}],"response_format":{{"type":"json_schema","json_schema":{{"name":"x","strict":true,"schema":{schema}}}}}}}"#
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.base))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "{\"zeta\":1}");
    let resp = gw
        .post(
            "/v1/chat/completions",
            &chat(json!({"response_format": {"type": "json_object"}})),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let jobs = p.jobs();
    assert_eq!(
        jobs[0].params.constraint,
        Some(OutputConstraint::JsonSchema {
            schema: schema.into()
        })
    );
    assert_eq!(
        jobs[1].params.constraint,
        Some(OutputConstraint::JsonObject)
    );
}

#[tokio::test]
async fn unusable_formats_and_tools_are_refused_with_the_parameter_named() {
    let (p, gw) = served(Script::Deltas(vec!["x"])).await;
    let cases = [
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "^a"}}}}),
            "response_format.json_schema.schema",
            "pattern",
        ),
        (
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
            "response_format.json_schema.schema",
            "required",
        ),
        (
            json!({"response_format": {"type": "yaml"}}),
            "response_format",
            "yaml",
        ),
        (
            json!({"response_format": "json"}),
            "response_format",
            "object",
        ),
        (
            json!({"tools": [{"type": "retrieval"}]}),
            "tools[0].type",
            "function",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "bad name"}}]}),
            "tools[0].function.name",
            "letters",
        ),
        (
            json!({"tools": [weather_tool(), weather_tool()]}),
            "tools[1].function.name",
            "twice",
        ),
        (
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "number", "minimum": 1}}}]}),
            "tools[0].function.parameters",
            "minimum",
        ),
        (
            json!({"tools": [weather_tool()], "tool_choice": {"type": "function", "function": {"name": "other"}}}),
            "tool_choice",
            "other",
        ),
        (json!({"tool_choice": "required"}), "tool_choice", "tools"),
        (
            json!({"tools": [weather_tool()], "tool_choice": "required", "response_format": {"type": "json_object"}}),
            "response_format",
            "forces",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "20C"}]}),
            "messages[0].tool_call_id",
            "tool_call_id",
        ),
    ];
    for (extra, param, needle) in cases {
        let err = openai_error(
            gw.post("/v1/chat/completions", &chat(extra.clone())).await,
            400,
        )
        .await;
        assert_eq!(err["param"], param, "{extra}: {err}");
        assert!(
            err["message"].as_str().unwrap().contains(needle),
            "{extra}: {err}"
        );
    }
    let legacy = json!({"model": "tiny", "prompt": "hi", "tools": [weather_tool()]});
    let err = openai_error(gw.post("/v1/completions", &legacy).await, 400).await;
    assert_eq!(err["param"], "tools");
    assert!(p.jobs().is_empty(), "nothing invalid reached the provider");
}

#[tokio::test]
async fn a_forced_call_is_constrained_and_answered_as_tool_calls() {
    let (p, gw) = served(Script::Deltas(vec![
        &WEATHER_CALL[..20],
        &WEATHER_CALL[20..],
    ]))
    .await;
    let body = chat(json!({"tools": [weather_tool()], "tool_choice": "required"}));
    let v: Value = gw.post_json("/v1/chat/completions", &body).await;
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{v}");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(
        call["function"]["arguments"],
        r#"{"city":"Paris","unit":"c"}"#
    );

    let job = &p.jobs()[0];
    let Some(OutputConstraint::JsonSchema { schema }) = &job.params.constraint else {
        panic!(
            "a forced call must be constrained: {:?}",
            job.params.constraint
        )
    };
    assert!(
        schema.contains(r#""name":{"const":"get_weather"}"#),
        "{schema}"
    );
    let JobInput::Chat { messages } = &job.input else {
        panic!()
    };
    assert_eq!(messages[0].role, "system");
    assert!(
        messages[0].content.contains("get_weather")
            && messages[0].content.contains("You must call")
    );
    assert_eq!(messages[1].content, "hi");
}

#[tokio::test]
async fn auto_choice_answers_text_as_content_and_calls_as_tool_calls_streamed_or_not() {
    let (_, gw) = served(Script::Deltas(vec!["It is ", "sunny."])).await;
    let body = chat(json!({"tools": [weather_tool()]}));
    let v: Value = gw.post_json("/v1/chat/completions", &body).await;
    assert_eq!(v["choices"][0]["message"]["content"], "It is sunny.");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = sse_data(&text(gw.post("/v1/chat/completions", &streamed).await).await);
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "It is sunny.");

    let wrapped: &'static str =
        Box::leak(format!("<tool_call>\n{WEATHER_CALL}\n</tool_call>").into_boxed_str());
    let (_, gw) = served(Script::Deltas(vec![wrapped])).await;
    let events = sse_data(&text(gw.post("/v1/chat/completions", &streamed).await).await);
    let calls: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls.len(), 1, "{events:?}");
    assert_eq!(calls[0][0]["index"], 0);
    assert_eq!(calls[0][0]["function"]["name"], "get_weather");
    assert_eq!(
        calls[0][0]["function"]["arguments"],
        r#"{"city":"Paris","unit":"c"}"#
    );
    assert!(events.iter().all(|e| e["choices"][0]["delta"]
        .get("content")
        .is_none_or(|c| c == "")));
    let last = events
        .iter()
        .rev()
        .find(|e| !e["choices"][0]["finish_reason"].is_null())
        .unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn earlier_calls_and_results_are_replayed_into_the_prompt() {
    let (p, gw) = served(Script::Deltas(vec!["It is 20C in Paris."])).await;
    let body = json!({"model": "tiny", "tools": [weather_tool()], "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "20C"},
    ]});
    let v: Value = gw.post_json("/v1/chat/completions", &body).await;
    assert_eq!(v["choices"][0]["message"]["content"], "It is 20C in Paris.");
    let JobInput::Chat { messages } = &p.jobs()[0].input else {
        panic!()
    };
    let roles: Vec<&str> = messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert!(messages[0]
        .content
        .starts_with("Be brief.\n\nYou can call functions."));
    assert_eq!(
        messages[2].content,
        r#"{"name":"get_weather","arguments":{"city":"Paris"}}"#
    );
    assert_eq!(messages[3].content, "Result of function call call_1:\n20C");
}

/// Attack: a provider ignores the client's format (generating freely is
/// what it would do to save the mask's work, or to push its own text) and
/// signs a receipt without the constraint, so an auditor would replay its
/// free text as honest. The gateway refuses any receipt whose sampling
/// parameters differ from the job's.
#[tokio::test]
async fn a_receipt_that_drops_the_constraint_is_refused() {
    let (p, gw) = served(Script::Greedy(vec!["not json"], Greed::Unconstrained)).await;
    let body = chat(json!({"response_format": {"type": "json_object"}}));
    let err = openai_error(gw.post("/v1/chat/completions", &body).await, 502).await;
    assert_eq!(err["code"], "provider_failed", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("sampling parameters"),
        "{err}"
    );
    assert_eq!(p.jobs().len(), 1);
}
