//! Receipt batches: every finished job joins the pending batch in the same
//! redb transaction that stores its transcript; the [`BatchCommitter`] seals
//! the pending jobs every `max_jobs` jobs or `max_age`, commits the batch's
//! Merkle root on chain (`CommitReceipts`), and `GET /v1/batches/{root}/{index}`
//! serves an auditor the job's transcript with the proof of its receipt leaf.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agora_chain_client::{ChainClient, ClientError};
use agora_engine::InferenceEngine;
use agora_types::audit::{receipt_leaf, JobProof};
use agora_types::merkle::{self, MerkleProof};
use agora_types::{codec, Hash32, Height, Keypair, ModelId, TxKind};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use borsh::{BorshDeserialize, BorshSerialize};
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};

use crate::access::authorize;
use crate::service::{error, path_rejection, Provider};
use crate::{prunable_through, ProviderError, Pruned, TranscriptStore};

/// Finished jobs not yet in a batch: sequence number -> job id.
const PENDING: TableDefinition<u64, &[u8]> = TableDefinition::new("pending_jobs");
/// Sealed batches by root.
pub(crate) const SEALED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sealed_batches");
/// Sealed batches not yet committed on chain: sequence number -> root.
const TO_COMMIT: TableDefinition<u64, &[u8]> = TableDefinition::new("batches_to_commit");
/// How long one commit transaction may take to land.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A sealed batch as the provider keeps it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SealedBatch {
    /// Merkle root over `leaves`.
    pub root: Hash32,
    /// Job ids in leaf order.
    pub jobs: Vec<Hash32>,
    /// [`receipt_leaf`] of each job's receipt.
    pub leaves: Vec<Hash32>,
    /// Height of the block that committed the root, once it did.
    pub committed_at: Option<Height>,
}

/// When the committer seals the pending jobs into a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Seal as soon as this many jobs are pending (and never put more in one batch).
    pub max_jobs: usize,
    /// Seal whatever is pending once the oldest has waited this long.
    pub max_age: Duration,
    /// How often the latest payment channel vouchers are settled on chain.
    pub settle_every: Duration,
    /// How often transcripts past every audit and dispute window are deleted.
    pub prune_every: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_jobs: 32,
            max_age: Duration::from_secs(10),
            settle_every: Duration::from_secs(30),
            prune_every: Duration::from_secs(60),
        }
    }
}

fn next_key(table: &impl ReadableTable<u64, &'static [u8]>) -> Result<u64, ProviderError> {
    Ok(table.last()?.map_or(0, |(k, _)| k.value() + 1))
}

/// Queue a finished job for the next batch, inside the transcript's write transaction.
pub(crate) fn append_pending(w: &WriteTransaction, job: &Hash32) -> Result<(), ProviderError> {
    let mut pending = w.open_table(PENDING)?;
    let key = next_key(&pending)?;
    pending.insert(key, job.0.as_slice())?;
    Ok(())
}

/// Take `jobs` out of the pending queue (they were paid through a channel,
/// whose settlement commits them), inside a voucher's write transaction.
pub(crate) fn unqueue_pending(w: &WriteTransaction, jobs: &[Hash32]) -> Result<(), ProviderError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut pending = w.open_table(PENDING)?;
    let mut keys = Vec::new();
    for entry in pending.iter()? {
        let (k, v) = entry?;
        if jobs.iter().any(|j| j.0.as_slice() == v.value()) {
            keys.push(k.value());
        }
    }
    for k in keys {
        pending.remove(k)?;
    }
    Ok(())
}

/// Create the batch tables in a fresh database.
pub(crate) fn create_tables(w: &WriteTransaction) -> Result<(), ProviderError> {
    w.open_table(PENDING)?;
    w.open_table(SEALED)?;
    w.open_table(TO_COMMIT)?;
    Ok(())
}

