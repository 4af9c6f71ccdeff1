//! The attack suite of the ledger (issue 13, docs/threat-model.md): each
//! test runs an attack through real blocks under the default protocol
//! parameters and shows that it fails and that nothing honest is lost.

mod common;

use agora_ledger::{build_block, BlockCandidate, Params, State, TxError};
use agora_types::audit::{batch_id, dispute_id};
use agora_types::{AccountId, Hash32, Keypair, ModelEntry, Price, TxKind};

use common::{block, send, signed, verdict};

const CHAIN: &str = "attacks-test";
/// A chain that is not a development chain (the endpoint rule applies).
const PUBLIC_CHAIN: &str = "agora-attacks";
const PRICE: Price = Price {
    input_per_1k: 1,
    output_per_1k: 2,
};
const COLLATERAL: u64 = 1_000;

fn model() -> ModelEntry {
    common::model(b"attacked model", "attacked")
}

/// A chain with the default parameters (the real minimum bond), every key
/// funded with 1,000 tokens.
fn chain(keys: &[Keypair], adjust: impl FnOnce(&mut Params)) -> State {
    let mut g = common::genesis(CHAIN, keys, 1_000_000_000_000, vec![model()]);
    g.params = Params::default();
    adjust(&mut g.params);
    g.state().unwrap()
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

fn bond(amount: u64) -> TxKind {
    TxKind::BondValidator {
        amount,
        take_ppm: 0,
    }
}

fn commit(count: u64) -> TxKind {
    TxKind::CommitReceipts {
        model: model().id,
        root: Hash32::digest(&count.to_le_bytes()),
        count,
    }
}

/// Issue 13, #2 and #11: a 1-unit sybil cannot become a validator at all;
/// the minimum bond is what a refuted accusation or a drawn seat costs.
#[test]
fn a_bond_below_the_minimum_is_refused() {
    let k = common::keys(1, 140);
    let mut s = chain(&k, |_| {});
    let min = s.params.min_validator_bond;
    assert!(min >= 1_000_000, "default minimum bond {min}");
    assert_eq!(
        send(&mut s, &k[0], bond(1)),
        Some(TxError::BondTooLow {
            minimum: min,
            got: 1
        })
    );
    assert!(!s.validators.contains_key(&k[0].account()));
    ok(&mut s, &k[0], bond(min));
    // Topping up by 1 is fine once the minimum is met.
    ok(&mut s, &k[0], bond(1));
    assert_eq!(s.validators[&k[0].account()].self_stake, min + 1);
}

/// Issue 13, #5: re-registering with a smaller stake while audits or
/// disputes are open would take collateral out of reach of slashing.
#[test]
fn reregistering_with_less_stake_while_audited_is_refused() {
    let k = common::keys(1, 141);
    let mut s = chain(&k, |p| p.min_provider_stake = 1);
    let p = k[0].account();
    ok(&mut s, &k[0], register(COLLATERAL));
    ok(&mut s, &k[0], commit(2));
    let until = s.collateral_locked_until(&p).unwrap();
    let required = s.required_collateral(&s.providers[&p]);
    assert_eq!(
        send(&mut s, &k[0], register(required)),
        Some(TxError::CollateralLocked { provider: p, until })
    );
    assert_eq!(s.providers[&p].stake, COLLATERAL);
    // Raising it, or keeping it, is allowed while locked.
    ok(&mut s, &k[0], register(COLLATERAL + 10));
    assert_eq!(s.providers[&p].stake, COLLATERAL + 10);
    // Once the lock is over, lowering it is allowed again.
    while s.height + 1 < until {
        block(&mut s, None);
    }
    ok(&mut s, &k[0], register(required));
    assert_eq!(s.providers[&p].stake, required);
}

/// Issue 13, #6: `CommitReceipts{count: u64::MAX}` would make every auditor
/// iterate over 2^64 indices; more batches in one block than an RPC page
/// holds would stall every scanner. Both are refused by the ledger.
#[test]
fn oversized_batches_and_batch_floods_are_refused() {
    let k = common::keys(3, 142);
    let mut s = chain(&k, |p| {
        p.min_provider_stake = 1;
        p.audit.max_batches_per_block = 2;
    });
    for key in &k {
        ok(&mut s, key, register(COLLATERAL));
    }
    let max = s.params.audit.max_batch_jobs;
    assert_eq!(
        send(&mut s, &k[0], commit(u64::MAX)),
        Some(TxError::BatchTooLarge { max, got: u64::MAX })
    );
    assert_eq!(send(&mut s, &k[0], commit(max)), None);
    // Three commits in one block: the third is refused, the first two land.
    let txs = k.iter().map(|key| signed(&s, key, commit(1))).collect();
    let built = build_block(
        &s,
        BlockCandidate {
            proposer: AccountId([0; 32]),
            timestamp_ms: s.last_timestamp_ms + 1,
            txs,
            randomness: agora_types::Hash32::ZERO,
        },
    );
    assert_eq!(built.block.txs.len(), 2);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].1, TxError::BlockBatchesFull(2));
    s = built.state;
    // The next block has room again.
    assert_eq!(send(&mut s, &k[2], commit(1)), None);
}

