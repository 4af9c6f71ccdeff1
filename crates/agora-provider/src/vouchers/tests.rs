//! The provider's voucher checks and store.

use agora_types::Voucher;

use super::*;
use crate::CommitPath;

/// Errors compare by their debug form (a store error is not comparable).
fn same(got: &VoucherError, want: &VoucherError) {
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
}

struct Setup {
    client: Keypair,
    me: AccountId,
    channel: ChannelInfo,
}

fn setup() -> Setup {
    let client = Keypair::generate();
    let me = Keypair::generate().account();
    let channel = ChannelInfo {
        id: Hash32([7; 32]),
        client: client.account(),
        provider: me,
        model: Hash32::ZERO,
        deposit: 100,
        paid: 10,
        receipts_root: Hash32::ZERO,
        jobs: 1,
        closable_at: None,
    };
    Setup {
        client,
        me,
        channel,
    }
}

fn voucher(s: &Setup, cumulative: Amount, key: &Keypair) -> SignedVoucher {
    Voucher {
        channel: s.channel.id,
        cumulative,
        receipts_root: Hash32([1; 32]),
        jobs: 3,
    }
    .sign(key)
}

#[test]
fn a_good_voucher_passes() {
    let s = setup();
    check_voucher(&voucher(&s, 40, &s.client), &s.channel, &s.me, 30).unwrap();
    // Equal to what is held: a harmless resend.
    check_voucher(&voucher(&s, 40, &s.client), &s.channel, &s.me, 40).unwrap();
    // The whole deposit may be spent.
    check_voucher(&voucher(&s, 100, &s.client), &s.channel, &s.me, 0).unwrap();
}

#[test]
fn a_forged_signature_is_refused() {
    let s = setup();
    let forged = voucher(&s, 40, &Keypair::generate());
    let err = check_voucher(&forged, &s.channel, &s.me, 0).unwrap_err();
    same(&err, &VoucherError::BadSignature(s.channel.id));
    assert_eq!(err.status().0, StatusCode::UNAUTHORIZED);
    // A voucher signed for another channel does not pass as this one's.
    let mut other = s.channel.clone();
    other.id = Hash32([8; 32]);
    assert!(matches!(
        check_voucher(&voucher(&s, 40, &s.client), &other, &s.me, 0),
        Err(VoucherError::BadSignature(_))
    ));
}

#[test]
fn a_channel_paying_someone_else_is_refused() {
    let s = setup();
    let stranger = Keypair::generate().account();
    let err = check_voucher(&voucher(&s, 40, &s.client), &s.channel, &stranger, 0).unwrap_err();
    same(
        &err,
        &VoucherError::NotOurs {
            channel: s.channel.id,
            payee: s.me,
        },
    );
    assert_eq!(err.status().0, StatusCode::FORBIDDEN);
}

#[test]
fn a_decreasing_voucher_is_refused() {
    let s = setup();
    let err = check_voucher(&voucher(&s, 39, &s.client), &s.channel, &s.me, 40).unwrap_err();
    same(
        &err,
        &VoucherError::Decreasing {
            cumulative: 39,
            held: 40,
        },
    );
    // Below what the chain already paid, even with nothing held.
    let err = check_voucher(&voucher(&s, 9, &s.client), &s.channel, &s.me, 0).unwrap_err();
    same(
        &err,
        &VoucherError::Decreasing {
            cumulative: 9,
            held: 10,
        },
    );
    assert_eq!(err.status().0, StatusCode::CONFLICT);
}

#[test]
fn a_voucher_over_the_deposit_is_refused() {
    let s = setup();
    let err = check_voucher(&voucher(&s, 101, &s.client), &s.channel, &s.me, 0).unwrap_err();
    same(
        &err,
        &VoucherError::OverDeposit {
            cumulative: 101,
            deposit: 100,
        },
    );
    assert!(err.status().0.is_client_error());
}

