//! Prompt caching: what each free KV-cache sequence still holds.
//!
//! When a job leaves, its sequence keeps the keys and values of every token
//! it decoded (prompt and output). A later job whose prompt starts with the
//! same tokens (a shared system prompt, the earlier turns of a chat) takes
//! that sequence, drops the cache past the shared prefix and computes only
//! the rest. The reused entries are those the same tokens at the same
//! positions produced, so the job's logits are what a fresh prefill gives, up
//! to the floating-point spread of batching that audits already tolerate.

use llama_cpp_2::token::LlamaToken;

/// The tokens each sequence's KV cache holds, in position order, while the
/// sequence is free.
pub(crate) struct PrefixCache {
    /// Whether finished jobs leave their cache behind at all.
    enabled: bool,
    /// Indexed by sequence id; empty when nothing reusable is held.
    held: Vec<Vec<LlamaToken>>,
}

impl PrefixCache {
    /// A cache over `sequences` ids, all empty; `enabled = false` keeps nothing.
    pub(crate) fn new(sequences: usize, enabled: bool) -> Self {
        PrefixCache {
            enabled,
            held: vec![Vec::new(); sequences],
        }
    }

    /// Among the `free` ids, the one whose cache shares the longest prefix
    /// with `prompt`, and that length; `None` when no cache shares a token.
    pub(crate) fn best(&self, free: &[i32], prompt: &[LlamaToken]) -> Option<(i32, usize)> {
        free.iter()
            .filter_map(|&seq| {
                let held = self.held.get(usize::try_from(seq).ok()?)?;
                let shared = held.iter().zip(prompt).take_while(|(a, b)| a == b).count();
                (shared > 0).then_some((seq, shared))
            })
            .max_by_key(|&(seq, shared)| (shared, -seq))
    }

    /// `seq` was taken or overwritten: nothing of it is reusable any more.
    pub(crate) fn forget(&mut self, seq: i32) {
        if let Some(held) = usize::try_from(seq).ok().and_then(|s| self.held.get_mut(s)) {
            held.clear();
        }
    }

    /// `seq` is free again holding `tokens`; false when nothing is kept
    /// (caching off, or no tokens), so the caller clears the sequence.
    pub(crate) fn keep(&mut self, seq: i32, tokens: Vec<LlamaToken>) -> bool {
        let Some(held) = usize::try_from(seq).ok().and_then(|s| self.held.get_mut(s)) else {
            return false;
        };
        *held = if self.enabled { tokens } else { Vec::new() };
        !held.is_empty()
    }
}

/// How much of a `shared` prefix a prompt of `prompt_len` tokens may reuse
/// while still computing its last `tail` tokens itself: at least the last
/// one (its logits start the output), and with activation commitments the
/// prompt positions they cover.
pub(crate) fn reusable(shared: usize, prompt_len: usize, tail: usize) -> usize {
    shared.min(prompt_len.saturating_sub(tail.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(ids: &[i32]) -> Vec<LlamaToken> {
        ids.iter().map(|&t| LlamaToken(t)).collect()
    }

    #[test]
    fn the_longest_shared_prefix_among_free_sequences_wins() {
        let mut cache = PrefixCache::new(4, true);
        assert!(cache.keep(0, tokens(&[1, 2, 9])));
        assert!(cache.keep(1, tokens(&[1, 2, 3, 4, 5])));
        assert!(cache.keep(2, tokens(&[1, 2, 3, 4, 6])));
        let prompt = tokens(&[1, 2, 3, 4, 5, 7]);
        assert_eq!(cache.best(&[0, 1, 2, 3], &prompt), Some((1, 5)));
        // A sequence that is not free is never offered.
        assert_eq!(cache.best(&[0, 2, 3], &prompt), Some((2, 4)));
        // Ties go to the lowest id, and nothing shared is no match.
        assert!(cache.keep(3, tokens(&[1, 2, 3, 4, 6])));
        assert_eq!(cache.best(&[3, 2], &prompt), Some((2, 4)));
        assert_eq!(cache.best(&[0, 1, 2, 3], &tokens(&[8, 1])), None);
    }

    #[test]
    fn forgotten_or_disabled_caches_offer_nothing() {
        let mut cache = PrefixCache::new(2, true);
        cache.keep(0, tokens(&[1, 2, 3]));
        cache.forget(0);
        assert_eq!(cache.best(&[0, 1], &tokens(&[1, 2, 3])), None);
        assert!(!cache.keep(1, Vec::new()));
        let mut off = PrefixCache::new(2, false);
        assert!(!off.keep(0, tokens(&[1, 2, 3])));
        assert_eq!(off.best(&[0, 1], &tokens(&[1, 2, 3])), None);
        // Ids outside the pool are ignored, never a panic.
        assert!(!cache.keep(7, tokens(&[1])));
        cache.forget(-1);
        assert_eq!(cache.best(&[-1, 9], &tokens(&[1])), None);
    }

    #[test]
    fn reuse_leaves_the_last_tokens_to_compute() {
        assert_eq!(reusable(10, 10, 1), 9);
        assert_eq!(reusable(4, 10, 1), 4);
        assert_eq!(reusable(40, 40, 32), 8);
        assert_eq!(reusable(40, 20, 32), 0);
        assert_eq!(reusable(5, 6, 0), 5);
    }
}