/// Issue 13, #2 and #11: audits go to validators in proportion to stake, so
/// two sybils at the minimum bond beside three honest validators with 100
/// times more are drawn for about 0.7% of jobs, and they can neither pass
/// nor fail the jobs drawn for others.
#[test]
fn sybils_at_the_minimum_bond_are_drawn_in_proportion_to_stake_only() {
    let k = common::keys(6, 143);
    let mut s = chain(&k, |p| {
        p.min_provider_stake = 1;
        p.audit.audit_rate_ppm = 1_000_000;
    });
    let min = s.params.min_validator_bond;
    ok(&mut s, &k[0], register(COLLATERAL));
    for honest in &k[1..=3] {
        ok(&mut s, honest, bond(100 * min));
    }
    for sybil in &k[4..=5] {
        ok(&mut s, sybil, bond(min));
    }
    let sybils = [k[4].account(), k[5].account()];
    let (mut drawn, mut to_sybils) = (0usize, 0usize);
    for round in 0..16u8 {
        let id = batch_id(&k[0].account(), s.account(&k[0].account()).nonce);
        // Each round commits new receipts (a root is committed once).
        let batch = TxKind::CommitReceipts {
            model: model().id,
            root: Hash32::digest(&[b'r', round]),
            count: 64,
        };
        ok(&mut s, &k[0], batch);
        block(&mut s, None);
        let audits = &s.batches[&id].audits;
        drawn += audits.len();
        to_sybils += audits.iter().filter(|(_, a)| sybils.contains(a)).count();
        // A sybil's failing verdict on a job drawn for someone else is refused.
        let (index, auditor) = audits[0];
        let sybil = if sybils.contains(&auditor) {
            &k[5]
        } else {
            &k[4]
        };
        if sybil.account() != auditor {
            let fail = TxKind::SubmitVerdict {
                batch: id,
                index,
                leaf: Hash32::ZERO,
                passed: false,
                evidence: Hash32::ZERO,
            };
            assert!(matches!(
                send(&mut s, sybil, fail),
                Some(TxError::NotAssigned { .. })
            ));
            assert!(!s.disputes.contains_key(&dispute_id(&id, index)));
        }
    }
    assert_eq!(drawn, 16 * 64);
    // Expected 1024 × 2/302 ≈ 6.8 (sd ≈ 2.6).
    assert!(
        to_sybils <= 25,
        "sybils drawn for {to_sybils} of {drawn} jobs"
    );
}

