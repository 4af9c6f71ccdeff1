//! The audit loop: take the audits the chain drew for this validator, fetch,
//! check, post; vote on disputes; set weights by commit-reveal.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use agora_types::{AccountId, Hash32, ModelId, TxKind};

use crate::ports::{
    AuditChain, AuditError, BatchInfo, CheckOutcome, FetchError, JobChecker, Served,
    TranscriptSource,
};
use crate::weights::{commitment, landing_epoch, weights_from_scores, PendingReveal};

/// Domain of the evidence hash of a job whose transcript never came.
const MISSING_DOMAIN: &str = "agora 2026 audit evidence missing transcript v1";
/// Domain of the evidence hash of a transcript that is not in its batch.
const NOT_IN_BATCH_DOMAIN: &str = "agora 2026 audit evidence not in batch v1";
/// Domain of the evidence hash of a receipt naming another model than its batch.
const OTHER_MODEL_DOMAIN: &str = "agora 2026 audit evidence other model v1";
/// Domain of the evidence hash of a receipt signed for another chain.
const OTHER_CHAIN_DOMAIN: &str = "agora 2026 audit evidence other chain v1";

/// How an auditor behaves.
#[derive(Clone, Debug)]
pub struct AuditorConfig {
    /// The validator account this daemon signs for.
    pub me: AccountId,
    /// The chain audited: a receipt naming any other fails its audit.
    pub chain_id: String,
    /// Blocks after the batch (or dispute) during which an unreachable
    /// provider is retried before its transcript counts as missing.
    pub fetch_grace_blocks: u64,
    /// The model (market) whose providers this validator sets weights for
    /// by commit-reveal each epoch (`None`: audits only).
    pub weights_model: Option<ModelId>,
}

/// What the auditor has done so far, for logs and status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditorStats {
    /// Jobs this validator was assigned.
    pub assigned: u64,
    /// Verdicts posted that passed the job.
    pub passed: u64,
    /// Verdicts posted that failed the job (missing transcripts included).
    pub failed: u64,
    /// Of the failures, jobs whose transcript never came or was not in the batch.
    pub missing: u64,
    /// Dispute votes posted.
    pub votes: u64,
    /// Weight commitments posted.
    pub weight_commits: u64,
    /// Weight reveals posted.
    pub weight_reveals: u64,
    /// Assigned jobs dropped because the audit window closed first.
    pub expired: u64,
}

/// One job this validator must audit.
#[derive(Clone, Debug)]
struct AuditJob {
    batch: BatchInfo,
    index: u64,
}

/// The daemon's state between rounds.
pub struct Auditor<C, S, K> {
    chain: C,
    source: S,
    checker: K,
    config: AuditorConfig,
    /// Batches committed at or below this height have been loaded.
    scanned_to: u64,
    /// Ids of loaded batches, so a re-read page is not planned twice.
    loaded: HashSet<Hash32>,
    /// Batches whose audits the chain has not drawn yet.
    waiting: Vec<BatchInfo>,
    /// Validation requests made at or below this height have been loaded.
    requests_scanned_to: u64,
    /// (batch, index) of every job queued for this validator, sampled or
    /// requested, so none is audited twice.
    planned: HashSet<(Hash32, u64)>,
    /// Jobs assigned to this validator and not yet judged.
    jobs: VecDeque<AuditJob>,
    /// Disputes this validator has voted on.
    voted: HashSet<Hash32>,
    /// Weights committed and not yet revealed.
    pending_reveal: Option<PendingReveal>,
    /// Epoch of the last weight commitment.
    committed_epoch: Option<u64>,
    stats: AuditorStats,
}

/// How one fetch-and-check attempt ended.
enum Judgement {
    /// A verdict (or vote) can be posted.
    Done {
        leaf: Hash32,
        passed: bool,
        evidence: Hash32,
        missing: bool,
    },
    /// The provider did not answer; try again next round.
    Retry,
}

