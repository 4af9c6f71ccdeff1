//! What the chain hands to one epoch: stakes, revealed weights, old bonds.

/// Inputs of one market's epoch; every per-validator vector is indexed the
/// same way (validator index `i`), providers by their `u16` uid.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct YumaInput {
    /// Number of providers (uids `0..n_providers`), at most 65,536.
    pub n_providers: usize,
    /// Stake of each validator, in base units.
    pub stakes: Vec<u64>,
    /// Whether each validator is active this tempo (revealed weights
    /// recently enough); inactive stake does not count in consensus.
    pub active: Vec<bool>,
    /// Revealed weights: per validator, sparse `(provider uid, weight)`;
    /// any order, no repeated uid, normalised per row by the epoch.
    pub weights: Vec<Vec<(u16, u16)>>,
    /// Bonds from the previous epoch's [`crate::YumaOutput::new_bonds`], per
    /// validator sparse `(provider uid, bond)`; any positive scale, since
    /// they are normalised per provider. Empty means no bonds yet.
    pub prev_bonds: Vec<Vec<(u16, u64)>>,
    /// Tokens to pay out this tempo, split exactly among providers,
    /// validators and the market owner.
    pub emission: u64,
}

impl YumaInput {
    /// A first-epoch input: every validator active, no bonds yet.
    pub fn new(
        n_providers: usize,
        stakes: Vec<u64>,
        weights: Vec<Vec<(u16, u16)>>,
        emission: u64,
    ) -> Self {
        let active = vec![true; stakes.len()];
        Self {
            n_providers,
            stakes,
            active,
            weights,
            prev_bonds: Vec::new(),
            emission,
        }
    }

    /// Number of validators (rows).
    pub fn n_validators(&self) -> usize {
        self.stakes.len()
    }
}
