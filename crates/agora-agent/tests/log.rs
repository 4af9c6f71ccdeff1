//! The action log against its anchors: an honest log verifies; every way
//! of tampering with it (dropping, reordering, editing, splicing, or the
//! agent itself rewriting and re-signing its history) is found and named;
//! single entries are proven in an anchored log and forged proofs fail.

use agora_agent::log::{log_root, AgentLog};
use agora_agent::{verify_log, EntryProof, SignedLogEntry, VerifyError};
use agora_types::{Hash32, Keypair, LogAnchor};
use proptest::prelude::*;

fn key() -> Keypair {
    Keypair::from_seed([21; 32])
}

/// A log of `n` entries, written to a temporary file by the real writer.
fn entries(n: u64) -> Vec<SignedLogEntry> {
    let dir = tempfile::tempdir().unwrap();
    let mut log = AgentLog::open(&dir.path().join("log"), key()).unwrap();
    for i in 0..n {
        let receipts = vec![Hash32::digest(&i.to_le_bytes())];
        log.append(1_000 + i, "summarise", &format!("epoch {i}"), receipts)
            .unwrap();
    }
    log.entries().to_vec()
}

fn anchor(entries: &[SignedLogEntry], count: usize, height: u64) -> LogAnchor {
    LogAnchor {
        count: count as u64,
        root: log_root(&entries[..count]),
        head: entries[count - 1].link(),
        height,
    }
}

/// Re-sign and re-chain entries from `from` on, as the agent itself could.
fn rechain(entries: &mut [SignedLogEntry], from: usize) {
    for i in from..entries.len() {
        let mut e = entries[i].entry.clone();
        e.seq = i as u64;
        e.prev = if i == 0 {
            Hash32::ZERO
        } else {
            entries[i - 1].link()
        };
        entries[i] = e.sign(&key());
    }
}

#[test]
fn an_honest_log_verifies_against_its_anchors() {
    let log = entries(10);
    let anchors = [anchor(&log, 4, 7), anchor(&log, 10, 9)];
    let report = verify_log(Some(key().account()), &log, &anchors).unwrap();
    assert_eq!(
        (report.entries, report.anchored, report.anchors),
        (10, 10, 2)
    );
    // Entries after the last anchor verify as a chain, unanchored.
    let report = verify_log(None, &log, &anchors[..1]).unwrap();
    assert_eq!(report.anchored, 4);
}

#[test]
fn every_kind_of_tampering_is_found_and_named() {
    let log = entries(10);
    let anchors = [anchor(&log, 4, 7), anchor(&log, 10, 9)];
    let check = |tampered: &[SignedLogEntry]| verify_log(Some(key().account()), tampered, &anchors);

    let mut dropped = log.clone();
    dropped.remove(5);
    assert_eq!(
        check(&dropped),
        Err(VerifyError::OutOfSequence { index: 5, seq: 6 })
    );

    let truncated = &log[..8];
    assert!(matches!(
        check(truncated),
        Err(VerifyError::Truncated {
            count: 10,
            have: 8,
            ..
        })
    ));

    let mut reordered = log.clone();
    reordered.swap(2, 3);
    assert_eq!(
        check(&reordered),
        Err(VerifyError::OutOfSequence { index: 2, seq: 3 })
    );

    let mut edited = log.clone();
    edited[6].entry.detail = "epoch 6: nothing happened".into();
    assert_eq!(check(&edited), Err(VerifyError::Edited { index: 6 }));

    // The agent rewrites entry 2 and re-signs everything after it: the
    // chain is whole again, but the anchors remember.
    let mut rewritten = log.clone();
    rewritten[2].entry.receipts.clear();
    rechain(&mut rewritten, 2);
    assert!(verify_log(None, &rewritten, &[]).is_ok(), "a whole chain");
    assert_eq!(
        check(&rewritten),
        Err(VerifyError::AnchorMismatch {
            height: 7,
            count: 4
        })
    );

    // Dropping an entry and re-chaining the rest: the anchors catch it too.
    let mut cut = log.clone();
    cut.remove(8);
    rechain(&mut cut, 8);
    cut.push(cut[8].clone());
    rechain(&mut cut, 9);
    assert_eq!(
        check(&cut),
        Err(VerifyError::AnchorMismatch {
            height: 9,
            count: 10
        })
    );

    // An entry signed by another key.
    let mut foreign = log.clone();
    let mut e = foreign[3].entry.clone();
    e.agent = Keypair::from_seed([22; 32]).account();
    foreign[3] = e.sign(&Keypair::from_seed([22; 32]));
    assert!(matches!(
        check(&foreign),
        Err(VerifyError::OtherAgent { index: 3, .. })
    ));
}

#[test]
fn single_entries_are_proven_against_an_anchor() {
    let log = entries(7);
    let anchors = [anchor(&log, 7, 3)];
    for i in 0..7 {
        let proof = EntryProof::new(&log, i, anchors[0]).unwrap();
        proof.verify(&anchors).unwrap();
        // Survives JSON, as `agora agent log prove` writes it.
        let back: EntryProof =
            serde_json::from_str(&serde_json::to_string(&proof).unwrap()).unwrap();
        back.verify(&anchors).unwrap();
    }
    assert!(EntryProof::new(&log, 7, anchors[0]).is_none());
    let good = EntryProof::new(&log, 2, anchors[0]).unwrap();

    let mut edited = good.clone();
    edited.entry.entry.detail = "edited".into();
    assert!(edited.verify(&anchors).is_err());

    let mut resigned = good.clone();
    resigned.entry = {
        let mut e = good.entry.entry.clone();
        e.detail = "edited and re-signed".into();
        e.sign(&key())
    };
    assert!(resigned.verify(&anchors).is_err(), "not the anchored entry");

    let mut moved = good.clone();
    moved.proof.index = 3;
    assert!(moved.verify(&anchors).is_err());

    let made_up = LogAnchor {
        root: Hash32([1; 32]),
        ..anchors[0]
    };
    let mut unanchored = good.clone();
    unanchored.anchor = made_up;
    assert!(unanchored.verify(&anchors).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any single change to any byte-carrying field of any anchored entry
    /// (without re-signing) fails verification.
    #[test]
    fn any_edit_of_an_anchored_entry_fails(index in 0usize..6, field in 0u8..5, value in any::<u64>()) {
        let log = entries(6);
        let anchors = [anchor(&log, 6, 1)];
        let mut tampered = log.clone();
        let e = &mut tampered[index].entry;
        match field {
            0 => e.time_ms ^= value | 1,
            1 => e.action.push('x'),
            2 => e.detail = format!("{value}"),
            3 => e.receipts.push(Hash32::digest(&value.to_le_bytes())),
            _ => e.prev = Hash32::digest(&value.to_le_bytes()),
        }
        prop_assert!(verify_log(Some(key().account()), &tampered, &anchors).is_err());
    }
}
