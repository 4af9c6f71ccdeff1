//! The data node: runs paid jobs next to the data, signs what it did,
//! keeps the result for the buyer, settles on chain, and opens a job's
//! inputs to the validators drawn to re-run it and to nobody else.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora_blobs::Collection;
use agora_chain_client::{ChainClient, ClientError};
use agora_sandbox::{Limits, Sandbox};
use agora_types::audit::batch_id;
use agora_types::data::{data_job_seed, output_hash, params_hash};
use agora_types::{AccountId, DataJob, DataReceipt, Hash32, Keypair, SignedDataReceipt, TxKind};

use crate::access::{now_ms, AccessGrant, Purpose};
use crate::{receipt_status, DataError, Shelf};

/// How long a settlement waits to be committed.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A deliberately dishonest node, for tests and devnets that must show
/// the cheat being caught.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tamper {
    /// Honest.
    #[default]
    None,
    /// Sign a receipt for an output it altered (a lie a re-run exposes).
    Output,
}

/// How a data node runs.
pub struct DataNodeConfig {
    /// Its provider key: signs receipts and settlements.
    pub key: Keypair,
    /// The chain it reads jobs from and settles on.
    pub chain: ChainClient,
    /// Its datasets and modules.
    pub shelf: Shelf,
    /// The datasets it serves jobs for (each must be on the shelf).
    pub datasets: Vec<Hash32>,
    /// Wall-clock limit of one run (protects the host; never charged).
    pub deadline: Duration,
    /// How long a result is kept for its buyer.
    pub retention: Duration,
    /// Most receipts per settlement.
    pub max_settle: usize,
    /// Honest or not.
    pub tamper: Tamper,
}

/// One job's result as kept for its buyer and its auditors.
#[derive(Clone, Debug)]
pub struct JobRecord {
    /// The signed receipt.
    pub receipt: SignedDataReceipt,
    /// What the algorithm wrote to stdout (empty unless it completed).
    pub output: Vec<u8>,
    /// Its diagnostics (not part of the receipt).
    pub stderr: Vec<u8>,
    /// The parameters it ran with.
    pub params: Vec<u8>,
    /// Who paid for it.
    pub buyer: AccountId,
    kept_until: Instant,
}

/// What a drawn validator is given to re-run a job.
#[derive(Clone, Debug)]
pub struct AuditBundle {
    /// The job's parameters.
    pub params: Vec<u8>,
    /// The algorithm module.
    pub module: Vec<u8>,
    /// The dataset's manifest (its files are read one by one).
    pub manifest: Collection,
    /// The receipt the host signed.
    pub receipt: SignedDataReceipt,
}

struct Inner {
    key: Keypair,
    chain: ChainClient,
    shelf: Shelf,
    sandbox: Arc<Sandbox>,
    datasets: HashSet<Hash32>,
    deadline: Duration,
    retention: Duration,
    max_settle: usize,
    tamper: Tamper,
    running: Mutex<HashSet<Hash32>>,
    results: Mutex<HashMap<Hash32, JobRecord>>,
    unsettled: Mutex<Vec<SignedDataReceipt>>,
    /// Settled jobs: (batch, leaf index).
    settled: Mutex<HashMap<Hash32, (Hash32, u64)>>,
}

/// A running data node (cheap to clone).
#[derive(Clone)]
pub struct DataNode(Arc<Inner>);

impl DataNode {
    /// A node serving `config.datasets`, each of which must be on the shelf.
    pub fn new(config: DataNodeConfig) -> Result<Self, DataError> {
        for id in &config.datasets {
            if config.shelf.manifest(id)?.is_none() {
                return Err(DataError::DatasetNotHere(*id));
            }
        }
        Ok(DataNode(Arc::new(Inner {
            key: config.key,
            chain: config.chain,
            shelf: config.shelf,
            sandbox: Sandbox::new()?,
            datasets: config.datasets.into_iter().collect(),
            deadline: config.deadline,
            retention: config.retention,
            max_settle: config.max_settle.max(1),
            tamper: config.tamper,
            running: Mutex::new(HashSet::new()),
            results: Mutex::new(HashMap::new()),
            unsettled: Mutex::new(Vec::new()),
            settled: Mutex::new(HashMap::new()),
        })))
    }

    /// The host account.
    pub fn account(&self) -> AccountId {
        self.0.key.account()
    }

    /// The datasets it serves.
    pub fn datasets(&self) -> Vec<Hash32> {
        let mut ids: Vec<_> = self.0.datasets.iter().copied().collect();
        ids.sort();
        ids
    }

