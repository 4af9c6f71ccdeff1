//! Channel-paid jobs: the receipts under a payer's vouchers, in the payer's
//! order. A voucher is taken only with the ids of the jobs it adds; the
//! provider checks each is a job it ran for the channel's model and paid by
//! no other channel, and that the voucher's root is the Merkle root of those
//! receipts. So every root it settles is one whose proofs it can serve: the
//! chain audits settlements like commits, and being paid is committing.
//!
//! A settlement may add at most [`MAX_JOBS_PER_SETTLEMENT`] jobs (the chain
//! bounds it too), so a voucher that would go past that keeps the one before
//! it as a *step*, settled first.

use agora_types::audit::{receipt_leaf, JobProof};
use agora_types::merkle::{self, MerkleProof};
use agora_types::provenance::ReceiptInclusion;
use agora_types::rpc::ChannelInfo;
use agora_types::{codec, Hash32, Height, SignedVoucher, Transcript, VoucherDelivery};
use borsh::{BorshDeserialize, BorshSerialize};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::transcripts::TRANSCRIPTS;
use crate::vouchers::{unsettled_held, HeldVoucher, VoucherError, VOUCHERS};
use crate::{ProviderError, Pruned, TranscriptStore};

/// Jobs of each channel in the payer's order: channel ‖ index (big-endian) -> job ‖ leaf.
const PAID_JOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("paid_jobs");
/// The channel that paid each job: job -> channel.
const PAID_BY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("paid_by");
/// Roots being or already settled: root -> [`PaidRoot`].
const PAID_ROOTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("paid_roots");
/// Vouchers to settle before a channel's latest: channel ‖ jobs (big-endian) -> voucher.
const VOUCHER_STEPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("voucher_steps");
/// Jobs of each channel whose transcripts are already deleted: channel -> count.
const PAID_PRUNED: TableDefinition<&[u8], u64> = TableDefinition::new("paid_pruned");
/// The Merkle frontier of each channel's paid jobs: channel -> borsh
/// [`merkle::Frontier`], so checking a voucher's root costs O(log n), not a
/// pass over every job the channel ever paid.
pub(crate) const PAID_FRONTIERS: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("paid_frontiers");

/// Most jobs one settlement adds; at most the chain's `max_batch_jobs` default (4,096).
pub const MAX_JOBS_PER_SETTLEMENT: u64 = 1_024;

/// A voucher root the provider settles: which channel, how many jobs, and when it landed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PaidRoot {
    /// The channel.
    pub channel: Hash32,
    /// Jobs under the root (the voucher's `jobs`).
    pub jobs: u64,
    /// Height of the settlement, once known.
    pub settled_at: Option<Height>,
}

/// Create the paid-job tables in a fresh database.
pub(crate) fn create_tables(w: &WriteTransaction) -> Result<(), ProviderError> {
    w.open_table(PAID_JOBS)?;
    w.open_table(PAID_BY)?;
    w.open_table(PAID_ROOTS)?;
    w.open_table(VOUCHER_STEPS)?;
    w.open_table(PAID_PRUNED)?;
    w.open_table(PAID_FRONTIERS)?;
    Ok(())
}

fn key(channel: &Hash32, n: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&channel.0);
    k[32..].copy_from_slice(&n.to_be_bytes());
    k
}

fn corrupt(what: impl std::fmt::Display) -> ProviderError {
    ProviderError::Corrupt(what.to_string())
}

fn split_entry(bytes: &[u8]) -> Result<(Hash32, Hash32), ProviderError> {
    let (job, leaf) = (bytes.get(..32), bytes.get(32..64));
    match (job, leaf) {
        (Some(j), Some(l)) if bytes.len() == 64 => Ok((
            Hash32(j.try_into().map_err(corrupt)?),
            Hash32(l.try_into().map_err(corrupt)?),
        )),
        _ => Err(corrupt(format!(
            "{} bytes in a paid job entry",
            bytes.len()
        ))),
    }
}

