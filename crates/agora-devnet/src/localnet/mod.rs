//! `agora localnet`: a local multi-process network. N validator processes
//! (`agora node --validators ...`) on loopback, each with its own data
//! directory and ports, plus the devnet's provider and gateway in this process.
//! Each validator has its own identity key file (`DIR/validator-i/consensus.key`);
//! the validators generate the threshold key among themselves with the
//! genesis DKG before finalizing anything, so no process ever knows the group
//! secret. `DIR/nodes.json` lists every validator's pid, RPC URL and the exact
//! command that restarts it; `DIR/identity.hex` is the validator set's public
//! key that light clients check finality certificates against (written once
//! the DKG is done), and `DIR/genesis-epoch.hex` the epoch 0 joiners load.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use agora_chain_client::ChainClient;
use agora_gateway::GatewaySetup;
use agora_provider::ProviderSetup;
use agora_tasks::{fail, join, Context, Failure, Shutdown};

use crate::devnet::{DEVNET_PRICE, DEVNET_STAKE};
use crate::{default_data_dir, genesis, keys};

mod processes;

use processes::{spawn_logged, stop, write_nodes_json};

/// How long the validators get to finalize their first block.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// One validator process.
struct Validator {
    rpc: String,
    p2p: String,
    consensus_key: String,
    cmd: Vec<String>,
    log: PathBuf,
    child: Child,
}

/// What `agora localnet` runs (its flags).
#[derive(clap::Args, Clone, Debug)]
pub struct LocalnetConfig {
    /// Number of validator processes.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Directory of the whole network (a sub-directory per validator, nodes.json).
    #[arg(long, default_value_os_t = default_data_dir("localnet"))]
    pub dir: PathBuf,
    /// First port: validator i listens on BASE+2i (RPC) and BASE+2i+1 (p2p).
    #[arg(long, default_value_t = 26700)]
    pub base_port: u16,
    /// Gateway listen address (the OpenAI base URL is http://ADDR/v1).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Provider listen address.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub provider_http: SocketAddr,
    /// GGUF model to serve (default: SmolLM2-135M-Instruct, fetched if missing).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Inference threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Run the validators only (no provider, no gateway).
    #[arg(long)]
    pub no_serve: bool,
    /// Blocks per consensus epoch in a new genesis (committee election and
    /// key resharing; default 3,600).
    #[arg(long)]
    pub epoch_blocks: Option<u64>,
}

/// Run the local network until `shutdown`; validators are stopped on exit.
pub async fn run(args: LocalnetConfig, shutdown: Shutdown) -> Result<(), Failure> {
    if args.validators == 0 {
        fail!("--validators must be at least 1");
    }
    let dir = std::path::absolute(&args.dir).context("resolving --dir")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let faucet = keys::load_or_create(&dir.join("faucet.key"))?;
    let provider_key = keys::load_or_create(&dir.join("provider").join("provider.key"))?;
    let genesis_path = dir.join("genesis.toml");
    let mut params = agora_ledger::Params::default();
    if let Some(blocks) = args.epoch_blocks {
        params.committee.epoch_blocks = blocks;
    }
    genesis::load_or_create_with(
        &genesis_path,
        &[faucet.account(), provider_key.account()],
        params,
    )?;

    let mut validators = start_validators(&args, &dir)?;
    write_nodes_json(&dir, &validators)?;
    println!("nodes: {}", dir.join("nodes.json").display());
    let outcome = serve(&args, &dir, &mut validators, shutdown).await;
    for v in &mut validators {
        stop(&mut v.child);
    }
    outcome
}

/// Wait for the validators, start provider and gateway, and run until shutdown.
async fn serve(
    args: &LocalnetConfig,
    dir: &Path,
    validators: &mut [Validator],
    shutdown: Shutdown,
) -> Result<(), Failure> {
    for (i, v) in validators.iter_mut().enumerate() {
        wait_for_first_block(i, v).await?;
        println!("validator {i}: {} (log {})", v.rpc, v.log.display());
    }
    publish_genesis_epoch(dir, validators)?;
    let chain_url = validators[0].rpc.clone();
    let mut tasks = Vec::new();
    if !args.no_serve {
        let (model_path, model_entry) = match &args.model {
            Some(path) => (path.clone(), None),
            None => {
                let path = tokio::task::spawn_blocking(|| {
                    agora_models::ensure_default_model(&mut std::io::stderr())
                })
                .await?
                .map_err(Failure::other)?;
                (path, Some(agora_models::default_model_entry()))
            }
        };
        let setup = ProviderSetup {
            data_dir: dir.join("provider"),
            key: keys::load_or_create(&dir.join("provider").join("provider.key"))?,
            model_path,
            model_entry,
            model_name: None,
            chain_url: chain_url.clone(),
            listen: args.provider_http,
            public_url: None,
            price: DEVNET_PRICE,
            stake: DEVNET_STAKE,
            threads: args.threads,
            batches: Default::default(),
            adversary: None,
            upstream: None,
        };
        let provider = agora_provider::start(setup, shutdown.clone()).await?;
        println!(
            "provider: {} serving {}",
            provider.endpoint, provider.model.name
        );
        let setup = GatewaySetup {
            chain_url: chain_url.clone(),
            listen: args.http,
            payer: None,
        };
        let gateway = agora_gateway::start(setup, shutdown.clone()).await?;
        gateway.wait_for_model(&provider.model.name).await?;
        println!("OpenAI base URL: {}/v1", gateway.url);
        println!("console: {}/", gateway.url);
        tasks.push(provider.task);
        tasks.push(gateway.task);
    }
    println!("faucet key: {}", dir.join("faucet.key").display());
    println!("agora localnet ready");
    if tasks.is_empty() {
        shutdown.wait().await;
        Ok(())
    } else {
        join(tasks).await
    }
}

