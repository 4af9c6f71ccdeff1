//! Payment channels: a full lifecycle with exact balances, and random
//! sequences of every channel action that never pay out more than the
//! escrow, never change the supply, and change nothing when rejected.

mod common;

use agora_ledger::{State, TxError};
use agora_types::{
    channel_id, Hash32, Keypair, ModelEntry, ModelId, Price, ProviderInfo, SignedTransaction,
    Transaction, TxKind,
};
use proptest::prelude::*;

use common::settlement;

const CHAIN: &str = "channel-test";
const WINDOW: u64 = 10;

fn keys(n: u8) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::from_seed([i + 7; 32])).collect()
}

fn genesis(keys: &[Keypair], balance: u64) -> State {
    let mut g = common::genesis(
        CHAIN,
        keys,
        balance,
        vec![ModelEntry {
            id: MODEL,
            name: "channel-model".into(),
            architecture: "llama".into(),
            quantization: "Q4_1".into(),
            size_bytes: 1,
            license: "MIT".into(),
            owner: agora_types::no_owner(),
            royalty_ppm: 0,
            tokenizer_hash: Default::default(),
        }],
    );
    g.params.channel_challenge_blocks = WINDOW;
    let mut s = g.state().unwrap();
    // Every key serves the model (with no stake, so balances stay round);
    // royalties are tested in tests/economics.rs.
    for k in keys {
        let info = ProviderInfo {
            id: k.account(),
            endpoint: "http://p:1".into(),
            models: vec![MODEL],
            price: Price::default(),
            stake: 0,
            registered_at: 0,
            replayable: true,
        };
        s.providers.insert(k.account(), info);
    }
    s
}

/// The one model every channel here pays for.
const MODEL: ModelId = Hash32([5; 32]);

fn send(s: &mut State, key: &Keypair, kind: TxKind, height: u64) -> Result<(), TxError> {
    let nonce = s.account(&key.account()).nonce;
    let stx: SignedTransaction = Transaction {
        chain_id: CHAIN.into(),
        from: key.account(),
        nonce,
        kind,
    }
    .sign(key);
    let before = s.clone();
    let result = s.apply_tx(&stx, height);
    if result.is_err() {
        assert_eq!(*s, before, "a rejected transaction changed the state");
    }
    result
}

#[test]
fn lifecycle_pays_exactly_what_vouchers_owe() {
    let k = keys(3);
    let (client, provider, stranger) = (&k[0], &k[1], &k[2]);
    let mut s = genesis(&k, 10_000);
    let supply = s.total_supply();
    let id = channel_id(CHAIN, &client.account(), 0);
    let open = TxKind::OpenChannel {
        provider: provider.account(),
        model: MODEL,
        deposit: 1_000,
    };
    send(&mut s, client, open, 1).unwrap();
    assert_eq!(s.account(&client.account()).balance, 9_000);
    assert_eq!(s.channels[&id].escrow(), 1_000);

    send(&mut s, provider, settlement(client, id, 300, 3), 2).unwrap();
    assert_eq!(s.account(&provider.account()).balance, 10_300);
    assert_eq!(s.channels[&id].jobs, 3);
    // The same voucher again, a smaller one, one beyond the deposit, one signed
    // by someone else, one settled by someone else: all refused.
    assert!(matches!(
        send(&mut s, provider, settlement(client, id, 300, 3), 3),
        Err(TxError::StaleVoucher {
            cumulative: 300,
            paid: 300
        })
    ));
    assert!(matches!(
        send(&mut s, provider, settlement(client, id, 1_001, 9), 3),
        Err(TxError::VoucherExceedsDeposit { .. })
    ));
    assert_eq!(
        send(&mut s, provider, settlement(stranger, id, 400, 4), 3),
        Err(TxError::BadVoucherSignature)
    );
    assert!(matches!(
        send(&mut s, stranger, settlement(client, id, 400, 4), 3),
        Err(TxError::NotChannelParty { .. })
    ));
    let top_up = TxKind::TopUpChannel {
        channel: id,
        amount: 500,
    };
    send(&mut s, client, top_up, 4).unwrap();
    send(&mut s, provider, settlement(client, id, 1_400, 14), 5).unwrap();

    // The client starts closing; it cannot finish before the window passes.
    send(&mut s, client, TxKind::CloseChannel { channel: id }, 10).unwrap();
    assert_eq!(
        send(&mut s, client, TxKind::FinishClose { channel: id }, 19),
        Err(TxError::ChallengeOpen {
            channel: id,
            at: 10 + WINDOW
        })
    );
    let again = TxKind::TopUpChannel {
        channel: id,
        amount: 1,
    };
    assert_eq!(
        send(&mut s, client, again, 11),
        Err(TxError::ChannelClosing(id))
    );
    // The provider settles its last voucher inside the window.
    send(&mut s, provider, settlement(client, id, 1_450, 15), 15).unwrap();
    send(&mut s, client, TxKind::FinishClose { channel: id }, 20).unwrap();
    assert!(s.channels.is_empty());
    assert_eq!(s.account(&provider.account()).balance, 10_000 + 1_450);
    assert_eq!(s.account(&client.account()).balance, 10_000 - 1_450);
    assert_eq!(s.total_supply(), supply);
    assert_eq!(
        send(&mut s, provider, settlement(client, id, 1_460, 16), 21),
        Err(TxError::UnknownChannel(id))
    );
}

