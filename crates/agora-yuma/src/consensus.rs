//! Stake-weighted median per provider: the consensus weight κ of the active
//! stake stands behind.

use crate::fixed::PPM;
use crate::sparse::Csr;

/// Bits of a packed median key that hold the validator's compact index.
const INDEX_BITS: u32 = 31;
/// Mask of those bits.
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;

/// Consensus per provider `j`: the largest weight `x` such that validators
/// whose weight on `j` is at least `x` hold at least κ of the active stake;
/// 0 when no positive weight has that support.
///
/// Validators without a weight on `j` count as weight 0 with their stake, as
/// in subtensor. Stake is compared exactly (`u128`), not normalised. Each
/// column is gathered and sorted once: O(nnz · log rows) overall.
pub(crate) fn weighted_median_cols(
    weights: &Csr,
    active_stake: &[u64],
    n_cols: usize,
    kappa_ppm: u32,
) -> Vec<u64> {
    let mut consensus = vec![0u64; n_cols];
    let total: u128 = active_stake.iter().map(|&s| s as u128).sum();
    if total == 0 {
        return consensus;
    }
    // Support needed, in stake × ppm units: cum · 1e6 >= κ_ppm · total.
    let need = kappa_ppm as u128 * total;

    // Staked rows get a compact index; each column's entries are packed as
    // `weight << 31 | index` (weights are at most 2^32, indices below 2^31)
    // so a column sorts as plain integers. Columns are gathered a block at
    // a time so the gather buffer stays small and in cache.
    let staked: Vec<usize> = (0..active_stake.len())
        .filter(|&i| active_stake[i] > 0)
        .collect();
    let stake_of = |key: u64| active_stake[staked[(key & INDEX_MASK) as usize]] as u128;
    let mut cursor: Vec<usize> = staked.iter().map(|&i| weights.row_ptr[i]).collect();
    let mut start = vec![0usize; COL_BLOCK + 1];
    let mut support = vec![0u128; COL_BLOCK];
    let mut keys: Vec<u64> = Vec::new();
    for b0 in (0..n_cols).step_by(COL_BLOCK) {
        let b1 = (b0 + COL_BLOCK).min(n_cols);
        let width = b1 - b0;
        start.fill(0);
        support.fill(0);
        for (k, &i) in staked.iter().enumerate() {
            let s = active_stake[i] as u128;
            let end = weights.row_ptr[i + 1];
            for &c in weights.cols[cursor[k]..end]
                .iter()
                .take_while(|&&c| (c as usize) < b1)
            {
                start[c as usize - b0 + 1] += 1;
                support[c as usize - b0] += s;
            }
        }
        for j in 0..width {
            start[j + 1] += start[j];
        }
        keys.clear();
        keys.resize(start[width], 0);
        let mut fill = start.clone();
        for (k, &i) in staked.iter().enumerate() {
            let end = weights.row_ptr[i + 1];
            let mut p = cursor[k];
            while p < end && (weights.cols[p] as usize) < b1 {
                let slot = &mut fill[weights.cols[p] as usize - b0];
                keys[*slot] = (weights.vals[p] << INDEX_BITS) | k as u64;
                *slot += 1;
                p += 1;
            }
            cursor[k] = p;
        }
        for j in 0..width {
            // Not enough stake behind any positive weight: consensus stays 0.
            if support[j] * (PPM as u128) < need || start[j] == start[j + 1] {
                continue;
            }
            let key = select_supported(&mut keys[start[j]..start[j + 1]], &stake_of, need);
            consensus[b0 + j] = key.map_or(0, |k| k >> INDEX_BITS);
        }
    }
    consensus
}

/// Columns gathered per block by the median.
const COL_BLOCK: usize = 256;

