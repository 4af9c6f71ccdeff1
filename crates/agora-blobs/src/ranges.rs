//! Byte ranges of a blob, and the chunk ranges bao works in.

use std::ops::Range;

use bao_tree::io::{round_up_to_chunks, round_up_to_chunks_groups};
use bao_tree::{ChunkNum, ChunkRanges};

use crate::BLOCK_SIZE;

/// A set of byte ranges of one blob, in order and disjoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ByteRanges(pub Vec<Range<u64>>);

impl ByteRanges {
    /// Total bytes covered.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|r| r.end - r.start).sum()
    }

    /// Whether no byte is covered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The chunk groups covering `bytes`: what must be sent to prove them.
pub(crate) fn groups_covering(bytes: &Range<u64>) -> ChunkRanges {
    let chunks = round_up_to_chunks(&range_collections::RangeSet2::from(bytes.clone()));
    round_up_to_chunks_groups(chunks, BLOCK_SIZE)
}

/// Every chunk of a blob of `size` bytes.
pub(crate) fn whole(size: u64) -> ChunkRanges {
    ChunkRanges::from(ChunkNum(0)..ChunkNum::chunks(size))
}

/// `ranges` as byte ranges of a blob of `size` bytes.
pub(crate) fn to_bytes(ranges: &ChunkRanges, size: u64) -> ByteRanges {
    let mut out = Vec::new();
    for r in ranges.iter() {
        let (start, end) = match r {
            range_collections::range_set::RangeSetRange::Range(r) => {
                (r.start.to_bytes(), r.end.to_bytes().min(size))
            }
            range_collections::range_set::RangeSetRange::RangeFrom(r) => (r.start.to_bytes(), size),
        };
        if start < end {
            out.push(start..end);
        }
    }
    ByteRanges(out)
}

/// `ranges` as (start chunk, end chunk) pairs, for the index.
pub(crate) fn to_pairs(ranges: &ChunkRanges) -> Vec<(u64, u64)> {
    ranges
        .iter()
        .filter_map(|r| match r {
            range_collections::range_set::RangeSetRange::Range(r) => Some((r.start.0, r.end.0)),
            range_collections::range_set::RangeSetRange::RangeFrom(_) => None,
        })
        .collect()
}

/// Pairs from the index back into chunk ranges.
pub(crate) fn from_pairs(pairs: &[(u64, u64)]) -> ChunkRanges {
    let mut out = ChunkRanges::empty();
    for &(start, end) in pairs {
        out |= ChunkRanges::from(ChunkNum(start)..ChunkNum(end));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_ranges_round_up_to_whole_groups_and_back() {
        // 16 KiB groups of 16 chunks: bytes 1..2 need the first group.
        let groups = groups_covering(&(1..2));
        assert_eq!(to_pairs(&groups), vec![(0, 16)]);
        let groups = groups_covering(&(16 * 1024..16 * 1024 + 1));
        assert_eq!(to_pairs(&groups), vec![(16, 32)]);
        // Converting back clips at the blob's end.
        let clipped = to_bytes(&groups, 20_000);
        assert_eq!(
            (clipped.0.len(), clipped.0[0].start, clipped.0[0].end),
            (1, 16 * 1024, 20_000)
        );
        assert_eq!(from_pairs(&to_pairs(&groups)), groups);
        assert_eq!(to_bytes(&whole(0), 0), ByteRanges::default());
        let two = from_pairs(&[(0, 2), (5, 7)]);
        assert_eq!(to_bytes(&two, 10_000).len(), 4 * 1024);
    }
}
