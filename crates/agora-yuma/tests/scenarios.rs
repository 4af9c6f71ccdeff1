//! Scenario tests with expected numbers computed independently: by hand in
//! the test, or by the dense f64 reference in `common/reference.rs`.

mod common;

use agora_yuma::fixed::ONE;
use agora_yuma::{epoch, YumaError, YumaInput, YumaOutput, YumaParams};
use common::reference::reference_epoch;
use common::{assert_close, dense, fracs, ref_params, to_f64};

const TOL: f64 = 1e-8;

/// Three validators, two providers: validator 0 (30% of stake) puts 90% of
/// its weight on provider 0, the other two (35% each) put 20% there and 80%
/// on provider 1. The minority's excess on provider 0 is clipped away.
#[test]
fn minority_over_weighting_is_clipped_to_consensus() {
    let input = YumaInput::new(
        2,
        vec![30, 35, 35],
        vec![
            vec![(0, 9), (1, 1)],
            vec![(0, 2), (1, 8)],
            vec![(0, 2), (1, 8)],
        ],
        1_000_000,
    );
    let out = epoch(&YumaParams::default(), &input).unwrap();

    // By hand, κ = 0.5. Provider 0: weight 0.9 has 30% support (< 50%),
    // 0.2 has 100%, so consensus 0.2. Provider 1: 0.8 has 70%, so 0.8.
    assert_close("consensus", &fracs(&out.consensus), &[0.2, 0.8], TOL);
    // Validator 0 is clipped to (0.2, 0.1): trust 0.3; the others keep all.
    assert_close("trust", &fracs(&out.validator_trust), &[0.3, 1.0, 1.0], TOL);
    // Ranks with stake (0.3, 0.35, 0.35): r0 = 0.2, r1 = 0.1·0.3 + 0.8·0.7 = 0.59.
    let (r0, r1) = (0.2, 0.59);
    assert_close(
        "incentive",
        &fracs(&out.incentive),
        &[r0 / (r0 + r1), r1 / (r0 + r1)],
        TOL,
    );
    // Unclipped, provider 0 would have had 0.41 of the incentive.
    assert!(to_f64(out.incentive[0]) < 0.26);
    // First epoch, no prior bonds: bonds are this tempo's column shares, and
    // dividends reduce to trust_i · s_i / Σr.
    let sum_r = r0 + r1;
    let want_div = [0.3 * 0.3 / sum_r, 0.35 / sum_r, 0.35 / sum_r];
    assert_close("dividends", &fracs(&out.dividends), &want_div, TOL);
    let want_bonds = vec![
        vec![0.3, 0.03 / 0.59],
        vec![0.35, 0.28 / 0.59],
        vec![0.35, 0.28 / 0.59],
    ];
    for (got, want) in dense(&out.new_bonds, 2).iter().zip(&want_bonds) {
        assert_close("bonds", got, want, TOL);
    }
    // Emission 1,000,000: owner 18% = 180,000; 410,000 each to providers
    // (by incentive) and validators (by dividends).
    assert_eq!(out.owner_emission, 180_000);
    let want_p = [410_000.0 * r0 / sum_r, 410_000.0 * r1 / sum_r];
    let want_v = want_div.map(|d| 410_000.0 * d);
    assert_amounts(&out.provider_emission, &want_p);
    assert_amounts(&out.validator_emission, &want_v);
    assert_conserved(&out, input.emission);
}

/// The same scenario against the independent f64 reference, over several
/// tempos with bonds carried forward.
#[test]
fn clipping_scenario_matches_reference_over_tempos() {
    let params = YumaParams::default();
    let mut input = YumaInput::new(
        3,
        vec![300, 350, 350, 100],
        vec![
            vec![(0, 60_000), (1, 5_000)],
            vec![(0, 10_000), (1, 30_000), (2, 25_000)],
            vec![(0, 12_000), (1, 28_000), (2, 20_000)],
            vec![(2, 65_535)],
        ],
        123_456_789,
    );
    for _ in 0..5 {
        let out = epoch(&params, &input).unwrap();
        let r = reference_epoch(
            &ref_params(&params),
            3,
            &input.stakes,
            &input.active,
            &input.weights,
            &input.prev_bonds,
            input.emission,
        );
        compare_with_reference(&out, &r, input.emission);
        input.prev_bonds = out.new_bonds;
    }
}

