//! Audits through real blocks: receipt batches whose audits the chain draws
//! in the next block, verdicts (only the drawn auditor's count), disputes
//! decided by a committee drawn in the block after they open (slash with
//! exact rewards, or the accuser's penalty), expiry, the collateral rule and
//! lock, channel settlements audited like commits; random sequences
//! keep supply + burned = genesis + emitted, accept only drawn verdicts,
//! slash only on a confirmed majority, and slash a provider at most once.

mod common;

use agora_ledger::{build_block, BlockCandidate, State, TxError};
use agora_types::audit::{batch_id, dispute_id, draw_seed};
use agora_types::{AccountId, Hash32, Keypair, ModelEntry, Price, TxKind};
use proptest::prelude::*;

use common::{block, send, settlement, verdict};

const CHAIN: &str = "audits-test";
const AUDIT_WINDOW: u64 = 20;
const DISPUTE_WINDOW: u64 = 10;
const PRICE: Price = Price {
    input_per_1k: 1,
    output_per_1k: 2,
};
/// 20 x cost(2048, 2048) at PRICE: 20 x ceil(6144 / 1000).
const REQUIRED: u64 = 140;
const COLLATERAL: u64 = 1_000;
const BOND: u64 = 100;

fn model() -> ModelEntry {
    common::model(b"audited model", "audited")
}

fn keys(n: u8) -> Vec<Keypair> {
    common::keys(n, 70)
}

fn genesis(keys: &[Keypair]) -> State {
    let mut g = common::genesis(CHAIN, keys, 10_000, vec![model()]);
    g.params.audit.audit_window_blocks = AUDIT_WINDOW;
    g.params.audit.dispute_window_blocks = DISPUTE_WINDOW;
    // Every job is drawn, so every index has exactly one auditor.
    g.params.audit.audit_rate_ppm = 1_000_000;
    g.state().unwrap()
}

/// The key the chain drew to audit job `index` of `batch`.
fn auditor_of<'a>(s: &State, k: &'a [Keypair], batch: Hash32, index: u64) -> &'a Keypair {
    let b = &s.batches[&batch];
    let (_, id) = b
        .audits
        .iter()
        .find(|(i, _)| *i == index)
        .unwrap_or_else(|| panic!("job {index} was not drawn: {:?}", b.audits));
    k.iter().find(|x| x.account() == *id).unwrap()
}

/// A bonded validator other than the one drawn for job `index`.
fn not_auditor_of<'a>(s: &State, k: &'a [Keypair], batch: Hash32, index: u64) -> &'a Keypair {
    let drawn = auditor_of(s, k, batch, index).account();
    k.iter()
        .find(|x| x.account() != drawn && s.validators.contains_key(&x.account()))
        .unwrap()
}

fn ok(s: &mut State, key: &Keypair, kind: TxKind) {
    if let Some(e) = send(s, key, kind) {
        panic!("rejected: {e}");
    }
}

fn register(stake: u64) -> TxKind {
    TxKind::RegisterProvider {
        endpoint: "http://127.0.0.1:9000".into(),
        models: vec![model().id],
        price: PRICE,
        stake,
        replayable: true,
    }
}

/// Sends a CommitReceipts and returns the batch id it creates.
fn commit(s: &mut State, provider: &Keypair, count: u64) -> Hash32 {
    let id = batch_id(&provider.account(), s.account(&provider.account()).nonce);
    let root = Hash32::digest(&count.to_le_bytes());
    ok(
        s,
        provider,
        TxKind::CommitReceipts {
            model: model().id,
            root,
            count,
        },
    );
    id
}

fn vote(dispute: Hash32, agree: bool) -> TxKind {
    TxKind::VoteDispute { dispute, agree }
}

/// Everything ever issued is either in supply or burned.
fn assert_conserved(s: &State, genesis_supply: u128) {
    assert_eq!(s.total_supply() + s.burned, genesis_supply + s.emitted);
}

/// Keys: 0 the provider, 1..=4 validators, 5 a client. The provider is
/// registered, the validators bonded, and one 4-receipt batch is committed.
fn world() -> (State, Vec<Keypair>, Hash32, u128) {
    let k = keys(6);
    let mut s = genesis(&k);
    let supply = s.total_supply();
    ok(&mut s, &k[0], register(COLLATERAL));
    for v in &k[1..=4] {
        ok(
            &mut s,
            v,
            TxKind::BondValidator {
                amount: BOND,
                take_ppm: 0,
            },
        );
    }
    let batch = commit(&mut s, &k[0], 4);
    // The next block draws the batch's audits.
    block(&mut s, None);
    (s, k, batch, supply)
}