impl<C: AuditChain, S: TranscriptSource, K: JobChecker> Auditor<C, S, K> {
    /// An auditor that starts scanning from the chain's first block.
    pub fn new(chain: C, source: S, checker: K, config: AuditorConfig) -> Self {
        Auditor {
            chain,
            source,
            checker,
            config,
            scanned_to: 0,
            loaded: HashSet::new(),
            waiting: Vec::new(),
            requests_scanned_to: 0,
            planned: HashSet::new(),
            jobs: VecDeque::new(),
            voted: HashSet::new(),
            pending_reveal: None,
            committed_epoch: None,
            stats: AuditorStats::default(),
        }
    }

    /// What the auditor has done so far.
    pub fn stats(&self) -> &AuditorStats {
        &self.stats
    }

    /// Jobs assigned and not yet judged.
    pub fn pending(&self) -> usize {
        self.jobs.len() + self.waiting.len()
    }

    /// One round: load new batches, plan the audits whose randomness is
    /// final, judge the pending jobs, vote on disputes, and commit or reveal
    /// weights.
    pub async fn step(&mut self) -> Result<(), AuditError> {
        let head = self.chain.head().await?;
        self.load_batches().await?;
        self.plan().await?;
        self.load_requests().await?;
        self.audit(head).await?;
        self.vote(head).await?;
        self.set_weights().await
    }

    /// Run rounds every `poll` until `stop` resolves; a failed round is logged
    /// and retried, never fatal.
    pub async fn run(mut self, poll: Duration, stop: impl std::future::Future<Output = ()>) {
        let mut ticks = agora_tasks::Periodic::after_each(poll, stop);
        while ticks.tick().await {
            if let Err(e) = self.step().await {
                tracing::warn!(error = %e, "audit round failed; retrying");
            }
        }
    }

    async fn load_batches(&mut self) -> Result<(), AuditError> {
        let fresh = self.chain.batches_since(self.scanned_to).await?;
        // A page may end in the middle of a height: rescan that height next time.
        if let Some(last) = fresh.last() {
            self.scanned_to = self.scanned_to.max(last.height.saturating_sub(1));
        }
        for batch in fresh {
            // A batch naming no model holds data-job receipts: re-run by the
            // data auditor (`agora_data::DataAuditor`), not replayed here.
            if batch.model.is_none() {
                continue;
            }
            if batch.audits.is_none() {
                // Not drawn yet: read it again next round.
                self.scanned_to = self.scanned_to.min(batch.height.saturating_sub(1));
                continue;
            }
            if self.loaded.insert(batch.id) {
                self.waiting.push(batch);
            }
        }
        Ok(())
    }

    async fn plan(&mut self) -> Result<(), AuditError> {
        for batch in std::mem::take(&mut self.waiting) {
            let Some(audits) = batch.audits.clone() else {
                self.waiting.push(batch);
                continue;
            };
            for (index, auditor) in audits {
                if auditor == self.config.me && self.planned.insert((batch.id, index)) {
                    self.stats.assigned += 1;
                    self.jobs.push_back(AuditJob {
                        batch: batch.clone(),
                        index,
                    });
                }
            }
        }
        Ok(())
    }

    /// Queue the requested audits (`RequestValidation`) drawn for this validator.
    async fn load_requests(&mut self) -> Result<(), AuditError> {
        let fresh = self
            .chain
            .validations_since(self.requests_scanned_to)
            .await?;
        for r in fresh {
            // A block's requests all appear with it: none is missed below this height.
            self.requests_scanned_to = self.requests_scanned_to.max(r.height);
            let inference = r.batch.model.is_some();
            if r.auditor == self.config.me
                && inference
                && self.planned.insert((r.batch.id, r.index))
            {
                self.stats.assigned += 1;
                self.jobs.push_back(AuditJob {
                    batch: r.batch,
                    index: r.index,
                });
            }
        }
        Ok(())
    }