/// Spawn every validator process, logging to its own directory.
fn start_validators(args: &LocalnetConfig, dir: &Path) -> Result<Vec<Validator>, Failure> {
    let exe = std::env::current_exe().context("locating the agora binary")?;
    let port = |i: usize, k: usize| -> Result<u16, Failure> {
        u16::try_from(usize::from(args.base_port) + 2 * i + k)
            .ok()
            .context("--base-port leaves no room for every validator's ports")
    };
    let loopback = |p: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, p));
    let p2p: Vec<String> = (0..args.validators)
        .map(|i| Ok(loopback(port(i, 1)?).to_string()))
        .collect::<Result<_, Failure>>()?;
    // Every validator's own identity key file; the genesis names their public keys.
    let mut consensus_keys = Vec::with_capacity(args.validators);
    for i in 0..args.validators {
        let path = dir.join(format!("validator-{i}")).join("consensus.key");
        let key = keys::load_or_create(&path)?;
        consensus_keys.push(hex::encode(
            agora_chain::Seat::Genesis {
                key_seed: key.seed(),
            }
            .consensus_key(),
        ));
    }
    let genesis_validators: Vec<String> = consensus_keys
        .iter()
        .zip(&p2p)
        .map(|(key, addr)| format!("{key}@{addr}"))
        .collect();
    let mut out = Vec::with_capacity(args.validators);
    for i in 0..args.validators {
        let data = dir.join(format!("validator-{i}"));
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let rpc = loopback(port(i, 0)?);
        let cmd: Vec<String> = vec![
            exe.display().to_string(),
            "node".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--rpc".into(),
            rpc.to_string(),
            "--genesis".into(),
            dir.join("genesis.toml").display().to_string(),
            "--validators".into(),
            genesis_validators.join(","),
            "--validator-key".into(),
            data.join("consensus.key").display().to_string(),
            // Written once the genesis DKG is done; a validator restarted
            // with its storage wiped follows from it.
            "--genesis-epoch".into(),
            dir.join(agora_chain::GENESIS_EPOCH_FILE)
                .display()
                .to_string(),
        ];
        let log = data.join("node.log");
        let child = spawn_logged(&cmd, &log)?;
        out.push(Validator {
            rpc: format!("http://{rpc}"),
            p2p: p2p[i].clone(),
            consensus_key: consensus_keys[i].clone(),
            cmd,
            log,
            child,
        });
    }
    Ok(out)
}

/// Copy the genesis DKG's outcome (the group key, epoch 0) that every
/// validator recorded into `DIR`, after checking they all agree.
fn publish_genesis_epoch(dir: &Path, validators: &[Validator]) -> Result<(), Failure> {
    for name in [agora_chain::IDENTITY_FILE, agora_chain::GENESIS_EPOCH_FILE] {
        let mut agreed: Option<String> = None;
        for v in validators {
            let Some(data) = v.log.parent() else {
                fail!("validator log {} has no directory", v.log.display());
            };
            let path = data.join("consensus").join(name);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            match &agreed {
                Some(first) if *first != text => {
                    fail!("validators disagree on {name}: see {}", path.display())
                }
                _ => agreed = Some(text),
            }
        }
        if let Some(text) = agreed {
            std::fs::write(dir.join(name), &text)
                .with_context(|| format!("writing {}", dir.join(name).display()))?;
            if name == agora_chain::IDENTITY_FILE {
                println!("consensus identity: {text}");
            }
        }
    }
    Ok(())
}

/// Wait until validator `i` has finalized a block; fail at once if it exits.
async fn wait_for_first_block(i: usize, v: &mut Validator) -> Result<(), Failure> {
    let client = ChainClient::new(&v.rpc);
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        poll.tick().await;
        if let Some(status) = v.child.try_wait()? {
            fail!(
                "validator {i} exited ({status}) while starting; see {}",
                v.log.display()
            );
        }
        if matches!(client.head().await, Ok(h) if h.height >= 1) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            fail!(
                "validator {i} finalized no block within {START_TIMEOUT:?}; see {}",
                v.log.display()
            );
        }
    }
}