/// Issue 13, #2: a refuted accusation burns a tenth of the accuser's bond,
/// which is at least the minimum bond: a false accusation is never free.
#[test]
fn a_refuted_false_accusation_costs_the_accuser_its_slash() {
    let k = common::keys(5, 144);
    let mut s = chain(&k, |p| {
        p.min_provider_stake = 1;
        p.audit.audit_rate_ppm = 1_000_000;
    });
    let min = s.params.min_validator_bond;
    ok(&mut s, &k[0], register(COLLATERAL));
    for v in &k[1..=4] {
        ok(&mut s, v, bond(min));
    }
    let id = batch_id(&k[0].account(), s.account(&k[0].account()).nonce);
    ok(&mut s, &k[0], commit(1));
    block(&mut s, None);
    let (index, accuser) = s.batches[&id].audits[0];
    let accuser_key = k.iter().find(|x| x.account() == accuser).unwrap();
    let fail = TxKind::SubmitVerdict {
        batch: id,
        index,
        leaf: Hash32::ZERO,
        passed: false,
        evidence: Hash32::ZERO,
    };
    ok(&mut s, accuser_key, fail);
    let dispute = dispute_id(&id, index);
    block(&mut s, None);
    let burned = s.burned;
    let mut votes = 0u128;
    for member in s.disputes[&dispute].committee.clone() {
        if !s.disputes.contains_key(&dispute) {
            break;
        }
        votes += 1;
        let key = k.iter().find(|x| x.account() == member).unwrap();
        ok(
            &mut s,
            key,
            TxKind::VoteDispute {
                dispute,
                agree: false,
            },
        );
    }
    assert!(!s.disputes.contains_key(&dispute));
    let fees = votes * u128::from(s.params.tx_fee);
    let cost = s.burned - burned - fees;
    assert_eq!(cost, u128::from(min / 10), "10% of the minimum bond");
    assert_eq!(s.validators[&accuser].self_stake, min - min / 10);
    assert_eq!(s.providers[&k[0].account()].stake, COLLATERAL);
    assert!(!s
        .provider_audits
        .get(&k[0].account())
        .is_some_and(|a| a.slashed));
}

/// Issue 13, #4: registering models is cheap, so an attacker registers junk
/// models, serves them itself and reveals weights for each. The pool is
/// split by the stake that revealed for each market (a validator's stake
/// divided among the markets it reveals for), so however many junk markets
/// it opens, the attacker takes about its share of stake, not N/(N+1).
#[test]
fn junk_models_earn_no_more_than_the_stake_behind_them() {
    use agora_types::weights_commitment;
    const TEMPO: u64 = 40;
    let k = common::keys(6, 150);
    let (honest_v, attacker_v, honest_p) = (&k[0], &k[1], &k[2]);
    let junk_p = &k[3..6];
    let mut s = chain(&k, |p| {
        p.min_provider_stake = 1;
        p.tempo_blocks = TEMPO;
    });
    let min = s.params.min_validator_bond;
    ok(&mut s, honest_v, bond(9 * min));
    ok(&mut s, attacker_v, bond(min));
    ok(&mut s, honest_p, register(COLLATERAL));
    let mut junk = Vec::new();
    for (i, p) in junk_p.iter().enumerate() {
        let m = ModelEntry {
            id: Hash32::digest(&[b'j', i as u8]),
            name: format!("junk-{i}"),
            owner: attacker_v.account(),
            ..model()
        };
        ok(
            &mut s,
            attacker_v,
            TxKind::RegisterModel { model: m.clone() },
        );
        let serve = TxKind::RegisterProvider {
            endpoint: "http://127.0.0.1:9001".into(),
            models: vec![m.id],
            price: Price::default(),
            stake: 1,
            replayable: true,
        };
        ok(&mut s, p, serve);
        junk.push((m.id, p.account()));
    }
    let mut markets = vec![(honest_v, model().id, honest_p.account())];
    markets.extend(junk.iter().map(|(m, p)| (attacker_v, *m, *p)));
    let salt = Hash32::digest(b"salt");
    let weights = |p: AccountId| vec![(p, u16::MAX)];
    while !(s.height + 1).is_multiple_of(TEMPO) {
        block(&mut s, None);
    }
    for (v, m, p) in &markets {
        let hash = weights_commitment(&v.account(), m, &weights(*p), &salt);
        ok(&mut s, v, TxKind::CommitWeights { model: *m, hash });
    }
    while !(s.height + 1).is_multiple_of(TEMPO) {
        block(&mut s, None);
    }
    for (v, m, p) in &markets {
        let reveal = TxKind::RevealWeights {
            model: *m,
            weights: weights(*p),
            salt,
        };
        ok(&mut s, v, reveal);
    }
    let earned = |s: &State, who: &[AccountId]| -> u128 {
        who.iter()
            .map(|a| s.earnings.get(a).map_or(0, |e| e.emissions))
            .sum()
    };
    let attacker: Vec<AccountId> = std::iter::once(attacker_v.account())
        .chain(junk_p.iter().map(|p| p.account()))
        .collect();
    let honest = [honest_v.account(), honest_p.account()];
    let (a0, h0) = (earned(&s, &attacker), earned(&s, &honest));
    while !(s.height + 1).is_multiple_of(TEMPO) {
        block(&mut s, None);
    }
    block(&mut s, None);
    let (a, h) = (earned(&s, &attacker) - a0, earned(&s, &honest) - h0);
    assert!(h > 0, "the honest market is paid");
    // Stake share 1/10; an equal split per market would have given 3/4. The
    // honest model has no owner, so its owner's cut (Yuma's default 18%)
    // stays in the pool: 0.1 / (0.1 + 0.9 × 0.82) ≈ 0.119 is the fair share.
    let share = a as f64 / (a + h) as f64;
    assert!(share <= 0.125, "attacker took {share:.3} of the emission");
}

