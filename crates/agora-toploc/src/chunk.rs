//! One chunk's commitment: the top-k values encoded as a polynomial, and its
//! check against recomputed hidden states.
//!
//! Encoding: value `v` becomes the bits of `f16(v)` (IEEE half, round to
//! nearest, saturated to ±65504), a field element since finite half bit
//! patterns are all below 0xFC00 < 65497. The polynomial through
//! `(index mod p, bits)` has `k` coefficients of 2 bytes each.
//!
//! Check: the verifier selects its own top-k and evaluates the committed
//! polynomial there. Where both sides selected the same index the result is
//! the committed value; elsewhere it is an unrelated field element, so an
//! index counts as *matched* when the claim has the same sign and exponent
//! as the recomputed value, and mantissa differences are measured on matched
//! indices only.

use borsh::{BorshDeserialize, BorshSerialize};
use half::f16;
use serde::{Deserialize, Serialize};

use crate::field::{evaluate, interpolate, MODULUS};
use crate::select::top_k;

/// Values committed per chunk (TOPLOC's k).
pub const TOP_K: usize = 128;

/// A polynomial over GF(65497) committing to one chunk's top-k values.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct ChunkCommitment {
    /// Coefficients, lowest degree first, each below 65497.
    pub coefficients: Vec<u16>,
}

/// How well recomputed hidden states agree with a chunk commitment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkCheck {
    /// Indices compared (the verifier's top-k size).
    pub checked: u32,
    /// Compared indices whose claimed value differs in sign or exponent.
    pub exponent_mismatches: u32,
    /// Mean |mantissa difference| in f16 ulps over matched indices (0 if none).
    pub mean_mantissa_diff: f64,
    /// Largest |mantissa difference| over matched indices.
    pub max_mantissa_diff: u32,
}

impl ChunkCheck {
    /// Fraction of compared indices with a sign or exponent mismatch (1 if none were compared).
    pub fn exponent_mismatch_rate(&self) -> f64 {
        if self.checked == 0 {
            return 1.0;
        }
        f64::from(self.exponent_mismatches) / f64::from(self.checked)
    }
}

/// Half-precision bits of `v` as a field element (saturating, NaN as 0).
fn encode(v: f32) -> u16 {
    let v = if v.is_nan() { 0.0 } else { v };
    f16::from_f32(v.clamp(f32::from(f16::MIN), f32::from(f16::MAX))).to_bits()
}

/// Commit to a chunk of hidden states (`positions × width` values, flattened
/// position-major).
pub fn commit_chunk(values: &[f32]) -> ChunkCommitment {
    let ids = top_k(values, TOP_K);
    let xs: Vec<u32> = ids.iter().map(|&i| i as u32 % MODULUS).collect();
    let ys: Vec<u32> = ids.iter().map(|&i| u32::from(encode(values[i]))).collect();
    let coefficients = interpolate(&xs, &ys)
        .into_iter()
        .map(|c| c as u16)
        .collect();
    ChunkCommitment { coefficients }
}

/// Compare recomputed hidden states of a chunk with its commitment.
pub fn check_chunk(commitment: &ChunkCommitment, values: &[f32]) -> ChunkCheck {
    let coeffs: Vec<u32> = commitment
        .coefficients
        .iter()
        .map(|&c| u32::from(c))
        .collect();
    let ids = top_k(values, TOP_K);
    let mut check = ChunkCheck {
        checked: ids.len() as u32,
        ..ChunkCheck::default()
    };
    let mut mantissa_sum = 0u64;
    for &i in &ids {
        let claimed = evaluate(&coeffs, i as u32 % MODULUS);
        let mine = encode(values[i]);
        // Sign and exponent are the top 6 bits; the mantissa the low 10.
        if claimed > u32::from(u16::MAX) || (claimed as u16) >> 10 != mine >> 10 {
            check.exponent_mismatches += 1;
            continue;
        }
        let diff = (claimed as u16 & 0x3FF).abs_diff(mine & 0x3FF);
        mantissa_sum += u64::from(diff);
        check.max_mantissa_diff = check.max_mantissa_diff.max(u32::from(diff));
    }
    let matched = check.checked - check.exponent_mismatches;
    if matched > 0 {
        check.mean_mantissa_diff = mantissa_sum as f64 / f64::from(matched);
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_finite_halves_in_the_field() {
        for v in [0.0, -0.0, 1.5, -65504.0, 1e9, -1e9, f32::NAN] {
            assert!(u32::from(encode(v)) < MODULUS);
        }
        assert_eq!(f16::from_bits(encode(1.5)).to_f32(), 1.5);
    }
}
