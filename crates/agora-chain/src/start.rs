//! Starting a chain node as a role: open the chain under a directory, serve
//! the RPC, and get blocks from the single-node producer or, with a
//! [`ValidatorSetup`], from the BFT engine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use agora_ledger::Genesis;
use agora_tasks::{bind, serve, Context, Failure, ServeLimits, Shutdown, Task};
use agora_types::Keypair;

use crate::rpc::MAX_WAIT;
use crate::{spawn_validator, ChainConfig, Node, ValidatorSetup};

/// How the chain RPC protects itself. Every answer but one is a quick read
/// or a mempool check, so the head deadline only has to cover
/// `GET /tx/{id}?wait_ms=`, which waits for a block by design (up to
/// `MAX_WAIT`, 30 s), with as much again for a slow request body; 30 s to
/// send a request head (and of keep-alive idleness) is plenty on any link;
/// 1,024 requests in flight is far above what gateways, providers and
/// wallets send, yet bounds the memory a flood can pin.
pub fn rpc_limits() -> ServeLimits {
    ServeLimits {
        header_read: Duration::from_secs(30),
        max_in_flight: 1024,
        // A quarter each: one address cannot take the whole server.
        max_per_client: 256,
        response_head: MAX_WAIT * 2,
        refuse: crate::rpc::refusal,
    }
}

/// What a chain node needs to start.
pub struct NodeSetup {
    /// Where the chain (`DIR/chain`) persists.
    pub dir: PathBuf,
    /// The chain's genesis.
    pub genesis: Genesis,
    /// The node's own key.
    pub key: Keypair,
    /// RPC listen address.
    pub rpc: SocketAddr,
    /// Milliseconds between blocks (single-node producer only).
    pub block_ms: u64,
    /// Run as one validator of a BFT set instead of the single producer.
    pub validator: Option<ValidatorSetup>,
}

/// A started chain node: its RPC URL and the tasks to await on shutdown.
pub struct NodeHandle {
    /// Base URL of the RPC.
    pub rpc_url: String,
    /// Block production and RPC server tasks.
    pub tasks: Vec<Task>,
}

/// Open the chain under `setup.dir` and start the RPC. Blocks come from the
/// single-node producer, or, with `setup.validator`, from the BFT engine.
pub async fn start(setup: NodeSetup, shutdown: Shutdown) -> Result<NodeHandle, Failure> {
    let NodeSetup {
        dir,
        genesis,
        key,
        rpc,
        block_ms,
        validator,
    } = setup;
    let config = ChainConfig {
        block_interval: Duration::from_millis(block_ms.max(1)),
        ..ChainConfig::default()
    };
    let node =
        Node::open(&dir.join("chain"), &genesis, key, config).context("opening the chain store")?;
    let listener = bind(rpc, "chain RPC").await?;
    let rpc_url = format!("http://{}", listener.local_addr()?);
    let router = node.router();
    let stop = shutdown.clone();
    let server = tokio::spawn(async move {
        serve(listener, router, rpc_limits(), stop.wait())
            .await
            .context("chain RPC server")
    });
    let blocks = match validator {
        None => {
            tokio::spawn(async move { node.run(shutdown.wait()).await.context("block production") })
        }
        Some(setup) => {
            let seat = setup.seat.clone();
            let thread =
                spawn_validator(node, genesis, setup, shutdown.wait()).map_err(Failure::other)?;
            tokio::task::spawn_blocking(move || {
                thread
                    .join()
                    .map_err(|_| Failure::msg(format!("validator {seat:?} panicked")))?
                    .context("consensus")
            })
        }
    };
    Ok(NodeHandle {
        rpc_url,
        tasks: vec![server, blocks],
    })
}