/// Jobs held for `channel` (entries are dense from index 0).
fn count(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    channel: &Hash32,
) -> Result<u64, ProviderError> {
    let (lo, hi) = (key(channel, 0), key(channel, u64::MAX));
    Ok(
        match table.range(lo.as_slice()..=hi.as_slice())?.next_back() {
            Some(entry) => {
                let (k, _) = entry?;
                let mut n = [0u8; 8];
                n.copy_from_slice(&k.value()[32..40]);
                u64::from_be_bytes(n) + 1
            }
            None => 0,
        },
    )
}

/// (job, leaf) of the jobs of `channel` with index in `from..to`.
fn entries(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    channel: &Hash32,
    from: u64,
    to: u64,
) -> Result<Vec<(Hash32, Hash32)>, ProviderError> {
    let mut out = Vec::new();
    if from >= to {
        return Ok(out);
    }
    let (lo, hi) = (key(channel, from), key(channel, to - 1));
    for entry in table.range(lo.as_slice()..=hi.as_slice())? {
        let (_, v) = entry?;
        out.push(split_entry(v.value())?);
    }
    Ok(out)
}

/// The newest step voucher of `channel`, if any.
fn last_step(
    steps: &Table<&'static [u8], &'static [u8]>,
    channel: &Hash32,
) -> Result<Option<SignedVoucher>, ProviderError> {
    let (lo, hi) = (key(channel, 0), key(channel, u64::MAX));
    match steps.range(lo.as_slice()..=hi.as_slice())?.next_back() {
        Some(entry) => {
            let (_, v) = entry?;
            Ok(Some(codec::decode(v.value()).map_err(corrupt)?))
        }
        None => Ok(None),
    }
}

impl TranscriptStore {
    /// Take a delivered voucher for `channel` (as the chain has it, already
    /// checked by [`crate::check_voucher`]): add its jobs in the payer's
    /// order, check its root against their receipts, keep it as the
    /// channel's latest. One write transaction: a refused voucher changes nothing.
    pub fn take_voucher(
        &self,
        d: &VoucherDelivery,
        channel: &ChannelInfo,
    ) -> Result<(), VoucherError> {
        let w = self.db.begin_write().map_err(ProviderError::from)?;
        let taken = take(&w, d, channel)?;
        crate::batches::unqueue_pending(&w, &taken)?;
        w.commit().map_err(ProviderError::from)?;
        Ok(())
    }

    /// Vouchers to settle now, in order: each channel's steps, then its latest.
    pub fn due_settlements(&self) -> Result<Vec<SignedVoucher>, ProviderError> {
        let r = self.db.begin_read()?;
        let steps = r.open_table(VOUCHER_STEPS)?;
        let mut out = Vec::new();
        for held in unsettled_held(&r)? {
            let (lo, hi) = (
                key(&held.voucher.voucher.channel, 0),
                key(&held.voucher.voucher.channel, u64::MAX),
            );
            for entry in steps.range(lo.as_slice()..=hi.as_slice())? {
                let (_, b) = entry?;
                let step: SignedVoucher = codec::decode(b.value()).map_err(corrupt)?;
                if step.voucher.cumulative > held.settled {
                    out.push(step);
                }
            }
            out.push(held.voucher);
        }
        Ok(out)
    }

    /// Record that `v`'s root is being settled, so its proofs are served
    /// even if the settlement lands after its wait timed out.
    pub fn settling(&self, v: &SignedVoucher) -> Result<(), ProviderError> {
        let w = self.db.begin_write()?;
        put_root(&w, v, None)?;
        w.commit()?;
        Ok(())
    }

