//! Statistical check for jobs that cannot be replayed token for token (an
//! upstream server samples with its own RNG): were the output tokens a
//! plausible sample from the claimed model?
//!
//! For each position the model's sampling distribution `p` (penalties,
//! temperature and top-p as the job asked; temperature 1 for greedy jobs)
//! gives the claimed token's surprisal `s = −ln p(y)` (capped at
//! [`SURPRISAL_CAP`]), whose expectation under honest sampling is the
//! entropy `H(p)` and whose variance is `Var(−ln p)`. Summed over the
//! output, `z = Σ(s − H) / √(Σ Var + n·VARIANCE_FLOOR)` is near 0 or below
//! for honest output (greedy output is *more* likely than a sample) and
//! grows with the KL divergence of whatever really produced the tokens.

use std::collections::HashMap;

use agora_engine::logits::penalised;
use agora_types::SamplingParams;
use serde::{Deserialize, Serialize};

/// Most surprisal one token contributes, in nats: a token the model rules
/// out (or a re-tokenization artifact) weighs like a very unlikely one, not
/// like an infinite one.
pub const SURPRISAL_CAP: f64 = 10.0;
/// Variance added per token, so near-deterministic positions cannot turn a
/// rounding-sized excess into a huge z.
pub const VARIANCE_FLOOR: f64 = 0.05;
/// Largest `z` a job may show and still pass.
pub const MAX_PLAUSIBILITY_Z: f64 = 4.0;
/// Temperatures below this are greedy decoding.
const GREEDY_BELOW: f32 = 0.05;

/// How plausible the output tokens are as a sample from the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plausibility {
    /// Tokens scored.
    pub tokens: u32,
    /// Mean surprisal in excess of the entropy, in nats per token.
    pub mean_excess: f64,
    /// The standardized excess (see the module docs).
    pub z: f64,
}

/// Score `output` against `logits[i]` (the raw logits that predicted `output[i]`).
pub fn plausibility(logits: &[&[f32]], output: &[i32], params: &SamplingParams) -> Plausibility {
    let greedy = params.temperature < GREEDY_BELOW;
    let temperature = if greedy {
        1.0
    } else {
        f64::from(params.temperature)
    };
    let top_p = if greedy { 1.0 } else { f64::from(params.top_p) };
    let mut counts: HashMap<i32, u32> = HashMap::new();
    let (mut excess, mut variance, mut n) = (0.0, 0.0, 0u32);
    for (&raw, &token) in logits.iter().zip(output) {
        let l = penalised(raw, &counts, params);
        let dist = distribution(&l, temperature, top_p);
        let p = usize::try_from(token)
            .ok()
            .and_then(|i| dist.get(i))
            .copied()
            .unwrap_or(0.0);
        let s = if p > 0.0 {
            (-p.ln()).min(SURPRISAL_CAP)
        } else {
            SURPRISAL_CAP
        };
        let (h, v) = entropy_and_variance(&dist);
        excess += s - h;
        variance += v;
        n += 1;
        *counts.entry(token).or_default() += 1;
    }
    if n == 0 {
        return Plausibility::default();
    }
    let spread = (variance + f64::from(n) * VARIANCE_FLOOR).sqrt();
    Plausibility {
        tokens: n,
        mean_excess: excess / f64::from(n),
        z: excess / spread,
    }
}

/// `softmax(logits / temperature)` restricted to its top-`top_p` nucleus and renormalized.
fn distribution(logits: &[f32], temperature: f64, top_p: f64) -> Vec<f64> {
    let max = logits
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return vec![0.0; logits.len()];
    }
    let mut p: Vec<f64> = logits
        .iter()
        .map(|&l| {
            if l.is_finite() {
                ((f64::from(l) - f64::from(max)) / temperature).exp()
            } else {
                0.0
            }
        })
        .collect();
    let sum: f64 = p.iter().sum();
    p.iter_mut().for_each(|x| *x /= sum);
    if top_p < 1.0 {
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let mut kept = 0.0;
        let mut cut = order.len();
        for (rank, &i) in order.iter().enumerate() {
            kept += p[i];
            if kept >= top_p {
                cut = rank + 1;
                break;
            }
        }
        for &i in &order[cut..] {
            p[i] = 0.0;
        }
        p.iter_mut().for_each(|x| *x /= kept);
    }
    p
}