/// Issue 13, #12: every applied transaction pays `tx_fee` (burned), so a
/// flood costs the flooder; a refused transaction pays nothing and changes
/// nothing; an account that cannot pay the fee cannot send.
#[test]
fn every_transaction_pays_the_fee_and_a_refused_one_pays_nothing() {
    let k = common::keys(2, 160);
    let mut s = chain(&k, |_| {});
    let fee = s.params.tx_fee;
    assert!(fee > 0, "the default genesis charges a fee");
    let (a, b) = (k[0].account(), k[1].account());
    let (before_a, before_b, burned) = (s.account(&a).balance, s.account(&b).balance, s.burned);
    let transfer = |to: AccountId, amount: u64| TxKind::Transfer { to, amount };
    ok(&mut s, &k[0], transfer(b, 5_000));
    assert_eq!(s.account(&a).balance, before_a - 5_000 - fee);
    assert_eq!(s.account(&b).balance, before_b + 5_000);
    assert_eq!(s.burned - burned, u128::from(fee));
    // Refused: more than the balance once the fee is counted. Nothing moves.
    let all = s.account(&a).balance;
    let snapshot = (s.account(&a), s.burned);
    assert!(matches!(
        send(&mut s, &k[0], transfer(b, all)),
        Some(TxError::InsufficientBalance { .. })
    ));
    assert_eq!((s.account(&a), s.burned), snapshot);
    // Drain `a` to below the fee: it can no longer send anything.
    ok(&mut s, &k[0], transfer(b, all - fee - fee / 2));
    assert!(s.account(&a).balance < fee);
    assert_eq!(
        send(&mut s, &k[0], transfer(b, 1)),
        Some(TxError::CannotPayFee {
            fee,
            available: s.account(&a).balance
        })
    );
    let supply = s.total_supply() + s.burned;
    assert_eq!(supply, 2 * 1_000_000_000_000 + s.emitted);
}

/// Issue 13, #12: 1-unit transfers to fresh accounts would grow the state
/// for free; a transfer that creates an account must carry the minimum.
#[test]
fn dust_transfers_cannot_create_accounts() {
    let k = common::keys(1, 161);
    let mut s = chain(&k, |_| {});
    let min = s.params.min_new_account_balance;
    let fresh = Keypair::from_seed([200; 32]).account();
    assert_eq!(
        send(
            &mut s,
            &k[0],
            TxKind::Transfer {
                to: fresh,
                amount: 1
            }
        ),
        Some(TxError::NewAccountTooSmall {
            minimum: min,
            got: 1
        })
    );
    assert!(!s.accounts.contains_key(&fresh));
    ok(
        &mut s,
        &k[0],
        TxKind::Transfer {
            to: fresh,
            amount: min,
        },
    );
    // Once it exists, any amount may follow.
    ok(
        &mut s,
        &k[0],
        TxKind::Transfer {
            to: fresh,
            amount: 1,
        },
    );
    assert_eq!(s.account(&fresh).balance, min + 1);
}

