//! The validator's side of compute-to-data: re-run every data job the chain
//! drew for it and post whether the host's receipt holds exactly (status,
//! output hash and fuel); vote on data disputes the same way. A host that
//! will not hand a drawn validator the job's inputs within the grace
//! period fails the audit: it cannot show its receipt is true.

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agora_chain_client::{ChainClient, ClientError};
use agora_sandbox::{Limits, Sandbox};
use agora_types::data::{data_job_seed, output_hash, params_hash};
use agora_types::{codec, DataReceipt, DataRunStatus, Hash32, Keypair, TxKind};

use crate::{receipt_status, AuditInputs, DataClient, DataError};

/// Domain of the evidence hash of a re-run.
const EVIDENCE_DOMAIN: &str = "agora 2026 data audit evidence v1";
/// Domain of the evidence hash of inputs the host never handed over.
const MISSING_DOMAIN: &str = "agora 2026 data audit evidence missing inputs v1";
/// How long a re-run may take on the validator's machine.
const RERUN_DEADLINE: Duration = Duration::from_secs(600);
/// How long posting a verdict or vote waits to be committed.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// What a re-run found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rerun {
    /// Whether the receipt holds.
    pub passed: bool,
    /// Hash of what the validator saw: posted with the verdict.
    pub evidence: Hash32,
}

/// Re-run the job behind `receipt` on `inputs` and compare exactly.
pub fn rerun(
    sandbox: &Sandbox,
    inputs: &AuditInputs,
    receipt: &DataReceipt,
) -> Result<Rerun, DataError> {
    let evidence = |what: &(DataRunStatus, Hash32, u64)| {
        Hash32::digest_in(EVIDENCE_DOMAIN, &codec::encode(what))
    };
    if !receipt.status.reproducible() {
        // Cut off by the host's clock: charged nothing, nothing to reproduce.
        return Ok(Rerun {
            passed: true,
            evidence: evidence(&(receipt.status, receipt.output_hash, receipt.fuel_used)),
        });
    }
    let wrong_inputs = Hash32(*blake3::hash(&inputs.module).as_bytes()) != receipt.algorithm
        || params_hash(&inputs.params) != receipt.params_hash;
    if wrong_inputs {
        return Ok(Rerun {
            passed: false,
            evidence: Hash32::digest_in(
                MISSING_DOMAIN,
                &codec::encode(&(receipt.job, "inputs differ")),
            ),
        });
    }
    let algorithm = sandbox.load(&inputs.module)?;
    let limits = Limits {
        max_fuel: receipt.max_fuel,
        deadline: RERUN_DEADLINE,
        ..Limits::default()
    };
    let seed = data_job_seed(&receipt.job).0;
    let outcome = sandbox.run(&algorithm, &inputs.dir, &inputs.params, &seed, &limits)?;
    let status = receipt_status(outcome.status);
    if status == DataRunStatus::DeadlineExceeded {
        return Err(DataError::Remote(
            "the re-run hit this machine's deadline; try again".into(),
        ));
    }
    let seen = (status, output_hash(&outcome.output), outcome.fuel_used);
    Ok(Rerun {
        passed: seen == (receipt.status, receipt.output_hash, receipt.fuel_used),
        evidence: evidence(&seen),
    })
}

/// What the auditor has done, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataAuditorStats {
    /// Data jobs the chain drew for this validator.
    pub assigned: u64,
    /// Verdicts posted that passed the job.
    pub passed: u64,
    /// Verdicts posted that failed it.
    pub failed: u64,
    /// Dispute votes posted.
    pub votes: u64,
}

/// What one attempt to check a job came to.
enum Check {
    /// A verdict can be posted: the receipt's leaf and what the re-run found.
    Judged(Hash32, Rerun),
    /// Not this round (inputs not fetched yet, or the re-run cut short).
    Retry,
    /// Nothing to judge: the batch was pruned, holds no such job, or is no
    /// data batch at all (an inference dispute's).
    Gone,
}

/// One drawn job or dispute not judged yet.
#[derive(Clone, Debug)]
struct Pending {
    batch: Hash32,
    index: u64,
    /// Head height when first seen: the grace period counts from it.
    since: u64,
}

/// The validator's data-audit loop (call [`DataAuditor::step`] repeatedly).
pub struct DataAuditor {
    chain: ChainClient,
    key: Keypair,
    sandbox: Arc<Sandbox>,
    work: PathBuf,
    grace_blocks: u64,
    scanned_to: u64,
    seen: HashSet<Hash32>,
    waiting: Vec<Hash32>,
    jobs: VecDeque<Pending>,
    voted: HashSet<Hash32>,
    stats: DataAuditorStats,
}

impl DataAuditor {
    /// An auditor signing with `key`, fetching inputs under `work`, giving
    /// an unreachable host `grace_blocks` before failing its job.
    pub fn new(
        chain: ChainClient,
        key: Keypair,
        work: PathBuf,
        grace_blocks: u64,
    ) -> Result<Self, DataError> {
        std::fs::create_dir_all(&work)?;
        Ok(DataAuditor {
            chain,
            key,
            sandbox: Sandbox::new()?,
            work,
            grace_blocks,
            scanned_to: 0,
            seen: HashSet::new(),
            waiting: Vec::new(),
            jobs: VecDeque::new(),
            voted: HashSet::new(),
            stats: DataAuditorStats::default(),
        })
    }

    /// What it has done so far.
    pub fn stats(&self) -> &DataAuditorStats {
        &self.stats
    }

    /// One round: find newly drawn data jobs, judge the pending ones, vote.
    pub async fn step(&mut self) -> Result<(), DataError> {
        let head = self.chain.head().await?.height;
        self.load(head).await?;
        self.judge(head).await?;
        self.vote(head).await
    }

