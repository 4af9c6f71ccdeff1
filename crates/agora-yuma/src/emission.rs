//! Integer emission split: owner cut, provider incentive, validator
//! dividends, summing exactly to the tempo's emission.

use crate::fixed::mul_ppm;

/// Token amounts for everyone in the market for one tempo.
pub(crate) struct Split {
    /// Per provider.
    pub provider: Vec<u64>,
    /// Per validator.
    pub validator: Vec<u64>,
    /// Market owner, including anything nobody else could receive.
    pub owner: u64,
}

/// Shares of the emission, each a list of non-negative weights.
pub(crate) struct Shares<'a> {
    /// Provider incentive (Q32.32).
    pub incentive: &'a [u64],
    /// Validator weights, first non-zero list wins: dividends, then active
    /// stake, then permitted stake.
    pub validator_fallbacks: [&'a [u64]; 3],
}

/// Split `emission`: the owner cut first, then `validator_share` of the
/// rest to validators and the remainder to providers. If no provider has
/// incentive its part goes to validators; if no validator can be paid the
/// validator part goes to the owner. Every pool is apportioned with
/// [`apportion`], so the amounts sum exactly to `emission`.
pub(crate) fn split(
    emission: u64,
    owner_cut_ppm: u32,
    validator_share_ppm: u32,
    shares: &Shares<'_>,
) -> Split {
    let mut owner = mul_ppm(emission, owner_cut_ppm);
    let rest = emission - owner;
    let mut validator_pool = mul_ppm(rest, validator_share_ppm);
    let provider_pool = rest - validator_pool;

    let (provider, unpaid) = apportion(provider_pool, shares.incentive);
    validator_pool += unpaid;

    let basis = shares
        .validator_fallbacks
        .iter()
        .find(|w| w.iter().any(|&x| x > 0))
        .copied()
        .unwrap_or(shares.validator_fallbacks[0]);
    let (validator, unpaid) = apportion(validator_pool, basis);
    owner += unpaid;
    Split {
        provider,
        validator,
        owner,
    }
}

/// Share `pool` in proportion to `weights` by largest remainder: everyone
/// gets `floor(pool·w_k / Σw)`, and the few units left go one each to the
/// largest fractional parts (ties: larger weight, then lower index).
/// Returns the amounts and what could not be paid (all of `pool` when every
/// weight is zero, else 0).
pub(crate) fn apportion(pool: u64, weights: &[u64]) -> (Vec<u64>, u64) {
    let total: u128 = weights.iter().map(|&w| w as u128).sum();
    let mut out = vec![0u64; weights.len()];
    if total == 0 {
        return (out, pool);
    }
    let mut paid: u64 = 0;
    let mut rems: Vec<(u128, u64, usize)> = Vec::new();
    for (k, &w) in weights.iter().enumerate() {
        if w == 0 {
            continue;
        }
        let num = pool as u128 * w as u128;
        // Each share is at most `pool`, so fits a u64.
        out[k] = (num / total) as u64;
        paid += out[k];
        rems.push((num % total, w, k));
    }
    // Floors lose less than one unit per paid entry, so left < rems.len().
    let left = (pool - paid) as usize;
    if left > 0 {
        rems.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        for &(_, _, k) in rems.iter().take(left) {
            out[k] += 1;
        }
    }
    (out, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_is_exact_and_fair() {
        assert_eq!(apportion(10, &[1, 1, 1]), (vec![4, 3, 3], 0));
        assert_eq!(apportion(10, &[0, 0]), (vec![0, 0], 10));
        assert_eq!(apportion(7, &[1, 2, 4]), (vec![1, 2, 4], 0));
        assert_eq!(
            apportion(u64::MAX, &[u64::MAX, u64::MAX])
                .0
                .iter()
                .sum::<u64>(),
            u64::MAX
        );
    }

    #[test]
    fn split_falls_back_and_conserves() {
        let s = split(
            1000,
            180_000,
            500_000,
            &Shares {
                incentive: &[0, 0],
                validator_fallbacks: [&[0], &[0], &[0]],
            },
        );
        assert_eq!(
            (s.owner, s.provider.clone(), s.validator.clone()),
            (1000, vec![0, 0], vec![0])
        );
        let s = split(
            1001,
            180_000,
            500_000,
            &Shares {
                incentive: &[1, 3],
                validator_fallbacks: [&[0, 0], &[2, 2], &[1, 1]],
            },
        );
        // owner 180, rest 821: validators 410 by active stake, providers 411.
        assert_eq!(s.owner, 180);
        assert_eq!(s.validator, vec![205, 205]);
        assert_eq!(s.provider.iter().sum::<u64>(), 411);
    }
}