/// A finished job of `model` (its transcript stored as `path` says), returning its id and leaf.
fn ran(store: &TranscriptStore, model: Hash32, n: u64, path: CommitPath) -> (Hash32, Hash32) {
    let key = Keypair::from_seed([9; 32]);
    let receipt = agora_types::Receipt {
        chain_id: "vouchers-test".into(),
        id: Hash32::digest(&n.to_le_bytes()),
        provider: key.account(),
        model,
        prompt_hash: Hash32::ZERO,
        output_hash: Hash32::ZERO,
        text_hash: Hash32::ZERO,
        params: agora_types::SamplingParams::new(8, 0.0, 1.0, Vec::new(), n),
        usage: agora_types::Usage::default(),
        price: agora_types::Price {
            input_per_1k: 0,
            output_per_1k: 0,
        },
        cost: 10,
        timestamp_ms: 0,
        commitments: Hash32::ZERO,
    }
    .sign(&key);
    let leaf = agora_types::audit::receipt_leaf(&receipt);
    let t = agora_types::Transcript {
        receipt,
        input: agora_types::JobInput::Text {
            prompt: format!("job {n}"),
        },
        prompt_tokens: vec![1],
        output_tokens: vec![2],
        commitments: None,
        embeddings: vec![],
    };
    store.put(&t, path).unwrap();
    (t.receipt.receipt.id, leaf)
}

/// A delivery of a voucher over `leaves` (all jobs so far) sending `jobs` from `first`.
fn delivery(
    s: &Setup,
    cumulative: Amount,
    leaves: &[Hash32],
    first: u64,
    jobs: &[Hash32],
) -> VoucherDelivery {
    VoucherDelivery {
        voucher: Voucher {
            channel: s.channel.id,
            cumulative,
            receipts_root: agora_types::merkle::root(leaves),
            jobs: leaves.len() as u64,
        }
        .sign(&s.client),
        first_job: first,
        jobs: jobs.to_vec(),
    }
}

fn fresh(s: &Setup) -> (tempfile::TempDir, TranscriptStore, ChannelInfo) {
    let dir = tempfile::tempdir().unwrap();
    let store = TranscriptStore::open(&dir.path().join("t.redb")).unwrap();
    let mut channel = s.channel.clone();
    (channel.paid, channel.jobs) = (0, 0);
    (dir, store, channel)
}

#[test]
fn the_store_keeps_the_latest_and_tracks_settlement_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let s = setup();
    let id = s.channel.id;
    let mut channel = s.channel.clone();
    (channel.paid, channel.jobs) = (0, 0);
    {
        let store = TranscriptStore::open(&path).unwrap();
        assert!(store.unsettled_vouchers().unwrap().is_empty());
        let (a, la) = ran(&store, channel.model, 1, CommitPath::Channel);
        let (b, lb) = ran(&store, channel.model, 2, CommitPath::Channel);
        store
            .take_voucher(&delivery(&s, 20, &[la], 0, &[a]), &channel)
            .unwrap();
        store
            .take_voucher(&delivery(&s, 30, &[la, lb], 1, &[b]), &channel)
            .unwrap();
        assert!(matches!(
            store.take_voucher(&delivery(&s, 25, &[la, lb], 2, &[]), &channel),
            Err(VoucherError::Decreasing {
                cumulative: 25,
                held: 30
            })
        ));
        let due = store.due_settlements().unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].voucher.cumulative, 30);
        store.settled(&due[0], 5).unwrap();
        assert!(store.unsettled_vouchers().unwrap().is_empty());
        // A resend of every job id is harmless.
        store
            .take_voucher(&delivery(&s, 45, &[la, lb], 0, &[a, b]), &channel)
            .unwrap();
    }
    let store = TranscriptStore::open(&path).unwrap();
    let held = store.voucher(&id).unwrap().unwrap();
    assert_eq!(held.voucher.voucher.cumulative, 45);
    assert_eq!(held.settled, 30);
    assert_eq!(store.unsettled_vouchers().unwrap().len(), 1);
}

