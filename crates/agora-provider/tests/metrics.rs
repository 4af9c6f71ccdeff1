//! `GET /metrics` on a provider over real HTTP: jobs waiting for the engine
//! show as queue depth until it takes them, finished jobs count by outcome
//! with their tokens and time to first token, a busy engine counts as
//! `busy`, and hostile paths add no series.

use std::sync::{Arc, Mutex};

use agora_engine::{EngineError, EngineEvent, GenerateRequest, InferenceEngine, ModelInfo};
use agora_provider::{Provider, TranscriptStore};
use agora_types::{
    FinishReason, Hash32, JobInput, JobRequest, Keypair, ModelId, Price, SamplingParams,
};

/// An engine that holds every job in its queue until the test releases
/// them, and is busy beyond `capacity` held jobs.
struct GatedEngine {
    info: ModelInfo,
    held: Mutex<Vec<tokio::sync::mpsc::Sender<EngineEvent>>>,
    capacity: usize,
}

impl GatedEngine {
    /// Start and finish every held job: the text `hi`, output tokens `[7, 8]`.
    fn release_all(&self) {
        for tx in self.held.lock().unwrap().drain(..) {
            for event in [
                EngineEvent::Started {
                    prompt_tokens: vec![1, 2, 3],
                    cached_tokens: 0,
                },
                EngineEvent::Text("hi".into()),
                EngineEvent::Finished {
                    finish_reason: FinishReason::Stop,
                    output_tokens: vec![7, 8],
                    commitments: None,
                },
            ] {
                tx.try_send(event).expect("a channel of 4 holds 3 events");
            }
        }
    }
}

impl InferenceEngine for GatedEngine {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn generate(
        &self,
        _: GenerateRequest,
    ) -> Result<tokio::sync::mpsc::Receiver<EngineEvent>, EngineError> {
        let mut held = self.held.lock().unwrap();
        if held.len() >= self.capacity {
            return Err(EngineError::Busy(self.capacity));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        held.push(tx);
        Ok(rx)
    }
}

fn model() -> ModelId {
    Hash32::digest(b"metrics model")
}

fn job(seed: u64) -> JobRequest {
    JobRequest {
        model: model(),
        input: JobInput::Text {
            prompt: "hello".into(),
        },
        params: SamplingParams::new(4, 0.0, 1.0, vec![], seed),
    }
}

async fn scrape(http: &reqwest::Client, url: &str) -> String {
    let resp = http.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], agora_metrics::CONTENT_TYPE);
    resp.text().await.unwrap()
}

fn has(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[tokio::test]
async fn queue_depth_outcomes_and_tokens_are_scraped() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(GatedEngine {
        info: ModelInfo {
            name: "gated".into(),
            architecture: "none".into(),
            quantization: "none".into(),
            context_length: 64,
        },
        held: Mutex::new(Vec::new()),
        capacity: 3,
    });
    let store = TranscriptStore::open(&dir.path().join("transcripts.redb")).unwrap();
    let price = Price {
        input_per_1k: 10,
        output_per_1k: 20,
    };
    let provider = Provider::new(
        "metrics-test",
        engine.clone(),
        Keypair::generate(),
        model(),
        price,
        store,
    );
    let router = provider.router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();

    // Three jobs the engine holds: the response head comes once a job is queued.
    let mut queued = Vec::new();
    for seed in 0..3 {
        let resp = http
            .post(format!("{url}/v1/jobs"))
            .json(&job(seed))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        queued.push(resp);
    }
    let busy = http
        .post(format!("{url}/v1/jobs"))
        .json(&job(9))
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 503);
    for i in 0..40 {
        let hostile = http.get(format!("{url}/x/{i}/..%2f")).send().await.unwrap();
        assert_eq!(hostile.status(), 404);
    }

    let text = scrape(&http, &url).await;
    for line in [
        "agora_provider_jobs_waiting 3",
        "agora_provider_jobs_running 0",
        r#"agora_provider_jobs_total{outcome="busy"} 1"#,
        r#"agora_http_requests_total{route="unmatched",method="GET",status="404"} 40"#,
        r#"agora_http_requests_total{route="/v1/jobs",method="POST",status="503"} 1"#,
    ] {
        assert!(has(&text, line), "no {line} in\n{text}");
    }
    assert!(!text.contains("/x/"), "{text}");

    engine.release_all();
    for resp in queued {
        let body = resp.text().await.unwrap();
        assert!(body.contains("\"done\""), "{body}");
    }
    let text = scrape(&http, &url).await;
    for line in [
        "agora_provider_jobs_waiting 0",
        "agora_provider_jobs_running 0",
        r#"agora_provider_jobs_total{outcome="completed"} 3"#,
        "agora_provider_completion_tokens_total 6",
        "agora_provider_time_to_first_token_seconds_count 3",
        r#"agora_http_requests_total{route="/v1/jobs",method="POST",status="200"} 3"#,
        r#"agora_http_requests_total{route="/metrics",method="GET",status="200"} 1"#,
    ] {
        assert!(has(&text, line), "no {line} in\n{text}");
    }
}
