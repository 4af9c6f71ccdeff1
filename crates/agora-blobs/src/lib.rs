//! Content-addressed blobs: model weights and datasets named by their
//! BLAKE3 hash (the id the chain already gives models), stored with a bao
//! outboard (the hash tree's inner nodes, kept beside the data) so that
//! any byte range can be sent with the proof that it belongs to the blob,
//! and checked chunk group by chunk group as it arrives.
//!
//! [`BlobStore`] imports, exports, lists, tags and garbage-collects blobs
//! (a [`Collection`] is a manifest blob naming a tree of them)
//! and encodes verified ranges ([`BlobStore::encode`]); a [`Partial`] is a
//! blob being fetched: every range written to it is verified before a byte
//! lands, what was verified survives a restart, and it becomes a blob only
//! once complete. [`serve::router`] serves ranges over HTTP and [`fetch`]
//! gets a blob from several peers at once, dropping any that lies or stalls.

mod collection;
mod error;
mod fetch;
mod hash;
mod partial;
mod ranges;
pub mod serve;
mod store;

pub use collection::{dir_files, Collection, CollectionFile, MAX_FILES};
pub use error::BlobError;
pub use fetch::{fetch, FetchConfig, Fetched, HttpPeer, RangeSource};
pub use partial::Partial;
pub use ranges::ByteRanges;
pub use store::{BlobInfo, BlobStore};

use bao_tree::BlockSize;

/// Chunk groups of 16 KiB (16 BLAKE3 chunks): the outboard keeps one hash
/// pair (64 bytes) per group, 0.39% of the data, and ranges are served and
/// verified in whole groups.
pub const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(4);

/// Bytes in one chunk group.
pub const GROUP_BYTES: u64 = 16 * 1024;
