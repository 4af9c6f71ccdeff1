//! Starting a data node as a role: import its dataset folders, register it
//! on chain as a data-only provider, serve the HTTP API and settle receipts
//! on a timer until shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use agora_chain_client::{ChainClient, ProviderTerms};
use agora_tasks::{Failure, Shutdown, Task};
use agora_types::network::is_development_chain;
use agora_types::{Hash32, Keypair, Price};

use crate::{DataError, DataNode, DataNodeConfig, Shelf, Tamper};

/// How long registration waits to be committed.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);

/// What a data node needs to start.
pub struct DataNodeSetup {
    /// Chain RPC URL.
    pub chain_url: String,
    /// Its provider key.
    pub key: Keypair,
    /// Where its blob store, mounts and job records live.
    pub data_dir: PathBuf,
    /// The dataset folders it serves.
    pub datasets: Vec<PathBuf>,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// URL registered on chain (default: `http://` and the bound address).
    pub public_url: Option<String>,
    /// Collateral locked when it registers.
    pub stake: u64,
    /// Time between settlements.
    pub settle_every: Duration,
    /// How long results are kept.
    pub retention: Duration,
    /// Wall-clock limit of one run.
    pub deadline: Duration,
    /// Honest or not (refused outside development chains).
    pub tamper: Tamper,
}

/// A started data node.
pub struct DataNodeHandle {
    /// Its registered URL.
    pub url: String,
    /// The ids of the datasets it serves, in the order given.
    pub datasets: Vec<Hash32>,
    /// The node (to settle or inspect from the caller).
    pub node: DataNode,
    /// The server and settlement tasks.
    pub tasks: Vec<Task>,
}

/// Start a data node; returns once it is registered and serving.
pub async fn start(setup: DataNodeSetup, shutdown: Shutdown) -> Result<DataNodeHandle, DataError> {
    let chain = ChainClient::new(&setup.chain_url);
    let head = chain.head().await?;
    if setup.tamper != Tamper::None && !is_development_chain(&head.chain_id) {
        return Err(DataError::Denied(format!(
            "a dishonest data node is refused on chain {:?}: development chains only",
            head.chain_id
        )));
    }
    let shelf = Shelf::open(&setup.data_dir.join("shelf"))?;
    let mut datasets = Vec::new();
    for dir in &setup.datasets {
        datasets.push(shelf.add_dir(dir)?.0);
    }
    let listener = tokio::net::TcpListener::bind(setup.listen).await?;
    let url = match setup.public_url {
        Some(url) => url,
        None => format!("http://{}", listener.local_addr()?),
    };
    register(&chain, &setup.key, &url, setup.stake).await?;
    let max_settle = usize::try_from(chain.params().await?.data.max_settle_receipts).unwrap_or(64);
    let node = DataNode::new(DataNodeConfig {
        key: setup.key,
        chain,
        shelf,
        datasets: datasets.clone(),
        deadline: setup.deadline,
        retention: setup.retention,
        max_settle,
        tamper: setup.tamper,
        jobs_dir: setup.data_dir.join("jobs"),
    })?;
    let settler = node.clone();
    let every = setup.settle_every.max(Duration::from_millis(100));
    let stop = shutdown.clone();
    let settle: Task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.clone().wait() => return Ok(()),
            }
            match settler.settle().await {
                Ok(Some(batch)) => tracing::info!(%batch, "settled data receipts"),
                Ok(None) => {}
                Err(e) => tracing::warn!("settling data receipts: {e}"),
            }
        }
    });
    let app = crate::router(node.clone());
    let serve: Task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.wait())
            .await
            .map_err(|e| Failure::msg(format!("data node server: {e}")))
    });
    Ok(DataNodeHandle {
        url,
        datasets,
        node,
        tasks: vec![settle, serve],
    })
}

/// Register `key` as a data-only provider (no models) at `url`, unless it
/// already is registered on those terms.
async fn register(
    chain: &ChainClient,
    key: &Keypair,
    url: &str,
    stake: u64,
) -> Result<(), DataError> {
    let terms = ProviderTerms {
        endpoint: url.to_string(),
        models: vec![],
        price: Price {
            input_per_1k: 0,
            output_per_1k: 0,
        },
        stake,
        replayable: true,
    };
    chain.ensure_provider(key, &terms, REGISTER_TIMEOUT).await?;
    Ok(())
}
