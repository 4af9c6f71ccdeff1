//! `agora bench soak`: the incentive equilibrium on a whole network. One
//! process runs a chain, an honest provider and one cheating provider per
//! adversary mode side by side, the audit daemon (every job drawn for audit)
//! and the paying gateway; clients send jobs pinned to each provider, and
//! once the audits settle the chain's own records are read back: jobs
//! audited and failed per provider, who was slashed, and what each one
//! earned (channel payments and emission) against what it lost (collateral).
//!
//! The equilibrium holds when no honest provider is slashed and every
//! cheater loses more than it earns.

use std::path::Path;
use std::time::{Duration, Instant};

use agora_chain_client::ChainClient;
use agora_gateway::{GatewaySetup, PayerSetup};
use agora_provider::{BatchConfig, ProviderSetup};
use agora_tasks::{fail, Context, Failure, Shutdown};
use agora_types::{AccountId, Keypair};
use agora_validator::AuditorsSetup;
use futures::StreamExt;
use serde_json::json;

use crate::args::SoakArgs;
use crate::Result;

/// How often the chain is asked whether the audits have settled.
const POLL: Duration = Duration::from_secs(2);
/// Collateral each provider locks.
const STAKE: u64 = agora_devnet::devnet::DEVNET_STAKE;

/// One provider of the soak and what the chain recorded about it.
#[derive(Debug, serde::Serialize)]
struct Outcome {
    /// `honest` or the adversary mode.
    mode: String,
    /// Its account.
    account: AccountId,
    /// Jobs sent to it.
    sent: usize,
    /// Jobs it answered (a slashed provider is deregistered and answers no more).
    served: usize,
    /// Passing verdicts it received.
    audits_passed: u64,
    /// Failures a committee confirmed.
    audits_failed: u64,
    /// Whether its collateral was slashed.
    slashed: bool,
    /// Channel payments and emission it was paid.
    earned: u128,
    /// Collateral it lost.
    lost: u64,
    /// Transaction fees it paid (registration, receipt batches, settlements).
    fees: u64,
}

impl Outcome {
    /// What it earned less what it paid and lost.
    fn net(&self) -> i128 {
        i128::try_from(self.earned).unwrap_or(i128::MAX)
            - i128::from(self.fees)
            - i128::from(self.lost)
    }
}

/// Run the soak and print its table (or JSON).
pub async fn run(args: SoakArgs) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (trigger, shutdown) = Shutdown::manual();
    let outcome = soak(&args, dir.path(), shutdown).await;
    trigger.trigger();
    let (outcomes, elapsed) = outcome?;
    print(&args, &outcomes, elapsed)?;
    let honest_slashed = outcomes
        .iter()
        .filter(|o| o.mode == "honest" && (o.slashed || o.audits_failed > 0))
        .count();
    if honest_slashed > 0 {
        fail!("an honest provider was slashed or had a failure confirmed");
    }
    Ok(())
}