fn committee_keys<'a>(s: &State, k: &'a [Keypair], dispute: &Hash32) -> Vec<&'a Keypair> {
    s.disputes[dispute]
        .committee
        .iter()
        .map(|id| k.iter().find(|x| x.account() == *id).unwrap())
        .collect()
}

#[test]
fn only_the_drawn_auditor_gives_a_verdict_once_per_job() {
    let (mut s, k, batch, supply) = world();
    let p = k[0].account();
    assert_eq!(s.batches[&batch].count, 4);
    assert_eq!(s.batches[&batch].model, Some(model().id));
    let drawn: Vec<u64> = s.batches[&batch].audits.iter().map(|(i, _)| *i).collect();
    assert_eq!(drawn, vec![0, 1, 2, 3], "rate 100%: every job, in order");
    let a = auditor_of(&s, &k, batch, 0);
    ok(&mut s, a, verdict(batch, 0, true));
    assert_eq!(s.provider_audits[&p].audits_passed, 1);
    let a = auditor_of(&s, &k, batch, 0);
    assert!(matches!(
        send(&mut s, a, verdict(batch, 0, true)),
        Some(TxError::DuplicateVerdict { index: 0, .. })
    ));
    // Attack: another bonded validator's verdict (a sybil's pass, or a
    // failure meant to open a dispute) is refused and counts for nothing.
    for passed in [true, false] {
        let a = not_auditor_of(&s, &k, batch, 1);
        assert!(matches!(
            send(&mut s, a, verdict(batch, 1, passed)),
            Some(TxError::NotAssigned { index: 1, .. })
        ));
    }
    assert!(s.disputes.is_empty());
    let a = auditor_of(&s, &k, batch, 3);
    ok(&mut s, a, verdict(batch, 3, true));
    assert_eq!(s.provider_audits[&p].audits_passed, 2);
    assert!(matches!(
        send(&mut s, &k[1], verdict(batch, 4, true)),
        Some(TxError::IndexOutsideBatch {
            index: 4,
            first: 0,
            end: 4
        })
    ));
    assert!(matches!(
        send(&mut s, &k[1], verdict(Hash32::digest(b"nope"), 0, true)),
        Some(TxError::UnknownBatch(_))
    ));
    // Neither the client nor the unbonded provider may give verdicts.
    assert_eq!(
        send(&mut s, &k[5], verdict(batch, 1, true)),
        Some(TxError::NotAValidator(k[5].account()))
    );
    assert_eq!(
        send(&mut s, &k[0], verdict(batch, 1, true)),
        Some(TxError::NotAValidator(p))
    );
    // A provider that is also a validator still may not audit itself.
    ok(
        &mut s,
        &k[0],
        TxKind::BondValidator {
            amount: 10,
            take_ppm: 0,
        },
    );
    assert_eq!(
        send(&mut s, &k[0], verdict(batch, 1, true)),
        Some(TxError::SelfAudit)
    );
    assert_eq!(s.provider_audits[&p].audits_passed, 2);
    assert!(!s.provider_audits[&p].slashed);
    assert_conserved(&s, supply);
}

/// The audits of a batch are drawn from the next header's randomness (the
/// commit's round seed under consensus), and only from the parent's id on a
/// chain without one: the same commit drawn under two seeds gets two draws.
#[test]
fn audits_are_drawn_from_the_next_headers_randomness() {
    let (mut s, k, _, _) = world();
    let id = batch_id(&k[0].account(), s.account(&k[0].account()).nonce);
    ok(
        &mut s,
        &k[0],
        TxKind::CommitReceipts {
            model: model().id,
            root: Hash32::digest(b"drawn"),
            count: 64,
        },
    );
    let next = |randomness: Hash32| {
        build_block(
            &s,
            BlockCandidate {
                proposer: AccountId([0; 32]),
                timestamp_ms: s.last_timestamp_ms + 1,
                txs: vec![],
                randomness,
            },
        )
    };
    let (r1, r2) = (Hash32::digest(b"seed 1"), Hash32::digest(b"seed 2"));
    let one = next(r1);
    let two = next(r2);
    let none = next(Hash32::ZERO);
    assert_eq!(one.block.header.randomness, r1);
    assert_eq!(one.state.batches[&id].seed, Some(draw_seed(&r1, &id)));
    assert_eq!(two.state.batches[&id].seed, Some(draw_seed(&r2, &id)));
    assert_eq!(
        none.state.batches[&id].seed,
        Some(draw_seed(&s.last_block_id, &id))
    );
    let auditors = |b: &agora_ledger::BuiltBlock| b.state.batches[&id].audits.clone();
    assert_eq!(auditors(&one).len(), 64);
    assert_ne!(
        auditors(&one),
        auditors(&two),
        "64 jobs, 3 validators: draws differ"
    );
    // Applying the header reproduces the draw it names (every node agrees).
    let applied = agora_ledger::apply_block(&s, &one.block).unwrap();
    assert_eq!(applied.batches[&id].audits, auditors(&one));
}

