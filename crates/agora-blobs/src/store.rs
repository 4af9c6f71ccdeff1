//! [`BlobStore`]: complete blobs under `DIR/blobs/` (the data as
//! `<id>` and its pre-order bao outboard as `<id>.obao`), blobs being
//! fetched under `DIR/partial/`, and an index (`DIR/index.redb`) of sizes,
//! tags and the verified ranges of partial fetches.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};

use agora_types::Hash32;
use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::encode_ranges_validated;
use bao_tree::BaoTree;
use redb::{Database, ReadableTable, TableDefinition};

use crate::ranges::groups_covering;
use crate::{BlobError, BLOCK_SIZE, GROUP_BYTES};

/// id → size of every complete blob.
pub(crate) const BLOBS: TableDefinition<&[u8], u64> = TableDefinition::new("blobs");
/// tag name → id: blobs that garbage collection keeps.
const TAGS: TableDefinition<&str, &[u8]> = TableDefinition::new("tags");
/// id → path of blobs kept where they are (imported in place, not copied).
const EXTERNAL: TableDefinition<&[u8], &str> = TableDefinition::new("external");
/// id → borsh (size, verified chunk ranges) of every partial fetch.
pub(crate) const PARTIAL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("partial");

/// A complete blob: its id and size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    /// BLAKE3 of the content (the bao tree's root).
    pub id: Hash32,
    /// Bytes.
    pub size: u64,
}

/// Blobs on disk, each verifiable range by range.
pub struct BlobStore {
    pub(crate) dir: PathBuf,
    pub(crate) db: Database,
}

