//! The explorer's history against the real block builder: every figure it
//! keeps is what the ledger did, its memory stays bounded, and pages,
//! filters and sorts return what they promise.

use agora_explorer::listing::{accounts, providers, AccountQuery, AccountSort};
use agora_explorer::rows::Role;
use agora_explorer::{History, MAX_BLOCKS, MAX_PAGE};
use agora_ledger::{build_block, BlockCandidate, State};
use agora_types::{AccountId, Block, Hash32, Keypair, ProviderInfo, Transaction, TxKind};
use proptest::prelude::*;

mod common;

fn keys(n: u8) -> Vec<Keypair> {
    (1..=n).map(|i| Keypair::from_seed([i; 32])).collect()
}

fn genesis(keys: &[Keypair]) -> State {
    let accounts: Vec<AccountId> = keys.iter().map(Keypair::account).collect();
    common::genesis("explorer-test", &accounts, 1_000_000)
}

/// One block of `transfers` (from, to, amount) through the real builder.
fn step(state: &State, keys: &[Keypair], transfers: &[(usize, usize, u64)]) -> (Block, State) {
    let mut nonces: std::collections::HashMap<AccountId, u64> = Default::default();
    let txs = transfers
        .iter()
        .map(|&(from, to, amount)| {
            let key = &keys[from % keys.len()];
            let nonce = nonces
                .entry(key.account())
                .or_insert_with(|| state.account(&key.account()).nonce);
            let tx = Transaction {
                chain_id: state.chain_id.clone(),
                from: key.account(),
                nonce: *nonce,
                kind: TxKind::Transfer {
                    to: keys[to % keys.len()].account(),
                    amount,
                },
            }
            .sign(key);
            *nonce += 1;
            tx
        })
        .collect();
    let built = build_block(
        state,
        BlockCandidate {
            proposer: AccountId([0; 32]),
            timestamp_ms: state.last_timestamp_ms + 1_000,
            txs,
            randomness: Hash32::ZERO,
        },
    );
    (built.block, built.state)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever blocks commit, the history lists them newest first with
    /// their exact transactions, and its supply points are the states'.
    #[test]
    fn blocks_and_supply_follow_the_chain(
        blocks in prop::collection::vec(
            prop::collection::vec((0usize..4, 0usize..4, 1u64..1_000), 0..6), 1..12),
        limit in 1usize..8,
    ) {
        let keys = keys(4);
        let mut state = genesis(&keys);
        let mut history = History::new();
        let mut committed = Vec::new();
        for transfers in &blocks {
            let (block, after) = step(&state, &keys, transfers);
            history.absorb(&state, &block, &after);
            committed.push((block, after.clone()));
            state = after;
        }
        let page = history.blocks(state.height, None, limit);
        prop_assert_eq!(page.head, state.height);
        prop_assert_eq!(page.blocks.len(), limit.min(committed.len()));
        for (row, (block, _)) in page.blocks.iter().zip(committed.iter().rev()) {
            prop_assert_eq!(row.height, block.header.height);
            prop_assert_eq!(row.id, block.header.id());
            prop_assert_eq!(row.tx_count, block.txs.len());
            let ids: Vec<Hash32> = block.txs.iter().map(|t| t.id()).collect();
            let listed: Vec<Hash32> = row.txs.iter().map(|t| t.id).collect();
            prop_assert_eq!(listed, ids);
            prop_assert!(row.txs.iter().all(|t| t.kind == "transfer"));
        }
        // `before` pages strictly below it.
        let older = history.blocks(state.height, Some(2), MAX_PAGE);
        prop_assert!(older.blocks.iter().all(|b| b.height < 2));
        let supply = history.supply(0);
        prop_assert_eq!(supply.len(), committed.len());
        for (point, (_, s)) in supply.iter().zip(&committed) {
            prop_assert_eq!(point.height, s.height);
            prop_assert_eq!(point.total_supply, s.total_supply());
            prop_assert_eq!(point.timestamp_ms, s.last_timestamp_ms);
        }
        prop_assert!(history.supply(state.height).is_empty());
        // Transfers earn nothing and slash no one.
        prop_assert!(history.emissions().is_empty());
        prop_assert!(history.slashes().is_empty());
    }

    /// The accounts page holds every funded account once, in the promised
    /// order, and a prefix filter keeps exactly the matching ids.
    #[test]
    fn account_pages_sort_filter_and_cover_everything(
        offset in 0usize..6, limit in 1usize..6, sort in 0u8..3, prefix_len in 0usize..3,
    ) {
        let keys = keys(5);
        let (_, state) = step(&genesis(&keys), &keys, &[(0, 1, 500), (2, 3, 70)]);
        let sort = [AccountSort::Balance, AccountSort::Earned, AccountSort::Id][sort as usize];
        let q = keys[1].account().to_string()[..prefix_len].to_string();
        let all = accounts(&state, &AccountQuery { offset: 0, limit: Some(200), sort, q: q.clone() });
        let expected = keys.iter().filter(|k| k.account().to_string().starts_with(&q)).count();
        prop_assert_eq!(all.total, expected);
        prop_assert_eq!(all.accounts.len(), expected);
        if sort == AccountSort::Balance {
            prop_assert!(all.accounts.windows(2).all(|w| w[0].balance >= w[1].balance));
        }
        if sort == AccountSort::Id {
            prop_assert!(all.accounts.windows(2).all(|w| w[0].id < w[1].id));
        }
        let page = accounts(&state, &AccountQuery { offset, limit: Some(limit), sort, q });
        let want: Vec<_> = all.accounts.iter().skip(offset).take(limit).cloned().collect();
        prop_assert_eq!(page.accounts, want);
    }
}

