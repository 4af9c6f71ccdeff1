//! Why a transaction, block or genesis file is rejected.

use agora_types::{AccountId, Amount, Hash32, Height, ModelId};

/// Why a transaction was rejected; a rejected transaction changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// No dataset with this id is registered.
    #[error("unknown dataset {0}")]
    UnknownDataset(Hash32),
    /// A dataset with this id is already registered.
    #[error("dataset {0} is already registered")]
    DatasetExists(Hash32),
    /// No algorithm with this id is registered.
    #[error("unknown algorithm {0}")]
    UnknownAlgorithm(Hash32),
    /// An algorithm with this id is already registered.
    #[error("algorithm {0} is already registered")]
    AlgorithmExists(Hash32),
    /// A dataset or algorithm entry must name its registering sender as owner.
    #[error("entry owner {owner} is not the sender {sender}")]
    OwnerMismatch {
        /// Who sent the registration.
        sender: AccountId,
        /// Who the entry names as owner.
        owner: AccountId,
    },
    /// The dataset's access policy does not allow the algorithm.
    #[error("dataset {dataset}'s policy does not allow algorithm {algorithm}")]
    PolicyRefuses {
        /// The dataset.
        dataset: Hash32,
        /// The algorithm.
        algorithm: Hash32,
    },
    /// The account is not one of the dataset's hosts (or no longer a provider).
    #[error("{host} does not host dataset {dataset}")]
    NotAHost {
        /// The dataset.
        dataset: Hash32,
        /// The account.
        host: AccountId,
    },
    /// No open data job with this id.
    #[error("unknown or already settled data job {0}")]
    UnknownDataJob(Hash32),
    /// Only the job's host settles it; only its buyer cancels it.
    #[error("the sender may not {action} data job {job}")]
    NotYourDataJob {
        /// The job.
        job: Hash32,
        /// What it tried.
        action: &'static str,
    },
    /// The job is already audited (sampled or requested).
    #[error("job {index} of batch {batch} is already audited")]
    AlreadyAudited {
        /// The batch.
        batch: Hash32,
        /// The job.
        index: u64,
    },
    /// No bonded validator other than the provider and the requester could be drawn.
    #[error("no validator can be drawn to audit it")]
    NoAuditor,
    /// The sender already has an agent registered.
    #[error("account {0} already has an agent registered")]
    AgentExists(AccountId),
    /// No agent is registered under this account.
    #[error("no agent registered as {0}")]
    UnknownAgent(AccountId),
    /// An agent update named the wrong sequence.
    #[error("agent update sequence must be {expected}, got {got}")]
    AgentSequence {
        /// The one required.
        expected: u64,
        /// The one sent.
        got: u64,
    },
    /// A log anchor would rewrite or shrink what earlier anchors fixed.
    #[error("log anchor refused: {0}")]
    BadAnchor(String),
    /// No payment with this id can carry feedback (never made, too old, or
    /// its feedback was given already).
    #[error("payment {0} entitles no feedback (unknown, outside the feedback window, or used)")]
    NoFeedbackRight(Hash32),
    /// The sender may not rate or pay this way (its own agent, another's payment).
    #[error("not allowed: {0}")]
    FeedbackRefused(&'static str),
    /// Two receipts reported as equivocation are not proof of it.
    #[error("not an equivocation: {0}")]
    NotEquivocation(&'static str),
    /// A receipt does not match the job it settles.
    #[error("receipt for data job {job} does not match it: {reason}")]
    ReceiptMismatch {
        /// The job.
        job: Hash32,
        /// What differs.
        reason: String,
    },
    /// The buyer tried to cancel before the job timeout.
    #[error("data job {job} cannot be cancelled before height {from}")]
    JobNotTimedOut {
        /// The job.
        job: Hash32,
        /// First height a cancel is accepted.
        from: Height,
    },
    /// Signed for another chain.
    #[error("transaction is for chain {got:?}, this chain is {expected:?}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The transaction's chain.
        got: String,
    },
    /// The signature does not verify under the sender's key.
    #[error("invalid signature for sender {0}")]
    BadSignature(AccountId),
    /// The nonce is not the sender's next one (replay or gap).
    #[error("bad nonce for {account}: expected {expected}, got {got}")]
    BadNonce {
        /// Sender.
        account: AccountId,
        /// The sender's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The sender cannot cover the amount.
    #[error("insufficient balance for {account}: needs {needed}, has {available}")]
    InsufficientBalance {
        /// Sender.
        account: AccountId,
        /// Amount required.
        needed: Amount,
        /// Amount held.
        available: Amount,
    },
    /// A zero transfer or stake does nothing and is refused.
    #[error("amount must be positive")]
    ZeroAmount,
    /// A model named by the transaction is not in the registry.
    #[error("unknown model {0}")]
    UnknownModel(ModelId),
    /// The model id is already registered.
    #[error("model {0} is already registered")]
    ModelExists(ModelId),
    /// Another model already uses this name.
    #[error("model name {0:?} is already taken")]
    ModelNameTaken(String),
    /// A registered model must name its registering sender as owner.
    #[error("model owner {owner} is not the sender {sender}")]
    ModelOwnerMismatch {
        /// Who sent the registration.
        sender: AccountId,
        /// Who the entry names as owner.
        owner: AccountId,
    },
    /// The model asks a larger royalty share than the chain allows.
    #[error("royalty {got} ppm is above the chain's maximum of {maximum} ppm")]
    RoyaltyTooHigh {
        /// Chain maximum (`Params::max_royalty_ppm`).
        maximum: u32,
        /// Asked share.
        got: u32,
    },
    /// The provider does not list the model (a channel is opened for, or receipts are committed for).
    #[error("provider {provider} does not serve model {model}")]
    ModelNotServed {
        /// The provider.
        provider: AccountId,
        /// The model.
        model: ModelId,
    },
    /// No weight commitment from the previous epoch to reveal.
    #[error("no weights for model {model} were committed in the epoch before {epoch}")]
    NoWeightCommit {
        /// The model.
        model: ModelId,
        /// The current epoch.
        epoch: u64,
    },
    /// The revealed weights and salt do not hash to the commitment.
    #[error("revealed weights do not match the commitment")]
    WeightsMismatch,
    /// The sender is not a registered provider.
    #[error("{0} is not a registered provider")]
    NotAProvider(AccountId),
    /// Stake below the chain's minimum.
    #[error("stake {got} is below the minimum provider stake {minimum}")]
    StakeTooLow {
        /// Chain minimum.
        minimum: Amount,
        /// Offered stake.
        got: Amount,
    },
    /// A field is empty, too long, or malformed.
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A balance would overflow.
    #[error("amount overflow")]
    Overflow,
    /// The announced consensus key did not sign the proof of possession.
    #[error("the possession proof is not consensus key {0}'s signature for this validator on this chain")]
    BadPossession(AccountId),
    /// Another validator already announced this consensus key.
    #[error("consensus key {0} is already announced by another validator")]
    ConsensusKeyTaken(AccountId),
    /// The account has no bonded stake as a validator.
    #[error("{0} is not a validator")]
    NotAValidator(AccountId),
    /// The sender cannot pay the transaction fee.
    #[error("the transaction fee is {fee}; the account holds {available}")]
    CannotPayFee {
        /// `params.tx_fee`.
        fee: Amount,
        /// The sender's balance.
        available: Amount,
    },
    /// A transfer that would create an account carries less than the minimum.
    #[error("a transfer to a new account must carry at least {minimum}, got {got}")]
    NewAccountTooSmall {
        /// `params.min_new_account_balance`.
        minimum: Amount,
        /// The transfer's amount.
        got: Amount,
    },
    /// A validator's own bond would stay below the chain's minimum.
    #[error("a validator's own bond must be at least {minimum}; this leaves {got}")]
    BondTooLow {
        /// `params.min_validator_bond`.
        minimum: Amount,
        /// The own stake after this transaction.
        got: Amount,
    },
    /// The job was not drawn for audit, or drawn for another validator:
    /// only the assigned auditor's verdict counts.
    #[error("job {index} of batch {batch} is not assigned to {auditor} for audit")]
    NotAssigned {
        /// The batch.
        batch: Hash32,
        /// The job.
        index: u64,
        /// Who sent the verdict.
        auditor: AccountId,
    },
    /// A batch's audits are drawn in the block after its commit; verdicts wait for that.
    #[error("the audits of batch {0} are not drawn yet (next block)")]
    AuditsNotDrawn(Hash32),
    /// The provider already committed this receipts root in a live batch:
    /// committing it again would have its jobs audited, and passed, twice.
    #[error("receipts root {0} is already committed in a live batch")]
    DuplicateBatch(Hash32),
    /// More receipts in one batch than `max_batch_jobs`.
    #[error("a batch holds at most {max} receipts, got {got}")]
    BatchTooLarge {
        /// `params.audit.max_batch_jobs`.
        max: u64,
        /// The batch's count.
        got: u64,
    },
    /// This block already holds `max_batches_per_block` new batches.
    #[error(
        "this block already holds the most receipt batches a block may ({0}); retry in the next"
    )]
    BlockBatchesFull(u32),
    /// Less is bonded than the unbond asks for.
    #[error("cannot unbond {needed}: only {bonded} is bonded")]
    InsufficientStake {
        /// What was asked.
        needed: Amount,
        /// What is bonded.
        bonded: Amount,
    },
    /// No open channel has this id.
    #[error("no open channel {0}")]
    UnknownChannel(Hash32),
    /// The sender is not the party this channel action needs.
    #[error("only the channel's {role} may do this")]
    NotChannelParty {
        /// `client` or `provider`.
        role: &'static str,
    },
    /// The voucher is not signed by the channel's client.
    #[error("voucher signature is not the channel client's")]
    BadVoucherSignature,
    /// The voucher does not owe more than was already paid.
    #[error("voucher owes {cumulative} in total but {paid} was already paid")]
    StaleVoucher {
        /// What the voucher owes in total.
        cumulative: Amount,
        /// What was paid so far.
        paid: Amount,
    },
    /// The voucher owes more than the channel holds.
    #[error("voucher owes {cumulative} but the channel holds {deposit}")]
    VoucherExceedsDeposit {
        /// What the voucher owes in total.
        cumulative: Amount,
        /// Everything ever deposited.
        deposit: Amount,
    },
    /// The channel is closing; it takes no more deposits and cannot start closing again.
    #[error("channel {0} is already closing")]
    ChannelClosing(Hash32),
    /// The client has not started closing, or the challenge window is still open.
    #[error("channel {channel} cannot be finished before height {at}")]
    ChallengeOpen {
        /// The channel.
        channel: Hash32,
        /// First height at which it can be finished (0: closing never started).
        at: Height,
    },
    /// A voucher counts fewer jobs than the channel already settled.
    #[error("voucher covers {jobs} jobs but {settled} were already settled")]
    JobsDecreased {
        /// Jobs in the voucher.
        jobs: u64,
        /// Jobs settled before.
        settled: u64,
    },
    /// Provider collateral below the multiple of a reference job's price.
    #[error(
        "collateral {got} is below {required}: {multiple} x {job_price}, the price of a \
         {tokens}+{tokens}-token job at the offered price"
    )]
    CollateralTooLow {
        /// Smallest acceptable collateral.
        required: Amount,
        /// Offered collateral.
        got: Amount,
        /// Reference jobs of collateral required (`collateral_multiple`, ×8 for statistical judging).
        multiple: u64,
        /// Price of the reference job.
        job_price: Amount,
        /// `reference_job_tokens`.
        tokens: u64,
    },
    /// The provider's collateral is still answerable for audits.
    #[error(
        "collateral of {provider} stays locked until height {until} (audits or disputes pending)"
    )]
    CollateralLocked {
        /// The provider.
        provider: AccountId,
        /// First height at which it may deregister.
        until: Height,
    },
    /// The account was slashed for a confirmed failed audit and may not serve again.
    #[error("provider {0} was slashed and may not register or be audited again")]
    ProviderSlashed(AccountId),
    /// No live receipt batch has this id (never committed, or its audit window closed and it was pruned).
    #[error("no receipt batch {0} within its audit window")]
    UnknownBatch(Hash32),
    /// The leaf index is not one of the batch's jobs.
    #[error("index {index} is outside the batch's jobs {first}..{end}")]
    IndexOutsideBatch {
        /// Requested index.
        index: u64,
        /// First job index.
        first: u64,
        /// One past the last job index.
        end: u64,
    },
    /// A validator may not audit its own receipts.
    #[error("a provider may not audit its own receipts")]
    SelfAudit,
    /// This validator already gave a verdict on this job.
    #[error("{auditor} already gave a verdict on job {index} of batch {batch}")]
    DuplicateVerdict {
        /// The batch.
        batch: Hash32,
        /// The job.
        index: u64,
        /// The auditor.
        auditor: AccountId,
    },
    /// A dispute about this job is already open.
    #[error("dispute {0} about this job is already open")]
    DisputeExists(Hash32),
    /// No open dispute has this id (never opened, resolved, or expired).
    #[error("no open dispute {0}")]
    UnknownDispute(Hash32),
    /// The sender is not on the dispute's committee.
    #[error("{voter} is not on the committee of dispute {dispute}")]
    NotOnCommittee {
        /// The dispute.
        dispute: Hash32,
        /// The sender.
        voter: AccountId,
    },
    /// The committee member already voted on this dispute.
    #[error("{voter} already voted on dispute {dispute}")]
    AlreadyVoted {
        /// The dispute.
        dispute: Hash32,
        /// The sender.
        voter: AccountId,
    },
}

