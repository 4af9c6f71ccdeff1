//! Validators' weights over a model's providers, committed one epoch and
//! revealed the next, so no validator can copy another's fresh weights.

use crate::{codec, AccountId, Hash32, ModelId};

/// Domain of weight commitments.
const WEIGHTS_COMMIT_DOMAIN: &str = "agora 2026 weights commit v1";

/// Most providers one weight vector may name.
pub const MAX_WEIGHTS: usize = 256;

/// The hash a `CommitWeights` carries: binds the validator, the model, the
/// weights (in the order revealed) and a secret salt.
pub fn weights_commitment(
    validator: &AccountId,
    model: &ModelId,
    weights: &[(AccountId, u16)],
    salt: &Hash32,
) -> Hash32 {
    Hash32::digest_in(
        WEIGHTS_COMMIT_DOMAIN,
        &codec::encode(&(validator, model, weights, salt)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keypair;

    #[test]
    fn commitment_binds_every_part() {
        let (v, p) = (
            Keypair::from_seed([1; 32]).account(),
            Keypair::from_seed([2; 32]).account(),
        );
        let m = Hash32::digest(b"m");
        let salt = Hash32::digest(b"salt");
        let base = weights_commitment(&v, &m, &[(p, 7)], &salt);
        assert_ne!(base, weights_commitment(&p, &m, &[(p, 7)], &salt));
        assert_ne!(
            base,
            weights_commitment(&v, &Hash32::digest(b"n"), &[(p, 7)], &salt)
        );
        assert_ne!(base, weights_commitment(&v, &m, &[(p, 8)], &salt));
        assert_ne!(
            base,
            weights_commitment(&v, &m, &[(p, 7)], &Hash32::digest(b"x"))
        );
        assert_eq!(base, weights_commitment(&v, &m, &[(p, 7)], &salt));
    }
}