/// Issue 13, #14: a provider endpoint naming loopback, private or
/// link-local addresses (a cloud metadata service, the gateway's own admin
/// port) would make every gateway and validator dial into its own network.
/// Outside development chains the ledger refuses it.
#[test]
fn provider_endpoints_must_be_public_outside_development_chains() {
    let k = common::keys(1, 170);
    let mut g = common::genesis(PUBLIC_CHAIN, &k, 1_000_000_000_000, vec![model()]);
    g.params = Params::default();
    g.params.min_provider_stake = 1;
    let mut s = g.state().unwrap();
    let at = |endpoint: &str| TxKind::RegisterProvider {
        endpoint: endpoint.into(),
        models: vec![model().id],
        price: PRICE,
        stake: COLLATERAL,
        replayable: true,
    };
    for bad in [
        "http://127.0.0.1:9000",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5:8081",
        "http://[::1]:80",
        "http://localhost:8080",
        "http://admin@provider.example.com",
    ] {
        assert!(
            matches!(
                send(&mut s, &k[0], at(bad)),
                Some(TxError::InvalidField {
                    field: "endpoint",
                    ..
                })
            ),
            "{bad} accepted"
        );
    }
    assert!(!s.providers.contains_key(&k[0].account()));
    ok(&mut s, &k[0], at("https://provider.example.com:8081"));
    // A development chain (ids ending in -test here) may use loopback.
    let mut dev = chain(&k, |p| p.min_provider_stake = 1);
    ok(&mut dev, &k[0], at("http://127.0.0.1:9000"));
}

/// Issue 13, #14: a client using one key on two chains opens a channel to the
/// same provider with the same nonce on both. A voucher it signed on one
/// chain must not settle on the other: the chain is part of the channel id,
/// so the voucher names a channel the other chain does not have.
#[test]
fn a_voucher_signed_on_one_chain_does_not_pay_on_another() {
    let k = common::keys(2, 180);
    let (client, provider) = (&k[0], &k[1]);
    let on = |chain: &str| {
        let mut g = common::genesis(chain, &k, 1_000_000_000, vec![model()]);
        g.params.min_provider_stake = 1;
        let mut s = g.state().unwrap();
        ok(&mut s, provider, register(COLLATERAL));
        let open = TxKind::OpenChannel {
            provider: provider.account(),
            model: model().id,
            deposit: 10_000,
        };
        ok(&mut s, client, open);
        s
    };
    let (mut a, mut b) = (on("alpha-test"), on("beta-test"));
    let id_a = agora_types::channel_id("alpha-test", &client.account(), 0);
    let id_b = agora_types::channel_id("beta-test", &client.account(), 0);
    assert_ne!(id_a, id_b);
    assert!(a.channels.contains_key(&id_a) && b.channels.contains_key(&id_b));
    let voucher = agora_types::Voucher {
        channel: id_a,
        cumulative: 9_000,
        receipts_root: Hash32::ZERO,
        jobs: 1,
    }
    .sign(client);
    let settle = TxKind::SettleChannel { voucher };
    assert_eq!(
        send(&mut b, provider, settle.clone()),
        Some(TxError::UnknownChannel(id_a))
    );
    assert_eq!(b.channels[&id_b].paid, 0);
    ok(&mut a, provider, settle);
    assert_eq!(a.channels[&id_a].paid, 9_000);
}

