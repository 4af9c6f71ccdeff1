//! Property tests of commitments: serialization round trips, an honest chunk
//! matches itself exactly, and perturbed hidden states are detected.

use agora_toploc::{
    check_chunk, check_job, commit_chunk, commit_job, CheckError, Commitments, CHUNK_TOKENS, TOP_K,
};
use proptest::prelude::*;

const WIDTH: usize = 64;

fn hidden(rows: usize) -> impl Strategy<Value = Vec<Vec<f32>>> {
    prop::collection::vec(prop::collection::vec(-8.0f32..8.0, WIDTH), rows)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn commitments_round_trip_and_hash_stably(p in hidden(5), o in hidden(40)) {
        let c = commit_job(&p, &o);
        prop_assert_eq!(c.chunks.len(), 2);
        let bytes = borsh::to_vec(&c).unwrap();
        let back: Commitments = borsh::from_slice(&bytes).unwrap();
        prop_assert_eq!(&back, &c);
        let json: Commitments = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        prop_assert_eq!(json.hash(), c.hash());
        // ≤ 10 bytes per generated token once chunks are full: 128 × 2 B per 32 tokens.
        prop_assert_eq!(c.chunks[0].coefficients.len() * 2 / CHUNK_TOKENS, 8);
    }

    #[test]
    fn honest_chunks_match_themselves_exactly(p in hidden(3), o in hidden(33)) {
        let c = commit_job(&p, &o);
        // Prompt (3 rows), one full chunk, one chunk of a single row.
        let sizes = [3 * WIDTH, CHUNK_TOKENS * WIDTH, WIDTH];
        for (check, size) in check_job(&c, &p, &o).unwrap().into_iter().zip(sizes) {
            prop_assert_eq!(check.checked as usize, TOP_K.min(size));
            prop_assert_eq!(check.exponent_mismatches, 0);
            prop_assert_eq!(check.max_mantissa_diff, 0);
        }
    }

    #[test]
    fn small_noise_keeps_exponents_and_changes_few_mantissas(
        o in hidden(CHUNK_TOKENS), seed in 0u32..1000,
    ) {
        let flat: Vec<f32> = o.concat();
        let c = commit_chunk(&flat);
        // Relative noise of 1e-4: at most a couple of half-precision ulps.
        let noisy: Vec<f32> = flat.iter().enumerate()
            .map(|(i, v)| v * (1.0 + 1e-4 * (((i as u32 ^ seed) % 7) as f32 - 3.0) / 3.0))
            .collect();
        let check = check_chunk(&c, &noisy);
        prop_assert!(check.exponent_mismatch_rate() < 0.1, "{check:?}");
        prop_assert!(check.max_mantissa_diff <= 2, "{check:?}");
    }

    #[test]
    fn perturbed_chunks_are_detected(o in hidden(CHUNK_TOKENS), scale in 1.05f32..2.0) {
        let flat: Vec<f32> = o.concat();
        let c = commit_chunk(&flat);
        // Another model's hidden states: same magnitudes, shuffled positions.
        let mut other = flat.clone();
        other.rotate_left(WIDTH + 1);
        let check = check_chunk(&c, &other);
        prop_assert!(check.exponent_mismatch_rate() > 0.5, "{check:?}");
        // A rescaled state (a re-quantized model drifts similarly) keeps indices but not values.
        let scaled: Vec<f32> = flat.iter().map(|v| v * scale).collect();
        let check = check_chunk(&c, &scaled);
        prop_assert!(check.exponent_mismatches > 0 || check.mean_mantissa_diff > 20.0, "{check:?}");
    }
}

#[test]
fn chunk_count_must_fit_the_output() {
    let rows = vec![vec![1.0f32; WIDTH]; 40];
    let c = commit_job(&rows[..2], &rows);
    let err = check_job(&c, &rows[..2], &rows[..10]).unwrap_err();
    assert_eq!(
        err,
        CheckError::ChunkCount {
            chunks: 2,
            outputs: 10,
            expected: 1
        }
    );
}

#[test]
fn empty_commitments_hash_is_not_zero() {
    assert_ne!(Commitments::default().hash(), [0u8; 32]);
}
