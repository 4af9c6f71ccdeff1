//! Fetching a blob from several peers at once: the missing bytes are cut
//! into pieces that every peer takes from one queue, so faster peers serve
//! more; each piece is verified before it is written ([`crate::Partial`]).
//! A peer that sends a bad piece (bytes that are not the blob's, a stream
//! cut short) or stalls past the timeout is dropped and reported, and its
//! piece goes back to the others. Interrupted fetches resume: only what
//! never verified is asked for again.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Mutex;
use std::time::Duration;

use agora_types::Hash32;
use futures::future::BoxFuture;

use crate::serve::{blob_url, SIZE_HEADER};
use crate::{BlobError, BlobInfo, BlobStore, Partial, GROUP_BYTES};

/// Where byte ranges of blobs come from; [`HttpPeer`] is the real one.
pub trait RangeSource: Send + Sync {
    /// How the peer is named in reports.
    fn label(&self) -> String;
    /// The bao encoding of `bytes` of blob `id`, as the peer sends it.
    fn encoded(&self, id: Hash32, bytes: Range<u64>) -> BoxFuture<'_, Result<Vec<u8>, String>>;
}

/// A peer serving [`crate::serve::router`] at `base`.
pub struct HttpPeer {
    base: String,
    http: reqwest::Client,
}

impl HttpPeer {
    /// The peer at `base` (its registered endpoint), called through `http`.
    pub fn new(base: &str, http: reqwest::Client) -> Self {
        HttpPeer {
            base: base.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// The size the peer says blob `id` has (`None` if it does not hold it).
    pub async fn size(&self, id: &Hash32) -> Result<Option<u64>, String> {
        let resp = self
            .http
            .head(blob_url(&self.base, id))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let size = resp
            .headers()
            .get(SIZE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        size.map(Some)
            .ok_or_else(|| format!("{} answered {} without a size", self.base, resp.status()))
    }
}

impl RangeSource for HttpPeer {
    fn label(&self) -> String {
        self.base.clone()
    }

    fn encoded(&self, id: Hash32, bytes: Range<u64>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let url = format!(
                "{}?start={}&end={}",
                blob_url(&self.base, &id),
                bytes.start,
                bytes.end
            );
            let resp = self.http.get(url).send().await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("answered {}", resp.status()));
            }
            let body = resp.bytes().await.map_err(|e| e.to_string())?;
            Ok(Vec::from(body))
        })
    }
}

/// How a fetch cuts and times its requests.
#[derive(Clone, Debug)]
pub struct FetchConfig {
    /// Bytes per request (rounded to whole chunk groups).
    pub piece_bytes: u64,
    /// How long a peer may take to answer one piece before it is dropped.
    pub timeout: Duration,
    /// Requests in flight to each peer at once (so that a peer's link is
    /// not idle while the last piece it sent is verified).
    pub per_peer: usize,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            piece_bytes: 4 << 20,
            timeout: Duration::from_secs(30),
            per_peer: 2,
        }
    }
}

/// What a finished fetch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The blob, now in the store.
    pub info: BlobInfo,
    /// Bytes verified from each peer, in the order the peers were given.
    pub from: Vec<(String, u64)>,
    /// Peers given up on, and why.
    pub dropped: Vec<(String, String)>,
}

/// The pieces covering `missing`, each at most `piece` bytes and starting
/// on a chunk group.
fn pieces(missing: &[Range<u64>], piece: u64) -> VecDeque<Range<u64>> {
    let piece = piece.div_ceil(GROUP_BYTES).max(1) * GROUP_BYTES;
    let mut out = VecDeque::new();
    for r in missing {
        let mut start = r.start / GROUP_BYTES * GROUP_BYTES;
        while start < r.end {
            let end = (start + piece).min(r.end);
            out.push_back(start.max(r.start)..end);
            start += piece;
        }
    }
    out
}

/// One fetch in progress, shared by its peers' workers.
struct Run<'a, 's> {
    id: Hash32,
    size: u64,
    config: &'a FetchConfig,
    progress: &'a (dyn Fn(u64, u64) + Sync),
    partial: Mutex<Partial<'s>>,
    queue: Mutex<VecDeque<Range<u64>>>,
}