/// Entropy `H = E[−ln p]` and `Var(−ln p)` of a distribution.
fn entropy_and_variance(p: &[f64]) -> (f64, f64) {
    let (mut h, mut second) = (0.0, 0.0);
    for &x in p.iter().filter(|&&x| x > 0.0) {
        let s = -x.ln();
        h += x * s;
        second += x * s * s;
    }
    (h, (second - h * h).max(0.0))
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    fn params(t: f32, top_p: f32) -> SamplingParams {
        SamplingParams::new(64, t, top_p, vec![], 1)
    }

    /// 64 positions over a 200-token vocabulary with varied, peaked logits.
    fn rows(seed: u64) -> Vec<Vec<f32>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..64)
            .map(|_| (0..200).map(|_| rng.gen_range(0.0f32..6.0)).collect())
            .collect()
    }

    /// Sample one token per row from `distribution(row)` with an independent RNG.
    fn sample(rows: &[Vec<f32>], p: &SamplingParams, seed: u64) -> Vec<i32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let t = if p.temperature < GREEDY_BELOW {
            1.0
        } else {
            f64::from(p.temperature)
        };
        rows.iter()
            .map(|row| {
                let dist = distribution(row, t, f64::from(p.top_p));
                if p.temperature < GREEDY_BELOW {
                    return (0..dist.len())
                        .max_by(|&a, &b| dist[a].total_cmp(&dist[b]))
                        .unwrap() as i32;
                }
                let mut u: f64 = rng.gen();
                for (i, &x) in dist.iter().enumerate() {
                    u -= x;
                    if u <= 0.0 {
                        return i as i32;
                    }
                }
                (dist.len() - 1) as i32
            })
            .collect()
    }

    fn score(rows: &[Vec<f32>], out: &[i32], p: &SamplingParams) -> Plausibility {
        let views: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        plausibility(&views, out, p)
    }

    #[test]
    fn honest_samples_from_another_rng_pass_in_every_mode() {
        let rows = rows(1);
        for p in [
            params(0.0, 1.0),
            params(0.7, 1.0),
            params(1.0, 0.9),
            params(1.3, 1.0),
        ] {
            for seed in 0..50 {
                let out = sample(&rows, &p, seed);
                let s = score(&rows, &out, &p);
                assert_eq!(s.tokens, 64);
                assert!(
                    s.z <= MAX_PLAUSIBILITY_Z,
                    "honest output flagged: {p:?} seed {seed} {s:?}"
                );
            }
        }
    }

    #[test]
    fn another_models_tokens_and_random_tokens_fail() {
        let (claimed, other) = (rows(1), rows(2));
        let p = params(0.8, 1.0);
        for seed in 0..20 {
            // Sampled from a different model (other logits), scored under the claimed one.
            let out = sample(&other, &p, seed);
            let s = score(&claimed, &out, &p);
            assert!(s.z > MAX_PLAUSIBILITY_Z, "another model passed: {s:?}");
            // Uniformly random tokens.
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let noise: Vec<i32> = (0..64).map(|_| rng.gen_range(0..200)).collect();
            assert!(score(&claimed, &noise, &p).z > MAX_PLAUSIBILITY_Z);
        }
        // Greedy output of another model is caught too.
        let g = params(0.0, 1.0);
        let s = score(&claimed, &sample(&other, &g, 0), &g);
        assert!(s.z > MAX_PLAUSIBILITY_Z, "{s:?}");
    }

    #[test]
    fn out_of_range_tokens_and_empty_output_are_handled() {
        let rows = rows(3);
        let p = params(0.8, 1.0);
        let s = score(&rows, &[-1; 64], &p);
        assert!(s.z > MAX_PLAUSIBILITY_Z && s.mean_excess > 0.0, "{s:?}");
        assert_eq!(score(&rows, &[], &p), Plausibility::default());
        // A token excluded by top-p counts as the cap, not infinity.
        let tight = params(0.8, 0.1);
        let s = score(&rows[..1], &[-5], &tight);
        assert!(s.z.is_finite());
    }
}
