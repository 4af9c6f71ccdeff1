//! Weights commit-reveal and the per-tempo reward distribution: reveals are
//! accepted only in the epoch after their commit and only if they match;
//! each epoch boundary pays the emission pool out exactly (providers,
//! validators with their delegators minus take, the model owner); and a
//! validator that copies the last consensus instead of judging providers
//! earns less than the honest ones.

use agora_ledger::{build_block, BlockCandidate, State, TxError};
use agora_testkit::GenesisBuilder;
use agora_types::{
    weights_commitment, AccountId, Hash32, Keypair, ModelEntry, Price, SignedTransaction,
    Transaction, TxKind,
};

const CHAIN: &str = "rewards-test";

/// Weights and salt a validator committed and will reveal.
type Committed = (Vec<(AccountId, u16)>, Hash32);
const TEMPO: u64 = 5;

fn keys(n: u8) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::from_seed([i + 150; 32])).collect()
}

fn model(owner: AccountId) -> ModelEntry {
    ModelEntry {
        id: Hash32::digest(b"rewarded model"),
        name: "rewarded".into(),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: 1,
        license: "MIT".into(),
        owner,
        royalty_ppm: 0,
        tokenizer_hash: Default::default(),
    }
}

fn genesis(keys: &[Keypair], owner: AccountId) -> State {
    GenesisBuilder::new(CHAIN)
        .fund_keys(keys, 1_000_000)
        .model(model(owner))
        .params(|p| {
            p.tempo_blocks = TEMPO;
            p.emission_per_block = 10_000;
            p.min_validator_bond = 1;
            p.tx_fee = 0;
        })
        .state()
}

fn signed(s: &State, key: &Keypair, nonce_offset: u64, kind: TxKind) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN.into(),
        from: key.account(),
        nonce: s.account(&key.account()).nonce + nonce_offset,
        kind,
    }
    .sign(key)
}

/// One block with `txs`; returns the rejections.
fn block(s: &mut State, txs: Vec<SignedTransaction>) -> Vec<TxError> {
    let built = build_block(
        s,
        BlockCandidate {
            proposer: AccountId([0; 32]),
            timestamp_ms: s.last_timestamp_ms + 1,
            txs,
            randomness: agora_types::Hash32::ZERO,
        },
    );
    *s = built.state;
    built.rejected.into_iter().map(|(_, e)| e).collect()
}

fn send(s: &mut State, key: &Keypair, kind: TxKind) -> Result<(), TxError> {
    let tx = signed(s, key, 0, kind);
    block(s, vec![tx]).into_iter().next().map_or(Ok(()), Err)
}

/// Blocks until the next one to be built is the first of an epoch.
fn to_epoch_start(s: &mut State) {
    while !(s.height + 1).is_multiple_of(TEMPO) {
        block(s, vec![]);
    }
}

fn commit(key: &Keypair, m: Hash32, w: &[(AccountId, u16)], salt: Hash32) -> TxKind {
    TxKind::CommitWeights {
        model: m,
        hash: weights_commitment(&key.account(), &m, w, &salt),
    }
}

fn reveal(m: Hash32, w: &[(AccountId, u16)], salt: Hash32) -> TxKind {
    TxKind::RevealWeights {
        model: m,
        weights: w.to_vec(),
        salt,
    }
}

fn setup(
    validators: &[&Keypair],
    providers: &[&Keypair],
    owner: AccountId,
    all: &[Keypair],
) -> State {
    let mut s = genesis(all, owner);
    let m = model(owner).id;
    for v in validators {
        let bond = TxKind::BondValidator {
            amount: 100_000,
            take_ppm: 0,
        };
        send(&mut s, v, bond).unwrap();
    }
    for p in providers {
        let serve = TxKind::RegisterProvider {
            endpoint: "http://p:1".into(),
            models: vec![m],
            price: Price::default(),
            stake: 1,
            replayable: true,
        };
        send(&mut s, p, serve).unwrap();
    }
    s
}

#[test]
fn reveals_only_in_the_next_epoch_and_only_if_they_match() {
    let k = keys(3);
    let (v, p, outsider) = (&k[0], &k[1], &k[2]);
    let mut s = setup(&[v], &[p], AccountId([0; 32]), &k);
    let m = model(AccountId([0; 32])).id;
    let w = vec![(p.account(), 100)];
    let salt = Hash32::digest(b"salt");
    assert_eq!(
        send(&mut s, outsider, commit(outsider, m, &w, salt)),
        Err(TxError::NotAValidator(outsider.account()))
    );
    to_epoch_start(&mut s);
    block(&mut s, vec![]);
    let committed_in = s.epoch_of(s.height + 1).unwrap();
    send(&mut s, v, commit(v, m, &w, salt)).unwrap();
    // Same epoch: too early.
    assert_eq!(
        send(&mut s, v, reveal(m, &w, salt)),
        Err(TxError::NoWeightCommit {
            model: m,
            epoch: committed_in
        })
    );
    to_epoch_start(&mut s);
    // Next epoch: a different salt or weights do not match; the right ones do, once.
    assert_eq!(
        send(&mut s, v, reveal(m, &w, Hash32::digest(b"other"))),
        Err(TxError::WeightsMismatch)
    );
    assert_eq!(
        send(&mut s, v, reveal(m, &[(p.account(), 101)], salt)),
        Err(TxError::WeightsMismatch)
    );
    send(&mut s, v, reveal(m, &w, salt)).unwrap();
    assert!(
        send(&mut s, v, reveal(m, &w, salt)).is_err(),
        "revealed twice"
    );

    // A commit left unrevealed for two epochs can no longer be revealed.
    send(&mut s, v, commit(v, m, &w, salt)).unwrap();
    to_epoch_start(&mut s);
    block(&mut s, vec![]);
    to_epoch_start(&mut s);
    block(&mut s, vec![]);
    assert!(matches!(
        send(&mut s, v, reveal(m, &w, salt)),
        Err(TxError::NoWeightCommit { .. })
    ));
    let twice = vec![(p.account(), 1), (p.account(), 2)];
    assert!(matches!(
        send(&mut s, v, reveal(m, &twice, salt)),
        Err(TxError::InvalidField {
            field: "weights",
            ..
        })
    ));
}