/// Verdicts wait for the draw: in the commit's own block nobody knows who
/// audits, and a dispute's committee is not seated in the block that opens it.
#[test]
fn verdicts_and_votes_before_the_draw_are_refused() {
    let (mut s, k, old, _) = world();
    let id = batch_id(&k[0].account(), s.account(&k[0].account()).nonce);
    let commit = common::signed(
        &s,
        &k[0],
        TxKind::CommitReceipts {
            model: model().id,
            root: Hash32::digest(b"r"),
            count: 2,
        },
    );
    let early = common::signed(&s, &k[1], verdict(id, 0, false));
    let built = build_block(
        &s,
        BlockCandidate {
            proposer: AccountId([0; 32]),
            timestamp_ms: s.last_timestamp_ms + 1,
            txs: vec![commit, early],
            randomness: agora_types::Hash32::ZERO,
        },
    );
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].1, TxError::AuditsNotDrawn(id));
    s = built.state;
    assert!(s.batches[&id].seed.is_none() && s.batches[&id].audits.is_empty());
    block(&mut s, None);
    assert!(s.batches[&id].seed.is_some());
    assert_eq!(s.batches[&id].audits.len(), 2);

    // A failing verdict and a vote in one block: the vote finds no committee.
    let accuser = auditor_of(&s, &k, old, 0);
    let other = not_auditor_of(&s, &k, old, 0);
    let fail = common::signed(&s, accuser, verdict(old, 0, false));
    let vote_now = common::signed(&s, other, vote(dispute_id(&old, 0), true));
    let built = build_block(
        &s,
        BlockCandidate {
            proposer: AccountId([0; 32]),
            timestamp_ms: s.last_timestamp_ms + 1,
            txs: vec![fail, vote_now],
            randomness: agora_types::Hash32::ZERO,
        },
    );
    assert!(matches!(
        built.rejected.as_slice(),
        [(_, TxError::NotOnCommittee { .. })]
    ));
    s = built.state;
    assert!(s.disputes[&dispute_id(&old, 0)].committee.is_empty());
    block(&mut s, None);
    assert_eq!(s.disputes[&dispute_id(&old, 0)].committee.len(), 3);
}

#[test]
fn confirmed_failure_slashes_collateral_rewards_exactly_and_deregisters() {
    let (mut s, k, batch, supply) = world();
    let p = k[0].account();
    let accuser = auditor_of(&s, &k, batch, 2);
    ok(&mut s, accuser, verdict(batch, 2, false));
    let id = dispute_id(&batch, 2);
    let d = s.disputes[&id].clone();
    assert_eq!((d.provider, d.accuser, d.index), (p, accuser.account(), 2));
    assert!(
        d.committee.is_empty(),
        "drawn in the next block, not by the accuser's"
    );
    let others: Vec<&Keypair> = k[1..=4]
        .iter()
        .filter(|x| x.account() != accuser.account())
        .collect();
    block(&mut s, None);
    let mut expected: Vec<AccountId> = others.iter().map(|x| x.account()).collect();
    let mut got = s.disputes[&id].committee.clone();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "committee: the other bonded validators");
    assert!(matches!(
        send(&mut s, accuser, vote(id, true)),
        Some(TxError::NotOnCommittee { .. })
    ));
    let members = committee_keys(&s, &k, &id);
    let before: Vec<u64> = k.iter().map(|x| s.account(&x.account()).balance).collect();
    let burned = s.burned;
    ok(&mut s, members[0], vote(id, true));
    assert!(matches!(
        send(&mut s, members[0], vote(id, true)),
        Some(TxError::AlreadyVoted { .. })
    ));
    assert!(
        s.providers.contains_key(&p),
        "one vote of three decides nothing"
    );
    ok(&mut s, members[1], vote(id, true));
    // Confirmed: 500 of the 1000 collateral shared by accuser + 2 agreeing = 166 each.
    assert!(!s.providers.contains_key(&p));
    assert!(s.disputes.is_empty());
    let record = s.provider_audits[&p];
    assert!(record.slashed);
    assert_eq!(
        (record.audits_failed, record.slashed_amount),
        (1, COLLATERAL)
    );
    let gain = |x: &Keypair| {
        let i = k.iter().position(|y| y.account() == x.account()).unwrap();
        s.account(&x.account()).balance - before[i]
    };
    assert_eq!(gain(accuser), 166);
    assert_eq!(gain(members[0]), 166);
    assert_eq!(gain(members[1]), 166);
    assert_eq!(gain(members[2]), 0);
    assert_eq!(s.burned - burned, u128::from(COLLATERAL - 3 * 166));
    // Slashed for good: no new registration, no further verdicts.
    assert_eq!(
        send(&mut s, &k[0], register(COLLATERAL)),
        Some(TxError::ProviderSlashed(p))
    );
    let a = auditor_of(&s, &k, batch, 1);
    assert_eq!(
        send(&mut s, a, verdict(batch, 1, false)),
        Some(TxError::ProviderSlashed(p))
    );
    assert_conserved(&s, supply);
}