#[test]
fn a_settled_root_serves_proofs_of_its_jobs_in_the_payers_order() {
    let s = setup();
    let (_dir, store, channel) = fresh(&s);
    let jobs: Vec<_> = (0..5)
        .map(|n| ran(&store, channel.model, n, CommitPath::Batch))
        .collect();
    // The payer pays in its own order, not the provider's.
    let order = [3usize, 0, 4, 1];
    let ids: Vec<Hash32> = order.iter().map(|&i| jobs[i].0).collect();
    let leaves: Vec<Hash32> = order.iter().map(|&i| jobs[i].1).collect();
    let d = delivery(&s, 40, &leaves, 0, &ids);
    store.take_voucher(&d, &channel).unwrap();
    // Paid jobs leave the pending batch: each job is committed once.
    assert_eq!(store.pending_jobs().unwrap(), 1);
    let root = d.voucher.voucher.receipts_root;
    assert!(
        store.job_proof(&root, 0).unwrap().is_none(),
        "not settled yet"
    );
    store.settling(&d.voucher).unwrap();
    for (index, &i) in order.iter().enumerate() {
        let proof = store.job_proof(&root, index as u64).unwrap().unwrap();
        assert_eq!(proof.transcript.receipt.receipt.id, jobs[i].0);
        assert_eq!(
            (proof.proof.index, proof.proof.leaf_count),
            (index as u64, 4)
        );
        assert!(proof.proof.verify(jobs[i].1, root));
    }
    assert!(store.job_proof(&root, 4).unwrap().is_none());
    // Pruned after the settlement's audit window: transcripts go.
    store.settled(&d.voucher, 7).unwrap();
    assert_eq!(
        store.prune_committed_through(6).unwrap(),
        crate::Pruned::default()
    );
    let pruned = store.prune_committed_through(7).unwrap();
    assert_eq!((pruned.batches, pruned.transcripts), (1, 4));
    assert!(store.get(&jobs[3].0).unwrap().is_none());
    assert!(
        store.get(&jobs[2].0).unwrap().is_some(),
        "the unpaid job stays"
    );
}

/// Attacks on the provider through its voucher endpoint: a payer (or
/// anyone with a channel) must not make it take a root it cannot prove.
#[test]
fn vouchers_over_receipts_the_provider_cannot_prove_are_refused() {
    let s = setup();
    let (_dir, store, channel) = fresh(&s);
    let (a, la) = ran(&store, channel.model, 1, CommitPath::Channel);
    let (b, lb) = ran(&store, channel.model, 2, CommitPath::Channel);
    let (other, lo) = ran(&store, Hash32([5; 32]), 3, CommitPath::Channel);
    let stranger = Hash32([6; 32]);
    let refused = |d: VoucherDelivery| store.take_voucher(&d, &channel).unwrap_err();
    // A job the provider never ran.
    let e = refused(delivery(&s, 10, &[la, Hash32::ZERO], 0, &[a, stranger]));
    assert!(
        matches!(e, VoucherError::UnknownJob(j) if j == stranger),
        "{e:?}"
    );
    // A job of another model than the channel pays for.
    let e = refused(delivery(&s, 10, &[lo], 0, &[other]));
    assert!(
        matches!(e, VoucherError::WrongModel { job } if job == other),
        "{e:?}"
    );
    // A root that is not the root of the jobs named.
    let e = refused(delivery(&s, 10, &[lb, la], 0, &[a, b]));
    assert!(matches!(e, VoucherError::RootMismatch { jobs: 2 }), "{e:?}");
    // More jobs than were delivered.
    let e = refused(delivery(&s, 10, &[la, lb], 0, &[a]));
    assert!(
        matches!(e, VoucherError::MissingJobs { held: 1, needed: 2 }),
        "{e:?}"
    );
    // A gap before the first job sent.
    let e = refused(delivery(&s, 10, &[la, lb], 1, &[b]));
    assert!(
        matches!(e, VoucherError::MissingJobs { held: 0, needed: 1 }),
        "{e:?}"
    );
    // Nothing refused was kept: the store holds no voucher and no jobs.
    assert!(store.voucher(&channel.id).unwrap().is_none());
    store
        .take_voucher(&delivery(&s, 10, &[la], 0, &[a]), &channel)
        .unwrap();
    // A different job at an index already held.
    let e = refused(delivery(&s, 20, &[lb, lb], 0, &[b, b]));
    assert!(
        matches!(e, VoucherError::JobsMismatch { index: 0 }),
        "{e:?}"
    );
    // The same job paid by a second channel (counted twice for weights).
    let mut second = channel.clone();
    second.id = Hash32([8; 32]);
    let s2 = Setup {
        client: Keypair::from_seed(s.client.seed()),
        me: s.me,
        channel: second.clone(),
    };
    let e = store
        .take_voucher(&delivery(&s2, 10, &[la], 0, &[a]), &second)
        .unwrap_err();
    assert!(
        matches!(e, VoucherError::AlreadyPaid { job, channel: c } if job == a && c == channel.id),
        "{e:?}"
    );
    for e in [
        VoucherError::UnknownJob(a),
        VoucherError::RootMismatch { jobs: 1 },
        VoucherError::TooManyJobs { max: 1, got: 2 },
    ] {
        assert_eq!(e.status().0, StatusCode::CONFLICT);
    }
}

