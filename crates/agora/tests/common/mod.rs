//! Running the real `agora` binary in tests: spawn, wait for its `ready` line,
//! read the addresses it prints, kill it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a role may take to print `ready` (model load, registration).
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// A running `agora` process and the `key: value` lines it printed before `ready`.
pub struct Agora {
    pub child: Child,
    pub printed: Vec<String>,
}

impl Agora {
    /// Start `agora ARGS` and wait until it prints a line containing `ready`.
    pub fn start(args: &[&str]) -> Agora {
        if loads_the_model(args) {
            // Checks the model is there and this binary is a `real_model_*` one.
            agora_testkit::model::path();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn agora");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = Vec::new();
        loop {
            match rx.recv_timeout(READY_TIMEOUT) {
                Ok(line) => {
                    let ready = line.contains("ready");
                    printed.push(line);
                    if ready {
                        break;
                    }
                }
                Err(e) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    panic!("agora {args:?} never printed ready ({e}); exit status {status:?}; printed {printed:?}");
                }
            }
        }
        Agora { child, printed }
    }

    /// The value of a printed `label: value` line (first word of the value).
    pub fn value(&self, label: &str) -> String {
        let prefix = format!("{label}: ");
        self.printed
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {label:?} line in {:?}", self.printed))
            .to_string()
    }

    /// SIGKILL the process and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agora {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `agora ARGS` loads the real model (a provider or validator runs).
fn loads_the_model(args: &[&str]) -> bool {
    match args.first() {
        Some(&"devnet" | &"provider" | &"validator") => true,
        Some(&"localnet") => !args.contains(&"--no-serve"),
        _ => false,
    }
}

/// Run `agora ARGS` to completion and return (success, stdout, stderr).
pub fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_agora"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run agora");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Run `agora ARGS`, which must succeed and print JSON; that JSON.
pub fn run_json(args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = run(args);
    assert!(ok, "agora {args:?} failed: {out} {err}");
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("agora {args:?} printed no JSON ({e}): {out}"))
}

/// Run `agora ARGS`, which must fail with `needle` in its error output.
pub fn run_fails(args: &[&str], needle: &str) {
    let (ok, _, err) = run(args);
    assert!(!ok, "agora {args:?} succeeded");
    assert!(err.contains(needle), "agora {args:?}: {err}");
}

/// A single-validator chain node with 50 ms blocks on a free RPC port,
/// keeping its data (and its faucet key, `faucet.key`) in `dir`.
pub fn fast_node(dir: &Path) -> Agora {
    let dir = dir.to_str().expect("utf-8 temp dir");
    Agora::start(&[
        "node",
        "--data-dir",
        dir,
        "--rpc",
        "127.0.0.1:0",
        "--block-ms",
        "50",
    ])
}

/// A [`fast_node`] on a genesis with `params` and `models` (written to
/// `dir/genesis.toml`) funding a faucet key kept in `dir/faucet.key`.
#[allow(dead_code)]
pub fn node_with_genesis(
    dir: &Path,
    params: agora_ledger::Params,
    models: Vec<agora_types::ModelEntry>,
) -> Agora {
    std::fs::create_dir_all(dir).expect("create the node's directory");
    let faucet = agora_types::Keypair::generate();
    std::fs::write(dir.join("faucet.key"), hex::encode(faucet.seed()))
        .expect("write the faucet key");
    let genesis = agora_ledger::Genesis {
        chain_id: agora_types::network::DEV_CHAIN_ID.into(),
        timestamp_ms: 0,
        params,
        accounts: vec![agora_ledger::GenesisAccount {
            id: faucet.account(),
            balance: 1_000_000_000_000,
        }],
        models,
    };
    std::fs::write(dir.join("genesis.toml"), genesis.to_toml()).expect("write the genesis");
    fast_node(dir)
}

/// `agora transfer` of `amount` from the key file `from` to `to`, which must succeed.
pub fn transfer(rpc: &str, from: &Path, to: &agora_types::AccountId, amount: u64) {
    let (from, to, amount) = (
        from.to_str().expect("utf-8 path"),
        to.to_hex(),
        amount.to_string(),
    );
    let (ok, out, err) = run(&[
        "transfer", "--rpc", rpc, "--key", from, "--to", &to, "--amount", &amount,
    ]);
    assert!(ok, "transfer failed: {out} {err}");
}

