//! Collections (multi-file datasets): a folder added is a manifest blob
//! naming a blob per file, the same tree always gets the same id, a tagged
//! collection keeps its files through garbage collection, and a hostile
//! manifest (paths leaving the export folder, duplicates) is refused before
//! anything is written.

use agora_blobs::{BlobError, BlobStore, Collection, CollectionFile};
use agora_types::Hash32;

fn fresh() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&dir.path().join("store")).unwrap();
    (dir, store)
}

/// A small dataset tree under `root`: (relative path, bytes).
fn tree(root: &std::path::Path) -> Vec<(&'static str, Vec<u8>)> {
    let files = vec![
        ("train/part-0.jsonl", b"{\"x\":1}\n".repeat(5000)),
        ("train/part-1.jsonl", b"{\"x\":2}\n".repeat(7000)),
        ("README.md", b"a dataset".to_vec()),
        ("empty.txt", Vec::new()),
        ("deep/a/b/c.bin", (0..=255u8).cycle().take(70_000).collect()),
    ];
    for (path, bytes) in &files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    files
}

#[test]
fn a_folder_is_a_collection_exported_byte_for_byte_and_named_by_its_tree() {
    let (dir, store) = fresh();
    let files = tree(&dir.path().join("data"));
    let (info, collection) = store.add_dir(&dir.path().join("data")).unwrap();
    assert_eq!(collection.files.len(), files.len());
    let paths: Vec<&str> = collection.files.iter().map(|f| f.path.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "files are listed in path order");
    for f in &collection.files {
        let (_, bytes) = files.iter().find(|(p, _)| *p == f.path).unwrap();
        assert_eq!(f.id.0, *blake3::hash(bytes).as_bytes(), "{}", f.path);
        assert_eq!(f.size, bytes.len() as u64);
    }
    assert_eq!(
        store.collection(&info.id).unwrap(),
        Some(collection.clone())
    );
    let out = dir.path().join("out");
    store.export_collection(&collection, &out).unwrap();
    for (path, bytes) in &files {
        assert_eq!(&std::fs::read(out.join(path)).unwrap(), bytes, "{path}");
    }
    // The same tree elsewhere, in another store, has the same id.
    let (dir2, store2) = fresh();
    tree(&dir2.path().join("elsewhere"));
    let (again, _) = store2.add_dir(&dir2.path().join("elsewhere")).unwrap();
    assert_eq!(again.id, info.id);
    // A blob that is not a manifest is no collection.
    let file = store.import_bytes(b"plain bytes").unwrap();
    assert_eq!(store.collection(&file.id).unwrap(), None);
}

#[test]
fn a_tagged_collection_keeps_its_files_through_gc() {
    let (dir, store) = fresh();
    tree(&dir.path().join("data"));
    let (info, collection) = store.add_dir(&dir.path().join("data")).unwrap();
    let stray = store.import_bytes(b"not in any collection").unwrap();
    store.tag("dataset", &info.id).unwrap();
    let removed = store.gc().unwrap();
    assert_eq!(removed, vec![stray.id]);
    for f in &collection.files {
        assert!(store.held(&f.id).unwrap(), "{} was collected", f.path);
    }
    assert!(store.untag("dataset").unwrap());
    let removed = store.gc().unwrap();
    // The manifest and every distinct file go once nothing names them.
    let mut distinct: Vec<Hash32> = collection.files.iter().map(|f| f.id).collect();
    distinct.push(info.id);
    distinct.sort();
    distinct.dedup();
    let mut removed = removed;
    removed.sort();
    assert_eq!(removed, distinct);
}

#[test]
fn hostile_manifests_are_refused_before_anything_is_written() {
    let (dir, store) = fresh();
    let file = |path: &str| CollectionFile {
        path: path.into(),
        id: Hash32(*blake3::hash(b"x").as_bytes()),
        size: 1,
    };
    for bad in [
        "../escape",
        "a/../../escape",
        "/etc/passwd",
        "a//b",
        "./a",
        "a/.",
        "",
        "a\\..\\b",
        "nul\0byte",
    ] {
        assert!(
            matches!(
                Collection::new(vec![file(bad)]),
                Err(BlobError::BadCollection(_))
            ),
            "{bad:?} accepted"
        );
        // Crafted by hand, as a peer could serve it.
        let manifest = format!(
            "{{\"agora_collection\":1,\"files\":[{{\"path\":{},\"id\":\"{}\",\"size\":1}}]}}",
            serde_json::to_string(bad).unwrap(),
            file("x").id.to_hex()
        );
        let info = store.import_bytes(manifest.as_bytes()).unwrap();
        assert!(
            matches!(store.collection(&info.id), Err(BlobError::BadCollection(_))),
            "{bad:?} read back"
        );
    }
    assert!(
        Collection::new(vec![file("a"), file("a")]).is_err(),
        "duplicate"
    );
    let unsorted = format!(
        "{{\"agora_collection\":1,\"files\":[{{\"path\":\"b\",\"id\":\"{0}\",\"size\":1}},{{\"path\":\"a\",\"id\":\"{0}\",\"size\":1}}]}}",
        file("x").id.to_hex()
    );
    assert!(Collection::parse(unsorted.as_bytes()).is_err());
    let other_version = b"{\"agora_collection\":2,\"files\":[]}";
    assert!(Collection::parse(other_version).is_err());
    // Nothing was written outside the store's own folder.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("store")]);
}

#[cfg(unix)]
#[test]
fn a_folder_with_a_symbolic_link_is_refused() {
    let (dir, store) = fresh();
    let data = dir.path().join("data");
    tree(&data);
    std::os::unix::fs::symlink("/etc/hostname", data.join("link")).unwrap();
    assert!(matches!(
        store.add_dir(&data),
        Err(BlobError::BadCollection(_))
    ));
}
