//! Chain parameters fixed at genesis: the `[params]` table and its
//! `[params.audit]` and `[params.committee]` sub-tables, with their defaults.
//!
//! They live here, not in the ledger, so that clients of the chain (the RPC
//! client, validators) can read them without depending on the state machine.
//! Their borsh encoding is part of the state root: field order and derives
//! must not change.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::Amount;

/// Chain parameters fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Params {
    /// Smallest collateral a provider may lock.
    pub min_provider_stake: Amount,
    /// Smallest own stake a validator may bond: what makes every audit
    /// verdict, dispute vote and false accusation cost its author something.
    #[serde(default = "default_min_validator_bond")]
    pub min_validator_bond: Amount,
    /// Fee every applied transaction pays, burned: what makes flooding the
    /// mempool, the state and the audit path cost the flooder.
    #[serde(default = "default_tx_fee")]
    pub tx_fee: Amount,
    /// Smallest transfer that may create an account, so the state cannot be
    /// filled with dust accounts.
    #[serde(default = "default_min_new_account_balance")]
    pub min_new_account_balance: Amount,
    /// Blocks a provider has to settle after a client starts closing a channel.
    #[serde(default = "default_challenge_blocks")]
    pub channel_challenge_blocks: u64,
    /// Blocks unbonding stake waits (slashable) before it returns.
    #[serde(default = "default_unbonding_blocks")]
    pub unbonding_blocks: u64,
    /// Most base units that will ever exist (genesis allocations included).
    #[serde(default = "default_supply_cap")]
    pub supply_cap: Amount,
    /// Emission of a block before any halving.
    #[serde(default = "default_emission_per_block")]
    pub emission_per_block: Amount,
    /// Audit parameters (Proof of Sampling): the `[params.audit]` table.
    #[serde(default)]
    pub audit: AuditParams,
    /// Largest royalty share a model may ask, in parts per million.
    #[serde(default = "default_max_royalty_ppm")]
    pub max_royalty_ppm: u32,
    /// Blocks per epoch: weights commit in one epoch and reveal in the next,
    /// and the emission pool is paid out at each epoch's first block (0: never).
    #[serde(default = "default_tempo_blocks")]
    pub tempo_blocks: u64,
    /// Consensus committee election: the `[params.committee]` table.
    #[serde(default)]
    pub committee: CommitteeParams,
    /// What registering a model burns, on top of the transaction fee: the
    /// registry is first come, first served by name and every entry stays
    /// in the state, so squatting names or filling the registry must cost.
    #[serde(default = "default_model_registration_fee")]
    pub model_registration_fee: Amount,
    /// The data market: the `[params.data]` table.
    #[serde(default)]
    pub data: crate::data::DataParams,
    /// The agent registry: the `[params.agents]` table.
    #[serde(default)]
    pub agents: crate::agent::AgentParams,
}

fn default_model_registration_fee() -> Amount {
    DEFAULT_MODEL_REGISTRATION_FEE
}

/// Default model registration fee: 0.001 token, as much as the least a
/// provider or validator stakes by default.
pub const DEFAULT_MODEL_REGISTRATION_FEE: Amount = 1_000_000;

fn default_min_validator_bond() -> Amount {
    DEFAULT_MIN_VALIDATOR_BOND
}

/// Default minimum validator bond: 0.001 token, the CLI's default bond; a
/// refuted accusation burns `false_accusation_slash_ppm` of at least this.
pub const DEFAULT_MIN_VALIDATOR_BOND: Amount = 1_000_000;

fn default_tx_fee() -> Amount {
    DEFAULT_TX_FEE
}

/// Default transaction fee: 100 base units (10^-7 token).
pub const DEFAULT_TX_FEE: Amount = 100;

fn default_min_new_account_balance() -> Amount {
    DEFAULT_MIN_NEW_ACCOUNT_BALANCE
}

/// Default smallest transfer to a new account: 1,000 base units.
pub const DEFAULT_MIN_NEW_ACCOUNT_BALANCE: Amount = 1_000;

fn default_tempo_blocks() -> u64 {
    DEFAULT_TEMPO_BLOCKS
}

/// Default tempo: 360 blocks (72 s at 200 ms), subtensor's tempo.
pub const DEFAULT_TEMPO_BLOCKS: u64 = 360;

fn default_max_royalty_ppm() -> u32 {
    DEFAULT_MAX_ROYALTY_PPM
}

/// Default largest royalty: 20% of every channel payment.
pub const DEFAULT_MAX_ROYALTY_PPM: u32 = 200_000;

fn default_supply_cap() -> Amount {
    DEFAULT_SUPPLY_CAP
}

fn default_emission_per_block() -> Amount {
    DEFAULT_EMISSION_PER_BLOCK
}

/// Base units per token.
pub const BASE_UNITS_PER_TOKEN: Amount = 1_000_000_000;
/// Default cap: 21 million tokens.
pub const DEFAULT_SUPPLY_CAP: Amount = 21_000_000 * BASE_UNITS_PER_TOKEN;
/// Default emission per block before halvings: 0.2 token (1 token per
/// second at 200 ms blocks).
pub const DEFAULT_EMISSION_PER_BLOCK: Amount = 200_000_000;

