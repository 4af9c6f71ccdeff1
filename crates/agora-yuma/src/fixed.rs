//! Fixed-point conventions shared by inputs, outputs and the algorithm.
//!
//! A proportion in `[0, 1]` is a `u64` in unsigned Q32.32: the value times
//! [`ONE`] = 2^32, rounded down. Parameters are parts per million
//! ([`PPM`] = 1,000,000 is 1.0). Intermediate products are `u128`.

/// Number of fractional bits of a Q32.32 proportion.
pub const FRAC_BITS: u32 = 32;

/// 1.0 in Q32.32, the scale of every proportion this crate returns.
pub const ONE: u64 = 1 << FRAC_BITS;

/// 1.0 in parts per million, the scale of every ratio parameter.
pub const PPM: u32 = 1_000_000;

/// `num / den` in Q32.32, rounded down; 0 when `den` is 0.
///
/// Callers keep `num` below 2^96 so the shift cannot overflow (every call in
/// this crate has `num <= den`, or `num` at most 2^64).
pub(crate) fn ratio_q32(num: u128, den: u128) -> u64 {
    if den == 0 {
        return 0;
    }
    // Same result, with a 64-bit division when the operands fit.
    if num < (1 << FRAC_BITS) && den <= u64::MAX as u128 {
        return ((num as u64) << FRAC_BITS) / den as u64;
    }
    let q = (num << FRAC_BITS) / den;
    u64::try_from(q).unwrap_or(u64::MAX)
}

/// `value * ppm / 1e6`, rounded down.
pub(crate) fn mul_ppm(value: u64, ppm: u32) -> u64 {
    // ppm <= 1e6 < 2^20, so the result never exceeds `value`; values below
    // 2^44 (every Q32.32 proportion) stay in cheap 64-bit arithmetic.
    if value < 1 << 44 {
        return value * ppm as u64 / PPM as u64;
    }
    ((value as u128 * ppm as u128) / PPM as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_rounds_down_and_handles_zero() {
        assert_eq!(ratio_q32(1, 2), ONE / 2);
        assert_eq!(ratio_q32(1, 3), 1_431_655_765);
        assert_eq!(ratio_q32(5, 0), 0);
        assert_eq!(ratio_q32(7, 7), ONE);
    }

    #[test]
    fn mul_ppm_is_exact_for_round_ratios() {
        assert_eq!(mul_ppm(1_000, 180_000), 180);
        assert_eq!(mul_ppm(u64::MAX, PPM), u64::MAX);
        assert_eq!(mul_ppm(999, 500_000), 499);
    }
}