    /// Record that `v` settled at `height`: its root is kept (for audits)
    /// until the audit window passes, and steps it covers are dropped.
    pub fn settled(&self, v: &SignedVoucher, height: Height) -> Result<(), ProviderError> {
        let channel = v.voucher.channel;
        let w = self.db.begin_write()?;
        put_root(&w, v, Some(height))?;
        crate::vouchers::mark_settled(&w, &channel, v.voucher.cumulative)?;
        {
            let mut steps = w.open_table(VOUCHER_STEPS)?;
            let (lo, hi) = (key(&channel, 0), key(&channel, v.voucher.jobs));
            let done: Vec<Vec<u8>> = steps
                .range(lo.as_slice()..=hi.as_slice())?
                .map(|e| e.map(|(k, _)| k.value().to_vec()))
                .collect::<Result<_, _>>()?;
            for k in done {
                steps.remove(k.as_slice())?;
            }
        }
        w.commit()?;
        Ok(())
    }

    /// Job `index` under the settled voucher root `root`, with its proof;
    /// `None` if no settled root or job matches.
    pub fn paid_job_proof(
        &self,
        root: &Hash32,
        index: u64,
    ) -> Result<Option<JobProof>, ProviderError> {
        let r = self.db.begin_read()?;
        let Some(bytes) = r
            .open_table(PAID_ROOTS)?
            .get(root.0.as_slice())?
            .map(|b| b.value().to_vec())
        else {
            return Ok(None);
        };
        let paid: PaidRoot = codec::decode(&bytes).map_err(corrupt)?;
        if index >= paid.jobs {
            return Ok(None);
        }
        let entries = entries(&r.open_table(PAID_JOBS)?, &paid.channel, 0, paid.jobs)?;
        let leaves: Vec<Hash32> = entries.iter().map(|(_, l)| *l).collect();
        let i = usize::try_from(index).map_err(corrupt)?;
        let (Some((job, _)), Some(proof)) = (entries.get(i), MerkleProof::new(&leaves, i)) else {
            return Err(corrupt(format!(
                "root {root} covers {} jobs, {} held",
                paid.jobs,
                entries.len()
            )));
        };
        let Some(t) = self.get(job)? else {
            return Ok(None);
        };
        Ok(Some(JobProof {
            transcript: t,
            proof,
        }))
    }
}

/// Where the settled voucher roots put `job`: the first settled root of its
/// channel that covers it (the settlement whose batch added it), with the
/// proof of its leaf; `None` if no channel paid it or no settlement covers it yet.
pub(crate) fn paid_inclusion(
    r: &redb::ReadTransaction,
    job: &Hash32,
) -> Result<Option<ReceiptInclusion>, ProviderError> {
    let Some(channel) = r.open_table(PAID_BY)?.get(job.0.as_slice())? else {
        return Ok(None);
    };
    let channel = Hash32(channel.value().try_into().map_err(corrupt)?);
    let jobs = r.open_table(PAID_JOBS)?;
    let all = entries(&jobs, &channel, 0, count(&jobs, &channel)?)?;
    let Some(index) = all.iter().position(|(j, _)| j == job) else {
        return Ok(None);
    };
    let mut covering: Option<PaidRoot> = None;
    let mut root = Hash32::ZERO;
    for entry in r.open_table(PAID_ROOTS)?.iter()? {
        let (k, v) = entry?;
        let paid: PaidRoot = codec::decode(v.value()).map_err(corrupt)?;
        let fits = paid.channel == channel && paid.settled_at.is_some() && paid.jobs > index as u64;
        if fits && covering.as_ref().is_none_or(|c| paid.jobs < c.jobs) {
            root = Hash32(k.value().try_into().map_err(corrupt)?);
            covering = Some(paid);
        }
    }
    let Some(paid) = covering else {
        return Ok(None);
    };
    let n = usize::try_from(paid.jobs).map_err(corrupt)?;
    let leaves: Vec<Hash32> = all.iter().take(n).map(|(_, l)| *l).collect();
    let proof = MerkleProof::new(&leaves, index).ok_or_else(|| {
        corrupt(format!(
            "root {root} covers {n} jobs, {} held",
            leaves.len()
        ))
    })?;
    Ok(Some(ReceiptInclusion {
        root,
        proof,
        height: paid.settled_at,
        channel: Some(channel),
    }))
}

