//! The rows an explorer shows, in the JSON the chain RPC serves under `/explorer`.

use agora_types::{AccountId, Amount, Earnings, Hash32, Height, ModelId, Price, ProviderAudits};
use serde::{Deserialize, Serialize};

/// One transaction as a block list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSummary {
    /// Transaction id.
    pub id: Hash32,
    /// Sender.
    pub from: AccountId,
    /// The action, as its JSON `type` tag (`transfer`, `submit_batch`, ...).
    pub kind: String,
}

/// One committed block as a block list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSummary {
    /// Height.
    pub height: Height,
    /// Block id.
    pub id: Hash32,
    /// Proposer's timestamp.
    pub timestamp_ms: u64,
    /// Who proposed it.
    pub proposer: AccountId,
    /// How many transactions it holds (`txs` keeps at most [`crate::MAX_TXS_KEPT`]).
    pub tx_count: usize,
    /// Its first transactions.
    pub txs: Vec<TxSummary>,
}

/// `GET /explorer/blocks`: a page of blocks, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockPage {
    /// The committed height when the page was read.
    pub head: Height,
    /// The blocks, newest first.
    pub blocks: Vec<BlockSummary>,
}

/// Issuance figures after one block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyPoint {
    /// Height.
    pub height: Height,
    /// Block timestamp.
    pub timestamp_ms: u64,
    /// Everything in existence.
    pub total_supply: u128,
    /// Destroyed by slashing so far.
    pub burned: u128,
    /// Minted by emission so far.
    pub emitted: u128,
    /// Minted but not paid out yet.
    pub emission_pool: Amount,
}

/// Who received a share of a tempo's emission, in which capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A provider's incentive.
    Provider,
    /// A validator's dividends (and take).
    Validator,
    /// A model owner's cut.
    Owner,
    /// Anyone else: a delegator's share of its validator's dividends.
    Delegator,
}

/// One recipient of a tempo's emission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The account paid.
    pub account: AccountId,
    /// In which capacity.
    pub role: Role,
    /// Base units paid.
    pub amount: u128,
}

/// What one reward distribution paid, split by role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TempoEmission {
    /// Height of the block that paid it.
    pub height: Height,
    /// The epoch it started (`height / tempo_blocks`).
    pub epoch: u64,
    /// Everything paid.
    pub total: u128,
    /// Paid to providers.
    pub providers: u128,
    /// Paid to validators.
    pub validators: u128,
    /// Paid to model owners.
    pub owners: u128,
    /// Paid to delegators.
    pub delegators: u128,
    /// Every recipient, largest first.
    pub recipients: Vec<Recipient>,
}

/// A provider's collateral taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slash {
    /// Height of the block that slashed it.
    pub height: Height,
    /// The provider.
    pub provider: AccountId,
    /// Collateral taken.
    pub amount: Amount,
    /// `failed_audit` when a committee confirmed a failure in that block, else `equivocation`.
    pub reason: String,
}

/// An account's cumulative earnings after a block that changed them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarningsPoint {
    /// Height.
    pub height: Height,
    /// Cumulative earnings by source.
    pub earned: Earnings,
}

/// One account as the accounts list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRow {
    /// The account.
    pub id: AccountId,
    /// Spendable balance.
    pub balance: Amount,
    /// Committed nonce.
    pub nonce: u64,
    /// Earnings by source since genesis.
    pub earned: Earnings,
}

/// `GET /explorer/accounts`: one page of accounts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountPage {
    /// Accounts matching the filter, on all pages.
    pub total: usize,
    /// This page.
    pub accounts: Vec<AccountRow>,
}

/// One provider, registered or not, with its audit record and earnings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderRow {
    /// The provider's account.
    pub id: AccountId,
    /// Where it serves (empty once deregistered).
    pub endpoint: String,
    /// Models served (none once deregistered).
    pub models: Vec<ModelId>,
    /// Its price (`None` once deregistered).
    pub price: Option<Price>,
    /// Collateral locked now.
    pub stake: Amount,
    /// Whether it is registered now.
    pub registered: bool,
    /// Its audit record, slashing included.
    pub audits: ProviderAudits,
    /// Earnings by source since genesis.
    pub earned: Earnings,
    /// Spendable balance.
    pub balance: Amount,
}
