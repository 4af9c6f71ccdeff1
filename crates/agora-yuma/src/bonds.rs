//! Bonds: each validator's stake-weighted, EMA-smoothed share of each
//! provider, which decides how dividends are shared.

use std::borrow::Cow;

use crate::fixed::{mul_ppm, PPM};
use crate::sparse::{col_normalize_rows, Csr, Divisor};

/// Parameters of the bonds update, in parts per million.
pub(crate) struct BondParams {
    /// Weight of this tempo's bonds in the EMA (α).
    pub alpha_ppm: u32,
    /// β: 1.0 bonds use clipped weights, 0 raw weights.
    pub penalty_ppm: u32,
}

/// New bonds, each provider column normalised to 1.0:
///
/// ```text
/// wb_ij = β·min(w_ij, c_j) + (1 − β)·w_ij
/// ΔB_ij = wb_ij·s_i / Σ_k wb_kj·s_k
/// B_ij  = colnorm(α·ΔB_ij + (1 − α)·colnorm(B_prev)_ij)
/// ```
///
/// `weights` are row-normalised Q32.32 weights, `active_q` the normalised
/// active stake, `prev` the previous bonds (sorted rows; empty for
/// validators without a permit).
pub(crate) fn ema_bonds(
    weights: &Csr,
    consensus: &[u64],
    active_q: &[u64],
    prev: &[Cow<'_, [(u16, u64)]>],
    n_cols: usize,
    p: &BondParams,
) -> Vec<Vec<(u16, u64)>> {
    let unpenalised = PPM - p.penalty_ppm;
    let bond_weight = |w: u64, c: u64| {
        let cw = w.min(c);
        cw + mul_ppm(w - cw, unpenalised)
    };

    // Column sums of ΔB before normalisation (Q64) and of the old bonds.
    let mut delta_sum = vec![0u128; n_cols];
    for (i, &s) in active_q.iter().enumerate() {
        if s == 0 {
            continue;
        }
        let (cols, vals) = weights.row(i);
        for (&c, &w) in cols.iter().zip(vals) {
            delta_sum[c as usize] += bond_weight(w, consensus[c as usize]) as u128 * s as u128;
        }
    }
    let mut prev_sum = vec![0u128; n_cols];
    for row in prev {
        for &(c, b) in row.iter() {
            prev_sum[c as usize] += b as u128;
        }
    }
    let delta_div: Vec<Divisor> = delta_sum.into_iter().map(Divisor::new).collect();
    let prev_div: Vec<Divisor> = prev_sum.into_iter().map(Divisor::new).collect();
    let alpha = p.alpha_ppm as u64;
    let keep = (PPM - p.alpha_ppm) as u64;

    let mut ema: Vec<Vec<(u16, u64)>> = Vec::with_capacity(active_q.len());
    for (i, &s) in active_q.iter().enumerate() {
        let (wc, wv) = weights.row(i);
        let old: &[(u16, u64)] = prev.get(i).map_or(&[], |r| r.as_ref());
        let mut out = Vec::with_capacity(wc.len().max(old.len()));
        let delta = |k: usize| -> u64 {
            if s == 0 {
                return 0;
            }
            let c = wc[k] as usize;
            delta_div[c].apply(bond_weight(wv[k], consensus[c]) as u128 * s as u128)
        };
        let old_norm = |y: usize| prev_div[old[y].0 as usize].apply(old[y].1 as u128);
        let mut push = |c: u16, d: u64, b: u64| {
            // d, b <= 1.0 = 2^32 and alpha + keep = 1e6 < 2^20: fits u64. Kept
            // at 1e6 times the EMA: the column normalisation below removes the
            // scale, and dividing first would lose precision when α ≈ 1 leaves
            // only a few hundred ppm of tiny old bonds.
            let v = alpha * d + keep * b;
            if v > 0 {
                out.push((c, v));
            }
        };
        // Merge the two sorted rows.
        let (mut x, mut y) = (0, 0);
        while x < wc.len() || y < old.len() {
            let a = wc.get(x).copied();
            let b = old.get(y).map(|e| e.0);
            match (a, b) {
                (Some(a), Some(b)) if a == b => {
                    push(a, delta(x), old_norm(y));
                    x += 1;
                    y += 1;
                }
                (Some(a), Some(b)) if a < b => {
                    push(a, delta(x), 0);
                    x += 1;
                }
                (Some(a), None) => {
                    push(a, delta(x), 0);
                    x += 1;
                }
                (_, Some(b)) => {
                    push(b, 0, old_norm(y));
                    y += 1;
                }
                (None, None) => break,
            }
        }
        ema.push(out);
    }
    col_normalize_rows(&mut ema, n_cols);
    ema
}
