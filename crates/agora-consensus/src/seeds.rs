//! The consensus engine's per-round threshold VRF seeds, carried into the next
//! block so that the ledger draws audits and committees from randomness that
//! no proposer can steer.
//!
//! The seed of a round is the group's BLS threshold signature over the round
//! (epoch, view): unique, known only once 2f+1 validators have voted in it,
//! i.e. after the round's block is fixed. A block carries its parent round's
//! seed; every validator checks it against the group key before voting, and
//! the header's `randomness` is its hash ([`seed_randomness`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use agora_types::Hash32;
use commonware_codec::Encode;
use commonware_consensus::{
    simplex::{
        scheme::bls12381_threshold::vrf::{self, Seedable},
        types::Activity,
    },
    types::Round,
};
use commonware_cryptography::bls12381::primitives::variant::{MinSig, Variant};
use futures::channel::oneshot;

use crate::block::{ConsensusBlock, Digest};
use crate::keys::{Scheme, NAMESPACE};

const RANDOMNESS_DOMAIN: &str = "agora 2026 consensus randomness v1";
/// Most seeds a [`SeedBook`] keeps (the newest rounds); a proposal only needs
/// its parent's.
const MAX_SEEDS: usize = 1024;

/// A round's threshold VRF seed.
pub type Seed = vrf::Seed<MinSig>;

/// 32 bytes of randomness from a VRF seed: BLAKE3 (derive-key mode) of its encoding.
pub fn randomness_from_seed(seed: &Seed) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(RANDOMNESS_DOMAIN);
    hasher.update(&seed.encode());
    *hasher.finalize().as_bytes()
}

/// The header randomness a block carrying `seed` must have (zero for none).
pub fn seed_randomness(seed: Option<&Seed>) -> Hash32 {
    seed.map_or(Hash32::ZERO, |s| Hash32(randomness_from_seed(s)))
}

/// Checks seeds against the group key (which resharing keeps for every epoch).
#[derive(Clone, Debug)]
pub struct SeedVerifier {
    scheme: Scheme,
}

impl SeedVerifier {
    /// A verifier for the group key `identity`.
    pub fn new(identity: <MinSig as Variant>::Public) -> Self {
        Self {
            scheme: Scheme::certificate_verifier(NAMESPACE, identity),
        }
    }

    /// Whether `seed` is the group's signature over its round.
    pub fn verify(&self, seed: &Seed) -> bool {
        seed.verify(&self.scheme)
    }
}

/// Why a block's parent seed is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    /// A block on a proposed parent carries no seed.
    #[error("the block does not carry its parent round's seed")]
    Missing,
    /// A block on the genesis anchor (which has no round) carries a seed.
    #[error("a block on genesis carries a seed")]
    Unexpected,
    /// The seed is for another round than the parent's.
    #[error("the seed is for round {got:?}, the parent's round is {expected:?}")]
    WrongRound {
        /// The parent's round.
        expected: Round,
        /// The seed's round.
        got: Round,
    },
    /// The seed is not the group's signature over its round.
    #[error("the seed is not the group's signature over its round")]
    BadSignature,
    /// The header's randomness is not the hash of the carried seed.
    #[error("the header's randomness is not its seed's")]
    RandomnessMismatch,
}

/// Check that `block` carries the seed of `parent`'s round, signed by the
/// group, and that its header's randomness is that seed's: the one value a
/// proposer may put there.
pub fn check_parent_seed(
    parent: &ConsensusBlock,
    block: &ConsensusBlock,
    verifier: &SeedVerifier,
) -> Result<(), SeedError> {
    let expected = match parent {
        ConsensusBlock::Genesis { .. } => None,
        ConsensusBlock::Agora { context, .. } => Some(context.round),
    };
    let seed = block.seed();
    match (expected, seed) {
        (None, None) => {}
        (None, Some(_)) => return Err(SeedError::Unexpected),
        (Some(_), None) => return Err(SeedError::Missing),
        (Some(expected), Some(seed)) => {
            if seed.round != expected {
                return Err(SeedError::WrongRound {
                    expected,
                    got: seed.round,
                });
            }
            if !verifier.verify(seed) {
                return Err(SeedError::BadSignature);
            }
        }
    }
    match block.agora_block() {
        Some(b) if b.header.randomness == seed_randomness(seed) => Ok(()),
        _ => Err(SeedError::RandomnessMismatch),
    }
}

#[derive(Default)]
struct Book {
    seeds: BTreeMap<Round, Seed>,
    waiting: BTreeMap<Round, Vec<oneshot::Sender<Seed>>>,
}

