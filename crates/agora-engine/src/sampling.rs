//! Replayable sampling: a pure function of (logits, parameters, position).
//!
//! Randomness comes from a counter-based RNG: ChaCha8 keyed by the job's seed,
//! with the stream number `(choice << 32) | position`, so the uniform draw for
//! vocabulary entry `i` at generated position `p` is word `i` of that stream.
//! Sampling is Gumbel-max over the nucleus: the chosen token is
//! `argmax_i (logit_i / T + g_i)` with `g_i = -ln(-ln(u_i))`, which draws from
//! `softmax(logits / T)` restricted to the top-p set. A verifier holding the
//! logits replays the choice exactly, independent of threads or batch size.

use agora_types::SamplingParams;
use rand::RngCore;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Temperatures at or below this are treated as greedy decoding.
pub const GREEDY_BELOW: f32 = 1e-5;

/// Pick the next token id from `logits` for generated position `position`
/// of choice `choice` (0 unless several completions are requested).
///
/// Ties in greedy decoding go to the lowest token id. Returns `None` only
/// when no token has a finite logit.
pub fn sample(
    logits: &[f32],
    params: &SamplingParams,
    position: u32,
    choice: u32,
) -> Option<usize> {
    if params.temperature <= GREEDY_BELOW {
        return argmax(logits);
    }
    best_gumbel(logits, params, position, choice).map(|(i, _)| i)
}

/// What replaying one claimed token shows (Token-DiFR style).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Replayed {
    /// The token [`sample`] picks from these logits.
    pub sampled: Option<usize>,
    /// How far the claimed token's score falls short of the winner's: the
    /// Gumbel-max score `logit / T + g` for sampled jobs, the raw logit for
    /// greedy ones. 0 when the claimed token is the one sampled (or a tie),
    /// small for near-ties, infinite for a token that is no valid id.
    pub margin: f64,
}

/// Replay generated position `position` of choice `choice` against a claimed token.
pub fn replay(
    logits: &[f32],
    params: &SamplingParams,
    position: u32,
    choice: u32,
    claimed: usize,
) -> Replayed {
    let sampled = sample(logits, params, position, choice);
    let claimed_logit = match logits.get(claimed) {
        Some(l) if l.is_finite() => f64::from(*l),
        _ => {
            return Replayed {
                sampled,
                margin: f64::INFINITY,
            }
        }
    };
    let margin = if params.temperature <= GREEDY_BELOW {
        sampled.map_or(0.0, |i| f64::from(logits[i]) - claimed_logit)
    } else {
        let inv_t = 1.0 / f64::from(params.temperature);
        let best = best_gumbel(logits, params, position, choice).map_or(0.0, |(_, s)| s);
        let mut rng = stream(params, position, choice);
        rng.set_word_pos(claimed as u128);
        best - (claimed_logit * inv_t + gumbel(rng.next_u32()))
    };
    Replayed {
        sampled,
        margin: margin.max(0.0),
    }
}

/// The RNG stream of one (seed, choice, position).
fn stream(params: &SamplingParams, position: u32, choice: u32) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
    rng.set_stream((u64::from(choice) << 32) | u64::from(position));
    rng
}

/// Gumbel-max over the nucleus: the winning token and its score.
fn best_gumbel(
    logits: &[f32],
    params: &SamplingParams,
    position: u32,
    choice: u32,
) -> Option<(usize, f64)> {
    let inv_t = 1.0 / f64::from(params.temperature);
    let keep = nucleus(logits, inv_t, params.top_p);
    let mut rng = stream(params, position, choice);
    let mut best: Option<(usize, f64)> = None;
    let mut next_word = 0usize;
    for &i in &keep {
        // Words are consumed in vocabulary order; skip the ones of dropped tokens.
        if i > next_word {
            rng.set_word_pos(i as u128);
        }
        let word = rng.next_u32();
        next_word = i + 1;
        let score = f64::from(logits[i]) * inv_t + gumbel(word);
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((i, score));
        }
    }
    best
}

/// Standard Gumbel noise from one uniform 32-bit word, never infinite.
fn gumbel(word: u32) -> f64 {
    let u = (f64::from(word) + 0.5) / 4_294_967_296.0;
    -(-u.ln()).ln()
}

/// Index of the largest finite logit, lowest index on ties.
fn argmax(logits: &[f32]) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l.is_finite() && best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i)
}

