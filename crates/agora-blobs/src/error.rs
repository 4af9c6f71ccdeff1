//! What can go wrong with blobs.

use agora_types::Hash32;

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Reading or writing the store's files failed.
    #[error("blob store I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The store's index could not be read or written.
    #[error("blob index: {0}")]
    Index(String),
    /// The store holds no (complete) blob with this id.
    #[error("no blob {0}")]
    NotFound(Hash32),
    /// Another process (a provider, `agora blob serve`) has the store open.
    #[error("the blob store {0} is open in another process (a provider or `agora blob serve`?); stop it or use another folder")]
    InUse(std::path::PathBuf),
    /// A collection manifest is malformed or names an unsafe path.
    #[error("bad collection: {0}")]
    BadCollection(String),
    /// A byte range reaches past the blob's end, or is empty.
    #[error("bytes {start}..{end} are not a range of blob {id} ({size} bytes)")]
    OutOfRange {
        /// The blob.
        id: Hash32,
        /// Its size.
        size: u64,
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
    },
    /// Data or proof failed verification against the blob's id: a peer sent
    /// bytes that are not the blob's, or the stored copy has rotted.
    #[error("blob {id} failed verification: {why}")]
    Corrupt {
        /// The blob.
        id: Hash32,
        /// What did not verify.
        why: String,
    },
    /// A fetch was finished before every byte was verified.
    #[error("blob {id} is incomplete: {missing} of {size} bytes still missing")]
    Incomplete {
        /// The blob.
        id: Hash32,
        /// Bytes not yet verified.
        missing: u64,
        /// Its size.
        size: u64,
    },
    /// No peer could supply the rest of a fetch (each was refused for what
    /// it sent, or failed); what verified is kept for a later resume.
    #[error("blob {id}: {missing} bytes could not be fetched; {why}")]
    Unavailable {
        /// The blob.
        id: Hash32,
        /// Bytes still missing.
        missing: u64,
        /// Why each peer was given up on.
        why: String,
    },
    /// A fetch was resumed with another size than it was started with.
    #[error("blob {id} was being fetched as {had} bytes, not {asked}")]
    SizeMismatch {
        /// The blob.
        id: Hash32,
        /// Size the partial fetch was started with.
        had: u64,
        /// Size asked for now.
        asked: u64,
    },
}

impl BlobError {
    /// An index (redb) failure.
    pub(crate) fn index(e: impl std::fmt::Display) -> Self {
        BlobError::Index(e.to_string())
    }
}
