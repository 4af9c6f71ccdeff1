//! A straightforward dense f64 Yuma epoch, written from the formulas in
//! docs/protocol.md without the crate's code: the independent reference
//! the scenario and property tests (and the bench) compare against.

#![allow(dead_code)]

/// Parameters as plain fractions.
#[derive(Clone, Copy, Debug)]
pub struct RefParams {
    pub kappa: f64,
    pub alpha: f64,
    pub penalty: f64,
    pub owner_cut: f64,
    pub validator_share: f64,
    pub max_validators: usize,
    pub min_stake: u64,
}

impl Default for RefParams {
    fn default() -> Self {
        Self {
            kappa: 0.5,
            alpha: 0.1,
            penalty: 1.0,
            owner_cut: 0.18,
            validator_share: 0.5,
            max_validators: 128,
            min_stake: 0,
        }
    }
}

/// Reference outputs, dense.
#[derive(Clone, Debug)]
pub struct RefOut {
    pub permit: Vec<bool>,
    pub weights: Vec<Vec<f64>>,
    pub consensus: Vec<f64>,
    pub clipped: Vec<Vec<f64>>,
    pub trust: Vec<f64>,
    pub incentive: Vec<f64>,
    pub bonds: Vec<Vec<f64>>,
    pub dividends: Vec<f64>,
    pub owner: f64,
    pub provider_emission: Vec<f64>,
    pub validator_emission: Vec<f64>,
}

fn normalized(x: &[f64]) -> Vec<f64> {
    let s: f64 = x.iter().sum();
    if s > 0.0 {
        x.iter().map(|v| v / s).collect()
    } else {
        vec![0.0; x.len()]
    }
}

fn col_normalized(m: &[Vec<f64>], n_p: usize) -> Vec<Vec<f64>> {
    let mut out = m.to_vec();
    for j in 0..n_p {
        let s: f64 = m.iter().map(|r| r[j]).sum();
        for r in out.iter_mut() {
            r[j] = if s > 0.0 { r[j] / s } else { 0.0 };
        }
    }
    out
}

/// One epoch, dense, in f64. `prev_bonds` may be empty.
#[allow(clippy::too_many_arguments)]
pub fn reference_epoch(
    p: &RefParams,
    n_p: usize,
    stakes: &[u64],
    active: &[bool],
    weights: &[Vec<(u16, u16)>],
    prev_bonds: &[Vec<(u16, u64)>],
    emission: u64,
) -> RefOut {
    let n_v = stakes.len();
    let filtered: Vec<u64> = stakes
        .iter()
        .map(|&s| if s < p.min_stake { 0 } else { s })
        .collect();
    // Permits: the max_validators largest non-zero stakes, ties to lower index.
    let mut permit = vec![false; n_v];
    for (i, pi) in permit.iter_mut().enumerate() {
        if filtered[i] == 0 {
            continue;
        }
        let better = (0..n_v)
            .filter(|&k| filtered[k] > filtered[i] || (filtered[k] == filtered[i] && k < i))
            .count();
        *pi = better < p.max_validators;
    }
    let active_raw: Vec<u64> = (0..n_v)
        .map(|i| {
            if permit[i] && active[i] {
                filtered[i]
            } else {
                0
            }
        })
        .collect();
    let total: u64 = active_raw.iter().sum();
    let s: Vec<f64> = normalized(&active_raw.iter().map(|&x| x as f64).collect::<Vec<_>>());

    // Row-normalised dense weights of permitted validators.
    let mut w = vec![vec![0.0; n_p]; n_v];
    for i in 0..n_v {
        if !permit[i] {
            continue;
        }
        let sum: f64 = weights[i].iter().map(|&(_, v)| v as f64).sum();
        for &(j, v) in &weights[i] {
            if sum > 0.0 {
                w[i][j as usize] = v as f64 / sum;
            }
        }
    }

    // Consensus: the largest weight x whose supporters (weight >= x) hold at
    // least kappa of the active stake, checked candidate by candidate.
    let mut consensus = vec![0.0; n_p];
    for (j, cj) in consensus.iter_mut().enumerate() {
        for i in 0..n_v {
            let x = w[i][j];
            if active_raw[i] == 0 || x <= *cj {
                continue;
            }
            let support: u64 = (0..n_v)
                .filter(|&k| w[k][j] >= x)
                .map(|k| active_raw[k])
                .sum();
            // Integer comparison, as the protocol states it: support ≥ κ·total.
            let kappa_ppm = (p.kappa * 1e6).round() as u128;
            if total > 0 && support as u128 * 1_000_000 >= kappa_ppm * total as u128 {
                *cj = x;
            }
        }
    }

    let clipped: Vec<Vec<f64>> = w
        .iter()
        .map(|r| r.iter().zip(&consensus).map(|(a, b)| a.min(*b)).collect())
        .collect();
    let trust: Vec<f64> = clipped.iter().map(|r| r.iter().sum()).collect();
    let ranks: Vec<f64> = (0..n_p)
        .map(|j| (0..n_v).map(|i| clipped[i][j] * s[i]).sum())
        .collect();
    let incentive = normalized(&ranks);

    let delta: Vec<Vec<f64>> = (0..n_v)
        .map(|i| {
            (0..n_p)
                .map(|j| (p.penalty * clipped[i][j] + (1.0 - p.penalty) * w[i][j]) * s[i])
                .collect()
        })
        .collect();
    let delta = col_normalized(&delta, n_p);
    let mut prev = vec![vec![0.0; n_p]; n_v];
    for (i, row) in prev_bonds.iter().enumerate() {
        if !permit[i] {
            continue;
        }
        for &(j, b) in row {
            prev[i][j as usize] = b as f64;
        }
    }
    let prev = col_normalized(&prev, n_p);
    let ema: Vec<Vec<f64>> = (0..n_v)
        .map(|i| {
            (0..n_p)
                .map(|j| p.alpha * delta[i][j] + (1.0 - p.alpha) * prev[i][j])
                .collect()
        })
        .collect();
    let bonds = col_normalized(&ema, n_p);
    let dividends = normalized(
        &(0..n_v)
            .map(|i| (0..n_p).map(|j| bonds[i][j] * incentive[j]).sum())
            .collect::<Vec<f64>>(),
    );

    // Emission: owner cut (floored as the protocol does), then the split.
    let e = emission as f64;
    let mut owner = (emission as u128 * (p.owner_cut * 1e6).round() as u128 / 1_000_000) as f64;
    let rest = e - owner;
    let mut vpool = (rest * p.validator_share).floor();
    let ppool = rest - vpool;
    let inc_sum: f64 = incentive.iter().sum();
    let provider_emission: Vec<f64> = if inc_sum > 0.0 {
        incentive.iter().map(|x| x * ppool).collect()
    } else {
        vpool += ppool;
        vec![0.0; n_p]
    };
    let permitted: Vec<f64> = (0..n_v)
        .map(|i| if permit[i] { filtered[i] as f64 } else { 0.0 })
        .collect();
    let basis = [
        dividends.clone(),
        normalized(&active_raw.iter().map(|&x| x as f64).collect::<Vec<_>>()),
        normalized(&permitted),
    ]
    .into_iter()
    .find(|b| b.iter().any(|&x| x > 0.0));
    let validator_emission: Vec<f64> = match basis {
        Some(b) => b.iter().map(|x| x * vpool).collect(),
        None => {
            owner += vpool;
            vec![0.0; n_v]
        }
    };
    RefOut {
        permit,
        weights: w,
        consensus,
        clipped,
        trust,
        incentive,
        bonds,
        dividends,
        owner,
        provider_emission,
        validator_emission,
    }
}