/// Record `v`'s root (its channel and job count) inside `w`, settled at `settled_at` if known.
fn put_root(
    w: &WriteTransaction,
    v: &SignedVoucher,
    settled_at: Option<Height>,
) -> Result<(), ProviderError> {
    let root = PaidRoot {
        channel: v.voucher.channel,
        jobs: v.voucher.jobs,
        settled_at,
    };
    w.open_table(PAID_ROOTS)?.insert(
        v.voucher.receipts_root.0.as_slice(),
        codec::encode(&root).as_slice(),
    )?;
    Ok(())
}

/// The checks and writes of [`TranscriptStore::take_voucher`]; returns the jobs added.
fn take(
    w: &WriteTransaction,
    d: &VoucherDelivery,
    channel: &ChannelInfo,
) -> Result<Vec<Hash32>, VoucherError> {
    let v = &d.voucher.voucher;
    let id = v.channel;
    let mut vouchers = w.open_table(VOUCHERS).map_err(ProviderError::from)?;
    let held = match vouchers.get(id.0.as_slice()).map_err(ProviderError::from)? {
        Some(bytes) => Some(codec::decode::<HeldVoucher>(bytes.value()).map_err(corrupt)?),
        None => None,
    };
    if let Some(h) = &held {
        let before = &h.voucher.voucher;
        if v.cumulative < before.cumulative {
            return Err(VoucherError::Decreasing {
                cumulative: v.cumulative,
                held: before.cumulative,
            });
        }
        if v.jobs < before.jobs {
            return Err(VoucherError::JobsDecreased {
                jobs: v.jobs,
                held: before.jobs,
            });
        }
    }
    let mut jobs = w.open_table(PAID_JOBS).map_err(ProviderError::from)?;
    let mut paid_by = w.open_table(PAID_BY).map_err(ProviderError::from)?;
    let transcripts = w.open_table(TRANSCRIPTS).map_err(ProviderError::from)?;
    let have = count(&jobs, &id)?;
    if d.first_job > have {
        return Err(VoucherError::MissingJobs {
            held: have,
            needed: d.first_job,
        });
    }
    let mut frontiers = w.open_table(PAID_FRONTIERS).map_err(ProviderError::from)?;
    let stored = match frontiers
        .get(id.0.as_slice())
        .map_err(ProviderError::from)?
    {
        Some(bytes) => Some(merkle::Frontier::try_from_slice(bytes.value()).map_err(corrupt)?),
        None => None,
    };
    // Rebuilt from the leaves when missing (a store from before frontiers) or stale.
    let mut frontier = match stored {
        Some(f) if f.len() == have => f,
        _ => {
            let leaves: Vec<Hash32> = entries(&jobs, &id, 0, have)?
                .into_iter()
                .map(|(_, l)| l)
                .collect();
            merkle::Frontier::of(&leaves)
        }
    };
    let mut added = Vec::new();
    for (i, job) in (d.first_job..).zip(&d.jobs) {
        if i < have {
            let stored = jobs
                .get(key(&id, i).as_slice())
                .map_err(ProviderError::from)?;
            let stored = split_entry(stored.ok_or_else(|| corrupt("gap in paid jobs"))?.value())?.0;
            if stored != *job {
                return Err(VoucherError::JobsMismatch { index: i });
            }
            continue;
        }
        if let Some(other) = paid_by.get(job.0.as_slice()).map_err(ProviderError::from)? {
            let other = Hash32(other.value().try_into().map_err(corrupt)?);
            return Err(VoucherError::AlreadyPaid {
                job: *job,
                channel: other,
            });
        }
        let t: Transcript = match transcripts
            .get(job.0.as_slice())
            .map_err(ProviderError::from)?
        {
            Some(bytes) => codec::decode(bytes.value()).map_err(corrupt)?,
            None => return Err(VoucherError::UnknownJob(*job)),
        };
        if t.receipt.receipt.model != channel.model {
            return Err(VoucherError::WrongModel { job: *job });
        }
        let leaf = receipt_leaf(&t.receipt);
        frontier.push(leaf);
        let mut entry = [0u8; 64];
        entry[..32].copy_from_slice(&job.0);
        entry[32..].copy_from_slice(&leaf.0);
        jobs.insert(key(&id, i).as_slice(), entry.as_slice())
            .map_err(ProviderError::from)?;
        paid_by
            .insert(job.0.as_slice(), id.0.as_slice())
            .map_err(ProviderError::from)?;
        added.push(*job);
    }
    let total = have.max(d.first_job.saturating_add(d.jobs.len() as u64));
    if v.jobs > total {
        return Err(VoucherError::MissingJobs {
            held: total,
            needed: v.jobs,
        });
    }
    let root = if v.jobs == frontier.len() {
        frontier.root()
    } else {
        let leaves: Vec<Hash32> = entries(&jobs, &id, 0, v.jobs)?
            .into_iter()
            .map(|(_, l)| l)
            .collect();
        merkle::root(&leaves)
    };
    if root != v.receipts_root {
        return Err(VoucherError::RootMismatch { jobs: v.jobs });
    }
    let bytes = borsh::to_vec(&frontier).map_err(corrupt)?;
    frontiers
        .insert(id.0.as_slice(), bytes.as_slice())
        .map_err(ProviderError::from)?;
    let mut steps = w.open_table(VOUCHER_STEPS).map_err(ProviderError::from)?;
    let base = channel
        .jobs
        .max(last_step(&steps, &id)?.map_or(0, |s| s.voucher.jobs));
    if v.jobs.saturating_sub(base) > MAX_JOBS_PER_SETTLEMENT {
        let before = held.as_ref().map(|h| &h.voucher);
        match before {
            Some(b)
                if b.voucher.jobs > base && v.jobs - b.voucher.jobs <= MAX_JOBS_PER_SETTLEMENT =>
            {
                steps
                    .insert(
                        key(&id, b.voucher.jobs).as_slice(),
                        codec::encode(b).as_slice(),
                    )
                    .map_err(ProviderError::from)?;
            }
            _ => {
                return Err(VoucherError::TooManyJobs {
                    max: MAX_JOBS_PER_SETTLEMENT,
                    got: v.jobs - base,
                })
            }
        }
    }
    let entry = HeldVoucher {
        voucher: d.voucher.clone(),
        settled: held.map_or(0, |h| h.settled),
    };
    vouchers
        .insert(id.0.as_slice(), codec::encode(&entry).as_slice())
        .map_err(ProviderError::from)?;
    Ok(added)
}

