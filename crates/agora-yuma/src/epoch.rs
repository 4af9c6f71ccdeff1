//! The epoch itself: from stakes and weights to consensus, bonds and
//! emission.

use crate::bonds::{ema_bonds, BondParams};
use crate::consensus::weighted_median_cols;
use crate::emission::{split, Shares};
use crate::error::YumaError;
use crate::fixed::ratio_q32;
use crate::input::YumaInput;
use crate::params::YumaParams;
use std::borrow::Cow;

use crate::sparse::{checked_row, normalized_weights};

/// Highest provider count a `u16` uid can address.
const MAX_PROVIDERS: usize = 1 << 16;

/// Highest validator count: the median packs a validator index in 31 bits.
const MAX_VALIDATORS: usize = 1 << 31;

/// Everything one epoch decides; proportions are Q32.32 ([`crate::fixed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YumaOutput {
    /// Per validator: holds a validator permit (top `max_validators` by
    /// stake, at least `min_validator_stake`); only permitted weights count.
    pub validator_permit: Vec<bool>,
    /// Per validator: active, permitted stake normalised to sum 1.0.
    pub active_stake: Vec<u64>,
    /// Per provider: the stake-weighted median weight (κ) weights are
    /// clipped to.
    pub consensus: Vec<u64>,
    /// Per provider: share of clipped, stake-weighted weight (sums to 1.0
    /// when anyone has incentive).
    pub incentive: Vec<u64>,
    /// Per validator: how much of its weight survived clipping (1.0 = all).
    pub validator_trust: Vec<u64>,
    /// Per validator: share of bonds × incentive (sums to 1.0 when anyone
    /// has dividends).
    pub dividends: Vec<u64>,
    /// Per validator: sparse `(provider uid, bond)`, each provider column
    /// normalised to 1.0; feed back as the next epoch's `prev_bonds`.
    pub new_bonds: Vec<Vec<(u16, u64)>>,
    /// Per provider: tokens earned this tempo.
    pub provider_emission: Vec<u64>,
    /// Per validator: tokens earned this tempo.
    pub validator_emission: Vec<u64>,
    /// Tokens to the market owner (its cut plus anything unpayable).
    pub owner_emission: u64,
}

