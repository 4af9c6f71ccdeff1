//! Which hidden-state values a commitment covers: the `k` largest by
//! magnitude in a chunk (positions × width, flattened position-major).
//!
//! A value's field point is its flattened index modulo [`MODULUS`]. Points
//! must be distinct, so when a chunk has more than `MODULUS` values, a value
//! whose point is already taken by a larger one is skipped. Order is by
//! magnitude, then lower index first; NaNs count as zero.

use crate::field::MODULUS;

/// Indices (into the flattened chunk) of the selected values, largest first.
pub fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let magnitude = |i: usize| {
        let v = values[i].abs();
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let order = |a: &usize, b: &usize| magnitude(*b).total_cmp(&magnitude(*a)).then(a.cmp(b));
    let mut ids: Vec<usize> = (0..values.len()).collect();
    let k = k.min(values.len());
    if k == 0 {
        return Vec::new();
    }
    if values.len() <= MODULUS as usize {
        // Every index is its own point: no collisions possible.
        if k < ids.len() {
            ids.select_nth_unstable_by(k - 1, order);
        }
        ids.truncate(k);
        ids.sort_unstable_by(order);
        return ids;
    }
    ids.sort_unstable_by(order);
    let mut taken = std::collections::HashSet::with_capacity(k);
    ids.into_iter()
        .filter(|&i| taken.insert(i as u32 % MODULUS))
        .take(k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_largest_magnitudes_with_low_index_on_ties() {
        let v = [0.5, -3.0, 2.0, f32::NAN, 2.0, -0.1];
        assert_eq!(top_k(&v, 3), vec![1, 2, 4]);
        assert_eq!(top_k(&v, 10).len(), 6);
        assert!(top_k(&[], 4).is_empty());
    }

    #[test]
    fn colliding_points_are_skipped() {
        let n = MODULUS as usize + 2;
        let mut v = vec![0.0f32; n];
        v[1] = 10.0;
        v[MODULUS as usize + 1] = 9.0; // same point as index 1
        v[5] = 8.0;
        assert_eq!(top_k(&v, 2), vec![1, 5]);
    }
}
