//! `agora bench chain`: finality latency of a transfer on an idle chain (one
//! at a time), then a steady load run: many funded senders offer a fixed rate
//! of signed transfers across the validators' RPCs while an observer reads
//! every finalized block, giving finalized transfers per second and the
//! latency from submission to the finalized block (p50, p99).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora_chain_client::ChainClient;
use agora_tasks::{fail, Context};
use agora_types::rpc::{BatchItem, TxStatus};
use agora_types::{AccountId, Hash32, Keypair, SignedTransaction, Transaction, TxKind};
use serde_json::json;

use crate::{ChainArgs, Result};

/// Longest one transaction may take before the benchmark gives up.
const TX_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the observer keeps reading blocks after the last submission.
const DRAIN: Duration = Duration::from_secs(20);
/// How often the observer polls the head.
const POLL: Duration = Duration::from_millis(10);
/// How often the load generator releases the transfers that have come due.
const TICK: Duration = Duration::from_millis(20);
/// Most transfers per `POST /txs` request.
const MAX_BATCH: usize = 1_000;
/// Where the benchmark's transfers go.
const SINK: AccountId = AccountId([0xBE; 32]);

fn transfer(
    chain_id: &str,
    key: &Keypair,
    nonce: u64,
    to: AccountId,
    amount: u64,
) -> SignedTransaction {
    Transaction {
        chain_id: chain_id.into(),
        from: key.account(),
        nonce,
        kind: TxKind::Transfer { to, amount },
    }
    .sign(key)
}

