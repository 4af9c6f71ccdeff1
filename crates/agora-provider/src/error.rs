//! Provider errors.

/// Why the provider could not start, register or persist.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The transcript database failed.
    #[error("transcript store: {0}")]
    Store(String),
    /// A stored transcript could not be decoded.
    #[error("stored transcript is corrupt: {0}")]
    Corrupt(String),
    /// Talking to the chain failed.
    #[error(transparent)]
    Chain(#[from] agora_chain_client::ClientError),
    /// The chain's registry conflicts with what this provider serves.
    #[error("cannot register: {0}")]
    Registration(String),
}

macro_rules! store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for ProviderError {
            fn from(e: $t) -> Self {
                ProviderError::Store(e.to_string())
            }
        }
    )*};
}
store_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
