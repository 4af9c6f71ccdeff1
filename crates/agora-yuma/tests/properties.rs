//! Property tests: conservation of emission, determinism, equivariance
//! under validator reordering, no dividends without stake, and agreement
//! with the dense f64 reference.

mod common;

use agora_yuma::{epoch, YumaInput, YumaOutput, YumaParams};
use common::reference::reference_epoch;
use common::{assert_close, dense, fracs, ref_params};
use proptest::prelude::*;

/// A random market: up to 8 validators (some with zero stake, some
/// inactive), up to 12 providers, sparse weights, random prior bonds.
fn market() -> impl Strategy<Value = YumaInput> {
    (1usize..=8, 1usize..=12).prop_flat_map(|(n_v, n_p)| {
        let stake = prop_oneof![1 => Just(0u64), 4 => 1u64..1_000_000];
        let row = proptest::collection::btree_map(0..n_p as u16, 0u16..=u16::MAX, 0..=n_p);
        let bond_row = proptest::collection::btree_map(0..n_p as u16, 1u64..1 << 40, 0..=n_p);
        (
            proptest::collection::vec(stake, n_v),
            proptest::collection::vec(prop_oneof![1 => Just(false), 5 => Just(true)], n_v),
            proptest::collection::vec(row, n_v),
            prop_oneof![
                1 => Just(Vec::new()),
                2 => proptest::collection::vec(bond_row, n_v)
                    .prop_map(|rows| rows.into_iter().map(|r| r.into_iter().collect()).collect()),
            ],
            any::<u64>(),
        )
            .prop_map(
                move |(stakes, active, rows, prev_bonds, emission)| YumaInput {
                    n_providers: n_p,
                    stakes,
                    active,
                    weights: rows.into_iter().map(|r| r.into_iter().collect()).collect(),
                    prev_bonds,
                    emission,
                },
            )
    })
}

/// Any valid parameter set.
fn params() -> impl Strategy<Value = YumaParams> {
    let ratio = || 0u32..=1_000_000;
    (
        ratio(),
        ratio(),
        ratio(),
        ratio(),
        ratio(),
        1usize..=10,
        0u64..1_000,
    )
        .prop_map(
            |(kappa, alpha, penalty, cut, share, max_v, min_stake)| YumaParams {
                kappa_ppm: kappa,
                bond_alpha_ppm: alpha,
                bonds_penalty_ppm: penalty,
                owner_cut_ppm: cut,
                validator_share_ppm: share,
                max_validators: max_v,
                min_validator_stake: min_stake,
            },
        )
}

