//! [`JobChecker`] that replays jobs with a local llama.cpp engine (agora-verify).

use std::sync::Arc;

use agora_engine::LlamaEngine;
use agora_types::{ModelId, Transcript};
use agora_verify::{check_job, Thresholds};

use crate::ports::{AuditError, CheckOutcome, JobChecker};

/// Replays transcripts of one model with the real engine and calibrated thresholds.
pub struct EngineChecker {
    engine: Arc<LlamaEngine>,
    model: ModelId,
    thresholds: Thresholds,
}

impl EngineChecker {
    /// Check jobs of `model` (the GGUF `engine` loaded) against `thresholds`.
    pub fn new(engine: Arc<LlamaEngine>, model: ModelId, thresholds: Thresholds) -> Self {
        EngineChecker {
            engine,
            model,
            thresholds,
        }
    }
}

impl JobChecker for EngineChecker {
    async fn check(&self, transcript: Transcript) -> Result<CheckOutcome, AuditError> {
        let claimed = transcript.receipt.receipt.model;
        if claimed != self.model {
            return Err(AuditError::Checker(format!(
                "job ran model {claimed}; this validator replays only {}",
                self.model
            )));
        }
        let engine = self.engine.clone();
        let thresholds = self.thresholds;
        let verdict = tokio::task::spawn_blocking(move || {
            check_job(engine.as_ref(), &transcript, &thresholds)
        })
        .await
        .map_err(|e| AuditError::Checker(format!("verifier task: {e}")))?
        .map_err(|e| AuditError::Checker(e.to_string()))?;
        let summary = if verdict.passed {
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