    async fn load(&mut self, head: u64) -> Result<(), DataError> {
        loop {
            let page = self.chain.batches(Some(self.scanned_to)).await?;
            for b in &page.batches {
                // Inference batches name their model; data batches none.
                if b.model.is_none() && self.seen.insert(b.id) {
                    self.waiting.push(b.id);
                }
                self.scanned_to = self.scanned_to.max(b.height);
            }
            if !page.more {
                break;
            }
        }
        let me = self.key.account();
        let mut still = Vec::new();
        for id in std::mem::take(&mut self.waiting) {
            match self.chain.batch(&id).await {
                Ok(b) if b.seed.is_some() => {
                    for (index, _) in b.audits.iter().filter(|(_, who)| *who == me) {
                        self.stats.assigned += 1;
                        self.jobs.push_back(Pending {
                            batch: id,
                            index: *index,
                            since: head,
                        });
                    }
                }
                Ok(_) => still.push(id),
                Err(ClientError::Rejected { status: 404, .. }) => {}
                Err(e) => {
                    still.push(id);
                    tracing::warn!("reading batch {id}: {e}");
                }
            }
        }
        self.waiting = still;
        Ok(())
    }

    /// Fetch and re-run job `index` of data batch `batch`.
    async fn check(
        &self,
        batch: &Hash32,
        index: u64,
        since: u64,
        head: u64,
    ) -> Result<Check, DataError> {
        let receipts = match self.chain.data_batch(batch).await {
            Ok(r) => r,
            Err(ClientError::Rejected { status: 404, .. }) => return Ok(Check::Gone),
            Err(e) => return Err(e.into()),
        };
        let Some(signed) = receipts.get(index as usize) else {
            return Ok(Check::Gone);
        };
        let receipt = &signed.receipt;
        let leaf = signed.leaf();
        let endpoint = self
            .chain
            .providers()
            .await?
            .into_iter()
            .find(|p| p.id == signed.host)
            .map(|p| p.endpoint);
        let dest = self.work.join(format!("{}-{index}", batch.to_hex()));
        let fetched = match endpoint {
            Some(url) => {
                let _ = std::fs::remove_dir_all(&dest);
                DataClient::new(&url, signed.host)
                    .audit_inputs(&self.key, &receipt.job, &receipt.dataset, &dest)
                    .await
            }
            None => Err(DataError::Remote("the host is no longer a provider".into())),
        };
        let judged = match fetched {
            Ok(inputs) => {
                let sandbox = self.sandbox.clone();
                let receipt = receipt.clone();
                let result =
                    tokio::task::spawn_blocking(move || rerun(&sandbox, &inputs, &receipt))
                        .await
                        .map_err(|e| DataError::Remote(format!("re-run panicked: {e}")))?;
                match result {
                    Ok(r) => Check::Judged(leaf, r),
                    Err(e) => {
                        tracing::warn!("re-running data job {}: {e}", signed.receipt.job);
                        Check::Retry
                    }
                }
            }
            Err(e) if head >= since.saturating_add(self.grace_blocks) => {
                tracing::warn!(
                    "data job {}: no inputs within the grace period: {e}",
                    receipt.job
                );
                Check::Judged(
                    leaf,
                    Rerun {
                        passed: false,
                        evidence: Hash32::digest_in(
                            MISSING_DOMAIN,
                            &codec::encode(&(receipt.job, e.to_string())),
                        ),
                    },
                )
            }
            Err(e) => {
                tracing::info!("data job {}: inputs not fetched yet: {e}", receipt.job);
                Check::Retry
            }
        };
        let _ = std::fs::remove_dir_all(&dest);
        Ok(judged)
    }

    async fn judge(&mut self, head: u64) -> Result<(), DataError> {
        for _ in 0..self.jobs.len() {
            let Some(job) = self.jobs.pop_front() else {
                break;
            };
            let (leaf, found) = match self.check(&job.batch, job.index, job.since, head).await? {
                Check::Judged(leaf, found) => (leaf, found),
                Check::Retry => {
                    self.jobs.push_back(job);
                    continue;
                }
                Check::Gone => continue,
            };
            let kind = TxKind::SubmitVerdict {
                batch: job.batch,
                index: job.index,
                leaf,
                passed: found.passed,
                evidence: found.evidence,
            };
            match self
                .chain
                .send_and_wait(&self.key, kind, POST_TIMEOUT)
                .await
            {
                Ok(_) if found.passed => self.stats.passed += 1,
                Ok(_) => self.stats.failed += 1,
                Err(e) => tracing::warn!("verdict on {}#{}: {e}", job.batch, job.index),
            }
        }
        Ok(())
    }

    async fn vote(&mut self, head: u64) -> Result<(), DataError> {
        let me = self.key.account();
        for d in self.chain.disputes().await? {
            if !d.committee.contains(&me)
                || self.voted.contains(&d.id)
                || d.votes.iter().any(|(w, _)| *w == me)
            {
                continue;
            }
            // An inference dispute's batch holds no data receipts: `Gone`,
            // and the inference auditor's to judge.
            let Check::Judged(_, found) = self.check(&d.batch, d.index, d.opened_at, head).await?
            else {
                continue;
            };
            let kind = TxKind::VoteDispute {
                dispute: d.id,
                agree: !found.passed,
            };
            match self
                .chain
                .send_and_wait(&self.key, kind, POST_TIMEOUT)
                .await
            {
                Ok(_) => {
                    self.voted.insert(d.id);
                    self.stats.votes += 1;
                }
                Err(e) => tracing::warn!("vote on dispute {}: {e}", d.id),
            }
        }
        Ok(())
    }
}
