//! The provider's HTTP protocol over real loopback HTTP: once with the real
//! llama.cpp engine on the default model, and with a scripted engine double
//! for the failure paths a real model cannot be made to take on demand.

use std::sync::{Arc, Mutex};

use agora_engine::{EngineError, EngineEvent, GenerateRequest, InferenceEngine, ModelInfo};
use agora_provider::{Provider, TranscriptStore};
use agora_testkit::model;
use agora_types::{
    hash_output_text, hash_tokens, ChatMessage, FinishReason, Hash32, JobEvent, JobInput,
    JobRequest, Keypair, Price, SamplingParams, Transcript,
};
use agora_wire::headers::JOB_ID_HEADER;
use serde_json::Value;
use tokio::sync::mpsc;

const PRICE: Price = Price {
    input_per_1k: 1_000,
    output_per_1k: 2_000,
};

/// Serve a provider on a loopback port; returns its base URL.
async fn serve<E: InferenceEngine>(
    engine: E,
    key: Keypair,
    model: Hash32,
    dir: &std::path::Path,
) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let store = TranscriptStore::open(&dir.join("transcripts.redb")).unwrap();
    let router = Provider::new("service-test", Arc::new(engine), key, model, PRICE, store).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

fn job(model: Hash32, seed: u64) -> JobRequest {
    JobRequest {
        model,
        input: JobInput::Chat {
            messages: vec![ChatMessage {
                role: "user".into(),
                content: "Say hi".into(),
            }],
        },
        params: SamplingParams::new(12, 0.7, 1.0, vec![], seed),
    }
}