fn total(out: &YumaOutput) -> u128 {
    out.owner_emission as u128
        + out
            .provider_emission
            .iter()
            .map(|&x| x as u128)
            .sum::<u128>()
        + out
            .validator_emission
            .iter()
            .map(|&x| x as u128)
            .sum::<u128>()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Owner, provider and validator amounts sum exactly to the emission.
    #[test]
    fn emission_is_conserved(p in params(), input in market()) {
        let out = epoch(&p, &input).unwrap();
        prop_assert_eq!(total(&out), input.emission as u128);
        prop_assert_eq!(out.provider_emission.len(), input.n_providers);
        prop_assert_eq!(out.validator_emission.len(), input.stakes.len());
    }

    /// The same input gives the same output, including from a clone.
    #[test]
    fn epoch_is_deterministic(p in params(), input in market()) {
        let a = epoch(&p, &input).unwrap();
        let b = epoch(&p.clone(), &input.clone()).unwrap();
        prop_assert_eq!(a, b);
    }

    /// Validators with no stake (or below the threshold) hold no permit and
    /// earn neither dividends nor emission.
    #[test]
    fn zero_stake_validators_earn_nothing(p in params(), input in market()) {
        let out = epoch(&p, &input).unwrap();
        for (i, &s) in input.stakes.iter().enumerate() {
            if s == 0 || s < p.min_validator_stake {
                prop_assert!(!out.validator_permit[i]);
                prop_assert_eq!(out.dividends[i], 0);
                prop_assert_eq!(out.validator_emission[i], 0);
                prop_assert!(out.new_bonds[i].is_empty());
            }
        }
    }

    /// Reordering validators reorders every per-validator output the same
    /// way and leaves per-provider outputs unchanged (validator emission may
    /// move by one unit where remainders tie).
    #[test]
    fn validator_order_does_not_matter(
        p in params(),
        input in market(),
        seed in any::<u64>(),
    ) {
        let n = input.stakes.len();
        // Distinct non-zero stakes so the top-k permit cut has no ties.
        let mut input = input;
        for (i, s) in input.stakes.iter_mut().enumerate() {
            if *s > 0 {
                *s = *s * 16 + i as u64;
            }
        }
        let mut perm: Vec<usize> = (0..n).collect();
        let mut x = seed | 1;
        for k in (1..n).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            perm.swap(k, (x % (k as u64 + 1)) as usize);
        }
        let permuted = YumaInput {
            n_providers: input.n_providers,
            stakes: perm.iter().map(|&i| input.stakes[i]).collect(),
            active: perm.iter().map(|&i| input.active[i]).collect(),
            weights: perm.iter().map(|&i| input.weights[i].clone()).collect(),
            prev_bonds: if input.prev_bonds.is_empty() {
                Vec::new()
            } else {
                perm.iter().map(|&i| input.prev_bonds[i].clone()).collect()
            },
            emission: input.emission,
        };
        let a = epoch(&p, &input).unwrap();
        let b = epoch(&p, &permuted).unwrap();
        prop_assert_eq!(&a.consensus, &b.consensus);
        prop_assert_eq!(&a.incentive, &b.incentive);
        prop_assert_eq!(&a.provider_emission, &b.provider_emission);
        prop_assert_eq!(a.owner_emission, b.owner_emission);
        for (k, &i) in perm.iter().enumerate() {
            prop_assert_eq!(a.validator_permit[i], b.validator_permit[k]);
            prop_assert_eq!(a.active_stake[i], b.active_stake[k]);
            prop_assert_eq!(a.validator_trust[i], b.validator_trust[k]);
            prop_assert_eq!(a.dividends[i], b.dividends[k]);
            prop_assert_eq!(&a.new_bonds[i], &b.new_bonds[k]);
            prop_assert!(a.validator_emission[i].abs_diff(b.validator_emission[k]) <= 1);
        }
    }

    /// The fixed-point epoch agrees with the dense f64 reference.
    #[test]
    fn matches_f64_reference(
        kappa in 0u32..=1_000_000,
        alpha in 0u32..=1_000_000,
        max_v in 1usize..=10,
        mut input in market(),
        emission in 0u64..1_000_000_000_000_000,
    ) {
        input.emission = emission;
        let p = YumaParams { kappa_ppm: kappa, bond_alpha_ppm: alpha, max_validators: max_v, ..YumaParams::default() };
        let out = epoch(&p, &input).unwrap();
        let r = reference_epoch(
            &ref_params(&p),
            input.n_providers,
            &input.stakes,
            &input.active,
            &input.weights,
            &input.prev_bonds,
            input.emission,
        );
        prop_assert_eq!(&out.validator_permit, &r.permit);
        assert_close("consensus", &fracs(&out.consensus), &r.consensus, 1e-8);
        assert_close("trust", &fracs(&out.validator_trust), &r.trust, 1e-8);
        assert_close("incentive", &fracs(&out.incentive), &r.incentive, 1e-6);
        assert_close("dividends", &fracs(&out.dividends), &r.dividends, 1e-6);
        for (got, want) in dense(&out.new_bonds, input.n_providers).iter().zip(&r.bonds) {
            assert_close("bonds", got, want, 1e-6);
        }
        let tol = 2.0 + emission as f64 * 1e-6;
        prop_assert!((out.owner_emission as f64 - r.owner).abs() <= tol);
        for (g, w) in out.provider_emission.iter().zip(&r.provider_emission) {
            prop_assert!((*g as f64 - w).abs() <= tol, "provider {} vs {}", g, w);
        }
        for (g, w) in out.validator_emission.iter().zip(&r.validator_emission) {
            prop_assert!((*g as f64 - w).abs() <= tol, "validator {} vs {}", g, w);
        }
    }
}