/// Token ids in the smallest set, by descending probability (ties: lower id
/// first), whose mass reaches `top_p`, returned in ascending id order.
/// With `top_p >= 1` every finite logit is kept.
fn nucleus(logits: &[f32], inv_t: f64, top_p: f32) -> Vec<usize> {
    let finite = || {
        logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, _)| i)
    };
    if top_p >= 1.0 {
        return finite().collect();
    }
    let Some(max) = argmax(logits).map(|i| f64::from(logits[i]) * inv_t) else {
        return Vec::new();
    };
    let weight = |i: usize| (f64::from(logits[i]) * inv_t - max).exp();
    let total: f64 = finite().map(weight).sum();
    let target = f64::from(top_p.max(0.0)) * total;
    // Order: higher logit first, then lower id. Sorting only a growing head of
    // the vocabulary keeps this cheap for peaked distributions.
    let order = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let mut ids: Vec<usize> = finite().collect();
    let mut head = 64.min(ids.len());
    loop {
        if head < ids.len() {
            ids.select_nth_unstable_by(head - 1, order);
        }
        ids[..head].sort_unstable_by(order);
        let mut mass = 0.0;
        for (n, &i) in ids[..head].iter().enumerate() {
            mass += weight(i);
            if mass >= target {
                let mut kept = ids[..=n].to_vec();
                kept.sort_unstable();
                return kept;
            }
        }
        if head == ids.len() {
            ids.sort_unstable();
            return ids;
        }
        head = (head * 4).min(ids.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(temperature: f32, top_p: f32, seed: u64) -> SamplingParams {
        SamplingParams::new(1, temperature, top_p, vec![], seed)
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        let logits = [0.5, 2.0, -1.0, 2.0];
        assert_eq!(sample(&logits, &params(0.0, 1.0, 1), 0, 0), Some(1));
        assert_eq!(
            sample(&[f32::NEG_INFINITY], &params(0.0, 1.0, 1), 0, 0),
            None
        );
    }

    #[test]
    fn frequencies_follow_the_softmax() {
        // logits ln(1), ln(2), ln(5): probabilities 0.125, 0.25, 0.625.
        let logits = [0.0f32, 2f32.ln(), 5f32.ln(), f32::NEG_INFINITY];
        let mut counts = [0u32; 4];
        let n = 20_000;
        for pos in 0..n {
            counts[sample(&logits, &params(1.0, 1.0, 42), pos, 0).unwrap()] += 1;
        }
        let expect = [0.125, 0.25, 0.625, 0.0];
        for (c, e) in counts.iter().zip(expect) {
            let f = f64::from(*c) / f64::from(n);
            assert!((f - e).abs() < 0.015, "counts {counts:?}");
        }
    }

    #[test]
    fn top_p_drops_the_tail() {
        // Probabilities 0.625, 0.25, 0.125: top_p 0.8 keeps the first two only.
        let logits = [5f32.ln(), 2f32.ln(), 0.0];
        for pos in 0..2_000 {
            let t = sample(&logits, &params(1.0, 0.8, 3), pos, 0).unwrap();
            assert_ne!(t, 2);
        }
        assert_eq!(nucleus(&logits, 1.0, 0.5), vec![0]);
        assert_eq!(nucleus(&logits, 1.0, 0.9), vec![0, 1, 2]);
    }

    #[test]
    fn choices_and_positions_use_independent_streams() {
        let logits = vec![0.0f32; 1000];
        let p = params(1.0, 1.0, 9);
        let a: Vec<_> = (0..32).map(|pos| sample(&logits, &p, pos, 0)).collect();
        let b: Vec<_> = (0..32).map(|pos| sample(&logits, &p, pos, 1)).collect();
        assert_ne!(a, b);
        let c: Vec<_> = (0..32)
            .map(|pos| sample(&logits, &params(1.0, 1.0, 10), pos, 0))
            .collect();
        assert_ne!(a, c);
    }

    #[test]
    fn replay_margin_is_zero_for_the_sampled_token_only() {
        let logits = [1.0f32, 3.0, 2.9, -1.0];
        let greedy = params(0.0, 1.0, 1);
        assert_eq!(replay(&logits, &greedy, 0, 0, 1).margin, 0.0);
        assert!((replay(&logits, &greedy, 0, 0, 2).margin - 0.1).abs() < 1e-6);
        assert_eq!(replay(&logits, &greedy, 0, 0, 9).margin, f64::INFINITY);
        let p = params(0.8, 1.0, 3);
        for pos in 0..50 {
            let r = replay(&logits, &p, pos, 0, 0);
            let chosen = r.sampled.unwrap();
            assert_eq!(replay(&logits, &p, pos, 0, chosen).margin, 0.0);
            assert_eq!(r.margin == 0.0, chosen == 0);
        }
    }

    proptest! {
        #[test]
        fn sampling_is_a_pure_function(
            logits in prop::collection::vec(-20.0f32..20.0, 1..300),
            seed: u64, position: u32, temperature in 0.05f32..2.0, top_p in 0.05f32..=1.0,
        ) {
            let p = params(temperature, top_p, seed);
            let first = sample(&logits, &p, position, 0);
            prop_assert_eq!(first, sample(&logits, &p, position, 0));
            let chosen = first.unwrap();
            prop_assert!(chosen < logits.len());
            prop_assert!(nucleus(&logits, 1.0 / f64::from(temperature), top_p).contains(&chosen));
        }

        #[test]
        fn nucleus_reaches_its_mass_and_keeps_the_best(
            logits in prop::collection::vec(-10.0f32..10.0, 1..500), top_p in 0.01f32..1.0,
        ) {
            let kept = nucleus(&logits, 1.0, top_p);
            let max = logits.iter().cloned().fold(f32::MIN, f32::max);
            let w = |l: f32| f64::from(l - max).exp();
            let total: f64 = logits.iter().map(|&l| w(l)).sum();
            let mass: f64 = kept.iter().map(|&i| w(logits[i])).sum();
            prop_assert!(mass >= f64::from(top_p) * total * (1.0 - 1e-9));
            let worst_kept = kept.iter().map(|&i| logits[i]).fold(f32::MAX, f32::min);
            for (i, &l) in logits.iter().enumerate() {
                if !kept.contains(&i) {
                    prop_assert!(l <= worst_kept);
                }
            }
        }
    }
}