/// Commit-reveal forces a weight copier to copy the previous tempo's
/// revealed consensus. With provider quality moving every tempo, the honest
/// validators' fresh weights earn them more bonds where quality rises, and
/// the copier, with the same stake, earns lower dividends.
#[test]
fn stale_weight_copier_earns_less_than_honest_validators() {
    let (honest, copier) = run_copier(true);
    for (k, h) in honest.iter().enumerate() {
        assert!(
            copier < 0.9 * h,
            "copier {copier} should earn clearly less than honest validator {k} ({h})"
        );
    }
}

/// Control: copying the current tempo's consensus (what commit-reveal
/// prevents) would earn about as much as honest validation.
#[test]
fn fresh_weight_copier_would_earn_like_honest_validators() {
    let (honest, copier) = run_copier(false);
    let mean: f64 = honest.iter().sum::<f64>() / honest.len() as f64;
    assert!(
        (copier - mean).abs() < 0.02 * mean,
        "copier {copier} vs honest mean {mean}"
    );
}

/// Malformed inputs are errors, never panics.
#[test]
fn malformed_inputs_are_refused() {
    let p = YumaParams::default();
    let mut input = YumaInput::new(2, vec![1, 2], vec![vec![(0, 1)], vec![]], 10);
    input.active.pop();
    assert!(matches!(
        epoch(&p, &input),
        Err(YumaError::LengthMismatch { what: "active", .. })
    ));
    let input = YumaInput::new(2, vec![1, 2], vec![vec![(0, 1)]], 10);
    assert!(matches!(
        epoch(&p, &input),
        Err(YumaError::LengthMismatch {
            what: "weights",
            ..
        })
    ));
    let input = YumaInput::new(2, vec![1], vec![vec![(2, 1)]], 10);
    assert!(matches!(
        epoch(&p, &input),
        Err(YumaError::ProviderOutOfRange { uid: 2, .. })
    ));
    let mut input = YumaInput::new(2, vec![1], vec![vec![(1, 1)]], 10);
    input.prev_bonds = vec![vec![(0, 5), (0, 6)]];
    assert!(matches!(
        epoch(&p, &input),
        Err(YumaError::DuplicateProvider {
            what: "prev_bonds",
            uid: 0,
            ..
        })
    ));
    let bad = YumaParams {
        kappa_ppm: 1_000_001,
        ..YumaParams::default()
    };
    let input = YumaInput::new(2, vec![1], vec![vec![(1, 1)]], 10);
    assert!(matches!(
        epoch(&bad, &input),
        Err(YumaError::RatioOutOfRange {
            name: "kappa_ppm",
            ..
        })
    ));
    let input = YumaInput::new(70_000, vec![1], vec![vec![]], 10);
    assert!(matches!(
        epoch(&p, &input),
        Err(YumaError::TooManyProviders(70_000))
    ));
}

/// Without any weights nobody has incentive: validators get the whole
/// non-owner emission by active stake, as subtensor does.
#[test]
fn no_weights_pays_validators_by_stake() {
    let input = YumaInput::new(4, vec![100, 300, 0], vec![vec![], vec![], vec![]], 1_000);
    let out = epoch(&YumaParams::default(), &input).unwrap();
    assert_eq!(out.owner_emission, 180);
    assert_eq!(out.provider_emission, vec![0; 4]);
    assert_eq!(out.validator_emission, vec![205, 615, 0]);
    assert_eq!(out.active_stake, vec![ONE / 4, 3 * ONE / 4, 0]);
}

