//! The consensus committee: only bonded validators announce endpoints, keys
//! are unique, and at each committee epoch boundary (and only there) the
//! validators with the most bonded stake among those with endpoints are
//! elected, identically however the stake got there.

mod common;

use agora_ledger::{State, TxError};
use agora_types::{possession_message, AccountId, Keypair, TxKind};

use common::{block, send};
use proptest::prelude::*;

const CHAIN: &str = "committee-test";
const EPOCH: u64 = 4;
const MAX: u32 = 3;

fn keys(n: u8) -> Vec<Keypair> {
    common::keys(n, 90)
}

fn genesis(keys: &[Keypair]) -> State {
    let mut g = common::genesis(CHAIN, keys, 1_000_000, vec![]);
    g.params.emission_per_block = 0;
    g.params.committee.epoch_blocks = EPOCH;
    g.params.committee.max_members = MAX;
    g.state().unwrap()
}

/// The consensus key of node `i`.
fn node_key(i: usize) -> Keypair {
    Keypair::from_seed([i as u8 + 1; 32])
}

/// `sender` announces node `i`'s consensus key, proving it holds it.
fn announce(sender: &Keypair, i: usize) -> TxKind {
    let node = node_key(i);
    TxKind::AnnounceValidator {
        consensus_key: node.account(),
        p2p_addr: format!("127.0.0.1:{}", 27_000 + i),
        possession: node.sign(&possession_message(CHAIN, &sender.account())),
    }
}

fn bond(amount: u64) -> TxKind {
    TxKind::BondValidator {
        amount,
        take_ppm: 0,
    }
}

fn members(s: &State) -> Vec<AccountId> {
    s.committee.members.iter().map(|m| m.validator).collect()
}

#[test]
fn announcements_need_a_bond_a_valid_address_and_a_fresh_key() {
    let k = keys(3);
    let mut s = genesis(&k);
    assert_eq!(
        send(&mut s, &k[0], announce(&k[0], 0)),
        Some(TxError::NotAValidator(k[0].account()))
    );
    assert_eq!(send(&mut s, &k[0], bond(100)), None);
    let mut bad_addr = announce(&k[0], 0);
    if let TxKind::AnnounceValidator { p2p_addr, .. } = &mut bad_addr {
        *p2p_addr = "no-port".into();
    }
    assert!(matches!(
        send(&mut s, &k[0], bad_addr),
        Some(TxError::InvalidField {
            field: "p2p_addr",
            ..
        })
    ));
    assert_eq!(send(&mut s, &k[0], announce(&k[0], 0)), None);
    assert_eq!(send(&mut s, &k[1], bond(100)), None);
    // Validator 1 may not claim validator 0's consensus key, even holding it.
    assert_eq!(
        send(&mut s, &k[1], announce(&k[1], 0)),
        Some(TxError::ConsensusKeyTaken(node_key(0).account()))
    );
    // Validator 0 may re-announce (a new address) with its own key.
    let mut moved = announce(&k[0], 0);
    if let TxKind::AnnounceValidator { p2p_addr, .. } = &mut moved {
        *p2p_addr = "10.0.0.5:9000".into();
    }
    assert_eq!(send(&mut s, &k[0], moved), None);
    assert_eq!(
        s.validator_endpoints[&k[0].account()].p2p_addr,
        "10.0.0.5:9000"
    );
}

/// Issue 13, #14: without a proof of possession, anyone bonded could
/// announce a victim's consensus key first (first come, first served) and
/// keep the victim's node off the committee. The key must sign the
/// announcing validator and the chain; nothing else passes.
#[test]
fn announcing_a_consensus_key_needs_its_signature_for_this_validator_and_chain() {
    let k = keys(2);
    let mut s = genesis(&k);
    let (victim, thief) = (&k[0], &k[1]);
    assert_eq!(send(&mut s, thief, bond(100)), None);
    assert_eq!(send(&mut s, victim, bond(100)), None);
    let key = node_key(0).account();
    let forged = |possession| TxKind::AnnounceValidator {
        consensus_key: key,
        p2p_addr: "127.0.0.1:27000".into(),
        possession,
    };
    // Signed by the thief's own key, replayed from the victim's proof, or
    // made for another chain: all refused, and nothing is recorded.
    let attempts = [
        thief.sign(&possession_message(CHAIN, &thief.account())),
        node_key(0).sign(&possession_message(CHAIN, &victim.account())),
        node_key(0).sign(&possession_message("another-chain", &thief.account())),
    ];
    for possession in attempts {
        assert_eq!(
            send(&mut s, thief, forged(possession)),
            Some(TxError::BadPossession(key))
        );
    }
    assert!(s.validator_endpoints.is_empty());
    // The victim, holding its key, announces it.
    assert_eq!(send(&mut s, victim, announce(victim, 0)), None);
    assert_eq!(s.validator_endpoints[&victim.account()].consensus_key, key);
}