/// Row 14f: squatting model names (first come, first served) and filling the
/// registry cost `model_registration_fee` each, burned; an account that
/// cannot pay it registers nothing and the name stays free.
#[test]
fn registering_a_model_burns_its_fee_so_squatting_names_costs() {
    let k = common::keys(2, 170);
    let (squatter, poor) = (&k[0], &k[1]);
    let mut s = chain(&k[..1], |_| {});
    let fee = s.params.model_registration_fee;
    assert_eq!(fee, agora_ledger::DEFAULT_MODEL_REGISTRATION_FEE);
    let tx_fee = s.params.tx_fee;
    let entry = |i: u8, owner: &Keypair| ModelEntry {
        id: Hash32::digest(&[b's', i]),
        name: format!("popular-name-{i}"),
        owner: owner.account(),
        ..model()
    };
    // A poor account (enough for the transaction fee only) registers nothing.
    ok(
        &mut s,
        squatter,
        TxKind::Transfer {
            to: poor.account(),
            amount: fee - 1 + tx_fee,
        },
    );
    // Supply + burned = genesis + emitted, whatever the registrations do.
    let genesis_supply = |s: &State| s.total_supply() + s.burned - s.emitted;
    let supply = genesis_supply(&s);
    assert_eq!(
        send(
            &mut s,
            poor,
            TxKind::RegisterModel {
                model: entry(0, poor)
            }
        ),
        Some(TxError::InsufficientBalance {
            account: poor.account(),
            needed: fee,
            available: fee - 1,
        })
    );
    assert!(s.model_by_name("popular-name-0").is_none());
    assert_eq!(s.account(&poor.account()).balance, fee - 1 + tx_fee);
    // Each squatted name costs the fee plus the transaction fee, burned.
    let names = 5u8;
    let before = s.account(&squatter.account()).balance;
    let burned_before = s.burned;
    for i in 0..names {
        ok(
            &mut s,
            squatter,
            TxKind::RegisterModel {
                model: entry(i, squatter),
            },
        );
    }
    let cost = u64::from(names) * (fee + tx_fee);
    assert_eq!(s.account(&squatter.account()).balance, before - cost);
    assert_eq!(s.burned - burned_before, u128::from(cost));
    assert_eq!(genesis_supply(&s), supply, "supply is conserved");
    // A refused registration (a taken name) costs nothing.
    let taken = ModelEntry {
        id: Hash32::digest(b"another file"),
        ..entry(0, squatter)
    };
    let balance = s.account(&squatter.account()).balance;
    assert_eq!(
        send(&mut s, squatter, TxKind::RegisterModel { model: taken }),
        Some(TxError::ModelNameTaken("popular-name-0".into()))
    );
    assert_eq!(s.account(&squatter.account()).balance, balance);
}

/// Issue 13, #7: an audit drawn to a validator that cannot replay the
/// batch's model (it audits another market) goes unjudged until its window
/// closes, so a cheater drawn that way escapes. Audits are drawn among the
/// validators of the batch's market, everyone only while nobody has joined it.
#[test]
fn audits_are_drawn_among_the_validators_of_the_batchs_market() {
    let k = common::keys(3, 180);
    let (ours, theirs, provider) = (&k[0], &k[1], &k[2]);
    let mut s = chain(&k, |p| {
        p.min_provider_stake = 1;
        p.tempo_blocks = 1_000;
        p.audit.audit_rate_ppm = 1_000_000;
    });
    let min = s.params.min_validator_bond;
    ok(&mut s, ours, bond(min));
    // The other validator has far more stake: without the rule it would be
    // drawn for nearly every job.
    ok(&mut s, theirs, bond(100 * min));
    ok(&mut s, provider, register(COLLATERAL));
    let other = ModelEntry {
        id: Hash32::digest(b"another market"),
        name: "another".into(),
        owner: theirs.account(),
        ..model()
    };
    ok(
        &mut s,
        theirs,
        TxKind::RegisterModel {
            model: other.clone(),
        },
    );
    // Nobody has joined the market yet: everyone may be drawn.
    ok(&mut s, provider, commit(32));
    block(&mut s, None);
    let drawn = |s: &State| -> Vec<AccountId> {
        let batch = s
            .batches
            .values()
            .filter(|b| b.provider == provider.account())
            .max_by_key(|b| b.height)
            .unwrap();
        batch.audits.iter().map(|(_, who)| *who).collect()
    };
    assert!(drawn(&s).contains(&theirs.account()));
    // Each validator joins its own market with a weight commitment.
    let hash = Hash32::digest(b"weights");
    ok(
        &mut s,
        ours,
        TxKind::CommitWeights {
            model: model().id,
            hash,
        },
    );
    ok(
        &mut s,
        theirs,
        TxKind::CommitWeights {
            model: other.id,
            hash,
        },
    );
    ok(&mut s, provider, commit(64));
    block(&mut s, None);
    let audits = drawn(&s);
    assert_eq!(audits.len(), 64);
    assert!(audits.iter().all(|who| *who == ours.account()));
}

