//! Royalties and earnings: a settlement pays the model owner its exact
//! royalty share and the provider the rest; registration and channel-opening
//! rules refuse bad terms precisely; and random sequences of every
//! transaction type (plus slashes and empty blocks) conserve
//! supply + burned = genesis + emitted, never pay a channel past its escrow,
//! split every settlement exactly, keep earnings equal to what channels paid,
//! and pay out of the emission pool exactly what reward earnings record.

mod common;

use agora_ledger::{build_block, BlockCandidate, Genesis, State, TxError, PPM};
use agora_types::{
    channel_id, weights_commitment, AccountId, Hash32, Keypair, ModelEntry, Price,
    SignedTransaction, Transaction, TxKind, Voucher,
};
use proptest::prelude::*;

const CHAIN: &str = "economics-test";

/// Weights and salt a validator committed and may reveal.
type Committed = (Vec<(AccountId, u16)>, Hash32);
/// Royalty of the genesis model: odd, so rounding shows.
const GENESIS_ROYALTY: u32 = 123_457;

fn keys(n: u8) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::from_seed([i + 90; 32])).collect()
}

fn model(tag: u8, owner: AccountId, royalty_ppm: u32) -> ModelEntry {
    ModelEntry {
        id: Hash32::digest(&[b'm', tag]),
        name: format!("model-{tag}"),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: 1,
        license: "MIT".into(),
        owner,
        royalty_ppm,
        tokenizer_hash: Default::default(),
    }
}

fn genesis(keys: &[Keypair], balance: u64, emission: u64) -> State {
    let mut g = common::genesis(
        CHAIN,
        keys,
        balance,
        vec![model(0, keys[keys.len() - 1].account(), GENESIS_ROYALTY)],
    );
    g.params.channel_challenge_blocks = 3;
    g.params.unbonding_blocks = 4;
    g.params.emission_per_block = emission;
    g.params.tempo_blocks = 3;
    g.state().unwrap()
}

/// Sign `kind` from `key` at its next nonce and apply it at the next height;
/// a rejection must leave the state exactly as it was.
fn send(s: &mut State, key: &Keypair, kind: TxKind) -> Result<(), TxError> {
    let stx: SignedTransaction = Transaction {
        chain_id: CHAIN.into(),
        from: key.account(),
        nonce: s.account(&key.account()).nonce,
        kind,
    }
    .sign(key);
    let before = s.clone();
    let result = s.apply_tx(&stx, s.height + 1);
    if result.is_err() {
        assert_eq!(*s, before, "a rejected transaction changed the state");
    }
    result
}

/// An empty block: advances the height, mints emission, releases unbonding.
fn idle(s: &mut State) {
    *s = build_block(
        s,
        BlockCandidate {
            proposer: AccountId([0; 32]),
            timestamp_ms: s.last_timestamp_ms + 1,
            txs: vec![],
            randomness: agora_types::Hash32::ZERO,
        },
    )
    .state;
}

fn serve(models: Vec<Hash32>, stake: u64) -> TxKind {
    TxKind::RegisterProvider {
        endpoint: "http://p:1".into(),
        models,
        price: Price::default(),
        stake,
        replayable: true,
    }
}

fn settle(client: &Keypair, channel: Hash32, cumulative: u64) -> TxKind {
    let voucher = Voucher {
        channel,
        cumulative,
        receipts_root: Hash32::digest(&cumulative.to_le_bytes()),
        jobs: cumulative,
    }
    .sign(client);
    TxKind::SettleChannel { voucher }
}

/// The royalty the test expects, computed on its own: floor(delta × ppm / 10⁶).
fn expected_royalty(delta: u64, ppm: u32) -> u64 {
    (u128::from(delta) * u128::from(ppm) / 1_000_000) as u64
}

#[test]
fn settlement_pays_owner_royalty_and_provider_the_rest() {
    let k = keys(3);
    let (client, provider, owner) = (&k[0], &k[1], &k[2]);
    let mut s = genesis(&k, 10_000, 0);
    let supply = s.total_supply();
    let m = model(1, owner.account(), 200_000);
    send(&mut s, owner, TxKind::RegisterModel { model: m.clone() }).unwrap();
    send(&mut s, provider, serve(vec![m.id], 100)).unwrap();
    let id = channel_id(CHAIN, &client.account(), 0);
    let open = TxKind::OpenChannel {
        provider: provider.account(),
        model: m.id,
        deposit: 1_000,
    };
    send(&mut s, client, open).unwrap();
    assert_eq!(s.channels[&id].model, m.id);

    send(&mut s, provider, settle(client, id, 333)).unwrap();
    // 333 × 20% = 66.6: the owner gets 66, the provider 267.
    assert_eq!(s.account(&owner.account()).balance, 10_066);
    assert_eq!(s.account(&provider.account()).balance, 10_000 - 100 + 267);
    send(&mut s, provider, settle(client, id, 1_000)).unwrap();
    // The next 667: royalty 133, provider 534.
    assert_eq!(s.account(&owner.account()).balance, 10_066 + 133);
    assert_eq!(s.account(&provider.account()).balance, 9_900 + 267 + 534);
    let earned = s.earnings(&provider.account());
    assert_eq!((earned.channels, earned.royalties), (801, 0));
    let royalties = s.earnings(&owner.account());
    assert_eq!((royalties.channels, royalties.royalties), (0, 199));
    assert_eq!(s.earnings(&client.account()).total(), 0);
    assert_eq!(s.total_supply(), supply);
}