#[test]
fn provider_close_refunds_at_once() {
    let k = keys(2);
    let mut s = genesis(&k, 1_000);
    let id = channel_id(CHAIN, &k[0].account(), 0);
    let open = TxKind::OpenChannel {
        provider: k[1].account(),
        model: MODEL,
        deposit: 600,
    };
    send(&mut s, &k[0], open, 1).unwrap();
    send(&mut s, &k[1], settlement(&k[0], id, 250, 2), 2).unwrap();
    send(&mut s, &k[1], TxKind::CloseChannel { channel: id }, 3).unwrap();
    assert!(s.channels.is_empty());
    assert_eq!(s.account(&k[0].account()).balance, 750);
    assert_eq!(s.account(&k[1].account()).balance, 1_250);
}

#[derive(Clone, Debug)]
enum Op {
    Open {
        client: usize,
        provider: usize,
        deposit: u64,
    },
    TopUp {
        client: usize,
        channel: usize,
        amount: u64,
    },
    Settle {
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
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..4usize, 0..4usize, 0..300u64).prop_map(|(client, provider, deposit)| Op::Open { client, provider, deposit }),
        1 => (0..4usize, 0..6usize, 0..200u64).prop_map(|(client, channel, amount)| Op::TopUp { client, channel, amount }),
        4 => (0..4usize, 0..4usize, 0..6usize, 0..600u64).prop_map(|(sender, signer, channel, cumulative)| Op::Settle { sender, signer, channel, cumulative }),
        1 => (0..4usize, 0..6usize).prop_map(|(sender, channel)| Op::Close { sender, channel }),
        1 => (0..4usize, 0..6usize).prop_map(|(sender, channel)| Op::Finish { sender, channel }),
    ]
}

proptest! {
    /// Over random sequences: supply is conserved, no channel pays more than
    /// its deposit, a settlement pays exactly the voucher's increase, only
    /// client-signed vouchers pay, and rejected actions change nothing
    /// (checked inside `send`).
    #[test]
    fn no_channel_pays_more_than_its_escrow(ops in prop::collection::vec(op(), 1..60)) {
        let k = keys(4);
        let mut s = genesis(&k, 1_000);
        let supply = s.total_supply();
        // Every channel ever opened, in order, so ops can name closed ones too.
        let mut opened: Vec<Hash32> = Vec::new();
        for (step, op) in ops.into_iter().enumerate() {
            let height = 1 + step as u64 * 3;
            let pick = |i: usize| opened.get(i % opened.len().max(1)).copied().unwrap_or_default();
            match op {
                Op::Open { client, provider, deposit } => {
                    let nonce = s.account(&k[client].account()).nonce;
                    let kind = TxKind::OpenChannel { provider: k[provider].account(), model: MODEL, deposit };
                    if send(&mut s, &k[client], kind, height).is_ok() {
                        opened.push(channel_id(CHAIN, &k[client].account(), nonce));
                    }
                }
                Op::TopUp { client, channel, amount } => {
                    let kind = TxKind::TopUpChannel { channel: pick(channel), amount };
                    let _ = send(&mut s, &k[client], kind, height);
                }
                Op::Settle { sender, signer, channel, cumulative } => {
                    let id = pick(channel);
                    let before = s.channels.get(&id).map(|c| c.paid);
                    let balance = s.account(&k[sender].account()).balance;
                    if send(&mut s, &k[sender], settlement(&k[signer], id, cumulative, step as u64), height).is_ok() {
                        let c = &s.channels[&id];
                        prop_assert_eq!(c.client, k[signer].account(), "a voucher not signed by the client paid");
                        prop_assert_eq!(c.provider, k[sender].account());
                        let gained = s.account(&k[sender].account()).balance - balance;
                        prop_assert_eq!(gained, cumulative - before.unwrap());
                    }
                }
                Op::Close { sender, channel } => {
                    let _ = send(&mut s, &k[sender], TxKind::CloseChannel { channel: pick(channel) }, height);
                }
                Op::Finish { sender, channel } => {
                    let _ = send(&mut s, &k[sender], TxKind::FinishClose { channel: pick(channel) }, height);
                }
            }
            for c in s.channels.values() {
                prop_assert!(c.paid <= c.deposit, "channel paid {} of {}", c.paid, c.deposit);
            }
            prop_assert_eq!(s.total_supply(), supply);
        }
    }
}