/// Delete the transcripts of paid jobs under roots settled at or before
/// `through`; the leaves stay, since later roots of the channel cover them.
pub(crate) fn prune_paid(
    w: &WriteTransaction,
    through: Height,
    pruned: &mut Pruned,
) -> Result<(), ProviderError> {
    let mut roots = w.open_table(PAID_ROOTS)?;
    let mut old = Vec::new();
    for entry in roots.iter()? {
        let (root, bytes) = entry?;
        let paid: PaidRoot = codec::decode(bytes.value()).map_err(corrupt)?;
        if paid.settled_at.is_some_and(|h| h <= through) {
            old.push((root.value().to_vec(), paid));
        }
    }
    let jobs = w.open_table(PAID_JOBS)?;
    let mut done = w.open_table(PAID_PRUNED)?;
    let mut transcripts = w.open_table(TRANSCRIPTS)?;
    for (root, paid) in old {
        let from = done
            .get(paid.channel.0.as_slice())?
            .map_or(0, |v| v.value());
        if paid.jobs > from {
            for (job, _) in entries(&jobs, &paid.channel, from, paid.jobs)? {
                if transcripts.remove(job.0.as_slice())?.is_some() {
                    pruned.transcripts += 1;
                }
            }
            done.insert(paid.channel.0.as_slice(), paid.jobs)?;
        }
        roots.remove(root.as_slice())?;
        pruned.batches += 1;
    }
    Ok(())
}
