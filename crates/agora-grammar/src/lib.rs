//! Constrained decoding for agora: which tokens keep a job's output valid
//! JSON, or valid under a JSON Schema (OpenAI's `response_format` and forced
//! tool calls).
//!
//! The engine masks disallowed tokens (logit −∞) before its seeded sampling,
//! and an auditor's replay applies the very same mask, so constrained jobs
//! stay replayable token for token. Everything here is pure and
//! deterministic: a [`Grammar`] is compiled from the receipt's
//! [`OutputConstraint`], a [`Guide`] follows one output token by token.

mod json;
mod matcher;
mod schema;
mod vocab;

use std::sync::Arc;

pub use agora_types::OutputConstraint;
pub use json::Json;
pub use matcher::Matcher;
pub use schema::MAX_NODES;
pub use vocab::{TokenKind, Vocab};

/// Why a constraint cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrammarError {
    /// The schema is not valid JSON or not a valid schema.
    #[error("invalid JSON schema: {0}")]
    Invalid(String),
    /// The schema uses something constrained decoding does not enforce.
    #[error("unsupported JSON schema: {0}")]
    Unsupported(String),
    /// The schema compiles to more nodes than allowed.
    #[error("JSON schema too large: more than {0} nodes")]
    TooLarge(usize),
}

/// A compiled constraint, shared by every job that uses it.
#[derive(Clone, Debug)]
pub struct Grammar {
    nodes: Arc<schema::Nodes>,
}

impl Grammar {
    /// Compile a job's constraint.
    pub fn compile(constraint: &OutputConstraint) -> Result<Grammar, GrammarError> {
        let nodes = match constraint {
            OutputConstraint::JsonObject => schema::any_object(),
            OutputConstraint::JsonSchema { schema } => {
                let json = Json::parse(schema).map_err(|e| GrammarError::Invalid(e.to_string()))?;
                schema::compile(&json)?
            }
        };
        Ok(Grammar {
            nodes: Arc::new(nodes),
        })
    }

    /// A matcher at the start of the output.
    pub fn matcher(&self) -> Matcher {
        Matcher::new(self.nodes.clone())
    }
}

/// Follows one constrained output: masks logits before each token and
/// advances on the token chosen.
#[derive(Clone, Debug)]
pub struct Guide {
    vocab: Arc<Vocab>,
    matcher: Matcher,
}

/// A token the constraint does not allow at this point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("token {0} breaks the output constraint")]
pub struct Disallowed(pub u32);

impl Guide {
    /// A guide at the start of an output of `grammar`, over `vocab`.
    pub fn new(grammar: &Grammar, vocab: Arc<Vocab>) -> Guide {
        Guide {
            vocab,
            matcher: grammar.matcher(),
        }
    }

    /// Set every disallowed token's logit to −∞ (ids past the vocabulary too).
    pub fn mask(&self, logits: &mut [f32]) {
        let allowed = self.vocab.allowed(&self.matcher);
        for (i, l) in logits.iter_mut().enumerate() {
            if !allowed.get(i).copied().unwrap_or(false) {
                *l = f32::NEG_INFINITY;
            }
        }
    }

    /// Take token `id` as the next output token.
    pub fn advance(&mut self, id: u32) -> Result<(), Disallowed> {
        if self.vocab.is_end(id) && self.matcher.can_end() {
            return Ok(());
        }
        let next = self
            .vocab
            .text(id)
            .and_then(|text| self.matcher.after(text))
            .ok_or(Disallowed(id))?;
        self.matcher = next;
        Ok(())
    }

    /// Whether the output so far is a whole value.
    pub fn is_complete(&self) -> bool {
        self.matcher.can_end()
    }
}
