//! The validator's real checker (`EngineChecker`: agora-verify on the real
//! default model) and the text a provider streamed (threat model row 8):
//! replay judging fails a receipt whose `text_hash` is not the text its
//! tokens stream; statistical judging (upstream providers, whose server's
//! own detokenizer may legitimately differ) does not look at it. Jobs of an
//! embedding model are checked by embedding again, under either judging.

use std::sync::Arc;

use agora_testkit::model;
use agora_types::{hash_output_text, Keypair, Transcript};
use agora_validator::{CheckEngine, EngineChecker, JobChecker, Judging};
use agora_verify::calibrate::{finish_job, honest_job, start_job, transcript};
use agora_verify::Thresholds;

/// The same job facts, re-signed with the hash of `text` as the streamed text.
fn claiming_text(t: &Transcript, text: &str) -> Transcript {
    let r = &t.receipt.receipt;
    transcript(
        &Keypair::generate(),
        r.model,
        t.input.clone(),
        r.params.clone(),
        t.prompt_tokens.clone(),
        t.output_tokens.clone(),
        hash_output_text(text),
        t.commitments.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_judging_binds_the_streamed_text_and_statistical_judging_does_not() {
    let engine = Arc::new(model::load(model::config()));
    let id = model::id();
    let generator = engine.clone();
    let honest = tokio::task::spawn_blocking(move || {
        let (input, params) = honest_job(0, 24);
        let rx = start_job(generator.as_ref(), &input, &params).unwrap();
        finish_job(rx, &Keypair::generate(), id, input, params).unwrap()
    })
    .await
    .unwrap();
    assert!(!honest.output_tokens.is_empty());
    let checker = EngineChecker::new(CheckEngine::Generative(engine), id, Thresholds::default());
    for judging in [Judging::Replay, Judging::Statistical] {
        let outcome = checker.check(honest.clone(), judging).await.unwrap();
        assert!(outcome.passed, "{judging:?}: {outcome:?}");
    }
    let junk = claiming_text(&honest, "Buy agora tokens now!");
    let outcome = checker.check(junk.clone(), Judging::Replay).await.unwrap();
    assert!(!outcome.passed, "{outcome:?}");
    assert!(outcome.summary.contains("streamed text"), "{outcome:?}");
    assert_eq!(
        outcome.summary.matches("; ").count(),
        0,
        "the text is the only fault: {outcome:?}"
    );
    let outcome = checker.check(junk, Judging::Statistical).await.unwrap();
    assert!(outcome.passed, "{outcome:?}");
}

/// A validator started with the embedding model passes an honest embedding
/// job and fails one whose vectors are not the model's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_jobs_are_checked_by_embedding_again() {
    use agora_engine::{EngineEvent, GenerateRequest, InferenceEngine, LlamaEmbedder};
    use agora_types::{
        hash_embeddings, hash_tokens, Hash32, JobInput, Receipt, SamplingParams, Usage,
    };
    model::require_real_model_binary();
    let path = agora_models::embedding_model_path();
    assert!(
        agora_engine::is_embedding_model(&path).unwrap(),
        "{}",
        path.display()
    );
    let embedder = Arc::new(LlamaEmbedder::load(&path, Default::default()).unwrap());
    let inputs = vec![
        "rivers run to the sea".to_string(),
        "stake is slashed".to_string(),
    ];
    let params = SamplingParams::new(1, 0.0, 1.0, vec![], 0);
    let request = GenerateRequest {
        input: JobInput::Embed {
            inputs: inputs.clone(),
        },
        params: params.clone(),
    };
    let mut events = embedder.generate(request).unwrap();
    let (mut prompt, mut vectors) = (Vec::new(), Vec::new());
    while let Some(e) = events.recv().await {
        match e {
            EngineEvent::Started { prompt_tokens, .. } => prompt = prompt_tokens,
            EngineEvent::Embeddings(v) => vectors = v,
            _ => {}
        }
    }
    let key = Keypair::generate();
    let signed = |vectors: Vec<Vec<f32>>| Transcript {
        receipt: Receipt {
            chain_id: "test".into(),
            id: Hash32([3; 32]),
            provider: key.account(),
            model: Hash32([9; 32]),
            prompt_hash: hash_tokens(&prompt),
            output_hash: hash_embeddings(&vectors),
            text_hash: hash_output_text(""),
            params: params.clone(),
            usage: Usage {
                prompt_tokens: prompt.len() as u32,
                completion_tokens: 0,
            },
            price: Default::default(),
            cost: 0,
            timestamp_ms: 0,
            commitments: Hash32::ZERO,
        }
        .sign(&key),
        input: JobInput::Embed {
            inputs: inputs.clone(),
        },
        prompt_tokens: prompt.clone(),
        output_tokens: vec![],
        commitments: None,
        embeddings: vectors,
    };
    let checker = EngineChecker::new(
        CheckEngine::Embedding(embedder),
        Hash32([9; 32]),
        Thresholds::default(),
    );
    for judging in [Judging::Replay, Judging::Statistical] {
        let outcome = checker
            .check(signed(vectors.clone()), judging)
            .await
            .unwrap();
        assert!(outcome.passed, "{judging:?}: {outcome:?}");
    }
    let mut other = vectors.clone();
    other.reverse();
    let outcome = checker.check(signed(other), Judging::Replay).await.unwrap();
    assert!(
        !outcome.passed && outcome.summary.contains("cosine"),
        "{outcome:?}"
    );
}