fn hash_of(bytes: &[u8]) -> Result<Hash32, ProviderError> {
    <[u8; 32]>::try_from(bytes).map(Hash32).map_err(|_| {
        ProviderError::Corrupt(format!("{} bytes where a hash was stored", bytes.len()))
    })
}

impl TranscriptStore {
    /// Jobs finished but not yet in a batch.
    pub fn pending_jobs(&self) -> Result<u64, ProviderError> {
        let r = self.db.begin_read()?;
        Ok(r.open_table(PENDING)?.len()?)
    }

    /// Move up to `max_jobs` pending jobs, oldest first, into a sealed batch
    /// queued for commit; `None` when nothing is pending.
    pub fn seal_pending(&self, max_jobs: usize) -> Result<Option<SealedBatch>, ProviderError> {
        let w = self.db.begin_write()?;
        let batch = {
            let mut pending = w.open_table(PENDING)?;
            let mut taken = Vec::new();
            for entry in pending.iter()?.take(max_jobs.max(1)) {
                let (k, v) = entry?;
                taken.push((k.value(), hash_of(v.value())?));
            }
            if taken.is_empty() {
                return Ok(None);
            }
            let mut jobs = Vec::with_capacity(taken.len());
            let mut leaves = Vec::with_capacity(taken.len());
            for (key, job) in &taken {
                pending.remove(*key)?;
                let transcript = self.get(job)?.ok_or_else(|| {
                    ProviderError::Corrupt(format!("pending job {job} has no transcript"))
                })?;
                jobs.push(*job);
                leaves.push(receipt_leaf(&transcript.receipt));
            }
            let batch = SealedBatch {
                root: merkle::root(&leaves),
                jobs,
                leaves,
                committed_at: None,
            };
            w.open_table(SEALED)?
                .insert(batch.root.0.as_slice(), codec::encode(&batch).as_slice())?;
            let mut to_commit = w.open_table(TO_COMMIT)?;
            let key = next_key(&to_commit)?;
            to_commit.insert(key, batch.root.0.as_slice())?;
            batch
        };
        w.commit()?;
        Ok(Some(batch))
    }

    /// Sealed batches whose root is not yet on chain, oldest first.
    pub fn batches_to_commit(&self) -> Result<Vec<SealedBatch>, ProviderError> {
        let r = self.db.begin_read()?;
        let to_commit = r.open_table(TO_COMMIT)?;
        let mut out = Vec::new();
        for entry in to_commit.iter()? {
            let (_, root) = entry?;
            let root = hash_of(root.value())?;
            out.push(self.sealed(&root)?.ok_or_else(|| {
                ProviderError::Corrupt(format!("batch {root} queued but not stored"))
            })?);
        }
        Ok(out)
    }

    /// A sealed batch by root.
    pub fn sealed(&self, root: &Hash32) -> Result<Option<SealedBatch>, ProviderError> {
        let r = self.db.begin_read()?;
        let table = r.open_table(SEALED)?;
        let Some(bytes) = table.get(root.0.as_slice())? else {
            return Ok(None);
        };
        codec::decode(bytes.value())
            .map(Some)
            .map_err(|e| ProviderError::Corrupt(e.to_string()))
    }

    /// Record that `root` was committed at `height`.
    pub fn mark_committed(&self, root: &Hash32, height: Height) -> Result<(), ProviderError> {
        let mut batch = self
            .sealed(root)?
            .ok_or_else(|| ProviderError::Corrupt(format!("no sealed batch {root}")))?;
        batch.committed_at = Some(height);
        let w = self.db.begin_write()?;
        {
            w.open_table(SEALED)?
                .insert(root.0.as_slice(), codec::encode(&batch).as_slice())?;
            let mut to_commit = w.open_table(TO_COMMIT)?;
            let mut keys = Vec::new();
            for entry in to_commit.iter()? {
                let (k, v) = entry?;
                if v.value() == root.0.as_slice() {
                    keys.push(k.value());
                }
            }
            for k in keys {
                to_commit.remove(k)?;
            }
        }
        w.commit()?;
        Ok(())
    }

