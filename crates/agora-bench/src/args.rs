//! The benchmarks' flags: each benchmark is a command-line tool, so its
//! configuration is its `clap` arguments (`agora bench ...` embeds them).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `agora bench ...`.
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Time to first token and decode tokens/s through a running gateway.
    Gateway(GatewayArgs),
    /// The inference engine against a minimal llama.cpp loop on the same model and threads.
    Infer(InferArgs),
    /// Transaction commit (finality) latency and burst throughput of a chain node.
    Chain(ChainArgs),
    /// Audit detection per adversary, honest false positives, audit cost,
    /// commitment size and the cheater's expected profit.
    Verify(VerifyArgs),
    /// A whole network with an honest provider and one cheater per mode side
    /// by side, every job audited: who was slashed, who earned and lost what.
    Soak(SoakArgs),
    /// The blob store against b3sum (import) and a plain HTTP range
    /// download (a verified fetch from two local peers), and its overhead.
    Blob(BlobArgs),
    /// The compute-to-data sandbox: start-up per job, the CSV statistics
    /// example against the same C compiled natively, and exact re-runs.
    Data(DataArgs),
}

/// `agora bench data`.
#[derive(Args, Debug)]
pub struct DataArgs {
    /// Size of the generated CSV, in MiB.
    #[arg(long, default_value_t = 100)]
    pub size_mib: u64,
    /// Runs of the big job (sandboxed and native); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Tiny jobs timed for the start-up figure.
    #[arg(long, default_value_t = 200)]
    pub jobs: usize,
    /// The C compiler for the native build.
    #[arg(long, default_value = "clang")]
    pub cc: PathBuf,
    /// Take `csv_stats.c`, `common.h` and `wasm/csv_stats.wasm` from this
    /// folder instead of the shipped ones (to time a changed algorithm).
    #[arg(long)]
    pub algorithms: Option<PathBuf>,
    /// Where the scratch files go (default: the system's temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `agora bench blob`.
#[derive(Args, Debug)]
pub struct BlobArgs {
    /// Size of the blob, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// Runs of each step; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// The b3sum to compare with (`cargo install b3sum --locked`).
    #[arg(long, default_value = "b3sum")]
    pub b3sum: PathBuf,
    /// Where the scratch files go (default: the system's temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `agora bench soak`.
#[derive(Args, Debug)]
pub struct SoakArgs {
    /// Jobs sent to the honest provider (each one audited).
    #[arg(long, default_value_t = 200)]
    pub honest_jobs: usize,
    /// Jobs sent to each cheating provider.
    #[arg(long, default_value_t = 10)]
    pub cheat_jobs: usize,
    /// Adversary modes, one cheating provider each (`agora provider --adversary` syntax).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tamper,random,ignore-seed,drop-system,requantize,prefill-attack"
    )]
    pub modes: Vec<String>,
    /// Tokens per job at most.
    #[arg(long, default_value_t = 16)]
    pub max_tokens: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Audit identities (dispute committees need at least 2).
    #[arg(long, default_value_t = 3)]
    pub auditors: usize,
    /// Seconds between a provider's receipt batches and settlements.
    #[arg(long, default_value_t = 5)]
    pub batch_secs: u64,
    /// Inference threads per engine (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Longest wait for the audits to settle after the last job, in seconds.
    #[arg(long, default_value_t = 1_800)]
    pub wait_secs: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `agora bench verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// GGUF file claimed and audited (default: the default model, fetched if missing).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Jobs per adversary.
    #[arg(long, default_value_t = 50)]
    pub jobs: usize,
    /// Honest jobs, spread over threads {1, 2} × concurrency {1, 4}.
    #[arg(long, default_value_t = 1000)]
    pub honest: usize,
    /// Tokens per job at most.
    #[arg(long, default_value_t = 32)]
    pub max_tokens: u32,
    /// Adversary modes to run (`agora provider --adversary` syntax).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "substitute,requantize,tamper,random,ignore-seed,drop-system,prefill-attack"
    )]
    pub modes: Vec<String>,
    /// Threads of the auditing engine and of the adversaries (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `agora bench chain`.
#[derive(Args, Debug)]
pub struct ChainArgs {
    /// Chain RPC URLs, comma-separated; the load is spread over them (the
    /// first one also serves the idle latency run and block observation).
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:26657")]
    pub rpc: Vec<String>,
    /// Key file of a funded account (e.g. DIR/faucet.key).
    #[arg(long)]
    pub key: PathBuf,
    /// Transactions timed one at a time on an idle chain.
    #[arg(long, default_value_t = 30)]
    pub txs: usize,
    /// Offered load of the steady run, in transfers per second (0 skips it).
    #[arg(long, default_value_t = 6_000)]
    pub rate: u64,
    /// Length of the steady run in seconds.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Sending accounts of the steady run (funded from `--key` first).
    #[arg(long, default_value_t = 64)]
    pub senders: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `agora bench infer`.
#[derive(Args, Debug)]
pub struct InferArgs {
    /// GGUF file (default: the default model, fetched if missing).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Inference threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Tokens generated per stream.
    #[arg(long, default_value_t = 128)]
    pub tokens: u32,
    /// Concurrency levels to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    pub streams: Vec<usize>,
    /// Switch off activation commitments (to measure their cost).
    #[arg(long)]
    pub no_commitments: bool,
    /// The engine's context window per sequence (default: the engine's default).
    #[arg(long)]
    pub context_length: Option<u32>,
    /// The engine's tokens per llama.cpp call (default: the engine's default).
    #[arg(long)]
    pub batch_size: Option<u32>,
    /// Keep the engine's KV cache in f16 instead of its default q8_0.
    #[arg(long)]
    pub kv_f16: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `agora bench gateway`.
#[derive(Args, Debug)]
pub struct GatewayArgs {
    /// Measure what the gateway adds instead: latency and requests/s of an
    /// instant provider called directly and through an in-process paying
    /// gateway (API keys on), at each `--clients` level.
    #[arg(long)]
    pub overhead: bool,
    /// Concurrent keep-alive clients per level (with `--overhead`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,16,256",
        requires = "overhead"
    )]
    pub clients: Vec<usize>,
    /// Seconds of load per level and target (with `--overhead`).
    #[arg(long, default_value_t = 10.0, requires = "overhead")]
    pub seconds: f64,
    /// With `--overhead`: measure this OpenAI base URL (another proxy, e.g.
    /// LiteLLM) instead of an in-process gateway, against `--direct-url`.
    #[arg(long, requires_all = ["overhead", "direct_url"])]
    pub external_url: Option<String>,
    /// Bearer key for `--external-url`.
    #[arg(long, requires = "external_url")]
    pub external_key: Option<String>,
    /// OpenAI base URL of the external proxy's upstream, measured directly.
    #[arg(long, requires = "external_url")]
    pub direct_url: Option<String>,
    /// With `--overhead`: only serve an instant OpenAI-compatible upstream
    /// (model `instant`) on this address until Ctrl-C, for an external proxy.
    #[arg(long, requires = "overhead", conflicts_with = "external_url")]
    pub serve_stub: Option<SocketAddr>,
    /// With `--overhead`: after measuring, keep the network up until Ctrl-C
    /// (to time it with curl or an SDK).
    #[arg(long, requires = "overhead")]
    pub hold: bool,
    /// OpenAI base URL of the gateway.
    #[arg(long, default_value = "http://127.0.0.1:8080/v1")]
    pub url: String,
    /// Model name.
    #[arg(long, default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Requests to time (after one warm-up).
    #[arg(long, default_value_t = 5)]
    pub requests: u32,
    /// Tokens to generate per request.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// Prompt.
    #[arg(
        long,
        default_value = "Write a long story about a lighthouse keeper and the sea."
    )]
    pub prompt: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}
