//! Proof of Sampling on chain: providers commit receipt batches; in the
//! block after a commit the chain draws which jobs are audited and by whom
//! (stake-weighted, from the commit block's id, which the provider could not
//! know); only the drawn validator's verdict on a drawn job counts; a failed
//! verdict opens a dispute whose committee is drawn stake-weighted in the
//! next block, and which confirms (slashing the provider's whole collateral,
//! part of it rewarding the accuser and the agreeing members) or refutes
//! (slashing the accuser's bond).

use std::collections::BTreeMap;

use agora_types::audit::{
    batch_id, dispute_id, draw_audits, draw_seed, weighted_committee, STATISTICAL_MIN_FLAGS,
};
use agora_types::{
    AccountId, Amount, Dispute, Hash32, Height, ModelId, ProviderInfo, ReceiptBatch,
    ValidationRequest,
};

use crate::staking::{fraction, PPM};
use crate::{State, TxError};

/// The fields of a `SubmitVerdict` transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) batch: Hash32,
    pub(crate) index: u64,
    pub(crate) leaf: Hash32,
    pub(crate) passed: bool,
    pub(crate) evidence: Hash32,
}

/// Reference jobs' worth of collateral `info` must lock: `multiple`, times
/// [`STATISTICAL_MIN_FLAGS`] for a provider judged statistically (no dispute
/// opens before that many flags, so it can cheat that many times longer
/// before a slash; the expected slash per cheated job stays the same).
fn collateral_jobs(multiple: u64, info: &ProviderInfo) -> u64 {
    if info.replayable {
        multiple
    } else {
        multiple.saturating_mul(STATISTICAL_MIN_FLAGS)
    }
}

impl State {
    /// One reference job's price at `info.price`, and how many such jobs of
    /// collateral `info` must lock.
    fn collateral_basis(&self, info: &ProviderInfo) -> (Amount, u64) {
        let a = &self.params.audit;
        let job = info
            .price
            .cost(a.reference_job_tokens, a.reference_job_tokens);
        (job, collateral_jobs(a.collateral_multiple, info))
    }

    /// Smallest collateral a provider offering `info.price` must lock.
    pub fn required_collateral(&self, info: &ProviderInfo) -> Amount {
        let (job, multiple) = self.collateral_basis(info);
        job.saturating_mul(multiple)
            .max(self.params.min_provider_stake)
    }

    pub(crate) fn check_collateral(&self, info: &ProviderInfo) -> Result<(), TxError> {
        if self
            .provider_audits
            .get(&info.id)
            .is_some_and(|a| a.slashed)
        {
            return Err(TxError::ProviderSlashed(info.id));
        }
        let required = self.required_collateral(info);
        if info.stake < required {
            let (job_price, multiple) = self.collateral_basis(info);
            return Err(TxError::CollateralTooLow {
                required,
                got: info.stake,
                multiple,
                job_price,
                tokens: self.params.audit.reference_job_tokens,
            });
        }
        Ok(())
    }

    /// First height from which `provider`'s collateral is no longer answerable
    /// for audits: after its last batch's audit window and its open disputes.
    pub fn collateral_locked_until(&self, provider: &AccountId) -> Option<Height> {
        let a = &self.params.audit;
        let batches = self
            .batches
            .values()
            .filter(|b| b.provider == *provider)
            .map(|b| b.height.saturating_add(a.audit_window_blocks) + 1);
        let disputes = self
            .disputes
            .values()
            .filter(|d| d.provider == *provider)
            .map(|d| d.opened_at.saturating_add(a.dispute_window_blocks) + 1);
        batches.chain(disputes).max()
    }

