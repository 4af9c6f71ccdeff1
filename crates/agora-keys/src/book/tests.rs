use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};

use proptest::prelude::*;

use super::*;
use crate::Period;

/// 2026-12-03 01:00 UTC.
const START: u64 = 1_796_259_600_000;
static NOW: AtomicU64 = AtomicU64::new(START);

fn clock() -> u64 {
    NOW.load(Ordering::SeqCst)
}

fn fixed() -> u64 {
    START
}

fn ask(max_cost: Amount) -> Ask {
    Ask {
        max_cost,
        max_tokens: 10,
    }
}

fn book_with_key(dir: &Path, limits: Limits, funds: Amount) -> (Arc<KeyBook>, String, AccountId) {
    let book = KeyBook::open_with_clock(&dir.join("keys.redb"), fixed).unwrap();
    let account = book.create_account().unwrap();
    let (secret, _) = book.create_key("alice", account, limits).unwrap();
    book.set_funds(account, funds);
    (book, secret, account)
}

#[test]
fn keys_spend_and_usage_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (book, secret, account) = book_with_key(dir.path(), Limits::default(), 1_000);
    let mut hold = book.reserve(Some(&secret), ask(100), "smol").unwrap();
    assert_eq!(hold.account, account);
    hold.charge(40, 7, 3);
    drop(hold);
    let id = book.identify(Some(&secret)).unwrap();
    let usage = book.usage(Some(&id)).unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(
        (
            usage[0].requests,
            usage[0].prompt_tokens,
            usage[0].completion_tokens,
            usage[0].cost
        ),
        (1, 7, 3, 40)
    );
    assert_eq!(usage[0].day, "2026-12-03");
    drop(book);
    let book = KeyBook::open_with_clock(&dir.path().join("keys.redb"), fixed).unwrap();
    let keys = book.list();
    assert_eq!(keys.len(), 1);
    assert_eq!((keys[0].record.spend.total, keys[0].reserved), (40, 0));
    assert_eq!(book.accounts(), vec![account]);
    assert!(book.signer(&account).is_some());
    // Funds are never remembered across a restart: unknown until re-read.
    assert_eq!(
        book.reserve(Some(&secret), ask(1), "smol").unwrap_err(),
        Refusal::FundsUnknown(account)
    );
}

#[test]
fn a_charge_is_committed_before_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let (book, secret, _) = book_with_key(dir.path(), Limits::default(), 1_000);
    let id = book.identify(Some(&secret)).unwrap();
    let mut hold = book.reserve(Some(&secret), ask(100), "smol").unwrap();
    hold.charge(30, 5, 2);
    // Read straight from the store, with no flush: the charge is already there.
    let rows = book.store.usage(Some(&id)).unwrap();
    assert_eq!((rows.len(), rows[0].cost, rows[0].requests), (1, 30, 1));
    let stored = book.store.keys().unwrap();
    assert_eq!(stored[0].spend.total, 30);
    // Its reservation shrank by what was charged.
    assert_eq!(hold.reserved(), 70);
    assert_eq!(book.list()[0].reserved, 70);
    // A second job of the same request is charged without counting a request.
    hold.charge(10, 1, 1);
    let rows = book.store.usage(Some(&id)).unwrap();
    assert_eq!(
        (rows[0].cost, rows[0].requests, rows[0].prompt_tokens),
        (40, 1, 6)
    );
    assert_eq!(book.store.keys().unwrap()[0].spend.total, 40);
    // Settling releases the rest of the reservation and charges nothing more.
    drop(hold);
    assert_eq!(book.list()[0].reserved, 0);
    assert_eq!(book.list()[0].record.spend.total, 40);
}

#[test]
fn missing_unknown_and_revoked_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (book, secret, _) = book_with_key(dir.path(), Limits::default(), 1_000);
    assert_eq!(
        book.reserve(None, ask(1), "m").unwrap_err(),
        Refusal::MissingKey
    );
    let wrong = format!("{secret}0");
    assert_eq!(
        book.reserve(Some(&wrong), ask(1), "m").unwrap_err(),
        Refusal::UnknownKey
    );
    let id = book.identify(Some(&secret)).unwrap();
    book.revoke(&id).unwrap();
    assert_eq!(
        book.reserve(Some(&secret), ask(1), "m").unwrap_err(),
        Refusal::Revoked(id.clone())
    );
    assert!(matches!(
        book.revoke("key_nope"),
        Err(KeysError::NoSuchKey(_))
    ));
    drop(book);
    let book = KeyBook::open_with_clock(&dir.path().join("keys.redb"), fixed).unwrap();
    assert_eq!(
        book.identify(Some(&secret)).unwrap_err(),
        Refusal::Revoked(id)
    );
}