impl<'s> Run<'_, 's> {
    fn partial(&self) -> std::sync::MutexGuard<'_, Partial<'s>> {
        self.partial.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Range<u64>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Run::work`] for `peer` with [`FetchConfig::per_peer`] requests in
    /// flight: the bytes they verified, and why the first that failed did.
    async fn peer(&self, peer: &dyn RangeSource) -> (u64, Option<String>) {
        let lanes = (0..self.config.per_peer.max(1)).map(|_| self.work(peer));
        let results = futures::future::join_all(lanes).await;
        let got = results.iter().map(|(n, _)| n).sum();
        (got, results.into_iter().find_map(|(_, why)| why))
    }

    /// Take pieces for `peer` until none is left (`None`) or it fails one
    /// (why), which goes back to the queue; returns the bytes it verified.
    async fn work(&self, peer: &dyn RangeSource) -> (u64, Option<String>) {
        let mut got = 0u64;
        loop {
            let Some(piece) = self.queue().pop_front() else {
                return (got, None);
            };
            let asked = peer.encoded(self.id, piece.clone());
            let why = match tokio::time::timeout(self.config.timeout, asked).await {
                Ok(Ok(bytes)) => {
                    let mut partial = self.partial();
                    match partial.write(piece.clone(), bytes.as_slice()) {
                        Ok(n) => {
                            got += n;
                            let left = partial.missing().len();
                            drop(partial);
                            (self.progress)(self.size - left, self.size);
                            continue;
                        }
                        Err(e) => e.to_string(),
                    }
                }
                Ok(Err(e)) => e,
                Err(_) => format!("no answer within {:?}", self.config.timeout),
            };
            self.queue().push_back(piece);
            return (got, Some(why));
        }
    }
}

/// Fetch blob `id` of `size` bytes from `peers` into `store` (resuming any
/// earlier partial fetch); `progress` hears (verified, total) bytes after
/// each piece. Fails with [`BlobError::Unavailable`] once no peer is left
/// that has not been dropped; what verified stays for the next attempt.
pub async fn fetch(
    store: &BlobStore,
    id: Hash32,
    size: u64,
    peers: &[&dyn RangeSource],
    config: &FetchConfig,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Fetched, BlobError> {
    if let (true, Some(have)) = (store.held(&id)?, store.size(&id)?) {
        let info = BlobInfo { id, size: have };
        let from = peers.iter().map(|p| (p.label(), 0)).collect();
        return Ok(Fetched {
            info,
            from,
            dropped: Vec::new(),
        });
    }
    let partial = store.begin(id, size)?;
    let missing = partial.missing();
    progress(size - missing.len(), size);
    let run = Run {
        id,
        size,
        config,
        progress,
        partial: Mutex::new(partial),
        queue: Mutex::new(VecDeque::new()),
    };
    // Rounds: a failing peer puts its piece back after the others may have
    // emptied the queue, so each round restarts the peers still trusted on
    // whatever is still missing, until nothing is or no peer is left.
    let mut got = vec![0u64; peers.len()];
    let mut dropped = Vec::new();
    let mut live: Vec<usize> = (0..peers.len()).collect();
    loop {
        let missing = run.partial().missing();
        if missing.is_empty() || live.is_empty() {
            break;
        }
        *run.queue() = pieces(&missing.0, config.piece_bytes);
        let results = futures::future::join_all(live.iter().map(|&i| run.peer(peers[i]))).await;
        let mut still = Vec::new();
        for (&i, (bytes, why)) in live.iter().zip(results) {
            got[i] += bytes;
            match why {
                Some(why) => dropped.push((peers[i].label(), why)),
                None => still.push(i),
            }
        }
        if still.len() == live.len() && run.partial().missing() == missing {
            break; // nobody failed and nothing moved: no round will do better
        }
        live = still;
    }
    let from = peers.iter().zip(got).map(|(p, g)| (p.label(), g)).collect();
    let mut partial = run.partial.into_inner().unwrap_or_else(|e| e.into_inner());
    let missing = partial.missing().len();
    if missing > 0 {
        partial.record()?;
        let why = if dropped.is_empty() {
            "no peer was given".to_string()
        } else {
            let each: Vec<String> = dropped.iter().map(|(p, w)| format!("{p}: {w}")).collect();
            each.join("; ")
        };
        return Err(BlobError::Unavailable { id, missing, why });
    }
    let info = partial.finish()?;
    Ok(Fetched {
        info,
        from,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_start_on_groups_and_cover_exactly_what_is_missing() {
        let g = GROUP_BYTES;
        let p = pieces(&[0..5 * g + 7, 9 * g + 3..10 * g], 2 * g);
        let got: Vec<_> = p.into_iter().collect();
        assert_eq!(
            got,
            vec![0..2 * g, 2 * g..4 * g, 4 * g..5 * g + 7, 9 * g + 3..10 * g]
        );
        // A piece size below a group rounds up to one group.
        let three = 0..3 * g;
        assert_eq!(pieces(&[three], 1).len(), 3);
    }
}
