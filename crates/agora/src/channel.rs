//! `agora channel open|topup|close|finish`: a client's side of payment
//! channels (the provider settles vouchers itself).

use std::path::PathBuf;

use agora_chain_client::{ChainClient, ClientError, Committed};
use agora_devnet::keys;
use agora_types::{channel_id, Hash32, ModelId, TxKind};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::send::{balance_of, parse_account, parse_hash, print, send, ChainOpts};

/// `agora channel ...`.
#[derive(Subcommand, Debug)]
pub enum ChannelCommand {
    /// Escrow a deposit in a new channel to a provider, for one model it serves.
    Open(OpenArgs),
    /// Add to a channel's escrow.
    Topup(TopupArgs),
    /// Close a channel: at once if the provider closes, else start the challenge window.
    Close(ChannelArgs),
    /// Take back the rest of the escrow once the challenge window has passed.
    Finish(ChannelArgs),
}

/// `agora channel open`.
#[derive(Args, Debug)]
pub struct OpenArgs {
    /// Key file of the client.
    #[arg(long)]
    pub key: PathBuf,
    /// Provider account.
    #[arg(long)]
    pub provider: String,
    /// Model the channel pays for: registry name or id (64 hex characters).
    #[arg(long)]
    pub model: String,
    /// Base units to escrow.
    #[arg(long)]
    pub deposit: u64,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora channel topup`.
#[derive(Args, Debug)]
pub struct TopupArgs {
    /// Key file of the client.
    #[arg(long)]
    pub key: PathBuf,
    /// Channel id.
    #[arg(long)]
    pub channel: String,
    /// Base units to add.
    #[arg(long)]
    pub amount: u64,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora channel close` and `finish`.
#[derive(Args, Debug)]
pub struct ChannelArgs {
    /// Key file of the client (or, for close, the provider).
    #[arg(long)]
    pub key: PathBuf,
    /// Channel id.
    #[arg(long)]
    pub channel: String,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// Run an `agora channel` subcommand.
pub async fn run(command: ChannelCommand) -> Result<()> {
    match command {
        ChannelCommand::Open(args) => open(args).await,
        ChannelCommand::Topup(args) => topup(args).await,
        ChannelCommand::Close(args) => close(args, false).await,
        ChannelCommand::Finish(args) => close(args, true).await,
    }
}

async fn open(args: OpenArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let provider = parse_account("--provider", &args.provider)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let model = resolve_model(&chain, &args.model).await?;
    let kind = TxKind::OpenChannel {
        provider,
        model,
        deposit: args.deposit,
    };
    let done = send(&chain, &key, kind, "channel open").await?;
    let id = channel_id(&done.chain_id, &key.account(), done.nonce);
    let balance = balance_of(&chain, &key.account()).await?;
    print(
        args.chain.json,
        json!({
            "tx": done.id, "height": done.height, "channel": id, "client": key.account(),
            "provider": provider, "model": model, "deposit": args.deposit, "balance": balance,
        }),
        format!(
            "opened channel {id} to {provider} for model {model} with {} in block {}; balance now {balance}",
            args.deposit, done.height
        ),
    )
}

async fn topup(args: TopupArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let channel = parse_channel(&args.channel)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let kind = TxKind::TopUpChannel {
        channel,
        amount: args.amount,
    };
    let done = send(&chain, &key, kind, "channel top-up").await?;
    let info = chain
        .channel(&channel)
        .await
        .context("reading the channel")?;
    let balance = balance_of(&chain, &key.account()).await?;
    print(
        args.chain.json,
        json!({
            "tx": done.id, "height": done.height, "channel": channel, "amount": args.amount,
            "deposit": info.deposit, "paid": info.paid, "balance": balance,
        }),
        format!(
            "topped up channel {channel} by {} in block {}: deposit {}, paid {}; balance now {balance}",
            args.amount, done.height, info.deposit, info.paid
        ),
    )
}

async fn close(args: ChannelArgs, finish: bool) -> Result<()> {
    let key = keys::load(&args.key)?;
    let channel = parse_channel(&args.channel)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let (kind, what) = if finish {
        (TxKind::FinishClose { channel }, "channel finish")
    } else {
        (TxKind::CloseChannel { channel }, "channel close")
    };
    let done: Committed = send(&chain, &key, kind, what).await?;
    // Still listed: the challenge window runs; gone: refunded and closed.
    let state = match chain.channel(&channel).await {
        Ok(info) => Some(info),
        Err(ClientError::Rejected { status: 404, .. }) => None,
        Err(e) => return Err(e).context("reading the channel"),
    };
    let balance = balance_of(&chain, &key.account()).await?;
    let closable_at = state.as_ref().and_then(|c| c.closable_at);
    let text = match closable_at {
        Some(at) => format!(
            "channel {channel} is closing (block {}); finish it from block {at} with `agora channel finish`",
            done.height
        ),
        None => format!("channel {channel} closed in block {}; balance now {balance}", done.height),
    };
    print(
        args.chain.json,
        json!({
            "tx": done.id, "height": done.height, "channel": channel,
            "closed": state.is_none(), "closable_at": closable_at, "balance": balance,
        }),
        text,
    )
}

fn parse_channel(text: &str) -> Result<Hash32> {
    parse_hash("--channel", "channel", text)
}

/// A model given by id or by registry name; an unknown one lists the known names.
async fn resolve_model(chain: &ChainClient, given: &str) -> Result<ModelId> {
    let models = chain.models().await.context("reading the model registry")?;
    if let Ok(id) = given.trim().parse::<Hash32>() {
        if models.iter().any(|m| m.id == id) {
            return Ok(id);
        }
    }
    if let Some(m) = models.iter().find(|m| m.name == given) {
        return Ok(m.id);
    }
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    anyhow::bail!(
        "no registered model is named or has id {given:?}; registered: [{}]",
        names.join(", ")
    )
}
