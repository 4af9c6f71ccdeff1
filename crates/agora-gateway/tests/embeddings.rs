//! `POST /v1/embeddings` against scripted providers: float and base64
//! vectors, usage and cost, field-precise refusals, and receipts that do not
//! commit to the vectors sent (or vectors that do not fit the inputs) never
//! accepted.

mod common;

use agora_types::{JobInput, Price};
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

const PRICE: Price = Price {
    input_per_1k: 1000,
    output_per_1k: 2000,
};

fn two() -> Vec<Vec<f32>> {
    vec![vec![0.6, 0.8, 0.0], vec![0.0, -1.0, 0.0]]
}

async fn served(script: Script) -> (std::sync::Arc<Stub>, Running) {
    let p = stub(script, PRICE).await;
    let m = model("minilm");
    let snap = agora_gateway::Snapshot {
        chain_id: CHAIN_ID.into(),
        providers: vec![p.info(&[m.id])],
        models: vec![m],
    };
    (p.clone(), gateway(snap).await)
}

#[tokio::test]
async fn vectors_come_back_as_floats_or_base64_with_usage() {
    let (p, gw) = served(Script::Vectors {
        sent: two(),
        hashed: two(),
    })
    .await;
    let body = json!({"model": "minilm", "input": ["a cat", "the revenue rose"]});
    let resp = gw.post("/v1/embeddings", &body).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-agora-receipt"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "minilm");
    assert_eq!(
        v["data"][0],
        json!({"object": "embedding", "index": 0, "embedding": [0.6f32, 0.8f32, 0.0]})
    );
    assert_eq!(v["data"][1]["index"], 1);
    assert_eq!(v["usage"]["prompt_tokens"], 9);
    assert_eq!(v["usage"]["total_tokens"], 9);
    assert_eq!(v["usage"]["cost"], PRICE.cost(9, 0));
    let job = &p.jobs()[0];
    assert_eq!(
        job.input,
        JobInput::Embed {
            inputs: vec!["a cat".into(), "the revenue rose".into()]
        }
    );

    let body = json!({"model": "minilm", "input": ["a cat", "b"], "encoding_format": "base64"});
    let v: Value = gw.post("/v1/embeddings", &body).await.json().await.unwrap();
    let b64 = v["data"][1]["embedding"].as_str().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let floats: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(floats, two()[1]);
}

#[tokio::test]
async fn bad_embedding_requests_name_their_field() {
    let (p, gw) = served(Script::Vectors {
        sent: two(),
        hashed: two(),
    })
    .await;
    let cases = [
        (json!({"input": "x"}), "model"),
        (json!({"model": "minilm"}), "input"),
        (json!({"model": "minilm", "input": []}), "input"),
        (json!({"model": "minilm", "input": ["ok", ""]}), "input[1]"),
        (json!({"model": "minilm", "input": [[1, 2, 3]]}), "input"),
        (json!({"model": "minilm", "input": 7}), "input"),
        (
            json!({"model": "minilm", "input": "x", "encoding_format": "int8"}),
            "encoding_format",
        ),
        (
            json!({"model": "minilm", "input": "x", "dimensions": 2}),
            "dimensions",
        ),
        (
            json!({"model": "minilm", "input": vec!["x"; 2049]}),
            "input",
        ),
    ];
    for (body, param) in cases {
        let err = openai_error(gw.post("/v1/embeddings", &body).await, 400).await;
        assert_eq!(err["param"], param, "{body}: {err}");
    }
    let err = openai_error(
        gw.post("/v1/embeddings", &json!({"model": "nope", "input": "x"}))
            .await,
        404,
    )
    .await;
    assert_eq!(err["code"], "model_not_found");
    assert!(p.jobs().is_empty());
}

/// Attacks: a provider sends one set of vectors and signs a receipt for
/// another (the transcript an auditor checks would then not be what the
/// client got), or sends fewer vectors than inputs, or non-numbers (NaN
/// travels as `null`, which is no vector).
/// None of these is accepted (nor, on a paying gateway, paid).
#[tokio::test]
async fn vectors_the_receipt_does_not_commit_to_or_that_do_not_fit_are_refused() {
    let other = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]];
    let scripts = [
        (
            Script::Vectors {
                sent: two(),
                hashed: other,
            },
            "output hash",
        ),
        (
            Script::Vectors {
                sent: vec![two()[0].clone()],
                hashed: vec![two()[0].clone()],
            },
            "1 vectors for 2 inputs",
        ),
        (
            Script::Vectors {
                sent: vec![vec![f32::NAN, 0.0], vec![0.0, 1.0]],
                hashed: vec![],
            },
            "invalid event",
        ),
    ];
    for (script, needle) in scripts {
        let (_, gw) = served(script).await;
        let body = json!({"model": "minilm", "input": ["a", "b"]});
        let err = openai_error(gw.post("/v1/embeddings", &body).await, 502).await;
        assert_eq!(err["code"], "provider_failed", "{err}");
        assert!(
            err["message"].as_str().unwrap().contains(needle),
            "{needle}: {err}"
        );
    }
}