proptest! {
    /// Whichever accounts' earnings a block changes (new ones, grown ones,
    /// unchanged ones interleaved in id order), the history records exactly
    /// those, and a tempo row sums exactly the emission they gained.
    #[test]
    fn exactly_the_changed_earnings_are_recorded(
        entries in prop::collection::btree_map(0u8..40, (0u8..3, 0u128..50, 0u128..50), 0..30),
    ) {
        let keys = keys(1);
        let before_state = genesis(&keys);
        let (block, mut after) = step(&before_state, &keys, &[]);
        let mut before = before_state.clone();
        let mut gained = 0u128;
        for (n, (shape, old, extra)) in &entries {
            let id = AccountId([*n; 32]);
            let old = agora_types::Earnings { emissions: *old, ..Default::default() };
            match shape {
                0 => {
                    // Unchanged.
                    before.earnings.insert(id, old);
                    after.earnings.insert(id, old);
                }
                1 => {
                    // Grew (by `extra`, possibly 0).
                    before.earnings.insert(id, old);
                    after.earnings.insert(id, agora_types::Earnings { emissions: old.emissions + extra, ..old });
                    gained += extra;
                }
                _ => {
                    // New this block.
                    after.earnings.insert(id, old);
                    gained += old.emissions;
                }
            }
        }
        let mut history = History::new();
        history.absorb(&before, &block, &after);
        for (id, now) in &after.earnings {
            let recorded = history.earnings(id);
            let changed = before.earnings.get(id).copied().unwrap_or_default() != *now;
            prop_assert_eq!(recorded.len(), usize::from(changed));
            if changed {
                prop_assert_eq!(recorded[0].earned, *now);
            }
        }
        let total = history.emissions().first().map_or(0, |t| t.total);
        prop_assert_eq!(total, gained);
    }
}

#[test]
fn memory_stays_bounded_and_replays_are_ignored() {
    let keys = keys(2);
    let state = genesis(&keys);
    let (block, after) = step(&state, &keys, &[(0, 1, 1)]);
    let mut history = History::new();
    for height in 1..=(MAX_BLOCKS as u64 + 50) {
        let mut b = block.clone();
        b.header.height = height;
        history.absorb(&state, &b, &after);
    }
    // A block at or below the last one (a replay after restart) changes nothing.
    let mut replay = block.clone();
    replay.header.height = 10;
    history.absorb(&state, &replay, &after);
    let page = history.blocks(0, None, usize::MAX);
    assert_eq!(page.blocks.len(), MAX_PAGE, "a page never exceeds MAX_PAGE");
    assert_eq!(page.blocks[0].height, MAX_BLOCKS as u64 + 50);
    assert_eq!(history.supply(0).len(), MAX_BLOCKS);
    assert_eq!(
        history.blocks(0, Some(52), usize::MAX).blocks.len(),
        1,
        "only height 51 is left below 52"
    );
}

#[test]
fn emission_is_split_by_role_and_a_slash_is_recorded_once() {
    let keys = keys(4);
    let before = genesis(&keys);
    let (block, mut after) = step(&before, &keys, &[]);
    let (provider, validator, delegator) =
        (keys[0].account(), keys[1].account(), keys[2].account());
    let mut registered = before.clone();
    registered.providers.insert(
        provider,
        ProviderInfo {
            id: provider,
            endpoint: "http://p".into(),
            models: Vec::new(),
            price: Default::default(),
            stake: 10,
            registered_at: 0,
            replayable: true,
        },
    );
    registered.validators.insert(
        validator,
        agora_ledger::Validator {
            self_stake: 5,
            delegated: 0,
            take_ppm: 0,
        },
    );
    after.providers = registered.providers.clone();
    after.validators = registered.validators.clone();
    after.earnings.entry(provider).or_default().emissions += 70;
    after.earnings.entry(validator).or_default().emissions += 20;
    after.earnings.entry(delegator).or_default().emissions += 10;
    let audits = after.provider_audits.entry(provider).or_default();
    audits.slashed = true;
    audits.slashed_amount = 10;
    audits.audits_failed = 1;

    let mut history = History::new();
    history.absorb(&registered, &block, &after);
    let tempo = &history.emissions()[0];
    assert_eq!(
        (
            tempo.total,
            tempo.providers,
            tempo.validators,
            tempo.delegators
        ),
        (100, 70, 20, 10)
    );
    assert_eq!(tempo.recipients[0].role, Role::Provider);
    assert_eq!(tempo.recipients.len(), 3);
    let slashes = history.slashes();
    assert_eq!(slashes.len(), 1);
    assert_eq!((slashes[0].provider, slashes[0].amount), (provider, 10));
    assert_eq!(slashes[0].reason, "failed_audit");
    assert_eq!(
        history.earnings(&provider).last().unwrap().earned.emissions,
        70
    );

    // The next block leaves the slash as it was: not recorded again.
    let mut next = block.clone();
    next.header.height += 1;
    let mut later = after.clone();
    later.height += 1;
    history.absorb(&after, &next, &later);
    assert_eq!(history.slashes().len(), 1);
    assert_eq!(history.emissions().len(), 1, "nothing paid, no tempo row");
    // The slashed provider stays listed after it leaves the registry.
    later.providers.clear();
    let rows = providers(&later);
    let row = rows.iter().find(|r| r.id == provider).unwrap();
    assert!(!row.registered && row.audits.slashed);
    assert_eq!(row.earned.emissions, 70);
}