#[test]
fn a_boundary_pays_the_pool_out_exactly_with_delegators_and_owner() {
    let k = keys(5);
    let (v, p1, p2, owner, delegator) = (&k[0], &k[1], &k[2], &k[3], &k[4]);
    let mut s = setup(&[v], &[p1, p2], owner.account(), &k);
    let m = model(owner.account()).id;
    // The validator keeps 50% of its delegators' share.
    send(
        &mut s,
        v,
        TxKind::BondValidator {
            amount: 1,
            take_ppm: 500_000,
        },
    )
    .unwrap();
    let delegate = TxKind::Delegate {
        validator: v.account(),
        amount: 100_001,
    };
    send(&mut s, delegator, delegate).unwrap();
    let w = vec![(p1.account(), 3), (p2.account(), 1)];
    let salt = Hash32::digest(b"s");
    to_epoch_start(&mut s);
    send(&mut s, v, commit(v, m, &w, salt)).unwrap();
    to_epoch_start(&mut s);
    send(&mut s, v, reveal(m, &w, salt)).unwrap();
    to_epoch_start(&mut s);
    let before = s.clone();
    block(&mut s, vec![]);
    let minted = s.emitted - before.emitted;
    let pool_before = u128::from(before.emission_pool) + minted;
    let paid = pool_before - u128::from(s.emission_pool);
    assert!(paid > 0, "nothing was paid out");
    let gain = |a: &Keypair| {
        u128::from(s.account(&a.account()).balance - before.account(&a.account()).balance)
    };
    let (gv, g1, g2, go, gd) = (gain(v), gain(p1), gain(p2), gain(owner), gain(delegator));
    assert_eq!(
        gv + g1 + g2 + go + gd,
        paid,
        "paid out more or less than left the pool"
    );
    assert_eq!(go, paid * 18 / 100, "the owner cut is 18%");
    assert!(
        g1 > 2 * g2,
        "incentive follows the 3:1 weights ({g1} vs {g2})"
    );
    // Half the dividend belongs to the delegator's stake; the validator takes half of that.
    let dividend = gv + gd;
    assert!(
        gd.abs_diff(dividend / 4) <= 1,
        "delegator got {gd} of {dividend}"
    );
    for (a, g) in [(v, gv), (p1, g1), (p2, g2), (owner, go), (delegator, gd)] {
        assert_eq!(s.earnings(&a.account()).emissions, g);
    }
    assert!(s.markets.reveals.is_empty(), "reveals are consumed");
    assert_eq!(s.markets.consensus[&m].len(), 2);
}

/// Providers' quality rotates every epoch; honest validators rate the
/// current best provider highest; a copier reveals the consensus it saw
/// when committing. Over many epochs the copier earns less than every honest validator.
#[test]
fn a_weight_copier_earns_less_than_honest_validators() {
    let k = keys(7);
    let validators: Vec<&Keypair> = k[..4].iter().collect();
    let providers: Vec<&Keypair> = k[4..7].iter().collect();
    let copier = validators[3];
    let mut s = setup(&validators, &providers, AccountId([0; 32]), &k);
    let m = model(AccountId([0; 32])).id;
    let start: Vec<u64> = validators
        .iter()
        .map(|v| s.account(&v.account()).balance)
        .collect();
    let mut pending: Vec<Option<Committed>> = vec![None; 4];
    for epoch in 0..16u64 {
        to_epoch_start(&mut s);
        // The consensus a copier sees lags its commit by three epochs: rotate
        // with period 2 so the lag shows (period 3 would alias to no lag).
        let best = (epoch % 2) as usize;
        let honest: Vec<(AccountId, u16)> = providers
            .iter()
            .enumerate()
            .map(|(j, p)| (p.account(), if j == best { 60_000 } else { 5_000 }))
            .collect();
        let copied: Vec<(AccountId, u16)> = match s.markets.consensus.get(&m) {
            Some(c) => c
                .iter()
                .map(|(p, x)| (*p, (x >> 16).min(u64::from(u16::MAX)) as u16))
                .collect(),
            None => honest.clone(),
        };
        let mut txs = Vec::new();
        for (i, v) in validators.iter().enumerate() {
            let mut offset = 0;
            if let Some((w, salt)) = pending[i].take() {
                txs.push(signed(&s, v, offset, reveal(m, &w, salt)));
                offset += 1;
            }
            let w = if v.account() == copier.account() {
                copied.clone()
            } else {
                honest.clone()
            };
            let salt = Hash32::digest(&[i as u8, epoch as u8]);
            txs.push(signed(&s, v, offset, commit(v, m, &w, salt)));
            pending[i] = Some((w, salt));
        }
        assert_eq!(
            block(&mut s, txs),
            vec![],
            "every commit and reveal applies"
        );
    }
    let earned: Vec<u64> = validators
        .iter()
        .zip(&start)
        .map(|(v, b)| s.account(&v.account()).balance - b)
        .collect();
    println!("validators' earnings (copier last): {earned:?}");
    let best_honest = earned[..3].iter().copied().min().unwrap();
    assert!(best_honest > 0);
    assert!(
        earned[3] < best_honest,
        "the copier earned {} but an honest validator only {best_honest}: {earned:?}",
        earned[3]
    );
}
