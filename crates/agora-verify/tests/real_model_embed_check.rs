//! Embedding jobs on the real embedding model (all-MiniLM-L6-v2): an honest
//! job run through the job protocol (`InferenceEngine::generate` with
//! `JobInput::Embed`) passes its audit; vectors of another model (here: a
//! perturbed or reordered set), vectors the receipt does not commit to, and
//! prompt tokens other than the inputs' fail.

use agora_engine::{EngineEvent, GenerateRequest, InferenceEngine, LlamaEmbedder};
use agora_types::{
    hash_embeddings, hash_output_text, hash_tokens, Hash32, JobInput, Keypair, Price, Receipt,
    SamplingParams, Transcript, Usage,
};
use agora_verify::check_embedding_job;

fn embedder() -> &'static LlamaEmbedder {
    agora_testkit::model::shared_embedder()
}

fn inputs() -> Vec<String> {
    [
        "The cat sits on the mat.",
        "A kitten is resting on a rug.",
        "Quarterly revenue rose by eight percent.",
    ]
    .map(String::from)
    .to_vec()
}

/// Run an embedding job as a provider does and sign its transcript.
fn job(key: &Keypair, inputs: Vec<String>) -> Transcript {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (prompt_tokens, vectors) = runtime.block_on(async {
        let request = GenerateRequest {
            input: JobInput::Embed {
                inputs: inputs.clone(),
            },
            params: SamplingParams::new(1, 0.0, 1.0, vec![], 0),
        };
        let mut events = embedder().generate(request).expect("job accepted");
        let (mut prompt, mut vectors) = (Vec::new(), Vec::new());
        while let Some(event) = events.recv().await {
            match event {
                EngineEvent::Started { prompt_tokens, .. } => prompt = prompt_tokens,
                EngineEvent::Embeddings(v) => vectors = v,
                EngineEvent::Finished { output_tokens, .. } => {
                    assert!(output_tokens.is_empty());
                    return (prompt, vectors);
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        panic!("no Finished event")
    });
    sign(key, inputs, prompt_tokens, vectors)
}

fn sign(
    key: &Keypair,
    inputs: Vec<String>,
    prompt_tokens: Vec<i32>,
    embeddings: Vec<Vec<f32>>,
) -> Transcript {
    let usage = Usage {
        prompt_tokens: prompt_tokens.len() as u32,
        completion_tokens: 0,
    };
    let receipt = Receipt {
        chain_id: "test".into(),
        id: Hash32([7; 32]),
        provider: key.account(),
        model: Hash32([1; 32]),
        prompt_hash: hash_tokens(&prompt_tokens),
        output_hash: hash_embeddings(&embeddings),
        text_hash: hash_output_text(""),
        params: SamplingParams::new(1, 0.0, 1.0, vec![], 0),
        usage,
        price: Price::default(),
        cost: 0,
        timestamp_ms: 0,
        commitments: Hash32::ZERO,
    }
    .sign(key);
    Transcript {
        receipt,
        input: JobInput::Embed { inputs },
        prompt_tokens,
        output_tokens: vec![],
        commitments: None,
        embeddings,
    }
}

#[test]
fn honest_embedding_jobs_pass_and_other_vectors_fail() {
    let key = Keypair::generate();
    let honest = job(&key, inputs());
    assert_eq!(honest.embeddings.len(), 3);
    assert!(honest.embeddings.iter().all(|v| v.len() == 384));
    let v = check_embedding_job(embedder(), &honest).unwrap();
    assert!(v.passed, "honest embedding job failed: {v:?}");

    // A cheaper stand-in: every vector nudged (as another model or coarse
    // quantization would), consistently re-signed.
    let mut nudged = honest.embeddings.clone();
    for v in &mut nudged {
        for (i, x) in v.iter_mut().enumerate() {
            *x += if i % 2 == 0 { 0.02 } else { -0.02 };
        }
    }
    let forged = sign(&key, inputs(), honest.prompt_tokens.clone(), nudged);
    let v = check_embedding_job(embedder(), &forged).unwrap();
    assert!(
        !v.passed && v.reasons.iter().any(|r| r.contains("cosine")),
        "{v:?}"
    );

    // Vectors of other inputs (answers cached for a different request).
    let mut swapped = honest.embeddings.clone();
    swapped.swap(0, 2);
    let v = check_embedding_job(
        embedder(),
        &sign(&key, inputs(), honest.prompt_tokens.clone(), swapped),
    )
    .unwrap();
    assert!(!v.passed, "{v:?}");

    // The receipt commits to other vectors than the transcript holds.
    let mut t = honest.clone();
    t.embeddings[1][0] += 0.5;
    let v = check_embedding_job(embedder(), &t).unwrap();
    assert!(v.reasons.iter().any(|r| r.contains("output hash")), "{v:?}");

    // Billed for more tokens than the inputs hold.
    let mut padded = honest.prompt_tokens.clone();
    padded.extend([101, 102]);
    let v = check_embedding_job(
        embedder(),
        &sign(&key, inputs(), padded, honest.embeddings.clone()),
    )
    .unwrap();
    assert!(v.reasons.iter().any(|r| r.contains("tokenize")), "{v:?}");
}
