//! Forged output: tampered and random token sequences, and the text a client
//! sees for them (decoded exactly as the real engine streams: whole UTF-8
//! characters, cut before any stop string).

use agora_engine::stop::{StopMatcher, Utf8Stream};
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

/// What a client would see for a token sequence.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rendered {
    /// The visible text.
    pub text: String,
    /// Tokens generated before a stop string ended the job (all of them if none did).
    pub kept: usize,
    /// A stop string ended the job.
    pub stopped: bool,
}

/// Decode `tokens` with `tokenizer` as the engine streams them under `stops`.
pub(crate) fn render(tokenizer: &Tokenizer, tokens: &[i32], stops: &[String]) -> Rendered {
    render_pieces(tokens.iter().map(|&t| tokenizer.piece(t)), stops)
}

fn render_pieces(pieces: impl Iterator<Item = Vec<u8>>, stops: &[String]) -> Rendered {
    let mut utf8 = Utf8Stream::default();
    let mut matcher = StopMatcher::new(stops);
    let mut text = String::new();
    let mut kept = 0;
    for piece in pieces {
        kept += 1;
        let released = matcher.push(&utf8.push(&piece));
        text.push_str(&released.text);
        if released.stopped {
            return Rendered {
                text,
                kept,
                stopped: true,
            };
        }
    }
    let last = matcher.push(&utf8.finish());
    text.push_str(&last.text);
    if !last.stopped {
        text.push_str(&matcher.finish());
    }
    Rendered {
        text,
        kept,
        stopped: last.stopped,
    }
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

    fn pieces(parts: &[&str]) -> impl Iterator<Item = Vec<u8>> {
        parts
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn render_cuts_at_stop_strings_and_joins_split_characters() {
        let all = render_pieces(pieces(&["Hel", "lo", " wor", "ld"]), &[]);
        assert_eq!(all.text, "Hello world");
        assert_eq!((all.kept, all.stopped), (4, false));

        let stops = vec!["o w".to_string()];
        let cut = render_pieces(pieces(&["Hel", "lo", " wor", "ld"]), &stops);
        assert_eq!(cut.text, "Hell");
        assert_eq!((cut.kept, cut.stopped), (3, true));

        // "é" split across two tokens comes out whole.
        let split = render_pieces(vec![vec![0xC3], vec![0xA9, b'!']].into_iter(), &[]);
        assert_eq!(split.text, "é!");
    }
}
