//! Ledger rules: precise rejections that change nothing, supply conservation
//! over random transaction sequences, and block build/apply agreement.

mod common;

use agora_ledger::{
    apply_block, build_block, BlockCandidate, BlockError, Genesis, GenesisAccount, State, TxError,
};
use agora_types::{Hash32, Keypair, ModelEntry, Price, SignedTransaction, Transaction, TxKind};
use proptest::prelude::*;

const CHAIN: &str = "ledger-test";

fn model(tag: u8) -> ModelEntry {
    ModelEntry {
        id: Hash32::digest(&[tag]),
        name: format!("model-{tag}"),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: 1000,
        license: "Apache-2.0".into(),
        owner: agora_types::no_owner(),
        royalty_ppm: 0,
        tokenizer_hash: Default::default(),
    }
}

fn keys(n: u8) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::from_seed([i + 1; 32])).collect()
}

fn genesis(keys: &[Keypair], balance: u64) -> State {
    common::genesis(CHAIN, keys, balance, vec![model(1)])
        .state()
        .unwrap()
}

fn tx(key: &Keypair, nonce: u64, kind: TxKind) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN.into(),
        from: key.account(),
        nonce,
        kind,
    }
    .sign(key)
}

fn register(key: &Keypair, nonce: u64, models: Vec<Hash32>, stake: u64) -> SignedTransaction {
    let kind = TxKind::RegisterProvider {
        endpoint: "http://127.0.0.1:9000".into(),
        models,
        // Free, so the collateral rule (a multiple of the price) leaves only the minimum.
        price: Price::default(),
        stake,
        replayable: true,
    };
    tx(key, nonce, kind)
}

/// Apply and assert that a rejection leaves the state exactly as it was.
fn apply(state: &mut State, stx: &SignedTransaction) -> Result<(), TxError> {
    let before = state.clone();
    let result = state.apply_tx(stx, state.height + 1);
    if result.is_err() {
        assert_eq!(*state, before, "a rejected transaction changed the state");
    }
    result
}

#[test]
fn each_rejection_is_precise_and_changes_nothing() {
    let k = keys(2);
    let mut s = genesis(&k, 100);
    let to = k[1].account();

    let mut forged = tx(&k[0], 0, TxKind::Transfer { to, amount: 5 });
    forged.tx.kind = TxKind::Transfer { to, amount: 50 };
    assert_eq!(
        apply(&mut s, &forged),
        Err(TxError::BadSignature(k[0].account()))
    );

    let mut wrong_signer = tx(&k[1], 0, TxKind::Transfer { to, amount: 5 });
    wrong_signer.tx.from = k[0].account();
    assert_eq!(
        apply(&mut s, &wrong_signer),
        Err(TxError::BadSignature(k[0].account()))
    );

    let gap = tx(&k[0], 3, TxKind::Transfer { to, amount: 5 });
    assert!(matches!(
        apply(&mut s, &gap),
        Err(TxError::BadNonce {
            expected: 0,
            got: 3,
            ..
        })
    ));

    let too_much = tx(&k[0], 0, TxKind::Transfer { to, amount: 101 });
    assert!(matches!(
        apply(&mut s, &too_much),
        Err(TxError::InsufficientBalance {
            needed: 101,
            available: 100,
            ..
        })
    ));

    let unknown = register(&k[0], 0, vec![model(9).id], 10);
    assert_eq!(
        apply(&mut s, &unknown),
        Err(TxError::UnknownModel(model(9).id))
    );

    let other_chain = Transaction {
        chain_id: "elsewhere".into(),
        from: k[0].account(),
        nonce: 0,
        kind: TxKind::Transfer { to, amount: 1 },
    }
    .sign(&k[0]);
    assert!(matches!(
        apply(&mut s, &other_chain),
        Err(TxError::WrongChain { .. })
    ));

    assert_eq!(
        apply(&mut s, &tx(&k[0], 0, TxKind::DeregisterProvider)),
        Err(TxError::NotAProvider(k[0].account()))
    );
    let bad_endpoint = tx(
        &k[0],
        0,
        TxKind::RegisterProvider {
            endpoint: "ftp://x".into(),
            models: vec![model(1).id],
            price: Price::default(),
            stake: 1,
            replayable: true,
        },
    );
    assert!(matches!(
        apply(&mut s, &bad_endpoint),
        Err(TxError::InvalidField {
            field: "endpoint",
            ..
        })
    ));
    assert_eq!(
        apply(
            &mut s,
            &tx(
                &k[0],
                0,
                TxKind::RegisterModel {
                    model: ModelEntry {
                        owner: k[0].account(),
                        ..model(1)
                    }
                }
            )
        ),
        Err(TxError::ModelExists(model(1).id))
    );
}