impl BlobStore {
    /// Open (or create) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BlobError> {
        std::fs::create_dir_all(dir.join("blobs"))?;
        std::fs::create_dir_all(dir.join("partial"))?;
        let db = Database::create(dir.join("index.redb")).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => BlobError::InUse(dir.to_path_buf()),
            e => BlobError::index(e),
        })?;
        let w = db.begin_write().map_err(BlobError::index)?;
        w.open_table(BLOBS).map_err(BlobError::index)?;
        w.open_table(TAGS).map_err(BlobError::index)?;
        w.open_table(PARTIAL).map_err(BlobError::index)?;
        w.open_table(EXTERNAL).map_err(BlobError::index)?;
        w.commit().map_err(BlobError::index)?;
        Ok(BlobStore {
            dir: dir.to_path_buf(),
            db,
        })
    }

    /// Where blob `id`'s bytes are: its own file, or the file it was
    /// imported in place from.
    pub(crate) fn data_path(&self, id: &Hash32) -> PathBuf {
        self.external(id)
            .ok()
            .flatten()
            .unwrap_or_else(|| self.own_path(id))
    }

    /// Where the store keeps the bytes of a blob it holds itself.
    fn own_path(&self, id: &Hash32) -> PathBuf {
        self.dir.join("blobs").join(id.to_hex())
    }

    /// Whether the store holds blob `id` with its bytes where the index
    /// says (a file imported in place may have been moved or deleted since).
    pub fn held(&self, id: &Hash32) -> Result<bool, BlobError> {
        Ok(self.file(id)?.is_some_and(|f| f.is_file()))
    }

    fn external(&self, id: &Hash32) -> Result<Option<PathBuf>, BlobError> {
        let r = self.db.begin_read().map_err(BlobError::index)?;
        let table = r.open_table(EXTERNAL).map_err(BlobError::index)?;
        let path = table.get(id.0.as_slice()).map_err(BlobError::index)?;
        Ok(path.map(|p| PathBuf::from(p.value())))
    }

    /// Import the file at `path` without copying it (a provider's model,
    /// already on disk): only its outboard is stored, and the file is
    /// served from where it is. Every range served is checked against the
    /// id, so a file changed afterwards is refused, never served.
    pub fn import_in_place(&self, path: &Path) -> Result<BlobInfo, BlobError> {
        let path = std::fs::canonicalize(path)?;
        let text = path.to_str().ok_or_else(|| {
            BlobError::Io(std::io::Error::other(format!(
                "{} is not a UTF-8 path",
                path.display()
            )))
        })?;
        let source = File::open(&path)?;
        let size = source.metadata()?.len();
        let outboard_tmp = self.scratch("obao");
        let result = (|| {
            let root = crate::hash::outboard(&source, size, &File::create(&outboard_tmp)?)?;
            let id = Hash32(*root.as_bytes());
            if !self.held(&id)? {
                File::open(&outboard_tmp)?.sync_all()?;
                std::fs::rename(&outboard_tmp, self.outboard_path(&id))?;
                let w = self.db.begin_write().map_err(BlobError::index)?;
                w.open_table(EXTERNAL)
                    .map_err(BlobError::index)?
                    .insert(id.0.as_slice(), text)
                    .map_err(BlobError::index)?;
                w.open_table(BLOBS)
                    .map_err(BlobError::index)?
                    .insert(id.0.as_slice(), size)
                    .map_err(BlobError::index)?;
                w.commit().map_err(BlobError::index)?;
            }
            Ok(BlobInfo { id, size })
        })();
        let _ = std::fs::remove_file(&outboard_tmp);
        result
    }

    pub(crate) fn outboard_path(&self, id: &Hash32) -> PathBuf {
        self.dir.join("blobs").join(format!("{}.obao", id.to_hex()))
    }

    /// A fresh temporary path under `partial/`.
    fn scratch(&self, what: &str) -> PathBuf {
        let n: u64 = rand::random();
        self.dir
            .join("partial")
            .join(format!("{what}-{n:016x}.tmp"))
    }

    /// Import the file at `path`: copy it in, then hash the copy (so what
    /// is stored is what was hashed, even if the file changes meanwhile)
    /// and build its outboard on every core.
    pub fn import_file(&self, path: &Path) -> Result<BlobInfo, BlobError> {
        let data_tmp = self.scratch("data");
        let result = std::fs::copy(path, &data_tmp)
            .map_err(BlobError::from)
            .and_then(|_| self.import_scratch(&data_tmp));
        let _ = std::fs::remove_file(&data_tmp);
        result
    }

    /// Import `bytes`.
    pub fn import_bytes(&self, bytes: &[u8]) -> Result<BlobInfo, BlobError> {
        let data_tmp = self.scratch("data");
        let result = std::fs::write(&data_tmp, bytes)
            .map_err(BlobError::from)
            .and_then(|()| self.import_scratch(&data_tmp));
        let _ = std::fs::remove_file(&data_tmp);
        result
    }

    /// Hash the store's own scratch copy `data_tmp` and install it.
    fn import_scratch(&self, data_tmp: &Path) -> Result<BlobInfo, BlobError> {
        let outboard_tmp = self.scratch("obao");
        let result = (|| {
            let data = File::open(data_tmp)?;
            let size = data.metadata()?.len();
            let root = crate::hash::outboard(&data, size, &File::create(&outboard_tmp)?)?;
            let id = Hash32(*root.as_bytes());
            self.install(id, size, data_tmp, &outboard_tmp)?;
            Ok(BlobInfo { id, size })
        })();
        let _ = std::fs::remove_file(&outboard_tmp);
        result
    }

    /// Move a verified blob's files into place and index it.
    pub(crate) fn install(
        &self,
        id: Hash32,
        size: u64,
        data: &Path,
        outboard: &Path,
    ) -> Result<(), BlobError> {
        let fresh = !self.held(&id)?;
        if fresh {
            File::open(data)?.sync_all()?;
            File::open(outboard)?.sync_all()?;
            std::fs::rename(data, self.own_path(&id))?;
            std::fs::rename(outboard, self.outboard_path(&id))?;
        }
        let w = self.db.begin_write().map_err(BlobError::index)?;
        if fresh {
            // Its bytes are the store's own now, not a file elsewhere that went away.
            w.open_table(EXTERNAL)
                .map_err(BlobError::index)?
                .remove(id.0.as_slice())
                .map_err(BlobError::index)?;
        }
        w.open_table(BLOBS)
            .map_err(BlobError::index)?
            .insert(id.0.as_slice(), size)
            .map_err(BlobError::index)?;
        w.open_table(PARTIAL)
            .map_err(BlobError::index)?
            .remove(id.0.as_slice())
            .map_err(BlobError::index)?;
        w.commit().map_err(BlobError::index)
    }

    /// The size of complete blob `id`, if the store holds it.
    pub fn size(&self, id: &Hash32) -> Result<Option<u64>, BlobError> {
        let r = self.db.begin_read().map_err(BlobError::index)?;
        let table = r.open_table(BLOBS).map_err(BlobError::index)?;
        let size = table.get(id.0.as_slice()).map_err(BlobError::index)?;
        Ok(size.map(|v| v.value()))
    }

    /// The file holding complete blob `id`'s bytes (to load or mmap it
    /// where it is), if the store holds it.
    pub fn file(&self, id: &Hash32) -> Result<Option<PathBuf>, BlobError> {
        Ok(self.size(id)?.map(|_| self.data_path(id)))
    }

    /// Every complete blob, by id.
    pub fn list(&self) -> Result<Vec<BlobInfo>, BlobError> {
        let r = self.db.begin_read().map_err(BlobError::index)?;
        let table = r.open_table(BLOBS).map_err(BlobError::index)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(BlobError::index)? {
            let (k, v) = row.map_err(BlobError::index)?;
            let id = Hash32(k.value().try_into().map_err(BlobError::index)?);
            out.push(BlobInfo {
                id,
                size: v.value(),
            });
        }
        Ok(out)
    }

    /// Copy blob `id` to `dest`.
    pub fn export(&self, id: &Hash32, dest: &Path) -> Result<u64, BlobError> {
        self.size(id)?.ok_or(BlobError::NotFound(*id))?;
        Ok(std::fs::copy(self.data_path(id), dest)?)
    }

    /// Delete blob `id` (and any tags naming it); false if it was not there.
    pub fn remove(&self, id: &Hash32) -> Result<bool, BlobError> {
        let w = self.db.begin_write().map_err(BlobError::index)?;
        let existed = {
            let mut blobs = w.open_table(BLOBS).map_err(BlobError::index)?;
            let existed = blobs
                .remove(id.0.as_slice())
                .map_err(BlobError::index)?
                .is_some();
            let mut tags = w.open_table(TAGS).map_err(BlobError::index)?;
            tags.retain(|_, v| v != id.0.as_slice())
                .map_err(BlobError::index)?;
            existed
        };
        // A blob imported in place keeps its file: only the store's own go.
        let external = self.external(id)?.is_some();
        w.open_table(EXTERNAL)
            .map_err(BlobError::index)?
            .remove(id.0.as_slice())
            .map_err(BlobError::index)?;
        w.commit().map_err(BlobError::index)?;
        let files = if external {
            vec![self.outboard_path(id)]
        } else {
            vec![self.own_path(id), self.outboard_path(id)]
        };
        for path in files {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(existed)
    }

    /// Name blob `id` `tag`, so garbage collection keeps it.
    pub fn tag(&self, tag: &str, id: &Hash32) -> Result<(), BlobError> {
        self.size(id)?.ok_or(BlobError::NotFound(*id))?;
        let w = self.db.begin_write().map_err(BlobError::index)?;
        w.open_table(TAGS)
            .map_err(BlobError::index)?
            .insert(tag, id.0.as_slice())
            .map_err(BlobError::index)?;
        w.commit().map_err(BlobError::index)
    }

    /// Drop `tag`; false if there was none.
    pub fn untag(&self, tag: &str) -> Result<bool, BlobError> {
        let w = self.db.begin_write().map_err(BlobError::index)?;
        let had = w
            .open_table(TAGS)
            .map_err(BlobError::index)?
            .remove(tag)
            .map_err(BlobError::index)?
            .is_some();
        w.commit().map_err(BlobError::index)?;
        Ok(had)
    }

    /// Every tag and the blob it names.
    pub fn tags(&self) -> Result<Vec<(String, Hash32)>, BlobError> {
        let r = self.db.begin_read().map_err(BlobError::index)?;
        let table = r.open_table(TAGS).map_err(BlobError::index)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(BlobError::index)? {
            let (k, v) = row.map_err(BlobError::index)?;
            let id = Hash32(v.value().try_into().map_err(BlobError::index)?);
            out.push((k.value().to_string(), id));
        }
        Ok(out)
    }

    /// Delete every complete blob no tag names (directly, or as a file of
    /// a tagged collection); returns what was deleted.
    pub fn gc(&self) -> Result<Vec<Hash32>, BlobError> {
        let mut kept: std::collections::HashSet<Hash32> =
            self.tags()?.into_iter().map(|(_, id)| id).collect();
        for id in kept.clone() {
            if let Some(c) = self.collection(&id)? {
                kept.extend(c.files.iter().map(|f| f.id));
            }
        }
        let mut removed = Vec::new();
        for blob in self.list()? {
            if !kept.contains(&blob.id) && self.remove(&blob.id)? {
                removed.push(blob.id);
            }
        }
        Ok(removed)
    }

    /// The bao encoding of `bytes` of blob `id`: the chunk groups covering
    /// them with every hash pair on their path from the root, checked
    /// against the id as they are read (a copy that rotted on disk is
    /// refused, never served).
    pub fn encode(&self, id: &Hash32, bytes: Range<u64>) -> Result<Vec<u8>, BlobError> {
        let size = self.size(id)?.ok_or(BlobError::NotFound(*id))?;
        if bytes.start >= bytes.end || bytes.end > size {
            return Err(BlobError::OutOfRange {
                id: *id,
                size,
                start: bytes.start,
                end: bytes.end,
            });
        }
        let outboard = PreOrderOutboard {
            root: blake3::Hash::from_bytes(id.0),
            tree: BaoTree::new(size, BLOCK_SIZE),
            data: File::open(self.outboard_path(id))?,
        };
        let data = File::open(self.data_path(id))?;
        // The groups, a pair per group and the pairs above them.
        let groups = (bytes.end - bytes.start).div_ceil(GROUP_BYTES) + 1;
        let mut out = Vec::with_capacity(((groups + 64) * (GROUP_BYTES + 64)) as usize);
        encode_ranges_validated(data, outboard, &groups_covering(&bytes), &mut out).map_err(
            |e| BlobError::Corrupt {
                id: *id,
                why: format!("the stored copy: {e}"),
            },
        )?;
        Ok(out)
    }
}
