//! `agora data ...`: the data market from the command line. Owners register
//! datasets and publish algorithms, buyers run jobs and read results, data
//! nodes serve jobs beside their data, validators re-run sampled jobs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use agora_chain_client::ChainClient;
use agora_data::{dataset_id_of_dir, DataAuditor, DataClient, DataNodeSetup, Tamper};
use agora_devnet::keys;
use agora_sandbox::{algorithm_id, example, EXAMPLES};
use agora_tasks::{join, Shutdown};
use agora_types::data::{data_job_id, params_hash};
use agora_types::{
    AccessPolicy, AccountId, AlgorithmEntry, DatasetEntry, Hash32, SignedDataReceipt, TxKind,
};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::send::{parse_account, parse_hash, print, send, ChainOpts};

/// `agora data ...`.
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Register a dataset (a folder, identified by its content id) on chain.
    Register(RegisterArgs),
    /// Register an algorithm module (WASI preview 1) by its BLAKE3 id.
    PublishAlgorithm(PublishArgs),
    /// Open a paid job on chain and run it on a host: prints the output and the signed receipt.
    Run(RunArgs),
    /// Read a job's kept result from its host.
    Result(ResultArgs),
    /// Compare the receipt a host gave you with the one it settled; report
    /// (and slash) the host if they differ.
    Check(CheckArgs),
    /// Run a data node: serve paid jobs over the given dataset folders.
    Serve(ServeArgs),
    /// Run a validator's data-audit loop: re-run the jobs the chain draws for it.
    Audit(AuditArgs),
    /// List the shipped example algorithms and their ids.
    Examples,
}

/// `agora data register`.
#[derive(Args, Debug)]
pub struct RegisterArgs {
    /// Key file of the owner (paid each completed run's price).
    #[arg(long)]
    pub key: PathBuf,
    /// The dataset folder (hashed here; its bytes stay with the hosts).
    #[arg(long)]
    pub dir: PathBuf,
    /// Short name.
    #[arg(long)]
    pub name: String,
    /// Schema and description.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Paid to the owner per completed run.
    #[arg(long, default_value_t = 0)]
    pub price_per_run: u64,
    /// Paid to the host per million fuel.
    #[arg(long, default_value_t = 0)]
    pub price_per_mfuel: u64,
    /// Allow this algorithm (id, or an example's name); repeatable. None: any registered algorithm.
    #[arg(long)]
    pub allow: Vec<String>,
    /// A host (provider account) holding the data; repeatable.
    #[arg(long, required = true)]
    pub host: Vec<String>,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora data publish-algorithm`.
#[derive(Args, Debug)]
pub struct PublishArgs {
    /// Key file of the owner (paid each completed run's price).
    #[arg(long)]
    pub key: PathBuf,
    /// The module file.
    #[arg(long, conflicts_with = "example", required_unless_present = "example")]
    pub wasm: Option<PathBuf>,
    /// A shipped example instead (see `agora data examples`).
    #[arg(long)]
    pub example: Option<String>,
    /// Short name (default: the file's or example's).
    #[arg(long)]
    pub name: Option<String>,
    /// Paid to the owner per completed run.
    #[arg(long, default_value_t = 0)]
    pub price: u64,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora data run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Key file of the buyer.
    #[arg(long)]
    pub key: PathBuf,
    /// Dataset id.
    #[arg(long)]
    pub dataset: String,
    /// The module file to run.
    #[arg(long, conflicts_with = "example", required_unless_present = "example")]
    pub wasm: Option<PathBuf>,
    /// A shipped example instead.
    #[arg(long)]
    pub example: Option<String>,
    /// Parameters the algorithm reads on stdin (key=value ...).
    #[arg(long, default_value = "")]
    pub params: String,
    /// The host to run on (default: the dataset's first host).
    #[arg(long)]
    pub host: Option<String>,
    /// Most fuel the run may burn (the escrow covers it all).
    #[arg(long, default_value_t = 10_000_000_000)]
    pub max_fuel: u64,
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub rpc: String,
}

/// `agora data result`.
#[derive(Args, Debug)]
pub struct ResultArgs {
    /// Key file of the buyer.
    #[arg(long)]
    pub key: PathBuf,
    /// The job id.
    #[arg(long)]
    pub job: String,
    /// The host that ran it.
    #[arg(long)]
    pub host: String,
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub rpc: String,
}

/// `agora data check`.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Key file that signs the report if the host equivocated (any funded key).
    #[arg(long)]
    pub key: PathBuf,
    /// The JSON `agora data run` or `agora data result` printed (or a bare signed receipt).
    #[arg(long)]
    pub receipt: PathBuf,
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub rpc: String,
}

/// A deliberately dishonest data node (development chains only).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DataAdversary {
    /// Alter completed outputs (a re-run exposes it).
    Tamper,
    /// Settle other receipts than it gave buyers (`agora data check` exposes it).
    Equivocate,
}

/// `agora data serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub chain: String,
    /// Where the key (`provider.key`), the datasets and the modules persist.
    #[arg(long, env = "AGORA_DATA_DIR", default_value_os_t = agora_devnet::default_data_dir("data"))]
    pub data_dir: PathBuf,
    /// A dataset folder to serve; repeatable.
    #[arg(long, required = true)]
    pub dataset: Vec<PathBuf>,
    /// HTTP listen address.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// URL registered on chain (default: http://LISTEN).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Collateral to lock when registering as a provider.
    #[arg(long, default_value_t = 1_000_000)]
    pub stake: u64,
    /// Seconds between settlements.
    #[arg(long, default_value_t = 2)]
    pub settle_secs: u64,
    /// Hours a result is kept for its buyer.
    #[arg(long, default_value_t = 168)]
    pub retention_hours: u64,
    /// Wall-clock limit of one run, in seconds.
    #[arg(long, default_value_t = 60)]
    pub deadline_secs: u64,
    /// Behave dishonestly (tests and devnets only).
    #[arg(long)]
    pub adversary: Option<DataAdversary>,
}

