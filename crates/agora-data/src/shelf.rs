//! The data node's holdings: datasets (blob-store collections) and the
//! algorithm modules it has been sent, and each dataset materialised once
//! as a plain folder the sandbox mounts read-only.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use agora_blobs::{BlobStore, Collection, CollectionFile};
use agora_types::Hash32;

use crate::DataError;

/// A dataset's content id without importing it: the id of the collection
/// manifest listing every file under `dir` (what [`Shelf::add_dir`] and
/// `agora blob add DIR` give the same folder).
pub fn dataset_id_of_dir(dir: &Path) -> Result<(Hash32, Collection), DataError> {
    let mut files = Vec::new();
    for (path, full) in agora_blobs::dir_files(dir)? {
        let mut hasher = blake3::Hasher::new();
        let size = hasher.update_reader(std::fs::File::open(full)?)?.count();
        files.push(CollectionFile {
            path,
            id: Hash32(*hasher.finalize().as_bytes()),
            size,
        });
    }
    let collection = Collection::new(files)?;
    Ok((
        Hash32(*blake3::hash(&collection.to_bytes()).as_bytes()),
        collection,
    ))
}

/// The node's datasets and modules.
pub struct Shelf {
    store: BlobStore,
    mounts: PathBuf,
    /// Datasets already materialised under `mounts` in this process.
    mounted: Mutex<HashSet<Hash32>>,
}

impl Shelf {
    /// Open (or create) the shelf in `dir` (`dir/blobs`, `dir/mounts`).
    pub fn open(dir: &Path) -> Result<Self, DataError> {
        let store = BlobStore::open(&dir.join("blobs"))?;
        let mounts = dir.join("mounts");
        std::fs::create_dir_all(&mounts)?;
        Ok(Shelf {
            store,
            mounts,
            mounted: Mutex::new(HashSet::new()),
        })
    }

    /// Import the folder `dir` as a dataset; its content id and manifest.
    pub fn add_dir(&self, dir: &Path) -> Result<(Hash32, Collection), DataError> {
        let (info, collection) = self.store.add_dir(dir)?;
        Ok((info.id, collection))
    }

    /// The manifest of dataset `id`, if held.
    pub fn manifest(&self, id: &Hash32) -> Result<Option<Collection>, DataError> {
        Ok(self.store.collection(id)?)
    }

    /// Keep an algorithm module; its id.
    pub fn add_module(&self, wasm: &[u8]) -> Result<Hash32, DataError> {
        Ok(self.store.import_bytes(wasm)?.id)
    }

    /// The bytes of module `id`, if held.
    pub fn module(&self, id: &Hash32) -> Result<Option<Vec<u8>>, DataError> {
        match self.store.file(id)? {
            Some(path) => Ok(Some(std::fs::read(path)?)),
            None => Ok(None),
        }
    }

    /// The file holding blob `id` (a dataset's file), if held.
    pub fn file(&self, id: &Hash32) -> Result<Option<PathBuf>, DataError> {
        Ok(self.store.file(id)?)
    }

    /// The folder holding dataset `id`'s files, written from the store the
    /// first time (into a scratch folder renamed into place, so a crash
    /// never leaves a partial dataset to run on).
    pub fn mount(&self, id: &Hash32) -> Result<PathBuf, DataError> {
        let dest = self.mounts.join(id.to_hex());
        let mut mounted = self.mounted.lock().expect("mount lock");
        if mounted.contains(id) {
            return Ok(dest);
        }
        let collection = self.manifest(id)?.ok_or(DataError::DatasetNotHere(*id))?;
        // A folder from an earlier run is rebuilt: its files may have been edited since.
        if dest.exists() {
            std::fs::remove_dir_all(&dest)?;
        }
        let scratch = self.mounts.join(format!(".{}.partial", id.to_hex()));
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)?;
        }
        std::fs::create_dir_all(&scratch)?;
        self.store.export_collection(&collection, &scratch)?;
        std::fs::rename(&scratch, &dest)?;
        mounted.insert(*id);
        Ok(dest)
    }
}
