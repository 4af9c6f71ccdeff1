//! Constrained jobs: the grammar guide a job's [`OutputConstraint`] asks
//! for, over the model's vocabulary as generation streams it.
//!
//! The engine masks with it before sampling and a verifier's replay masks
//! with the same guide, built from the same pieces, so both see one allowed
//! set at every position.
//!
//! [`OutputConstraint`]: agora_types::OutputConstraint

use std::sync::Arc;

use agora_grammar::{Grammar, Guide, TokenKind, Vocab};
use agora_types::SamplingParams;

use crate::text::Piece;
use crate::EngineError;

/// The vocabulary of `n_vocab` tokens whose pieces `piece` gives (as
/// [`crate::LlamaEngine::piece`] does): text tokens, end tokens, and control
/// tokens (no text), which a constraint never allows.
pub fn constraint_vocab(n_vocab: usize, piece: impl Fn(i32) -> Option<Piece>) -> Vocab {
    Vocab::new(n_vocab, |id| match piece(id as i32) {
        Some(Piece::Bytes(bytes)) if !bytes.is_empty() => TokenKind::Text(bytes),
        Some(Piece::End) => TokenKind::End,
        _ => TokenKind::Control,
    })
}

/// The guide for a job with these parameters (`None` when unconstrained);
/// an unusable constraint is an invalid request.
pub fn guide_for(
    params: &SamplingParams,
    vocab: impl FnOnce() -> Arc<Vocab>,
) -> Result<Option<Guide>, EngineError> {
    let Some(constraint) = &params.constraint else {
        return Ok(None);
    };
    let grammar =
        Grammar::compile(constraint).map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
    Ok(Some(Guide::new(&grammar, vocab())))
}
