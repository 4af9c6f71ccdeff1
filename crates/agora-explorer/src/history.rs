//! [`History`]: what the chain's state alone forgets (the state after each
//! block replaces the one before), kept bounded as blocks commit. Each
//! figure is a difference between two consecutive committed states, so the
//! history is exactly what the ledger did, never an estimate.

use std::collections::{BTreeMap, HashMap, VecDeque};

use agora_ledger::State;
use agora_types::{AccountId, Block, Earnings, Height};

use crate::rows::{
    BlockPage, BlockSummary, EarningsPoint, Recipient, Role, Slash, SupplyPoint, TempoEmission,
    TxSummary,
};

/// Blocks (and supply points) kept: the newest ten thousand.
pub const MAX_BLOCKS: usize = 10_000;
/// Reward distributions kept.
pub const MAX_TEMPOS: usize = 1_000;
/// Slashes kept.
pub const MAX_SLASHES: usize = 10_000;
/// Earnings points kept per account.
pub const MAX_EARNINGS_POINTS: usize = 1_000;
/// Accounts whose earnings are followed (the first ones seen earning).
pub const MAX_EARNING_ACCOUNTS: usize = 100_000;
/// Transactions listed per block summary (the count is always exact).
pub const MAX_TXS_KEPT: usize = 256;
/// Most blocks one page returns.
pub const MAX_PAGE: usize = 100;

