//! Consensus parameters of a market, with subtensor's defaults.

use crate::error::YumaError;
use crate::fixed::PPM;

/// The knobs of Yuma consensus for one market; ratios are parts per million.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YumaParams {
    /// κ: the stake fraction that must support a weight for it to be the
    /// consensus (subtensor `kappa` = 32767/65535 ≈ 0.5; here exactly 0.5).
    pub kappa_ppm: u32,
    /// α of the bonds EMA, the weight of this tempo's bonds (subtensor
    /// `bonds_moving_average` = 900,000 ppm, so α = 0.1).
    pub bond_alpha_ppm: u32,
    /// β: how far bonds follow clipped rather than raw weights (subtensor
    /// `bonds_penalty` default u16::MAX, i.e. 1.0: bonds use clipped weights).
    pub bonds_penalty_ppm: u32,
    /// Share of each tempo's emission paid to the market owner first
    /// (subtensor `SubnetOwnerCut` 11796/65535 ≈ 18%; here exactly 18%).
    pub owner_cut_ppm: u32,
    /// Share of the emission after the owner cut paid to validators as
    /// dividends; providers get the rest as incentive (subtensor: 50%).
    pub validator_share_ppm: u32,
    /// Validator permits go to at most this many validators, by stake
    /// (subtensor `max_allowed_validators` default 128).
    pub max_validators: usize,
    /// Stake below this cannot hold a permit (subtensor `StakeThreshold`,
    /// default 0).
    pub min_validator_stake: u64,
}

impl Default for YumaParams {
    fn default() -> Self {
        Self {
            kappa_ppm: 500_000,
            bond_alpha_ppm: 100_000,
            bonds_penalty_ppm: PPM,
            owner_cut_ppm: 180_000,
            validator_share_ppm: 500_000,
            max_validators: 128,
            min_validator_stake: 0,
        }
    }
}

impl YumaParams {
    /// Reject ratios above 1.0 so the arithmetic below never underflows.
    pub fn validate(&self) -> Result<(), YumaError> {
        for (name, value) in [
            ("kappa_ppm", self.kappa_ppm),
            ("bond_alpha_ppm", self.bond_alpha_ppm),
            ("bonds_penalty_ppm", self.bonds_penalty_ppm),
            ("owner_cut_ppm", self.owner_cut_ppm),
            ("validator_share_ppm", self.validator_share_ppm),
        ] {
            if value > PPM {
                return Err(YumaError::RatioOutOfRange { name, value });
            }
        }
        Ok(())
    }
}