#[test]
fn refuted_accusation_slashes_the_accuser_only() {
    let (mut s, k, batch, supply) = world();
    let p = k[0].account();
    let accuser = auditor_of(&s, &k, batch, 1);
    ok(&mut s, accuser, verdict(batch, 1, false));
    let id = dispute_id(&batch, 1);
    block(&mut s, None);
    let members = committee_keys(&s, &k, &id);
    ok(&mut s, members[0], vote(id, false));
    ok(&mut s, members[1], vote(id, true));
    assert!(s.disputes.contains_key(&id), "1 to 1 decides nothing");
    let burned = s.burned;
    ok(&mut s, members[2], vote(id, false));
    assert!(s.disputes.is_empty());
    // 10% of the accuser's 100 bonded is burned; the provider is untouched.
    assert_eq!(s.validators[&accuser.account()].self_stake, 90);
    assert_eq!(s.burned - burned, 10);
    assert_eq!(s.providers[&p].stake, COLLATERAL);
    assert!(!s.provider_audits.get(&p).is_some_and(|a| a.slashed));
    assert_conserved(&s, supply);
}

#[test]
fn undecided_disputes_expire_and_old_batches_are_pruned() {
    let (mut s, k, batch, supply) = world();
    let a = auditor_of(&s, &k, batch, 0);
    ok(&mut s, a, verdict(batch, 0, true));
    let a = auditor_of(&s, &k, batch, 1);
    ok(&mut s, a, verdict(batch, 1, false));
    let id = dispute_id(&batch, 1);
    let opened = s.height;
    block(&mut s, None);
    let member = committee_keys(&s, &k, &id)[0];
    ok(&mut s, member, vote(id, true));
    while s.height < opened + DISPUTE_WINDOW {
        block(&mut s, None);
    }
    assert!(s.disputes.contains_key(&id), "open through its last block");
    block(&mut s, None);
    assert!(s.disputes.is_empty());
    assert_eq!(
        send(&mut s, &k[2], vote(id, true)),
        Some(TxError::UnknownDispute(id))
    );
    assert!(s.providers.contains_key(&k[0].account()));
    let committed = s.batches[&batch].height;
    while s.height < committed + AUDIT_WINDOW {
        block(&mut s, None);
    }
    assert!(s.batches.contains_key(&batch));
    let late = auditor_of(&s, &k, batch, 2);
    assert_eq!(
        send(&mut s, late, verdict(batch, 2, true)),
        Some(TxError::UnknownBatch(batch))
    );
    assert!(s.batches.is_empty() && s.verdicts.is_empty());
    assert_conserved(&s, supply);
}

#[test]
fn without_other_validators_a_dispute_cannot_confirm() {
    let k = keys(2);
    let mut s = genesis(&k);
    ok(&mut s, &k[0], register(COLLATERAL));
    ok(
        &mut s,
        &k[1],
        TxKind::BondValidator {
            amount: BOND,
            take_ppm: 0,
        },
    );
    let batch = commit(&mut s, &k[0], 1);
    block(&mut s, None);
    ok(&mut s, &k[1], verdict(batch, 0, false));
    let id = dispute_id(&batch, 0);
    block(&mut s, None);
    assert!(s.disputes[&id].seed.is_some() && s.disputes[&id].committee.is_empty());
    assert!(matches!(
        send(&mut s, &k[1], vote(id, true)),
        Some(TxError::NotOnCommittee { .. })
    ));
    for _ in 0..=DISPUTE_WINDOW {
        block(&mut s, None);
    }
    assert!(s.disputes.is_empty());
    assert_eq!(s.providers[&k[0].account()].stake, COLLATERAL);
}

