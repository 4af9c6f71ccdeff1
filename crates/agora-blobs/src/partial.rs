//! [`Partial`]: a blob being fetched. Ranges arrive as bao encodings
//! ([`crate::BlobStore::encode`] on a peer); each chunk group is checked
//! against the blob's id before it is written, the verified ranges are
//! recorded (so an interrupted fetch resumes where it stopped), and the
//! blob joins the store only once every byte is verified.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::ops::Range;
use std::path::PathBuf;

use agora_types::Hash32;
use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::{DecodeResponseIter, OutboardMut, WriteAt};
use bao_tree::io::{BaoContentItem, Leaf, Parent};
use bao_tree::{BaoTree, ChunkNum, ChunkRanges};
use borsh::BorshDeserialize;

use crate::ranges::{from_pairs, groups_covering, to_bytes, to_pairs, whole};
use crate::store::PARTIAL;
use crate::{BlobError, BlobInfo, BlobStore, ByteRanges, BLOCK_SIZE};

/// A blob being fetched into a [`BlobStore`].
pub struct Partial<'s> {
    store: &'s BlobStore,
    id: Hash32,
    size: u64,
    tree: BaoTree,
    data: File,
    outboard: PreOrderOutboard<File>,
    verified: ChunkRanges,
    /// Bytes verified since the verified ranges were last recorded.
    unrecorded: u64,
}

/// Verified bytes a fetch may hold before it records them (syncing the
/// files and the index): a crash costs at most this much fetching again,
/// and a fast link is not held to one sync per piece.
const RECORD_EVERY: u64 = 64 << 20;

impl BlobStore {
    fn partial_paths(&self, id: &Hash32) -> (PathBuf, PathBuf) {
        let dir = self.dir.join("partial");
        (
            dir.join(id.to_hex()),
            dir.join(format!("{}.obao", id.to_hex())),
        )
    }

    /// Start fetching blob `id` of `size` bytes, or resume the fetch an
    /// earlier run left (keeping every range it verified).
    pub fn begin(&self, id: Hash32, size: u64) -> Result<Partial<'_>, BlobError> {
        let r = self.db.begin_read().map_err(BlobError::index)?;
        let row = r.open_table(PARTIAL).map_err(BlobError::index)?;
        let row = row.get(id.0.as_slice()).map_err(BlobError::index)?;
        let verified = match row {
            Some(bytes) => {
                let (had, pairs) = <(u64, Vec<(u64, u64)>)>::try_from_slice(bytes.value())
                    .map_err(BlobError::index)?;
                if had != size {
                    return Err(BlobError::SizeMismatch {
                        id,
                        had,
                        asked: size,
                    });
                }
                from_pairs(&pairs)
            }
            None => ChunkRanges::empty(),
        };
        let (data_path, outboard_path) = self.partial_paths(&id);
        let open = |p: &PathBuf| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
        };
        let tree = BaoTree::new(size, BLOCK_SIZE);
        Ok(Partial {
            store: self,
            id,
            size,
            tree,
            data: open(&data_path)?,
            outboard: PreOrderOutboard {
                root: blake3::Hash::from_bytes(id.0),
                tree,
                data: open(&outboard_path)?,
            },
            verified,
            unrecorded: 0,
        })
    }

    /// Drop the partial fetch of `id`, if any, with what it verified.
    pub fn abandon(&self, id: &Hash32) -> Result<(), BlobError> {
        let w = self.db.begin_write().map_err(BlobError::index)?;
        w.open_table(PARTIAL)
            .map_err(BlobError::index)?
            .remove(id.0.as_slice())
            .map_err(BlobError::index)?;
        w.commit().map_err(BlobError::index)?;
        let (data, outboard) = self.partial_paths(id);
        for path in [data, outboard] {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }
}

