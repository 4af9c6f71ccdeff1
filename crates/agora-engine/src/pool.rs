//! The worker's pool of KV-cache sequences: taking one for a job (the free
//! one holding the job's longest reusable prompt prefix, see
//! [`crate::prefix`]) and giving it back with what it still holds.

use agora_toploc::CHUNK_TOKENS;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::token::LlamaToken;

use crate::prefix::{reusable, PrefixCache};
use crate::seqs::FreeSeqs;

/// The worker's KV-cache sequences: the context, which ids are free, and
/// what each free one still holds.
pub(crate) struct Held<'a, 'ctx> {
    /// The llama.cpp context whose KV cache holds the sequences.
    pub ctx: &'a mut LlamaContext<'ctx>,
    /// Sequence ids no job holds.
    pub free: &'a mut FreeSeqs,
    /// What each free sequence still holds.
    pub cache: &'a mut PrefixCache,
}

impl Held<'_, '_> {
    /// Take a free sequence for `prompt`: the one holding its longest
    /// reusable prefix, else the lowest; returns it and how many leading
    /// prompt tokens it still holds (the rest of its cache is dropped).
    pub(crate) fn take(
        &mut self,
        prompt: &[LlamaToken],
        commitments: bool,
    ) -> Option<(i32, usize)> {
        let tail = if commitments { CHUNK_TOKENS } else { 1 };
        let (seq, shared) = match self.cache.best(self.free.ids(), prompt) {
            Some((seq, shared)) => (seq, reusable(shared, prompt.len(), tail)),
            None => (self.free.lowest()?, 0),
        };
        self.free.take_id(seq);
        self.cache.forget(seq);
        let kept = shared > 0
            && self
                .ctx
                .clear_kv_cache_seq(Some(seq as u32), Some(shared as u32), None)
                .unwrap_or(false);
        if kept {
            return Some((seq, shared));
        }
        let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        Some((seq, 0))
    }

    /// Return `seq` to the pool, its cache holding `tokens` (empty: cleared).
    pub(crate) fn release(&mut self, seq: i32, tokens: Vec<LlamaToken>) {
        if !self.cache.keep(seq, tokens) {
            let _ = self.ctx.clear_kv_cache_seq(Some(seq as u32), None, None);
        }
        self.free.give(seq);
    }
}
