//! Sparse rows: input validation, the compressed matrix of normalised
//! weights, and column normalisation.

use std::borrow::Cow;

use crate::error::YumaError;
use crate::fixed::FRAC_BITS;

/// A validators × providers matrix in compressed sparse row form; each row
/// holds strictly increasing provider uids and positive values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Csr {
    /// `row_ptr[i]..row_ptr[i + 1]` indexes row `i` in `cols` and `vals`.
    pub row_ptr: Vec<usize>,
    /// Provider uid of each stored entry.
    pub cols: Vec<u16>,
    /// Value of each stored entry.
    pub vals: Vec<u64>,
}

impl Csr {
    /// The uids and values of row `i`.
    pub fn row(&self, i: usize) -> (&[u16], &[u64]) {
        let (a, b) = (self.row_ptr[i], self.row_ptr[i + 1]);
        (&self.cols[a..b], &self.vals[a..b])
    }
}

/// Check one input row (uids below `n_cols`, none repeated) and return it
/// sorted by uid, borrowed when it already is.
pub(crate) fn checked_row<'a, T: Copy>(
    what: &'static str,
    validator: usize,
    row: &'a [(u16, T)],
    n_cols: usize,
) -> Result<Cow<'a, [(u16, T)]>, YumaError> {
    let sorted = row.windows(2).all(|p| p[0].0 < p[1].0);
    let row: Cow<'a, [(u16, T)]> = if sorted {
        Cow::Borrowed(row)
    } else {
        let mut owned = row.to_vec();
        owned.sort_unstable_by_key(|&(c, _)| c);
        if let Some(p) = owned.windows(2).find(|p| p[0].0 == p[1].0) {
            return Err(YumaError::DuplicateProvider {
                what,
                validator,
                uid: p[0].0,
            });
        }
        Cow::Owned(owned)
    };
    // Sorted and distinct, so only the last uid can be out of range.
    if let Some(&(uid, _)) = row.last() {
        if uid as usize >= n_cols {
            return Err(YumaError::ProviderOutOfRange {
                what,
                validator,
                uid,
                n_providers: n_cols,
            });
        }
    }
    Ok(row)
}

/// Validate every weight row and keep, for rows where `keep[i]`, the
/// positive weights scaled so each row sums to 1.0 (Q32.32, rounded down).
///
/// Every row is checked even when it is not kept, so a malformed input is
/// refused whatever the stakes are.
pub(crate) fn normalized_weights(
    rows: &[Vec<(u16, u16)>],
    keep: &[bool],
    n_cols: usize,
) -> Result<Csr, YumaError> {
    let nnz = rows.iter().map(Vec::len).sum();
    let mut out = Csr {
        row_ptr: Vec::with_capacity(rows.len() + 1),
        cols: Vec::with_capacity(nnz),
        vals: Vec::with_capacity(nnz),
    };
    out.row_ptr.push(0);
    for (i, row) in rows.iter().enumerate() {
        let row = checked_row("weights", i, row, n_cols)?;
        if keep[i] {
            let sum: u128 = row.iter().map(|&(_, w)| w as u128).sum();
            let div = Divisor::new(sum);
            for &(c, w) in row.iter().filter(|&&(_, w)| w > 0) {
                // The sum is below 2^32 (65,536 weights below 2^16), so
                // this is exact and never rounds a positive weight to 0.
                out.cols.push(c);
                out.vals.push(div.apply(w as u128));
            }
        }
        out.row_ptr.push(out.cols.len());
    }
    Ok(out)
}

/// Divides values of one row or column by its sum, giving Q32.32.
///
/// When the sum exceeds 32 bits, value and sum are first shifted right by
/// the same `k` bits so the sum fits: the result is
/// `floor((x >> k)·2^32 / (S >> k))`, exact for sums below 2^32 and within
/// 2^-31 of `x / S` otherwise. The division itself is exact, done as a
/// multiplication by a precomputed reciprocal plus one correction step,
/// because a hardware divide per matrix entry dominated the epoch's time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Divisor {
    /// `k`: bits dropped from value and sum.
    shift: u32,
    /// `d = S >> k`, below 2^32; 0 for an empty line.
    den: u64,
    /// `floor(2^64 / d)`.
    recip: u128,
}

