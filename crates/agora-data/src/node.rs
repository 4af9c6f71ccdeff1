//! The data node: runs paid jobs next to the data, signs what it did,
//! keeps the result for the buyer, settles on chain, and opens a job's
//! inputs to the validators drawn to re-run it and to nobody else.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_blobs::Collection;
use agora_chain_client::{ChainClient, ClientError};
use agora_sandbox::{Limits, Sandbox};
use agora_types::audit::batch_id;
use agora_types::data::{data_job_seed, output_hash, params_hash};
use agora_types::{
    AccountId, DataJob, DataReceipt, DataRunStatus, Hash32, Keypair, SignedDataReceipt, TxKind,
};
use base64::Engine;
use serde::{Deserialize, Serialize};

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
    /// Give the buyer the honest receipt but settle another, signed anew,
    /// that claims the deadline ended the run (equivocation: the two
    /// receipts together slash it).
    Settlement,
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
    /// Where job records persist (one JSON file per job), so a restart
    /// keeps results for their buyers, receipts for settlement and inputs
    /// for the validators drawn to audit them.
    pub jobs_dir: PathBuf,
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
    kept_until_ms: u64,
}

/// A job record as written to disk.
#[derive(Serialize, Deserialize)]
struct StoredJob {
    receipt: SignedDataReceipt,
    output_base64: String,
    stderr_base64: String,
    params_base64: String,
    buyer: AccountId,
    kept_until_ms: u64,
    /// The batch and leaf index that settled it, once settled.
    settled: Option<(Hash32, u64)>,
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
    jobs_dir: PathBuf,
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
    /// A node serving `config.datasets`, each of which must be on the shelf;
    /// job records kept under `config.jobs_dir` are loaded back (settled
    /// ones past retention deleted, unsettled ones queued for settlement
    /// again whatever their age).
    pub fn new(config: DataNodeConfig) -> Result<Self, DataError> {
        for id in &config.datasets {
            if config.shelf.manifest(id)?.is_none() {
                return Err(DataError::DatasetNotHere(*id));
            }
        }
        std::fs::create_dir_all(&config.jobs_dir)?;
        let (mut results, mut unsettled, mut settled) =
            (HashMap::new(), Vec::new(), HashMap::new());
        let now = now_ms();
        for entry in std::fs::read_dir(&config.jobs_dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let stored: StoredJob =
                match std::fs::read(&path).map_err(DataError::from).and_then(|b| {
                    serde_json::from_slice(&b).map_err(|e| DataError::Remote(e.to_string()))
                }) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("skipping unreadable job record {}: {e}", path.display());
                        continue;
                    }
                };
            // An unsettled record outlives retention until it is settled.
            if stored.kept_until_ms < now && stored.settled.is_some() {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let job = stored.receipt.receipt.job;
            match stored.settled {
                Some(at) => {
                    settled.insert(job, at);
                }
                None => unsettled.push(stored.receipt.clone()),
            }
            results.insert(job, stored.into_record()?);
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
            jobs_dir: config.jobs_dir,
            running: Mutex::new(HashSet::new()),
            results: Mutex::new(results),
            unsettled: Mutex::new(unsettled),
            settled: Mutex::new(settled),
        })))
    }

    /// Write `record` (and where it was settled) to its file, atomically.
    fn persist(&self, record: &JobRecord, settled: Option<(Hash32, u64)>) -> Result<(), DataError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let stored = StoredJob {
            receipt: record.receipt.clone(),
            output_base64: b64.encode(&record.output),
            stderr_base64: b64.encode(&record.stderr),
            params_base64: b64.encode(&record.params),
            buyer: record.buyer,
            kept_until_ms: record.kept_until_ms,
            settled,
        };
        let job = &record.receipt.receipt.job;
        let tmp = self.0.jobs_dir.join(format!(".{}.tmp", job.to_hex()));
        let bytes = serde_json::to_vec(&stored).map_err(|e| DataError::Remote(e.to_string()))?;
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, record_path(&self.0.jobs_dir, job))?;
        Ok(())
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
        self.persist(&record, None)?;
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
            kept_until_ms: now_ms().saturating_add(self.0.retention.as_millis() as u64),
        })
    }

    /// A kept result, dropping those past retention, but never one whose
    /// receipt still waits for settlement: while its job is open on chain,
    /// forgetting the record would let the buyer ask for a second run, and
    /// a second receipt for one job (a wall-clock deadline can end it
    /// differently) is slashable equivocation.
    fn kept(&self, job: &Hash32) -> Option<JobRecord> {
        let waiting: HashSet<Hash32> = (self.0.unsettled.lock().expect("unsettled lock"))
            .iter()
            .map(|r| r.receipt.job)
            .collect();
        let mut results = self.0.results.lock().expect("results lock");
        let now = now_ms();
        let jobs_dir = &self.0.jobs_dir;
        results.retain(|id, r| {
            let keep = r.kept_until_ms >= now || waiting.contains(id);
            if !keep {
                let _ = std::fs::remove_file(record_path(jobs_dir, id));
            }
            keep
        });
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
    /// failure they stay queued. They stay in the queue while the
    /// transaction is in flight, so their records are never dropped before
    /// the chain has settled them (see `kept`).
    pub async fn settle(&self) -> Result<Option<Hash32>, DataError> {
        let receipts: Vec<SignedDataReceipt> = {
            let queue = self.0.unsettled.lock().expect("unsettled lock");
            let n = queue.len().min(self.0.max_settle);
            queue[..n].to_vec()
        };
        if receipts.is_empty() {
            return Ok(None);
        }
        let kind = TxKind::SettleDataJobs {
            receipts: match self.0.tamper {
                Tamper::Settlement => receipts.iter().map(|r| self.equivocate(r)).collect(),
                _ => receipts.clone(),
            },
        };
        let sent = self
            .0
            .chain
            .send_and_confirm(&self.0.key, kind, SETTLE_TIMEOUT)
            .await;
        let mut done_with = HashSet::new();
        let answer = match sent {
            Ok(done) => {
                let batch = batch_id(&self.account(), done.nonce);
                for (i, r) in receipts.iter().enumerate() {
                    let at = (batch, i as u64);
                    self.0
                        .settled
                        .lock()
                        .expect("settled lock")
                        .insert(r.receipt.job, at);
                    if let Some(record) = self.kept(&r.receipt.job) {
                        if let Err(e) = self.persist(&record, Some(at)) {
                            tracing::warn!(job = %r.receipt.job, "recording the settlement: {e}");
                        }
                    }
                    done_with.insert(r.receipt.job);
                }
                Ok(Some(batch))
            }
            Err(e) => {
                for r in &receipts {
                    // A job the chain no longer holds can never be settled.
                    if let Err(ClientError::Rejected { status: 404, .. }) =
                        self.0.chain.data_job(&r.receipt.job).await
                    {
                        tracing::warn!(job = %r.receipt.job, "dropping the receipt of a job no longer open on chain");
                        done_with.insert(r.receipt.job);
                    }
                }
                Err(e.into())
            }
        };
        (self.0.unsettled.lock().expect("unsettled lock"))
            .retain(|r| !done_with.contains(&r.receipt.job));
        answer
    }

    /// [`Tamper::Settlement`]'s second receipt for a job: the deadline
    /// ended it, so it charges nothing and has no output.
    fn equivocate(&self, honest: &SignedDataReceipt) -> SignedDataReceipt {
        let status = DataRunStatus::DeadlineExceeded;
        DataReceipt {
            status,
            output_hash: output_hash(&[]),
            charge: 0,
            ..honest.receipt.clone()
        }
        .sign(&self.0.key)
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

    /// The `n`th file of a settled job's dataset, for its auditor (the
    /// grant is checked again; the module is not read).
    pub async fn audit_file(
        &self,
        job: &Hash32,
        n: usize,
        grant: &AccessGrant,
    ) -> Result<std::path::PathBuf, DataError> {
        self.check_auditor(job, grant).await?;
        let kept = self.kept(job).ok_or(DataError::NoResult(*job))?;
        let dataset = kept.receipt.receipt.dataset;
        let manifest = self
            .0
            .shelf
            .manifest(&dataset)?
            .ok_or(DataError::DatasetNotHere(dataset))?;
        let file = manifest
            .files
            .get(n)
            .ok_or_else(|| DataError::Remote(format!("the dataset has no file {n}")))?;
        self.0
            .shelf
            .file(&file.id)?
            .ok_or(DataError::DatasetNotHere(dataset))
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

impl StoredJob {
    fn into_record(self) -> Result<JobRecord, DataError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let decode = |t: &str| {
            b64.decode(t)
                .map_err(|e| DataError::Remote(format!("job record: {e}")))
        };
        Ok(JobRecord {
            output: decode(&self.output_base64)?,
            stderr: decode(&self.stderr_base64)?,
            params: decode(&self.params_base64)?,
            receipt: self.receipt,
            buyer: self.buyer,
            kept_until_ms: self.kept_until_ms,
        })
    }
}

/// Where job `id`'s record is kept under `jobs_dir`.
fn record_path(jobs_dir: &std::path::Path, id: &Hash32) -> PathBuf {
    jobs_dir.join(format!("{}.json", id.to_hex()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use agora_types::data::output_hash;
    use agora_types::DataRunStatus;

    fn record(host: &Keypair, buyer: AccountId, job: u8, kept_until_ms: u64) -> JobRecord {
        let receipt = DataReceipt {
            job: Hash32([job; 32]),
            dataset: Hash32([1; 32]),
            algorithm: Hash32([2; 32]),
            params_hash: params_hash(b"k=1"),
            status: DataRunStatus::Success,
            output_hash: output_hash(b"out"),
            fuel_used: 9,
            max_fuel: 10,
            charge: 3,
        }
        .sign(host);
        JobRecord {
            receipt,
            output: b"out".to_vec(),
            stderr: vec![0xff],
            params: b"k=1".to_vec(),
            buyer,
            kept_until_ms,
        }
    }

    fn node(dir: &std::path::Path, host: &Keypair) -> DataNode {
        DataNode::new(DataNodeConfig {
            key: host.clone(),
            // Never dialled: loading records needs no chain.
            chain: ChainClient::new("http://127.0.0.1:9"),
            shelf: Shelf::open(&dir.join("shelf")).unwrap(),
            datasets: vec![],
            deadline: Duration::from_secs(1),
            retention: Duration::from_secs(60),
            max_settle: 4,
            tamper: Tamper::None,
            jobs_dir: dir.join("jobs"),
        })
        .unwrap()
    }

    #[test]
    fn job_records_survive_a_restart_until_they_expire() {
        let dir = tempfile::tempdir().unwrap();
        let host = Keypair::from_seed([7; 32]);
        let buyer = Keypair::from_seed([8; 32]);
        let far = now_ms() + 3_600_000;
        let (settled, pending, expired, overdue) = (
            record(&host, buyer.account(), 1, far),
            record(&host, buyer.account(), 2, far),
            record(&host, buyer.account(), 3, 1),
            record(&host, buyer.account(), 4, 1),
        );
        let first = node(dir.path(), &host);
        first.persist(&settled, Some((Hash32([9; 32]), 3))).unwrap();
        first.persist(&pending, None).unwrap();
        first.persist(&expired, Some((Hash32([9; 32]), 4))).unwrap();
        first.persist(&overdue, None).unwrap();
        drop(first);

        let again = node(dir.path(), &host);
        let grant = |job: u8| {
            AccessGrant::sign(
                &buyer,
                &host.account(),
                &Hash32([job; 32]),
                Purpose::Result,
                now_ms(),
            )
        };
        let back = again.result(&Hash32([1; 32]), &grant(1)).unwrap();
        assert_eq!(
            (back.output, back.stderr, back.params),
            (settled.output, settled.stderr, settled.params)
        );
        assert_eq!(back.receipt, settled.receipt);
        assert_eq!(
            again.unsettled(),
            2,
            "the unsettled receipts are queued again"
        );
        // Past retention but never settled: kept, so a second run of the
        // job (a second, possibly different, receipt) cannot happen.
        let kept = again.result(&Hash32([4; 32]), &grant(4)).unwrap();
        assert_eq!(kept.receipt, overdue.receipt);
        assert_eq!(
            again.0.settled.lock().unwrap().get(&Hash32([1; 32])),
            Some(&(Hash32([9; 32]), 3)),
            "where it was settled is remembered, so its auditor is let in"
        );
        assert!(matches!(
            again.result(&Hash32([3; 32]), &grant(3)),
            Err(DataError::NoResult(_))
        ));
        assert!(!record_path(&dir.path().join("jobs"), &Hash32([3; 32])).exists());
        // The buyer's grant does not open another buyer's job.
        let thief = Keypair::from_seed([5; 32]);
        let stolen = AccessGrant::sign(
            &thief,
            &host.account(),
            &Hash32([1; 32]),
            Purpose::Result,
            now_ms(),
        );
        assert!(matches!(
            again.result(&Hash32([1; 32]), &stolen),
            Err(DataError::Denied(_))
        ));
    }
}
