//! `agora model publish FILE`: import a GGUF into the blob store (in place),
//! register it on chain under its id with what its header says and the
//! publisher as owner, and optionally serve it to peers until stopped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use agora_blobs::BlobStore;
use agora_chain_client::ChainClient;
use agora_devnet::keys;
use agora_types::{ModelEntry, TxKind};
use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

use crate::send::{print, send, ChainOpts};

/// `agora model publish`.
#[derive(Args, Debug)]
pub struct PublishArgs {
    /// The GGUF file.
    pub path: PathBuf,
    /// Key file of the publishing account: it pays the registration fee
    /// and owns the model (its royalties go there).
    #[arg(long)]
    pub key: PathBuf,
    /// Registry name clients use in the API (default: the file stem, lower-cased).
    #[arg(long)]
    pub name: Option<String>,
    /// Licence (default: the GGUF's `general.license`, else `unknown`).
    #[arg(long)]
    pub license: Option<String>,
    /// Share of every channel payment for the model paid to the owner, in
    /// parts per million (at most the chain's maximum).
    #[arg(long, default_value_t = 0)]
    pub royalty_ppm: u32,
    /// The blob store the file is imported into (in place: only its outboard is written).
    #[arg(long, default_value_os_t = crate::blob::default_dir())]
    pub dir: PathBuf,
    /// Serve the store's blobs at this address until stopped, for
    /// `agora blob get ID --peer http://ADDR` (providers serving the model
    /// serve it too, and are found through the chain).
    #[arg(long)]
    pub serve: Option<SocketAddr>,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// Run `agora model publish`.
pub async fn run(args: PublishArgs) -> Result<()> {
    let key = keys::load(&args.key).with_context(|| format!("loading {}", args.key.display()))?;
    let store = BlobStore::open(&args.dir)
        .with_context(|| format!("opening the blob store {}", args.dir.display()))?;
    let path = args.path.clone();
    let (store, info) = tokio::task::spawn_blocking(move || {
        let info = store.import_in_place(&path);
        (store, info)
    })
    .await?;
    let info = info.with_context(|| format!("importing {}", args.path.display()))?;
    let mut entry = agora_models::entry_for(&args.path, info.id, args.name.clone())
        .with_context(|| format!("describing {}", args.path.display()))?;
    if let Some(license) = &args.license {
        entry.license = license.clone();
    }
    entry.owner = key.account();
    entry.royalty_ppm = args.royalty_ppm;
    store.tag(&format!("model:{}", entry.name), &info.id)?;

    let chain = ChainClient::new(&args.chain.rpc);
    let models = chain
        .models()
        .await
        .with_context(|| format!("listing models at {}", args.chain.rpc))?;
    let height = match models.iter().find(|m| m.id == entry.id) {
        Some(existing) => {
            eprintln!(
                "model {} is already registered as {:?} (owner {})",
                existing.id, existing.name, existing.owner
            );
            entry = existing.clone();
            None
        }
        None => {
            if let Some(other) = models.iter().find(|m| m.name == entry.name) {
                bail!(
                    "the name {:?} is registered for another file ({}); choose another with --name",
                    entry.name,
                    other.id
                );
            }
            let kind = TxKind::RegisterModel {
                model: entry.clone(),
            };
            Some(
                send(&chain, &key, kind, "registering the model")
                    .await?
                    .height,
            )
        }
    };
    let value = json!({"model": entry, "registered_at": height});
    print(args.chain.json, value, describe(&entry, height))?;
    if let Some(addr) = args.serve {
        crate::blob::serve_store(Arc::new(store), addr).await?;
    }
    Ok(())
}

fn describe(entry: &ModelEntry, height: Option<u64>) -> String {
    let when = match height {
        Some(h) => format!("registered at height {h}"),
        None => "already registered".into(),
    };
    format!(
        "{}  {} ({} {}, {} bytes, licence {}, tokenizer {}), {when}",
        entry.id,
        entry.name,
        entry.architecture,
        entry.quantization,
        entry.size_bytes,
        entry.license,
        entry.tokenizer_hash
    )
}