/// POST a job and collect its SSE events.
async fn post(
    url: &str,
    job: &JobRequest,
) -> (reqwest::StatusCode, Option<String>, Vec<JobEvent>, String) {
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/jobs"))
        .json(job)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let id = resp
        .headers()
        .get(JOB_ID_HEADER)
        .map(|v| v.to_str().unwrap().to_string());
    let body = resp.text().await.unwrap();
    let events = if status.is_success() {
        body.split("\n\n")
            .filter_map(|e| e.trim().strip_prefix("data:"))
            .map(|d| serde_json::from_str(d.trim()).unwrap())
            .collect()
    } else {
        Vec::new()
    };
    (status, id, events, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_engine_job_yields_a_signed_receipt_and_a_replayable_transcript() {
    let dir = tempfile::tempdir().unwrap();
    let engine = tokio::task::spawn_blocking(|| model::load(model::config()))
        .await
        .unwrap();
    let key = Keypair::generate();
    let model = Hash32::digest(b"the model");
    let url = serve(engine, key.clone(), model, dir.path()).await;

    let (status, id, events, body) = post(&url, &job(model, 5)).await;
    assert_eq!(status, 200, "{body}");
    let Some(JobEvent::Done {
        finish_reason,
        usage,
        receipt,
        ..
    }) = events.last().cloned()
    else {
        panic!("stream did not end with done: {body}");
    };
    let text: String = events
        .iter()
        .filter_map(|e| {
            if let JobEvent::Delta { text } = e {
                Some(text.as_str())
            } else {
                None
            }
        })
        .collect();
    assert!(!text.is_empty());
    assert!(matches!(
        finish_reason,
        FinishReason::Stop | FinishReason::Length
    ));
    receipt.verify().unwrap();
    let r = &receipt.receipt;
    assert_eq!(r.provider, key.account());
    assert_eq!(Some(r.id.to_hex()), id);
    assert_eq!(r.usage, usage);
    assert_eq!(
        r.cost,
        PRICE.cost(usage.prompt_tokens.into(), usage.completion_tokens.into())
    );
    assert!(r.cost > 0);

    let transcript: Transcript = reqwest::get(format!("{url}/v1/transcripts/{}", r.id.to_hex()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(transcript.receipt, receipt);
    assert_eq!(hash_tokens(&transcript.output_tokens), r.output_hash);
    assert_eq!(hash_tokens(&transcript.prompt_tokens), r.prompt_hash);
    assert_eq!(hash_output_text(&text), r.text_hash, "the text as streamed");
    // The real engine commits to its hidden states; the receipt signs their hash.
    let commitments = transcript.commitments.as_ref().expect("commitments");
    assert_eq!(
        commitments.chunks.len(),
        transcript.output_tokens.len().div_ceil(32)
    );
    assert_eq!(
        agora_types::commitments_hash(Some(commitments)),
        r.commitments
    );
    assert_ne!(r.commitments, agora_types::Hash32::ZERO);
    assert_eq!(
        transcript.output_tokens.len() as u32,
        usage.completion_tokens
    );
    assert_eq!(transcript.input, job(model, 5).input);

    // The same seed replays to the same output tokens.
    let (_, _, again, _) = post(&url, &job(model, 5)).await;
    let Some(JobEvent::Done {
        receipt: second, ..
    }) = again.last()
    else {
        panic!("no done")
    };
    assert_eq!(second.receipt.output_hash, r.output_hash);
    assert_ne!(second.receipt.id, r.id);
}

/// What the scripted engine does with every job: replay events or refuse.
type Script = Result<Vec<EngineEvent>, fn() -> EngineError>;

/// Test double: replays a fixed script of events, or refuses with an error.
struct Scripted {
    info: ModelInfo,
    script: Mutex<Script>,
}

impl InferenceEngine for Scripted {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn generate(&self, _: GenerateRequest) -> Result<mpsc::Receiver<EngineEvent>, EngineError> {
        let script = self.script.lock().unwrap();
        let events = script.as_ref().map_err(|make| make())?;
        let (tx, rx) = mpsc::channel(events.len().max(1));
        for e in events {
            tx.try_send(e.clone()).unwrap();
        }
        Ok(rx)
    }
}

fn scripted(script: Script) -> Scripted {
    let info = ModelInfo {
        name: "scripted".into(),
        architecture: "none".into(),
        quantization: "none".into(),
        context_length: 64,
    };
    Scripted {
        info,
        script: Mutex::new(script),
    }
}

#[tokio::test]
async fn refusals_and_failures_are_reported_not_swallowed() {
    let dir = tempfile::tempdir().unwrap();
    let model = Hash32::digest(b"m");
    let client = reqwest::Client::new();

    // Engine fails mid-job: the stream carries an error event and no receipt.
    let failing = vec![
        EngineEvent::Started {
            prompt_tokens: vec![1, 2],
            cached_tokens: 0,
        },
        EngineEvent::Text("par".into()),
        EngineEvent::Failed("decode failed".into()),
    ];
    let url = serve(
        scripted(Ok(failing)),
        Keypair::generate(),
        model,
        &dir.path().join("a"),
    )
    .await;
    let (status, _, events, _) = post(&url, &job(model, 1)).await;
    assert_eq!(status, 200);
    assert_eq!(
        events.last(),
        Some(&JobEvent::Error {
            message: "decode failed".into()
        })
    );

    // The engine's channel closes without Finished: also an error, never a hang.
    let truncated = vec![
        EngineEvent::Started {
            prompt_tokens: vec![1],
            cached_tokens: 0,
        },
        EngineEvent::Text("x".into()),
    ];
    let url = serve(
        scripted(Ok(truncated)),
        Keypair::generate(),
        model,
        &dir.path().join("b"),
    )
    .await;
    let (_, _, events, _) = post(&url, &job(model, 1)).await;
    assert!(
        matches!(events.last(), Some(JobEvent::Error { .. })),
        "{events:?}"
    );

    // Busy engine: 503 with retry-after, in OpenAI's error shape.
    let url = serve(
        scripted(Err(|| EngineError::Busy(4))),
        Keypair::generate(),
        model,
        &dir.path().join("c"),
    )
    .await;
    let resp = client
        .post(format!("{url}/v1/jobs"))
        .json(&job(model, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "provider_busy");

    // Invalid request from the engine: 400.
    let bad = || EngineError::InvalidRequest("prompt too long".into());
    let url = serve(
        scripted(Err(bad)),
        Keypair::generate(),
        model,
        &dir.path().join("d"),
    )
    .await;
    let (status, _, _, body) = post(&url, &job(model, 1)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("prompt too long"));

    // Wrong model: 404. Malformed job: 400. Unknown transcript: 404; bad id: 400.
    let (status, _, _, _) = post(&url, &job(Hash32::digest(b"other"), 1)).await;
    assert_eq!(status, 404);
    let resp = client
        .post(format!("{url}/v1/jobs"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = client
        .get(format!(
            "{url}/v1/transcripts/{}",
            Hash32::digest(b"x").to_hex()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = client
        .get(format!("{url}/v1/transcripts/zz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
