//! The data market (compute-to-data): registering datasets and algorithms,
//! opening a paid job (the buyer escrows the most it can cost), settling a
//! host's signed receipts (each pays what the charge policy says, the rest
//! goes back, and the receipts become an auditable batch drawn like any
//! other), and cancelling a job its host never settled. A data batch's
//! audits are exact re-runs, so a failed one goes straight to a dispute and
//! a confirmed one slashes the host's provider collateral.

use std::collections::BTreeSet;

use agora_types::audit::batch_id;
use agora_types::data::{data_job_id, DataCharge, DataPrices};
use agora_types::{
    merkle, AccountId, AlgorithmEntry, DataJob, DatasetEntry, Hash32, Height, ReceiptBatch,
    SignedDataReceipt,
};

use crate::registry::check_text;
use crate::{State, TxError};

/// The fields of an `OpenDataJob` transaction.
#[derive(Clone, Copy, Debug)]
pub(crate) struct JobOrder {
    pub(crate) dataset: Hash32,
    pub(crate) algorithm: Hash32,
    pub(crate) host: AccountId,
    pub(crate) params_hash: Hash32,
    pub(crate) max_fuel: u64,
}

/// Free text that may span lines (a schema): printable but for newlines and tabs.
fn check_description(value: &str, max: usize) -> Result<(), TxError> {
    if value.len() > max
        || value
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(TxError::InvalidField {
            field: "dataset.description",
            reason: format!("must be at most {max} bytes of text"),
        });
    }
    Ok(())
}

impl State {
    /// Whether `host` may run jobs now: a registered provider never slashed.
    fn host_is_live(&self, host: &AccountId) -> bool {
        self.providers.contains_key(host)
            && !self.provider_audits.get(host).is_some_and(|a| a.slashed)
    }

    /// `RegisterDataset`.
    pub(crate) fn register_dataset(
        &mut self,
        sender: AccountId,
        dataset: &DatasetEntry,
    ) -> Result<(), TxError> {
        let p = &self.params.data;
        if dataset.owner != sender {
            return Err(TxError::OwnerMismatch {
                sender,
                owner: dataset.owner,
            });
        }
        check_text("dataset.name", &dataset.name, p.max_name_bytes as usize)?;
        check_description(&dataset.description, p.max_description_bytes as usize)?;
        let hosts: BTreeSet<_> = dataset.hosts.iter().collect();
        if hosts.is_empty()
            || dataset.hosts.len() > p.max_hosts as usize
            || hosts.len() != dataset.hosts.len()
        {
            return Err(TxError::InvalidField {
                field: "dataset.hosts",
                reason: format!("must name 1 to {} distinct hosts", p.max_hosts),
            });
        }
        if let Some(host) = dataset.hosts.iter().find(|h| !self.host_is_live(h)) {
            return Err(TxError::NotAHost {
                dataset: dataset.id,
                host: *host,
            });
        }
        if let agora_types::AccessPolicy::Allow(ids) = &dataset.policy {
            let distinct: BTreeSet<_> = ids.iter().collect();
            if ids.is_empty()
                || ids.len() > p.max_allowed_algorithms as usize
                || distinct.len() != ids.len()
            {
                return Err(TxError::InvalidField {
                    field: "dataset.policy",
                    reason: format!(
                        "an allow-list names 1 to {} distinct algorithms",
                        p.max_allowed_algorithms
                    ),
                });
            }
        }
        if self.datasets.contains_key(&dataset.id) {
            return Err(TxError::DatasetExists(dataset.id));
        }
        let fee = p.registration_fee;
        self.debit(sender, fee)?;
        self.burned = self.burned.saturating_add(u128::from(fee));
        self.datasets.insert(dataset.id, dataset.clone());
        Ok(())
    }

    /// `RegisterAlgorithm`.
    pub(crate) fn register_algorithm(
        &mut self,
        sender: AccountId,
        algorithm: &AlgorithmEntry,
    ) -> Result<(), TxError> {
        if algorithm.owner != sender {
            return Err(TxError::OwnerMismatch {
                sender,
                owner: algorithm.owner,
            });
        }
        check_text(
            "algorithm.name",
            &algorithm.name,
            self.params.data.max_name_bytes as usize,
        )?;
        if self.algorithms.contains_key(&algorithm.id) {
            return Err(TxError::AlgorithmExists(algorithm.id));
        }
        let fee = self.params.data.registration_fee;
        self.debit(sender, fee)?;
        self.burned = self.burned.saturating_add(u128::from(fee));
        self.algorithms.insert(algorithm.id, algorithm.clone());
        Ok(())
    }

