//! `agora stake`, `agora unstake`, `agora delegate`: bond stake as a
//! validator, delegate to one, and start unbonding (it returns after the
//! chain's unbonding period and stays slashable until then).

use std::path::PathBuf;

use agora_chain_client::ChainClient;
use agora_devnet::keys;
use agora_types::rpc::ValidatorStake;
use agora_types::{possession_message, AccountId, TxKind};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;

use crate::send::{balance_of, parse_account, print, send, ChainOpts};

/// `agora stake`.
#[derive(Args, Debug)]
pub struct StakeArgs {
    /// Key file of the validator.
    #[arg(long)]
    pub key: PathBuf,
    /// Base units to bond (added to what is already bonded).
    #[arg(long)]
    pub amount: u64,
    /// Share of delegators' rewards the validator keeps, parts per million.
    #[arg(long, default_value_t = 0)]
    pub take_ppm: u32,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora unstake`.
#[derive(Args, Debug)]
pub struct UnstakeArgs {
    /// Key file of the staker.
    #[arg(long)]
    pub key: PathBuf,
    /// Validator the stake is bonded to (default: the key's own account).
    #[arg(long)]
    pub validator: Option<String>,
    /// Base units to unbond.
    #[arg(long)]
    pub amount: u64,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora delegate`.
#[derive(Args, Debug)]
pub struct DelegateArgs {
    /// Key file of the delegator.
    #[arg(long)]
    pub key: PathBuf,
    /// Validator to delegate to.
    #[arg(long)]
    pub validator: String,
    /// Base units to delegate.
    #[arg(long)]
    pub amount: u64,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// `agora announce`.
#[derive(Args, Debug)]
pub struct AnnounceArgs {
    /// Key file of the bonded validator (its staking account).
    #[arg(long)]
    pub key: PathBuf,
    /// Key file the validator's node signs consensus with (its
    /// `consensus.key` or `--join-key`): the announcement names its public
    /// key and carries its proof of possession.
    #[arg(long)]
    pub consensus_key_file: PathBuf,
    /// `host:port` the node's p2p listener is reachable at.
    #[arg(long)]
    pub p2p: String,
    /// RPC and output flags.
    #[command(flatten)]
    pub chain: ChainOpts,
}

/// Announce a bonded validator's consensus key and p2p address, making it
/// eligible for the committee elected at the next committee epoch boundary.
pub async fn announce(args: AnnounceArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let consensus = keys::load(&args.consensus_key_file)?;
    let consensus_key = consensus.account();
    let chain = ChainClient::new(&args.chain.rpc);
    let chain_id = chain.head().await?.chain_id;
    let kind = TxKind::AnnounceValidator {
        consensus_key,
        p2p_addr: args.p2p.clone(),
        possession: consensus.sign(&possession_message(&chain_id, &key.account())),
    };
    let done = send(&chain, &key, kind, "announce").await?;
    print(
        args.chain.json,
        json!({"tx": done.id, "height": done.height, "validator": key.account(),
            "consensus_key": consensus_key, "p2p_addr": args.p2p}),
        format!(
            "announced validator {} at {} (consensus key {consensus_key}) in block {}",
            key.account(),
            args.p2p,
            done.height
        ),
    )
}

/// Bond the key's stake as a validator.
pub async fn stake(args: StakeArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let kind = TxKind::BondValidator {
        amount: args.amount,
        take_ppm: args.take_ppm,
    };
    let done = send(&chain, &key, kind, "stake").await?;
    report(
        &chain,
        args.chain.json,
        done,
        key.account(),
        key.account(),
        args.amount,
        "bonded",
    )
    .await
}

/// Start unbonding own or delegated stake.
pub async fn unstake(args: UnstakeArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let validator = match &args.validator {
        Some(v) => parse_account("--validator", v)?,
        None => key.account(),
    };
    let chain = ChainClient::new(&args.chain.rpc);
    let kind = TxKind::Unbond {
        validator,
        amount: args.amount,
    };
    let done = send(&chain, &key, kind, "unstake").await?;
    report(
        &chain,
        args.chain.json,
        done,
        key.account(),
        validator,
        args.amount,
        "unbonding",
    )
    .await
}

/// Delegate the key's stake to a validator.
pub async fn delegate(args: DelegateArgs) -> Result<()> {
    let key = keys::load(&args.key)?;
    let validator = parse_account("--validator", &args.validator)?;
    let chain = ChainClient::new(&args.chain.rpc);
    let kind = TxKind::Delegate {
        validator,
        amount: args.amount,
    };
    let done = send(&chain, &key, kind, "delegate").await?;
    report(
        &chain,
        args.chain.json,
        done,
        key.account(),
        validator,
        args.amount,
        "delegated",
    )
    .await
}

/// Print the outcome: the transaction, the sender's balance, and the
/// validator's stake afterwards (zero stake once it fully unbonded).
async fn report(
    chain: &ChainClient,
    json: bool,
    done: agora_chain_client::Committed,
    sender: AccountId,
    validator: AccountId,
    amount: u64,
    verb: &str,
) -> Result<()> {
    let balance = balance_of(chain, &sender).await?;
    let v = chain
        .validators()
        .await
        .context("reading validators")?
        .into_iter()
        .find(|v| v.id == validator)
        .unwrap_or(ValidatorStake {
            id: validator,
            self_stake: 0,
            delegated: 0,
            take_ppm: 0,
        });
    print(
        json,
        json!({
            "tx": done.id, "height": done.height, "account": sender, "amount": amount,
            "balance": balance,
            "validator": { "id": v.id, "self_stake": v.self_stake, "delegated": v.delegated, "take_ppm": v.take_ppm },
        }),
        format!(
            "{verb} {amount} with validator {validator} in block {} (tx {}); validator stake {} own + {} delegated; balance now {balance}",
            done.height, done.id, v.self_stake, v.delegated
        ),
    )
}