/// Found by the soak: weights follow passed audits, so a provider that
/// commits the same receipts root again has the same (honest) jobs drawn,
/// audited and passed again, inflating its share of emission for the fee.
/// A root already in one of its live batches is refused.
#[test]
fn recommitting_a_root_to_inflate_passed_audits_is_refused() {
    let k = common::keys(1, 190);
    let provider = &k[0];
    let mut s = chain(&k, |p| p.min_provider_stake = 1);
    ok(&mut s, provider, register(COLLATERAL));
    ok(&mut s, provider, commit(8));
    let live = s.batches.len();
    let root = Hash32::digest(&8u64.to_le_bytes());
    assert_eq!(
        send(&mut s, provider, commit(8)),
        Some(TxError::DuplicateBatch(root))
    );
    assert_eq!(s.batches.len(), live, "no second batch");
    // Another root is a new batch.
    ok(&mut s, provider, commit(9));
    assert_eq!(s.batches.len(), live + 1);
}

/// `register(COLLATERAL)` declaring the provider's jobs `replayable` or not.
fn register_as(replayable: bool) -> TxKind {
    let stake = if replayable {
        COLLATERAL
    } else {
        COLLATERAL * agora_types::audit::STATISTICAL_MIN_FLAGS
    };
    let mut kind = register(stake);
    if let TxKind::RegisterProvider { replayable: r, .. } = &mut kind {
        *r = replayable;
    }
    kind
}

/// Issue 13, #9: a provider judged statistically is disputed only after
/// `STATISTICAL_MIN_FLAGS` flags, so it could cheat that many times longer
/// than a replayable one before a slash; it locks that many times the
/// collateral, keeping the expected slash per cheated job the same.
#[test]
fn a_provider_judged_statistically_locks_collateral_for_every_flag_it_may_take() {
    use agora_types::audit::STATISTICAL_MIN_FLAGS;
    let k = common::keys(2, 230);
    let mut s = chain(&k, |p| p.min_provider_stake = 1);
    let replayable = register_as(true);
    let TxKind::RegisterProvider { stake, .. } = replayable else {
        unreachable!()
    };
    let mut upstream = register_as(false);
    if let TxKind::RegisterProvider { stake: st, .. } = &mut upstream {
        *st = stake;
    }
    // The replayable provider's collateral is too little for statistical judging.
    let required = match send(&mut s, &k[0], upstream) {
        Some(TxError::CollateralTooLow {
            required, multiple, ..
        }) => {
            assert_eq!(
                multiple,
                s.params.audit.collateral_multiple * STATISTICAL_MIN_FLAGS
            );
            required
        }
        other => panic!("expected CollateralTooLow, got {other:?}"),
    };
    ok(&mut s, &k[1], register_as(true));
    let replayable_required = s.required_collateral(&s.providers[&k[1].account()]);
    assert_eq!(required, replayable_required * STATISTICAL_MIN_FLAGS);
    ok(&mut s, &k[0], register_as(false));
    assert_eq!(
        s.required_collateral(&s.providers[&k[0].account()]),
        required
    );
}