    /// The buyer runs its job: check it against the chain (open, ours, the
    /// buyer's grant, the committed parameters and module), run it, sign the
    /// receipt, keep the result and queue the receipt for settlement. Asking
    /// again for a job already run returns the kept result.
    pub async fn run(
        &self,
        job_id: Hash32,
        params: Vec<u8>,
        module: Option<Vec<u8>>,
        grant: &AccessGrant,
    ) -> Result<JobRecord, DataError> {
        let me = self.account();
        grant
            .verify(&me, &job_id, Purpose::Run, now_ms())
            .map_err(DataError::Denied)?;
        if let Some(kept) = self.kept(&job_id) {
            return check_buyer(kept, &grant.account);
        }
        let job = match self.0.chain.data_job(&job_id).await {
            Ok(job) => job,
            Err(ClientError::Rejected { status: 404, .. }) => {
                return Err(DataError::UnknownJob(job_id))
            }
            Err(e) => return Err(e.into()),
        };
        if job.host != me {
            return Err(DataError::NotMyJob(job_id));
        }
        if job.buyer != grant.account {
            return Err(DataError::Denied("only the job's buyer may run it".into()));
        }
        if !self.0.datasets.contains(&job.dataset) {
            return Err(DataError::DatasetNotHere(job.dataset));
        }
        if params_hash(&params) != job.params_hash {
            return Err(DataError::ParamsMismatch);
        }
        let wasm = self.module(&job.algorithm, module)?;
        if !self.0.running.lock().expect("running lock").insert(job_id) {
            return Err(DataError::Busy(job_id));
        }
        let result = self.execute(&job, params, wasm).await;
        self.0.running.lock().expect("running lock").remove(&job_id);
        let record = result?;
        self.0
            .results
            .lock()
            .expect("results lock")
            .insert(job_id, record.clone());
        self.0
            .unsettled
            .lock()
            .expect("unsettled lock")
            .push(record.receipt.clone());
        Ok(record)
    }

    /// The module for `id`: the bytes sent (checked against the id and
    /// kept) or the copy on the shelf.
    fn module(&self, id: &Hash32, sent: Option<Vec<u8>>) -> Result<Vec<u8>, DataError> {
        if let Some(wasm) = sent {
            if Hash32(*blake3::hash(&wasm).as_bytes()) != *id {
                return Err(DataError::Module(
                    *id,
                    "the bytes sent do not hash to the job's algorithm".into(),
                ));
            }
            self.0.shelf.add_module(&wasm)?;
            return Ok(wasm);
        }
        self.0.shelf.module(id)?.ok_or_else(|| {
            DataError::Module(*id, "not held here: send the module with the job".into())
        })
    }

    async fn execute(
        &self,
        job: &DataJob,
        params: Vec<u8>,
        wasm: Vec<u8>,
    ) -> Result<JobRecord, DataError> {
        let inner = self.0.clone();
        let (dataset, max_fuel, id) = (job.dataset, job.max_fuel, job.id);
        let outcome = tokio::task::spawn_blocking(move || -> Result<_, DataError> {
            let mount = inner.shelf.mount(&dataset)?;
            let algorithm = inner.sandbox.load(&wasm)?;
            let limits = Limits {
                max_fuel,
                deadline: inner.deadline,
                ..Limits::default()
            };
            let seed = data_job_seed(&id).0;
            Ok((
                inner
                    .sandbox
                    .run(&algorithm, &mount, &params, &seed, &limits)?,
                params,
            ))
        })
        .await
        .map_err(|e| DataError::Remote(format!("the run panicked: {e}")))??;
        let (outcome, params) = outcome;
        let status = receipt_status(outcome.status);
        let mut output = outcome.output;
        if self.0.tamper == Tamper::Output && status.completed() {
            output.extend_from_slice(b" ");
        }
        let receipt = DataReceipt {
            job: job.id,
            dataset: job.dataset,
            algorithm: job.algorithm,
            params_hash: job.params_hash,
            status,
            output_hash: output_hash(&output),
            fuel_used: outcome.fuel_used,
            max_fuel: job.max_fuel,
            charge: job.prices.charge(status, outcome.fuel_used).total(),
        }
        .sign(&self.0.key);
        Ok(JobRecord {
            receipt,
            output,
            stderr: outcome.stderr,
            params,
            buyer: job.buyer,
            kept_until: Instant::now() + self.0.retention,
        })
    }

    /// A kept result, dropping those past retention.
    fn kept(&self, job: &Hash32) -> Option<JobRecord> {
        let mut results = self.0.results.lock().expect("results lock");
        let now = Instant::now();
        results.retain(|_, r| r.kept_until > now);
        results.get(job).cloned()
    }

    /// The buyer reads its kept result.
    pub fn result(&self, job: &Hash32, grant: &AccessGrant) -> Result<JobRecord, DataError> {
        grant
            .verify(&self.account(), job, Purpose::Result, now_ms())
            .map_err(DataError::Denied)?;
        let kept = self.kept(job).ok_or(DataError::NoResult(*job))?;
        check_buyer(kept, &grant.account)
    }