#[test]
fn the_committee_changes_only_at_epoch_boundaries() {
    let k = keys(5);
    let mut s = genesis(&k);
    // Stakes 100, 200, 300, 400 for validators 0..4 with endpoints; 4 bonds most but never announces.
    for (i, key) in k.iter().enumerate().take(4) {
        assert_eq!(send(&mut s, key, bond(100 * (i as u64 + 1))), None);
        assert_eq!(send(&mut s, key, announce(key, i)), None);
    }
    assert_eq!(send(&mut s, &k[4], bond(10_000)), None);
    // Advance to the next boundary: the top 3 by stake among announced
    // validators, largest first, are elected there.
    block(&mut s, None);
    while !s.height.is_multiple_of(EPOCH) {
        block(&mut s, None);
    }
    assert_eq!(s.committee.epoch, s.height / EPOCH);
    assert_eq!(
        members(&s),
        vec![k[3].account(), k[2].account(), k[1].account()]
    );
    let elected = s.committee.clone();

    // Validator 0 gains stake mid-epoch: no change until the next boundary.
    assert_eq!(send(&mut s, &k[0], bond(1_000)), None);
    assert!(!s.height.is_multiple_of(EPOCH));
    assert_eq!(s.committee, elected);
    while !s.height.is_multiple_of(EPOCH) {
        block(&mut s, None);
    }
    assert_eq!(
        members(&s),
        vec![k[0].account(), k[3].account(), k[2].account()]
    );
    assert_eq!(s.committee.members[0].stake, 1_100);
    assert_eq!(s.committee.epoch, elected.epoch + 1);
}

#[derive(Clone, Debug)]
enum Op {
    Bond { who: usize, amount: u64 },
    Announce { who: usize },
    Unbond { who: usize, amount: u64 },
    Empty,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..6usize, 1..500u64).prop_map(|(who, amount)| Op::Bond { who, amount }),
        2 => (0..6usize).prop_map(|who| Op::Announce { who }),
        1 => (0..6usize, 1..300u64).prop_map(|(who, amount)| Op::Unbond { who, amount }),
        2 => Just(Op::Empty),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// After any sequence, the committee is exactly the top `MAX` announced
    /// validators by stake as of its election block, it changed only at
    /// boundaries, and it is never emptied once elected.
    #[test]
    fn committee_is_the_stake_top_at_each_boundary(ops in prop::collection::vec(op(), 1..40)) {
        let k = keys(6);
        let mut s = genesis(&k);
        let mut last = s.committee.clone();
        for op in ops {
            let before = s.clone();
            match op {
                Op::Bond { who, amount } => { send(&mut s, &k[who], bond(amount)); }
                Op::Announce { who } => { send(&mut s, &k[who], announce(&k[who], who)); }
                Op::Unbond { who, amount } => {
                    send(&mut s, &k[who], TxKind::Unbond { validator: k[who].account(), amount });
                }
                Op::Empty => { block(&mut s, None); }
            }
            if s.committee != last {
                prop_assert_eq!(s.height % EPOCH, 0, "committee changed off a boundary");
                prop_assert!(!s.committee.members.is_empty());
                // Elected from the stake as of the previous block.
                prop_assert_eq!(&s.committee.members, &before.elect_committee());
                last = s.committee.clone();
            } else if s.height.is_multiple_of(EPOCH) {
                // A boundary without change: nobody to elect, or the same set again.
                let fresh = before.elect_committee();
                prop_assert!(fresh.is_empty() || fresh == s.committee.members);
            }
            let m = &s.committee.members;
            prop_assert!(m.len() <= MAX as usize);
            prop_assert!(m.windows(2).all(|w| w[0].stake >= w[1].stake));
        }
    }
}
