//! An inference engine test double for provider tests that do not need the
//! real model: every job "generates" the same two tokens, whatever it asks.

use agora_engine::{EngineError, EngineEvent, GenerateRequest, InferenceEngine, ModelInfo};
use agora_types::FinishReason;
use tokio::sync::mpsc;

/// Answers every job with prompt tokens `[1, 2, 3]`, the text `hi`, output
/// tokens `[7, 8]` and no commitments.
pub struct TwoTokenEngine(ModelInfo);

impl TwoTokenEngine {
    /// The double, describing itself as a 64-token-context model `scripted`.
    pub fn new() -> Self {
        TwoTokenEngine(ModelInfo {
            name: "scripted".into(),
            architecture: "none".into(),
            quantization: "none".into(),
            context_length: 64,
        })
    }
}

impl Default for TwoTokenEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl InferenceEngine for TwoTokenEngine {
    fn model_info(&self) -> &ModelInfo {
        &self.0
    }

    fn generate(&self, _: GenerateRequest) -> Result<mpsc::Receiver<EngineEvent>, EngineError> {
        let (tx, rx) = mpsc::channel(4);
        for e in [
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
            tx.try_send(e).expect("a fresh channel of 4 has room for 3");
        }
        Ok(rx)
    }
}
