//! `agora wallet`: create a key, read a balance, send tokens.

use std::path::{Path, PathBuf};

use agora_chain_client::ChainClient;
use agora_devnet::keys;
use agora_types::TxKind;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::send::{balance_of, parse_account, print, send, ChainOpts};

/// `agora wallet ...`.
#[derive(Subcommand, Debug)]
pub enum WalletCommand {
    /// Create a new key file and print its account.
    New(WalletNewArgs),
    /// Print an account's balance, nonce and earnings.
    Balance(WalletBalanceArgs),
    /// Send tokens from a key file's account to another account.
    Transfer(WalletTransferArgs),
}

/// `agora wallet new`.
#[derive(Args, Debug)]
pub struct WalletNewArgs {
    /// Where to write the key (hex seed, owner-only permissions); never overwritten.
    #[arg(long, default_value_os_t = agora_devnet::default_data_dir("wallet").join("wallet.key"))]
    pub key: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `agora wallet balance`.
#[derive(Args, Debug)]
pub struct WalletBalanceArgs {
    /// Key file whose account to read.
    #[arg(long, conflicts_with = "account", required_unless_present = "account")]
    pub key: Option<PathBuf>,
    /// Account to read (hex public key).
    #[arg(long)]
    pub account: Option<String>,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora wallet transfer`.
#[derive(Args, Debug)]
pub struct WalletTransferArgs {
    /// Key file of the sender.
    #[arg(long)]
    pub key: PathBuf,
    /// Recipient account (hex public key).
    #[arg(long)]
    pub to: String,
    /// Base units to send.
    #[arg(long)]
    pub amount: u64,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// Run an `agora wallet` subcommand.
pub async fn run(command: WalletCommand) -> Result<()> {
    match command {
        WalletCommand::New(args) => new_key(&args.key, args.json),
        WalletCommand::Balance(args) => balance(args).await,
        WalletCommand::Transfer(args) => transfer(args).await,
    }
}

fn new_key(path: &Path, json: bool) -> Result<()> {
    if path.exists() {
        anyhow::bail!(
            "{} already exists; pick another --key (a key file is never overwritten)",
            path.display()
        );
    }
    let key = keys::load_or_create(path)?;
    let account = key.account();
    print(
        json,
        json!({ "account": account, "key": path }),
        format!("new account {account}\nkey file {}", path.display()),
    )
}

async fn balance(args: WalletBalanceArgs) -> Result<()> {
    let account = match (&args.key, &args.account) {
        (Some(path), _) => keys::load(path)?.account(),
        (None, Some(id)) => parse_account("--account", id)?,
        (None, None) => anyhow::bail!("give --key FILE or --account ID"),
    };
    let chain = ChainClient::new(&args.chain.rpc);
    let info = chain
        .account(&account)
        .await
        .context("reading the account")?;
    let e = info.earned;
    print(
        args.chain.json,
        json!({
            "account": account,
            "balance": info.balance,
            "nonce": info.nonce,
            "earned": { "channels": e.channels, "royalties": e.royalties, "emissions": e.emissions, "total": e.total() },
        }),
        format!(
            "account {account}\nbalance {}\nnonce {}\nearned {} (channels {}, royalties {}, emissions {})",
            info.balance,
            info.nonce,
            e.total(),
            e.channels,
            e.royalties,
            e.emissions
        ),
    )
}

/// `agora wallet transfer` (and its older spelling, `agora transfer`).
pub async fn transfer(args: WalletTransferArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let to = parse_account("--to", &args.to)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let kind = TxKind::Transfer {
        to,
        amount: args.amount,
    };
    let done = send(&chain, &key, kind, "transfer").await?;
    let balance = balance_of(&chain, &key.account()).await?;
    print(
        args.chain.json,
        json!({
            "tx": done.id, "height": done.height, "from": key.account(), "to": to,
            "amount": args.amount, "balance": balance,
        }),
        format!(
            "transferred {} to {to} in block {} (tx {}); balance now {balance}",
            args.amount, done.height, done.id
        ),
    )
}
