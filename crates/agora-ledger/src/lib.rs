//! The ledger: accounts, the model and provider registries, payment
//! channels with model royalties, validator staking, earnings, receipt audits
//! (Proof of Sampling), and the rules that change them.
//!
//! Everything here is pure and deterministic: no I/O, no clocks, no
//! randomness. [`apply_block`] is a function of (state, block), so any node
//! (and later a BFT engine) computes the same state from the same blocks.

mod agent;
mod audits;
mod block;
mod channels;
mod committee;
mod data;
mod dispatch;
mod emission;
mod error;
mod genesis;
mod registry;
mod rewards;
mod royalties;
mod staking;
mod state;
mod transfer;
mod weights;

pub use block::{
    apply_block, apply_block_with, build_block, build_block_with, BlockCandidate, BuiltBlock,
};
pub use channels::Channel;
pub use committee::{Committee, CommitteeMember, ValidatorEndpoint, MAX_P2P_ADDR_LEN};
pub use emission::block_emission;
pub use error::{BlockError, GenesisError, TxError};
pub use genesis::{Genesis, GenesisAccount};
pub use royalties::SettlementSplit;
pub use staking::{Slashed, Unbonding, Validator, PPM};
// Chain parameters live in `agora_types::params`; re-exported so the ledger
// paths keep working.
pub use agora_types::params::{
    AuditParams, CommitteeParams, Params, BASE_UNITS_PER_TOKEN, DEFAULT_CHALLENGE_BLOCKS,
    DEFAULT_COMMITTEE_EPOCH_BLOCKS, DEFAULT_EMISSION_PER_BLOCK, DEFAULT_MAX_COMMITTEE,
    DEFAULT_MAX_ROYALTY_PPM, DEFAULT_MIN_NEW_ACCOUNT_BALANCE, DEFAULT_MIN_VALIDATOR_BOND,
    DEFAULT_MODEL_REGISTRATION_FEE, DEFAULT_SUPPLY_CAP, DEFAULT_TEMPO_BLOCKS, DEFAULT_TX_FEE,
    DEFAULT_UNBONDING_BLOCKS,
};
pub use state::{account_key, Account, State};
pub use weights::Markets;