    async fn audit(&mut self, head: u64) -> Result<(), AuditError> {
        let window = self.chain.audit_window().await?;
        for job in std::mem::take(&mut self.jobs) {
            if head > job.batch.height.saturating_add(window) {
                tracing::warn!(batch = %job.batch.id, index = job.index, "audit window closed before the audit");
                self.stats.expired += 1;
                continue;
            }
            let since = job.batch.height;
            let judged = self
                .judge(
                    Leaf {
                        provider: &job.batch.provider,
                        root: &job.batch.root,
                        model: job.batch.model.as_ref(),
                        index: job.index,
                        count: job.batch.first_index.saturating_add(job.batch.count),
                    },
                    since,
                    head,
                )
                .await;
            match judged {
                // This validator could not judge (its verifier or the chain
                // failed): keep the job, and every job after it, for the next round.
                Err(e) => {
                    tracing::warn!(error = %e, batch = %job.batch.id, index = job.index, "cannot judge the job this round; kept");
                    self.jobs.push_back(job);
                }
                Ok(Judgement::Retry) => self.jobs.push_back(job),
                Ok(Judgement::Done {
                    leaf,
                    passed,
                    evidence,
                    missing,
                }) => {
                    let action = TxKind::SubmitVerdict {
                        batch: job.batch.id,
                        index: job.index,
                        leaf,
                        passed,
                        evidence,
                    };
                    match self.chain.submit(action).await {
                        Ok(()) => {
                            tracing::info!(provider = %job.batch.provider, batch = %job.batch.id, index = job.index, passed, "verdict posted");
                            if passed {
                                self.stats.passed += 1;
                            } else {
                                self.stats.failed += 1;
                                self.stats.missing += u64::from(missing);
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, batch = %job.batch.id, index = job.index, "verdict refused")
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn vote(&mut self, head: u64) -> Result<(), AuditError> {
        let me = self.config.me;
        for dispute in self.chain.disputes().await? {
            if !dispute.committee.contains(&me)
                || dispute.model.is_none()
                || dispute.voted.contains(&me)
                || self.voted.contains(&dispute.id)
            {
                continue;
            }
            let judged = self
                .judge(
                    Leaf {
                        provider: &dispute.provider,
                        root: &dispute.root,
                        model: dispute.model.as_ref(),
                        index: dispute.index,
                        count: dispute.leaf_count,
                    },
                    dispute.opened_at,
                    head,
                )
                .await;
            match judged {
                Err(e) => {
                    tracing::warn!(error = %e, dispute = %dispute.id, "cannot re-check the dispute this round")
                }
                Ok(Judgement::Retry) => {}
                Ok(Judgement::Done { passed, .. }) => {
                    let action = TxKind::VoteDispute {
                        dispute: dispute.id,
                        agree: !passed,
                    };
                    match self.chain.submit(action).await {
                        Ok(()) => {
                            tracing::info!(dispute = %dispute.id, agree = !passed, "dispute vote posted");
                            self.voted.insert(dispute.id);
                            self.stats.votes += 1;
                        }
                        Err(e) => tracing::warn!(error = %e, dispute = %dispute.id, "vote refused"),
                    }
                }
            }
        }
        Ok(())
    }

    /// Reveal last epoch's weights and commit this epoch's, once per epoch.
    async fn set_weights(&mut self) -> Result<(), AuditError> {
        let Some(model) = self.config.weights_model else {
            return Ok(());
        };
        let tempo = self.chain.tempo_blocks().await?;
        // Read the head again: audits may have taken several blocks.
        let head = self.chain.head().await?;
        let Some(epoch) = landing_epoch(head, tempo) else {
            return Ok(());
        };
        if let Some(pending) = self.pending_reveal.take() {
            if pending.epoch + 1 == epoch {
                let action = TxKind::RevealWeights {
                    model,
                    weights: pending.weights,
                    salt: pending.salt,
                };
                match self.chain.submit(action).await {
                    Ok(()) => self.stats.weight_reveals += 1,
                    Err(e) => tracing::warn!(error = %e, epoch, "weights reveal refused"),
                }
            } else if pending.epoch == epoch {
                self.pending_reveal = Some(pending);
            }
        }
        if self.committed_epoch == Some(epoch) {
            return Ok(());
        }
        let weights = weights_from_scores(&self.chain.scores(&model).await?);
        self.committed_epoch = Some(epoch);
        if weights.is_empty() {
            return Ok(());
        }
        let salt = Hash32(rand::random());
        let hash = commitment(&self.config.me, &model, &weights, &salt);
        match self
            .chain
            .submit(TxKind::CommitWeights { model, hash })
            .await
        {
            Ok(()) => {
                self.stats.weight_commits += 1;
                self.pending_reveal = Some(PendingReveal {
                    epoch,
                    weights,
                    salt,
                });
            }
            Err(e) => tracing::warn!(error = %e, epoch, "weights commitment refused"),
        }
        Ok(())
    }

    /// Fetch a job's transcript, check it belongs to the batch, and replay it.
    async fn judge(&self, leaf: Leaf<'_>, since: u64, head: u64) -> Result<Judgement, AuditError> {
        let Leaf {
            provider,
            root,
            model,
            index,
            count: leaf_count,
        } = leaf;
        let grace_over = head > since.saturating_add(self.config.fetch_grace_blocks);
        let Some(Served { endpoint, judging }) = self.chain.served(provider).await? else {
            // Deregistered: nobody serves its transcripts any more.
            return Ok(missing(MISSING_DOMAIN, root, index));
        };
        let fetched = match self.source.fetch(&endpoint, root, index).await {
            Ok(fetched) => fetched,
            // A provider restarting, or one that has not stored the job yet,
            // answers nothing or 404: both are retried until the grace period
            // ends, so an honest provider is never failed for a restart.
            Err(e @ (FetchError::Unavailable(_) | FetchError::Missing)) if !grace_over => {
                tracing::debug!(%provider, error = %e, "transcript not available yet");
                return Ok(Judgement::Retry);
            }
            Err(e) => {
                tracing::warn!(%provider, error = %e, index, "no transcript: counted as a failure");
                return Ok(missing(MISSING_DOMAIN, root, index));
            }
        };
        let receipt = &fetched.transcript.receipt.receipt;
        let leaf = match fetched.verify(root, index, leaf_count) {
            // A job committed on two networks would be counted (and paid by
            // emission) twice; its receipt names one chain only.
            Ok(_) if receipt.chain_id != self.config.chain_id => {
                tracing::warn!(%provider, index, chain = %receipt.chain_id, "receipt names another chain: counted as a failure");
                return Ok(missing(OTHER_CHAIN_DOMAIN, root, index));
            }
            // A receipt for another model than the batch was committed for
            // is a lie the committee can re-check at once, not a job to
            // retry until the window closes.
            Ok(_) if model.is_some_and(|m| &receipt.model != m) => {
                tracing::warn!(%provider, index, model = %receipt.model, "receipt names another model than its batch: counted as a failure");
                return Ok(missing(OTHER_MODEL_DOMAIN, root, index));
            }
            Ok(leaf) if &receipt.provider == provider => leaf,
            Ok(_) => {
                tracing::warn!(%provider, index, "receipt names another provider: counted as a failure");
                return Ok(missing(NOT_IN_BATCH_DOMAIN, root, index));
            }
            Err(e) => {
                tracing::warn!(%provider, index, error = %e, "transcript is not the batch's leaf: counted as a failure");
                return Ok(missing(NOT_IN_BATCH_DOMAIN, root, index));
            }
        };
        let CheckOutcome {
            passed,
            evidence,
            summary,
        } = self.checker.check(fetched.transcript, judging).await?;
        tracing::info!(%provider, index, passed, ?judging, %summary, "job checked");
        Ok(Judgement::Done {
            leaf,
            passed,
            evidence,
            missing: false,
        })
    }
}

/// The job to judge: leaf `index` of the batch `root` (of `count` leaves,
/// committed by `provider` for `model`).
struct Leaf<'a> {
    provider: &'a AccountId,
    root: &'a Hash32,
    model: Option<&'a ModelId>,
    index: u64,
    count: u64,
}

/// A failure whose evidence is the absence of a (valid) transcript.
fn missing(domain: &str, root: &Hash32, index: u64) -> Judgement {
    let mut bytes = root.0.to_vec();
    bytes.extend_from_slice(&index.to_le_bytes());
    Judgement::Done {
        leaf: Hash32::default(),
        passed: false,
        evidence: Hash32::digest_in(domain, &bytes),
        missing: true,
    }
}
