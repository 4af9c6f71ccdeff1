//! Fetching from several peers over real HTTP (`serve::router`), with peers
//! that flip a byte, cut the stream, send another blob or stall: each is
//! dropped and reported, the honest peers finish the blob, nothing
//! unverified is ever kept, and a failed fetch resumes from what verified.

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use agora_blobs::serve::{blob_url, router, SIZE_HEADER};
use agora_blobs::{fetch, BlobError, BlobStore, FetchConfig, HttpPeer, RangeSource, GROUP_BYTES};
use agora_types::Hash32;
use futures::future::BoxFuture;

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn open() -> (tempfile::TempDir, Arc<BlobStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(BlobStore::open(dir.path()).unwrap());
    (dir, store)
}

/// Serve `store` on a free loopback port; its base URL.
async fn serve(store: Arc<BlobStore>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(store)).await });
    base
}

/// What a dishonest peer does to the honest encoding.
#[derive(Clone, Copy)]
enum Lie {
    /// One byte of the last chunk group flipped.
    Flip,
    /// The stream cut in half.
    Cut,
    /// The same range of another blob.
    Other(Hash32),
    /// Never answers.
    Stall,
}

struct Liar {
    store: Arc<BlobStore>,
    lie: Lie,
    name: &'static str,
}

impl RangeSource for Liar {
    fn label(&self) -> String {
        self.name.into()
    }

    fn encoded(&self, id: Hash32, bytes: Range<u64>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let mut out = match self.lie {
                Lie::Other(other) => self.store.encode(&other, bytes),
                Lie::Stall => return futures::future::pending().await,
                _ => self.store.encode(&id, bytes),
            }
            .map_err(|e| e.to_string())?;
            match self.lie {
                Lie::Flip => {
                    let at = out.len() - 10;
                    out[at] ^= 0x20;
                }
                Lie::Cut => out.truncate(out.len() / 2),
                _ => {}
            }
            Ok(out)
        })
    }
}

fn config() -> FetchConfig {
    FetchConfig {
        piece_bytes: 8 * GROUP_BYTES,
        timeout: Duration::from_millis(500),
        per_peer: 2,
    }
}

#[tokio::test]
async fn two_honest_peers_share_one_fetch() {
    let bytes = content(40 * GROUP_BYTES as usize + 99, 1);
    let (_a, a) = open();
    let (_b, b) = open();
    let info = a.import_bytes(&bytes).unwrap();
    b.import_bytes(&bytes).unwrap();
    let http = reqwest::Client::new();
    let (pa, pb) = (
        HttpPeer::new(&serve(a).await, http.clone()),
        HttpPeer::new(&serve(b).await, http),
    );
    assert_eq!(pa.size(&info.id).await.unwrap(), Some(info.size));
    assert_eq!(pa.size(&Hash32([3; 32])).await.unwrap(), None);
    let (dir, store) = open();
    let seen = std::sync::Mutex::new(Vec::new());
    let progress = |done: u64, total: u64| seen.lock().unwrap().push((done, total));
    let fetched = fetch(
        &store,
        info.id,
        info.size,
        &[&pa, &pb],
        &config(),
        &progress,
    )
    .await
    .unwrap();
    assert_eq!(fetched.info, info);
    assert!(fetched.dropped.is_empty(), "{:?}", fetched.dropped);
    let (from_a, from_b) = (fetched.from[0].1, fetched.from[1].1);
    assert!(from_a > 0 && from_b > 0, "both served: {fetched:?}");
    assert_eq!(from_a + from_b, info.size);
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.first(), Some(&(0, info.size)));
    assert_eq!(seen.last(), Some(&(info.size, info.size)));
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
    let out = dir.path().join("out");
    store.export(&info.id, &out).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), bytes);
}

