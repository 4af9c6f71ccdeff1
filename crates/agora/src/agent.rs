//! `agora agent ...`: agents on chain from the command line. An agent
//! registers, updates and keeps itself listed; clients find it, pay it and
//! rate what they paid for; its action log is appended, anchored on chain,
//! verified and proven entry by entry.

use std::path::PathBuf;

use agora_agent::log::{read_log, AgentLog};
use agora_agent::{verify_log, EntryProof};
use agora_chain_client::ChainClient;
use agora_devnet::keys;
use agora_types::agent::agent_payment_id;
use agora_types::{AgentEndpoint, AgentEntry, AgentProfile, Hash32, ModelId, TxKind};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::send::{parse_account, parse_hash, print, send, ChainOpts};

/// `agora agent ...`.
#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Register the key's account as an agent, bonding stake.
    Register(ProfileArgs),
    /// Replace the key's agent profile (the next sequence number is read from the chain).
    Update(ProfileArgs),
    /// Keep the key's agent listed for another heartbeat period.
    Heartbeat(KeyArgs),
    /// Remove the key's agent and take its stake back.
    Deregister(KeyArgs),
    /// List live agents, filtered by capability and model.
    List(ListArgs),
    /// One agent: profile, stake, liveness, log anchors, reputation and feedback.
    Show(ShowArgs),
    /// Pay an agent on chain: the payment entitles the payer to one feedback.
    Pay(PayArgs),
    /// Rate an agent you paid (0 to 100), once per payment.
    Feedback(FeedbackArgs),
    /// Take back your feedback.
    RevokeFeedback(RevokeArgs),
    /// Ask (and pay) for one job to be audited: a validator drawn like a
    /// sampled job's replays it and posts a verdict (`GET /verdicts/{batch}`).
    RequestValidation(ValidationArgs),
    /// The agent's action log.
    #[command(subcommand)]
    Log(LogCommand),
}