/// Wait until `id` is committed; error if it is rejected or takes too long.
async fn committed(chain: &ChainClient, id: &Hash32) -> Result<u64> {
    let deadline = Instant::now() + TX_TIMEOUT;
    loop {
        match chain.tx_status(id, Duration::from_secs(5)).await? {
            TxStatus::Committed { height } => return Ok(height),
            TxStatus::Rejected { code, error } => {
                fail!("transaction {id} rejected ({code}): {error}")
            }
            TxStatus::Pending if Instant::now() < deadline => {}
            TxStatus::Pending => fail!("transaction {id} not committed within {TX_TIMEOUT:?}"),
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

/// Submission to commit of single transfers on an otherwise idle chain, in ms, sorted.
async fn idle_latency(
    chain: &ChainClient,
    chain_id: &str,
    key: &Keypair,
    n: usize,
) -> Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let nonce = chain.account(&key.account()).await?.next_nonce;
        let tx = transfer(chain_id, key, nonce, SINK, 1);
        let t0 = Instant::now();
        let id = chain.submit(&tx).await?;
        committed(chain, &id).await?;
        latencies.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// What the steady run measured.
struct LoadFigures {
    offered: usize,
    accepted: usize,
    finalized: usize,
    submit_errors: usize,
    first_error: Option<String>,
    /// Finalized transfers over the time from the first submission to the last finalization.
    tx_per_s: f64,
    /// Submission to observed finalization, ms, sorted.
    latencies: Vec<f64>,
    blocks: u64,
    max_txs_per_block: usize,
    mean_block_interval_ms: f64,
}

/// Fund `senders` fresh accounts from `key`, each enough for `per_sender` transfers.
async fn fund(
    chain: &ChainClient,
    chain_id: &str,
    key: &Keypair,
    senders: &[Keypair],
    per_sender: u64,
) -> Result<()> {
    let mut nonce = chain.account(&key.account()).await?.next_nonce;
    let mut last = None;
    for s in senders {
        let tx = transfer(chain_id, key, nonce, s.account(), per_sender + 1);
        last = Some(chain.submit(&tx).await.context("funding a sender")?);
        nonce += 1;
    }
    if let Some(id) = last {
        committed(chain, &id).await?;
    }
    Ok(())
}

/// The steady run: `rate` transfers per second for `seconds` over `senders` accounts.
async fn steady_load(
    chains: &[ChainClient],
    chain_id: &str,
    key: &Keypair,
    args: &ChainArgs,
) -> Result<LoadFigures> {
    let senders_n = args.senders.max(1);
    let total = (args.rate * args.seconds) as usize;
    let per_sender = total.div_ceil(senders_n);
    // Fresh accounts every run, so nonces start at 0.
    let senders: Vec<Keypair> = (0..senders_n).map(|_| Keypair::generate()).collect();
    fund(&chains[0], chain_id, key, &senders, per_sender as u64).await?;

    // Sign everything up front so signing does not pace the run.
    let chain_id_owned = chain_id.to_string();
    let signed: Vec<Vec<SignedTransaction>> = tokio::task::spawn_blocking(move || {
        senders
            .iter()
            .map(|k| {
                (0..per_sender as u64)
                    .map(|n| transfer(&chain_id_owned, k, n, SINK, 1))
                    .collect()
            })
            .collect()
    })
    .await?;

    let submitted: Arc<Mutex<HashMap<Hash32, Instant>>> =
        Arc::new(Mutex::new(HashMap::with_capacity(total)));
    let errors = Arc::new(Mutex::new((0usize, None::<String>)));
    let start_height = chains[0].head().await?.height;

    // One submitting task per RPC, sending its batches in order; sender `i`
    // always goes through RPC `i % n`, so its nonces arrive in order.
    let mut queues = Vec::new();
    let mut tasks = Vec::new();
    for chain in chains {
        let (tx, mut rx) =
            tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<SignedTransaction>)>();
        queues.push(tx);
        let chain = chain.clone();
        let submitted = submitted.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            while let Some((due, batch)) = rx.recv().await {
                // Recorded before the call: the block may be finalized before it returns.
                {
                    let mut sub = submitted.lock().unwrap_or_else(|p| p.into_inner());
                    for t in &batch {
                        sub.insert(t.id(), due);
                    }
                }
                let refused: Vec<(Hash32, String)> = match chain.submit_batch(&batch).await {
                    Ok(items) => batch
                        .iter()
                        .zip(items)
                        .filter_map(|(t, item)| match item {
                            BatchItem::Accepted { .. } => None,
                            BatchItem::Refused { error } => Some((t.id(), error.message)),
                        })
                        .collect(),
                    Err(e) => batch.iter().map(|t| (t.id(), e.to_string())).collect(),
                };
                if !refused.is_empty() {
                    let mut sub = submitted.lock().unwrap_or_else(|p| p.into_inner());
                    let mut errs = errors.lock().unwrap_or_else(|p| p.into_inner());
                    for (id, why) in refused {
                        sub.remove(&id);
                        errs.0 += 1;
                        errs.1.get_or_insert(why);
                    }
                }
            }
        }));
    }

    // The pacer: every tick, release what the offered rate makes due, round robin over senders.
    let rate = args.rate.max(1) as f64;
    let t0 = Instant::now();
    let pacer = tokio::spawn(async move {
        let mut cursors: Vec<std::vec::IntoIter<SignedTransaction>> =
            signed.into_iter().map(Vec::into_iter).collect();
        let mut released = 0usize;
        let mut next_sender = 0usize;
        let mut tick = tokio::time::interval(TICK);
        while released < total {
            tick.tick().await;
            let now = Instant::now();
            let due = ((now.duration_since(t0).as_secs_f64() * rate) as usize).min(total);
            let mut batches: Vec<Vec<SignedTransaction>> = vec![Vec::new(); queues.len()];
            while released < due {
                if let Some(tx) = cursors[next_sender].next() {
                    batches[next_sender % queues.len()].push(tx);
                    released += 1;
                }
                next_sender = (next_sender + 1) % cursors.len();
            }
            for (queue, batch) in queues.iter().zip(batches) {
                for chunk in batch.chunks(MAX_BATCH) {
                    let _ = queue.send((now, chunk.to_vec()));
                }
            }
        }
    });
    tasks.push(pacer);

    // Observe finalized blocks until every accepted transfer is in one, or the drain ends.
    let observer = &chains[0];
    let mut height = start_height;
    let mut latencies = Vec::with_capacity(total);
    let mut block_times = Vec::new();
    let mut max_txs_per_block = 0;
    let mut last_commit = t0;
    let mut senders_done_at: Option<Instant> = None;
    loop {
        let head = observer.head().await?.height;
        while height < head {
            height += 1;
            let block = observer.block(height).await?;
            let seen = Instant::now();
            block_times.push(seen);
            max_txs_per_block = max_txs_per_block.max(block.txs.len());
            let mut sub = submitted.lock().unwrap_or_else(|p| p.into_inner());
            for tx in &block.txs {
                if let Some(sent) = sub.remove(&tx.id()) {
                    latencies.push(seen.duration_since(sent).as_secs_f64() * 1e3);
                    last_commit = seen;
                }
            }
        }
        let all_sent = tasks.iter().all(|t| t.is_finished());
        if all_sent {
            let done = *senders_done_at.get_or_insert_with(Instant::now);
            let pending = submitted.lock().unwrap_or_else(|p| p.into_inner()).len();
            if pending == 0 || done.elapsed() > DRAIN {
                break;
            }
        }
        tokio::time::sleep(POLL).await;
    }
    for t in tasks {
        t.await?;
    }
    let (submit_errors, first_error) = errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let unfinalized = submitted.lock().unwrap_or_else(|p| p.into_inner()).len();
    latencies.sort_by(f64::total_cmp);
    let finalized = latencies.len();
    let span = last_commit.duration_since(t0).as_secs_f64();
    let intervals: Vec<f64> = block_times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64() * 1e3)
        .collect();
    Ok(LoadFigures {
        offered: total,
        accepted: finalized + unfinalized,
        finalized,
        submit_errors,
        first_error,
        tx_per_s: finalized as f64 / span.max(f64::EPSILON),
        latencies,
        blocks: height - start_height,
        max_txs_per_block,
        mean_block_interval_ms: intervals.iter().sum::<f64>() / intervals.len().max(1) as f64,
    })
}

