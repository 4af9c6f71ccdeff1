//! `agora bench chain`: how long a transaction takes from submission to a
//! committed (on a validator set: finalized) block, one at a time, and how
//! many transactions per second a burst gets through.

use std::time::{Duration, Instant};

use agora_chain_client::ChainClient;
use agora_types::rpc::TxStatus;
use agora_types::{AccountId, Keypair, Transaction, TxKind};
use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::cli::BenchChainArgs;

/// Longest one transaction may take before the benchmark gives up.
const TX_TIMEOUT: Duration = Duration::from_secs(30);
/// Where the benchmark's transfers go.
const SINK: AccountId = AccountId([0xBE; 32]);

fn transfer(chain_id: &str, key: &Keypair, nonce: u64) -> agora_types::SignedTransaction {
    Transaction {
        chain_id: chain_id.into(),
        from: key.account(),
        nonce,
        kind: TxKind::Transfer {
            to: SINK,
            amount: 1,
        },
    }
    .sign(key)
}

/// Wait until `id` is committed; error if it is rejected or takes too long.
async fn committed(chain: &ChainClient, id: &agora_types::Hash32) -> Result<u64> {
    let deadline = Instant::now() + TX_TIMEOUT;
    loop {
        match chain.tx_status(id, Duration::from_secs(5)).await? {
            TxStatus::Committed { height } => return Ok(height),
            TxStatus::Rejected { error } => bail!("transaction {id} rejected: {error}"),
            TxStatus::Pending if Instant::now() < deadline => {}
            TxStatus::Pending => bail!("transaction {id} not committed within {TX_TIMEOUT:?}"),
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Run the benchmark and print a table (or JSON).
pub async fn run(args: BenchChainArgs) -> Result<()> {
    let key = crate::keys::load(&args.key)?;
    let chain = ChainClient::new(&args.rpc);
    let head = chain.head().await.context("reading the chain head")?;
    let start_height = head.height;
    let started = Instant::now();

    // One at a time: submission to commit.
    let mut latencies = Vec::with_capacity(args.txs);
    for _ in 0..args.txs {
        let nonce = chain.account(&key.account()).await?.next_nonce;
        let tx = transfer(&head.chain_id, &key, nonce);
        let t0 = Instant::now();
        let id = chain.submit(&tx).await?;
        committed(&chain, &id).await?;
        latencies.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);

    // A burst: consecutive nonces submitted back to back.
    let first_nonce = chain.account(&key.account()).await?.next_nonce;
    let burst: Vec<_> = (0..args.burst as u64)
        .map(|i| transfer(&head.chain_id, &key, first_nonce + i))
        .collect();
    let t0 = Instant::now();
    let mut last = None;
    for tx in &burst {
        last = Some(chain.submit(tx).await?);
    }
    if let Some(id) = last {
        committed(&chain, &id).await?;
    }
    let burst_s = t0.elapsed().as_secs_f64();
    let tps = burst.len() as f64 / burst_s.max(f64::EPSILON);

    let end = chain.head().await?;
    let blocks = end.height - start_height;
    let block_ms = started.elapsed().as_secs_f64() * 1e3 / (blocks.max(1) as f64);
    let (p50, p95, max) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or(0.0),
    );
    if args.json {
        let v = json!({"txs": latencies.len(), "commit_latency_ms": {"p50": p50, "p95": p95, "max": max},
            "burst_txs": burst.len(), "burst_seconds": burst_s, "burst_tx_per_s": tps,
            "blocks": blocks, "mean_block_interval_ms": block_ms});
        println!("{v}");
        return Ok(());
    }
    println!("| txs | commit p50 (ms) | commit p95 (ms) | max (ms) | burst txs | burst tx/s | mean block interval (ms) |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {} | {p50:.0} | {p95:.0} | {max:.0} | {} | {tps:.0} | {block_ms:.0} |",
        latencies.len(),
        burst.len()
    );
    Ok(())
}
