//! Pages of the current state: accounts and providers, sorted and filtered
//! on the server so a browser never holds the whole state.

use agora_ledger::State;
use agora_types::AccountId;
use serde::Deserialize;

use crate::rows::{AccountPage, AccountRow, ProviderRow};

/// Most accounts one page returns.
pub const MAX_ACCOUNT_PAGE: usize = 200;

/// How the accounts list is ordered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountSort {
    /// Largest balance first.
    #[default]
    Balance,
    /// Largest total earnings first.
    Earned,
    /// By account id.
    Id,
}

/// `GET /explorer/accounts?offset=&limit=&sort=&q=`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountQuery {
    /// Rows skipped.
    #[serde(default)]
    pub offset: usize,
    /// Rows returned (≤ [`MAX_ACCOUNT_PAGE`]; default 50).
    pub limit: Option<usize>,
    /// Order.
    #[serde(default)]
    pub sort: AccountSort,
    /// Only ids starting with this hex prefix.
    #[serde(default)]
    pub q: String,
}

/// One page of accounts: every account with a balance, a nonce or earnings.
pub fn accounts(state: &State, query: &AccountQuery) -> AccountPage {
    let prefix = query.q.trim().to_ascii_lowercase();
    let mut ids: Vec<AccountId> = state.accounts.keys().copied().collect();
    ids.extend(
        state
            .earnings
            .keys()
            .filter(|id| !state.accounts.contains_key(id)),
    );
    let mut rows: Vec<AccountRow> = ids
        .into_iter()
        .filter(|id| prefix.is_empty() || id.to_string().starts_with(&prefix))
        .map(|id| {
            let account = state.account(&id);
            AccountRow {
                id,
                balance: account.balance,
                nonce: account.nonce,
                earned: state.earnings(&id),
            }
        })
        .collect();
    match query.sort {
        AccountSort::Balance => {
            rows.sort_by(|a, b| b.balance.cmp(&a.balance).then(a.id.cmp(&b.id)))
        }
        AccountSort::Earned => rows.sort_by(|a, b| {
            b.earned
                .total()
                .cmp(&a.earned.total())
                .then(a.id.cmp(&b.id))
        }),
        AccountSort::Id => rows.sort_by_key(|r| r.id),
    }
    let total = rows.len();
    let limit = query.limit.unwrap_or(50).min(MAX_ACCOUNT_PAGE);
    let accounts = rows.into_iter().skip(query.offset).take(limit).collect();
    AccountPage { total, accounts }
}

/// Every provider that is registered or has an audit record (the slashed
/// and the departed too), by account id.
pub fn providers(state: &State) -> Vec<ProviderRow> {
    let mut ids: Vec<AccountId> = state.providers.keys().copied().collect();
    ids.extend(
        state
            .provider_audits
            .keys()
            .filter(|id| !state.providers.contains_key(id)),
    );
    ids.sort();
    ids.into_iter()
        .map(|id| {
            let info = state.providers.get(&id);
            ProviderRow {
                id,
                endpoint: info.map(|p| p.endpoint.clone()).unwrap_or_default(),
                models: info.map(|p| p.models.clone()).unwrap_or_default(),
                price: info.map(|p| p.price),
                stake: info.map_or(0, |p| p.stake),
                registered: info.is_some(),
                audits: state.provider_audits.get(&id).copied().unwrap_or_default(),
                earned: state.earnings(&id),
                balance: state.account(&id).balance,
            }
        })
        .collect()
}
