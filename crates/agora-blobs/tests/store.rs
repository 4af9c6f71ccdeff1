//! The blob store: import/export by BLAKE3 id, outboard overhead, verified
//! range transfer between two stores, resumption, and the ways a peer can
//! lie (a flipped byte, a cut stream, another blob's bytes) or a stored copy
//! can rot: each is refused and nothing unverified is kept.

use agora_blobs::{BlobError, BlobStore, ByteRanges, GROUP_BYTES};
use agora_types::Hash32;

/// Deterministic, incompressible-looking bytes.
fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = u64::from(seed) + 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// One byte range.
fn only(range: std::ops::Range<u64>) -> ByteRanges {
    ByteRanges(vec![range])
}

fn fresh() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn a_blob_is_named_by_its_blake3_and_exported_unchanged() {
    let (dir, store) = fresh();
    let bytes = content(300_000, 1);
    let file = dir.path().join("model.gguf");
    std::fs::write(&file, &bytes).unwrap();
    let info = store.import_file(&file).unwrap();
    assert_eq!(info.id, Hash32(*blake3::hash(&bytes).as_bytes()));
    assert_eq!(info.size, 300_000);
    assert_eq!(store.list().unwrap(), vec![info]);
    let out = dir.path().join("out");
    store.export(&info.id, &out).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    // Importing the same bytes again is the same blob, once.
    assert_eq!(store.import_bytes(&bytes).unwrap(), info);
    assert_eq!(store.list().unwrap().len(), 1);
    // The empty blob is a blob too.
    let empty = store.import_bytes(&[]).unwrap();
    assert_eq!(empty.id, Hash32(*blake3::hash(&[]).as_bytes()));
}

#[test]
fn the_outboard_adds_under_one_percent() {
    let (dir, store) = fresh();
    let info = store.import_bytes(&content(4 << 20, 2)).unwrap();
    let outboard = dir
        .path()
        .join("blobs")
        .join(format!("{}.obao", info.id.to_hex()));
    let extra = std::fs::metadata(outboard).unwrap().len();
    assert!(
        extra * 100 < info.size,
        "{extra} bytes of outboard for {}",
        info.size
    );
    assert!(extra > 0);
}

#[test]
fn ranges_move_verified_between_stores_and_a_fetch_resumes() {
    let (_a, seeder) = fresh();
    let bytes = content(10 * GROUP_BYTES as usize + 1234, 3);
    let info = seeder.import_bytes(&bytes).unwrap();
    let (dir, fetcher) = fresh();
    let half = 5 * GROUP_BYTES;
    {
        let mut partial = fetcher.begin(info.id, info.size).unwrap();
        assert_eq!(partial.missing(), only(0..info.size));
        let stream = seeder.encode(&info.id, 0..half).unwrap();
        assert_eq!(partial.write(0..half, stream.as_slice()).unwrap(), half);
        // Not complete: it cannot become a blob yet.
        assert!(matches!(
            partial.finish(),
            Err(BlobError::Incomplete { missing, .. }) if missing == info.size - half
        ));
    }
    // A new process: the verified half is remembered.
    drop(fetcher);
    let fetcher = BlobStore::open(dir.path()).unwrap();
    let mut partial = fetcher.begin(info.id, info.size).unwrap();
    assert_eq!(partial.missing(), only(half..info.size));
    // A range that does not start on a group boundary still verifies whole groups.
    let stream = seeder.encode(&info.id, half + 10..info.size).unwrap();
    partial
        .write(half + 10..info.size, stream.as_slice())
        .unwrap();
    assert!(partial.missing().is_empty());
    assert_eq!(partial.finish().unwrap(), info);
    let out = dir.path().join("out");
    fetcher.export(&info.id, &out).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), bytes);
    // The fetched copy serves (and so re-verifies) every range itself.
    fetcher.encode(&info.id, 0..info.size).unwrap();
}

#[test]
fn a_flipped_byte_a_cut_stream_or_another_blob_is_refused() {
    let (_a, seeder) = fresh();
    let bytes = content(8 * GROUP_BYTES as usize, 4);
    let info = seeder.import_bytes(&bytes).unwrap();
    let other = seeder.import_bytes(&content(bytes.len(), 5)).unwrap();
    let good = seeder.encode(&info.id, 0..info.size).unwrap();
    let (_b, fetcher) = fresh();
    let mut partial = fetcher.begin(info.id, info.size).unwrap();

    // One flipped byte in the last group: the groups before it are kept,
    // that group is not.
    let mut flipped = good.clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 1;
    let err = partial.write(0..info.size, flipped.as_slice()).unwrap_err();
    assert!(matches!(err, BlobError::Corrupt { .. }), "{err}");
    let missing = partial.missing();
    assert_eq!(missing.len(), GROUP_BYTES, "{missing:?}");
    assert_eq!(missing, only(info.size - GROUP_BYTES..info.size));

    // A stream cut short, and another blob's stream, verify nothing.
    let cut = &good[..good.len() / 2];
    let tail = info.size - GROUP_BYTES..info.size;
    let tail_stream = seeder.encode(&info.id, tail.clone()).unwrap();
    assert!(partial
        .write(tail.clone(), &tail_stream[..tail_stream.len() - 1])
        .is_err());
    let wrong = seeder.encode(&other.id, tail.clone()).unwrap();
    assert!(matches!(
        partial.write(tail.clone(), wrong.as_slice()),
        Err(BlobError::Corrupt { .. })
    ));
    assert!(partial.write(0..info.size, cut).is_err());
    assert_eq!(partial.missing().len(), GROUP_BYTES);
    assert!(
        partial.finish().is_err(),
        "never a blob with unverified bytes"
    );

    // The honest stream completes it.
    let mut partial = fetcher.begin(info.id, info.size).unwrap();
    partial.write(tail, tail_stream.as_slice()).unwrap();
    partial.finish().unwrap();
    assert_eq!(fetcher.size(&info.id).unwrap(), Some(info.size));
}

