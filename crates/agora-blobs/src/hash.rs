//! Hashing a file into its id and pre-order bao outboard on every core.
//!
//! The BLAKE3 tree of a blob splits at the largest power of two of chunk
//! groups below its size, so its two halves hash independently: the halves
//! of big subtrees are hashed in parallel (rayon) and subtrees of at most
//! [`SERIAL_GROUPS`] groups on one thread. The file is memory-mapped, as
//! `b3sum` does, so its bytes are hashed where the page cache holds them
//! instead of being copied out first. The outboard is the same file
//! bao-tree writes (each parent's hash pair at its pre-order index); a test
//! compares the two.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, HasherExt, Mode};

use crate::GROUP_BYTES;

/// Subtrees of at most this many groups (1 MiB) are hashed on one thread,
/// their pairs written to the outboard in one write.
const SERIAL_GROUPS: u64 = 64;

/// Bytes of one parent's hash pair in the outboard.
const PAIR_BYTES: usize = 64;

/// Hash the first `size` bytes of `data` as a blob: returns its id (the
/// BLAKE3 root) and writes its pre-order outboard into `outboard`.
///
/// The file must not shrink while it is hashed: like any memory-mapped
/// reader (`b3sum` included), the process would fault on the lost pages.
/// The store hashes its own copies, which nothing else writes, and files
/// imported in place (models being served, which are not written either).
pub(crate) fn outboard(data: &File, size: u64, outboard: &File) -> io::Result<blake3::Hash> {
    if size == 0 {
        return Ok(blake3::hash(&[]));
    }
    let len = usize::try_from(size).map_err(io::Error::other)?;
    // SAFETY: the map is only read, within the `size` bytes the file had
    // when it was opened; see above for what a file shrinking meanwhile does.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(data)? };
    let groups = size.div_ceil(GROUP_BYTES);
    Job { outboard }.subtree(&map, 0, groups, 0, true)
}

/// One hashing run: where the pairs go.
struct Job<'a> {
    outboard: &'a File,
}

impl Job<'_> {
    /// The hash of `bytes`, the subtree of `groups` groups from group
    /// `first`, whose root pair (if it has one) sits at pre-order index
    /// `pre_index`.
    fn subtree(
        &self,
        bytes: &[u8],
        first: u64,
        groups: u64,
        pre_index: u64,
        is_root: bool,
    ) -> io::Result<blake3::Hash> {
        if groups <= SERIAL_GROUPS {
            let mut pairs = [0; PAIR_BYTES * (SERIAL_GROUPS as usize - 1)];
            let pairs = &mut pairs[..PAIR_BYTES * (groups as usize - 1)];
            let hash = in_memory(bytes, first, pairs, is_root);
            self.outboard
                .write_all_at(pairs, pre_index * PAIR_BYTES as u64)?;
            return Ok(hash);
        }
        let left = left_groups(groups);
        let (left_bytes, right_bytes) = bytes.split_at((left * GROUP_BYTES) as usize);
        let (l, r) = rayon::join(
            || self.subtree(left_bytes, first, left, pre_index + 1, false),
            || {
                let right = groups - left;
                self.subtree(right_bytes, first + left, right, pre_index + left, false)
            },
        );
        let (l, r) = (l?, r?);
        self.outboard
            .write_all_at(&pair(&l, &r), pre_index * PAIR_BYTES as u64)?;
        Ok(parent(&l, &r, is_root))
    }
}

/// The hash of `bytes`, the groups from group `first`, writing the
/// subtree's pairs in pre-order into `pairs` (one per group but one).
fn in_memory(bytes: &[u8], first: u64, pairs: &mut [u8], is_root: bool) -> blake3::Hash {
    let groups = (bytes.len() as u64).div_ceil(GROUP_BYTES).max(1);
    if groups == 1 {
        return leaf(bytes, first, is_root);
    }
    let left = left_groups(groups);
    let (mine, rest) = pairs.split_at_mut(PAIR_BYTES);
    let (left_pairs, right_pairs) = rest.split_at_mut(PAIR_BYTES * (left as usize - 1));
    let (left_bytes, right_bytes) = bytes.split_at((left * GROUP_BYTES) as usize);
    let l = in_memory(left_bytes, first, left_pairs, false);
    let r = in_memory(right_bytes, first + left, right_pairs, false);
    mine.copy_from_slice(&pair(&l, &r));
    parent(&l, &r, is_root)
}

