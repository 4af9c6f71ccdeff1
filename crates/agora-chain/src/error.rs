//! Chain node errors.

use agora_ledger::TxError;

/// Why the node could not start or persist.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The embedded database failed.
    #[error("store: {0}")]
    Store(String),
    /// Stored data could not be decoded (corruption or version mismatch).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The data directory belongs to another genesis.
    #[error("data directory holds chain {stored} but genesis is {given}; use another --data-dir")]
    GenesisMismatch {
        /// Stored genesis hash.
        stored: String,
        /// Given genesis hash.
        given: String,
    },
    /// The genesis is unusable.
    #[error(transparent)]
    Genesis(#[from] agora_ledger::GenesisError),
    /// A finalized block does not follow the committed head.
    #[error("finalized block {got} does not follow the committed height {committed}")]
    OutOfOrder {
        /// Committed height.
        committed: u64,
        /// Height of the offered block.
        got: u64,
    },
    /// The consensus engine stopped or could not start.
    #[error("consensus: {0}")]
    Consensus(String),
}

macro_rules! store_error {
    ($($t:ty),*) => {$(
        impl From<$t> for ChainError {
            fn from(e: $t) -> Self {
                ChainError::Store(e.to_string())
            }
        }
    )*};
}
store_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Why a submitted transaction was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The bytes are not a transaction.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// Already in the mempool or already committed.
    #[error("transaction {0} is already known")]
    Duplicate(String),
    /// The mempool is full; retry later.
    #[error("mempool is full ({0} transactions); retry later")]
    MempoolFull(usize),
    /// This sender already has the most transactions one account may have waiting.
    #[error("this account already has {0} transactions waiting; retry after the next block")]
    SenderLimit(usize),
    /// The transaction does not apply on top of the committed state and the mempool.
    #[error(transparent)]
    Invalid(#[from] TxError),
}

impl SubmitError {
    /// Stable machine-readable code for the RPC.
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Malformed(_) => "malformed",
            SubmitError::Duplicate(_) => "duplicate",
            SubmitError::MempoolFull(_) => "mempool_full",
            SubmitError::SenderLimit(_) => "sender_limit",
            SubmitError::Invalid(e) => tx_error_code(e),
        }
    }
}

/// Stable machine-readable code of a ledger refusal: what the RPC answers
/// on submission and reports for a transaction dropped at block building.
pub fn tx_error_code(e: &TxError) -> &'static str {
    match e {
        TxError::WrongChain { .. } => "wrong_chain",
        TxError::BadSignature(_) => "bad_signature",
        TxError::BadNonce { .. } => "bad_nonce",
        TxError::InsufficientBalance { .. } => "insufficient_balance",
        TxError::ZeroAmount => "zero_amount",
        TxError::UnknownModel(_) => "unknown_model",
        TxError::ModelExists(_) => "model_exists",
        TxError::ModelNameTaken(_) => "model_name_taken",
        TxError::ModelOwnerMismatch { .. } => "model_owner_mismatch",
        TxError::RoyaltyTooHigh { .. } => "royalty_too_high",
        TxError::ModelNotServed { .. } => "model_not_served",
        TxError::NoWeightCommit { .. } => "no_weight_commit",
        TxError::WeightsMismatch => "weights_mismatch",
        TxError::NotAProvider(_) => "not_a_provider",
        TxError::StakeTooLow { .. } => "stake_too_low",
        TxError::InvalidField { .. } => "invalid_field",
        TxError::Overflow => "overflow",
        TxError::NotAValidator(_) => "not_a_validator",
        TxError::ConsensusKeyTaken(_) => "consensus_key_taken",
        TxError::BadPossession(_) => "bad_possession",
        TxError::InsufficientStake { .. } => "insufficient_stake",
        TxError::UnknownChannel(_) => "unknown_channel",
        TxError::NotChannelParty { .. } => "not_channel_party",
        TxError::BadVoucherSignature => "bad_voucher_signature",
        TxError::StaleVoucher { .. } => "stale_voucher",
        TxError::VoucherExceedsDeposit { .. } => "voucher_exceeds_deposit",
        TxError::ChannelClosing(_) => "channel_closing",
        TxError::ChallengeOpen { .. } => "challenge_open",
        TxError::JobsDecreased { .. } => "jobs_decreased",
        TxError::CollateralTooLow { .. } => "collateral_too_low",
        TxError::CollateralLocked { .. } => "collateral_locked",
        TxError::ProviderSlashed(_) => "provider_slashed",
        TxError::UnknownBatch(_) => "unknown_batch",
        TxError::IndexOutsideBatch { .. } => "index_outside_batch",
        TxError::SelfAudit => "self_audit",
        TxError::DuplicateVerdict { .. } => "duplicate_verdict",
        TxError::DisputeExists(_) => "dispute_exists",
        TxError::UnknownDispute(_) => "unknown_dispute",
        TxError::NotOnCommittee { .. } => "not_on_committee",
        TxError::AlreadyVoted { .. } => "already_voted",
        TxError::BondTooLow { .. } => "bond_too_low",
        TxError::CannotPayFee { .. } => "cannot_pay_fee",
        TxError::NewAccountTooSmall { .. } => "new_account_too_small",
        TxError::NotAssigned { .. } => "not_assigned",
        TxError::AuditsNotDrawn(_) => "audits_not_drawn",
        TxError::BatchTooLarge { .. } => "batch_too_large",
        TxError::DuplicateBatch(_) => "duplicate_batch",
        TxError::BlockBatchesFull(_) => "block_batches_full",
        TxError::UnknownDataset(_) => "unknown_dataset",
        TxError::DatasetExists(_) => "dataset_exists",
        TxError::UnknownAlgorithm(_) => "unknown_algorithm",
        TxError::AlgorithmExists(_) => "algorithm_exists",
        TxError::OwnerMismatch { .. } => "owner_mismatch",
        TxError::PolicyRefuses { .. } => "policy_refuses",
        TxError::NotAHost { .. } => "not_a_host",
        TxError::UnknownDataJob(_) => "unknown_data_job",
        TxError::NotYourDataJob { .. } => "not_your_data_job",
        TxError::NotEquivocation(_) => "not_equivocation",
        TxError::AgentExists(_) => "agent_exists",
        TxError::AlreadyAudited { .. } => "already_audited",
        TxError::NoAuditor => "no_auditor",
        TxError::UnknownAgent(_) => "unknown_agent",
        TxError::AgentSequence { .. } => "agent_sequence",
        TxError::BadAnchor(_) => "bad_anchor",
        TxError::NoFeedbackRight(_) => "no_feedback_right",
        TxError::FeedbackRefused(_) => "feedback_refused",
        TxError::ReceiptMismatch { .. } => "receipt_mismatch",
        TxError::JobNotTimedOut { .. } => "job_not_timed_out",
    }
}