#[test]
fn a_voucher_past_one_settlements_jobs_keeps_the_one_before_as_a_step() {
    let s = setup();
    let (_dir, store, channel) = fresh(&s);
    let max = crate::MAX_JOBS_PER_SETTLEMENT;
    let (ids, leaves): (Vec<Hash32>, Vec<Hash32>) = (0..=max + 1)
        .map(|n| ran(&store, channel.model, n, CommitPath::Channel))
        .unzip();
    let upto = |k: u64| {
        delivery(
            &s,
            k * 10,
            &leaves[..k as usize],
            k - 1,
            &ids[k as usize - 1..k as usize],
        )
    };
    for k in 1..=max {
        store.take_voucher(&upto(k), &channel).unwrap();
    }
    assert_eq!(store.due_settlements().unwrap().len(), 1);
    // One more job: the voucher for `max` jobs becomes a step, settled first.
    store.take_voucher(&upto(max + 1), &channel).unwrap();
    let due = store.due_settlements().unwrap();
    let counts: Vec<u64> = due.iter().map(|v| v.voucher.jobs).collect();
    assert_eq!(counts, vec![max, max + 1]);
    store.settled(&due[0], 3).unwrap();
    let counts: Vec<u64> = store
        .due_settlements()
        .unwrap()
        .iter()
        .map(|v| v.voucher.jobs)
        .collect();
    assert_eq!(counts, vec![max + 1]);
    // A voucher jumping past a whole settlement at once is refused.
    let (_dir2, store2, channel2) = fresh(&s);
    for n in 0..=max + 1 {
        ran(&store2, channel2.model, n, CommitPath::Channel);
    }
    let all = delivery(&s, 10, &leaves, 0, &ids);
    assert!(matches!(
        store2.take_voucher(&all, &channel2),
        Err(VoucherError::TooManyJobs { got, .. }) if got == max + 2
    ));
}

/// Roots are checked against the frontier kept per channel: over many
/// deliveries, after the frontier is lost (a store from before it existed),
/// and for a voucher covering fewer jobs than held; a wrong root still fails.
#[test]
fn voucher_roots_are_checked_incrementally_and_after_a_lost_frontier() {
    let s = setup();
    let (_dir, store, channel) = fresh(&s);
    let (mut ids, mut leaves) = (Vec::new(), Vec::new());
    for n in 0..40u64 {
        let (id, leaf) = ran(&store, channel.model, 100 + n, CommitPath::Channel);
        ids.push(id);
        leaves.push(leaf);
        let cumulative = 10 * (n + 1);
        let d = delivery(&s, cumulative, &leaves, n, &ids[n as usize..]);
        store.take_voucher(&d, &channel).unwrap();
        if n == 20 {
            let w = store.db.begin_write().unwrap();
            w.open_table(crate::paid::PAID_FRONTIERS)
                .unwrap()
                .remove(channel.id.0.as_slice())
                .unwrap();
            w.commit().unwrap();
        }
    }
    let (id, leaf) = ran(&store, channel.model, 500, CommitPath::Channel);
    // A delivery sending one job more than its voucher covers.
    store
        .take_voucher(&delivery(&s, 400, &leaves, 40, &[id]), &channel)
        .unwrap();
    let mut wrong = delivery(&s, 500, &leaves, 40, &[id]);
    wrong.voucher = Voucher {
        jobs: 41,
        ..wrong.voucher.voucher
    }
    .sign(&s.client);
    assert!(matches!(
        store.take_voucher(&wrong, &channel),
        Err(VoucherError::RootMismatch { jobs: 41 })
    ));
    leaves.push(leaf);
    store
        .take_voucher(&delivery(&s, 500, &leaves, 40, &[id]), &channel)
        .unwrap();
}