/// `agora data audit`.
#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub chain: String,
    /// Where the validator key (`validator.key`) persists.
    #[arg(long, env = "AGORA_DATA_DIR", default_value_os_t = agora_devnet::default_data_dir("validator"))]
    pub data_dir: PathBuf,
    /// Stake to bond if the key has none bonded yet.
    #[arg(long, default_value_t = 1_000_000)]
    pub stake: u64,
    /// Milliseconds between rounds.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// Blocks an unreachable host is retried before its job fails.
    #[arg(long, default_value_t = 1_500)]
    pub grace_blocks: u64,
}

/// Run an `agora data` subcommand.
pub async fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Register(args) => register(args).await,
        DataCommand::PublishAlgorithm(args) => publish(args).await,
        DataCommand::Run(args) => run_job(args).await,
        DataCommand::Result(args) => result(args).await,
        DataCommand::Check(args) => check(args).await,
        DataCommand::Serve(args) => serve(args).await,
        DataCommand::Audit(args) => audit(args).await,
        DataCommand::Examples => {
            for e in &EXAMPLES {
                println!(
                    "{} {}  {}",
                    hex::encode(algorithm_id(e.wasm)),
                    e.name,
                    e.about
                );
            }
            Ok(())
        }
    }
}

/// An algorithm id given as hex or as an example's name.
fn parse_algorithm(text: &str) -> Result<Hash32> {
    if let Some(e) = example(text) {
        return Ok(Hash32(algorithm_id(e.wasm)));
    }
    text.parse()
        .with_context(|| format!("{text:?} is neither an algorithm id nor an example name"))
}

/// The module bytes and a default name, from a file or an example.
fn module(wasm: &Option<PathBuf>, name: &Option<String>) -> Result<(Vec<u8>, String)> {
    match (wasm, name) {
        (Some(path), _) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok((bytes, stem))
        }
        (None, Some(n)) => {
            let e = example(n)
                .with_context(|| format!("no example called {n:?} (see `agora data examples`)"))?;
            Ok((e.wasm.to_vec(), e.name.to_string()))
        }
        (None, None) => bail!("give --wasm FILE or --example NAME"),
    }
}