fn default_challenge_blocks() -> u64 {
    DEFAULT_CHALLENGE_BLOCKS
}

fn default_unbonding_blocks() -> u64 {
    DEFAULT_UNBONDING_BLOCKS
}

/// Default unbonding period: about an hour of 200 ms blocks.
pub const DEFAULT_UNBONDING_BLOCKS: u64 = 18_000;

/// Default challenge window: about 10 minutes of 200 ms blocks.
pub const DEFAULT_CHALLENGE_BLOCKS: u64 = 3_000;

impl Default for Params {
    fn default() -> Self {
        Params {
            min_provider_stake: 1,
            min_validator_bond: DEFAULT_MIN_VALIDATOR_BOND,
            tx_fee: DEFAULT_TX_FEE,
            min_new_account_balance: DEFAULT_MIN_NEW_ACCOUNT_BALANCE,
            channel_challenge_blocks: DEFAULT_CHALLENGE_BLOCKS,
            unbonding_blocks: DEFAULT_UNBONDING_BLOCKS,
            supply_cap: DEFAULT_SUPPLY_CAP,
            emission_per_block: DEFAULT_EMISSION_PER_BLOCK,
            audit: AuditParams::default(),
            max_royalty_ppm: DEFAULT_MAX_ROYALTY_PPM,
            tempo_blocks: DEFAULT_TEMPO_BLOCKS,
            committee: CommitteeParams::default(),
            model_registration_fee: DEFAULT_MODEL_REGISTRATION_FEE,
            data: crate::data::DataParams::default(),
            agents: crate::agent::AgentParams::default(),
        }
    }
}

/// Chain parameters of auditing (`[params.audit]` in genesis; every field optional).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditParams {
    /// Share of jobs validators audit, parts per million (used off chain with
    /// [`crate::audit::is_selected`]; on chain so every validator agrees).
    pub audit_rate_ppm: u32,
    /// Blocks after a batch's commit during which verdicts on it are accepted;
    /// the batch is pruned afterwards.
    pub audit_window_blocks: u64,
    /// Blocks a dispute stays open for committee votes before it expires.
    pub dispute_window_blocks: u64,
    /// Validators drawn to re-check a failed audit.
    pub committee_size: u32,
    /// Share of a slashed collateral paid to the accuser and agreeing members, ppm.
    pub auditor_reward_ppm: u32,
    /// Share of the accuser's bond burned when its accusation is refuted, ppm.
    pub false_accusation_slash_ppm: u32,
    /// Collateral must cover this many reference jobs at the provider's price.
    pub collateral_multiple: u64,
    /// Prompt and completion tokens of the reference job (a full context).
    pub reference_job_tokens: u64,
    /// Most receipts one `CommitReceipts` may cover: bounds the audit draw
    /// the chain makes for it and the work of every auditor scanning it.
    pub max_batch_jobs: u64,
    /// Most receipt batches (commits and channel settlements) one block may
    /// create: keeps a block's batches inside one RPC page.
    pub max_batches_per_block: u32,
    /// What a `RequestValidation` burns: the audit it asks for costs a
    /// validator a replay, so asking must cost too.
    pub validation_fee: Amount,
}

impl Default for AuditParams {
    fn default() -> Self {
        AuditParams {
            audit_rate_ppm: 100_000,
            audit_window_blocks: 3_000,
            dispute_window_blocks: 3_000,
            committee_size: 3,
            auditor_reward_ppm: 500_000,
            false_accusation_slash_ppm: 100_000,
            collateral_multiple: 20,
            reference_job_tokens: 2_048,
            max_batch_jobs: 4_096,
            max_batches_per_block: 128,
            validation_fee: 1_000,
        }
    }
}

/// Committee parameters: the `[params.committee]` table of the genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct CommitteeParams {
    /// Blocks per committee epoch; the election runs at each multiple (0: never).
    #[serde(default = "default_epoch_blocks")]
    pub epoch_blocks: u64,
    /// Most members of one committee.
    #[serde(default = "default_max_members")]
    pub max_members: u32,
}

fn default_epoch_blocks() -> u64 {
    DEFAULT_COMMITTEE_EPOCH_BLOCKS
}

fn default_max_members() -> u32 {
    DEFAULT_MAX_COMMITTEE
}

/// Default committee epoch: 3,600 blocks (12 minutes at 200 ms).
pub const DEFAULT_COMMITTEE_EPOCH_BLOCKS: u64 = 3_600;
/// Default committee size limit.
pub const DEFAULT_MAX_COMMITTEE: u32 = 100;

impl Default for CommitteeParams {
    fn default() -> Self {
        CommitteeParams {
            epoch_blocks: DEFAULT_COMMITTEE_EPOCH_BLOCKS,
            max_members: DEFAULT_MAX_COMMITTEE,
        }
    }
}