    /// Job `index` of the sealed batch (or settled voucher root) `root`
    /// with the proof of its leaf; `None` if there is no such batch or job.
    pub fn job_proof(&self, root: &Hash32, index: u64) -> Result<Option<JobProof>, ProviderError> {
        let Some(batch) = self.sealed(root)? else {
            return self.paid_job_proof(root, index);
        };
        let Some(i) = usize::try_from(index)
            .ok()
            .filter(|i| *i < batch.jobs.len())
        else {
            return Ok(None);
        };
        let transcript = self.get(&batch.jobs[i])?.ok_or_else(|| {
            ProviderError::Corrupt(format!("batch job {} has no transcript", batch.jobs[i]))
        })?;
        let proof = MerkleProof::new(&batch.leaves, i)
            .ok_or_else(|| ProviderError::Corrupt("batch leaves and jobs disagree".into()))?;
        Ok(Some(JobProof { transcript, proof }))
    }
}

/// Seals pending jobs into batches and commits their roots on chain.
pub struct BatchCommitter {
    store: Arc<TranscriptStore>,
    chain: ChainClient,
    key: Keypair,
    model: ModelId,
    config: BatchConfig,
    /// When jobs were first seen pending since the last seal.
    pending_since: Option<Instant>,
    /// When transcripts were last pruned.
    pruned_at: Option<Instant>,
}

impl BatchCommitter {
    /// A committer for the provider `key` serving `model`, reading `store`.
    pub fn new(
        store: Arc<TranscriptStore>,
        chain: ChainClient,
        key: Keypair,
        model: ModelId,
        config: BatchConfig,
    ) -> Self {
        BatchCommitter {
            store,
            chain,
            key,
            model,
            config,
            pending_since: None,
            pruned_at: None,
        }
    }

    /// Seal a batch if one is due, then commit every sealed batch not yet on
    /// chain; returns the (root, height) of each batch committed now. A batch
    /// whose commit fails stays queued and is retried on the next tick.
    pub async fn tick(&mut self) -> Result<Vec<(Hash32, Height)>, ProviderError> {
        let store = self.store.clone();
        let pending = blocking(move || store.pending_jobs()).await?;
        if pending == 0 {
            self.pending_since = None;
        } else {
            let since = *self.pending_since.get_or_insert_with(Instant::now);
            let full = pending >= self.config.max_jobs as u64;
            if full || since.elapsed() >= self.config.max_age {
                let (store, max) = (self.store.clone(), self.config.max_jobs);
                blocking(move || store.seal_pending(max)).await?;
                self.pending_since = None;
            }
        }
        let store = self.store.clone();
        let queued = blocking(move || store.batches_to_commit()).await?;
        let mut committed = Vec::new();
        for batch in queued {
            let kind = TxKind::CommitReceipts {
                model: self.model,
                root: batch.root,
                count: batch.jobs.len() as u64,
            };
            let height = match self
                .chain
                .send_and_wait(&self.key, kind, COMMIT_TIMEOUT)
                .await
            {
                Ok(height) => height,
                // An earlier attempt landed after its wait timed out: the
                // root is on chain already (the chain refuses it twice).
                Err(e) if already_committed(&e) => self.chain.head().await?.height,
                Err(e) => return Err(e.into()),
            };
            let (store, root) = (self.store.clone(), batch.root);
            blocking(move || store.mark_committed(&root, height)).await?;
            tracing::info!(root = %batch.root, jobs = batch.jobs.len(), height, "receipt batch committed");
            committed.push((batch.root, height));
        }
        if self
            .pruned_at
            .is_none_or(|t| t.elapsed() >= self.config.prune_every)
        {
            self.prune().await?;
            self.pruned_at = Some(Instant::now());
        }
        Ok(committed)
    }