/// `agora agent request-validation`.
#[derive(Args, Debug)]
pub struct ValidationArgs {
    /// Key file of the requester (pays `[params.audit] validation_fee`).
    #[arg(long)]
    pub key: PathBuf,
    /// The job's receipt id (the gateway's `x-agora-receipt`): its batch
    /// and index are read from the gateway's `GET /v1/receipts/{id}`.
    #[arg(long, conflicts_with_all = ["batch", "index"], required_unless_present = "batch")]
    pub receipt: Option<String>,
    /// The gateway that served the job.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
    /// Or the batch id directly.
    #[arg(long, requires = "index")]
    pub batch: Option<String>,
    /// And the job's leaf index in it.
    #[arg(long, requires = "batch")]
    pub index: Option<u64>,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// A key and the chain.
#[derive(Args, Debug)]
pub struct KeyArgs {
    /// Key file of the agent.
    #[arg(long)]
    pub key: PathBuf,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora agent register` and `update`.
#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// Key file of the agent (its account is the agent's id).
    #[arg(long)]
    pub key: PathBuf,
    /// Short name.
    #[arg(long)]
    pub name: String,
    /// An endpoint as URL or URL=PROTOCOL (default protocol openai-chat); repeatable.
    #[arg(long)]
    pub endpoint: Vec<String>,
    /// A capability tag; repeatable.
    #[arg(long)]
    pub capability: Vec<String>,
    /// A model it uses (registered name or id); repeatable.
    #[arg(long)]
    pub model: Vec<String>,
    /// Its registration file, hashed into the profile.
    #[arg(long)]
    pub metadata: Option<PathBuf>,
    /// Stake to bond (register only).
    #[arg(long, default_value_t = 1_000)]
    pub stake: u64,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora agent list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only agents with this capability.
    #[arg(long)]
    pub capability: Option<String>,
    /// Only agents using this model (name or id).
    #[arg(long)]
    pub model: Option<String>,
    /// Include agents whose heartbeat expired.
    #[arg(long)]
    pub all: bool,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora agent show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The agent's account.
    #[arg(long)]
    pub id: String,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora agent pay`.
#[derive(Args, Debug)]
pub struct PayArgs {
    /// Key file of the payer.
    #[arg(long)]
    pub key: PathBuf,
    /// The agent's account.
    #[arg(long)]
    pub agent: String,
    /// How much.
    #[arg(long)]
    pub amount: u64,
    /// What it pays for (any 32-byte id; default zero).
    #[arg(long)]
    pub reference: Option<String>,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora agent feedback`.
#[derive(Args, Debug)]
pub struct FeedbackArgs {
    /// Key file of the payer.
    #[arg(long)]
    pub key: PathBuf,
    /// The payment id `agora agent pay` printed.
    #[arg(long)]
    pub payment: String,
    /// 0 (worst) to 100 (best).
    #[arg(long)]
    pub score: u8,
    /// What it is about.
    #[arg(long, default_value = "general")]
    pub tag: String,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora agent revoke-feedback`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// Key file of the feedback's author.
    #[arg(long)]
    pub key: PathBuf,
    /// The payment the feedback was given for.
    #[arg(long)]
    pub payment: String,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora agent log ...`.
#[derive(Subcommand, Debug)]
pub enum LogCommand {
    /// Append a signed entry to the key's log file.
    Append(AppendArgs),
    /// Anchor the whole log's Merkle root on chain.
    Anchor(LogKeyArgs),
    /// Check a log file against the agent's anchors on chain.
    Verify(VerifyArgs),
    /// Write a proof that entry INDEX is in the latest anchored log.
    Prove(ProveArgs),
    /// Check a proof written by `prove` against the chain's anchors.
    VerifyEntry(VerifyEntryArgs),
}

/// `agora agent log append`.
#[derive(Args, Debug)]
pub struct AppendArgs {
    /// Key file of the agent.
    #[arg(long)]
    pub key: PathBuf,
    /// The log file.
    #[arg(long)]
    pub log: PathBuf,
    /// What it did, in a word.
    #[arg(long)]
    pub action: String,
    /// Free detail.
    #[arg(long, default_value = "")]
    pub detail: String,
    /// A receipt (job or payment id) it paid for; repeatable.
    #[arg(long)]
    pub receipt: Vec<String>,
}

/// `agora agent log anchor`.
#[derive(Args, Debug)]
pub struct LogKeyArgs {
    /// Key file of the agent.
    #[arg(long)]
    pub key: PathBuf,
    /// The log file.
    #[arg(long)]
    pub log: PathBuf,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora agent log verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The log file.
    #[arg(long)]
    pub log: PathBuf,
    /// The agent (default: the one the first entry names).
    #[arg(long)]
    pub agent: Option<String>,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora agent log prove`.
#[derive(Args, Debug)]
pub struct ProveArgs {
    /// The log file.
    #[arg(long)]
    pub log: PathBuf,
    /// The entry's position, from 0.
    #[arg(long)]
    pub index: usize,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora agent log verify-entry`.
#[derive(Args, Debug)]
pub struct VerifyEntryArgs {
    /// The proof file.
    #[arg(long)]
    pub proof: PathBuf,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// Run an `agora agent` subcommand.
pub async fn run(command: AgentCommand) -> Result<()> {
    match command {
        AgentCommand::Register(args) => register(args, false).await,
        AgentCommand::Update(args) => register(args, true).await,
        AgentCommand::Heartbeat(args) => simple(args, TxKind::AgentHeartbeat, "heartbeat").await,
        AgentCommand::Deregister(args) => {
            simple(args, TxKind::DeregisterAgent, "deregistration").await
        }
        AgentCommand::List(args) => list(args).await,
        AgentCommand::Show(args) => show(args).await,
        AgentCommand::Pay(args) => pay(args).await,
        AgentCommand::Feedback(args) => feedback(args).await,
        AgentCommand::RevokeFeedback(args) => revoke(args).await,
        AgentCommand::RequestValidation(args) => request_validation(args).await,
        AgentCommand::Log(LogCommand::Append(args)) => append(args),
        AgentCommand::Log(LogCommand::Anchor(args)) => anchor(args).await,
        AgentCommand::Log(LogCommand::Verify(args)) => verify(args).await,
        AgentCommand::Log(LogCommand::Prove(args)) => prove(args).await,
        AgentCommand::Log(LogCommand::VerifyEntry(args)) => verify_entry(args).await,
    }
}

/// A model given by id or registered name.
async fn model_id(chain: &ChainClient, text: &str) -> Result<ModelId> {
    if let Ok(id) = text.parse() {
        return Ok(id);
    }
    chain
        .models()
        .await
        .context("reading the models")?
        .into_iter()
        .find(|m| m.name == text)
        .map(|m| m.id)
        .with_context(|| format!("--model {text:?} is neither an id nor a registered model"))
}

async fn profile(chain: &ChainClient, args: &ProfileArgs) -> Result<AgentProfile> {
    let endpoints = args
        .endpoint
        .iter()
        .map(|e| {
            let (url, protocol) = e.split_once('=').unwrap_or((e, "openai-chat"));
            AgentEndpoint {
                url: url.into(),
                protocol: protocol.into(),
                weight: 1,
            }
        })
        .collect();
    let mut models = Vec::new();
    for m in &args.model {
        models.push(model_id(chain, m).await?);
    }
    let metadata_hash = match &args.metadata {
        Some(path) => Hash32::digest(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => Hash32::ZERO,
    };
    Ok(AgentProfile {
        name: args.name.clone(),
        endpoints,
        capabilities: args.capability.clone(),
        models,
        metadata_hash,
    })
}

async fn register(args: ProfileArgs, update: bool) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let profile = profile(&chain, &args).await?;
    let kind = if update {
        let current = chain
            .agent(&key.account())
            .await
            .context("reading the agent (is it registered?)")?;
        TxKind::UpdateAgent {
            sequence: current.sequence + 1,
            profile,
        }
    } else {
        TxKind::RegisterAgent {
            profile,
            stake: args.stake,
        }
    };
    let what = if update {
        "agent update"
    } else {
        "agent registration"
    };
    let done = send(&chain, &key, kind, what).await?;
    let entry = chain.agent(&key.account()).await?;
    print(
        args.chain.json,
        json!({"agent": entry.id, "tx": done.id, "height": done.height, "sequence": entry.sequence, "expires_at": entry.expires_at}),
        format!(
            "agent {} {} at height {} (sequence {}, live until height {})",
            entry.id,
            if update { "updated" } else { "registered" },
            done.height,
            entry.sequence,
            entry.expires_at
        ),
    )
}

async fn simple(args: KeyArgs, kind: TxKind, what: &str) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let done = send(&chain, &key, kind, what).await?;
    print(
        args.chain.json,
        json!({"agent": key.account(), "tx": done.id, "height": done.height}),
        format!(
            "{what} of agent {} at height {}",
            key.account(),
            done.height
        ),
    )
}

fn summary(a: &AgentEntry, height: u64) -> String {
    let mean = a.reputation.mean().map_or("no feedback".into(), |m| {
        format!("score {m:.1} from {}", a.reputation.count)
    });
    format!(
        "{} {:<16} {} caps [{}] models {} stake {} anchors {} ({mean}, paid {})",
        a.id,
        a.profile.name,
        if a.live_at(height) {
            "live   "
        } else {
            "expired"
        },
        a.profile.capabilities.join(","),
        a.profile.models.len(),
        a.stake,
        a.anchors.last().map_or(0, |x| x.count),
        a.reputation.paid
    )
}

async fn list(args: ListArgs) -> Result<()> {
    let chain = ChainClient::new(&args.chain.rpc);
    let mut query = Vec::new();
    if let Some(c) = &args.capability {
        query.push(format!("capability={c}"));
    }
    if let Some(m) = &args.model {
        query.push(format!("model={}", model_id(&chain, m).await?));
    }
    if args.all {
        query.push("all=true".into());
    }
    let agents = chain.agents(&query.join("&")).await?;
    let height = chain.head().await?.height;
    let text = if agents.is_empty() {
        "no agents match".into()
    } else {
        agents
            .iter()
            .map(|a| summary(a, height))
            .collect::<Vec<_>>()
            .join("\n")
    };
    print(args.chain.json, json!(agents), text)
}

async fn show(args: ShowArgs) -> Result<()> {
    let chain = ChainClient::new(&args.chain.rpc);
    let id = parse_account("--id", &args.id)?;
    let agent = chain.agent(&id).await?;
    let feedback = chain.agent_feedback(&id).await?;
    let height = chain.head().await?.height;
    let text = format!(
        "{}\nendpoints: {}\nfeedback: {}",
        summary(&agent, height),
        agent
            .profile
            .endpoints
            .iter()
            .map(|e| format!("{} ({})", e.url, e.protocol))
            .collect::<Vec<_>>()
            .join(", "),
        feedback.len()
    );
    print(
        args.chain.json,
        json!({"agent": agent, "live": agent.live_at(height), "feedback": feedback}),
        text,
    )
}

async fn pay(args: PayArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let agent = parse_account("--agent", &args.agent)?;
    let reference = match &args.reference {
        Some(r) => parse_hash("--reference", "reference", r)?,
        None => Hash32::ZERO,
    };
    let kind = TxKind::PayAgent {
        agent,
        amount: args.amount,
        reference,
    };
    let done = send(&chain, &key, kind, "agent payment").await?;
    let payment = agent_payment_id(&key.account(), done.nonce);
    print(
        args.chain.json,
        json!({"payment": payment, "agent": agent, "amount": args.amount, "tx": done.id, "height": done.height}),
        format!("paid {} to agent {agent}: payment {payment} (rate it with `agora agent feedback --payment {payment}`)", args.amount),
    )
}

async fn feedback(args: FeedbackArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let payment = parse_hash("--payment", "payment", &args.payment)?;
    let kind = TxKind::GiveFeedback {
        payment,
        score: args.score,
        tag: args.tag.clone(),
    };
    let done = send(&chain, &key, kind, "feedback").await?;
    print(
        args.chain.json,
        json!({"payment": payment, "score": args.score, "tx": done.id, "height": done.height}),
        format!(
            "feedback {} for payment {payment} at height {}",
            args.score, done.height
        ),
    )
}

async fn revoke(args: RevokeArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let payment = parse_hash("--payment", "payment", &args.payment)?;
    let done = send(
        &chain,
        &key,
        TxKind::RevokeFeedback { payment },
        "revocation",
    )
    .await?;
    print(
        args.chain.json,
        json!({"payment": payment, "tx": done.id, "height": done.height}),
        format!(
            "feedback for payment {payment} revoked at height {}",
            done.height
        ),
    )
}

/// The (batch, index) of the job with receipt `id`, as the gateway reports it.
async fn batch_of(gateway: &str, id: &str) -> Result<(Hash32, u64)> {
    let job = parse_hash("--receipt", "receipt", id)?;
    let record = crate::verify::fetch_record(gateway, &job).await?;
    let batch = record.batch.with_context(|| {
        format!(
            "job {job} is not in a committed batch yet; try again after the provider commits it"
        )
    })?;
    Ok((batch.batch, batch.index))
}

async fn request_validation(args: ValidationArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let (batch, index) = match (&args.receipt, &args.batch, args.index) {
        (Some(r), _, _) => batch_of(&args.gateway, r).await?,
        (None, Some(b), Some(i)) => (parse_hash("--batch", "batch", b)?, i),
        _ => bail!("give --receipt ID, or --batch ID and --index N"),
    };
    let done = send(
        &chain,
        &key,
        TxKind::RequestValidation { batch, index },
        "validation request",
    )
    .await?;
    let auditor = chain
        .validations(done.height.saturating_sub(1))
        .await?
        .into_iter()
        .find(|t| t.request.batch == batch && t.request.index == index)
        .map(|t| t.request.auditor);
    print(
        args.chain.json,
        json!({"batch": batch, "index": index, "auditor": auditor, "tx": done.id, "height": done.height}),
        format!(
            "job {index} of batch {batch} will be audited by {} (verdict at GET /verdicts/{batch})",
            auditor.map_or("a drawn validator".into(), |a| a.to_string())
        ),
    )
}

fn append(args: AppendArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let receipts = args
        .receipt
        .iter()
        .map(|r| parse_hash("--receipt", "receipt", r))
        .collect::<Result<Vec<_>>>()?;
    let mut log = AgentLog::open(&args.log, key)?;
    let entry = log.append_now(&args.action, &args.detail, receipts)?;
    println!(
        "{}",
        json!({"seq": entry.entry.seq, "link": entry.link(), "entries": log.entries().len()})
    );
    Ok(())
}

async fn anchor(args: LogKeyArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let log = AgentLog::open(&args.log, key.clone())?;
    let Some((count, root, head)) = log.anchor() else {
        bail!("the log {} is empty: nothing to anchor", args.log.display());
    };
    let done = send(
        &chain,
        &key,
        TxKind::AnchorAgentLog { count, root, head },
        "log anchor",
    )
    .await?;
    print(
        args.chain.json,
        json!({"count": count, "root": root, "head": head, "tx": done.id, "height": done.height}),
        format!(
            "anchored {count} entries (root {root}) at height {}",
            done.height
        ),
    )
}

async fn verify(args: VerifyArgs) -> Result<()> {
    let chain = ChainClient::new(&args.chain.rpc);
    let entries = read_log(&args.log)?;
    let agent = match &args.agent {
        Some(a) => parse_account("--agent", a)?,
        None => entries
            .first()
            .map(|e| e.entry.agent)
            .context("the log is empty; name the agent with --agent")?,
    };
    let anchors = chain
        .agent(&agent)
        .await
        .with_context(|| format!("reading agent {agent}'s anchors"))?
        .anchors;
    let report = verify_log(Some(agent), &entries, &anchors)
        .with_context(|| format!("{} does not verify", args.log.display()))?;
    print(
        args.chain.json,
        json!(report),
        format!(
            "log verifies: {} entries by {agent}, {} anchored by {} anchors",
            report.entries, report.anchored, report.anchors
        ),
    )
}

async fn prove(args: ProveArgs) -> Result<()> {
    let chain = ChainClient::new(&args.chain.rpc);
    let entries = read_log(&args.log)?;
    let agent = entries.first().context("the log is empty")?.entry.agent;
    let anchors = chain.agent(&agent).await?.anchors;
    verify_log(Some(agent), &entries, &anchors)
        .with_context(|| format!("{} does not verify", args.log.display()))?;
    let anchor = anchors
        .iter()
        .find(|a| a.count > args.index as u64)
        .with_context(|| format!("no anchor covers entry {} yet", args.index))?;
    let proof =
        EntryProof::new(&entries, args.index, *anchor).context("the entry is not in the log")?;
    println!("{}", serde_json::to_string_pretty(&proof)?);
    Ok(())
}

async fn verify_entry(args: VerifyEntryArgs) -> Result<()> {
    let chain = ChainClient::new(&args.chain.rpc);
    let text =
        std::fs::read(&args.proof).with_context(|| format!("reading {}", args.proof.display()))?;
    let proof: EntryProof = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not an entry proof", args.proof.display()))?;
    let agent = proof.entry.entry.agent;
    let anchors = chain.agent(&agent).await?.anchors;
    proof
        .verify(&anchors)
        .context("the entry does not verify")?;
    print(
        args.chain.json,
        json!({"verified": true, "agent": agent, "seq": proof.entry.entry.seq, "anchor_height": proof.anchor.height}),
        format!(
            "entry {} of agent {agent} is in the log anchored at height {}",
            proof.entry.entry.seq, proof.anchor.height
        ),
    )
}
