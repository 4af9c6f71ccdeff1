//! Validator keys: ed25519 p2p identities and BLS12-381 threshold (VRF) shares,
//! dealt deterministically from a seed for devnets.
//!
//! The dealing is trusted (whoever knows the seed knows every share); it is for
//! devnets and tests only. A real network replaces it with a DKG.

use commonware_consensus::simplex::scheme::bls12381_threshold::vrf;
use commonware_consensus::types::Epoch;
use commonware_cryptography::{
    bls12381::{
        dkg::feldman_desmedt::{deal, Output},
        primitives::{group::Share, sharing::Mode, variant::MinSig},
    },
    ed25519, Signer as _,
};
use commonware_glue::dkg::types::{EpochInfo, EpochOutcome};
use commonware_utils::{ordered::Set, sequence::Unit, N3f1, TryCollect};
use rand010::{rngs::StdRng, SeedableRng};

/// Validator identity key type (ed25519).
pub type PublicKey = ed25519::PublicKey;
/// Validator identity private key type (ed25519).
pub type PrivateKey = ed25519::PrivateKey;
/// Signing scheme of consensus: BLS12-381 threshold signatures with a VRF seed per round.
pub type Scheme = vrf::Scheme<PublicKey, MinSig>;

/// Namespace of every consensus signature (domain separation from other uses of the keys).
pub const NAMESPACE: &[u8] = b"_AGORA_CONSENSUS_2026";

/// Why devnet keys could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// No validators, or two derived identities collided.
    #[error("invalid validator set of size {0}")]
    InvalidSet(usize),
    /// The threshold dealing failed.
    #[error("threshold dealing failed: {0}")]
    Deal(String),
    /// The dealt material does not fit the participant set.
    #[error("no signer for validator {0}")]
    NoSigner(usize),
}

/// One validator's secret material.
#[derive(Clone)]
pub struct ValidatorKeys {
    /// The p2p identity (also the proposer account in agora headers).
    pub identity: PrivateKey,
    /// The genesis share, for validators of the genesis committee.
    pub genesis: Option<GenesisSigner>,
}

/// A genesis validator's epoch 0 signing material.
#[derive(Clone)]
pub struct GenesisSigner {
    /// Epoch 0's consensus signer.
    pub scheme: Scheme,
    /// The threshold share it holds (later epochs' shares come from resharing).
    pub share: Share,
}

impl ValidatorKeys {
    /// A validator outside the genesis committee: it follows the chain until
    /// the ledger elects it and a reshare deals it a share.
    pub fn joiner(identity: PrivateKey) -> Self {
        Self {
            identity,
            genesis: None,
        }
    }

    /// The public identity.
    pub fn public_key(&self) -> PublicKey {
        self.identity.public_key()
    }
}

/// A whole devnet validator set.
#[derive(Clone)]
pub struct DevnetKeys {
    /// The participants (sorted, as consensus orders them).
    pub participants: Set<PublicKey>,
    /// Secret material of validator `i`, in dealing order (not sorted order).
    pub validators: Vec<ValidatorKeys>,
    /// The public threshold output of the dealing (group key and its players).
    pub output: Output<MinSig, PublicKey>,
}

impl DevnetKeys {
    /// The description of epoch 0 that genesis carries: the dealt key, with
    /// the same validators as players of the first reshares.
    pub fn genesis_epoch(&self) -> EpochInfo<MinSig, PublicKey, Unit> {
        EpochInfo {
            outcome: EpochOutcome::Success,
            epoch: Epoch::zero(),
            output: self.output.clone(),
            players: self.participants.clone(),
            next_players: self.participants.clone(),
            directory: Unit,
        }
    }
}

/// The identity key of devnet validator `index` under `seed`.
pub fn devnet_identity(seed: u64, index: usize) -> PrivateKey {
    let mix = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(index as u64 + 1);
    PrivateKey::from_seed(mix)
}

/// Deal identities and threshold shares for `n` validators, deterministically from `seed`.
pub fn devnet_keys(seed: u64, n: usize) -> Result<DevnetKeys, KeysError> {
    let identities: Vec<PrivateKey> = (0..n).map(|i| devnet_identity(seed, i)).collect();
    let participants: Set<PublicKey> = identities
        .iter()
        .map(|k| k.public_key())
        .try_collect()
        .map_err(|_| KeysError::InvalidSet(n))?;
    if n == 0 || participants.len() != n {
        return Err(KeysError::InvalidSet(n));
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0xA60A_2026);
    let (output, shares) =
        deal::<MinSig, PublicKey, N3f1>(&mut rng, Mode::NonZeroCounter, participants.clone())
            .map_err(|e| KeysError::Deal(format!("{e:?}")))?;
    let polynomial = output.public().clone();
    let validators = identities
        .into_iter()
        .enumerate()
        .map(|(i, identity)| {
            let share = shares
                .get_value(&identity.public_key())
                .ok_or(KeysError::NoSigner(i))?
                .clone();
            let scheme = Scheme::signer(
                NAMESPACE,
                participants.clone(),
                polynomial.clone(),
                share.clone(),
            )
            .ok_or(KeysError::NoSigner(i))?;
            Ok(ValidatorKeys {
                identity,
                genesis: Some(GenesisSigner { scheme, share }),
            })
        })
        .collect::<Result<Vec<_>, KeysError>>()?;
    Ok(DevnetKeys {
        participants,
        validators,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dealing_is_deterministic_and_distinct() {
        let a = devnet_keys(7, 4).unwrap();
        let b = devnet_keys(7, 4).unwrap();
        assert_eq!(a.participants, b.participants);
        assert_eq!(a.participants.len(), 4);
        let c = devnet_keys(8, 4).unwrap();
        assert_ne!(a.participants, c.participants);
        assert_eq!(
            a.validators[2].public_key(),
            devnet_identity(7, 2).public_key()
        );
        assert!(devnet_keys(7, 0).is_err());
    }
}
