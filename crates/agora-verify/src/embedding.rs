//! [`check_embedding_job`]: audit an embedding job by embedding its inputs
//! again and comparing vectors. Embeddings involve no sampling, so the
//! check is direct: the receipt must commit to the transcript's inputs,
//! tokens and vectors, and each vector must point where the model's own
//! does (cosine similarity at least [`MIN_EMBEDDING_COSINE`]).

use agora_engine::{cosine, EngineError, LlamaEmbedder};
use agora_types::{hash_embeddings, JobInput, Transcript};

use crate::check::{finish, Verdict, VerifyError};
use crate::replay::TokenStats;

/// Least cosine similarity between a claimed vector and the recomputed one.
/// Batching alone moves vectors by under 1e-6 (`real_model_embed`); another
/// model, a coarser quantization or made-up numbers fall far below.
pub const MIN_EMBEDDING_COSINE: f64 = 0.9999;

/// Audit an embedding `transcript` with `embedder` (which must run the
/// receipt's model).
pub fn check_embedding_job(
    embedder: &LlamaEmbedder,
    transcript: &Transcript,
) -> Result<Verdict, VerifyError> {
    let t = transcript;
    let r = &t.receipt.receipt;
    let mut reasons = Vec::new();
    let JobInput::Embed { inputs } = &t.input else {
        reasons.push("not an embedding job".into());
        return Ok(finish(reasons, TokenStats::default(), None, None, t));
    };
    reasons.extend(crate::check::signed_for_prompt(t));
    if hash_embeddings(&t.embeddings) != r.output_hash {
        reasons.push("vectors do not match the receipt's output hash".into());
    }
    if r.usage.prompt_tokens as usize != t.prompt_tokens.len()
        || r.usage.completion_tokens != 0
        || !t.output_tokens.is_empty()
    {
        reasons.push("receipt usage does not match the token counts".into());
    }
    let (tokens, reply) = match embedder.embed_with_tokens(inputs) {
        Ok(queued) => queued,
        Err(EngineError::InvalidRequest(m)) => {
            reasons.push(format!("the input is invalid: {m}"));
            return Ok(finish(reasons, TokenStats::default(), None, None, t));
        }
        Err(e) => return Err(e.into()),
    };
    if tokens != t.prompt_tokens {
        reasons.push("the inputs do not tokenize to the claimed prompt tokens".into());
    }
    if t.embeddings.len() != inputs.len() {
        reasons.push(format!(
            "{} vectors for {} inputs",
            t.embeddings.len(),
            inputs.len()
        ));
        return Ok(finish(reasons, TokenStats::default(), None, None, t));
    }
    let recomputed = reply.blocking_recv().map_err(|_| EngineError::Stopped)??;
    for (i, (claimed, ours)) in t.embeddings.iter().zip(&recomputed.data).enumerate() {
        // NaN (a zero or non-finite vector) counts as no similarity.
        let similarity = cosine(claimed, &ours.vector)
            .map(f64::from)
            .filter(|c| !c.is_nan())
            .unwrap_or(0.0);
        if similarity < MIN_EMBEDDING_COSINE {
            reasons.push(format!(
                "vector {i} has cosine similarity {similarity:.6} with the model's (at least {MIN_EMBEDDING_COSINE} required)"
            ));
        }
    }
    Ok(finish(reasons, TokenStats::default(), None, None, t))
}