    /// Delete the transcripts no audit or dispute can reach any more, so
    /// prompts and outputs are not kept (or served) past the audit window.
    pub async fn prune(&self) -> Result<Pruned, ProviderError> {
        let head = self.chain.head().await?.height;
        let params = self.chain.params().await?;
        let Some(through) = prunable_through(head, &params.audit) else {
            return Ok(Pruned::default());
        };
        let store = self.store.clone();
        let pruned = blocking(move || store.prune_committed_through(through)).await?;
        if pruned.batches > 0 {
            tracing::info!(
                batches = pruned.batches,
                transcripts = pruned.transcripts,
                through,
                "transcripts past the audit window deleted"
            );
        }
        Ok(pruned)
    }

    /// Tick every second (or `max_age`, if shorter) until `shutdown` resolves,
    /// logging failures and retrying them on the next tick.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let period = self
            .config
            .max_age
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10));
        let mut ticks = agora_tasks::Periodic::every(period, shutdown);
        // A failure that repeats (a slashed, deregistered provider gets
        // `not_a_provider` on every tick) is reported once, not every second.
        let mut last_failure: Option<String> = None;
        while ticks.tick().await {
            match self.tick().await {
                Ok(_) => last_failure = None,
                Err(e) => {
                    let failure = e.to_string();
                    if last_failure.as_deref() == Some(failure.as_str()) {
                        tracing::debug!(error = %failure, "receipt batch still not committed; retrying");
                    } else {
                        tracing::warn!(error = %failure, "receipt batch not committed; retrying");
                    }
                    last_failure = Some(failure);
                }
            }
        }
    }
}

/// Whether the chain refused a commit because the root is already on chain.
fn already_committed(e: &ClientError) -> bool {
    match e {
        ClientError::Rejected { code, .. } | ClientError::TxRejected { code, .. } => {
            code == "duplicate_batch"
        }
        _ => false,
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ProviderError> + Send + 'static,
) -> Result<T, ProviderError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ProviderError::Store(format!("store task failed: {e}")))?
}

/// `GET /v1/batches/{root}/{index}`: a job's transcript with its Merkle proof.
/// Only the validators the chain drew for the job may read it (see `access.rs`).
pub(crate) async fn job_proof<E: InferenceEngine>(
    State(p): State<Arc<Provider<E>>>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let (root, index) = match path {
        Ok(Path(p)) => p,
        Err(e) => return path_rejection(e),
    };
    let (Ok(root), Ok(index)) = (root.parse::<Hash32>(), index.parse::<u64>()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_batch_job",
            format!("{root:?}/{index:?} is not a batch root and a leaf index"),
        );
    };
    let Some(gate) = p.gate.as_deref() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "no_audit_gate",
            "this provider has no chain to check the audit draw against".into(),
        );
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if let Err(r) = authorize(gate, &headers, p.account(), root, index, now_ms).await {
        return error(r.status, "invalid_request_error", r.code, r.message);
    }
    let store = p.transcripts.clone();
    match blocking(move || store.job_proof(&root, index)).await {
        Ok(Some(proof)) => {
            p.metrics.proof_served();
            Json(proof).into_response()
        }
        Ok(None) => error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            format!("no job {index} in a batch with root {root}"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "store",
            e.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit that timed out and landed anyway is recognised by the
    /// chain's code, whether the refusal came at submission or at block
    /// building, never by the wording of a message.
    #[test]
    fn a_duplicate_commit_is_recognised_by_its_code() {
        let at_block = |code: &str| ClientError::TxRejected {
            id: Hash32::ZERO,
            code: code.into(),
            error: "already committed".into(),
        };
        assert!(already_committed(&at_block("duplicate_batch")));
        assert!(!already_committed(&at_block("block_batches_full")));
        let at_submit = ClientError::Rejected {
            status: 400,
            code: "duplicate_batch".into(),
            message: String::new(),
        };
        assert!(already_committed(&at_submit));
        assert!(!already_committed(&ClientError::Timeout(
            Hash32::ZERO,
            Duration::ZERO
        )));
    }
}
