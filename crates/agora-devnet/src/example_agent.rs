//! The devnet's example agent (`agora devnet --agent`): its own key and
//! chain account (funded from the faucet), its own custodial account at
//! the gateway (funded from the faucet too) with its own API key, and the
//! `agora_agent::Watcher` summarising each span of blocks' audits with the
//! devnet's model, logging every action and anchoring the log on chain.

use std::path::Path;
use std::time::Duration;

use agora_agent::{Watcher, WatcherConfig};
use agora_chain_client::ChainClient;
use agora_tasks::{Context, Failure, Shutdown, Task};
use agora_types::{AccountId, Keypair, ModelEntry, TxKind};
use serde_json::{json, Value};

use crate::keys;

/// What the agent's gateway account is funded with (its model calls' budget).
const GATEWAY_FUNDS: u64 = 100_000_000;
/// Bonded when it registers.
const AGENT_STAKE: u64 = 1_000;
/// Entries between log anchors.
const ANCHOR_EVERY: u64 = 2;

/// The running agent: its account, log file and task.
pub struct ExampleAgent {
    /// Its agent id.
    pub account: AccountId,
    /// Its log file.
    pub log: std::path::PathBuf,
    /// Its task.
    pub task: Task,
}

/// Ask the gateway's admin API for `path` with `body`.
async fn admin(gateway: &str, admin_key: &str, path: &str, body: Value) -> Result<Value, Failure> {
    let resp = reqwest::Client::new()
        .post(format!("{gateway}{path}"))
        .bearer_auth(admin_key)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("calling the gateway's {path}"))?;
    let status = resp.status();
    let answer: Value = resp
        .json()
        .await
        .with_context(|| format!("reading the gateway's {path} answer"))?;
    if !status.is_success() {
        return Err(Failure::msg(format!("gateway {path}: {status} {answer}")));
    }
    Ok(answer)
}

/// The agent's API key: made on first start (a new custodial account
/// funded from the faucet, and a key bound to it), then read back.
async fn api_key(
    dir: &Path,
    chain: &ChainClient,
    gateway: &str,
    faucet: &Keypair,
) -> Result<String, Failure> {
    let path = dir.join("api-key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().to_string());
    }
    let admin_path = dir
        .parent()
        .unwrap_or(dir)
        .join("gateway")
        .join("admin-key");
    let admin_key = std::fs::read_to_string(&admin_path)
        .with_context(|| format!("reading {}", admin_path.display()))?;
    let admin_key = admin_key.trim();
    let made = admin(gateway, admin_key, "/admin/accounts", json!({})).await?;
    let account: AccountId =
        serde_json::from_value(made["account"].clone()).context("the gateway's new account")?;
    chain
        .send_and_confirm(
            faucet,
            TxKind::Transfer {
                to: account,
                amount: GATEWAY_FUNDS,
            },
            Duration::from_secs(30),
        )
        .await
        .context("funding the agent's gateway account")?;
    let key = admin(
        gateway,
        admin_key,
        "/admin/keys",
        json!({"name": "example-agent", "account": account}),
    )
    .await?;
    let secret = key["key"]
        .as_str()
        .context("the gateway's new key")?
        .to_string();
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

/// Start the example agent under `dir` (`DIR/agent`), calling `model`
/// through the gateway at `gateway` every `every_blocks` blocks.
pub async fn start(
    dir: &Path,
    chain: &ChainClient,
    gateway: &str,
    faucet: &Keypair,
    model: &ModelEntry,
    every_blocks: u64,
    shutdown: Shutdown,
) -> Result<ExampleAgent, Failure> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = keys::load_or_create(&dir.join("agent.key"))?;
    crate::devnet::fund(chain, faucet, &key).await?;
    let api_key = api_key(dir, chain, gateway, faucet).await?;
    let log = dir.join("actions.log");
    let config = WatcherConfig {
        chain: chain.clone(),
        key: key.clone(),
        openai_base: format!("{gateway}/v1"),
        api_key,
        model: (model.name.clone(), model.id),
        log_path: log.clone(),
        every_blocks,
        anchor_every: ANCHOR_EVERY,
        poll: Duration::from_millis(500),
        stake: AGENT_STAKE,
    };
    let mut watcher = Watcher::new(config).await.map_err(Failure::other)?;
    watcher.keep_registered().await.map_err(Failure::other)?;
    let task = tokio::spawn(async move { watcher.run(shutdown).await.map_err(Failure::other) });
    Ok(ExampleAgent {
        account: key.account(),
        log,
        task,
    })
}