#[tokio::test]
async fn lying_and_stalling_peers_are_dropped_and_the_honest_one_finishes() {
    let bytes = content(64 * GROUP_BYTES as usize, 2);
    let (_s, seeder) = open();
    let info = seeder.import_bytes(&bytes).unwrap();
    let other = seeder.import_bytes(&content(bytes.len(), 3)).unwrap();
    let liar = |lie, name| Liar {
        store: seeder.clone(),
        lie,
        name,
    };
    let (flip, cut, wrong, stall) = (
        liar(Lie::Flip, "flip"),
        liar(Lie::Cut, "cut"),
        liar(Lie::Other(other.id), "other"),
        liar(Lie::Stall, "stall"),
    );
    let honest = HttpPeer::new(&serve(seeder.clone()).await, reqwest::Client::new());
    let (dir, store) = open();
    let peers: [&dyn RangeSource; 5] = [&flip, &cut, &wrong, &stall, &honest];
    let fetched = fetch(&store, info.id, info.size, &peers, &config(), &|_, _| {})
        .await
        .unwrap();
    let dropped: BTreeSet<&str> = fetched.dropped.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(dropped, BTreeSet::from(["cut", "flip", "other", "stall"]));
    let stalled = &fetched
        .dropped
        .iter()
        .find(|(p, _)| p == "stall")
        .unwrap()
        .1;
    assert!(stalled.contains("no answer"), "{stalled}");
    let flipped = &fetched.dropped.iter().find(|(p, _)| p == "flip").unwrap().1;
    assert!(flipped.contains("verification"), "{flipped}");
    let out = dir.path().join("out");
    store.export(&info.id, &out).unwrap();
    assert_eq!(
        std::fs::read(out).unwrap(),
        bytes,
        "the output is the blob, byte for byte"
    );
}

#[tokio::test]
async fn a_fetch_no_peer_can_finish_fails_and_resumes_from_what_verified() {
    let bytes = content(24 * GROUP_BYTES as usize, 4);
    let (_s, seeder) = open();
    let info = seeder.import_bytes(&bytes).unwrap();
    let flip = Liar {
        store: seeder.clone(),
        lie: Lie::Flip,
        name: "flip",
    };
    let (_d, store) = open();
    let err = fetch(&store, info.id, info.size, &[&flip], &config(), &|_, _| {})
        .await
        .unwrap_err();
    let BlobError::Unavailable { missing, why, .. } = err else {
        panic!("{err}");
    };
    assert!(why.contains("flip"), "{why}");
    // In each piece it sent (one per request in flight), the groups before
    // the flipped one verified and stay.
    let kept = info.size - missing;
    let per_piece = 7 * GROUP_BYTES;
    assert!(
        kept > 0 && kept % per_piece == 0 && kept <= config().per_peer as u64 * per_piece,
        "kept {kept} bytes"
    );
    assert_eq!(
        store.size(&info.id).unwrap(),
        None,
        "not a blob while incomplete"
    );
    let honest = HttpPeer::new(&serve(seeder).await, reqwest::Client::new());
    let fetched = fetch(
        &store,
        info.id,
        info.size,
        &[&honest],
        &config(),
        &|_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(
        fetched.from[0].1, missing,
        "only what never verified was fetched again"
    );
    assert_eq!(fetched.info, info);
}

#[tokio::test]
async fn the_blob_endpoint_refuses_what_it_cannot_serve() {
    let (_s, seeder) = open();
    let info = seeder
        .import_bytes(&content(3 * GROUP_BYTES as usize, 5))
        .unwrap();
    let base = serve(seeder).await;
    let http = reqwest::Client::new();
    let get = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap() }
    };
    let url = blob_url(&base, &info.id);
    let ok = get(format!("{url}?start=0&end=10")).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()[SIZE_HEADER], info.size.to_string().as_str());
    assert_eq!(
        get(format!("{url}?start=0&end={}", info.size + 1))
            .await
            .status(),
        416
    );
    assert_eq!(get(format!("{url}?start=9&end=9")).await.status(), 416);
    assert_eq!(get(blob_url(&base, &Hash32([7; 32]))).await.status(), 404);
    let bad = get(format!("{base}/v1/blobs/not-hex")).await;
    assert_eq!(bad.status(), 400);
    let v: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_blob_id");
    let huge = get(format!("{url}?start=0&end={}", 1u64 << 40)).await;
    assert_eq!(huge.status(), 400);
}