    pub(crate) fn check_collateral_released(&self, provider: &AccountId) -> Result<(), TxError> {
        match self.collateral_locked_until(provider) {
            Some(until) => Err(TxError::CollateralLocked {
                provider: *provider,
                until,
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn commit_receipts(
        &mut self,
        sender: AccountId,
        nonce: u64,
        model: ModelId,
        root: Hash32,
        count: u64,
        height: Height,
    ) -> Result<(), TxError> {
        let provider = self
            .providers
            .get(&sender)
            .ok_or(TxError::NotAProvider(sender))?;
        if !provider.models.contains(&model) {
            return Err(TxError::ModelNotServed {
                provider: sender,
                model,
            });
        }
        if count == 0 {
            return Err(TxError::InvalidField {
                field: "count",
                reason: "a batch holds at least one receipt".into(),
            });
        }
        let max = self.params.audit.max_batch_jobs;
        if count > max {
            return Err(TxError::BatchTooLarge { max, got: count });
        }
        // The same root twice would have the same jobs drawn, audited and
        // counted as passes twice: weights (and emission) follow passes.
        if self
            .batches
            .values()
            .any(|b| b.provider == sender && b.channel.is_none() && b.root == root)
        {
            return Err(TxError::DuplicateBatch(root));
        }
        self.check_batch_room(height)?;
        self.count_batch(height);
        let id = batch_id(&sender, nonce);
        self.batches.insert(
            id,
            ReceiptBatch {
                id,
                provider: sender,
                model: Some(model),
                root,
                first_index: 0,
                count,
                height,
                channel: None,
                seed: None,
                audits: Vec::new(),
            },
        );
        Ok(())
    }

    /// Batches already created in the block at `height`.
    fn batches_at(&self, height: Height) -> u32 {
        let (at, n) = self.batches_in_block;
        if at == height {
            n
        } else {
            0
        }
    }

    /// Refuse one more batch at `height` past `max_batches_per_block`.
    pub(crate) fn check_batch_room(&self, height: Height) -> Result<(), TxError> {
        let max = self.params.audit.max_batches_per_block;
        if self.batches_at(height) >= max {
            return Err(TxError::BlockBatchesFull(max));
        }
        Ok(())
    }

    /// Count a batch created at `height` (after [`Self::check_batch_room`]).
    pub(crate) fn count_batch(&mut self, height: Height) {
        self.batches_in_block = (height, self.batches_at(height) + 1);
    }

    /// Draw, in the block after their creation, the audits of new batches and
    /// the committees of new disputes, from that block's draw source (the
    /// parent round's threshold seed under consensus; run at the start of
    /// every block).
    pub(crate) fn draw_pending(&mut self, height: Height, source: &Hash32) {
        let rate = self.params.audit.audit_rate_ppm;
        let candidates = self.audit_candidates();
        let markets = &self.markets;
        // Each market's pool, worked out once per block however many of its
        // batches and disputes are drawn.
        let mut pools: BTreeMap<Option<ModelId>, Vec<(AccountId, Amount)>> = BTreeMap::new();
        let mut pool_of = |model: Option<ModelId>, excluded: &[AccountId]| -> Vec<_> {
            pools
                .entry(model)
                .or_insert_with(|| markets.audit_pool(&candidates, model.as_ref()))
                .iter()
                .copied()
                .filter(|(who, _)| !excluded.contains(who))
                .collect()
        };
        for batch in self.batches.values_mut() {
            if batch.seed.is_some() || batch.height >= height {
                continue;
            }
            let seed = draw_seed(source, &batch.id);
            batch.seed = Some(seed);
            let pool = pool_of(batch.model, &[batch.provider]);
            batch.audits = draw_audits(
                &seed,
                &batch.id,
                batch.first_index,
                batch.count,
                rate,
                &pool,
            );
        }
        let size = self.params.audit.committee_size as usize;
        let batches = &self.batches;
        for dispute in self.disputes.values_mut() {
            if dispute.seed.is_some() || dispute.opened_at >= height {
                continue;
            }
            let seed = draw_seed(source, &dispute.id);
            let model = batches.get(&dispute.batch).and_then(|b| b.model);
            let pool = pool_of(model, &[dispute.accuser, dispute.provider]);
            dispute.seed = Some(seed);
            dispute.committee = weighted_committee(&seed, &dispute.id, &pool, size);
        }
    }

    /// The live batch `batch_id`, if job `index` is one of its jobs. A batch
    /// past its audit window was pruned at block start: `UnknownBatch`.
    fn live_job(&self, batch_id: &Hash32, index: u64) -> Result<&ReceiptBatch, TxError> {
        let batch = self
            .batches
            .get(batch_id)
            .ok_or(TxError::UnknownBatch(*batch_id))?;
        if !batch.contains(index) {
            return Err(TxError::IndexOutsideBatch {
                index,
                first: batch.first_index,
                end: batch.first_index.saturating_add(batch.count),
            });
        }
        Ok(batch)
    }

    /// `RequestValidation`: draw an auditor for one job of a drawn
    /// inference batch from the batch's seed (neither its provider nor the
    /// requester), burn the fee, and add the audit to the batch's.
    pub(crate) fn request_validation(
        &mut self,
        requester: AccountId,
        batch_id: Hash32,
        index: u64,
        height: Height,
    ) -> Result<(), TxError> {
        let batch = self.live_job(&batch_id, index)?;
        if batch.model.is_none() {
            return Err(TxError::InvalidField {
                field: "batch",
                reason: "a data batch's jobs are re-run, not replayed; request inference jobs"
                    .into(),
            });
        }
        let seed = batch.seed.ok_or(TxError::AuditsNotDrawn(batch_id))?;
        if batch.audits.iter().any(|(i, _)| *i == index) {
            return Err(TxError::AlreadyAudited {
                batch: batch_id,
                index,
            });
        }
        let excluded = [batch.provider, requester];
        let pool: Vec<_> = self
            .markets
            .audit_pool(&self.audit_candidates(), batch.model.as_ref())
            .into_iter()
            .filter(|(who, _)| !excluded.contains(who))
            .collect();
        let auditor = agora_types::audit::draw_auditor(&seed, &batch_id, index, &pool)
            .ok_or(TxError::NoAuditor)?;
        let fee = self.params.audit.validation_fee;
        self.debit(requester, fee)?;
        self.burned = self.burned.saturating_add(u128::from(fee));
        let batch = self.batches.get_mut(&batch_id).expect("checked above");
        let at = batch.audits.partition_point(|(i, _)| *i < index);
        batch.audits.insert(at, (index, auditor));
        self.validation_requests.insert(
            (batch_id, index),
            ValidationRequest {
                batch: batch_id,
                index,
                requester,
                auditor,
                height,
            },
        );
        Ok(())
    }

    fn bonded(&self, who: &AccountId) -> bool {
        self.validators.get(who).is_some_and(|v| v.total() > 0)
    }

    pub(crate) fn submit_verdict(
        &mut self,
        auditor: AccountId,
        v: Verdict,
        height: Height,
    ) -> Result<(), TxError> {
        if !self.bonded(&auditor) {
            return Err(TxError::NotAValidator(auditor));
        }
        let batch = self.live_job(&v.batch, v.index)?;
        let provider = batch.provider;
        if provider == auditor {
            return Err(TxError::SelfAudit);
        }
        if batch.seed.is_none() {
            return Err(TxError::AuditsNotDrawn(v.batch));
        }
        if !batch.audits.contains(&(v.index, auditor)) {
            return Err(TxError::NotAssigned {
                batch: v.batch,
                index: v.index,
                auditor,
            });
        }
        if self
            .provider_audits
            .get(&provider)
            .is_some_and(|a| a.slashed)
        {
            return Err(TxError::ProviderSlashed(provider));
        }
        if self.verdicts.contains_key(&(v.batch, v.index, auditor)) {
            return Err(TxError::DuplicateVerdict {
                batch: v.batch,
                index: v.index,
                auditor,
            });
        }
        // A provider whose jobs cannot be replayed exactly (an upstream
        // server samples with its own RNG) is judged over many jobs: a
        // failing verdict flags it, and opens a dispute only once flags
        // reach STATISTICAL_MIN_FLAGS and outnumber its passes.
        // Data jobs always re-run exactly, whatever the host's inference does.
        let statistical = !self.is_data_batch(&v.batch)
            && self.providers.get(&provider).is_some_and(|p| !p.replayable);
        if v.passed {
            let record = self.provider_audits.entry(provider).or_default();
            record.audits_passed = record.audits_passed.saturating_add(1);
        } else {
            // Checked before flagging: an error must leave no trace.
            let id = dispute_id(&v.batch, v.index);
            if self.disputes.contains_key(&id) {
                return Err(TxError::DisputeExists(id));
            }
            if statistical && !self.flag(provider) {
                // Flagged only: no pattern yet for a committee to judge.
                self.verdicts.insert((v.batch, v.index, auditor), v.passed);
                return Ok(());
            }
            self.disputes.insert(
                id,
                Dispute {
                    id,
                    batch: v.batch,
                    index: v.index,
                    provider,
                    accuser: auditor,
                    leaf: v.leaf,
                    evidence: v.evidence,
                    opened_at: height,
                    // Drawn in the next block (see `draw_pending`).
                    committee: Vec::new(),
                    seed: None,
                    votes: Vec::new(),
                },
            );
        }
        self.verdicts.insert((v.batch, v.index, auditor), v.passed);
        Ok(())
    }

    /// Record a failing verdict on non-replayable `provider`; whether its
    /// flags now form a pattern that a committee should judge.
    fn flag(&mut self, provider: AccountId) -> bool {
        let record = self.provider_audits.entry(provider).or_default();
        record.audits_flagged = record.audits_flagged.saturating_add(1);
        record.audits_flagged >= STATISTICAL_MIN_FLAGS
            && record.audits_flagged > record.audits_passed
    }

    pub(crate) fn vote_dispute(
        &mut self,
        voter: AccountId,
        id: &Hash32,
        agree: bool,
    ) -> Result<(), TxError> {
        let dispute = self.disputes.get(id).ok_or(TxError::UnknownDispute(*id))?;
        if !dispute.committee.contains(&voter) {
            return Err(TxError::NotOnCommittee {
                dispute: *id,
                voter,
            });
        }
        if dispute.votes.iter().any(|(who, _)| *who == voter) {
            return Err(TxError::AlreadyVoted {
                dispute: *id,
                voter,
            });
        }
        let mut dispute = dispute.clone();
        dispute.votes.push((voter, agree));
        if dispute.agreeing().len() >= dispute.majority() {
            self.disputes.remove(id);
            self.confirm(&dispute);
        } else if dispute.disagreeing() >= dispute.majority() {
            self.disputes.remove(id);
            let ppm = self.params.audit.false_accusation_slash_ppm;
            self.slash_validator(&dispute.accuser, ppm);
        } else {
            self.disputes.insert(*id, dispute);
        }
        Ok(())
    }

    /// A committee confirmed the failure: slash the provider, rewarding the
    /// accuser and the agreeing members.
    fn confirm(&mut self, dispute: &Dispute) {
        let mut rewarded = vec![dispute.accuser];
        rewarded.extend(dispute.agreeing());
        self.slash_provider(dispute.provider, &rewarded);
    }

    /// Slash `provider`'s whole collateral, pay `auditor_reward_ppm` of it
    /// in equal shares to `rewarded`, burn the rest (and the division's
    /// remainder), and deregister the provider for good. Its open disputes
    /// close with nothing left to slash.
    pub(crate) fn slash_provider(&mut self, provider: AccountId, rewarded: &[AccountId]) {
        let collateral = self.providers.remove(&provider).map_or(0, |p| p.stake);
        let pool = fraction(collateral, self.params.audit.auditor_reward_ppm.min(PPM));
        let share = pool / rewarded.len().max(1) as Amount;
        for who in rewarded {
            let account = self.accounts.entry(*who).or_default();
            account.balance = account.balance.saturating_add(share);
        }
        let paid = share * rewarded.len() as Amount;
        self.burned = self.burned.saturating_add(u128::from(collateral - paid));
        let record = self.provider_audits.entry(provider).or_default();
        record.audits_failed = record.audits_failed.saturating_add(1);
        record.slashed = true;
        record.slashed_amount = collateral;
        self.disputes.retain(|_, d| d.provider != provider);
    }

    /// Drop batches whose audit window closed (with their verdicts) and
    /// expire disputes nobody decided in time (run at the start of every block).
    pub(crate) fn prune_audits(&mut self, height: Height) {
        let a = &self.params.audit;
        let (audit_window, dispute_window) = (a.audit_window_blocks, a.dispute_window_blocks);
        let before = self.batches.len();
        self.batches
            .retain(|_, b| height <= b.height.saturating_add(audit_window));
        if self.batches.len() != before {
            let live = &self.batches;
            self.verdicts
                .retain(|(batch, _, _), _| live.contains_key(batch));
            self.data_batches
                .retain(|batch, _| live.contains_key(batch));
            self.validation_requests
                .retain(|(batch, _), _| live.contains_key(batch));
        }
        self.disputes
            .retain(|_, d| height <= d.opened_at.saturating_add(dispute_window));
    }
}
