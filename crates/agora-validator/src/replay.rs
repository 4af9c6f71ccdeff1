//! [`JobChecker`] that replays jobs with a local llama.cpp engine (agora-verify),
//! or scores their plausibility when they cannot be replayed; jobs of an
//! embedding model are checked by embedding their inputs again.

use std::sync::Arc;

use agora_engine::{LlamaEmbedder, LlamaEngine};
use agora_types::{ModelId, Transcript};
use agora_verify::{check_embedding_job, check_job, check_job_statistically, Thresholds};

use crate::ports::{AuditError, CheckOutcome, JobChecker, Judging};

/// The model a validator checks jobs with.
#[derive(Clone)]
pub enum CheckEngine {
    /// A generative model: jobs are replayed token by token.
    Generative(Arc<LlamaEngine>),
    /// An embedding model: inputs are embedded again.
    Embedding(Arc<LlamaEmbedder>),
}

/// Replays transcripts of the models it holds with the real engine and
/// calibrated thresholds.
pub struct EngineChecker {
    models: Vec<(ModelId, CheckEngine, Thresholds)>,
}

impl EngineChecker {
    /// Check jobs of `model` (the GGUF `engine` loaded) against `thresholds`.
    pub fn new(engine: CheckEngine, model: ModelId, thresholds: Thresholds) -> Self {
        EngineChecker {
            models: vec![(model, engine, thresholds)],
        }
    }

    /// Also check jobs of `model` (an embedding model beside a generative one, say).
    pub fn with_model(
        mut self,
        engine: CheckEngine,
        model: ModelId,
        thresholds: Thresholds,
    ) -> Self {
        self.models.push((model, engine, thresholds));
        self
    }
}

impl JobChecker for EngineChecker {
    async fn check(
        &self,
        transcript: Transcript,
        judging: Judging,
    ) -> Result<CheckOutcome, AuditError> {
        let claimed = transcript.receipt.receipt.model;
        let Some((_, engine, thresholds)) = self.models.iter().find(|(m, ..)| *m == claimed) else {
            let held: Vec<String> = self.models.iter().map(|(m, ..)| m.to_string()).collect();
            return Err(AuditError::Checker(format!(
                "job ran model {claimed}; this validator replays only {}",
                held.join(", ")
            )));
        };
        let (engine, thresholds) = (engine.clone(), *thresholds);
        let verdict = tokio::task::spawn_blocking(move || match (engine, judging) {
            (CheckEngine::Generative(e), Judging::Replay) => {
                check_job(e.as_ref(), &transcript, &thresholds)
            }
            (CheckEngine::Generative(e), Judging::Statistical) => {
                check_job_statistically(e.as_ref(), &transcript)
            }
            // No sampling to replay: both judgings compare vectors.
            (CheckEngine::Embedding(e), _) => check_embedding_job(e.as_ref(), &transcript),
        })
        .await
        .map_err(|e| AuditError::Checker(format!("verifier task: {e}")))?
        .map_err(|e| AuditError::Checker(e.to_string()))?;
        let summary = if let (true, Some(p)) = (verdict.passed, verdict.plausibility) {
            format!("passed statistically (z {:.2})", p.z)
        } else if verdict.passed {
            format!("passed (token match {:.3})", verdict.token_match_rate())
        } else {
            verdict.reasons.join("; ")
        };
        Ok(CheckOutcome {
            passed: verdict.passed,
            evidence: verdict.evidence_hash,
            summary,
        })
    }
}
