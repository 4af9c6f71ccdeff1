//! A binary Merkle tree over BLAKE3 with domain-separated leaf and node
//! hashes: the state root commits to every state entry, and a short path of
//! sibling hashes proves one entry against a finalized root, so a light
//! client need not trust the RPC node that answered.

use serde::{Deserialize, Serialize};

use crate::Hash32;

const LEAF_DOMAIN: &str = "agora 2026 merkle leaf v1";
const NODE_DOMAIN: &str = "agora 2026 merkle node v1";
const EMPTY_DOMAIN: &str = "agora 2026 merkle empty v1";

/// Hash of one entry: its key and value bytes, length-prefixed so no two
/// (key, value) splits of the same bytes collide.
pub fn leaf_hash(key: &[u8], value: &[u8]) -> Hash32 {
    let mut h = blake3::Hasher::new_derive_key(LEAF_DOMAIN);
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(value);
    Hash32(*h.finalize().as_bytes())
}

fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = blake3::Hasher::new_derive_key(NODE_DOMAIN);
    h.update(&left.0);
    h.update(&right.0);
    Hash32(*h.finalize().as_bytes())
}

/// One level up: pairs are hashed; an odd last node is carried up unchanged.
fn parent_level(level: &[Hash32]) -> Vec<Hash32> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node_hash(l, r),
            [single] => *single,
            _ => unreachable!("chunks(2) yields one or two items"),
        })
        .collect()
}

/// The root over `leaves` in order (a fixed hash when there are none).
pub fn root(leaves: &[Hash32]) -> Hash32 {
    if leaves.is_empty() {
        return Hash32(
            *blake3::Hasher::new_derive_key(EMPTY_DOMAIN)
                .finalize()
                .as_bytes(),
        );
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = parent_level(&level);
    }
    level[0]
}

/// The root of a list that only grows, kept without the list: the roots of
/// its perfect subtrees (peaks), largest first, as in a binary counter.
/// [`root`] pairs from the left and carries an odd node up, so its tree
/// over `n` leaves is these peaks joined from the right: appending is
/// O(1) amortised and the root O(log n), where [`root`] is O(n).
#[derive(Clone, Debug, Default, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Frontier {
    count: u64,
    peaks: Vec<Hash32>,
}

impl Frontier {
    /// The frontier of `leaves`.
    pub fn of(leaves: &[Hash32]) -> Self {
        let mut f = Frontier::default();
        leaves.iter().for_each(|l| f.push(*l));
        f
    }

    /// Append one leaf.
    pub fn push(&mut self, leaf: Hash32) {
        let mut node = leaf;
        let mut n = self.count;
        while n & 1 == 1 {
            let Some(left) = self.peaks.pop() else { break };
            node = node_hash(&left, &node);
            n >>= 1;
        }
        self.peaks.push(node);
        self.count += 1;
    }

    /// Leaves appended so far.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether no leaf was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// What [`root`] gives for the leaves appended so far.
    pub fn root(&self) -> Hash32 {
        self.peaks
            .iter()
            .rev()
            .copied()
            .reduce(|right, left| node_hash(&left, &right))
            .unwrap_or_else(|| root(&[]))
    }
}

/// Proof that one leaf sits at `index` among `leaf_count` leaves under a root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Position of the leaf.
    pub index: u64,
    /// Number of leaves in the tree.
    pub leaf_count: u64,
    /// Sibling hashes from the leaf's level upwards (levels where the node
    /// has no sibling contribute none).
    pub siblings: Vec<Hash32>,
}

impl MerkleProof {
    /// The proof for leaf `index`, or `None` if there is no such leaf.
    pub fn new(leaves: &[Hash32], index: usize) -> Option<Self> {
        if index >= leaves.len() {
            return None;
        }
        let mut siblings = Vec::new();
        let mut level = leaves.to_vec();
        let mut i = index;
        while level.len() > 1 {
            let sibling = i ^ 1;
            if sibling < level.len() {
                siblings.push(level[sibling]);
            }
            level = parent_level(&level);
            i /= 2;
        }
        Some(MerkleProof {
            index: index as u64,
            leaf_count: leaves.len() as u64,
            siblings,
        })
    }

    /// Whether `leaf` at this proof's position hashes up to `root`.
    pub fn verify(&self, leaf: Hash32, root: Hash32) -> bool {
        if self.index >= self.leaf_count {
            return false;
        }
        let (mut i, mut width) = (self.index, self.leaf_count);
        let mut acc = leaf;
        let mut siblings = self.siblings.iter();
        while width > 1 {
            let sibling = i ^ 1;
            if sibling < width {
                let Some(s) = siblings.next() else {
                    return false;
                };
                acc = if i % 2 == 0 {
                    node_hash(&acc, s)
                } else {
                    node_hash(s, &acc)
                };
            }
            i /= 2;
            width = width.div_ceil(2);
        }
        siblings.next().is_none() && acc == root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash32> {
        (0..n)
            .map(|i| leaf_hash(b"k", &(i as u64).to_le_bytes()))
            .collect()
    }

    #[test]
    fn the_frontier_root_is_the_root_of_every_prefix() {
        let ls = leaves(300);
        let mut f = Frontier::default();
        assert_eq!(f.root(), root(&[]));
        for (n, leaf) in ls.iter().enumerate() {
            f.push(*leaf);
            assert_eq!(f.len(), n as u64 + 1);
            assert_eq!(f.root(), root(&ls[..=n]), "{} leaves", n + 1);
        }
        assert_eq!(Frontier::of(&ls[..77]).root(), root(&ls[..77]));
        // At most one peak per bit of the count.
        assert_eq!(f.peaks.len(), 300u32.count_ones() as usize);
    }

    proptest! {
        /// Every leaf of every tree size proves against the root; nothing else does.
        #[test]
        fn proofs_verify_and_forgeries_fail(n in 1usize..70, pick in any::<prop::sample::Index>()) {
            let ls = leaves(n);
            let r = root(&ls);
            let i = pick.index(n);
            let proof = MerkleProof::new(&ls, i).unwrap();
            prop_assert!(proof.verify(ls[i], r));
            // Another leaf, another position, another root, or a cut path all fail.
            prop_assert!(!proof.verify(leaf_hash(b"k", b"forged"), r));
            if n > 1 {
                let mut moved = proof.clone();
                moved.index = ((i + 1) % n) as u64;
                prop_assert!(!moved.verify(ls[i], r));
                let mut cut = proof.clone();
                cut.siblings.pop();
                prop_assert!(!cut.verify(ls[i], r));
            }
            prop_assert!(!proof.verify(ls[i], leaf_hash(b"other", b"root")));
        }
    }

    #[test]
    fn root_depends_on_order_and_content() {
        let ls = leaves(5);
        let mut swapped = ls.clone();
        swapped.swap(1, 2);
        assert_ne!(root(&ls), root(&swapped));
        assert_ne!(root(&ls), root(&ls[..4]));
        assert_ne!(root(&[]), root(&ls[..1]));
        assert!(MerkleProof::new(&ls, 5).is_none());
        assert_ne!(leaf_hash(b"ab", b"c"), leaf_hash(b"a", b"bc"));
    }
}
