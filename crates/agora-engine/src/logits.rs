//! Deterministic transformations of a position's logits: OpenAI's presence
//! and frequency penalties, and log-probabilities for `logprobs`.

use std::collections::HashMap;

use agora_types::{SamplingParams, TokenLogprob, TopLogprob};

/// Most alternatives a job may ask for per token (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: u8 = 20;

/// `logits` with penalties applied for the tokens generated so far
/// (`counts`: token id → times generated). Borrowed unchanged when no penalty applies.
pub fn penalised<'a>(
    logits: &'a [f32],
    counts: &HashMap<i32, u32>,
    params: &SamplingParams,
) -> std::borrow::Cow<'a, [f32]> {
    if (params.presence_penalty == 0.0 && params.frequency_penalty == 0.0) || counts.is_empty() {
        return std::borrow::Cow::Borrowed(logits);
    }
    let mut out = logits.to_vec();
    for (&token, &n) in counts {
        if let Some(l) = usize::try_from(token).ok().and_then(|i| out.get_mut(i)) {
            *l -= params.presence_penalty + params.frequency_penalty * n as f32;
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Log-probability of `chosen` and the `top` most likely tokens under
/// `softmax(logits)`; `piece` gives a token's bytes.
pub fn logprobs(
    logits: &[f32],
    chosen: usize,
    top: usize,
    piece: impl Fn(i32) -> Vec<u8>,
) -> TokenLogprob {
    let max = logits
        .iter()
        .copied()
        .filter(|l| l.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits
        .iter()
        .filter(|l| l.is_finite())
        .map(|&l| f64::from(l - max).exp())
        .sum();
    let log_z = f64::from(max) + sum.ln();
    let entry = |i: usize| {
        let bytes = piece(i as i32);
        TopLogprob {
            token_id: i as i32,
            token: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
            logprob: (f64::from(logits[i]) - log_z) as f32,
        }
    };
    let mut ids: Vec<usize> = (0..logits.len())
        .filter(|&i| logits[i].is_finite())
        .collect();
    let order = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let k = top.min(ids.len());
    if k > 0 && k < ids.len() {
        ids.select_nth_unstable_by(k - 1, order);
    }
    ids.truncate(k);
    ids.sort_unstable_by(order);
    TokenLogprob {
        chosen: entry(chosen),
        top: ids.into_iter().map(entry).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn penalties_lower_seen_tokens_only() {
        let mut p = SamplingParams::new(1, 1.0, 1.0, vec![], 0);
        p.presence_penalty = 0.5;
        p.frequency_penalty = 0.25;
        let counts = HashMap::from([(1, 2u32), (9, 1)]);
        let out = penalised(&[1.0, 1.0, 1.0], &counts, &p);
        assert_eq!(&*out, &[1.0, 0.0, 1.0]);
        p.presence_penalty = 0.0;
        p.frequency_penalty = 0.0;
        assert!(matches!(
            penalised(&[1.0], &counts, &p),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn logprobs_are_normalised_and_ranked() {
        let logits = [0.0f32, 2f32.ln(), 5f32.ln(), f32::NEG_INFINITY];
        let lp = logprobs(&logits, 1, 2, |t| vec![b'a' + t as u8]);
        assert!((lp.chosen.logprob - 0.25f32.ln()).abs() < 1e-6);
        assert_eq!(lp.chosen.token, "b");
        let ids: Vec<i32> = lp.top.iter().map(|t| t.token_id).collect();
        assert_eq!(ids, [2, 1]);
        assert!((lp.top[0].logprob - 0.625f32.ln()).abs() < 1e-6);
    }
}
