//! TOPLOC-style activation commitments (Prime Intellect's TOPLOC, adapted).
//!
//! While generating, a provider commits to the final hidden state (after the
//! output norm) from which each token was sampled: one [`ChunkCommitment`]
//! per [`CHUNK_TOKENS`] generated tokens, plus one for the last
//! ≤ [`CHUNK_TOKENS`] prompt positions. Each commitment is the polynomial
//! over GF(65497) through the chunk's [`TOP_K`] largest-magnitude values
//! (see [`chunk`]): 128 coefficients × 2 bytes per 32 tokens = 8 bytes per
//! generated token. A verifier recomputes the hidden states with one
//! teacher-forced prefill and checks them with [`check_chunk`].
//!
//! Hidden state `i` of a job's output is the one whose logits produced output
//! token `i`: the last prompt position for token 0, and the position of token
//! `i - 1` after that.

pub mod chunk;
pub mod field;
pub mod select;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

pub use chunk::{check_chunk, commit_chunk, ChunkCheck, ChunkCommitment, TOP_K};

/// Generated tokens per chunk commitment (and prompt positions covered).
pub const CHUNK_TOKENS: usize = 32;

const HASH_DOMAIN: &str = "agora 2026 toploc commitments v1";

/// All commitments of one job.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Commitments {
    /// Hidden states of the last ≤ [`CHUNK_TOKENS`] prompt positions.
    pub prompt: ChunkCommitment,
    /// One per [`CHUNK_TOKENS`] output tokens (the last may be shorter).
    pub chunks: Vec<ChunkCommitment>,
}

impl Commitments {
    /// Domain-separated BLAKE3 of the Borsh encoding: what a receipt signs.
    /// Never all-zero in practice, so zero can mean "no commitments".
    pub fn hash(&self) -> [u8; 32] {
        let bytes = borsh::to_vec(self).expect("in-memory borsh encoding cannot fail");
        *blake3::Hasher::new_derive_key(HASH_DOMAIN)
            .update(&bytes)
            .finalize()
            .as_bytes()
    }

    /// Size of the coefficients in bytes (the serialized size less framing).
    pub fn coefficient_bytes(&self) -> usize {
        2 * (self.prompt.coefficients.len()
            + self
                .chunks
                .iter()
                .map(|c| c.coefficients.len())
                .sum::<usize>())
    }
}

/// Builds [`Commitments`] incrementally from one hidden state per token, as
/// a generator produces them.
#[derive(Clone, Debug, Default)]
pub struct CommitmentBuilder {
    prompt: Vec<f32>,
    prompt_rows: usize,
    current: Vec<f32>,
    current_rows: usize,
    chunks: Vec<ChunkCommitment>,
}

impl CommitmentBuilder {
    /// Record the hidden state of prompt position `position` of a prompt of
    /// `prompt_len` tokens; positions before the last [`CHUNK_TOKENS`] are ignored.
    /// Positions must arrive in order.
    pub fn push_prompt(&mut self, position: usize, prompt_len: usize, hidden: &[f32]) {
        if position + CHUNK_TOKENS >= prompt_len {
            self.prompt.extend_from_slice(hidden);
            self.prompt_rows += 1;
        }
    }

    /// Whether prompt position `position` is one the commitment covers.
    pub fn wants_prompt(position: usize, prompt_len: usize) -> bool {
        position + CHUNK_TOKENS >= prompt_len
    }

    /// Record the hidden state that produced the next output token.
    pub fn push_output(&mut self, hidden: &[f32]) {
        self.current.extend_from_slice(hidden);
        self.current_rows += 1;
        if self.current_rows == CHUNK_TOKENS {
            self.chunks.push(commit_chunk(&self.current));
            self.current.clear();
            self.current_rows = 0;
        }
    }

    /// Output hidden states recorded so far.
    pub fn outputs(&self) -> usize {
        self.chunks.len() * CHUNK_TOKENS + self.current_rows
    }

    /// Commit the prompt and any partial last chunk.
    pub fn finish(mut self) -> Commitments {
        if self.current_rows > 0 {
            self.chunks.push(commit_chunk(&self.current));
        }
        Commitments {
            prompt: commit_chunk(&self.prompt),
            chunks: self.chunks,
        }
    }
}

/// Commit to a whole job at once: `prompt_hidden` holds the last ≤ 32
/// prompt positions' hidden states, `output_hidden` one per output token.
pub fn commit_job(prompt_hidden: &[Vec<f32>], output_hidden: &[Vec<f32>]) -> Commitments {
    let mut builder = CommitmentBuilder::default();
    let n = prompt_hidden.len();
    for (i, h) in prompt_hidden.iter().enumerate() {
        builder.push_prompt(i, n, h);
    }
    for h in output_hidden {
        builder.push_output(h);
    }
    builder.finish()
}

/// Why commitments could not be checked at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    /// The number of chunk commitments does not fit the number of output tokens.
    #[error("{chunks} chunk commitments for {outputs} output tokens (expected {expected})")]
    ChunkCount {
        /// Committed chunks.
        chunks: usize,
        /// Output tokens (hidden states) recomputed.
        outputs: usize,
        /// Chunks those tokens need.
        expected: usize,
    },
}

/// Per-chunk results of checking a job: the prompt chunk first.
pub fn check_job(
    commitments: &Commitments,
    prompt_hidden: &[Vec<f32>],
    output_hidden: &[Vec<f32>],
) -> Result<Vec<ChunkCheck>, CheckError> {
    let expected = output_hidden.len().div_ceil(CHUNK_TOKENS);
    if commitments.chunks.len() != expected {
        return Err(CheckError::ChunkCount {
            chunks: commitments.chunks.len(),
            outputs: output_hidden.len(),
            expected,
        });
    }
    let start = prompt_hidden.len().saturating_sub(CHUNK_TOKENS);
    let mut checks = vec![check_chunk(
        &commitments.prompt,
        &prompt_hidden[start..].concat(),
    )];
    for (c, rows) in commitments
        .chunks
        .iter()
        .zip(output_hidden.chunks(CHUNK_TOKENS))
    {
        checks.push(check_chunk(c, &rows.concat()));
    }
    Ok(checks)
}
