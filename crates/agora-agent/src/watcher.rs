//! The example agent: it watches the chain and, every `every_blocks`
//! blocks, asks a model to summarise that span's audits, calling the
//! gateway with its own API key (so its own account pays), and logs each
//! action with the receipt of the job it paid for. It registers itself on
//! chain, keeps its registration alive with heartbeats and anchors its log
//! every `anchor_every` entries.

use std::path::PathBuf;
use std::time::Duration;

use agora_chain_client::{ChainClient, ClientError};
use agora_tasks::Shutdown;
use agora_types::{AgentEndpoint, AgentProfile, Amount, Hash32, Keypair, ModelId, TxKind};
use serde_json::{json, Value};

use crate::log::{AgentLog, LogError};

/// How long a transaction may take to be committed.
const TX_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The chain refused or could not be reached.
    #[error("chain: {0}")]
    Chain(#[from] ClientError),
    /// The log could not be written.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The gateway refused or answered something unusable.
    #[error("gateway: {0}")]
    Gateway(String),
}

/// How the watcher runs.
#[derive(Clone)]
pub struct WatcherConfig {
    /// The chain it watches and registers on.
    pub chain: ChainClient,
    /// Its own key: its agent id, log signer and chain account.
    pub key: Keypair,
    /// The gateway's OpenAI base URL (`http://HOST/v1`).
    pub openai_base: String,
    /// Its own API key at that gateway (bound to an account it funds).
    pub api_key: String,
    /// The model it asks, by name, and its on-chain id.
    pub model: (String, ModelId),
    /// Its log file.
    pub log_path: PathBuf,
    /// Blocks per summary.
    pub every_blocks: u64,
    /// Entries between anchors.
    pub anchor_every: u64,
    /// How often it looks at the chain.
    pub poll: Duration,
    /// Stake it bonds when registering.
    pub stake: Amount,
}

/// One summary it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The blocks it covers, `from..=to`.
    pub blocks: (u64, u64),
    /// What the model said.
    pub text: String,
    /// The job's receipt id (the gateway's `x-agora-receipt`).
    pub receipt: Hash32,
}

/// The running agent.
pub struct Watcher {
    config: WatcherConfig,
    log: AgentLog,
    http: reqwest::Client,
    /// Last block its summaries cover.
    covered: u64,
}

impl Watcher {
    /// Open its log; it covers blocks from the current head on.
    pub async fn new(config: WatcherConfig) -> Result<Self, AgentError> {
        let log = AgentLog::open(&config.log_path, config.key.clone())?;
        let covered = config.chain.head().await?.height;
        Ok(Self {
            config,
            log,
            http: reqwest::Client::new(),
            covered,
        })
    }

    /// Its log so far.
    pub fn log(&self) -> &AgentLog {
        &self.log
    }

    /// Register on chain unless registered, heartbeat when half the
    /// registration's life is gone; each is logged.
    pub async fn keep_registered(&mut self) -> Result<(), AgentError> {
        let chain = &self.config.chain;
        let me = self.config.key.account();
        let height = chain.head().await?.height;
        let kind = match chain.agent(&me).await {
            Err(ClientError::Rejected { status: 404, .. }) => TxKind::RegisterAgent {
                profile: AgentProfile {
                    name: "epoch-watcher".into(),
                    endpoints: vec![AgentEndpoint {
                        url: self.config.openai_base.clone(),
                        protocol: "openai-chat".into(),
                        weight: 1,
                    }],
                    capabilities: vec!["chain-watch".into(), "summarise".into()],
                    models: vec![self.config.model.1],
                    metadata_hash: Hash32::ZERO,
                },
                stake: self.config.stake,
            },
            Err(e) => return Err(e.into()),
            Ok(entry) => {
                let ttl = chain.params().await?.agents.heartbeat_ttl_blocks;
                if entry.expires_at > height + ttl / 2 {
                    return Ok(());
                }
                TxKind::AgentHeartbeat
            }
        };
        let action = match kind {
            TxKind::RegisterAgent { .. } => "register",
            _ => "heartbeat",
        };
        let done = chain
            .send_and_confirm(&self.config.key, kind, TX_TIMEOUT)
            .await?;
        let detail = json!({"tx": done.id, "height": done.height}).to_string();
        self.log.append_now(action, &detail, vec![])?;
        Ok(())
    }

