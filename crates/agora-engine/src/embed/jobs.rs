//! Embedding jobs through the job protocol, so a provider serves an
//! embedding model with the same receipts, payments and transcripts as a
//! generative one.

use agora_types::{FinishReason, JobInput};
use tokio::sync::mpsc;

use std::path::Path;

use super::LlamaEmbedder;
use crate::{EngineError, EngineEvent, GenerateRequest, InferenceEngine, ModelInfo};

/// GGUF architectures that embed rather than generate (llama.cpp's encoder-only ones).
pub const EMBEDDING_ARCHITECTURES: &[&str] = &["bert", "nomic-bert", "jina-bert-v2", "modern-bert"];

/// Whether the GGUF at `path` is an embedding model, from its metadata alone:
/// providers serve such a model with [`LlamaEmbedder`], validators audit its
/// jobs by embedding again.
pub fn is_embedding_model(path: &Path) -> Result<bool, EngineError> {
    let (_, info) = crate::Tokenizer::load(path, None)?;
    Ok(EMBEDDING_ARCHITECTURES.contains(&info.architecture.as_str()))
}

/// An embedder serves embedding jobs ([`JobInput::Embed`]) through the same
/// job protocol as generation: `Started` with every input's tokens in order,
/// `Embeddings`, then `Finished` with no output tokens. Generation jobs are
/// refused.
impl InferenceEngine for LlamaEmbedder {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn generate(
        &self,
        request: GenerateRequest,
    ) -> Result<mpsc::Receiver<EngineEvent>, EngineError> {
        let JobInput::Embed { inputs } = request.input else {
            let msg = "this is an embedding model: use /v1/embeddings";
            return Err(EngineError::InvalidRequest(msg.into()));
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            EngineError::Internal("embedding jobs must be started inside a tokio runtime".into())
        })?;
        let (prompt_tokens, reply) = self.embed_with_tokens(&inputs)?;
        let (tx, rx) = mpsc::channel(3);
        runtime.spawn(async move {
            let events = match reply.await {
                Ok(Ok(embedded)) => vec![
                    EngineEvent::Started {
                        prompt_tokens,
                        cached_tokens: 0,
                    },
                    EngineEvent::Embeddings(embedded.data.into_iter().map(|e| e.vector).collect()),
                    EngineEvent::Finished {
                        finish_reason: FinishReason::Stop,
                        output_tokens: Vec::new(),
                        commitments: None,
                    },
                ],
                Ok(Err(e)) => vec![EngineEvent::Failed(e.to_string())],
                Err(_) => vec![EngineEvent::Failed("the embedder stopped".into())],
            };
            for event in events {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}
