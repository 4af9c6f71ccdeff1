//! The validator's real checker (`EngineChecker`: agora-verify on the real
//! default model) and the text a provider streamed (threat model row 8):
//! replay judging fails a receipt whose `text_hash` is not the text its
//! tokens stream; statistical judging (upstream providers, whose server's
//! own detokenizer may legitimately differ) does not look at it.

use std::sync::Arc;

use agora_testkit::model;
use agora_types::{hash_output_text, Keypair, Transcript};
use agora_validator::{EngineChecker, JobChecker, Judging};
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
    let checker = EngineChecker::new(engine, id, Thresholds::default());
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