    /// `OpenDataJob`: check the policy and the host, fix the prices, escrow the most.
    pub(crate) fn open_data_job(
        &mut self,
        buyer: AccountId,
        nonce: u64,
        order: JobOrder,
        height: Height,
    ) -> Result<(), TxError> {
        let dataset = self
            .datasets
            .get(&order.dataset)
            .ok_or(TxError::UnknownDataset(order.dataset))?;
        let algorithm = self
            .algorithms
            .get(&order.algorithm)
            .ok_or(TxError::UnknownAlgorithm(order.algorithm))?;
        if !dataset.policy.allows(&order.algorithm) {
            return Err(TxError::PolicyRefuses {
                dataset: order.dataset,
                algorithm: order.algorithm,
            });
        }
        if !dataset.hosts.contains(&order.host) || !self.host_is_live(&order.host) {
            return Err(TxError::NotAHost {
                dataset: order.dataset,
                host: order.host,
            });
        }
        let most = self.params.data.max_job_fuel;
        if order.max_fuel == 0 || order.max_fuel > most {
            return Err(TxError::InvalidField {
                field: "max_fuel",
                reason: format!("must be 1 to {most}"),
            });
        }
        let prices = DataPrices {
            dataset_per_run: dataset.price_per_run,
            algorithm_per_run: algorithm.price_per_run,
            per_mfuel: dataset.price_per_mfuel,
        };
        let escrow = prices.max_charge(order.max_fuel);
        self.debit(buyer, escrow)?;
        let id = data_job_id(&buyer, nonce);
        self.data_jobs.insert(
            id,
            DataJob {
                id,
                buyer,
                dataset: order.dataset,
                algorithm: order.algorithm,
                host: order.host,
                params_hash: order.params_hash,
                max_fuel: order.max_fuel,
                prices,
                escrow,
                opened_at: height,
            },
        );
        Ok(())
    }

    /// Check one receipt against its job; the charge it must carry.
    fn check_receipt(
        &self,
        host: &AccountId,
        signed: &SignedDataReceipt,
    ) -> Result<DataCharge, TxError> {
        let r = &signed.receipt;
        let job = self
            .data_jobs
            .get(&r.job)
            .ok_or(TxError::UnknownDataJob(r.job))?;
        if job.host != *host || signed.host != *host {
            return Err(TxError::NotYourDataJob {
                job: r.job,
                action: "settle",
            });
        }
        let mismatch = |reason: &str| TxError::ReceiptMismatch {
            job: r.job,
            reason: reason.into(),
        };
        signed
            .verify()
            .map_err(|_| mismatch("bad host signature"))?;
        if (r.dataset, r.algorithm, r.params_hash) != (job.dataset, job.algorithm, job.params_hash)
        {
            return Err(mismatch(
                "dataset, algorithm or parameters differ from the job's",
            ));
        }
        if r.max_fuel != job.max_fuel || r.fuel_used > job.max_fuel {
            return Err(mismatch("fuel budget or fuel used is not the job's"));
        }
        let charge = job.prices.charge(r.status, r.fuel_used);
        if r.charge != charge.total() {
            return Err(mismatch(&format!(
                "charge {} is not the policy's {}",
                r.charge,
                charge.total()
            )));
        }
        Ok(charge)
    }