/// Run Yuma consensus for one tempo of one market.
///
/// Errors (never panics) when a per-validator vector has the wrong length,
/// a uid is out of range or repeated within a row, there are more than
/// 65,536 providers or 2^31 validators, or a ratio parameter exceeds 1.0.
pub fn epoch(params: &YumaParams, input: &YumaInput) -> Result<YumaOutput, YumaError> {
    params.validate()?;
    check_shapes(input)?;
    let n_v = input.n_validators();
    let n_p = input.n_providers;

    // Stake below the threshold cannot validate; permits go to the top k.
    let filtered: Vec<u64> = input
        .stakes
        .iter()
        .map(|&s| if s < params.min_validator_stake { 0 } else { s })
        .collect();
    let permit = top_k_nonzero(&filtered, params.max_validators);
    let permitted_stake: Vec<u64> = (0..n_v)
        .map(|i| if permit[i] { filtered[i] } else { 0 })
        .collect();
    let active_raw: Vec<u64> = (0..n_v)
        .map(|i| {
            if input.active[i] {
                permitted_stake[i]
            } else {
                0
            }
        })
        .collect();
    let active_total: u128 = active_raw.iter().map(|&s| s as u128).sum();
    let active_q: Vec<u64> = active_raw
        .iter()
        .map(|&s| ratio_q32(s as u128, active_total))
        .collect();

    // Weights of permitted validators, each row normalised to 1.0.
    let weights = normalized_weights(&input.weights, &permit, n_p)?;

    // Consensus, clipping, validator trust, ranks.
    let consensus = weighted_median_cols(&weights, &active_raw, n_p, params.kappa_ppm);
    let mut validator_trust = vec![0u64; n_v];
    let mut ranks = vec![0u128; n_p];
    for i in 0..n_v {
        let (cols, vals) = weights.row(i);
        let s = active_q[i] as u128;
        for (&c, &w) in cols.iter().zip(vals) {
            let cw = w.min(consensus[c as usize]);
            validator_trust[i] += cw;
            ranks[c as usize] += cw as u128 * s;
        }
    }
    let incentive = normalize(&ranks);

    // Bonds (only permitted validators keep any) and dividends.
    let mut prev: Vec<Cow<'_, [(u16, u64)]>> = Vec::with_capacity(input.prev_bonds.len());
    for (i, row) in input.prev_bonds.iter().enumerate() {
        let row = checked_row("prev_bonds", i, row, n_p)?;
        prev.push(if permit[i] { row } else { Cow::Borrowed(&[]) });
    }
    let bond_params = BondParams {
        alpha_ppm: params.bond_alpha_ppm,
        penalty_ppm: params.bonds_penalty_ppm,
    };
    let bonds = ema_bonds(&weights, &consensus, &active_q, &prev, n_p, &bond_params);
    let raw_dividends: Vec<u128> = (0..n_v)
        .map(|i| {
            bonds[i]
                .iter()
                .map(|&(c, b)| b as u128 * incentive[c as usize] as u128)
                .sum()
        })
        .collect();
    let dividends = normalize(&raw_dividends);

    let s = split(
        input.emission,
        params.owner_cut_ppm,
        params.validator_share_ppm,
        &Shares {
            incentive: &incentive,
            validator_fallbacks: [&dividends, &active_raw, &permitted_stake],
        },
    );

    Ok(YumaOutput {
        validator_permit: permit,
        active_stake: active_q,
        consensus,
        incentive,
        validator_trust,
        dividends,
        new_bonds: bonds,
        provider_emission: s.provider,
        validator_emission: s.validator,
        owner_emission: s.owner,
    })
}

/// Refuse inputs whose per-validator vectors disagree in length.
fn check_shapes(input: &YumaInput) -> Result<(), YumaError> {
    let n = input.n_validators();
    if n > MAX_VALIDATORS {
        return Err(YumaError::TooManyValidators(n));
    }
    if input.n_providers > MAX_PROVIDERS {
        return Err(YumaError::TooManyProviders(input.n_providers));
    }
    let mut lens = vec![
        ("active", input.active.len()),
        ("weights", input.weights.len()),
    ];
    if !input.prev_bonds.is_empty() {
        lens.push(("prev_bonds", input.prev_bonds.len()));
    }
    for (what, got) in lens {
        if got != n {
            return Err(YumaError::LengthMismatch {
                what,
                expected: n,
                got,
            });
        }
    }
    Ok(())
}

/// Permits for the `k` largest non-zero stakes; equal stakes are ranked by
/// lower index first.
fn top_k_nonzero(stake: &[u64], k: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..stake.len()).filter(|&i| stake[i] > 0).collect();
    order.sort_unstable_by(|&a, &b| stake[b].cmp(&stake[a]).then(a.cmp(&b)));
    let mut permit = vec![false; stake.len()];
    for &i in order.iter().take(k) {
        permit[i] = true;
    }
    permit
}

/// Scale a vector to sum 1.0 (Q32.32, rounded down); all zeros stays zero.
fn normalize(x: &[u128]) -> Vec<u64> {
    let total: u128 = x.iter().sum();
    x.iter().map(|&v| ratio_q32(v, total)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_prefers_stake_then_lower_index() {
        assert_eq!(
            top_k_nonzero(&[5, 9, 5, 0], 2),
            vec![true, true, false, false]
        );
        assert_eq!(top_k_nonzero(&[0, 0], 2), vec![false, false]);
        assert_eq!(top_k_nonzero(&[1, 2, 3], 10), vec![true, true, true]);
    }
}
