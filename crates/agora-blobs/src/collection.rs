//! Collections: a multi-file dataset as one blob. Every file is a blob of
//! its own, and the collection is a manifest blob listing each file's
//! relative path, id and size, so the manifest's id names the whole tree
//! and every file in it is fetched and verified like any blob.
//!
//! The manifest is canonical JSON (`{"agora_collection":1,"files":[...]}`,
//! files sorted by path): the same tree always gives the same id. A manifest
//! from a peer is untrusted: paths must be relative, `/`-separated, without
//! `.`, `..` or empty parts, and unique, so exporting one can never write
//! outside the folder it is exported to.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use agora_types::Hash32;
use serde::{Deserialize, Serialize};

use crate::{BlobError, BlobInfo, BlobStore};

/// The manifest format's version.
const VERSION: u32 = 1;

/// How every manifest starts (a blob that does not is no collection).
const MAGIC: &[u8] = b"{\"agora_collection\":";

/// Most files one collection may list.
pub const MAX_FILES: usize = 1 << 20;

/// Largest manifest read back (a million files with long paths fit).
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// One file of a collection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionFile {
    /// Its path inside the collection, `/`-separated.
    pub path: String,
    /// Its blob id.
    pub id: Hash32,
    /// Its size in bytes.
    pub size: u64,
}

/// A collection's manifest: its files, sorted by path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    agora_collection: u32,
    /// The files.
    pub files: Vec<CollectionFile>,
}

impl Collection {
    /// The collection of `files` (sorted here); refused if a path is unsafe
    /// or listed twice.
    pub fn new(mut files: Vec<CollectionFile>) -> Result<Self, BlobError> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let c = Collection {
            agora_collection: VERSION,
            files,
        };
        c.check()?;
        Ok(c)
    }

    /// The manifest's bytes (the collection blob's content).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Read a manifest; `None` if `bytes` are not one (an ordinary blob),
    /// an error if they claim to be one but are unsafe or malformed.
    pub fn parse(bytes: &[u8]) -> Result<Option<Self>, BlobError> {
        if !bytes.starts_with(MAGIC) {
            return Ok(None);
        }
        let c: Collection =
            serde_json::from_slice(bytes).map_err(|e| BlobError::BadCollection(e.to_string()))?;
        if c.agora_collection != VERSION {
            return Err(BlobError::BadCollection(format!(
                "version {}",
                c.agora_collection
            )));
        }
        c.check()?;
        Ok(Some(c))
    }

    /// Every file's bytes.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    fn check(&self) -> Result<(), BlobError> {
        if self.files.len() > MAX_FILES {
            return Err(BlobError::BadCollection(format!(
                "{} files, at most {MAX_FILES}",
                self.files.len()
            )));
        }
        let mut seen = HashSet::new();
        for f in &self.files {
            check_path(&f.path)?;
            if !seen.insert(f.path.as_str()) {
                return Err(BlobError::BadCollection(format!(
                    "{:?} listed twice",
                    f.path
                )));
            }
        }
        if self.files.windows(2).any(|w| w[0].path > w[1].path) {
            return Err(BlobError::BadCollection("files not sorted by path".into()));
        }
        Ok(())
    }
}

/// Refuse a path that could leave the folder it is exported to.
fn check_path(path: &str) -> Result<(), BlobError> {
    let bad = |why: &str| Err(BlobError::BadCollection(format!("path {path:?}: {why}")));
    if path.is_empty() || path.len() > 4096 {
        return bad("empty or too long");
    }
    if path.contains('\\') || path.contains('\0') {
        return bad("backslash or NUL");
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return bad("empty, `.` or `..` part");
        }
    }
    if Path::new(path)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return bad("not a plain relative path");
    }
    Ok(())
}

/// Every plain file under `dir`, recursively, as (its `/`-separated path
/// inside `dir`, its path on disk); a symbolic link or special file is
/// refused (links are never followed), as is a path that is not UTF-8.
pub fn dir_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, BlobError> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(dir.join(&rel))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let rel = rel.join(entry.file_name());
            if kind.is_dir() {
                stack.push(rel);
            } else if kind.is_file() {
                let text = rel.to_str().ok_or_else(|| {
                    BlobError::BadCollection(format!("{} is not UTF-8", rel.display()))
                })?;
                files.push((text.replace(std::path::MAIN_SEPARATOR, "/"), dir.join(&rel)));
            } else {
                return Err(BlobError::BadCollection(format!(
                    "{} is not a file or folder (links are not followed)",
                    rel.display()
                )));
            }
        }
    }
    Ok(files)
}

impl BlobStore {
    /// Import every file under `dir` (recursively; symbolic links are
    /// refused) and a manifest listing them; returns the manifest blob (the
    /// collection's id) and the collection.
    pub fn add_dir(&self, dir: &Path) -> Result<(BlobInfo, Collection), BlobError> {
        let mut files = Vec::new();
        for (path, full) in dir_files(dir)? {
            let info = self.import_file(&full)?;
            files.push(CollectionFile {
                path,
                id: info.id,
                size: info.size,
            });
        }
        let collection = Collection::new(files)?;
        let info = self.import_bytes(&collection.to_bytes())?;
        Ok((info, collection))
    }

    /// The collection blob `id` holds, if the store holds it and it is one.
    /// Only a blob that starts like a manifest is read whole (and checked
    /// against its id), so asking of a model file costs one short read.
    pub fn collection(&self, id: &Hash32) -> Result<Option<Collection>, BlobError> {
        match self.size(id)? {
            Some(size) if size <= MAX_MANIFEST_BYTES && size >= MAGIC.len() as u64 => {
                let path = self.data_path(id);
                let mut head = [0; MAGIC.len()];
                std::fs::File::open(&path)?.read_exact(&mut head)?;
                if head != MAGIC {
                    return Ok(None);
                }
                let bytes = std::fs::read(path)?;
                if blake3::hash(&bytes).as_bytes() != &id.0 {
                    return Err(BlobError::Corrupt {
                        id: *id,
                        why: "the stored manifest no longer matches its id".into(),
                    });
                }
                Collection::parse(&bytes)
            }
            _ => Ok(None),
        }
    }

    /// Write every file of `collection` under `out` at its path; every file
    /// must be held.
    pub fn export_collection(&self, collection: &Collection, out: &Path) -> Result<(), BlobError> {
        collection.check()?;
        for f in &collection.files {
            let dest = out.join(&f.path);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            self.export(&f.id, &dest)?;
        }
        Ok(())
    }
}
