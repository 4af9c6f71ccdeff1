//! [`InstantEngine`]: an inference engine that answers at once, for
//! measuring what the HTTP path around an engine costs. Never for serving.

use agora_engine::{EngineError, EngineEvent, GenerateRequest, InferenceEngine, ModelInfo};
use agora_types::FinishReason;
use tokio::sync::mpsc;

/// The text every job "generates".
pub const REPLY: &str = "hi";

/// A benchmarking engine: every job, whatever it asks, reports three prompt
/// tokens, streams [`REPLY`] and finishes with two output tokens and no
/// commitments, without any computation. It lets `agora bench gateway
/// --overhead` time the real provider HTTP path (job parsing, SSE, receipt
/// signing, transcript storage) and the gateway in front of it with the
/// model taken out.
pub struct InstantEngine(ModelInfo);

impl InstantEngine {
    /// The engine, describing itself as a model named `name`.
    pub fn new(name: &str) -> Self {
        InstantEngine(ModelInfo {
            name: name.into(),
            architecture: "none".into(),
            quantization: "none".into(),
            context_length: 2048,
        })
    }
}

impl InferenceEngine for InstantEngine {
    fn model_info(&self) -> &ModelInfo {
        &self.0
    }

    fn generate(&self, _: GenerateRequest) -> Result<mpsc::Receiver<EngineEvent>, EngineError> {
        let (tx, rx) = mpsc::channel(3);
        for event in [
            EngineEvent::Started {
                prompt_tokens: vec![1, 2, 3],
                cached_tokens: 0,
            },
            EngineEvent::Text(REPLY.into()),
            EngineEvent::Finished {
                finish_reason: FinishReason::Stop,
                output_tokens: vec![7, 8],
                commitments: None,
            },
        ] {
            tx.try_send(event)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
        }
        Ok(rx)
    }
}