/// Groups in the left half of a subtree of `groups` groups: the largest
/// power of two below it (BLAKE3's split, as every group but the last is full).
fn left_groups(groups: u64) -> u64 {
    debug_assert!(groups > 1);
    1 << (63 - (groups - 1).leading_zeros())
}

/// The chaining value of one group starting at group `first`.
fn leaf(bytes: &[u8], first: u64, is_root: bool) -> blake3::Hash {
    if is_root {
        return blake3::hash(bytes);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(first * GROUP_BYTES);
    hasher.update(bytes);
    blake3::Hash::from(hasher.finalize_non_root())
}

/// A parent's chaining value (or, at the root, the blob's id).
fn parent(l: &blake3::Hash, r: &blake3::Hash, is_root: bool) -> blake3::Hash {
    if is_root {
        merge_subtrees_root(l.as_bytes(), r.as_bytes(), Mode::Hash)
    } else {
        blake3::Hash::from(merge_subtrees_non_root(
            l.as_bytes(),
            r.as_bytes(),
            Mode::Hash,
        ))
    }
}

/// A parent's pair as the outboard stores it: left hash, then right.
fn pair(l: &blake3::Hash, r: &blake3::Hash) -> [u8; PAIR_BYTES] {
    let mut out = [0; PAIR_BYTES];
    out[..32].copy_from_slice(l.as_bytes());
    out[32..].copy_from_slice(r.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bao_tree::io::outboard::PreOrderOutboard;
    use bao_tree::BaoTree;
    use proptest::prelude::*;

    use super::*;
    use crate::BLOCK_SIZE;

    /// bao-tree's own (serial) root and outboard of `bytes`.
    fn reference(bytes: &[u8]) -> (blake3::Hash, Vec<u8>) {
        let tree = BaoTree::new(bytes.len() as u64, BLOCK_SIZE);
        let mut ob = PreOrderOutboard {
            root: blake3::Hash::from_bytes([0; 32]),
            tree,
            data: Vec::new(),
        };
        let root = bao_tree::io::sync::outboard(bytes, tree, &mut ob).unwrap();
        (root, ob.data)
    }

    fn parallel(bytes: &[u8]) -> (blake3::Hash, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let mut data = File::create(dir.path().join("data")).unwrap();
        data.write_all(bytes).unwrap();
        let data = File::open(dir.path().join("data")).unwrap();
        let ob = File::create(dir.path().join("ob")).unwrap();
        let root = outboard(&data, bytes.len() as u64, &ob).unwrap();
        (root, std::fs::read(dir.path().join("ob")).unwrap())
    }

    fn bytes_of(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn matches_bao_tree_at_the_group_edges() {
        let g = GROUP_BYTES as usize;
        let serial = SERIAL_GROUPS as usize * g;
        for len in [
            0,
            1,
            1023,
            1024,
            g - 1,
            g,
            g + 1,
            3 * g,
            serial - 1,
            serial,
            serial + 1,
            2 * serial + 5 * g + 7,
            5 * serial,
        ] {
            let bytes = bytes_of(len, 7);
            let (root, ob) = parallel(&bytes);
            assert_eq!((root, ob.clone()), reference(&bytes), "length {len}");
            assert_eq!(root, blake3::hash(&bytes), "length {len}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn matches_bao_tree(len in 0usize..6_000_000, seed: u8) {
            let bytes = bytes_of(len, seed);
            let (root, ob) = parallel(&bytes);
            let (want_root, want_ob) = reference(&bytes);
            prop_assert_eq!(root, want_root);
            prop_assert_eq!(root, blake3::hash(&bytes));
            prop_assert!(ob == want_ob, "outboards differ at length {}", len);
        }
    }
}
