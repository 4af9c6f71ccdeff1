//! Shared test helpers: the f64 reference and conversions.

#![allow(dead_code)]

pub mod reference;

use agora_yuma::fixed::ONE;
use agora_yuma::YumaParams;
use reference::RefParams;

/// The reference's parameters matching a crate parameter set.
pub fn ref_params(p: &YumaParams) -> RefParams {
    RefParams {
        kappa: p.kappa_ppm as f64 / 1e6,
        alpha: p.bond_alpha_ppm as f64 / 1e6,
        penalty: p.bonds_penalty_ppm as f64 / 1e6,
        owner_cut: p.owner_cut_ppm as f64 / 1e6,
        validator_share: p.validator_share_ppm as f64 / 1e6,
        max_validators: p.max_validators,
        min_stake: p.min_validator_stake,
    }
}

/// A Q32.32 proportion as f64.
pub fn to_f64(q: u64) -> f64 {
    q as f64 / ONE as f64
}

/// Q32.32 proportions as f64.
pub fn fracs(v: &[u64]) -> Vec<f64> {
    v.iter().map(|&q| to_f64(q)).collect()
}

/// Sparse Q32.32 bond rows as a dense f64 matrix.
pub fn dense(rows: &[Vec<(u16, u64)>], n_p: usize) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|r| {
            let mut d = vec![0.0; n_p];
            for &(j, b) in r {
                d[j as usize] = to_f64(b);
            }
            d
        })
        .collect()
}

/// Assert two vectors agree within `tol`, naming the field on failure.
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol,
            "{what}[{k}]: got {g}, want {w} (tol {tol})"
        );
    }
}
