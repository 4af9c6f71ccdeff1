//! KV-cache sequence ids kept compact.
//!
//! With one KV stream per sequence (`kv_unified = false`), llama.cpp splits a
//! batch into micro-batches of *consecutive* sequence ids, in batch order
//! (`split_equal(.., sequential = true)`): a step over sequences {0, 1, 3}
//! costs two graph computes, one over {3, 0, 1} two as well. So jobs take the
//! lowest free id, the batch is built in id order, and when a job leaves a
//! hole that no new job fills, the highest-id job's KV stream is copied into
//! it. The copy is of the whole stream, cells and head included, so the job
//! continues exactly as it would have in place: its tokens do not change.

/// The sequence ids not held by a job.
pub(crate) struct FreeSeqs {
    /// Free ids, highest first, so the lowest is popped.
    ids: Vec<i32>,
}

impl FreeSeqs {
    /// All of `0..n` free.
    pub(crate) fn new(n: usize) -> Self {
        FreeSeqs {
            ids: (0..n as i32).rev().collect(),
        }
    }

    /// The lowest free id, if any.
    pub(crate) fn lowest(&self) -> Option<i32> {
        self.ids.last().copied()
    }

    /// The free ids, highest first.
    pub(crate) fn ids(&self) -> &[i32] {
        &self.ids
    }

    /// Take `seq` if it is free (prompt caching picks a particular one).
    pub(crate) fn take_id(&mut self, seq: i32) -> bool {
        match self.ids.iter().position(|&id| id == seq) {
            Some(at) => {
                self.ids.remove(at);
                true
            }
            None => false,
        }
    }

    /// Take the lowest free id.
    pub(crate) fn take(&mut self) -> Option<i32> {
        self.ids.pop()
    }

    /// Give `seq` back.
    pub(crate) fn give(&mut self, seq: i32) {
        let at = self.ids.partition_point(|&id| id > seq);
        self.ids.insert(at, seq);
    }
}

/// One move that closes a hole: the job on `from` goes to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Move {
    /// The id the job leaves (the highest one held).
    pub from: i32,
    /// The hole it fills (the lowest free one).
    pub to: i32,
}

/// The next move that makes the held ids (`held`) more compact, taking the
/// hole from `free` and giving the vacated id back; `None` once the held ids
/// are `0..held.len()`.
pub(crate) fn next_move(held: &[i32], free: &mut FreeSeqs) -> Option<Move> {
    let from = held.iter().copied().max()?;
    let to = free.lowest().filter(|&to| to < from)?;
    free.take();
    free.give(from);
    Some(Move { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_free_id_is_taken_first() {
        let mut free = FreeSeqs::new(4);
        assert_eq!((free.take(), free.take()), (Some(0), Some(1)));
        free.give(0);
        assert_eq!(
            (free.take(), free.take(), free.take()),
            (Some(0), Some(2), Some(3))
        );
        assert_eq!(free.take(), None);
        free.give(2);
        free.give(1);
        assert!(free.take_id(2) && !free.take_id(2));
        assert_eq!(free.ids(), [1]);
    }

    #[test]
    fn moves_fill_holes_from_the_top_until_ids_are_contiguous() {
        let mut free = FreeSeqs::new(0);
        free.give(0);
        free.give(2);
        free.give(6);
        free.give(7);
        let mut held = vec![1, 3, 4, 5];
        let mut moves = Vec::new();
        while let Some(m) = next_move(&held, &mut free) {
            *held.iter_mut().find(|s| **s == m.from).unwrap() = m.to;
            moves.push((m.from, m.to));
        }
        assert_eq!(moves, [(5, 0), (4, 2)]);
        held.sort_unstable();
        assert_eq!(held, [0, 1, 2, 3]);
        assert_eq!(free.take(), Some(4));
    }

    #[test]
    fn contiguous_ids_need_no_move() {
        let mut free = FreeSeqs::new(0);
        free.give(3);
        assert_eq!(next_move(&[1, 2, 0], &mut free), None);
        assert_eq!(next_move(&[], &mut free), None);
    }
}