/// A new provider key written to `dir/provider.key` (where `agora provider
/// --data-dir dir` reads it), funded with 5,000,000 by the key file `faucet`.
pub fn funded_provider_key(rpc: &str, faucet: &Path, dir: &Path) -> agora_types::Keypair {
    std::fs::create_dir_all(dir).expect("create the provider's directory");
    let key = agora_types::Keypair::generate();
    std::fs::write(dir.join("provider.key"), hex::encode(key.seed())).expect("write the key");
    transfer(rpc, faucet, &key.account(), 5_000_000);
    key
}

/// Start a devnet on free ports under `dir`.
pub fn devnet(dir: &Path) -> Agora {
    devnet_with(dir, &["--threads", "2"])
}

/// An HTTP client that sends the devnet's printed client API key with every
/// request (its gateway pays providers, so it serves only keyed requests).
#[allow(dead_code)]
pub fn keyed_client(devnet: &Agora) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {}", devnet.value("api key"));
    headers.insert(
        reqwest::header::AUTHORIZATION,
        bearer.parse().expect("a key is a valid header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client with default headers")
}

/// A short chat ("Name a colour.", 12 tokens at temperature 0.7 with
/// `seed`) through the gateway at `base` (its `/v1` URL), which must
/// succeed: the job's receipt id (`x-agora-receipt`) and the answer.
#[allow(dead_code)]
pub async fn chat_with_receipt(
    http: &reqwest::Client,
    base: &str,
    seed: u64,
) -> (String, serde_json::Value) {
    let body = serde_json::json!({
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": "Name a colour."}],
        "max_tokens": 12, "seed": seed, "temperature": 0.7,
    });
    let resp = http
        .post(format!("{base}/chat/completions"))
        .json(&body)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(resp.status(), 200);
    let receipt = resp.headers()["x-agora-receipt"]
        .to_str()
        .expect("a receipt id is ASCII")
        .to_string();
    (receipt, resp.json().await.expect("a JSON answer"))
}

/// Start a devnet on free ports under `dir` with `extra` flags (including `--threads`).
pub fn devnet_with(dir: &Path, extra: &[&str]) -> Agora {
    let dir = dir.to_str().expect("utf-8 temp dir");
    let mut args = vec![
        "devnet",
        "--data-dir",
        dir,
        "--http",
        "127.0.0.1:0",
        "--rpc",
        "127.0.0.1:0",
        "--provider-http",
        "127.0.0.1:0",
        "--embedding-http",
        "127.0.0.1:0",
        "--data-http",
        "127.0.0.1:0",
        "--p2p",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Agora::start(&args)
}

/// A devnet with a second provider that tampers with its outputs
/// (`--adversary tamper`), every job audited, batches every second and a
/// 10-block tempo, plus `extra` flags.
#[allow(dead_code)]
pub fn tampering_devnet(dir: &Path, extra: &[&str]) -> Agora {
    let mut args = vec![
        "--cheater-http",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--adversary",
        "tamper",
        "--audit-rate-ppm",
        "1000000",
        "--batch-secs",
        "1",
        "--tempo-blocks",
        "10",
    ];
    args.extend_from_slice(extra);
    devnet_with(dir, &args)
}

/// The account (hex) of the provider registered at `endpoint` in a status JSON.
#[allow(dead_code)]
pub fn provider_at(status: &serde_json::Value, endpoint: &str) -> String {
    status["providers"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["endpoint"] == endpoint))
        .and_then(|p| p["id"].as_str())
        .unwrap_or_else(|| panic!("{endpoint} is not registered: {status}"))
        .to_string()
}

/// `agora status --json` against `rpc`.
pub fn status(rpc: &str) -> serde_json::Value {
    let (ok, out, err) = run(&["status", "--rpc", rpc, "--json"]);
    assert!(ok, "agora status failed: {err}");
    serde_json::from_str(&out).expect("status --json prints JSON")
}
