//! Fuzzing the wire decoders (issue 13): arbitrary bytes, and valid encodings
//! with bytes flipped, truncated or appended, fed to every type that arrives
//! from the network. Decoding must return a value or an error, never panic
//! or allocate without bound; a mutated transaction that still decodes must
//! fail its signature check unless it is the original.
//!
//! CI runs a short budget. The long run is the same test with more cases:
//! `PROPTEST_CASES=1000000 cargo test --release -p agora-types --test fuzz_decode`
//! (figures in docs/benchmarks.md).

use agora_types::audit::JobProof;
use agora_types::{
    codec, AccountId, Block, Hash32, Keypair, SignedReceipt, SignedTransaction, SignedVoucher,
    Transaction, Transcript, TxKind, Voucher,
};
use proptest::prelude::*;

/// Cases per property: `PROPTEST_CASES` when set, else a CI-sized budget.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(2_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Decode `bytes` as every network-facing type; only panics fail.
fn decode_all(bytes: &[u8]) {
    let _ = codec::decode::<SignedTransaction>(bytes);
    let _ = codec::decode::<Block>(bytes);
    let _ = codec::decode::<SignedVoucher>(bytes);
    let _ = codec::decode::<SignedReceipt>(bytes);
    let _ = codec::decode::<Transcript>(bytes);
    let _ = serde_json::from_slice::<JobProof>(bytes);
    let _ = serde_json::from_slice::<SignedTransaction>(bytes);
}

fn sample_tx(nonce: u64) -> SignedTransaction {
    let key = Keypair::from_seed([5; 32]);
    Transaction {
        chain_id: "fuzz".into(),
        from: key.account(),
        nonce,
        kind: TxKind::SettleChannel {
            voucher: Voucher {
                channel: Hash32::digest(b"channel"),
                cumulative: 1_000,
                receipts_root: Hash32::digest(b"root"),
                jobs: 3,
            }
            .sign(&key),
        },
    }
    .sign(&key)
}

/// Edits applied to a valid encoding.
#[derive(Clone, Debug)]
enum Edit {
    Flip { at: prop::sample::Index, mask: u8 },
    Truncate { at: prop::sample::Index },
    Append { bytes: Vec<u8> },
    Insert { at: prop::sample::Index, byte: u8 },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1..=255u8).prop_map(|(at, mask)| Edit::Flip { at, mask }),
        any::<prop::sample::Index>().prop_map(|at| Edit::Truncate { at }),
        prop::collection::vec(any::<u8>(), 1..16).prop_map(|bytes| Edit::Append { bytes }),
        (any::<prop::sample::Index>(), any::<u8>())
            .prop_map(|(at, byte)| Edit::Insert { at, byte }),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit) {
    if bytes.is_empty() && matches!(e, Edit::Flip { .. } | Edit::Truncate { .. }) {
        return;
    }
    match e {
        Edit::Flip { at, mask } => {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        Edit::Truncate { at } => bytes.truncate(at.index(bytes.len())),
        Edit::Append { bytes: more } => bytes.extend_from_slice(more),
        Edit::Insert { at, byte } => {
            let i = at.index(bytes.len() + 1);
            bytes.insert(i, *byte);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic_any_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    /// Length prefixes claiming huge collections must not allocate them.
    #[test]
    fn huge_length_prefixes_are_refused(prefix in prop::collection::vec(any::<u8>(), 0..64), len in any::<u32>()) {
        let mut bytes = prefix;
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&[0xff; 8]);
        decode_all(&bytes);
    }

    #[test]
    fn mutated_transactions_decode_only_to_unsigned_variants(
        nonce in any::<u64>(),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let original = sample_tx(nonce);
        let mut bytes = codec::encode(&original);
        for e in &edits {
            apply(&mut bytes, e);
        }
        decode_all(&bytes);
        if let Ok(tx) = codec::decode::<SignedTransaction>(&bytes) {
            prop_assert!(
                tx == original || tx.verify_signature().is_err(),
                "a mutated transaction kept a valid signature: {edits:?}"
            );
        }
    }

    #[test]
    fn mutated_blocks_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let tx = sample_tx(7);
        let block = Block {
            header: agora_types::BlockHeader {
                chain_id: "fuzz".into(),
                height: 9,
                parent: Hash32::digest(b"parent"),
                timestamp_ms: 1,
                proposer: AccountId([3; 32]),
                tx_root: agora_types::block::tx_root(std::slice::from_ref(&tx)),
                state_root: Hash32::ZERO,
                consensus: Hash32::ZERO,
                randomness: Hash32::ZERO,
            },
            txs: vec![tx],
        };
        let mut bytes = codec::encode(&block);
        for e in &edits {
            apply(&mut bytes, e);
        }
        decode_all(&bytes);
    }
}