/// A chain where `k[0]` provides (registered by `registration`) and the
/// `n - 1` other keys are validators at the minimum bond, with a batch of
/// `jobs` committed and every job drawn: the state, keys and batch id.
fn audited(n: u8, seed: u8, registration: TxKind, jobs: u64) -> (State, Vec<Keypair>, Hash32) {
    let k = common::keys(n, seed);
    let mut s = chain(&k, |p| {
        p.min_provider_stake = 1;
        p.audit.audit_rate_ppm = 1_000_000;
    });
    let min = s.params.min_validator_bond;
    for validator in &k[1..] {
        ok(&mut s, validator, bond(min));
    }
    ok(&mut s, &k[0], registration);
    let id = batch_id(&k[0].account(), s.account(&k[0].account()).nonce);
    ok(&mut s, &k[0], commit(jobs));
    block(&mut s, None);
    (s, k, id)
}

/// Issue 13, #9: a provider that forwards to an upstream server declares
/// it on chain (`replayable: false`); its honest jobs never replay exactly,
/// so failing verdicts only flag it. A dispute (and so a slash) needs a
/// pattern: at least `STATISTICAL_MIN_FLAGS` flags, outnumbering its passes.
#[test]
fn an_upstream_provider_is_flagged_not_slashed_until_a_pattern_shows() {
    use agora_types::audit::STATISTICAL_MIN_FLAGS;
    let (mut s, k, id) = audited(3, 200, register_as(false), 24);
    let provider = &k[0];
    assert!(!s.providers[&provider.account()].replayable);
    let audits = s.batches[&id].audits.clone();
    assert_eq!(audits.len(), 24);
    let key_of = |who: &AccountId| k.iter().find(|x| x.account() == *who).unwrap();
    let record = |s: &State| s.provider_audits[&provider.account()];
    // Ten passes, then failing verdicts: each only flags while flags are
    // fewer than STATISTICAL_MIN_FLAGS or do not outnumber the passes.
    for (index, who) in &audits[..10] {
        ok(&mut s, key_of(who), verdict(id, *index, true));
    }
    for (n, (index, who)) in audits[10..20].iter().enumerate() {
        ok(&mut s, key_of(who), verdict(id, *index, false));
        assert!(s.disputes.is_empty(), "flag {} opened a dispute", n + 1);
    }
    let r = record(&s);
    assert_eq!((r.audits_passed, r.audits_flagged), (10, 10));
    assert!(!r.slashed && s.providers.contains_key(&provider.account()));
    // The eleventh flag outnumbers the passes: this one goes to a committee.
    let (index, who) = audits[20];
    ok(&mut s, key_of(&who), verdict(id, index, false));
    assert_eq!(s.disputes.len(), 1);
    assert!(s.disputes.contains_key(&dispute_id(&id, index)));
    assert!(record(&s).audits_flagged >= STATISTICAL_MIN_FLAGS);
}

/// The same failing verdict on a replayable provider's job opens a dispute at once.
#[test]
fn a_replayable_providers_failed_audit_goes_to_a_committee_at_once() {
    let (mut s, k, id) = audited(2, 210, register_as(true), 2);
    ok(&mut s, &k[1], verdict(id, 0, false));
    assert_eq!(s.disputes.len(), 1);
    let flagged = s
        .provider_audits
        .get(&k[0].account())
        .map_or(0, |r| r.audits_flagged);
    assert_eq!(flagged, 0);
}

/// Issue 13, #9: a replayable provider caught by exact replay re-registers
/// as an upstream one before the committee votes, so that the committee
/// judges the disputed job statistically (leniently) and the accuser pays.
/// While a verdict or dispute can reach its jobs the flag cannot change.
#[test]
fn a_caught_provider_cannot_switch_to_statistical_judging() {
    let (mut s, k, id) = audited(2, 220, register_as(true), 2);
    let provider = &k[0];
    ok(&mut s, &k[1], verdict(id, 0, false));
    assert_eq!(s.disputes.len(), 1);
    assert!(matches!(
        send(&mut s, provider, register_as(false)),
        Some(TxError::CollateralLocked { .. })
    ));
    assert!(s.providers[&provider.account()].replayable);
    // Re-registering without the switch (a new endpoint, say) is still allowed.
    ok(&mut s, provider, register(COLLATERAL));
}