impl Divisor {
    /// The divisor for a row or column summing to `sum`.
    pub fn new(sum: u128) -> Self {
        let bits = 128 - sum.leading_zeros();
        let shift = bits.saturating_sub(FRAC_BITS);
        let den = (sum >> shift) as u64;
        let recip = if den == 0 {
            0
        } else {
            (1u128 << 64) / den as u128
        };
        Self { shift, den, recip }
    }

    /// `x / S` in Q32.32 (`x` must not exceed the sum `S`).
    pub fn apply(self, x: u128) -> u64 {
        if self.den == 0 {
            return 0;
        }
        // n <= d < 2^32, so n·2^32 and (q + 1)·d fit in 64 bits.
        let n = (x >> self.shift) as u64;
        let target = n << FRAC_BITS;
        // recip underestimates 2^64/d by less than 1, so q is floor or floor − 1.
        let q = ((n as u128 * self.recip) >> FRAC_BITS) as u64;
        if (q + 1) * self.den <= target {
            q + 1
        } else {
            q
        }
    }
}

/// Normalise every column of sparse rows in place to sum 1.0, dropping
/// entries that become zero.
pub(crate) fn col_normalize_rows(rows: &mut [Vec<(u16, u64)>], n_cols: usize) {
    let mut sums = vec![0u128; n_cols];
    for row in rows.iter() {
        for &(c, v) in row {
            sums[c as usize] += v as u128;
        }
    }
    let div: Vec<Divisor> = sums.into_iter().map(Divisor::new).collect();
    for row in rows.iter_mut() {
        for e in row.iter_mut() {
            e.1 = div[e.0 as usize].apply(e.1 as u128);
        }
        row.retain(|&(_, v)| v > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixed::ONE;

    #[test]
    fn rows_are_sorted_checked_and_normalised() {
        let rows: Vec<Vec<(u16, u16)>> = vec![vec![(2, 3), (0, 1), (1, 0)], vec![(1, 3)]];
        let m = normalized_weights(&rows, &[true, false], 3).unwrap();
        assert_eq!(m.row(0), (&[0u16, 2][..], &[ONE / 4, 3 * ONE / 4][..]));
        assert_eq!(m.row(1).0.len(), 0);

        let dup: Vec<Vec<(u16, u16)>> = vec![vec![(1, 1), (1, 2)]];
        assert!(matches!(
            normalized_weights(&dup, &[false], 3),
            Err(YumaError::DuplicateProvider { uid: 1, .. })
        ));
        let out: Vec<Vec<(u16, u16)>> = vec![vec![(3, 1)]];
        assert!(matches!(
            normalized_weights(&out, &[true], 3),
            Err(YumaError::ProviderOutOfRange { uid: 3, .. })
        ));
    }

    #[test]
    fn col_normalize_sums_to_one() {
        let mut rows = vec![vec![(0u16, 1u64), (1, 3)], vec![(0, 3)]];
        col_normalize_rows(&mut rows, 2);
        assert_eq!(
            rows,
            vec![vec![(0, ONE / 4), (1, ONE)], vec![(0, 3 * ONE / 4)]]
        );
    }

    #[test]
    fn divisor_is_exact_for_small_sums_and_close_for_large() {
        assert_eq!(Divisor::new(3).apply(1), ONE / 3);
        assert_eq!(Divisor::new(0).apply(0), 0);
        assert_eq!(Divisor::new(1).apply(1), ONE);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let den = (x >> 32).max(1);
            let num = (x & 0xffff_ffff) % (den + 1);
            let want = ((num as u128) << 32) / den as u128;
            assert_eq!(Divisor::new(den as u128).apply(num as u128) as u128, want);
        }
        let big = (1u128 << 70) + 12_345;
        let q = Divisor::new(big).apply(big / 3);
        assert!(q.abs_diff(ONE / 3) <= 2, "{q}");
        assert_eq!(Divisor::new(big).apply(big), ONE);
    }
}