/// The explorer's bounded memory of the chain.
#[derive(Clone, Debug, Default)]
pub struct History {
    blocks: VecDeque<BlockSummary>,
    supply: VecDeque<SupplyPoint>,
    tempos: VecDeque<TempoEmission>,
    slashes: VecDeque<Slash>,
    earnings: HashMap<AccountId, VecDeque<EarningsPoint>>,
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T, max: usize) {
    queue.push_back(item);
    while queue.len() > max {
        queue.pop_front();
    }
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    /// Record `block`, which turned `before` into `after`. Blocks must come
    /// in height order; one that does not follow the last recorded is
    /// ignored (a replay after a restart).
    pub fn absorb(&mut self, before: &State, block: &Block, after: &State) {
        let height = block.header.height;
        if self.blocks.back().is_some_and(|b| b.height >= height) {
            return;
        }
        push_bounded(&mut self.blocks, summary(block), MAX_BLOCKS);
        push_bounded(&mut self.supply, supply_point(after), MAX_BLOCKS);
        let changed = changed_earnings(before, after);
        if let Some(tempo) = tempo_emission(before, after, &changed) {
            push_bounded(&mut self.tempos, tempo, MAX_TEMPOS);
        }
        for slash in slashes(before, after) {
            push_bounded(&mut self.slashes, slash, MAX_SLASHES);
        }
        self.absorb_earnings(after.height, &changed);
    }

    /// Record a block whose states are gone (a backfill from the block
    /// store): its summary only. Must come before every absorbed block.
    pub fn backfill(&mut self, block: &Block) {
        let height = block.header.height;
        if self.blocks.front().is_some_and(|b| b.height <= height)
            || self.blocks.len() >= MAX_BLOCKS
        {
            return;
        }
        self.blocks.push_front(summary(block));
    }

    fn absorb_earnings(&mut self, height: Height, changed: &[Change]) {
        for change in changed {
            let account = &change.account;
            if !self.earnings.contains_key(account) && self.earnings.len() >= MAX_EARNING_ACCOUNTS {
                continue;
            }
            let point = EarningsPoint {
                height,
                earned: change.now,
            };
            push_bounded(
                self.earnings.entry(*account).or_default(),
                point,
                MAX_EARNINGS_POINTS,
            );
        }
    }

    /// Blocks below `before` (all when `None`), newest first, at most `limit` (≤ [`MAX_PAGE`]).
    pub fn blocks(&self, head: Height, before: Option<Height>, limit: usize) -> BlockPage {
        let before = before.unwrap_or(Height::MAX);
        // Heights ascend: the page ends where `before` would be inserted.
        let end = self.blocks.partition_point(|b| b.height < before);
        let blocks = self
            .blocks
            .range(..end)
            .rev()
            .take(limit.min(MAX_PAGE))
            .cloned()
            .collect();
        BlockPage { head, blocks }
    }

    /// Supply points after height `since`, oldest first.
    pub fn supply(&self, since: Height) -> Vec<SupplyPoint> {
        let start = self.supply.partition_point(|p| p.height <= since);
        self.supply.range(start..).copied().collect()
    }

    /// Reward distributions, newest first.
    pub fn emissions(&self) -> Vec<TempoEmission> {
        self.tempos.iter().rev().cloned().collect()
    }

    /// Slashes, newest first.
    pub fn slashes(&self) -> Vec<Slash> {
        self.slashes.iter().rev().cloned().collect()
    }

    /// An account's earnings after each block that changed them, oldest first.
    pub fn earnings(&self, account: &AccountId) -> Vec<EarningsPoint> {
        self.earnings
            .get(account)
            .map(|points| points.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// A block as a list shows it.
pub fn summary(block: &Block) -> BlockSummary {
    let txs = block
        .txs
        .iter()
        .take(MAX_TXS_KEPT)
        .map(|tx| TxSummary {
            id: tx.id(),
            from: tx.tx.from,
            kind: kind_name(&tx.tx.kind),
        })
        .collect();
    BlockSummary {
        height: block.header.height,
        id: block.header.id(),
        timestamp_ms: block.header.timestamp_ms,
        proposer: block.header.proposer,
        tx_count: block.txs.len(),
        txs,
    }
}

/// A transaction kind's JSON `type` tag.
pub fn kind_name(kind: &agora_types::tx::TxKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

fn supply_point(after: &State) -> SupplyPoint {
    SupplyPoint {
        height: after.height,
        timestamp_ms: after.last_timestamp_ms,
        total_supply: after.total_supply(),
        burned: after.burned,
        emitted: after.emitted,
        emission_pool: after.emission_pool,
    }
}

/// The capacity in which `account` earns emission in `state`.
fn role_of(state: &State, account: &AccountId) -> Role {
    if state.validators.contains_key(account) {
        Role::Validator
    } else if state.providers.contains_key(account) {
        Role::Provider
    } else if state.models.values().any(|m| m.owner == *account) {
        Role::Owner
    } else {
        Role::Delegator
    }
}

/// An account whose earnings the block changed.
struct Change {
    account: AccountId,
    was: Earnings,
    now: Earnings,
}

/// The accounts whose earnings differ between the two states, in one walk
/// over both sorted maps (this runs on the node's commit path).
fn changed_earnings(before: &State, after: &State) -> Vec<Change> {
    let mut old = before.earnings.iter().peekable();
    let mut changed = Vec::new();
    for (account, now) in &after.earnings {
        while old.next_if(|(a, _)| *a < account).is_some() {}
        let was = old
            .next_if(|(a, _)| *a == account)
            .map(|(_, e)| *e)
            .unwrap_or_default();
        if was != *now {
            changed.push(Change {
                account: *account,
                was,
                now: *now,
            });
        }
    }
    changed
}

/// What the block paid out of the emission pool, if it paid anything.
fn tempo_emission(before: &State, after: &State, changed: &[Change]) -> Option<TempoEmission> {
    let mut recipients: Vec<Recipient> = changed
        .iter()
        .filter_map(|c| {
            let amount = c
                .now
                .emissions
                .checked_sub(c.was.emissions)
                .filter(|a| *a > 0)?;
            Some(Recipient {
                account: c.account,
                role: role_of(before, &c.account),
                amount,
            })
        })
        .collect();
    if recipients.is_empty() {
        return None;
    }
    recipients.sort_by(|a, b| b.amount.cmp(&a.amount).then(a.account.cmp(&b.account)));
    let mut by_role: BTreeMap<Role, u128> = BTreeMap::new();
    for r in &recipients {
        *by_role.entry(r.role).or_default() += r.amount;
    }
    let of = |role| by_role.get(&role).copied().unwrap_or(0);
    let tempo = after.params.tempo_blocks;
    Some(TempoEmission {
        height: after.height,
        epoch: after.height.checked_div(tempo).unwrap_or(0),
        total: by_role.values().sum(),
        providers: of(Role::Provider),
        validators: of(Role::Validator),
        owners: of(Role::Owner),
        delegators: of(Role::Delegator),
        recipients,
    })
}

/// Providers whose collateral the block took.
fn slashes(before: &State, after: &State) -> Vec<Slash> {
    after
        .provider_audits
        .iter()
        .filter_map(|(provider, now)| {
            let was = before
                .provider_audits
                .get(provider)
                .copied()
                .unwrap_or_default();
            if !now.slashed || was.slashed {
                return None;
            }
            let reason = if now.audits_failed > was.audits_failed {
                "failed_audit"
            } else {
                "equivocation"
            };
            Some(Slash {
                height: after.height,
                provider: *provider,
                amount: now.slashed_amount,
                reason: reason.into(),
            })
        })
        .collect()
}