#[test]
fn replayed_transaction_is_rejected() {
    let k = keys(2);
    let mut s = genesis(&k, 100);
    let t = tx(
        &k[0],
        0,
        TxKind::Transfer {
            to: k[1].account(),
            amount: 10,
        },
    );
    apply(&mut s, &t).unwrap();
    assert_eq!(s.account(&k[0].account()).balance, 90);
    assert_eq!(s.account(&k[1].account()).balance, 110);
    assert!(matches!(
        apply(&mut s, &t),
        Err(TxError::BadNonce {
            expected: 1,
            got: 0,
            ..
        })
    ));
}

#[test]
fn provider_stake_is_locked_and_returned() {
    let k = keys(1);
    let mut s = genesis(&k, 100);
    let id = k[0].account();
    apply(&mut s, &register(&k[0], 0, vec![model(1).id], 40)).unwrap();
    assert_eq!(s.account(&id).balance, 60);
    assert_eq!(s.providers[&id].stake, 40);
    // Re-registering with more stake than balance alone counts the old stake.
    apply(&mut s, &register(&k[0], 1, vec![model(1).id], 90)).unwrap();
    assert_eq!((s.account(&id).balance, s.providers[&id].stake), (10, 90));
    assert!(matches!(
        apply(&mut s, &register(&k[0], 2, vec![model(1).id], 101)),
        Err(TxError::InsufficientBalance { .. })
    ));
    apply(&mut s, &tx(&k[0], 2, TxKind::DeregisterProvider)).unwrap();
    assert_eq!(s.account(&id).balance, 100);
    assert!(s.providers.is_empty());
}

#[test]
fn genesis_toml_round_trips_and_rejects_duplicates() {
    let k = keys(2);
    let g = Genesis {
        chain_id: CHAIN.into(),
        timestamp_ms: 5,
        params: Default::default(),
        accounts: vec![GenesisAccount {
            id: k[0].account(),
            balance: 7,
        }],
        models: vec![model(1)],
    };
    let back = Genesis::from_toml(&g.to_toml()).unwrap();
    assert_eq!(back, g);
    assert_eq!(back.hash(), g.hash());
    let mut dup = g.clone();
    dup.accounts.push(GenesisAccount {
        id: k[0].account(),
        balance: 1,
    });
    assert!(dup.state().is_err());
    assert!(Genesis::from_toml("chain_id = 3").is_err());
}

#[test]
fn built_blocks_apply_and_tampered_blocks_do_not() {
    let k = keys(2);
    let s = genesis(&k, 100);
    let good = tx(
        &k[0],
        0,
        TxKind::Transfer {
            to: k[1].account(),
            amount: 10,
        },
    );
    let bad = tx(
        &k[0],
        5,
        TxKind::Transfer {
            to: k[1].account(),
            amount: 10,
        },
    );
    let built = build_block(
        &s,
        BlockCandidate {
            proposer: k[0].account(),
            timestamp_ms: 10,
            txs: vec![good, bad.clone()],
            randomness: agora_types::Hash32::ZERO,
        },
    );
    assert_eq!(built.block.txs.len(), 1);
    assert_eq!(built.rejected.len(), 1);
    assert_eq!(built.rejected[0].0, bad.id());
    let applied = apply_block(&s, &built.block).unwrap();
    assert_eq!(applied, built.state);

    let mut wrong_root = built.block.clone();
    wrong_root.header.state_root = Hash32::ZERO;
    assert!(matches!(
        apply_block(&s, &wrong_root),
        Err(BlockError::StateRootMismatch { .. })
    ));
    let mut extra = built.block.clone();
    extra.txs.push(bad);
    assert_eq!(apply_block(&s, &extra), Err(BlockError::TxRootMismatch));
    assert!(matches!(
        apply_block(&applied, &built.block),
        Err(BlockError::WrongHeight { .. })
    ));
}

