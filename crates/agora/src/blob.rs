//! `agora blob ...`: the local blob store (`$XDG_CACHE_HOME/agora/blobs` by
//! default): add files, fetch blobs from peers verified, list, remove and
//! garbage-collect them.

use std::path::PathBuf;

use agora_blobs::{BlobStore, FetchConfig, HttpPeer, RangeSource};
use agora_chain_client::ChainClient;
use agora_types::Hash32;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::send::print;

/// `agora blob ...`.
#[derive(Subcommand, Debug)]
pub enum BlobCommand {
    /// Import a file, or a folder as a collection (every file a blob, plus
    /// a manifest blob naming them); prints its id (BLAKE3).
    Add(AddArgs),
    /// Fetch a blob from the peers that serve it, verifying every chunk group.
    Get(GetArgs),
    /// List the blobs held.
    Ls(StoreOpts),
    /// Remove a blob.
    Rm(IdArgs),
    /// Remove every blob no tag names (a tagged collection keeps its files).
    Gc(StoreOpts),
    /// Serve the store's blobs to peers over HTTP until stopped.
    Serve(ServeArgs),
}

/// `agora blob serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub http: std::net::SocketAddr,
    /// Store flags.
    #[command(flatten)]
    pub store: StoreOpts,
}

/// Where the store is and how to print.
#[derive(Args, Debug)]
pub struct StoreOpts {
    /// The store's directory.
    #[arg(long, default_value_os_t = default_dir())]
    pub dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `agora blob add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The file, or a folder to add as a collection.
    pub path: PathBuf,
    /// Tag it (tagged blobs, and the files of tagged collections, survive `agora blob gc`).
    #[arg(long)]
    pub tag: Option<String>,
    /// Store flags.
    #[command(flatten)]
    pub store: StoreOpts,
}

/// `agora blob get`.
#[derive(Args, Debug)]
pub struct GetArgs {
    /// The blob's id (64 hex digits; a model's on-chain id).
    pub id: String,
    /// A peer serving blobs (a provider's endpoint); repeat for several.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// Also ask every provider the chain at this RPC URL lists as serving the blob.
    #[arg(long)]
    pub rpc: Option<String>,
    /// The blob's size in bytes (default: asked of the peers; a wrong size
    /// fails verification).
    #[arg(long)]
    pub size: Option<u64>,
    /// Also copy it to this file once verified (a collection: to this
    /// folder, each file at its path).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Seconds a peer may take to answer one piece before it is dropped.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// Store flags.
    #[command(flatten)]
    pub store: StoreOpts,
}

/// A command naming one blob.
#[derive(Args, Debug)]
pub struct IdArgs {
    /// The blob's id.
    pub id: String,
    /// Store flags.
    #[command(flatten)]
    pub store: StoreOpts,
}

/// `$AGORA_BLOB_DIR`, else `blobs` beside the model cache.
pub(crate) fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("AGORA_BLOB_DIR") {
        return PathBuf::from(dir);
    }
    let models = agora_models::cache_dir();
    models
        .parent()
        .map_or(models.clone(), |p| p.to_path_buf())
        .join("blobs")
}

fn parse_id(text: &str) -> Result<Hash32> {
    crate::send::parse_hash("ID", "blob", text)
}

fn open(opts: &StoreOpts) -> Result<BlobStore> {
    BlobStore::open(&opts.dir).with_context(|| format!("opening {}", opts.dir.display()))
}

/// Run an `agora blob` subcommand.
pub async fn run(command: BlobCommand) -> Result<()> {
    match command {
        BlobCommand::Add(a) => {
            let store = open(&a.store)?;
            let (info, files) = if a.path.is_dir() {
                let (info, c) = store
                    .add_dir(&a.path)
                    .with_context(|| format!("adding the folder {}", a.path.display()))?;
                (info, Some(c))
            } else {
                let info = store
                    .import_file(&a.path)
                    .with_context(|| format!("importing {}", a.path.display()))?;
                (info, None)
            };
            if let Some(tag) = &a.tag {
                store.tag(tag, &info.id)?;
            }
            let text = match &files {
                Some(c) => format!(
                    "{}  collection of {} files, {} bytes",
                    info.id,
                    c.files.len(),
                    c.total_bytes()
                ),
                None => format!("{}  {} bytes", info.id, info.size),
            };
            let v = json!({"id": info.id.to_hex(), "size": info.size, "tag": a.tag,
                "files": files.map(|c| c.files)});
            print(a.store.json, v, text)
        }
        BlobCommand::Serve(s) => {
            let store = std::sync::Arc::new(open(&s.store)?);
            serve_store(store, s.http).await
        }
        BlobCommand::Get(g) => get(g).await,
        BlobCommand::Ls(o) => {
            let store = open(&o)?;
            let blobs = store.list()?;
            let tags = store.tags()?;
            let rows: Vec<_> = blobs
                .iter()
                .map(|b| {
                    let named: Vec<&str> = tags
                        .iter()
                        .filter(|(_, id)| *id == b.id)
                        .map(|(t, _)| t.as_str())
                        .collect();
                    json!({"id": b.id.to_hex(), "size": b.size, "tags": named})
                })
                .collect();
            let text: Vec<String> = rows
                .iter()
                .map(|r| {
                    format!(
                        "{}  {:>12}  {}",
                        r["id"].as_str().unwrap_or(""),
                        r["size"],
                        r["tags"]
                    )
                })
                .collect();
            print(o.json, json!({"data": rows}), text.join("\n"))
        }
        BlobCommand::Rm(r) => {
            let id = parse_id(&r.id)?;
            if !open(&r.store)?.remove(&id)? {
                bail!("no blob {id} in {}", r.store.dir.display());
            }
            print(
                r.store.json,
                json!({"removed": id.to_hex()}),
                format!("removed {id}"),
            )
        }
        BlobCommand::Gc(o) => {
            let removed = open(&o)?.gc()?;
            let ids: Vec<String> = removed.iter().map(Hash32::to_hex).collect();
            let text = format!("removed {} blob(s)", ids.len());
            print(o.json, json!({"removed": ids}), text)
        }
    }
}

/// The endpoints of the providers the chain at `rpc` lists as serving `id`.
async fn serving(rpc: &str, id: &Hash32) -> Result<Vec<String>> {
    let providers = ChainClient::new(rpc)
        .providers()
        .await
        .with_context(|| format!("listing providers at {rpc}"))?;
    Ok(providers
        .into_iter()
        .filter(|p| p.models.contains(id))
        .map(|p| p.endpoint)
        .collect())
}

/// A peer for each endpoint, sharing one client.
fn http_peers(endpoints: &[String]) -> Result<Vec<HttpPeer>> {
    let http = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()?;
    Ok(endpoints
        .iter()
        .map(|e| HttpPeer::new(e, http.clone()))
        .collect())
}

/// Fetch blob `id` of `size` bytes from `peers` into `store`, with a
/// progress bar (rate and ETA) on stderr when `show` is set.
async fn fetch_shown(
    store: &BlobStore,
    id: Hash32,
    size: u64,
    peers: &[HttpPeer],
    timeout: std::time::Duration,
    show: bool,
) -> Result<agora_blobs::Fetched, agora_blobs::BlobError> {
    let bar = show.then(|| {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let progress = |done: u64, _total: u64| {
        if let Some(bar) = &bar {
            bar.set_position(done);
        }
    };
    let sources: Vec<&dyn RangeSource> = peers.iter().map(|p| p as &dyn RangeSource).collect();
    let config = FetchConfig {
        timeout,
        ..FetchConfig::default()
    };
    let fetched = agora_blobs::fetch(store, id, size, &sources, &config, &progress).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    fetched
}

/// For `agora provider --model-id ID`: the model the chain registered
/// under `id`, fetched verified from the providers serving it into
/// `DATA_DIR/blobs` (or found there from an earlier start); its file and
/// registry entry.
pub async fn model_from_peers(
    id: &str,
    rpc: &str,
    data_dir: &std::path::Path,
) -> Result<(PathBuf, agora_types::ModelEntry)> {
    let id = parse_id(id)?;
    let entry = ChainClient::new(rpc)
        .models()
        .await
        .with_context(|| format!("listing models at {rpc}"))?
        .into_iter()
        .find(|m| m.id == id)
        .with_context(|| {
            format!("the chain at {rpc} has no model {id}; publish it first (a provider started with --model FILE registers it)")
        })?;
    let store = BlobStore::open(&data_dir.join("blobs"))?;
    if !store.held(&id)? {
        let endpoints = serving(rpc, &id).await?;
        if endpoints.is_empty() {
            bail!("no provider on the chain at {rpc} serves model {id} to fetch it from");
        }
        let peers = http_peers(&endpoints)?;
        eprintln!(
            "fetching model {} ({} bytes) from {} peer(s)",
            entry.name,
            entry.size_bytes,
            peers.len()
        );
        let timeout = std::time::Duration::from_secs(30);
        let fetched = fetch_shown(&store, id, entry.size_bytes, &peers, timeout, true)
            .await
            .with_context(|| format!("fetching model {id}"))?;
        for (peer, why) in &fetched.dropped {
            eprintln!("dropped {peer}: {why}");
        }
    }
    let path = store
        .file(&id)?
        .with_context(|| format!("model {id} is not in the store"))?;
    Ok((path, entry))
}

async fn get(g: GetArgs) -> Result<()> {
    let id = parse_id(&g.id)?;
    let mut endpoints = g.peers.clone();
    if let Some(rpc) = &g.rpc {
        for endpoint in serving(rpc, &id).await? {
            if !endpoints.contains(&endpoint) {
                endpoints.push(endpoint);
            }
        }
    }
    if endpoints.is_empty() {
        bail!("no peer serves {id}: give --peer URL, or --rpc URL to ask the chain");
    }
    let peers = http_peers(&endpoints)?;
    let size = match g.size {
        Some(size) => size,
        None => {
            let mut found = None;
            for p in &peers {
                if let Ok(Some(size)) = p.size(&id).await {
                    found = Some(size);
                    break;
                }
            }
            found.with_context(|| format!("none of {} peer(s) holds {id}", peers.len()))?
        }
    };
    let store = open(&g.store)?;
    let timeout = std::time::Duration::from_secs(g.timeout_secs.max(1));
    let show = !g.store.json;
    let fetched = fetch_shown(&store, id, size, &peers, timeout, show).await;
    let mut fetched = vec![fetched.with_context(|| format!("fetching {id}"))?];
    // A collection: every file it names, from the same peers.
    let collection = store.collection(&id)?;
    if let Some(c) = &collection {
        for (i, f) in c.files.iter().enumerate() {
            if show {
                eprintln!("[{}/{}] {}", i + 1, c.files.len(), f.path);
            }
            let got = fetch_shown(&store, f.id, f.size, &peers, timeout, show).await;
            fetched.push(got.with_context(|| format!("fetching {} ({})", f.path, f.id))?);
        }
    }
    for (peer, why) in fetched.iter().flat_map(|f| &f.dropped) {
        eprintln!("dropped {peer}: {why}");
    }
    if let Some(out) = &g.out {
        match &collection {
            Some(c) => store.export_collection(c, out),
            None => store.export(&id, out).map(|_| ()),
        }
        .with_context(|| format!("writing {}", out.display()))?;
    }
    let mut from: Vec<(String, u64)> = Vec::new();
    for (peer, n) in fetched.iter().flat_map(|f| &f.from) {
        match from.iter_mut().find(|(p, _)| p == peer) {
            Some((_, total)) => *total += n,
            None => from.push((peer.clone(), *n)),
        }
    }
    let from: Vec<_> = from
        .iter()
        .map(|(p, n)| json!({"peer": p, "bytes": n}))
        .collect();
    let dropped: Vec<_> = fetched
        .iter()
        .flat_map(|f| &f.dropped)
        .map(|(p, why)| json!({"peer": p, "why": why}))
        .collect();
    let files = collection.as_ref().map(|c| &c.files);
    let v =
        json!({"id": id.to_hex(), "size": size, "from": from, "dropped": dropped, "files": files});
    let text = match &collection {
        Some(c) => format!(
            "{id}  collection of {} files, {} bytes, verified",
            c.files.len(),
            c.total_bytes()
        ),
        None => format!("{id}  {size} bytes, verified"),
    };
    print(g.store.json, v, text)
}

/// Serve `store`'s blobs at `addr` until Ctrl-C; prints the URL and `ready`.
pub(crate) async fn serve_store(
    store: std::sync::Arc<BlobStore>,
    addr: std::net::SocketAddr,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!("blobs: http://{}", listener.local_addr()?);
    println!("agora blob serve ready");
    axum::serve(listener, agora_blobs::serve::router(store))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving blobs")
}