/// The seeds this node has seen (from certificates and verified blocks), by
/// round, shared between the consensus reporter and the application.
#[derive(Clone, Default)]
pub struct SeedBook {
    inner: Arc<Mutex<Book>>,
}

impl SeedBook {
    /// Record a seed the caller has verified (or that comes from a verified
    /// certificate), waking whoever waits for its round.
    pub fn insert(&self, seed: Seed) {
        let mut book = self.lock();
        for waiter in book.waiting.remove(&seed.round).unwrap_or_default() {
            let _ = waiter.send(seed.clone());
        }
        book.seeds.insert(seed.round, seed);
        while book.seeds.len() > MAX_SEEDS {
            book.seeds.pop_first();
        }
        if let Some((&oldest, _)) = book.seeds.first_key_value() {
            book.waiting.retain(|round, _| *round >= oldest);
        }
    }

    /// The seed of `round`, if seen.
    pub fn get(&self, round: Round) -> Option<Seed> {
        self.lock().seeds.get(&round).cloned()
    }

    /// The seed of `round` once seen (at once if it already was). The receiver
    /// fails if the book drops the request (the round fell out of its window).
    pub fn wait(&self, round: Round) -> oneshot::Receiver<Seed> {
        let (tx, rx) = oneshot::channel();
        let mut book = self.lock();
        match book.seeds.get(&round) {
            Some(seed) => {
                let _ = tx.send(seed.clone());
            }
            None => book.waiting.entry(round).or_default().push(tx),
        }
        rx
    }

    /// Record the seed a consensus certificate carries (notarizations and
    /// finalizations; the engine reports only verified certificates).
    pub fn observe(&self, activity: &Activity<Scheme, Digest>) {
        match activity {
            Activity::Notarization(n) | Activity::Certification(n) => self.insert(n.seed()),
            Activity::Finalization(f) => self.insert(f.seed()),
            _ => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Book> {
        // A panic while holding the lock leaves a consistent map; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use commonware_consensus::{simplex::scheme::Namespace, types::Epoch, types::View};
    use commonware_cryptography::bls12381::primitives::ops;
    use rand010::{rngs::StdRng, SeedableRng};

    /// A group key and a seed signed by it for `round`.
    pub(crate) fn signed_seed(rng_seed: u64, round: Round) -> (SeedVerifier, Seed) {
        let mut rng = StdRng::seed_from_u64(rng_seed);
        let (private, public) = ops::keypair::<_, MinSig>(&mut rng);
        let signature =
            ops::sign_message::<MinSig>(&private, &Namespace::new(NAMESPACE).seed, &round.encode());
        (SeedVerifier::new(public), Seed::new(round, signature))
    }

    fn round(view: u64) -> Round {
        Round::new(Epoch::new(0), View::new(view))
    }

    #[test]
    fn a_seed_verifies_only_for_its_round_and_group() {
        let (verifier, seed) = signed_seed(1, round(5));
        assert!(verifier.verify(&seed));
        let moved = Seed::new(round(6), seed.signature);
        assert!(!verifier.verify(&moved));
        let (other_group, _) = signed_seed(2, round(5));
        assert!(!other_group.verify(&seed));
    }

    #[test]
    fn randomness_differs_per_seed_and_is_zero_for_none() {
        let (_, a) = signed_seed(1, round(5));
        let (_, b) = signed_seed(1, round(6));
        assert_ne!(seed_randomness(Some(&a)), seed_randomness(Some(&b)));
        assert_ne!(seed_randomness(Some(&a)), Hash32::ZERO);
        assert_eq!(seed_randomness(None), Hash32::ZERO);
    }

    #[test]
    fn waiters_get_the_seed_when_it_arrives_and_old_rounds_fall_out() {
        let book = SeedBook::default();
        let (_, seed) = signed_seed(1, round(3));
        let mut waiting = book.wait(round(3));
        assert_eq!(waiting.try_recv(), Ok(None));
        book.insert(seed.clone());
        assert_eq!(waiting.try_recv(), Ok(Some(seed.clone())));
        assert_eq!(book.wait(round(3)).try_recv(), Ok(Some(seed.clone())));
        assert_eq!(book.get(round(3)), Some(seed));
        let mut stale = book.wait(round(2));
        let (_, filler) = signed_seed(1, round(4));
        for view in 4..(4 + MAX_SEEDS as u64) {
            book.insert(Seed::new(round(view), filler.signature));
        }
        assert_eq!(book.get(round(3)), None, "the oldest round is evicted");
        assert!(
            stale.try_recv().is_err(),
            "a wait for an evicted round fails"
        );
    }
}