#[test]
fn collateral_must_cover_twenty_reference_jobs_and_stays_locked_while_audited() {
    let k = keys(1);
    let mut s = genesis(&k);
    let p = k[0].account();
    assert!(matches!(
        send(&mut s, &k[0], register(REQUIRED - 1)),
        Some(TxError::CollateralTooLow {
            required: REQUIRED,
            got,
            multiple: 20,
            job_price: 7,
            tokens: 2048,
        }) if got == REQUIRED - 1
    ));
    ok(&mut s, &k[0], register(REQUIRED));
    // Nothing committed yet: the collateral is free to leave.
    assert_eq!(send(&mut s, &k[0], TxKind::DeregisterProvider), None);
    ok(&mut s, &k[0], register(REQUIRED));
    assert_eq!(
        send(
            &mut s,
            &k[0],
            TxKind::CommitReceipts {
                model: Hash32::digest(b"other"),
                root: Hash32::ZERO,
                count: 1
            }
        ),
        Some(TxError::ModelNotServed {
            provider: p,
            model: Hash32::digest(b"other")
        })
    );
    assert!(matches!(
        send(
            &mut s,
            &k[0],
            TxKind::CommitReceipts {
                model: model().id,
                root: Hash32::ZERO,
                count: 0
            }
        ),
        Some(TxError::InvalidField { field: "count", .. })
    ));
    let batch = commit(&mut s, &k[0], 2);
    let until = s.batches[&batch].height + AUDIT_WINDOW + 1;
    assert_eq!(
        send(&mut s, &k[0], TxKind::DeregisterProvider),
        Some(TxError::CollateralLocked { provider: p, until })
    );
    while s.height + 1 < until {
        block(&mut s, None);
    }
    let balance = s.account(&p).balance;
    ok(&mut s, &k[0], TxKind::DeregisterProvider);
    assert_eq!(s.account(&p).balance, balance + REQUIRED);
    assert_eq!(
        send(
            &mut s,
            &k[0],
            TxKind::CommitReceipts {
                model: model().id,
                root: Hash32::ZERO,
                count: 1
            }
        ),
        Some(TxError::NotAProvider(p))
    );
}

/// `client` opens a channel of 1,000 to `provider` for the model; its id.
fn open_channel(s: &mut State, client: &Keypair, provider: &Keypair) -> Hash32 {
    let channel =
        agora_types::channel_id(CHAIN, &client.account(), s.account(&client.account()).nonce);
    ok(
        s,
        client,
        TxKind::OpenChannel {
            provider: provider.account(),
            model: model().id,
            deposit: 1_000,
        },
    );
    channel
}

#[test]
fn channel_settlements_are_audited_like_commits() {
    let (mut s, k, _, supply) = world();
    let (provider, client) = (&k[0], &k[5]);
    let channel = open_channel(&mut s, client, provider);
    let settle = |s: &mut State, cumulative: u64, jobs: u64| {
        let id = batch_id(&provider.account(), s.account(&provider.account()).nonce);
        (
            id,
            send(s, provider, settlement(client, channel, cumulative, jobs)),
        )
    };
    let (first, err) = settle(&mut s, 10, 3);
    assert_eq!(err, None);
    let b = &s.batches[&first];
    assert_eq!((b.first_index, b.count, b.channel), (0, 3, Some(channel)));
    assert_eq!(
        b.model,
        Some(model().id),
        "a settlement names its channel's model"
    );
    let (second, err) = settle(&mut s, 20, 5);
    assert_eq!(err, None);
    let b = &s.batches[&second];
    assert_eq!((b.first_index, b.count), (3, 2));
    assert_eq!(b.root, Hash32::digest(&5u64.to_le_bytes()));
    assert_eq!(
        settle(&mut s, 30, 4).1,
        Some(TxError::JobsDecreased {
            jobs: 4,
            settled: 5
        })
    );
    // A voucher that pays more for the same jobs creates no batch.
    let count = s.batches.len();
    assert_eq!(settle(&mut s, 30, 5).1, None);
    assert_eq!(s.batches.len(), count);
    // Every paid job is drawn from (the rate here is 100%), and only the
    // new jobs of each settlement: the first settlement's stay in the first.
    block(&mut s, None);
    let drawn: Vec<u64> = s.batches[&second].audits.iter().map(|(i, _)| *i).collect();
    assert_eq!(drawn, vec![3, 4]);
    let drawn: Vec<u64> = s.batches[&first].audits.iter().map(|(i, _)| *i).collect();
    assert_eq!(drawn, vec![0, 1, 2]);
    let drawn_for_4 = auditor_of(&s, &k, second, 4);
    assert!(matches!(
        send(&mut s, drawn_for_4, verdict(second, 2, true)),
        Some(TxError::IndexOutsideBatch {
            first: 3,
            end: 5,
            ..
        })
    ));
    // Only the drawn auditor's verdict counts, as for a commit (issue 13, #1).
    let other = not_auditor_of(&s, &k, second, 4);
    assert!(matches!(
        send(&mut s, other, verdict(second, 4, false)),
        Some(TxError::NotAssigned { index: 4, .. })
    ));
    assert!(s.disputes.is_empty());
    let auditor = auditor_of(&s, &k, second, 4);
    ok(&mut s, auditor, verdict(second, 4, true));
    assert_conserved(&s, supply);
}