#[test]
fn keys_bind_only_to_accounts_the_gateway_holds() {
    let dir = tempfile::tempdir().unwrap();
    let book = KeyBook::open_with_clock(&dir.path().join("k"), fixed).unwrap();
    let stranger = Keypair::generate().account();
    assert!(matches!(
        book.create_key("x", stranger, Limits::default()),
        Err(KeysError::NoSuchAccount(_))
    ));
    let account = book.create_account().unwrap();
    assert!(matches!(
        book.create_key("bad\nname", account, Limits::default()),
        Err(KeysError::Invalid(_))
    ));
}

#[test]
fn an_account_cannot_spend_more_than_its_funds_and_others_are_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (book, alice, _) = book_with_key(dir.path(), Limits::default(), 100);
    let bob_account = book.create_account().unwrap();
    let (bob, _) = book
        .create_key("bob", bob_account, Limits::default())
        .unwrap();
    book.set_funds(bob_account, 1_000);
    let mut first = book.reserve(Some(&alice), ask(80), "m").unwrap();
    let refused = book.reserve(Some(&alice), ask(30), "m").unwrap_err();
    assert!(matches!(
        refused,
        Refusal::Funds {
            available: 20,
            ask: 30,
            ..
        }
    ));
    assert!(book.reserve(Some(&bob), ask(500), "m").is_ok());
    first.charge(80, 1, 1);
    drop(first);
    // What was charged is gone: 20 is left.
    assert!(matches!(
        book.reserve(Some(&alice), ask(21), "m").unwrap_err(),
        Refusal::Funds { available: 20, .. }
    ));
    assert!(book.reserve(Some(&alice), ask(20), "m").is_ok());
}

#[test]
fn a_failed_request_releases_its_reservation_and_charges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        total: Some(100),
        ..Limits::default()
    };
    let (book, secret, _) = book_with_key(dir.path(), limits, 1_000);
    let hold = book.reserve(Some(&secret), ask(100), "m").unwrap();
    assert!(matches!(
        book.reserve(Some(&secret), ask(1), "m").unwrap_err(),
        Refusal::Budget { .. }
    ));
    drop(hold);
    assert!(book.reserve(Some(&secret), ask(100), "m").is_ok());
    let id = book.identify(Some(&secret)).unwrap();
    assert!(book.usage(Some(&id)).unwrap().is_empty());
    assert_eq!(book.list()[0].record.spend.total, 0);
}

#[test]
fn a_daily_budget_refuses_until_midnight_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    NOW.store(START, Ordering::SeqCst);
    let book = KeyBook::open_with_clock(&dir.path().join("k"), clock).unwrap();
    let account = book.create_account().unwrap();
    let limits = Limits {
        daily: Some(50),
        ..Limits::default()
    };
    let (secret, _) = book.create_key("d", account, limits).unwrap();
    book.set_funds(account, 10_000);
    let mut hold = book.reserve(Some(&secret), ask(50), "m").unwrap();
    hold.charge(50, 1, 1);
    drop(hold);
    let e = book.reserve(Some(&secret), ask(1), "m").unwrap_err();
    // 01:00 → midnight is 23 hours.
    assert_eq!(e.retry_after_secs(), Some(23 * 3600));
    NOW.store(
        Period::Day.window_end_ms(Period::Day.window(START)),
        Ordering::SeqCst,
    );
    assert!(book.reserve(Some(&secret), ask(50), "m").is_ok());
    NOW.store(START, Ordering::SeqCst);
}

#[test]
fn rate_limits_refuse_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        rpm: Some(2),
        tpm: Some(15),
        ..Limits::default()
    };
    let (book, secret, _) = book_with_key(dir.path(), limits, 1_000);
    let _running = book.reserve(Some(&secret), ask(1), "m").unwrap();
    let too_large = Ask {
        max_cost: 1,
        max_tokens: 16,
    };
    assert!(matches!(
        book.reserve(Some(&secret), too_large, "m").unwrap_err(),
        Refusal::TooLarge {
            tokens: 16,
            limit: 15
        }
    ));
    // 10 tokens are reserved; 10 more would pass 15.
    let e = book.reserve(Some(&secret), ask(1), "m").unwrap_err();
    assert!(matches!(&e, Refusal::Rate(r) if r.limit_name == "tpm"));
    assert_eq!(e.retry_after_secs(), Some(60));
}

