//! What the explorer adds to every committed block and to each page read,
//! at the console target's scale: 1,000 providers and 10,000 other funded
//! accounts, all with earnings. `absorb` runs on the node's commit path;
//! the listings run per `/explorer` request.

use std::hint::black_box;

use agora_explorer::listing::{accounts, providers, AccountQuery, AccountSort};
use agora_explorer::History;
use agora_ledger::{Account, State};
use agora_types::{AccountId, Block, BlockHeader, Earnings, Hash32, ProviderInfo};
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../tests/common/mod.rs"]
mod common;

const PROVIDERS: u32 = 1_000;
const ACCOUNTS: u32 = 10_000;

fn id(n: u32) -> AccountId {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    bytes[4] = 1;
    AccountId(bytes)
}

fn state() -> State {
    let mut s = common::genesis("bench", &[], 0);
    for n in 0..ACCOUNTS + PROVIDERS {
        s.accounts.insert(
            id(n),
            Account {
                balance: u64::from(n) * 7 % 10_007,
                nonce: 1,
            },
        );
        s.earnings.insert(
            id(n),
            Earnings {
                channels: u128::from(n),
                ..Default::default()
            },
        );
    }
    for n in 0..PROVIDERS {
        s.providers.insert(
            id(n),
            ProviderInfo {
                id: id(n),
                endpoint: format!("http://p{n}"),
                models: Vec::new(),
                price: Default::default(),
                stake: 1_000_000,
                registered_at: 0,
                replayable: true,
            },
        );
    }
    s
}

fn block(height: u64) -> Block {
    Block {
        header: BlockHeader {
            chain_id: "bench".into(),
            height,
            parent: Hash32::ZERO,
            timestamp_ms: height,
            proposer: AccountId([0; 32]),
            tx_root: Hash32::ZERO,
            state_root: Hash32::ZERO,
            consensus: Hash32::ZERO,
            randomness: Hash32::ZERO,
        },
        txs: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let before = state();
    let mut after = before.clone();
    // A block that pays 100 providers (a settlement-heavy block).
    for n in 0..100 {
        after.earnings.get_mut(&id(n)).unwrap().channels += 1;
    }
    let mut history = History::new();
    let mut height = 0;
    c.bench_function(
        "absorb a block (11,000 earning accounts, 100 changed)",
        |b| {
            b.iter(|| {
                height += 1;
                history.absorb(black_box(&before), &block(height), black_box(&after));
            })
        },
    );
    let query = AccountQuery {
        offset: 5_000,
        limit: Some(50),
        sort: AccountSort::Balance,
        q: String::new(),
    };
    c.bench_function("accounts page (11,000 accounts, by balance)", |b| {
        b.iter(|| black_box(accounts(&after, &query)))
    });
    c.bench_function("providers list (1,000 providers)", |b| {
        b.iter(|| black_box(providers(&after)))
    });
    // A page from the middle of the 10,000 blocks kept.
    let middle = height - 5_000;
    assert_eq!(history.blocks(height, Some(middle), 25).blocks.len(), 25);
    c.bench_function("blocks page (10,000 kept)", |b| {
        b.iter(|| black_box(history.blocks(height, Some(middle), 25)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