    /// What the chain's live batches say about audits in blocks `from..=to`.
    async fn audits_between(&self, from: u64, to: u64) -> Result<Value, AgentError> {
        let page = self
            .config
            .chain
            .batches(Some(from.saturating_sub(1)))
            .await?;
        let batches: Vec<_> = page.batches.iter().filter(|b| b.height <= to).collect();
        let drawn: usize = batches.iter().map(|b| b.audits.len()).sum();
        let disputes = self.config.chain.disputes().await?.len();
        let status = self.config.chain.status().await?;
        let slashed: Vec<String> = status
            .audits
            .iter()
            .filter(|p| p.audits.slashed)
            .map(|p| p.provider.to_hex()[..8].to_string())
            .collect();
        let passed: u64 = status.audits.iter().map(|p| p.audits.audits_passed).sum();
        let failed: u64 = status.audits.iter().map(|p| p.audits.audits_failed).sum();
        Ok(json!({
            "blocks": [from, to],
            "batches": batches.len(),
            "jobs": batches.iter().map(|b| b.count).sum::<u64>(),
            "audits_drawn": drawn,
            "open_disputes": disputes,
            "audits_passed_total": passed,
            "audits_failed_total": failed,
            "slashed_providers": slashed,
        }))
    }

    /// Ask the model, paying with its API key; the answer and the receipt id.
    async fn ask(&self, facts: &Value) -> Result<(String, Hash32), AgentError> {
        let body = json!({
            "model": self.config.model.0,
            "messages": [
                {"role": "system", "content": "You summarise blockchain audit statistics in one short sentence."},
                {"role": "user", "content": format!("Audit statistics: {facts}")},
            ],
            "max_tokens": 48,
            "temperature": 0,
            "seed": 7,
        });
        let url = format!("{}/chat/completions", self.config.openai_base);
        let gateway = |e: reqwest::Error| AgentError::Gateway(e.to_string());
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.config.api_key)
            .json(&body)
            .send()
            .await
            .map_err(gateway)?;
        let status = resp.status();
        let receipt = resp
            .headers()
            .get("x-agora-receipt")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next()?.parse::<Hash32>().ok());
        let answer: Value = resp.json().await.map_err(gateway)?;
        if !status.is_success() {
            return Err(AgentError::Gateway(format!("{status}: {answer}")));
        }
        let text = answer["choices"][0]["message"]["content"]
            .as_str()
            .ok_or_else(|| AgentError::Gateway(format!("no answer in {answer}")))?;
        let receipt =
            receipt.ok_or_else(|| AgentError::Gateway("no x-agora-receipt header".into()))?;
        Ok((text.to_string(), receipt))
    }

    /// If `every_blocks` have passed since the last summary, make the next
    /// one, log it and anchor the log when due.
    pub async fn step(&mut self) -> Result<Option<Summary>, AgentError> {
        let head = self.config.chain.head().await?.height;
        if head < self.covered + self.config.every_blocks {
            return Ok(None);
        }
        self.keep_registered().await?;
        let (from, to) = (self.covered + 1, head);
        let facts = self.audits_between(from, to).await?;
        let (text, receipt) = self.ask(&facts).await?;
        let detail = json!({"facts": facts, "summary": text}).to_string();
        self.log.append_now("summarise", &detail, vec![receipt])?;
        self.covered = to;
        self.anchor_if_due().await?;
        Ok(Some(Summary {
            blocks: (from, to),
            text,
            receipt,
        }))
    }

    /// Anchor the log once `anchor_every` entries are unanchored.
    async fn anchor_if_due(&mut self) -> Result<(), AgentError> {
        let me = self.config.key.account();
        let anchored = self
            .config
            .chain
            .agent(&me)
            .await?
            .anchors
            .last()
            .map_or(0, |a| a.count);
        let Some((count, root, head)) = self.log.anchor() else {
            return Ok(());
        };
        if count < anchored + self.config.anchor_every {
            return Ok(());
        }
        let kind = TxKind::AnchorAgentLog { count, root, head };
        let done = self
            .config
            .chain
            .send_and_confirm(&self.config.key, kind, TX_TIMEOUT)
            .await?;
        // The anchor's own entry is covered by the next anchor.
        let detail = json!({"count": count, "root": root, "height": done.height}).to_string();
        self.log.append_now("anchor", &detail, vec![])?;
        Ok(())
    }

    /// Run until `shutdown`; a failed step is logged and retried next poll.
    pub async fn run(mut self, shutdown: Shutdown) -> Result<(), AgentError> {
        self.keep_registered().await?;
        loop {
            if let Err(e) = self.step().await {
                tracing::warn!("agent step failed (retrying): {e}");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll) => {}
                _ = shutdown.clone().wait() => return Ok(()),
            }
        }
    }
}