#[test]
fn an_owner_serving_its_own_model_keeps_everything() {
    let k = keys(2);
    let mut s = genesis(&k, 10_000, 0);
    let m = model(1, k[1].account(), 200_000);
    send(&mut s, &k[1], TxKind::RegisterModel { model: m.clone() }).unwrap();
    send(&mut s, &k[1], serve(vec![m.id], 1)).unwrap();
    let open = TxKind::OpenChannel {
        provider: k[1].account(),
        model: m.id,
        deposit: 500,
    };
    send(&mut s, &k[0], open).unwrap();
    send(
        &mut s,
        &k[1],
        settle(&k[0], channel_id(CHAIN, &k[0].account(), 0), 500),
    )
    .unwrap();
    assert_eq!(s.account(&k[1].account()).balance, 10_000 - 1 + 500);
    let e = s.earnings(&k[1].account());
    assert_eq!((e.channels, e.royalties), (400, 100));
}

#[test]
fn bad_terms_are_refused_precisely() {
    let k = keys(3);
    let mut s = genesis(&k, 10_000, 0);
    let theirs = model(1, k[1].account(), 0);
    assert_eq!(
        send(&mut s, &k[0], TxKind::RegisterModel { model: theirs }),
        Err(TxError::ModelOwnerMismatch {
            sender: k[0].account(),
            owner: k[1].account()
        })
    );
    let greedy = model(1, k[0].account(), 200_001);
    assert_eq!(
        send(&mut s, &k[0], TxKind::RegisterModel { model: greedy }),
        Err(TxError::RoyaltyTooHigh {
            maximum: 200_000,
            got: 200_001
        })
    );
    let fair = model(1, k[0].account(), 200_000);
    send(
        &mut s,
        &k[0],
        TxKind::RegisterModel {
            model: fair.clone(),
        },
    )
    .unwrap();

    let genesis_model = model(0, k[2].account(), GENESIS_ROYALTY).id;
    let open = |model| TxKind::OpenChannel {
        provider: k[1].account(),
        model,
        deposit: 10,
    };
    assert_eq!(
        send(&mut s, &k[0], open(fair.id)),
        Err(TxError::NotAProvider(k[1].account()))
    );
    send(&mut s, &k[1], serve(vec![genesis_model], 1)).unwrap();
    assert_eq!(
        send(&mut s, &k[0], open(fair.id)),
        Err(TxError::ModelNotServed {
            provider: k[1].account(),
            model: fair.id
        })
    );
    let unknown = Hash32::digest(b"unknown");
    assert_eq!(
        send(&mut s, &k[0], open(unknown)),
        Err(TxError::UnknownModel(unknown))
    );
    send(&mut s, &k[0], open(genesis_model)).unwrap();

    let mut g = Genesis {
        chain_id: CHAIN.into(),
        timestamp_ms: 0,
        params: Default::default(),
        accounts: vec![],
        models: vec![model(1, k[0].account(), 300_000)],
    };
    assert!(
        g.state().is_err(),
        "genesis accepted a royalty above the maximum"
    );
    g.params.max_royalty_ppm = 300_000;
    assert!(g.state().is_ok());
}

#[test]
fn earnings_are_part_of_the_state_root() {
    let k = keys(2);
    let mut s = genesis(&k, 10_000, 0);
    let root = s.root();
    s.earnings.entry(k[0].account()).or_default().channels = 1;
    assert_ne!(s.root(), root, "earnings are not committed by the root");
}