async fn register(args: RegisterArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let (id, manifest) =
        dataset_id_of_dir(&args.dir).with_context(|| format!("hashing {}", args.dir.display()))?;
    let hosts = args
        .host
        .iter()
        .map(|h| parse_account("--host", h))
        .collect::<Result<Vec<AccountId>>>()?;
    let policy = if args.allow.is_empty() {
        AccessPolicy::AnyRegistered
    } else {
        AccessPolicy::Allow(
            args.allow
                .iter()
                .map(|a| parse_algorithm(a))
                .collect::<Result<_>>()?,
        )
    };
    let dataset = DatasetEntry {
        id,
        owner: key.account(),
        name: args.name,
        description: args.description,
        price_per_run: args.price_per_run,
        price_per_mfuel: args.price_per_mfuel,
        policy,
        hosts,
    };
    let done = send(
        &chain,
        &key,
        TxKind::RegisterDataset { dataset },
        "dataset registration",
    )
    .await?;
    print(
        args.chain.json,
        json!({"tx": done.id, "height": done.height, "dataset": id, "files": manifest.files.len(), "bytes": manifest.total_bytes()}),
        format!(
            "registered dataset {id} ({} files, {} bytes) in block {}",
            manifest.files.len(),
            manifest.total_bytes(),
            done.height
        ),
    )
}

async fn publish(args: PublishArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let (bytes, default_name) = module(&args.wasm, &args.example)?;
    // Refuse what no host could run before paying to register it.
    agora_sandbox::Sandbox::new()?
        .load(&bytes)
        .context("the module cannot run in the sandbox")?;
    let id = Hash32(algorithm_id(&bytes));
    let algorithm = AlgorithmEntry {
        id,
        owner: key.account(),
        name: args.name.unwrap_or(default_name),
        price_per_run: args.price,
    };
    let done = send(
        &chain,
        &key,
        TxKind::RegisterAlgorithm { algorithm },
        "algorithm registration",
    )
    .await?;
    print(
        args.chain.json,
        json!({"tx": done.id, "height": done.height, "algorithm": id, "bytes": bytes.len()}),
        format!(
            "registered algorithm {id} ({} bytes) in block {}",
            bytes.len(),
            done.height
        ),
    )
}

/// The registered endpoint of provider `host`.
async fn endpoint_of(chain: &ChainClient, host: &AccountId) -> Result<String> {
    chain
        .providers()
        .await
        .context("reading the providers")?
        .into_iter()
        .find(|p| p.id == *host)
        .map(|p| p.endpoint)
        .with_context(|| format!("{host} is not a registered provider"))
}

async fn run_job(args: RunArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.rpc);
    let dataset_id = parse_hash("--dataset", "dataset", &args.dataset)?;
    let dataset = chain
        .dataset(&dataset_id)
        .await
        .context("reading the dataset")?;
    let (bytes, _) = module(&args.wasm, &args.example)?;
    let algorithm = Hash32(algorithm_id(&bytes));
    let host = match &args.host {
        Some(h) => parse_account("--host", h)?,
        None => *dataset.hosts.first().context("the dataset names no host")?,
    };
    let url = endpoint_of(&chain, &host).await?;
    let kind = TxKind::OpenDataJob {
        dataset: dataset_id,
        algorithm,
        host,
        params_hash: params_hash(args.params.as_bytes()),
        max_fuel: args.max_fuel,
    };
    let done = send(&chain, &key, kind, "data job").await?;
    let job = data_job_id(&key.account(), done.nonce);
    let got = DataClient::new(&url, host)
        .run(&key, &job, &args.params, Some(&bytes))
        .await
        .with_context(|| format!("running job {job} on {url} (cancel it with CancelDataJob after the timeout to get the escrow back)"))?;
    println!("{}", serde_json::to_string_pretty(&got)?);
    Ok(())
}