/// Simulate 12 tempos of 3 honest validators and one copier, equal stake.
/// Returns the honest validators' and the copier's total dividends (as
/// fractions summed over tempos 1..12).
fn run_copier(stale: bool) -> (Vec<f64>, f64) {
    const N_P: usize = 8;
    const TEMPOS: usize = 12;
    let params = YumaParams::default();
    let stakes = vec![1_000u64; 4];
    // True quality of provider j at tempo t: a ramp that shifts each tempo.
    let quality = |t: usize, j: usize| 1 + ((j + t) % N_P) as u64;
    let honest_row = |t: usize, v: usize| -> Vec<(u16, u16)> {
        (0..N_P)
            .map(|j| {
                // Up to ±2% per-validator noise, so honest weights differ.
                let noise = 100 + ((v * 7 + j * 3 + t) % 5) as u64 - 2;
                (j as u16, (quality(t, j) * 6_000 * noise / 100) as u16)
            })
            .collect()
    };
    let mut prev_bonds: Vec<Vec<(u16, u64)>> = Vec::new();
    let mut last_consensus: Vec<u64> = vec![ONE / N_P as u64; N_P];
    let mut honest_total = [0.0f64; 3];
    let mut copier_total = 0.0f64;
    for t in 0..TEMPOS {
        let mut weights: Vec<Vec<(u16, u16)>> = (0..3).map(|v| honest_row(t, v)).collect();
        let copied = if stale {
            last_consensus.clone()
        } else {
            // The consensus of this tempo's honest weights, computed by a
            // dry run without the copier.
            let dry = YumaInput::new(N_P, vec![1_000; 3], weights.clone(), 0);
            epoch(&params, &dry).unwrap().consensus
        };
        weights.push(to_u16_row(&copied));
        let mut input = YumaInput::new(N_P, stakes.clone(), weights, 1_000_000_000);
        input.prev_bonds = prev_bonds;
        let out = epoch(&params, &input).unwrap();
        assert_conserved(&out, input.emission);
        if t > 0 {
            for (k, total) in honest_total.iter_mut().enumerate() {
                *total += to_f64(out.dividends[k]);
            }
            copier_total += to_f64(out.dividends[3]);
        }
        last_consensus = out.consensus.clone();
        prev_bonds = out.new_bonds;
    }
    (honest_total.to_vec(), copier_total)
}

/// Max-upscale Q32.32 values to u16 weights, as a validator would submit them.
fn to_u16_row(v: &[u64]) -> Vec<(u16, u16)> {
    let max = v.iter().copied().max().unwrap_or(0).max(1);
    v.iter()
        .enumerate()
        .filter(|(_, &x)| x > 0)
        .map(|(j, &x)| (j as u16, (x as u128 * 65_535 / max as u128) as u16))
        .collect()
}

fn assert_amounts(got: &[u64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g as f64 - w).abs() <= 1.0,
            "amount[{k}]: got {g}, want {w}"
        );
    }
}

fn assert_conserved(out: &YumaOutput, emission: u64) {
    let total = out.owner_emission as u128
        + out
            .provider_emission
            .iter()
            .map(|&x| x as u128)
            .sum::<u128>()
        + out
            .validator_emission
            .iter()
            .map(|&x| x as u128)
            .sum::<u128>();
    assert_eq!(total, emission as u128);
}

fn compare_with_reference(out: &YumaOutput, r: &common::reference::RefOut, emission: u64) {
    let n_p = out.consensus.len();
    assert_eq!(out.validator_permit, r.permit);
    assert_close("consensus", &fracs(&out.consensus), &r.consensus, TOL);
    assert_close("trust", &fracs(&out.validator_trust), &r.trust, TOL);
    assert_close("incentive", &fracs(&out.incentive), &r.incentive, TOL);
    assert_close("dividends", &fracs(&out.dividends), &r.dividends, 1e-7);
    for (got, want) in dense(&out.new_bonds, n_p).iter().zip(&r.bonds) {
        assert_close("bonds", got, want, 1e-7);
    }
    let tol = 2.0 + emission as f64 * 1e-7;
    assert!((out.owner_emission as f64 - r.owner).abs() <= tol);
    for (g, w) in out.provider_emission.iter().zip(&r.provider_emission) {
        assert!((*g as f64 - w).abs() <= tol, "provider emission {g} vs {w}");
    }
    for (g, w) in out.validator_emission.iter().zip(&r.validator_emission) {
        assert!(
            (*g as f64 - w).abs() <= tol,
            "validator emission {g} vs {w}"
        );
    }
    assert_conserved(out, emission);
}