impl Partial<'_> {
    /// The blob's id.
    pub fn id(&self) -> Hash32 {
        self.id
    }

    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The byte ranges not yet verified.
    pub fn missing(&self) -> ByteRanges {
        to_bytes(&(whole(self.size) - self.verified.clone()), self.size)
    }

    /// Verify the bao encoding of `bytes` read from `encoded` and write
    /// what verifies; returns the bytes newly verified. On a bad or short
    /// stream the groups verified before it are kept (and recorded), the
    /// bad one is not written, and the error says what failed. What
    /// verified is recorded for a resume every 64 MiB, on
    /// failure and by [`Partial::record`].
    pub fn write(&mut self, bytes: Range<u64>, encoded: impl Read) -> Result<u64, BlobError> {
        if bytes.start >= bytes.end || bytes.end > self.size {
            return Err(BlobError::OutOfRange {
                id: self.id,
                size: self.size,
                start: bytes.start,
                end: bytes.end,
            });
        }
        let before = self.verified_bytes();
        let ranges = groups_covering(&bytes);
        let root = blake3::Hash::from_bytes(self.id.0);
        let mut failure = None;
        // Verified groups arrive in order; contiguous ones are written at once.
        let mut run = Vec::with_capacity((bytes.end - bytes.start) as usize);
        let mut run_at = 0;
        for item in DecodeResponseIter::new(root, self.tree, encoded, &ranges) {
            match item {
                Ok(BaoContentItem::Parent(Parent { node, pair })) => {
                    self.outboard.save(node, &pair)?;
                }
                Ok(BaoContentItem::Leaf(Leaf { offset, data })) => {
                    if run_at + run.len() as u64 != offset {
                        self.write_verified(run_at, &run)?;
                        run.clear();
                        run_at = offset;
                    }
                    run.extend_from_slice(&data);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        self.write_verified(run_at, &run)?;
        let added = self.verified_bytes() - before;
        self.unrecorded += added;
        if failure.is_some() || self.unrecorded >= RECORD_EVERY {
            self.record()?;
        }
        match failure {
            Some(e) => Err(BlobError::Corrupt {
                id: self.id,
                why: e.to_string(),
            }),
            None => Ok(added),
        }
    }

    /// Write verified `data` at `offset` and count it as verified.
    fn write_verified(&mut self, offset: u64, data: &[u8]) -> Result<(), BlobError> {
        if data.is_empty() {
            return Ok(());
        }
        self.data.write_all_at(offset, data)?;
        let end = offset + data.len() as u64;
        self.verified |= ChunkRanges::from(ChunkNum::full_chunks(offset)..ChunkNum::chunks(end));
        Ok(())
    }

    fn verified_bytes(&self) -> u64 {
        self.size - self.missing().len()
    }

    /// Sync what was written and record the verified ranges, so a fetch
    /// stopped after this resumes from them.
    pub fn record(&mut self) -> Result<(), BlobError> {
        self.data.sync_data()?;
        self.outboard.data.sync_data()?;
        let row =
            borsh::to_vec(&(self.size, to_pairs(&self.verified))).map_err(BlobError::index)?;
        let w = self.store.db.begin_write().map_err(BlobError::index)?;
        w.open_table(PARTIAL)
            .map_err(BlobError::index)?
            .insert(self.id.0.as_slice(), row.as_slice())
            .map_err(BlobError::index)?;
        w.commit().map_err(BlobError::index)?;
        self.unrecorded = 0;
        Ok(())
    }

    /// Make the verified blob part of the store; refused while any byte is missing.
    pub fn finish(mut self) -> Result<BlobInfo, BlobError> {
        let missing = self.missing().len();
        if missing > 0 {
            return Err(BlobError::Incomplete {
                id: self.id,
                missing,
                size: self.size,
            });
        }
        if self.size == 0 && self.id.0 != *blake3::hash(&[]).as_bytes() {
            return Err(BlobError::Corrupt {
                id: self.id,
                why: "an empty blob has another hash".into(),
            });
        }
        // Installed, it is a blob: nothing is left to record for a resume.
        self.unrecorded = 0;
        self.data.set_len(self.size)?;
        self.outboard.data.set_len(self.tree.outboard_size())?;
        let (data, outboard) = self.store.partial_paths(&self.id);
        self.store.install(self.id, self.size, &data, &outboard)?;
        Ok(BlobInfo {
            id: self.id,
            size: self.size,
        })
    }
}

impl Drop for Partial<'_> {
    /// A fetch stopped early records what it verified, so the next resumes
    /// from it (if this fails, that much is fetched again: nothing is lost).
    fn drop(&mut self) {
        if self.unrecorded > 0 {
            let _ = self.record();
        }
    }
}