#[derive(Clone, Debug)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    Register {
        from: usize,
        stake: u64,
        known_model: bool,
    },
    Deregister {
        from: usize,
    },
    RegisterModel {
        from: usize,
        tag: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..4usize, 0..150u64).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        2 => (0..4usize, 0..120u64, any::<bool>()).prop_map(|(from, stake, known_model)| Op::Register { from, stake, known_model }),
        1 => (0..4usize).prop_map(|from| Op::Deregister { from }),
        1 => (0..4usize, 0..4u8).prop_map(|(from, tag)| Op::RegisterModel { from, tag }),
    ]
}

proptest! {
    #[test]
    fn supply_is_conserved_and_rejections_change_nothing(
        ops in prop::collection::vec((op(), 0..4u8, any::<bool>()), 1..60)
    ) {
        let k = keys(4);
        let mut s = genesis(&k, 100);
        let supply = s.total_supply();
        for (op, nonce_skew, corrupt) in ops {
            let from = match &op {
                Op::Transfer { from, .. } | Op::Register { from, .. } | Op::Deregister { from } | Op::RegisterModel { from, .. } => *from,
            };
            // Mostly the right nonce, sometimes a replayed or future one.
            let expected = s.account(&k[from].account()).nonce;
            let nonce = match nonce_skew { 0 => expected.saturating_sub(1), 1 => expected + 1, _ => expected };
            let kind = match op {
                Op::Transfer { to, amount, .. } => TxKind::Transfer { to: k[to].account(), amount },
                Op::Register { stake, known_model, .. } => {
                    let m = if known_model { model(1).id } else { model(200).id };
                    TxKind::RegisterProvider { endpoint: "http://p:1".into(), models: vec![m], price: Price::default(), stake, replayable: true }
                }
                Op::Deregister { .. } => TxKind::DeregisterProvider,
                Op::RegisterModel { tag, .. } => TxKind::RegisterModel { model: ModelEntry { owner: k[from].account(), ..model(tag) } },
            };
            let mut stx = tx(&k[from], nonce, kind);
            if corrupt {
                stx.signature.0[0] ^= 0x40;
            }
            let before = s.clone();
            match s.apply_tx(&stx, 1) {
                Ok(()) => {
                    prop_assert!(!corrupt, "a mis-signed transaction was accepted");
                    prop_assert_eq!(nonce, expected, "a wrong nonce was accepted");
                    prop_assert_eq!(s.account(&k[from].account()).nonce, expected + 1);
                }
                Err(_) => prop_assert_eq!(&s, &before),
            }
            prop_assert_eq!(s.total_supply(), supply);
        }
    }
}

/// An account proof checks against the state root it came from and no other;
/// a forged balance fails; unknown accounts have no proof.
#[test]
fn account_proofs_verify_against_the_state_root() {
    use agora_ledger::account_key;
    use agora_types::merkle::leaf_hash;

    let ks = keys(5);
    let mut state = genesis(&ks, 1_000);
    let root = state.root();
    for k in &ks {
        let (account, proof) = state.prove_account(&k.account()).unwrap();
        assert_eq!(account.balance, 1_000);
        let leaf = leaf_hash(&account_key(&k.account()), &agora_types::encode(&account));
        assert!(proof.verify(leaf, root));
        let mut forged = account;
        forged.balance += 1;
        let forged_leaf = leaf_hash(&account_key(&k.account()), &agora_types::encode(&forged));
        assert!(!proof.verify(forged_leaf, root));
    }
    assert!(state
        .prove_account(&Keypair::from_seed([99; 32]).account())
        .is_none());

    let (old_account, old_proof) = state.prove_account(&ks[1].account()).unwrap();
    let t = tx(
        &ks[0],
        0,
        TxKind::Transfer {
            to: ks[1].account(),
            amount: 5,
        },
    );
    apply(&mut state, &t).unwrap();
    assert_ne!(state.root(), root);
    let old_leaf = leaf_hash(
        &account_key(&ks[1].account()),
        &agora_types::encode(&old_account),
    );
    assert!(
        !old_proof.verify(old_leaf, state.root()),
        "a stale proof must not verify"
    );
}
