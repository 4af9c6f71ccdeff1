//! The devnet's data market: a data node serving a generated demo dataset
//! (three noisy clusters as CSV), the three example algorithms registered by
//! the faucet, and the dataset registered with the data node as its host,
//! so `agora data run --example NAME` works against a fresh devnet.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use agora_chain_client::{ChainClient, ClientError};
use agora_data::{DataNodeHandle, DataNodeSetup, Tamper};
use agora_sandbox::{algorithm_id, EXAMPLES};
use agora_tasks::{Context, Failure, Shutdown};
use agora_types::{AccessPolicy, AlgorithmEntry, DatasetEntry, Hash32, Keypair, TxKind};

/// Rows of the demo dataset.
const DEMO_ROWS: u32 = 3_000;
/// The demo dataset's price per completed run, and the examples'.
const DEMO_RUN_PRICE: u64 = 1_000;
/// The demo dataset's price per million fuel.
const DEMO_PER_MFUEL: u64 = 1;
/// How long each registration waits to be committed.
const TX_TIMEOUT: Duration = Duration::from_secs(30);

/// Write the demo dataset's CSV into `dir` unless it is there.
fn write_demo(dir: &Path) -> Result<(), Failure> {
    let path = dir.join("data.csv");
    if path.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut csv = String::from("x,y,cluster\n");
    for i in 0..DEMO_ROWS {
        let (cx, cy) = [(0.0, 0.0), (40.0, 40.0), (80.0, 0.0)][(i % 3) as usize];
        let jx = f64::from((i * 7_919) % 1_000) / 100.0 - 5.0;
        let jy = f64::from((i * 104_729) % 1_000) / 100.0 - 5.0;
        csv.push_str(&format!("{:.2},{:.2},c{}\n", cx + jx, cy + jy, i % 3));
    }
    std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))
}

/// Whether a registration failed only because the entry exists (a restart).
fn exists(e: &ClientError) -> bool {
    let code = match e {
        ClientError::TxRejected { code, .. } | ClientError::Rejected { code, .. } => code,
        _ => return false,
    };
    code == "algorithm_exists" || code == "dataset_exists"
}

/// Start the data node on `listen` under `dir` (key `dir/provider.key`,
/// funded by the caller), register the examples and the demo dataset.
pub async fn start(
    chain_url: &str,
    dir: &Path,
    key: Keypair,
    faucet: &Keypair,
    listen: SocketAddr,
    stake: u64,
    shutdown: Shutdown,
) -> Result<(DataNodeHandle, Hash32), Failure> {
    let demo = dir.join("demo");
    write_demo(&demo)?;
    let host = key.account();
    let setup = DataNodeSetup {
        chain_url: chain_url.to_string(),
        key,
        data_dir: dir.to_path_buf(),
        datasets: vec![demo],
        listen,
        public_url: None,
        stake,
        settle_every: Duration::from_secs(2),
        retention: Duration::from_secs(7 * 24 * 3_600),
        deadline: Duration::from_secs(60),
        tamper: Tamper::None,
    };
    let node = agora_data::start(setup, shutdown)
        .await
        .map_err(|e| Failure::msg(format!("starting the data node: {e}")))?;
    let dataset = node.datasets[0];
    let chain = ChainClient::new(chain_url);
    let ids: Vec<Hash32> = EXAMPLES
        .iter()
        .map(|e| Hash32(algorithm_id(e.wasm)))
        .collect();
    for (e, id) in EXAMPLES.iter().zip(&ids) {
        let algorithm = AlgorithmEntry {
            id: *id,
            owner: faucet.account(),
            name: e.name.into(),
            price_per_run: DEMO_RUN_PRICE,
        };
        match chain
            .send_and_wait(faucet, TxKind::RegisterAlgorithm { algorithm }, TX_TIMEOUT)
            .await
        {
            Err(e) if !exists(&e) => return Err(Failure::other(e)),
            _ => {}
        }
    }
    let entry = DatasetEntry {
        id: dataset,
        owner: faucet.account(),
        name: "demo-clusters".into(),
        description: "x,y,cluster: 3,000 points in three noisy clusters".into(),
        price_per_run: DEMO_RUN_PRICE,
        price_per_mfuel: DEMO_PER_MFUEL,
        policy: AccessPolicy::Allow(ids),
        hosts: vec![host],
    };
    match chain
        .send_and_wait(
            faucet,
            TxKind::RegisterDataset { dataset: entry },
            TX_TIMEOUT,
        )
        .await
    {
        Err(e) if !exists(&e) => return Err(Failure::other(e)),
        _ => {}
    }
    Ok((node, dataset))
}
