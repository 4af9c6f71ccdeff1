//! Staking: bonding, delegation and unbonding with exact balances; unbonding
//! stake is still slashable; random sequences conserve supply plus burned
//! stake and keep each validator's delegated total equal to its delegations.

mod common;

use agora_ledger::{State, TxError, PPM};
use agora_types::{Keypair, TxKind};

use common::{block, send};
use proptest::prelude::*;

const CHAIN: &str = "staking-test";
const UNBONDING: u64 = 5;

fn keys(n: u8) -> Vec<Keypair> {
    common::keys(n, 40)
}

fn genesis(keys: &[Keypair], balance: u64) -> State {
    let mut g = common::genesis(CHAIN, keys, balance, vec![]);
    g.params.unbonding_blocks = UNBONDING;
    // Emission is tested on its own (tests/emission.rs); here it would only blur balances.
    g.params.emission_per_block = 0;
    g.state().unwrap()
}

#[test]
fn bond_delegate_unbond_and_release() {
    let k = keys(3);
    let (val, del, other) = (&k[0], &k[1], &k[2]);
    let mut s = genesis(&k, 10_000);
    let supply = s.total_supply();
    assert_eq!(
        send(
            &mut s,
            del,
            TxKind::Delegate {
                validator: val.account(),
                amount: 1
            }
        ),
        Some(TxError::NotAValidator(val.account()))
    );
    let bond = TxKind::BondValidator {
        amount: 1_000,
        take_ppm: 180_000,
    };
    assert_eq!(send(&mut s, val, bond), None);
    let delegate = TxKind::Delegate {
        validator: val.account(),
        amount: 500,
    };
    assert_eq!(send(&mut s, del, delegate), None);
    assert_eq!(s.validator_stakes()[&val.account()], 1_500);
    assert_eq!(s.account(&del.account()).balance, 9_500);
    let too_much = TxKind::Unbond {
        validator: val.account(),
        amount: 501,
    };
    assert_eq!(
        send(&mut s, del, too_much),
        Some(TxError::InsufficientStake {
            needed: 501,
            bonded: 500
        })
    );
    let not_mine = TxKind::Unbond {
        validator: val.account(),
        amount: 1,
    };
    assert!(matches!(
        send(&mut s, other, not_mine),
        Some(TxError::InsufficientStake { bonded: 0, .. })
    ));

    let unbond = TxKind::Unbond {
        validator: val.account(),
        amount: 200,
    };
    assert_eq!(send(&mut s, del, unbond), None);
    let started = s.height;
    assert_eq!(s.validator_stakes()[&val.account()], 1_300);
    assert_eq!(s.unbonding.len(), 1);
    assert_eq!(s.total_supply(), supply);
    // Not back before the unbonding period, back exactly at its end.
    while s.height + 1 < started + UNBONDING {
        block(&mut s, None);
        assert_eq!(s.account(&del.account()).balance, 9_500);
    }
    block(&mut s, None);
    assert_eq!(s.account(&del.account()).balance, 9_700);
    assert!(s.unbonding.is_empty());
    assert_eq!(s.total_supply(), supply);

    // The validator unbonds everything: it stops being a validator.
    let all = TxKind::Unbond {
        validator: val.account(),
        amount: 1_000,
    };
    assert_eq!(send(&mut s, val, all), None);
    let left = TxKind::Unbond {
        validator: val.account(),
        amount: 300,
    };
    assert_eq!(send(&mut s, del, left), None);
    assert!(s.validators.is_empty());
    assert!(s.delegations.is_empty());
}

#[test]
fn unbonding_stake_is_still_slashable() {
    let k = keys(2);
    let (val, del) = (&k[0], &k[1]);
    let mut s = genesis(&k, 10_000);
    let supply = s.total_supply();
    send(
        &mut s,
        val,
        TxKind::BondValidator {
            amount: 1_000,
            take_ppm: 0,
        },
    );
    send(
        &mut s,
        del,
        TxKind::Delegate {
            validator: val.account(),
            amount: 500,
        },
    );
    send(
        &mut s,
        del,
        TxKind::Unbond {
            validator: val.account(),
            amount: 200,
        },
    );
    let slashed = s.slash_validator(&val.account(), PPM / 10);
    assert_eq!(slashed.bonded, 100 + 30);
    assert_eq!(slashed.unbonding, 20);
    assert_eq!(s.validators[&val.account()].self_stake, 900);
    assert_eq!(s.validators[&val.account()].delegated, 270);
    assert_eq!(s.delegations[&(del.account(), val.account())], 270);
    assert_eq!(s.total_supply() + s.burned, supply);
    for _ in 0..UNBONDING {
        block(&mut s, None);
    }
    assert_eq!(s.account(&del.account()).balance, 9_500 + 180);
}

#[derive(Clone, Debug)]
enum Op {
    Bond {
        who: usize,
        amount: u64,
    },
    Delegate {
        who: usize,
        to: usize,
        amount: u64,
    },
    Unbond {
        who: usize,
        from: usize,
        amount: u64,
    },
    Slash {
        validator: usize,
        ppm: u32,
    },
    Idle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..4usize, 0..400u64).prop_map(|(who, amount)| Op::Bond { who, amount }),
        3 => (0..4usize, 0..4usize, 0..300u64).prop_map(|(who, to, amount)| Op::Delegate { who, to, amount }),
        3 => (0..4usize, 0..4usize, 0..300u64).prop_map(|(who, from, amount)| Op::Unbond { who, from, amount }),
        1 => (0..4usize, 0..=PPM).prop_map(|(validator, ppm)| Op::Slash { validator, ppm }),
        2 => Just(Op::Idle),
    ]
}

proptest! {
    #[test]
    fn supply_plus_burned_is_conserved(ops in prop::collection::vec(op(), 1..60)) {
        let k = keys(4);
        let mut s = genesis(&k, 1_000);
        let initial = s.total_supply();
        for op in ops {
            match op {
                Op::Bond { who, amount } => { send(&mut s, &k[who], TxKind::BondValidator { amount, take_ppm: 0 }); }
                Op::Delegate { who, to, amount } => { send(&mut s, &k[who], TxKind::Delegate { validator: k[to].account(), amount }); }
                Op::Unbond { who, from, amount } => { send(&mut s, &k[who], TxKind::Unbond { validator: k[from].account(), amount }); }
                Op::Slash { validator, ppm } => {
                    let before = s.total_supply();
                    let cut = s.slash_validator(&k[validator].account(), ppm);
                    prop_assert_eq!(before - s.total_supply(), u128::from(cut.bonded) + u128::from(cut.unbonding));
                }
                Op::Idle => { block(&mut s, None); }
            }
            prop_assert_eq!(s.total_supply() + s.burned, initial);
            for (id, v) in &s.validators {
                let delegated: u64 = s.delegations.iter().filter(|((_, to), _)| to == id).map(|(_, a)| *a).sum();
                prop_assert_eq!(v.delegated, delegated);
                prop_assert!(v.total() > 0, "an empty validator was kept");
            }
            prop_assert!(s.unbonding.iter().all(|u| u.amount > 0 && u.release_at > s.height));
        }
    }
}