    /// Settle up to `max_settle` queued receipts in one transaction; the
    /// batch id, or `None` with nothing queued. Receipts of jobs the chain
    /// no longer holds (cancelled meanwhile) are dropped; on any other
    /// failure the receipts are queued again.
    pub async fn settle(&self) -> Result<Option<Hash32>, DataError> {
        let receipts: Vec<SignedDataReceipt> = {
            let mut queue = self.0.unsettled.lock().expect("unsettled lock");
            let n = queue.len().min(self.0.max_settle);
            queue.drain(..n).collect()
        };
        if receipts.is_empty() {
            return Ok(None);
        }
        let kind = TxKind::SettleDataJobs {
            receipts: receipts.clone(),
        };
        match self
            .0
            .chain
            .send_and_confirm(&self.0.key, kind, SETTLE_TIMEOUT)
            .await
        {
            Ok(done) => {
                let batch = batch_id(&self.account(), done.nonce);
                let mut settled = self.0.settled.lock().expect("settled lock");
                for (i, r) in receipts.iter().enumerate() {
                    settled.insert(r.receipt.job, (batch, i as u64));
                }
                Ok(Some(batch))
            }
            Err(e) => {
                let mut keep = Vec::new();
                for r in receipts {
                    // A job the chain no longer holds can never be settled.
                    match self.0.chain.data_job(&r.receipt.job).await {
                        Err(ClientError::Rejected { status: 404, .. }) => {
                            tracing::warn!(job = %r.receipt.job, "dropping the receipt of a job no longer open on chain")
                        }
                        _ => keep.push(r),
                    }
                }
                let mut queue = self.0.unsettled.lock().expect("unsettled lock");
                keep.append(&mut queue);
                *queue = keep;
                Err(e.into())
            }
        }
    }

    /// Receipts waiting for settlement.
    pub fn unsettled(&self) -> usize {
        self.0.unsettled.lock().expect("unsettled lock").len()
    }

    /// A validator asks for a settled job's inputs: granted only to the
    /// auditor the chain drew for the job, or a member of the committee of
    /// a dispute about it.
    pub async fn audit_bundle(
        &self,
        job: &Hash32,
        grant: &AccessGrant,
    ) -> Result<AuditBundle, DataError> {
        self.check_auditor(job, grant).await?;
        let kept = self.kept(job).ok_or(DataError::NoResult(*job))?;
        let r = &kept.receipt.receipt;
        let module = self
            .0
            .shelf
            .module(&r.algorithm)?
            .ok_or_else(|| DataError::Module(r.algorithm, "no longer held".into()))?;
        let manifest = self
            .0
            .shelf
            .manifest(&r.dataset)?
            .ok_or(DataError::DatasetNotHere(r.dataset))?;
        Ok(AuditBundle {
            params: kept.params.clone(),
            module,
            manifest,
            receipt: kept.receipt.clone(),
        })
    }

    /// The `n`th file of a settled job's dataset, for its auditor.
    pub async fn audit_file(
        &self,
        job: &Hash32,
        n: usize,
        grant: &AccessGrant,
    ) -> Result<std::path::PathBuf, DataError> {
        let bundle = self.audit_bundle(job, grant).await?;
        let file = bundle
            .manifest
            .files
            .get(n)
            .ok_or_else(|| DataError::Remote(format!("the dataset has no file {n}")))?;
        self.0
            .shelf
            .file(&file.id)?
            .ok_or(DataError::DatasetNotHere(bundle.receipt.receipt.dataset))
    }

    async fn check_auditor(&self, job: &Hash32, grant: &AccessGrant) -> Result<(), DataError> {
        grant
            .verify(&self.account(), job, Purpose::Audit, now_ms())
            .map_err(DataError::Denied)?;
        let (batch, index) = *self
            .0
            .settled
            .lock()
            .expect("settled lock")
            .get(job)
            .ok_or_else(|| DataError::Denied("the job is not settled in a batch".into()))?;
        let who = grant.account;
        let drawn = match self.0.chain.batch(&batch).await {
            Ok(b) => b.audits.contains(&(index, who)),
            Err(ClientError::Rejected { status: 404, .. }) => false,
            Err(e) => return Err(e.into()),
        };
        let on_committee =
            || async {
                Ok::<_, DataError>(
                    self.0.chain.disputes().await?.iter().any(|d| {
                        d.batch == batch && d.index == index && d.committee.contains(&who)
                    }),
                )
            };
        if drawn || on_committee().await? {
            Ok(())
        } else {
            Err(DataError::Denied(
                "only the validators drawn to audit this job may read its inputs".into(),
            ))
        }
    }
}

fn check_buyer(kept: JobRecord, who: &AccountId) -> Result<JobRecord, DataError> {
    if kept.buyer == *who {
        Ok(kept)
    } else {
        Err(DataError::Denied(
            "only the job's buyer may read its result".into(),
        ))
    }
}