async fn result(args: ResultArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.rpc);
    let host = parse_account("--host", &args.host)?;
    let job = parse_hash("--job", "job", &args.job)?;
    let url = endpoint_of(&chain, &host).await?;
    let got = DataClient::new(&url, host).result(&key, &job).await?;
    println!("{}", serde_json::to_string_pretty(&got)?);
    Ok(())
}

/// A signed receipt from `agora data run`'s output or on its own.
fn read_receipt(path: &std::path::Path) -> Result<SignedDataReceipt> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let inner = value.get("receipt").cloned().unwrap_or(value);
    let signed: SignedDataReceipt = serde_json::from_value(inner)
        .with_context(|| format!("{} holds no signed data receipt", path.display()))?;
    signed
        .verify()
        .map_err(|_| anyhow::anyhow!("the receipt's host signature does not verify"))?;
    Ok(signed)
}

async fn check(args: CheckArgs) -> Result<()> {
    let given = read_receipt(&args.receipt)?;
    let chain = ChainClient::new(&args.rpc);
    let job = given.receipt.job;
    let settled = match chain.settled_data_receipt(&job).await {
        Ok(s) => s,
        Err(agora_chain_client::ClientError::Rejected { status: 404, .. }) => {
            println!(
                "{}",
                json!({"job": job, "verdict": "not_settled", "detail": "no live batch settles this job yet"})
            );
            return Ok(());
        }
        Err(e) => return Err(e).context("reading the settled receipt"),
    };
    if settled.receipt == given {
        println!(
            "{}",
            json!({"job": job, "verdict": "matches", "batch": settled.batch, "index": settled.index})
        );
        return Ok(());
    }
    let key = keys::load(&args.key)?;
    let kind = TxKind::ReportDataEquivocation {
        first: Box::new(given),
        second: Box::new(settled.receipt.clone()),
    };
    send(&chain, &key, kind, "equivocation report").await?;
    println!(
        "{}",
        json!({"job": job, "verdict": "equivocation_reported", "host": settled.receipt.host, "batch": settled.batch})
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let key = keys::load_or_create(&args.data_dir.join("provider.key"))?;
    let account = key.account();
    let setup = DataNodeSetup {
        chain_url: args.chain,
        key,
        data_dir: args.data_dir,
        datasets: args.dataset.clone(),
        listen: args.listen,
        public_url: args.public_url,
        stake: args.stake,
        settle_every: Duration::from_secs(args.settle_secs.max(1)),
        retention: Duration::from_secs(args.retention_hours * 3_600),
        deadline: Duration::from_secs(args.deadline_secs),
        tamper: match args.adversary {
            Some(DataAdversary::Tamper) => Tamper::Output,
            Some(DataAdversary::Equivocate) => Tamper::Settlement,
            None => Tamper::None,
        },
    };
    let started = agora_data::start(setup, shutdown).await?;
    for (dir, id) in args.dataset.iter().zip(&started.datasets) {
        println!("dataset: {id} ({})", dir.display());
    }
    println!("host account: {account}");
    println!("data node: {}", started.url);
    println!("agora data node ready");
    Ok(join(started.tasks).await?)
}

async fn audit(args: AuditArgs) -> Result<()> {
    let shutdown = Shutdown::on_signals();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let key = keys::load_or_create(&args.data_dir.join("validator.key"))?;
    let chain = ChainClient::new(&args.chain);
    chain
        .ensure_bonded(&key, args.stake, Duration::from_secs(60))
        .await
        .with_context(|| format!("bonding {} for validator {}", args.stake, key.account()))?;
    let mut auditor = DataAuditor::new(
        chain,
        key.clone(),
        args.data_dir.join("data-audit"),
        args.grace_blocks,
    )?;
    println!("validator account: {}", key.account());
    println!("agora data auditor ready");
    loop {
        if let Err(e) = auditor.step().await {
            tracing::warn!("data audit round: {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(args.poll_ms)) => {}
            _ = shutdown.clone().wait() => break,
        }
    }
    let s = auditor.stats();
    println!(
        "data audits: {} assigned, {} passed, {} failed, {} votes",
        s.assigned, s.passed, s.failed, s.votes
    );
    Ok(())
}
