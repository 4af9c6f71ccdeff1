//! Who may spend what through a gateway. Each API key is bound to an
//! on-chain account (whose signing key the gateway keeps, so the key's
//! spending goes through that account's own payment channels) and carries
//! budgets (total and per UTC day, week and month) and rate limits (requests
//! and tokens per minute). Before a request is sent, [`KeyBook::reserve`]
//! atomically checks and reserves its maximum cost; the [`Hold`] it returns
//! charges the actual cost when dropped. Unknown keys, unknown funds and
//! store errors refuse: budgets fail closed. State lives in a redb file
//! ([`Store`]) so a restart keeps keys, spend and usage.

mod book;
mod calendar;
mod limits;
mod rate;
mod refusal;
mod secret;
mod store;

pub use book::{Ask, Hold, KeyBook, KeyView, MAX_OWNED_KEYS};
pub use calendar::{day_label, Period};
pub use limits::{check_budget, remaining, Limits, OverBudget, Spend, Window};
pub use rate::{OverRate, RateWindow};
pub use refusal::Refusal;
pub use secret::{bearer, generate, hash, public_id, KEY_PREFIX};
pub use store::{KeyRecord, Store, UsageRow};

/// Why a key-book operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// The store could not be read or written.
    #[error("key store: {0}")]
    Store(String),
    /// The store holds something unreadable.
    #[error("key store is corrupt: {0}")]
    Corrupt(String),
    /// No key has that public id.
    #[error("no key has the id {0}")]
    NoSuchKey(String),
    /// The gateway holds no signing key for that account.
    #[error("the gateway holds no account {0}; create or import it first")]
    NoSuchAccount(agora_types::AccountId),
    /// A limit or name is unusable.
    #[error("{0}")]
    Invalid(String),
}

macro_rules! store_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for KeysError {
            fn from(e: $t) -> Self {
                KeysError::Store(e.to_string())
            }
        }
    )*};
}
store_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