/// The largest key whose supporters (that key and all larger ones) hold
/// stake `cum` with `cum · 1e6 >= need`; `None` if even all keys do not.
///
/// Equivalent to sorting the keys descending and walking until the
/// running stake suffices, but by quickselect: expected O(len) per column.
/// `keys` is reordered.
fn select_supported(keys: &mut [u64], stake_of: &impl Fn(u64) -> u128, need: u128) -> Option<u64> {
    let enough = |cum: u128| cum * PPM as u128 >= need;
    // Invariant: every key in keys[hi..] is larger than every key in
    // keys[lo..hi], and `above` is their stake, not yet enough.
    let (mut lo, mut hi) = (0usize, keys.len());
    let mut above: u128 = 0;
    while hi - lo > SMALL {
        let mid = lo + (hi - lo) / 2;
        keys[lo..hi].select_nth_unstable(mid - lo);
        let upper: u128 = keys[mid + 1..hi].iter().map(|&k| stake_of(k)).sum();
        if enough(above + upper) {
            lo = mid + 1;
        } else if enough(above + upper + stake_of(keys[mid])) {
            return Some(keys[mid]);
        } else {
            above += upper + stake_of(keys[mid]);
            hi = mid;
        }
    }
    let rest = &mut keys[lo..hi];
    rest.sort_unstable();
    for &k in rest.iter().rev() {
        above += stake_of(k);
        if enough(above) {
            return Some(k);
        }
    }
    None
}

/// Below this many keys a column part is sorted instead of partitioned.
const SMALL: usize = 24;

#[cfg(test)]
mod tests {
    use super::*;

    /// A matrix straight from sorted rows of raw values.
    fn csr(rows: &[Vec<(u16, u64)>]) -> Csr {
        let mut m = Csr {
            row_ptr: vec![0],
            ..Csr::default()
        };
        for row in rows {
            for &(c, v) in row {
                m.cols.push(c);
                m.vals.push(v);
            }
            m.row_ptr.push(m.cols.len());
        }
        m
    }

    #[test]
    fn quickselect_agrees_with_sorting() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..300 {
            let n = 1 + (next() % 300) as usize;
            let stakes: Vec<u128> = (0..n).map(|_| next() as u128 % 1000).collect();
            // Few distinct weights, so ties are common.
            let mut keys: Vec<u64> = (0..n)
                .map(|k| ((next() % 17) << INDEX_BITS) | k as u64)
                .collect();
            let total: u128 = stakes.iter().sum();
            let need = (round as u128 * 3_333 % 1_000_001) * total;
            let stake_of = |key: u64| stakes[(key & INDEX_MASK) as usize];
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            let mut cum = 0;
            let mut want = None;
            for &k in sorted.iter().rev() {
                cum += stake_of(k);
                if cum * PPM as u128 >= need {
                    want = Some(k);
                    break;
                }
            }
            let got = select_supported(&mut keys, &stake_of, need);
            assert_eq!(got.map(|k| k >> INDEX_BITS), want.map(|k| k >> INDEX_BITS));
        }
    }

    #[test]
    fn median_is_the_weight_kappa_of_stake_supports() {
        // Column 0 weights 9, 2, 2 with stakes 30, 35, 35: the top weight has
        // 30% support, weight 2 has 100%: consensus 2 at κ = 0.5.
        let w = csr(&[vec![(0, 9)], vec![(0, 2)], vec![(0, 2)]]);
        assert_eq!(weighted_median_cols(&w, &[30, 35, 35], 4, 500_000)[0], 2);
        // At κ = 0.3 the top weight has enough support.
        assert_eq!(weighted_median_cols(&w, &[30, 35, 35], 4, 300_000)[0], 9);
    }

    #[test]
    fn missing_weights_count_as_zero() {
        // Only 40% of stake weights column 1: below κ, consensus 0.
        let w = csr(&[vec![(1, 5)], vec![], vec![]]);
        let c = weighted_median_cols(&w, &[40, 30, 30], 4, 500_000);
        assert_eq!(c[1], 0);
        let c = weighted_median_cols(&w, &[50, 30, 20], 4, 500_000);
        assert_eq!(c[1], 5);
    }

    #[test]
    fn zero_stake_rows_are_ignored() {
        let w = csr(&[vec![(0, 7)], vec![(0, 1)]]);
        assert_eq!(weighted_median_cols(&w, &[0, 10], 4, 500_000)[0], 1);
        assert_eq!(weighted_median_cols(&w, &[0, 0], 4, 500_000)[0], 0);
    }
}