#[test]
fn a_rotted_copy_is_never_served_and_bad_ranges_are_refused() {
    let (dir, store) = fresh();
    let info = store
        .import_bytes(&content(3 * GROUP_BYTES as usize, 6))
        .unwrap();
    assert!(matches!(
        store.encode(&info.id, 0..info.size + 1),
        Err(BlobError::OutOfRange { .. })
    ));
    assert!(matches!(
        store.encode(&info.id, 5..5),
        Err(BlobError::OutOfRange { .. })
    ));
    assert!(matches!(
        store.encode(&Hash32([9; 32]), 0..1),
        Err(BlobError::NotFound(_))
    ));
    let data = dir.path().join("blobs").join(info.id.to_hex());
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[GROUP_BYTES as usize + 7] ^= 0x80;
    std::fs::write(&data, bytes).unwrap();
    // The first group is still fine; the rotted second one is refused.
    store.encode(&info.id, 0..GROUP_BYTES).unwrap();
    assert!(matches!(
        store.encode(&info.id, 0..info.size),
        Err(BlobError::Corrupt { .. })
    ));
    // A fetch started with another size than before is refused, not mixed.
    let (_b, fetcher) = fresh();
    let mut partial = fetcher.begin(info.id, info.size).unwrap();
    let stream = store.encode(&info.id, 0..GROUP_BYTES).unwrap();
    partial.write(0..GROUP_BYTES, stream.as_slice()).unwrap();
    drop(partial);
    assert!(matches!(
        fetcher.begin(info.id, info.size + 1),
        Err(BlobError::SizeMismatch { .. })
    ));
    fetcher.abandon(&info.id).unwrap();
    assert_eq!(
        fetcher.begin(info.id, info.size).unwrap().missing().len(),
        info.size
    );
}

#[test]
fn garbage_collection_keeps_tagged_blobs_only() {
    let (_d, store) = fresh();
    let kept = store.import_bytes(b"weights").unwrap();
    let dropped = store.import_bytes(b"scratch").unwrap();
    store.tag("smollm2", &kept.id).unwrap();
    assert!(matches!(
        store.tag("nothing", &Hash32([1; 32])),
        Err(BlobError::NotFound(_))
    ));
    assert_eq!(store.gc().unwrap(), vec![dropped.id]);
    assert_eq!(store.list().unwrap(), vec![kept]);
    assert!(store.untag("smollm2").unwrap());
    assert!(!store.untag("smollm2").unwrap());
    assert_eq!(store.gc().unwrap(), vec![kept.id]);
    assert!(store.list().unwrap().is_empty());
    assert!(!store.remove(&kept.id).unwrap());
}

#[test]
fn a_file_imported_in_place_is_served_from_where_it_is_and_kept_on_remove() {
    let (dir, store) = fresh();
    let bytes = content(5 * GROUP_BYTES as usize + 3, 7);
    let file = dir.path().join("model.gguf");
    std::fs::write(&file, &bytes).unwrap();
    let info = store.import_in_place(&file).unwrap();
    assert_eq!(info.id, Hash32(*blake3::hash(&bytes).as_bytes()));
    // Only the outboard was written into the store.
    assert!(!dir.path().join("blobs").join(info.id.to_hex()).exists());
    let stream = store.encode(&info.id, 0..info.size).unwrap();
    let (_b, other) = fresh();
    let mut partial = other.begin(info.id, info.size).unwrap();
    partial.write(0..info.size, stream.as_slice()).unwrap();
    partial.finish().unwrap();
    // The file changed under the store: refused, never served.
    let mut changed = bytes.clone();
    changed[10] ^= 1;
    std::fs::write(&file, &changed).unwrap();
    assert!(matches!(
        store.encode(&info.id, 0..GROUP_BYTES),
        Err(BlobError::Corrupt { .. })
    ));
    assert!(store.remove(&info.id).unwrap());
    assert!(
        file.exists(),
        "the file imported in place is not the store's to delete"
    );
}

#[test]
fn a_file_imported_in_place_that_moved_is_held_again_from_its_new_place() {
    let (dir, store) = fresh();
    let bytes = content(2 * GROUP_BYTES as usize, 8);
    let (old, new) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
    std::fs::write(&old, &bytes).unwrap();
    let info = store.import_in_place(&old).unwrap();
    assert!(store.held(&info.id).unwrap());
    std::fs::rename(&old, &new).unwrap();
    assert!(
        !store.held(&info.id).unwrap(),
        "its bytes are gone from where they were"
    );
    assert!(store.encode(&info.id, 0..info.size).is_err());
    assert_eq!(store.import_in_place(&new).unwrap(), info);
    assert!(store.held(&info.id).unwrap());
    store.encode(&info.id, 0..info.size).unwrap();
    // Fetched bytes replace a lost external file too.
    std::fs::remove_file(&new).unwrap();
    let (_s, seeder) = fresh();
    seeder.import_bytes(&bytes).unwrap();
    let mut partial = store.begin(info.id, info.size).unwrap();
    let stream = seeder.encode(&info.id, 0..info.size).unwrap();
    partial.write(0..info.size, stream.as_slice()).unwrap();
    partial.finish().unwrap();
    assert!(store.held(&info.id).unwrap());
    let out = dir.path().join("out");
    store.export(&info.id, &out).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), bytes);
}