#[test]
fn a_settlement_adds_at_most_a_batchs_worth_of_jobs() {
    let (mut s, k, _, supply) = world();
    let (provider, client) = (&k[0], &k[5]);
    let channel = open_channel(&mut s, client, provider);
    let max = s.params.audit.max_batch_jobs;
    let settle = |s: &mut State, cumulative: u64, jobs: u64| {
        send(s, provider, settlement(client, channel, cumulative, jobs))
    };
    // Attack (issue 13, #6): a colluding client signs a voucher for u64::MAX
    // jobs, which every node would iterate over to draw audits.
    assert_eq!(
        settle(&mut s, 10, u64::MAX),
        Some(TxError::BatchTooLarge { max, got: u64::MAX })
    );
    assert_eq!(settle(&mut s, 10, max), None);
    assert_eq!(
        settle(&mut s, 20, 2 * max + 1),
        Some(TxError::BatchTooLarge { max, got: max + 1 })
    );
    assert_eq!(settle(&mut s, 20, 2 * max), None);
    assert_eq!(s.channels[&channel].jobs, 2 * max);
    assert_conserved(&s, supply);
}

#[test]
fn a_confirmed_slash_closes_other_disputes_without_a_second_slash() {
    let (mut s, k, batch, supply) = world();
    let p = k[0].account();
    let a = auditor_of(&s, &k, batch, 0);
    ok(&mut s, a, verdict(batch, 0, false));
    let a = auditor_of(&s, &k, batch, 1);
    ok(&mut s, a, verdict(batch, 1, false));
    assert_eq!(s.disputes.len(), 2);
    let first = dispute_id(&batch, 0);
    let second = dispute_id(&batch, 1);
    block(&mut s, None);
    let members = committee_keys(&s, &k, &first);
    ok(&mut s, members[0], vote(first, true));
    ok(&mut s, members[1], vote(first, true));
    assert!(s.disputes.is_empty());
    let burned = s.burned;
    assert_eq!(
        send(&mut s, &k[3], vote(second, true)),
        Some(TxError::UnknownDispute(second))
    );
    assert_eq!(s.burned, burned);
    assert_eq!(s.provider_audits[&p].slashed_amount, COLLATERAL);
    assert_eq!(s.provider_audits[&p].audits_failed, 1);
    assert_conserved(&s, supply);
}

#[derive(Clone, Debug)]
enum Op {
    Commit {
        p: usize,
        count: u64,
    },
    Verdict {
        who: usize,
        batch: prop::sample::Index,
        index: u64,
        passed: bool,
        /// Send it as the drawn auditor of job `index`, when there is one.
        drawn: bool,
    },
    Vote {
        /// Used when `member` is `None` (any key, usually refused).
        who: usize,
        /// Which committee member votes, when set.
        member: Option<prop::sample::Index>,
        dispute: prop::sample::Index,
        agree: bool,
    },
    Register {
        p: usize,
        stake: u64,
    },
    Deregister {
        p: usize,
    },
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    Bond {
        who: usize,
        amount: u64,
    },
    Unbond {
        who: usize,
        amount: u64,
    },
    Idle,
}

/// Keys in the property test: 0 and 1 providers, 2..=5 validators, 6 a client.
const PLAYERS: usize = 7;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, 1..5u64).prop_map(|(p, count)| Op::Commit { p, count }),
        6 => (2..PLAYERS, any::<prop::sample::Index>(), 0..5u64, any::<bool>(), prop::bool::weighted(0.7))
            .prop_map(|(who, batch, index, passed, drawn)| Op::Verdict { who, batch, index, passed, drawn }),
        8 => (0..PLAYERS, prop::option::weighted(0.8, any::<prop::sample::Index>()),
              any::<prop::sample::Index>(), prop::bool::weighted(0.7))
            .prop_map(|(who, member, dispute, agree)| Op::Vote { who, member, dispute, agree }),
        1 => (0..2usize, 100..2_000u64).prop_map(|(p, stake)| Op::Register { p, stake }),
        1 => (0..2usize).prop_map(|p| Op::Deregister { p }),
        1 => (0..PLAYERS, 0..PLAYERS, 0..500u64).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        1 => (0..PLAYERS, 0..200u64).prop_map(|(who, amount)| Op::Bond { who, amount }),
        1 => (2..6usize, 0..120u64).prop_map(|(who, amount)| Op::Unbond { who, amount }),
        2 => Just(Op::Idle),
    ]
}

