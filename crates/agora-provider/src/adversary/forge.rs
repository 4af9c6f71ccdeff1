//! Forged output: tampered and random token sequences, and the text a client
//! sees for them (decoded exactly as the real engine streams, with its own
//! [`agora_engine::text`]).

use agora_engine::text::{Piece, Rendered};
use agora_engine::Tokenizer;
use rand::Rng;

use super::TAMPER_EVERY;

/// A uniformly random ordinary text token (never a control or end token).
/// `is_text` must accept some id in `0..vocab_size`.
pub(crate) fn random_token(
    vocab_size: usize,
    is_text: impl Fn(i32) -> bool,
    rng: &mut impl Rng,
) -> i32 {
    let n = i32::try_from(vocab_size).unwrap_or(i32::MAX).max(1);
    loop {
        let id = rng.gen_range(0..n);
        if is_text(id) {
            return id;
        }
    }
}

/// Replace every [`TAMPER_EVERY`]-th token (or the last one of a shorter
/// output) by a different random text token; returns how many were replaced.
pub(crate) fn tamper(
    tokens: &mut [i32],
    vocab_size: usize,
    is_text: impl Fn(i32) -> bool,
    rng: &mut impl Rng,
) -> usize {
    let mut positions: Vec<usize> = (TAMPER_EVERY - 1..tokens.len())
        .step_by(TAMPER_EVERY)
        .collect();
    if positions.is_empty() && !tokens.is_empty() {
        positions.push(tokens.len() - 1);
    }
    for &i in &positions {
        let original = tokens[i];
        tokens[i] = loop {
            let t = random_token(vocab_size, &is_text, rng);
            if t != original {
                break t;
            }
        };
    }
    positions.len()
}

/// Decode `tokens` with `tokenizer` as the engine streams them under `stops`
/// (the engine's own [`agora_engine::text::render`]).
pub(crate) fn render(tokenizer: &Tokenizer, tokens: &[i32], stops: &[String]) -> Rendered {
    let pieces = tokens
        .iter()
        .map(|&t| tokenizer.token_piece(t).unwrap_or(Piece::End));
    agora_engine::text::render(pieces, stops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn tamper_changes_exactly_the_chosen_positions(
            tokens in proptest::collection::vec(0i32..50, 0..40),
            seed in any::<u64>(),
        ) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let is_text = |t: i32| t % 5 != 0;
            let mut forged = tokens.clone();
            let n = tamper(&mut forged, 50, is_text, &mut rng);
            let changed: Vec<usize> = (0..tokens.len()).filter(|&i| forged[i] != tokens[i]).collect();
            prop_assert_eq!(changed.len(), n);
            if tokens.len() >= TAMPER_EVERY {
                prop_assert!(changed.iter().all(|i| i % TAMPER_EVERY == TAMPER_EVERY - 1));
                prop_assert_eq!(n, tokens.len() / TAMPER_EVERY);
            } else if !tokens.is_empty() {
                prop_assert_eq!(changed, vec![tokens.len() - 1]);
            }
            for i in 0..tokens.len() {
                if forged[i] != tokens[i] {
                    prop_assert!(is_text(forged[i]) && (0..50).contains(&forged[i]));
                }
            }
        }
    }
}