/// Start the network, send the jobs, wait for the audits, read the outcomes.
async fn soak(args: &SoakArgs, dir: &Path, shutdown: Shutdown) -> Result<(Vec<Outcome>, Duration)> {
    let started = Instant::now();
    let model_path =
        tokio::task::spawn_blocking(|| agora_models::ensure_default_model(&mut std::io::stderr()))
            .await??;
    let faucet = Keypair::generate();
    let modes: Vec<String> = std::iter::once("honest".to_string())
        .chain(args.modes.iter().cloned())
        .collect();
    let provider_keys: Vec<Keypair> = modes.iter().map(|_| Keypair::generate()).collect();
    let auditor_keys: Vec<Keypair> = (0..args.auditors).map(|_| Keypair::generate()).collect();
    let mut funded = vec![faucet.account()];
    funded.extend(provider_keys.iter().map(Keypair::account));
    funded.extend(auditor_keys.iter().map(Keypair::account));
    let mut params = agora_ledger::Params::default();
    params.audit.audit_rate_ppm = 1_000_000;
    let node = crate::node::start_node(dir, &funded, params, shutdown.clone()).await?;
    let batches = BatchConfig {
        max_age: Duration::from_secs(args.batch_secs),
        settle_every: Duration::from_secs(args.batch_secs),
        ..BatchConfig::default()
    };
    let mut model_name = String::new();
    for (i, (mode, key)) in modes.iter().zip(&provider_keys).enumerate() {
        let adversary = match mode.as_str() {
            "honest" => None,
            m => Some(m.parse().context("--modes")?),
        };
        let setup = ProviderSetup {
            data_dir: dir.join(format!("provider-{i}")),
            key: key.clone(),
            model_path: model_path.clone(),
            model_entry: Some(agora_models::default_model_entry()),
            model_name: None,
            chain_url: node.rpc_url.clone(),
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            public_url: None,
            price: agora_devnet::devnet::DEVNET_PRICE,
            stake: STAKE,
            threads: args.threads,
            batches,
            adversary,
            upstream: None,
        };
        let provider = agora_provider::start(setup, shutdown.clone())
            .await
            .with_context(|| format!("starting the {mode} provider"))?;
        model_name = provider.model.name;
        eprintln!("soak: {mode} provider {}", key.account());
    }
    agora_validator::start(
        AuditorsSetup {
            chain_url: node.rpc_url.clone(),
            keys: auditor_keys,
            model_path,
            extra_models: Vec::new(),
            thresholds: None,
            stake: agora_devnet::devnet::AUDITOR_STAKE,
            threads: args.threads,
            poll: Duration::from_millis(300),
            fetch_grace_blocks: 50,
        },
        shutdown.clone(),
    )
    .await?;
    let client_keys =
        agora_gateway::client_keys(&dir.join("api-keys"), true).map_err(Failure::other)?;
    let client_key = client_keys[0].clone();
    let gateway = agora_gateway::start(
        GatewaySetup {
            chain_url: node.rpc_url.clone(),
            listen: "127.0.0.1:0".parse().expect("a socket address"),
            payer: Some(PayerSetup {
                data_dir: dir.join("gateway"),
                deposit: 1_000_000,
                import: Some(faucet),
                import_keys: client_keys,
            }),
        },
        shutdown.clone(),
    )
    .await?;
    gateway.wait_for_model(&model_name).await?;

    let jobs = job_plan(args, modes.len());
    eprintln!("soak: sending {} jobs", jobs.len());
    let served = send_jobs(
        args,
        &gateway.url,
        &client_key,
        &model_name,
        &provider_keys,
        &jobs,
    )
    .await?;
    let chain = ChainClient::new(&node.rpc_url);
    let tx_fee = chain.params().await?.tx_fee;
    let mut outcomes: Vec<Outcome> = modes
        .iter()
        .zip(&provider_keys)
        .enumerate()
        .map(|(i, (mode, key))| Outcome {
            mode: mode.clone(),
            account: key.account(),
            sent: jobs.iter().filter(|&&p| p == i).count(),
            served: served[i],
            audits_passed: 0,
            audits_failed: 0,
            slashed: false,
            earned: 0,
            lost: 0,
            fees: 0,
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(args.wait_secs);
    loop {
        read_outcomes(&chain, tx_fee, &mut outcomes).await?;
        let settled = outcomes
            .iter()
            .all(|o| o.slashed || o.audits_passed + o.audits_failed >= o.served as u64);
        if settled || Instant::now() > deadline {
            if !settled {
                eprintln!("soak: audits still pending after --wait-secs; reporting what settled");
            }
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    // One more settlement round, so channel payments for the last jobs land.
    tokio::time::sleep(Duration::from_secs(args.batch_secs + 2)).await;
    read_outcomes(&chain, tx_fee, &mut outcomes).await?;
    Ok((outcomes, started.elapsed()))
}

/// Which provider each job goes to: every cheater's jobs first (interleaved),
/// then the honest provider's (index 0).
fn job_plan(args: &SoakArgs, providers: usize) -> Vec<usize> {
    let cheats = (0..args.cheat_jobs).flat_map(|_| 1..providers);
    cheats
        .chain(std::iter::repeat_n(0, args.honest_jobs))
        .collect()
}

/// Send every job through the gateway, pinned to its provider, `concurrency`
/// at a time; returns how many each provider answered.
async fn send_jobs(
    args: &SoakArgs,
    gateway: &str,
    client_key: &str,
    model: &str,
    providers: &[Keypair],
    jobs: &[usize],
) -> Result<Vec<usize>> {
    let http = reqwest::Client::new();
    let url = format!("{gateway}/v1/chat/completions");
    let answered = futures::stream::iter(jobs.iter().enumerate())
        .map(|(n, &p)| {
            let body = json!({
                "model": model,
                // A system message, so `drop-system` has something to drop.
                "messages": [
                    {"role": "system", "content": "You are a terse assistant."},
                    {"role": "user", "content": format!("Write one sentence about the number {n}.")},
                ],
                "max_tokens": args.max_tokens,
                "temperature": 0.7,
                "seed": n,
                "provider": {"order": [providers[p].account().to_hex()], "allow_fallbacks": false},
            });
            let request = http.post(&url).bearer_auth(client_key).json(&body).send();
            async move { (p, request.await.map(|r| r.status().is_success())) }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut served = vec![0; providers.len()];
    for (p, outcome) in answered {
        if outcome? {
            served[p] += 1;
        }
    }
    Ok(served)
}

/// Refresh each provider's audit record, earnings and fees (`tx_fee` per
/// applied transaction) from the chain.
async fn read_outcomes(chain: &ChainClient, tx_fee: u64, outcomes: &mut [Outcome]) -> Result<()> {
    for o in outcomes {
        let audits = chain.audits(&o.account).await?;
        o.audits_passed = audits.audits.audits_passed;
        o.audits_failed = audits.audits.audits_failed;
        o.slashed = audits.audits.slashed;
        o.lost = audits.audits.slashed_amount;
        let account = chain.account(&o.account).await?;
        o.earned = account.earned.channels + account.earned.emissions;
        // Every applied transaction advanced the nonce and paid the fee.
        o.fees = account.nonce.saturating_mul(tx_fee);
    }
    Ok(())
}

/// The table (or JSON) and the totals the equilibrium is judged on.
fn print(args: &SoakArgs, outcomes: &[Outcome], elapsed: Duration) -> Result<()> {
    if args.json {
        let v = json!({"elapsed_s": elapsed.as_secs_f64(), "providers": outcomes});
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>6} {:>6} {:>8} {:>7} {:>7} {:>13} {:>8} {:>10} {:>14}",
        "provider",
        "sent",
        "served",
        "passed",
        "failed",
        "slashed",
        "earned",
        "fees",
        "lost",
        "net"
    );
    for o in outcomes {
        println!(
            "{:<16} {:>6} {:>6} {:>8} {:>7} {:>7} {:>13} {:>8} {:>10} {:>14}",
            o.mode,
            o.sent,
            o.served,
            o.audits_passed,
            o.audits_failed,
            if o.slashed { "yes" } else { "no" },
            o.earned,
            o.fees,
            o.lost,
            o.net()
        );
    }
    let honest = outcomes.iter().filter(|o| o.mode == "honest");
    let cheaters: Vec<_> = outcomes.iter().filter(|o| o.mode != "honest").collect();
    println!(
        "honest providers slashed: {}; audited honest jobs: {}; cheaters caught: {} of {}; cheaters with a profit: {}",
        honest.clone().filter(|o| o.slashed).count(),
        honest.map(|o| o.audits_passed + o.audits_failed).sum::<u64>(),
        cheaters.iter().filter(|o| o.slashed).count(),
        cheaters.len(),
        cheaters.iter().filter(|o| o.net() > 0).count(),
    );
    println!("elapsed: {:.0} s", elapsed.as_secs_f64());
    Ok(())
}