/// Run the benchmark and print a table (or JSON).
pub async fn run(args: ChainArgs) -> Result<()> {
    if args.rpc.is_empty() {
        fail!("--rpc needs at least one URL");
    }
    let key = agora_devnet::keys::load(&args.key)?;
    let chains: Vec<ChainClient> = args.rpc.iter().map(|u| ChainClient::new(u)).collect();
    let head = chains[0].head().await.context("reading the chain head")?;
    let idle = idle_latency(&chains[0], &head.chain_id, &key, args.txs).await?;
    let load = if args.rate > 0 && args.seconds > 0 {
        Some(steady_load(&chains, &head.chain_id, &key, &args).await?)
    } else {
        None
    };

    let (p50, p99) = (percentile(&idle, 0.5), percentile(&idle, 0.99));
    if args.json {
        let load_json = load.as_ref().map(|l| {
            json!({"offered_tx_per_s": args.rate, "seconds": args.seconds, "senders": args.senders,
                "offered": l.offered, "accepted": l.accepted, "finalized": l.finalized,
                "submit_errors": l.submit_errors, "first_error": l.first_error,
                "finalized_tx_per_s": l.tx_per_s,
                "finality_ms": {"p50": percentile(&l.latencies, 0.5), "p99": percentile(&l.latencies, 0.99)},
                "blocks": l.blocks, "max_txs_per_block": l.max_txs_per_block,
                "mean_block_interval_ms": l.mean_block_interval_ms})
        });
        let v = json!({"idle": {"txs": idle.len(), "finality_ms": {"p50": p50, "p99": p99}}, "load": load_json});
        println!("{v}");
        return Ok(());
    }
    println!("| run | txs | finalized tx/s | finality p50 (ms) | finality p99 (ms) | blocks | max txs/block | mean block interval (ms) |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| idle, one at a time | {} | | {p50:.0} | {p99:.0} | | | |",
        idle.len()
    );
    if let Some(l) = load {
        println!(
            "| steady {} tx/s offered, {} senders, {} RPCs | {} | {:.0} | {:.0} | {:.0} | {} | {} | {:.0} |",
            args.rate,
            args.senders,
            chains.len(),
            l.finalized,
            l.tx_per_s,
            percentile(&l.latencies, 0.5),
            percentile(&l.latencies, 0.99),
            l.blocks,
            l.max_txs_per_block,
            l.mean_block_interval_ms
        );
        if l.finalized < l.offered {
            println!(
                "\n{} of {} offered transfers finalized; {} accepted but not finalized within {DRAIN:?}; {} submissions failed{}",
                l.finalized,
                l.offered,
                l.accepted - l.finalized,
                l.submit_errors,
                l.first_error.map(|e| format!(" (first: {e})")).unwrap_or_default()
            );
        }
    }
    Ok(())
}
