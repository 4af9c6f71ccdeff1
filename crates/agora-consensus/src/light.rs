//! Light-client checks: with only the validator set's public identity (one
//! BLS12-381 group key), verify that a block was finalized, recover the
//! block's randomness, and check a state proof against the finalized root,
//! without trusting the RPC node that supplied them.

use agora_ledger::{account_key, Account};
use agora_types::merkle::{leaf_hash, MerkleProof};
use agora_types::{codec, AccountId, BlockHeader, Hash32};
use bytes::Bytes;
use commonware_codec::{Decode, Encode};
use commonware_consensus::simplex::{
    scheme::bls12381_threshold::vrf::Seedable, types::Finalization,
};
use commonware_cryptography::bls12381::primitives::variant::{MinSig, Variant};
use commonware_parallel::Sequential;
use rand010::{rngs::StdRng, SeedableRng};

use crate::block::{to_digest, Digest};
use crate::keys::{Scheme, NAMESPACE};
use crate::seeds::randomness_from_seed;

/// Why a light-client check failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LightError {
    /// The identity bytes are not a BLS12-381 group public key.
    #[error("invalid validator-set identity")]
    Identity,
    /// The certificate bytes do not decode.
    #[error("certificate does not decode: {0}")]
    Malformed(String),
    /// The certificate finalizes another block.
    #[error("certificate finalizes {certified}, not {claimed}")]
    OtherBlock {
        /// Block id the certificate signs.
        certified: Hash32,
        /// Block id it was offered for.
        claimed: Hash32,
    },
    /// The threshold signature (or its VRF seed) does not verify.
    #[error("certificate signature does not verify")]
    BadSignature,
    /// The state proof does not lead to the header's state root.
    #[error("state proof does not match the finalized state root")]
    BadProof,
}

/// Verifies finalization certificates of one validator set.
pub struct FinalityVerifier {
    scheme: Scheme,
}

impl FinalityVerifier {
    /// A verifier trusting the validator set whose group public key is `identity`.
    pub fn new(identity: &[u8]) -> Result<Self, LightError> {
        let public = <MinSig as Variant>::Public::decode_cfg(Bytes::copy_from_slice(identity), &())
            .map_err(|_| LightError::Identity)?;
        Ok(Self {
            scheme: Scheme::certificate_verifier(NAMESPACE, public),
        })
    }

    /// Check that `certificate` finalizes block `block_id`; returns the block's
    /// randomness (the certified VRF seed, hashed).
    pub fn verify(&self, certificate: &[u8], block_id: Hash32) -> Result<[u8; 32], LightError> {
        let finalization =
            Finalization::<Scheme, Digest>::decode_cfg(Bytes::copy_from_slice(certificate), &())
                .map_err(|e| LightError::Malformed(e.to_string()))?;
        let certified = crate::block::to_hash(&finalization.proposal.payload);
        if finalization.proposal.payload != to_digest(block_id) {
            return Err(LightError::OtherBlock {
                certified,
                claimed: block_id,
            });
        }
        // The rng only randomises batch verification; any seed is sound.
        let mut rng = StdRng::seed_from_u64(0);
        if !finalization.verify(&mut rng, &self.scheme, &Sequential) {
            return Err(LightError::BadSignature);
        }
        let seed = finalization.seed();
        if !seed.verify(&self.scheme) {
            return Err(LightError::BadSignature);
        }
        Ok(randomness_from_seed(&seed))
    }

    /// Check a finalized header and an account proof against its state root:
    /// the account `id` holds `account` in the state after that block.
    pub fn verify_account(
        &self,
        certificate: &[u8],
        header: &BlockHeader,
        id: &AccountId,
        account: &Account,
        proof: &MerkleProof,
    ) -> Result<(), LightError> {
        let block_id = header.id();
        self.verify(certificate, block_id)?;
        let leaf = leaf_hash(&account_key(id), &codec::encode(account));
        if !proof.verify(leaf, header.state_root) {
            return Err(LightError::BadProof);
        }
        Ok(())
    }
}

/// The public identity (group key) of the devnet validator set dealt from
/// `seed` for `n` validators: what a light client trusts.
pub fn devnet_identity(seed: u64, n: usize) -> Result<Vec<u8>, crate::keys::KeysError> {
    let keys = crate::keys::devnet_keys(seed, n)?;
    Ok(keys.output.public().public().encode().to_vec())
}