/// Why a block cannot be applied; the state stays as it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Block for another chain.
    #[error("block is for chain {got:?}, expected {expected:?}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The block's chain.
        got: String,
    },
    /// Not the next height.
    #[error("block height {got}, expected {expected}")]
    WrongHeight {
        /// Next height.
        expected: Height,
        /// Block's height.
        got: Height,
    },
    /// Does not extend the current head.
    #[error("block parent {got}, expected {expected}")]
    WrongParent {
        /// Current head.
        expected: Hash32,
        /// Block's parent.
        got: Hash32,
    },
    /// Timestamp earlier than the parent's.
    #[error("block timestamp {got} is before the parent's {parent}")]
    TimeWentBackwards {
        /// Parent timestamp.
        parent: u64,
        /// Block timestamp.
        got: u64,
    },
    /// Header's transaction root does not match the transactions.
    #[error("transaction root mismatch")]
    TxRootMismatch,
    /// Header's state root does not match the state after applying the block.
    #[error("state root mismatch: header {header}, computed {computed}")]
    StateRootMismatch {
        /// Root in the header.
        header: Hash32,
        /// Root computed.
        computed: Hash32,
    },
    /// A transaction in the block is invalid.
    #[error("transaction {index} ({id}) is invalid: {error}")]
    InvalidTx {
        /// Position in the block.
        index: usize,
        /// Transaction id.
        id: Hash32,
        /// Why.
        error: TxError,
    },
}

/// Why a genesis file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// Not valid TOML or wrong shape.
    #[error("genesis is not valid TOML: {0}")]
    Parse(String),
    /// Valid TOML but inconsistent content.
    #[error("invalid genesis: {0}")]
    Invalid(String),
}