#[derive(Clone, Debug)]
enum Op {
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    RegisterModel {
        from: usize,
        tag: u8,
        royalty: u32,
    },
    Serve {
        from: usize,
        tags: Vec<u8>,
        stake: u64,
    },
    Deregister {
        from: usize,
    },
    Open {
        client: usize,
        provider: usize,
        tag: u8,
        deposit: u64,
    },
    TopUp {
        client: usize,
        channel: usize,
        amount: u64,
    },
    Settle {
        honest: bool,
        sender: usize,
        signer: usize,
        channel: usize,
        cumulative: u64,
    },
    Close {
        sender: usize,
        channel: usize,
    },
    Finish {
        sender: usize,
        channel: usize,
    },
    Bond {
        who: usize,
        amount: u64,
        take: u32,
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
    Commit {
        who: usize,
        tag: u8,
        weights: Vec<(usize, u16)>,
        salt: u8,
    },
    Reveal {
        who: usize,
        tag: u8,
        tamper: bool,
    },
    Idle,
}

const N: usize = 5;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..N, 0..N, 0..300u64).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        2 => (0..N, 0..3u8, 0..260_000u32).prop_map(|(from, tag, royalty)| Op::RegisterModel { from, tag, royalty }),
        2 => (0..N, prop::collection::vec(0..2u8, 1..3), 0..200u64).prop_map(|(from, tags, stake)| Op::Serve { from, tags, stake }),
        1 => (0..N).prop_map(|from| Op::Deregister { from }),
        3 => (0..N, 0..N, 0..3u8, 0..400u64).prop_map(|(client, provider, tag, deposit)| Op::Open { client, provider, tag, deposit }),
        1 => (0..N, 0..8usize, 0..200u64).prop_map(|(client, channel, amount)| Op::TopUp { client, channel, amount }),
        6 => (prop::bool::weighted(0.8), 0..N, 0..N, 0..8usize, 0..700u64).prop_map(|(honest, sender, signer, channel, cumulative)| Op::Settle { honest, sender, signer, channel, cumulative }),
        1 => (0..N, 0..8usize).prop_map(|(sender, channel)| Op::Close { sender, channel }),
        1 => (0..N, 0..8usize).prop_map(|(sender, channel)| Op::Finish { sender, channel }),
        1 => (0..N, 0..300u64, 0..=PPM).prop_map(|(who, amount, take)| Op::Bond { who, amount, take }),
        1 => (0..N, 0..N, 0..200u64).prop_map(|(who, to, amount)| Op::Delegate { who, to, amount }),
        1 => (0..N, 0..N, 0..200u64).prop_map(|(who, from, amount)| Op::Unbond { who, from, amount }),
        1 => (0..N, 0..=PPM).prop_map(|(validator, ppm)| Op::Slash { validator, ppm }),
        3 => (0..N, 0..2u8, prop::collection::vec((0..N, any::<u16>()), 0..4), any::<u8>()).prop_map(|(who, tag, weights, salt)| Op::Commit { who, tag, weights, salt }),
        3 => (0..N, 0..2u8, prop::bool::weighted(0.1)).prop_map(|(who, tag, tamper)| Op::Reveal { who, tag, tamper }),
        3 => Just(Op::Idle),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn every_transaction_type_conserves_supply_and_splits_settlements_exactly(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        let k = keys(N as u8);
        let mut s = genesis(&k, 2_000, 50);
        let genesis_supply = s.total_supply();
        send(&mut s, &k[1], serve(vec![model(0, k[0].account(), 0).id], 10)).unwrap();
        send(&mut s, &k[2], TxKind::BondValidator { amount: 100, take_ppm: 100_000 }).unwrap();
        let mut opened: Vec<Hash32> = Vec::new();
        // Everything channels have paid out (providers and owners together).
        let mut paid_out: u128 = 0;
        // The last weights each (validator, model tag) committed, to reveal.
        let mut committed: std::collections::BTreeMap<(usize, u8), Committed> = Default::default();
        for op in ops {
            let pick = |i: usize| opened.get(i % opened.len().max(1)).copied().unwrap_or_default();
            match op {
                Op::Transfer { from, to, amount } => {
                    let _ = send(&mut s, &k[from], TxKind::Transfer { to: k[to].account(), amount });
                }
                Op::RegisterModel { from, tag, royalty } => {
                    let m = model(tag, k[from].account(), royalty);
                    let ok = send(&mut s, &k[from], TxKind::RegisterModel { model: m.clone() }).is_ok();
                    prop_assert!(!ok || royalty <= s.params.max_royalty_ppm, "royalty above the maximum accepted");
                }
                Op::Serve { from, tags, stake } => {
                    let models = tags.iter().map(|t| model(*t, k[0].account(), 0).id).collect();
                    let _ = send(&mut s, &k[from], serve(models, stake));
                }
                Op::Deregister { from } => {
                    let _ = send(&mut s, &k[from], TxKind::DeregisterProvider);
                }
                Op::Open { client, provider, tag, deposit } => {
                    let nonce = s.account(&k[client].account()).nonce;
                    let m = model(tag, k[0].account(), 0).id;
                    let kind = TxKind::OpenChannel { provider: k[provider].account(), model: m, deposit };
                    if send(&mut s, &k[client], kind).is_ok() {
                        let served = s.providers.get(&k[provider].account()).is_some_and(|p| p.models.contains(&m));
                        prop_assert!(served, "a channel opened for a model its provider does not serve");
                        opened.push(channel_id(CHAIN, &k[client].account(), nonce));
                    }
                }
                Op::TopUp { client, channel, amount } => {
                    let _ = send(&mut s, &k[client], TxKind::TopUpChannel { channel: pick(channel), amount });
                }
                Op::Settle { honest, sender, signer, channel, cumulative } => {
                    let id = pick(channel);
                    let before = s.clone();
                    // Mostly the channel's own parties, so settlements do happen.
                    let party = |who: Option<AccountId>, or: usize| who
                        .and_then(|a| k.iter().position(|key| key.account() == a))
                        .filter(|_| honest)
                        .unwrap_or(or);
                    let sender = party(s.channels.get(&id).map(|c| c.provider), sender);
                    let signer = party(s.channels.get(&id).map(|c| c.client), signer);
                    // ... and mostly within the escrow.
                    let cumulative = match s.channels.get(&id) {
                        Some(c) if honest => c.paid + cumulative % (c.escrow() + 1),
                        _ => cumulative,
                    };
                    if send(&mut s, &k[sender], settle(&k[signer], id, cumulative)).is_ok() {
                        let c = &before.channels[&id];
                        prop_assert_eq!(c.client, k[signer].account(), "a voucher not signed by the client paid");
                        let delta = cumulative - c.paid;
                        let m = &before.models[&c.model];
                        let gain = |id: &AccountId| s.account(id).balance - before.account(id).balance;
                        let royalty = expected_royalty(delta, m.royalty_ppm);
                        if m.owner == c.provider {
                            prop_assert_eq!(gain(&c.provider), delta);
                        } else {
                            prop_assert_eq!(gain(&c.provider), delta - royalty);
                            prop_assert_eq!(gain(&m.owner), royalty);
                        }
                        paid_out += u128::from(delta);
                    }
                }
                Op::Close { sender, channel } => {
                    let _ = send(&mut s, &k[sender], TxKind::CloseChannel { channel: pick(channel) });
                }
                Op::Finish { sender, channel } => {
                    let _ = send(&mut s, &k[sender], TxKind::FinishClose { channel: pick(channel) });
                }
                Op::Bond { who, amount, take } => {
                    let _ = send(&mut s, &k[who], TxKind::BondValidator { amount, take_ppm: take });
                }
                Op::Delegate { who, to, amount } => {
                    let _ = send(&mut s, &k[who], TxKind::Delegate { validator: k[to].account(), amount });
                }
                Op::Unbond { who, from, amount } => {
                    let _ = send(&mut s, &k[who], TxKind::Unbond { validator: k[from].account(), amount });
                }
                Op::Slash { validator, ppm } => {
                    // Unbonding stake is still slashable: each entry loses its share.
                    let expected: u64 = s.unbonding.iter()
                        .filter(|u| u.validator == k[validator].account())
                        .map(|u| (u128::from(u.amount) * u128::from(ppm) / u128::from(PPM)) as u64)
                        .sum();
                    let cut = s.slash_validator(&k[validator].account(), ppm);
                    prop_assert_eq!(cut.unbonding, expected, "unbonding stake escaped the slash");
                }
                Op::Commit { who, tag, weights, salt } => {
                    let m = model(tag, k[0].account(), 0).id;
                    let w: Vec<(AccountId, u16)> = weights.iter().map(|(j, x)| (k[*j].account(), *x)).collect();
                    let salt = Hash32::digest(&[salt]);
                    let hash = weights_commitment(&k[who].account(), &m, &w, &salt);
                    if send(&mut s, &k[who], TxKind::CommitWeights { model: m, hash }).is_ok() {
                        committed.insert((who, tag), (w, salt));
                    }
                }
                Op::Reveal { who, tag, tamper } => {
                    let m = model(tag, k[0].account(), 0).id;
                    if let Some((mut w, salt)) = committed.get(&(who, tag)).cloned() {
                        if tamper {
                            w.push((k[who].account(), 1));
                        }
                        let ok = send(&mut s, &k[who], TxKind::RevealWeights { model: m, weights: w, salt }).is_ok();
                        prop_assert!(!(ok && tamper), "tampered weights were accepted");
                    }
                }
                Op::Idle => idle(&mut s),
            }
            prop_assert_eq!(s.total_supply() + s.burned, genesis_supply + s.emitted);
            for c in s.channels.values() {
                prop_assert!(c.paid <= c.deposit, "channel paid {} of {}", c.paid, c.deposit);
            }
            let earned: u128 = s.earnings.values().map(|e| e.channels + e.royalties).sum();
            prop_assert_eq!(earned, paid_out, "earnings differ from what channels paid");
            let rewarded: u128 = s.earnings.values().map(|e| e.emissions).sum();
            prop_assert_eq!(rewarded, s.emitted - u128::from(s.emission_pool), "emission paid out is not what left the pool");
        }
    }
}