fn pick(keys: Vec<Hash32>, i: &prop::sample::Index) -> Hash32 {
    if keys.is_empty() {
        Hash32::digest(b"nothing to pick")
    } else {
        keys[i.index(keys.len())]
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn audits_conserve_supply_and_slash_once_only_on_a_confirmed_majority(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        let k = keys(PLAYERS as u8);
        let mut s = genesis(&k);
        let supply = s.total_supply();
        for p in &k[..2] {
            ok(&mut s, p, register(COLLATERAL));
        }
        for v in &k[2..6] {
            ok(&mut s, v, TxKind::BondValidator { amount: BOND, take_ppm: 0 });
        }
        for op in ops {
            let before = s.clone();
            let mut voted: Option<(Hash32, AccountId, bool)> = None;
            match &op {
                Op::Commit { p, count } => {
                    send(&mut s, &k[*p], TxKind::CommitReceipts {
                        model: model().id, root: Hash32::digest(b"root"), count: *count,
                    });
                }
                Op::Verdict { who, batch, index, passed, drawn } => {
                    let b = pick(s.batches.keys().copied().collect(), batch);
                    let assigned = s.batches.get(&b).and_then(|x| {
                        x.audits.iter().find(|(i, _)| i == index).map(|(_, id)| *id)
                    });
                    let sender = match assigned {
                        Some(id) if *drawn => k.iter().find(|x| x.account() == id).unwrap(),
                        _ => &k[*who],
                    };
                    send(&mut s, sender, verdict(b, *index, *passed));
                }
                Op::Vote { who, member, dispute, agree } => {
                    let d = pick(s.disputes.keys().copied().collect(), dispute);
                    let committee = s.disputes.get(&d).map(|x| x.committee.clone()).unwrap_or_default();
                    let voter = match member {
                        Some(m) if !committee.is_empty() => {
                            let id = committee[m.index(committee.len())];
                            k.iter().find(|x| x.account() == id).unwrap()
                        }
                        _ => &k[*who],
                    };
                    voted = Some((d, voter.account(), *agree));
                    send(&mut s, voter, vote(d, *agree));
                }
                Op::Register { p, stake } => { send(&mut s, &k[*p], register(*stake)); }
                Op::Deregister { p } => { send(&mut s, &k[*p], TxKind::DeregisterProvider); }
                Op::Transfer { from, to, amount } => {
                    send(&mut s, &k[*from], TxKind::Transfer { to: k[*to].account(), amount: *amount });
                }
                Op::Bond { who, amount } => {
                    send(&mut s, &k[*who], TxKind::BondValidator { amount: *amount, take_ppm: 0 });
                }
                Op::Unbond { who, amount } => {
                    send(&mut s, &k[*who], TxKind::Unbond { validator: k[*who].account(), amount: *amount });
                }
                Op::Idle => { block(&mut s, None); }
            }
            prop_assert_eq!(s.total_supply() + s.burned, supply + s.emitted);
            // What a vote could decide, judged on the state before it.
            let decided = voted.and_then(|(d, voter, agree)| {
                let dispute = before.disputes.get(&d)?;
                let valid = dispute.committee.contains(&voter)
                    && !dispute.votes.iter().any(|(w, _)| *w == voter);
                let count = if agree { dispute.agreeing().len() } else { dispute.disagreeing() };
                (valid && count + 1 >= dispute.majority()).then(|| (dispute.clone(), agree))
            });
            for p in &k[..2] {
                let id = p.account();
                let was = before.provider_audits.get(&id).copied().unwrap_or_default();
                let now = s.provider_audits.get(&id).copied().unwrap_or_default();
                if was.slashed {
                    prop_assert_eq!(now, was, "a slashed provider's record is final");
                }
                if now.slashed {
                    prop_assert!(!s.providers.contains_key(&id));
                }
                if now.slashed && !was.slashed {
                    let Some((dispute, true)) = &decided else {
                        return Err(TestCaseError::fail(format!("{id} slashed without a confirming vote: {op:?}")));
                    };
                    prop_assert_eq!(dispute.provider, id);
                    let stake = before.providers.get(&id).map_or(0, |p| p.stake);
                    prop_assert_eq!(now.slashed_amount, stake);
                    prop_assert_eq!(now.audits_failed, was.audits_failed + 1);
                }
            }
            // Only the drawn auditor's verdict on a drawn job is ever recorded.
            for (batch, index, auditor) in s.verdicts.keys() {
                if !before.verdicts.contains_key(&(*batch, *index, *auditor)) {
                    prop_assert!(s.batches[batch].audits.contains(&(*index, *auditor)));
                }
            }
            if s.burned != before.burned {
                prop_assert!(decided.is_some(), "burned without a decided dispute: {:?}", op);
            }
            for d in s.disputes.values() {
                prop_assert!(d.committee.len() <= s.params.audit.committee_size as usize);
                prop_assert!(!d.committee.contains(&d.accuser) && !d.committee.contains(&d.provider));
                prop_assert!(s.height <= d.opened_at + DISPUTE_WINDOW);
            }
            for b in s.batches.values() {
                prop_assert!(s.height <= b.height + AUDIT_WINDOW);
            }
        }
    }
}

/// A job the sample did not draw can be audited on request: the auditor
/// comes from the batch's seed (never the provider or the requester), the
/// fee is burned, the audit joins the batch's and its verdict counts; a
/// request for a drawn or out-of-range job, or an unknown batch, is refused.
#[test]
fn a_requested_validation_draws_an_auditor_whose_verdict_counts() {
    let k = keys(6);
    let mut s = genesis(&k);
    s.params.audit.audit_rate_ppm = 0; // nothing is sampled
    s.params.audit.validation_fee = 7;
    let supply = s.total_supply();
    ok(&mut s, &k[0], register(COLLATERAL));
    for v in &k[1..=4] {
        let bond = TxKind::BondValidator {
            amount: BOND,
            take_ppm: 0,
        };
        ok(&mut s, v, bond);
    }
    let client = k[5].clone();
    let batch = commit(&mut s, &k[0], 4);
    let request = |index| TxKind::RequestValidation { batch, index };
    // The block after the commit draws (nothing, at rate 0) before any request lands.
    block(&mut s, None);
    assert!(s.batches[&batch].audits.is_empty(), "nothing sampled");
    assert!(matches!(
        send(&mut s, &client, request(4)),
        Some(TxError::IndexOutsideBatch { .. })
    ));
    assert!(matches!(
        send(
            &mut s,
            &client,
            TxKind::RequestValidation {
                batch: Hash32([9; 32]),
                index: 0
            }
        ),
        Some(TxError::UnknownBatch(_))
    ));
    let before = (s.account(&client.account()).balance, s.burned);
    ok(&mut s, &client, request(2));
    assert_eq!(s.account(&client.account()).balance, before.0 - 7);
    assert_eq!(s.burned, before.1 + 7);
    let audits = s.batches[&batch].audits.clone();
    assert_eq!(audits.len(), 1);
    let (index, auditor) = audits[0];
    assert_eq!(index, 2);
    assert!(auditor != k[0].account() && auditor != client.account());
    let seed = s.batches[&batch].seed.unwrap();
    let pool: Vec<_> = k[1..=4].iter().map(|v| (v.account(), BOND)).collect();
    assert_eq!(
        agora_types::audit::draw_auditor(&seed, &batch, 2, &pool),
        Some(auditor),
        "the auditor is the seed's stake-weighted pick, not the requester's"
    );
    assert_eq!(
        s.validation_requests[&(batch, 2)].requester,
        client.account()
    );
    assert!(matches!(
        send(&mut s, &client, request(2)),
        Some(TxError::AlreadyAudited { index: 2, .. })
    ));
    // Only the drawn auditor's verdict counts, and it does.
    let other = k[1..=4].iter().find(|v| v.account() != auditor).unwrap();
    assert!(matches!(
        send(&mut s, other, verdict(batch, 2, true)),
        Some(TxError::NotAssigned { .. })
    ));
    let drawn = k.iter().find(|v| v.account() == auditor).unwrap();
    ok(&mut s, drawn, verdict(batch, 2, true));
    assert_eq!(s.provider_audits[&k[0].account()].audits_passed, 1);
    assert_conserved(&s, supply);
    // The request leaves the state with its batch.
    for _ in 0..=AUDIT_WINDOW {
        block(&mut s, None);
    }
    assert!(s.validation_requests.is_empty());
}
