//! The chain the network benchmarks run on: one single-producer node under a
//! scratch directory, with a fresh genesis funding the given accounts.

use std::path::Path;

use agora_chain::{NodeHandle, NodeSetup};
use agora_tasks::{Failure, Shutdown};
use agora_types::{AccountId, Keypair};

/// Start a node in `dir/node` (RPC on a free loopback port, 200 ms blocks)
/// from a genesis in `dir/genesis.toml` funding `funded` under `params`.
pub(crate) async fn start_node(
    dir: &Path,
    funded: &[AccountId],
    params: agora_ledger::Params,
    shutdown: Shutdown,
) -> Result<NodeHandle, Failure> {
    let genesis =
        agora_devnet::genesis::load_or_create_with(&dir.join("genesis.toml"), funded, params)?;
    agora_chain::start(
        NodeSetup {
            dir: dir.join("node"),
            key: Keypair::generate(),
            genesis,
            rpc: "127.0.0.1:0".parse().expect("a socket address"),
            block_ms: 200,
            validator: None,
        },
        shutdown,
    )
    .await
}
