//! Token-DiFR style replay: regenerate every output token from the prefill
//! logits with the job's seeded Gumbel-max sampling (the engine's own
//! `sampling` and `logits` code, so there is one implementation) and measure
//! how far each claimed token is from what the replay picks.

use std::collections::HashMap;

use agora_engine::logits::penalised;
use agora_engine::sampling::replay;
use agora_grammar::Guide;
use agora_types::SamplingParams;
use serde::{Deserialize, Serialize};

/// Margins above this count as this much in the mean, so one absurd token
/// cannot hide how the rest of the job looks.
pub const MARGIN_CAP: f64 = 10.0;

/// How well the claimed tokens replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenStats {
    /// Tokens replayed.
    pub checked: u32,
    /// Tokens the replay reproduced exactly.
    pub matched: u32,
    /// `matched / checked` (1 when nothing was checked).
    pub match_rate: f64,
    /// Mean replay margin, each capped at [`MARGIN_CAP`].
    pub mean_margin: f64,
    /// Largest replay margin (uncapped).
    pub max_margin: f64,
}

/// Replay `output` against `logits[i]` (the raw model logits that predicted
/// `output[i]`). A constrained job's `guide` masks each position as the
/// engine's did; a claimed token the constraint forbids replays with an
/// infinite margin, and the positions after it are replayed unmasked.
pub fn replay_tokens(
    logits: &[&[f32]],
    output: &[i32],
    params: &SamplingParams,
    mut guide: Option<Guide>,
) -> TokenStats {
    let mut counts: HashMap<i32, u32> = HashMap::new();
    let mut stats = TokenStats::default();
    let mut margin_sum = 0.0;
    for (i, (&raw, &token)) in logits.iter().zip(output).enumerate() {
        let mut l = penalised(raw, &counts, params);
        if let Some(g) = &guide {
            g.mask(l.to_mut());
        }
        if let Some(g) = guide.as_mut() {
            if g.advance(u32::try_from(token).unwrap_or(u32::MAX)).is_err() {
                guide = None;
            }
        }
        let claimed = usize::try_from(token).unwrap_or(usize::MAX);
        let position = u32::try_from(i).unwrap_or(u32::MAX);
        let r = replay(&l, params, position, params.choice, claimed);
        stats.checked += 1;
        if r.sampled == Some(claimed) {
            stats.matched += 1;
        }
        margin_sum += r.margin.min(MARGIN_CAP);
        stats.max_margin = stats.max_margin.max(r.margin);
        *counts.entry(token).or_default() += 1;
    }
    stats.match_rate = if stats.checked == 0 {
        1.0
    } else {
        f64::from(stats.matched) / f64::from(stats.checked)
    };
    if stats.checked > 0 {
        stats.mean_margin = margin_sum / f64::from(stats.checked);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(t: f32, seed: u64) -> SamplingParams {
        SamplingParams::new(16, t, 1.0, vec![], seed)
    }

    /// Generate `n` tokens the way the engine does, from fixed logits.
    fn generate(rows: &[Vec<f32>], p: &SamplingParams) -> Vec<i32> {
        let mut counts = HashMap::new();
        let mut out = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let l = penalised(row, &counts, p);
            let t = agora_engine::sampling::sample(&l, p, i as u32, p.choice).unwrap() as i32;
            *counts.entry(t).or_default() += 1;
            out.push(t);
        }
        out
    }

    fn rows() -> Vec<Vec<f32>> {
        (0..24)
            .map(|i| {
                (0..50)
                    .map(|j| ((i * 7 + j * 13) % 17) as f32 * 0.3)
                    .collect()
            })
            .collect()
    }

    #[test]
    fn honest_tokens_replay_exactly_and_tampering_shows() {
        let rows = rows();
        let views: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        for mut p in [params(0.0, 1), params(0.9, 7)] {
            p.frequency_penalty = 0.5;
            let out = generate(&rows, &p);
            let s = replay_tokens(&views, &out, &p, None);
            assert_eq!((s.checked, s.matched, s.max_margin), (24, 24, 0.0));
            let mut bad = out.clone();
            bad[3] = (bad[3] + 1) % 50;
            let s = replay_tokens(&views, &bad, &p, None);
            assert!(s.matched < 24 && s.max_margin > 0.0, "{s:?}");
        }
        let p = params(0.9, 7);
        let other_seed = generate(&rows, &params(0.9, 8));
        let s = replay_tokens(&views, &other_seed, &p, None);
        assert!(s.match_rate < 0.9, "{s:?}");
    }
}
