//! The daemon's view of the chain, the providers and the verifier.

use std::future::Future;

use agora_types::audit::JobProof;
use agora_types::{AccountId, Amount, Hash32, ModelId, Transcript, TxKind};

/// A committed batch of receipts, as the auditor needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchInfo {
    /// Batch id on chain.
    pub id: Hash32,
    /// Provider that committed it.
    pub provider: AccountId,
    /// Merkle root over the receipt leaves.
    pub root: Hash32,
    /// First leaf index the batch covers.
    pub first_index: u64,
    /// Number of leaves it covers from `first_index`.
    pub count: u64,
    /// Height of the block that committed it.
    pub height: u64,
    /// The model every receipt in it must name (a channel settlement's is
    /// the channel's model; `None` for a batch of data-job receipts, which
    /// this auditor leaves to the data auditor).
    pub model: Option<ModelId>,
    /// The jobs the chain drew for audit and each one's auditor, in the
    /// block after the commit (`None` until then). Only the drawn auditor's
    /// verdict counts; channel settlements are drawn like commits.
    pub audits: Option<Vec<(u64, AccountId)>>,
}

/// An open dispute, as a committee member needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisputeInfo {
    /// Dispute id on chain.
    pub id: Hash32,
    /// The batch and leaf index of the disputed job.
    pub batch: Hash32,
    /// Merkle root of that batch.
    pub root: Hash32,
    /// Leaf index inside the batch's tree.
    pub index: u64,
    /// Leaves under the batch's root (as the chain recorded it).
    pub leaf_count: u64,
    /// The model the batch was committed for.
    pub model: Option<ModelId>,
    /// Accused provider.
    pub provider: AccountId,
    /// Validators asked to re-check.
    pub committee: Vec<AccountId>,
    /// Committee members that already voted.
    pub voted: Vec<AccountId>,
    /// Height of the block that opened it.
    pub opened_at: u64,
}

/// What the chain records about one provider of a model, the basis of weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProviderScore {
    /// The provider.
    pub provider: AccountId,
    /// Audits it passed.
    pub passed: u64,
    /// Audits it failed (confirmed by a committee).
    pub failed: u64,
    /// Failing verdicts on its jobs judged statistically (a non-replayable provider).
    pub flagged: u64,
    /// Collateral it locks: its weight never exceeds what it has at stake.
    pub stake: Amount,
    /// Price of one reference job at its price (`reference_job_tokens` in
    /// and out): what one passed audit shows of work done.
    pub job_value: Amount,
}

/// Where a registered provider serves and how its jobs are judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// Its registered endpoint.
    pub endpoint: String,
    /// How its jobs are judged: exact replay, or statistically for an
    /// upstream provider (flagged on chain as not replayable).
    pub judging: Judging,
}

/// How a job is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judging {
    /// Seeded replay token for token, with commitments (agora's own engine).
    Replay,
    /// Plausibility of the tokens under the model (an upstream server's
    /// jobs cannot be replayed); never judged by exact replay.
    Statistical,
}

/// The verifier's judgement of one transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    /// True when the job is consistent with honest generation by the claimed model.
    pub passed: bool,
    /// Hash of the verifier's evidence (scores, reasons).
    pub evidence: Hash32,
    /// Human-readable reasons, for logs.
    pub summary: String,
}

/// Why the daemon could not do something this round.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The chain RPC failed or refused a transaction.
    #[error("chain: {0}")]
    Chain(String),
    /// The verifier could not run (not a verdict on the provider).
    #[error("verifier: {0}")]
    Checker(String),
}

/// Why a transcript could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The provider did not answer or answered with an error; worth retrying.
    #[error("provider unreachable or failing: {0}")]
    Unavailable(String),
    /// The provider says it has no such job (it will not appear later).
    #[error("provider has no transcript for this job")]
    Missing,
    /// The provider answered with something that is not a transcript.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

/// An audit someone requested (`RequestValidation`) rather than the draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedAudit {
    /// Height of the block with the request.
    pub height: u64,
    /// The job's leaf index.
    pub index: u64,
    /// The validator drawn for it.
    pub auditor: AccountId,
    /// Its batch.
    pub batch: BatchInfo,
}

/// What the auditor reads from and writes to the chain.
pub trait AuditChain: Send + Sync {
    /// Height of the latest final block.
    fn head(&self) -> impl Future<Output = Result<u64, AuditError>> + Send;
    /// Batches committed in blocks above `height`, oldest first.
    fn batches_since(
        &self,
        height: u64,
    ) -> impl Future<Output = Result<Vec<BatchInfo>, AuditError>> + Send;
    /// Requested audits made in blocks above `height`: (height of the
    /// request, the job's index, its drawn auditor, its batch). None by
    /// default, for chains without validation requests.
    fn validations_since(
        &self,
        height: u64,
    ) -> impl Future<Output = Result<Vec<RequestedAudit>, AuditError>> + Send {
        let _ = height;
        async { Ok(Vec::new()) }
    }
    /// Blocks after a batch within which verdicts are accepted.
    fn audit_window(&self) -> impl Future<Output = Result<u64, AuditError>> + Send;
    /// Open disputes.
    fn disputes(&self) -> impl Future<Output = Result<Vec<DisputeInfo>, AuditError>> + Send;
    /// Where a registered provider serves and how its jobs are judged
    /// (`None` once it deregistered).
    fn served(
        &self,
        provider: &AccountId,
    ) -> impl Future<Output = Result<Option<Served>, AuditError>> + Send;
    /// Blocks per epoch of the reward distribution (0: no rewards, no weights).
    fn tempo_blocks(&self) -> impl Future<Output = Result<u64, AuditError>> + Send;
    /// Registered providers of `model` with their audit records.
    fn scores(
        &self,
        model: &ModelId,
    ) -> impl Future<Output = Result<Vec<ProviderScore>, AuditError>> + Send;
    /// Sign and submit a verdict, vote or weights transaction, waiting until it is included.
    fn submit(&self, kind: TxKind) -> impl Future<Output = Result<(), AuditError>> + Send;
}

/// Where transcripts come from: the provider that ran the job.
pub trait TranscriptSource: Send + Sync {
    /// The transcript of leaf `index` of the batch with `root`, from the provider at `endpoint`.
    fn fetch(
        &self,
        endpoint: &str,
        root: &Hash32,
        index: u64,
    ) -> impl Future<Output = Result<JobProof, FetchError>> + Send;
}

/// The verifier: replays a transcript with the claimed model.
pub trait JobChecker: Send + Sync {
    /// Judge one transcript (its receipt is already known to be in the batch) as `judging` says.
    fn check(
        &self,
        transcript: Transcript,
        judging: Judging,
    ) -> impl Future<Output = Result<CheckOutcome, AuditError>> + Send;
}