/// 256 threads race one key whose budget fits 10 requests: exactly 10 pass,
/// and after all charge their full reservation the spend equals the budget.
#[test]
fn racing_requests_never_overrun_a_budget() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        total: Some(1_000),
        ..Limits::default()
    };
    let (book, secret, _) = book_with_key(dir.path(), limits, 1_000_000);
    let barrier = Arc::new(Barrier::new(256));
    let threads: Vec<_> = (0..256)
        .map(|_| {
            let (book, secret, barrier) = (book.clone(), secret.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                book.reserve(Some(&secret), ask(100), "m").ok()
            })
        })
        .collect();
    let holds: Vec<Hold> = threads
        .into_iter()
        .filter_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(holds.len(), 10);
    for mut h in holds {
        h.charge(100, 1, 1);
    }
    assert_eq!(book.list()[0].record.spend.total, 1_000);
    assert!(book.reserve(Some(&secret), ask(1), "m").is_err());
}

#[derive(Debug, Clone)]
enum Op {
    Reserve(u64),
    Finish(usize, u64),
}

proptest! {
    // Each case opens a redb database, slow in debug builds: 64 cases of up to 60 steps.
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the interleaving of reservations and charges (never above the
    /// reservation, as the gateway's receipt check guarantees), spend plus
    /// reservations never passes the budget or the funds.
    #[test]
    fn no_sequence_of_requests_overruns(
        ops in proptest::collection::vec(
            prop_oneof![
                (1u64..200).prop_map(Op::Reserve),
                (0usize..8, 0u64..=100).prop_map(|(i, pct)| Op::Finish(i, pct)),
            ],
            1..60,
        ),
        total in 1u64..2_000,
        funds in 1u64..2_000,
    ) {
        let limits = Limits { total: Some(total), ..Limits::default() };
        let book = KeyBook::in_memory().unwrap();
        let account = book.create_account().unwrap();
        let (secret, _) = book.create_key("p", account, limits).unwrap();
        book.set_funds(account, funds);
        let mut holds: Vec<Hold> = Vec::new();
        let mut charged = 0u64;
        for op in ops {
            match op {
                Op::Reserve(cost) => {
                    if let Ok(h) = book.reserve(Some(&secret), ask(cost), "m") {
                        holds.push(h);
                    }
                }
                Op::Finish(i, pct) if !holds.is_empty() => {
                    let mut h = holds.swap_remove(i % holds.len());
                    let cost = h.reserved() * pct / 100;
                    h.charge(cost, 1, 1);
                    charged += cost;
                }
                Op::Finish(..) => {}
            }
            let view = &book.list()[0];
            prop_assert_eq!(view.record.spend.total, charged);
            let committed = charged + holds.iter().map(Hold::reserved).sum::<u64>();
            prop_assert!(committed <= total && committed <= funds);
        }
    }
}

#[test]
fn a_wallets_keys_share_one_account_are_capped_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let (alice, bob) = (
        Keypair::from_seed([1; 32]).account(),
        Keypair::from_seed([2; 32]).account(),
    );
    let book = KeyBook::open_with_clock(&path, fixed).unwrap();
    let (_, first) = book
        .create_owned_key("a1", alice, Limits::default())
        .unwrap();
    let (_, second) = book
        .create_owned_key("a2", alice, Limits::default())
        .unwrap();
    let (_, other) = book.create_owned_key("b1", bob, Limits::default()).unwrap();
    assert_eq!(first.owner, Some(alice));
    assert_eq!(
        first.account, second.account,
        "one custodial account per wallet"
    );
    assert_ne!(
        first.account, other.account,
        "never another wallet's account"
    );
    assert!(book.signer(&first.account).is_some());
    for i in 2..MAX_OWNED_KEYS {
        book.create_owned_key(&format!("a{i}"), alice, Limits::default())
            .unwrap();
    }
    let over = book.create_owned_key("one too many", alice, Limits::default());
    assert!(matches!(over, Err(KeysError::Invalid(_))), "{over:?}");
    book.revoke(&second.id).unwrap();
    book.create_owned_key("after a revoke", alice, Limits::default())
        .unwrap();
    drop(book);
    let book = KeyBook::open_with_clock(&path, fixed).unwrap();
    let (_, again) = book.create_owned_key("b2", bob, Limits::default()).unwrap();
    assert_eq!(
        again.account, other.account,
        "the owner's account survives a restart"
    );
    let view = book
        .list()
        .into_iter()
        .find(|k| k.record.id == first.id)
        .unwrap();
    assert_eq!(view.record.owner, Some(alice));
}
