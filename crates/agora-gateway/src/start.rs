//! Starting a gateway as a role: serve the OpenAI-compatible API for the
//! network behind a chain RPC, refresh the provider directory in the
//! background, and (given a data directory for its key book) serve only
//! issued keys, each paying providers from its own account through channels.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agora_chain_client::ChainClient;
use agora_tasks::{bind, serve, Context, Failure, ServeLimits, Shutdown, Task};
use agora_types::{Amount, Keypair};

use agora_keys::{KeyBook, Limits};

use crate::{
    AccountPayers, ApiError, ChainDirectory, ChannelStore, Gateway, GatewayConfig, PayerConfig,
};

/// How long a starting gateway waits for a model to appear on chain.
const MODEL_WAIT: Duration = Duration::from_secs(60);

/// How the gateway protects itself. A non-streamed completion sends its
/// head only when the whole generation is done, after the provider queued
/// and ran it, so the head deadline is long: 15 minutes (a streamed one
/// sends its head once a provider starts, and its body is never timed; the
/// per-provider idle timeout watches a silent provider). 30 s to send a
/// request head (and of keep-alive idleness); 1,024 requests in flight, each
/// holding a connection to a provider while it runs.
pub fn serve_limits() -> ServeLimits {
    ServeLimits {
        header_read: Duration::from_secs(30),
        max_in_flight: 1024,
        // A quarter each: one address cannot take the whole server.
        max_per_client: 256,
        response_head: Duration::from_secs(15 * 60),
        refuse: ApiError::refusal,
    }
}

/// What a gateway needs to start.
pub struct GatewaySetup {
    /// Chain RPC URL.
    pub chain_url: String,
    /// Listen address.
    pub listen: SocketAddr,
    /// Pay providers for every job through channels (`None`: serve unpaid).
    pub payer: Option<PayerSetup>,
}

/// How a gateway admits and pays: keys from a key book, each paying from its own account.
pub struct PayerSetup {
    /// Holds the key book (`keys.redb`) and the admin key (`admin-key`).
    pub data_dir: PathBuf,
    /// Escrow of each new channel, and the least a top-up adds.
    pub deposit: Amount,
    /// A funded key to keep as a custodial account (the devnet's faucet,
    /// `--payer-key`), with `import_keys` bound to it.
    pub import: Option<Keypair>,
    /// Existing client keys (an `--api-keys` file) to bind, without limits,
    /// to `import`'s account.
    pub import_keys: Vec<String>,
}

/// The admin key in `dir/admin-key`, made on first start (readable by its owner only).
pub fn admin_key(dir: &Path) -> std::io::Result<String> {
    let path = dir.join("admin-key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Some(key) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
            return Ok(key.to_string());
        }
    }
    let key = format!(
        "{}admin-{}",
        agora_keys::KEY_PREFIX,
        &agora_keys::generate()[agora_keys::KEY_PREFIX.len()..]
    );
    agora_tasks::write_private(&path, format!("{key}\n").as_bytes())?;
    Ok(key)
}

/// Client keys in the file at `path`, one per line (blank lines and `#`
/// comments skipped); with `create`, a file holding one fresh key is
/// written first if there is none. An empty list is an error.
pub fn client_keys(path: &Path, create: bool) -> std::io::Result<Vec<String>> {
    if create && !path.exists() {
        let text = format!(
            "# client API keys, one per line\n{}\n",
            agora_keys::generate()
        );
        agora_tasks::write_private(path, text.as_bytes())?;
    }
    let keys: Vec<String> = std::fs::read_to_string(path)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} holds no key (one key per line)", path.display()),
        ));
    }
    Ok(keys)
}

/// A started gateway.
pub struct GatewayHandle {
    /// Base URL (the OpenAI base URL is this plus `/v1`).
    pub url: String,
    /// The HTTP server and directory refresh task.
    pub task: Task,
    gateway: Arc<Gateway<ChainDirectory>>,
    /// The key book, when the gateway pays.
    pub book: Option<Arc<KeyBook>>,
}

impl GatewayHandle {
    /// Wait until the chain lists a provider for `model`, so the first request succeeds.
    pub async fn wait_for_model(&self, model: &str) -> Result<(), Failure> {
        self.gateway
            .wait_for_model(model, MODEL_WAIT)
            .await
            .with_context(|| format!("the gateway never saw a provider for {model}"))
    }
}

/// Serve the OpenAI-compatible API for the network behind `setup.chain_url`,
/// paying providers for every job when `setup.payer` is given.
pub async fn start(setup: GatewaySetup, shutdown: Shutdown) -> Result<GatewayHandle, Failure> {
    let chain = ChainClient::new(&setup.chain_url);
    // Which chain decides whether provider endpoints may be private addresses.
    let chain_id = chain
        .status()
        .await
        .with_context(|| format!("reading the chain at {}", setup.chain_url))?
        .chain_id;
    let directory = ChainDirectory(chain.clone());
    let gateway_config = GatewayConfig {
        chain_id: chain_id.clone(),
        ..GatewayConfig::default()
    };
    let (gateway, book) = match setup.payer {
        None => (Gateway::new(directory, gateway_config), None),
        Some(p) => {
            std::fs::create_dir_all(&p.data_dir)
                .with_context(|| format!("creating {}", p.data_dir.display()))?;
            let book =
                KeyBook::open(&p.data_dir.join("keys.redb")).context("opening the key book")?;
            if let Some(key) = p.import {
                let account = book
                    .import_account(key)
                    .context("keeping the payer account")?;
                for secret in &p.import_keys {
                    book.import_key(secret, "imported", account, Limits::default())
                        .context("importing a client key")?;
                }
            }
            let admin = admin_key(&p.data_dir).context("the admin key")?;
            tracing::info!(
                accounts = book.accounts().len(),
                keys = book.list().len(),
                deposit = p.deposit,
                "the gateway serves issued keys, each paying from its own account"
            );
            let config = PayerConfig {
                deposit: p.deposit.max(1),
                chain_id,
                ..PayerConfig::default()
            };
            let channels = ChannelStore::open(&p.data_dir.join("channels.redb"))
                .context("opening the channel store")?;
            let payers = AccountPayers::new(book.clone(), chain, config, channels)
                .context("loading the accounts' channels")?;
            tokio::spawn(payers.clone().run_retries(shutdown.clone().wait()));
            let config = GatewayConfig {
                admin_key_hash: Some(agora_keys::hash(&admin)),
                ..gateway_config
            };
            let gateway = Gateway::with_payer(directory, config, book.clone(), payers);
            gateway.refresh_funds().await;
            (gateway, Some(book))
        }
    };
    let listener = bind(setup.listen, "gateway").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = gateway.router();
    let refresher = tokio::spawn(gateway.clone().run_refresh(shutdown.clone().wait()));
    let task = tokio::spawn(async move {
        serve(listener, router, serve_limits(), shutdown.wait())
            .await
            .context("gateway server")?;
        refresher.await.context("directory refresh task")?;
        Ok(())
    });
    Ok(GatewayHandle {
        url,
        task,
        gateway,
        book,
    })
}