    /// `SettleDataJobs`: pay and refund each job, then commit the receipts as a batch.
    pub(crate) fn settle_data_jobs(
        &mut self,
        host: AccountId,
        nonce: u64,
        receipts: &[SignedDataReceipt],
        height: Height,
    ) -> Result<(), TxError> {
        let max = self.params.data.max_settle_receipts;
        if receipts.is_empty() || receipts.len() > max as usize {
            return Err(TxError::InvalidField {
                field: "receipts",
                reason: format!("a settlement carries 1 to {max} receipts"),
            });
        }
        if !self.host_is_live(&host) {
            return Err(TxError::NotAProvider(host));
        }
        let jobs: BTreeSet<_> = receipts.iter().map(|r| r.receipt.job).collect();
        if jobs.len() != receipts.len() {
            return Err(TxError::InvalidField {
                field: "receipts",
                reason: "a job appears twice".into(),
            });
        }
        let charges = receipts
            .iter()
            .map(|r| self.check_receipt(&host, r))
            .collect::<Result<Vec<_>, _>>()?;
        self.check_batch_room(height)?;
        // Everything is checked: from here on nothing fails.
        self.count_batch(height);
        for (signed, charge) in receipts.iter().zip(charges) {
            let job = self
                .data_jobs
                .remove(&signed.receipt.job)
                .expect("checked above");
            let dataset_owner = self.datasets.get(&job.dataset).map(|d| d.owner);
            let algorithm_owner = self.algorithms.get(&job.algorithm).map(|a| a.owner);
            // An entry can't be removed today, but if it were, its share goes back.
            let mut refund = job.escrow - charge.total();
            self.pay_data(host, charge.host);
            match dataset_owner {
                Some(owner) => self.pay_data(owner, charge.dataset_owner),
                None => refund += charge.dataset_owner,
            }
            match algorithm_owner {
                Some(owner) => self.pay_data(owner, charge.algorithm_owner),
                None => refund += charge.algorithm_owner,
            }
            let buyer = self.accounts.entry(job.buyer).or_default();
            buyer.balance = buyer.balance.saturating_add(refund);
        }
        let id = batch_id(&host, nonce);
        let leaves: Vec<Hash32> = receipts.iter().map(SignedDataReceipt::leaf).collect();
        self.batches.insert(
            id,
            ReceiptBatch {
                id,
                provider: host,
                model: None,
                root: merkle::root(&leaves),
                first_index: 0,
                count: receipts.len() as u64,
                height,
                channel: None,
                seed: None,
                audits: Vec::new(),
            },
        );
        self.data_batches.insert(id, receipts.to_vec());
        Ok(())
    }

    /// Credit a data payment and record it as earnings.
    fn pay_data(&mut self, to: AccountId, amount: u64) {
        if amount == 0 {
            return;
        }
        let account = self.accounts.entry(to).or_default();
        account.balance = account.balance.saturating_add(amount);
        let earned = self.earnings.entry(to).or_default();
        earned.data = earned.data.saturating_add(u128::from(amount));
    }

    /// `CancelDataJob`: the buyer takes back the escrow of a job its host
    /// did not settle within the job timeout.
    pub(crate) fn cancel_data_job(
        &mut self,
        buyer: AccountId,
        job: &Hash32,
        height: Height,
    ) -> Result<(), TxError> {
        let found = self
            .data_jobs
            .get(job)
            .ok_or(TxError::UnknownDataJob(*job))?;
        if found.buyer != buyer {
            return Err(TxError::NotYourDataJob {
                job: *job,
                action: "cancel",
            });
        }
        let from = found
            .opened_at
            .saturating_add(self.params.data.job_timeout_blocks);
        if height < from {
            return Err(TxError::JobNotTimedOut { job: *job, from });
        }
        let escrow = found.escrow;
        self.data_jobs.remove(job);
        let account = self.accounts.entry(buyer).or_default();
        account.balance = account.balance.saturating_add(escrow);
        Ok(())
    }

    /// `ReportDataEquivocation`: two different receipts one host signed for
    /// one job prove it lied to someone (an honest node signs one receipt
    /// per job and hands out only that one), so its collateral is slashed
    /// and the reporter gets the auditors' share.
    pub(crate) fn report_data_equivocation(
        &mut self,
        reporter: AccountId,
        first: &SignedDataReceipt,
        second: &SignedDataReceipt,
    ) -> Result<(), TxError> {
        if first.host != second.host {
            return Err(TxError::NotEquivocation("signed by different hosts"));
        }
        if first.receipt.job != second.receipt.job {
            return Err(TxError::NotEquivocation("receipts for different jobs"));
        }
        if first.receipt == second.receipt {
            return Err(TxError::NotEquivocation("the receipts are the same"));
        }
        if first.verify().is_err() || second.verify().is_err() {
            return Err(TxError::NotEquivocation("a host signature does not verify"));
        }
        let host = first.host;
        if self.provider_audits.get(&host).is_some_and(|a| a.slashed) {
            return Err(TxError::ProviderSlashed(host));
        }
        if !self.providers.contains_key(&host) {
            return Err(TxError::NotAProvider(host));
        }
        self.slash_provider(host, &[reporter]);
        Ok(())
    }

    /// Whether `batch` holds data receipts (audited by exact re-runs).
    pub(crate) fn is_data_batch(&self, batch: &Hash32) -> bool {
        self.data_batches.contains_key(batch)
    }
}
