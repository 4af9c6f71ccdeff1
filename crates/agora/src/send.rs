//! What every transaction-sending command shares: RPC and output flags,
//! parsing accounts, waiting for inclusion, printing text or stable JSON.

use std::time::Duration;

use agora_chain_client::{ChainClient, Committed};
use agora_types::{AccountId, Hash32, Keypair, TxKind};
use anyhow::{Context, Result};
use clap::Args;
use serde_json::Value;

/// How long a command waits for its transaction to be included.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Flags every chain command takes.
#[derive(Args, Debug, Clone)]
pub struct ChainOpts {
    /// Chain RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    pub rpc: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parse an account id given on the command line as `flag`.
pub fn parse_account(flag: &str, text: &str) -> Result<AccountId> {
    text.trim()
        .parse()
        .with_context(|| format!("{flag} is not an account id (64 hex characters)"))
}

/// Parse a 32-byte id (a channel, job, dataset, blob ...) given on the
/// command line as `flag`, naming what it should be in the error.
pub fn parse_hash(flag: &str, what: &str, text: &str) -> Result<Hash32> {
    text.trim()
        .parse()
        .with_context(|| format!("{flag} {text:?} is not a {what} id (64 hex characters)"))
}

/// Sign, submit and wait for inclusion; a rejection names what was tried and why.
pub async fn send(
    chain: &ChainClient,
    key: &Keypair,
    kind: TxKind,
    what: &str,
) -> Result<Committed> {
    chain
        .send_and_confirm(key, kind, COMMIT_TIMEOUT)
        .await
        .with_context(|| format!("{what} from {} failed", key.account()))
}

/// An account's committed balance.
pub async fn balance_of(chain: &ChainClient, account: &AccountId) -> Result<u64> {
    Ok(chain
        .account(account)
        .await
        .context("reading the account")?
        .balance)
}

/// Print `value` as one line of JSON, or `text`.
pub fn print(json: bool, value: Value, text: String) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(&value)?);
    } else {
        println!("{text}");
    }
    Ok(())
}
