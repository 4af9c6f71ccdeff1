//! Proof of Sampling: how receipts are committed in batches, how chain
//! randomness picks the jobs to audit and their auditor, how a dispute's
//! committee is drawn, and the on-chain records of batches, disputes and
//! per-provider audit results. Everything here is pure and deterministic.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::merkle::MerkleProof;
use crate::{codec, AccountId, Amount, Hash32, Height, ModelId, SignedReceipt, Transcript};

/// Domain of receipt leaves in a batch's Merkle tree.
const RECEIPT_LEAF_DOMAIN: &str = "agora 2026 receipt leaf v1";
/// Domain of batch ids.
const BATCH_ID_DOMAIN: &str = "agora 2026 receipt batch id v1";
/// Domain of dispute ids.
const DISPUTE_ID_DOMAIN: &str = "agora 2026 audit dispute id v1";
/// Domain of the per-job selection draw.
const SELECTION_DOMAIN: &str = "agora 2026 audit selection v1";
/// Domain of the auditor draw.
const AUDITOR_DOMAIN: &str = "agora 2026 audit auditor v1";
/// Domain of the seed a batch's or dispute's draws use, from the chain's block id.
const DRAW_SEED_DOMAIN: &str = "agora 2026 audit draw seed v1";
/// Domain of each seat of a stake-weighted dispute committee.
const SEAT_DOMAIN: &str = "agora 2026 audit committee seat v1";

/// Parts per million, the unit of the audit rate.
const PPM: u128 = 1_000_000;

/// The Merkle leaf of one signed receipt: a batch's root is
/// [`crate::merkle::root`] over its receipts' leaves, in job order.
pub fn receipt_leaf(receipt: &SignedReceipt) -> Hash32 {
    Hash32::digest_in(RECEIPT_LEAF_DOMAIN, &codec::encode(receipt))
}

/// The root a provider commits for `receipts`, in order.
pub fn batch_root(receipts: &[SignedReceipt]) -> Hash32 {
    let leaves: Vec<Hash32> = receipts.iter().map(receipt_leaf).collect();
    crate::merkle::root(&leaves)
}

/// The id of the batch created by `provider`'s transaction with `nonce`
/// (a `CommitReceipts` or a `SettleChannel`); unique per transaction.
pub fn batch_id(provider: &AccountId, nonce: u64) -> Hash32 {
    Hash32::digest_in(BATCH_ID_DOMAIN, &codec::encode(&(provider, nonce)))
}

/// The id of the dispute about job `index` of `batch` (one per job).
pub fn dispute_id(batch: &Hash32, index: u64) -> Hash32 {
    Hash32::digest_in(DISPUTE_ID_DOMAIN, &codec::encode(&(batch, index)))
}

fn draw(domain: &str, randomness: &Hash32, batch: &Hash32, index: u64) -> [u8; 32] {
    Hash32::digest_in(domain, &codec::encode(&(randomness, batch, index))).0
}

/// Whether job `index` of `batch` is audited under `randomness` at
/// `rate_ppm` parts per million: a uniform 64-bit draw scaled to `[0, 10^6)`
/// and compared with the rate, so each job is picked with probability
/// `rate_ppm / 10^6` independently of the others.
pub fn is_selected(randomness: &Hash32, batch: &Hash32, index: u64, rate_ppm: u32) -> bool {
    let bytes = draw(SELECTION_DOMAIN, randomness, batch, index);
    let x = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let scaled = (u128::from(x) * PPM) >> 64;
    scaled < u128::from(rate_ppm)
}

/// The validator who audits job `index` of `batch`: drawn with probability
/// proportional to stake (integer arithmetic over the validators sorted by
/// account, so input order does not matter). `None` when nobody has stake.
pub fn assigned_auditor(
    randomness: &Hash32,
    batch: &Hash32,
    index: u64,
    validators: &[(AccountId, Amount)],
) -> Option<AccountId> {
    StakeTable::new(validators).pick(&draw(AUDITOR_DOMAIN, randomness, batch, index))
}

/// The seed of the draws about `subject` (a batch or a dispute id) made in the
/// block after the one that created it: `source` is that next block's
/// [`draw_source`](crate::BlockHeader::draw_source), which nobody knew when
/// they sent the transaction (under consensus, the creating round's threshold
/// seed, which nobody can steer either).
pub fn draw_seed(source: &Hash32, subject: &Hash32) -> Hash32 {
    Hash32::digest_in(DRAW_SEED_DOMAIN, &codec::encode(&(source, subject)))
}

/// The audits of a batch's jobs `first..first + count`: every job
/// [`is_selected`] at `rate_ppm` under `seed`, with its [`assigned_auditor`]
/// among `validators`, in index order. Selected jobs with no auditor (nobody
/// staked) are left out.
pub fn draw_audits(
    seed: &Hash32,
    batch: &Hash32,
    first: u64,
    count: u64,
    rate_ppm: u32,
    validators: &[(AccountId, Amount)],
) -> Vec<(u64, AccountId)> {
    let table = StakeTable::new(validators);
    (first..first.saturating_add(count))
        .filter(|i| is_selected(seed, batch, *i, rate_ppm))
        .filter_map(|i| {
            table
                .pick(&draw(AUDITOR_DOMAIN, seed, batch, i))
                .map(|who| (i, who))
        })
        .collect()
}

/// The auditor of job `index` of `batch` under `seed`: the same
/// stake-weighted pick [`draw_audits`] makes for a sampled job, so a
/// validation request cannot choose who checks it (`None` with no stake).
pub fn draw_auditor(
    seed: &Hash32,
    batch: &Hash32,
    index: u64,
    validators: &[(AccountId, Amount)],
) -> Option<AccountId> {
    StakeTable::new(validators).pick(&draw(AUDITOR_DOMAIN, seed, batch, index))
}

/// Someone asked, and paid, for one job of a batch to be audited by a
/// validator drawn like a sampled job's.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ValidationRequest {
    /// The batch.
    pub batch: Hash32,
    /// The job's leaf index.
    pub index: u64,
    /// Who asked.
    pub requester: AccountId,
    /// The validator drawn to audit it.
    pub auditor: AccountId,
    /// Block of the request.
    pub height: Height,
}

/// The committee that re-checks `dispute`: `size` distinct members drawn
/// one seat at a time with probability proportional to stake among those
/// not yet drawn, under `seed` (a [`draw_seed`] of a block after the
/// dispute opened). Input order does not matter; zero stake is never drawn.
pub fn weighted_committee(
    seed: &Hash32,
    dispute: &Hash32,
    candidates: &[(AccountId, Amount)],
    size: usize,
) -> Vec<AccountId> {
    let mut table = StakeTable::new(candidates);
    let mut members = Vec::with_capacity(size.min(table.staked.len()));
    for seat in 0..size as u64 {
        let bytes = Hash32::digest_in(SEAT_DOMAIN, &codec::encode(&(seed, dispute, seat))).0;
        let Some(who) = table.pick(&bytes) else {
            break;
        };
        table.remove(&who);
        members.push(who);
    }
    members
}

/// Accounts with positive stake, sorted and deduplicated, for stake-weighted draws.
struct StakeTable {
    staked: Vec<(AccountId, Amount)>,
    total: u128,
}

impl StakeTable {
    fn new(entries: &[(AccountId, Amount)]) -> Self {
        let mut staked: Vec<(AccountId, Amount)> = entries
            .iter()
            .copied()
            .filter(|(_, stake)| *stake > 0)
            .collect();
        staked.sort();
        staked.dedup_by(|a, b| a.0 == b.0);
        let total = staked.iter().map(|(_, s)| u128::from(*s)).sum();
        StakeTable { staked, total }
    }

    /// The account under a uniform point in `[0, total)` taken from `bytes`.
    fn pick(&self, bytes: &[u8; 32]) -> Option<AccountId> {
        if self.total == 0 {
            return None;
        }
        // 128 random bits modulo a total below 2^72: the bias is under 2^-56.
        let mut point = u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes")) % self.total;
        for (id, stake) in &self.staked {
            let stake = u128::from(*stake);
            if point < stake {
                return Some(*id);
            }
            point -= stake;
        }
        None
    }

    fn remove(&mut self, who: &AccountId) {
        if let Some(at) = self.staked.iter().position(|(id, _)| id == who) {
            let (_, stake) = self.staked.remove(at);
            self.total -= u128::from(stake);
        }
    }
}

/// A committed range of receipt leaves that validators may audit.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReceiptBatch {
    /// [`batch_id`] of the transaction that created it.
    pub id: Hash32,
    /// Provider whose receipts these are.
    pub provider: AccountId,
    /// Model every receipt in it must name (a channel settlement's is the
    /// channel's model); `None` for a batch of data-job receipts (a
    /// `SettleDataJobs`), which validators audit by re-running the job.
    pub model: Option<ModelId>,
    /// Merkle root over the receipt leaves.
    pub root: Hash32,
    /// First auditable leaf index under `root`.
    pub first_index: u64,
    /// Number of auditable leaves, from `first_index` on.
    pub count: u64,
    /// Height of the block that committed it; selection uses later randomness.
    pub height: Height,
    /// The channel whose settlement created it, if any.
    pub channel: Option<Hash32>,
    /// The [`draw_seed`] its audits were drawn from, set in the block after
    /// the commit (`None` until then).
    pub seed: Option<Hash32>,
    /// The jobs drawn for audit and the one validator whose verdict on each
    /// counts ([`draw_audits`]); empty until drawn.
    pub audits: Vec<(u64, AccountId)>,
}

impl ReceiptBatch {
    /// Whether leaf `index` is one of this batch's jobs.
    pub fn contains(&self, index: u64) -> bool {
        index >= self.first_index && index - self.first_index < self.count
    }
}

/// A failed audit awaiting its committee's re-check.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Dispute {
    /// [`dispute_id`] of (batch, index).
    pub id: Hash32,
    /// The batch.
    pub batch: Hash32,
    /// The job's leaf index.
    pub index: u64,
    /// The accused provider.
    pub provider: AccountId,
    /// The validator whose verdict failed the job.
    pub accuser: AccountId,
    /// The receipt leaf the accuser checked.
    pub leaf: Hash32,
    /// Hash of the accuser's evidence (e.g. the replay that disagreed).
    pub evidence: Hash32,
    /// Height it was opened; it expires `dispute_window_blocks` later.
    pub opened_at: Height,
    /// Validators who re-check it, drawn stake-weighted in the block after it
    /// opened (empty until then).
    pub committee: Vec<AccountId>,
    /// The [`draw_seed`] the committee was drawn from (`None` until drawn).
    pub seed: Option<Hash32>,
    /// Votes cast so far: (member, agrees the job failed).
    pub votes: Vec<(AccountId, bool)>,
}

impl Dispute {
    /// Votes needed to decide either way: strictly more than half the committee.
    pub fn majority(&self) -> usize {
        self.committee.len() / 2 + 1
    }

    /// Members who voted that the job failed.
    pub fn agreeing(&self) -> Vec<AccountId> {
        self.votes
            .iter()
            .filter(|(_, agree)| *agree)
            .map(|(who, _)| *who)
            .collect()
    }

    /// Members who voted that the accusation is wrong.
    pub fn disagreeing(&self) -> usize {
        self.votes.iter().filter(|(_, agree)| !*agree).count()
    }
}

/// A provider's audit record; kept after it deregisters or is slashed.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
pub struct ProviderAudits {
    /// Passing verdicts received.
    pub audits_passed: u64,
    /// Failures confirmed by a committee.
    pub audits_failed: u64,
    /// Failing verdicts on a non-replayable (upstream) provider's jobs,
    /// which are judged statistically: each one counts here, and only once
    /// there are [`STATISTICAL_MIN_FLAGS`] of them and they outnumber the
    /// passes does a failing verdict open a dispute.
    #[serde(default)]
    pub audits_flagged: u64,
    /// Whether its collateral was slashed (it is then deregistered for good).
    pub slashed: bool,
    /// Collateral taken by the slash.
    pub slashed_amount: Amount,
}

/// Flags a non-replayable provider must collect, outnumbering its passes,
/// before a failing verdict on one of its jobs opens a dispute (and can
/// slash): one implausible job is never enough, a pattern is.
pub const STATISTICAL_MIN_FLAGS: u64 = 8;

/// What a provider serves an auditor for one job of a committed batch
/// (`GET /v1/batches/{root}/{index}`): the transcript and the Merkle proof
/// of its receipt's leaf under the batch root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobProof {
    /// The job's stored transcript (its receipt included).
    pub transcript: Transcript,
    /// Path from [`receipt_leaf`] of `transcript.receipt` to the batch root.
    pub proof: MerkleProof,
}

/// Why a served [`JobProof`] does not match the on-chain batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JobProofError {
    /// The proof is for another leaf index than the one asked for.
    #[error("proof is for index {got}, asked for {wanted}")]
    WrongIndex {
        /// Index asked for.
        wanted: u64,
        /// Index in the proof.
        got: u64,
    },
    /// The receipt's leaf does not hash up to the committed root.
    #[error("receipt leaf {leaf} is not at index {index} under root {root}")]
    NotInBatch {
        /// The receipt's leaf.
        leaf: Hash32,
        /// The index.
        index: u64,
        /// The on-chain root.
        root: Hash32,
    },
    /// The receipt's signature does not verify under its provider.
    #[error("receipt signature does not verify")]
    BadSignature,
    /// The proof is for a tree of another size than the batch committed: a
    /// prover choosing the size could present one job's receipt at another
    /// job's index (trees with an odd node carried up share roots).
    #[error("proof is for a tree of {got} leaves, the batch has {wanted}")]
    WrongLeafCount {
        /// Leaves under the committed root.
        wanted: u64,
        /// Leaves the proof claims.
        got: u64,
    },
}

impl JobProof {
    /// Check that this is job `index` under the committed `root` of a tree
    /// of `leaf_count` leaves (what the chain recorded, never what the
    /// prover says), signed by the provider the receipt names; returns the
    /// receipt's leaf.
    pub fn verify(
        &self,
        root: &Hash32,
        index: u64,
        leaf_count: u64,
    ) -> Result<Hash32, JobProofError> {
        if self.proof.index != index {
            return Err(JobProofError::WrongIndex {
                wanted: index,
                got: self.proof.index,
            });
        }
        if self.proof.leaf_count != leaf_count {
            return Err(JobProofError::WrongLeafCount {
                wanted: leaf_count,
                got: self.proof.leaf_count,
            });
        }
        self.transcript
            .receipt
            .verify()
            .map_err(|_| JobProofError::BadSignature)?;
        let leaf = receipt_leaf(&self.transcript.receipt);
        if !self.proof.verify(leaf, *root) {
            return Err(JobProofError::NotInBatch {
                leaf,
                index,
                root: *root,
            });
        }
        Ok(leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keypair;

    fn accounts(n: u8) -> Vec<AccountId> {
        (0..n)
            .map(|i| Keypair::from_seed([i + 1; 32]).account())
            .collect()
    }

    #[test]
    fn selection_frequency_matches_rate() {
        let randomness = Hash32::digest(b"seed");
        let batch = Hash32::digest(b"batch");
        let n = 100_000u64;
        for rate in [10_000u32, 100_000, 500_000] {
            let hits = (0..n)
                .filter(|i| is_selected(&randomness, &batch, *i, rate))
                .count() as f64;
            let p = f64::from(rate) / 1e6;
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            // Within 5 standard deviations of the expectation.
            assert!(
                (hits - n as f64 * p).abs() < 5.0 * sd,
                "rate {rate}: {hits} of {n}"
            );
        }
        assert!((0..1000).all(|i| !is_selected(&randomness, &batch, i, 0)));
        assert!((0..1000).all(|i| is_selected(&randomness, &batch, i, 1_000_000)));
    }

    #[test]
    fn selection_depends_on_randomness_batch_and_index() {
        let (r1, r2) = (Hash32::digest(b"r1"), Hash32::digest(b"r2"));
        let b = Hash32::digest(b"b");
        let picks = |r: &Hash32, b: &Hash32| -> Vec<bool> {
            (0..64).map(|i| is_selected(r, b, i, 500_000)).collect()
        };
        assert_eq!(picks(&r1, &b), picks(&r1, &b));
        assert_ne!(picks(&r1, &b), picks(&r2, &b));
        assert_ne!(picks(&r1, &b), picks(&r1, &Hash32::digest(b"c")));
    }

    #[test]
    fn auditor_is_stake_weighted_and_order_free() {
        let ids = accounts(3);
        let vals = vec![(ids[0], 1u64), (ids[1], 3), (ids[2], 0)];
        let mut reversed = vals.clone();
        reversed.reverse();
        let r = Hash32::digest(b"seed");
        let b = Hash32::digest(b"batch");
        let n = 40_000u64;
        let mut counts = [0u64; 3];
        for i in 0..n {
            let who = assigned_auditor(&r, &b, i, &vals).unwrap();
            assert_eq!(assigned_auditor(&r, &b, i, &reversed), Some(who));
            counts[ids.iter().position(|x| *x == who).unwrap()] += 1;
        }
        assert_eq!(counts[2], 0, "zero stake is never picked");
        // Expected 1/4 and 3/4; sd of the first share is about 87 jobs.
        assert!((counts[0] as i64 - 10_000).abs() < 600, "{counts:?}");
        assert!(assigned_auditor(&r, &b, 0, &[(ids[0], 0)]).is_none());
        assert!(assigned_auditor(&r, &b, 0, &[]).is_none());
    }

    #[test]
    fn weighted_committee_is_distinct_stake_weighted_and_order_free() {
        let ids = accounts(6);
        let seed = Hash32::digest(b"seed");
        let d = dispute_id(&Hash32::digest(b"b"), 3);
        let stakes: Vec<(AccountId, Amount)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i as Amount))
            .collect();
        let c = weighted_committee(&seed, &d, &stakes, 3);
        assert_eq!(c.len(), 3);
        let mut shuffled = stakes.clone();
        shuffled.rotate_left(2);
        shuffled.push(stakes[3]);
        assert_eq!(weighted_committee(&seed, &d, &shuffled, 3), c);
        let mut sorted = c.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 3);
        assert!(!c.contains(&ids[0]), "zero stake is never drawn");
        assert_eq!(weighted_committee(&seed, &d, &stakes, 10).len(), 5);
        assert!(weighted_committee(&seed, &d, &[], 3).is_empty());
        // A 1-unit sybil beside a 1,000,000-unit validator almost never sits.
        let (sybil, whale) = (ids[0], ids[1]);
        let sat = (0..2_000u64)
            .filter(|i| {
                let seed = Hash32::digest(&i.to_le_bytes());
                weighted_committee(&seed, &d, &[(sybil, 1), (whale, 1_000_000)], 1) == [sybil]
            })
            .count();
        assert!(sat <= 2, "sybil drawn {sat} times in 2,000");
    }

    #[test]
    fn drawn_audits_are_the_selected_jobs_with_their_auditors() {
        let ids = accounts(3);
        let vals = vec![(ids[0], 5u64), (ids[1], 7), (ids[2], 0)];
        let seed = draw_seed(&Hash32::digest(b"parent"), &Hash32::digest(b"batch"));
        let b = Hash32::digest(b"batch");
        let drawn = draw_audits(&seed, &b, 10, 500, 200_000, &vals);
        let expected: Vec<(u64, AccountId)> = (10..510)
            .filter(|i| is_selected(&seed, &b, *i, 200_000))
            .map(|i| (i, assigned_auditor(&seed, &b, i, &vals).unwrap()))
            .collect();
        assert_eq!(drawn, expected);
        assert!(drawn.len() > 50 && drawn.len() < 150, "{}", drawn.len());
        assert!(draw_audits(&seed, &b, 0, 100, 1_000_000, &[]).is_empty());
    }

    const DRAW_SEED_VECTOR: &str =
        "f1c81ba35a013ffd360d827729c293350b4b7b0aaf4fc9e5d4776407b4a5eb36";

    /// Pinned vector, computed independently with Python's `blake3`
    /// (`blake3(derive_key_context=DOMAIN)` over the two 32-byte ids).
    #[test]
    fn draw_seed_matches_the_pinned_vector() {
        let parent = Hash32([1; 32]);
        let subject = Hash32([2; 32]);
        assert_eq!(draw_seed(&parent, &subject).to_hex(), DRAW_SEED_VECTOR);
    }

    #[test]
    fn batch_contains_its_range_only() {
        let b = ReceiptBatch {
            id: Hash32::ZERO,
            provider: accounts(1)[0],
            model: None,
            root: Hash32::ZERO,
            first_index: 5,
            count: 3,
            height: 1,
            channel: None,
            seed: None,
            audits: Vec::new(),
        };
        assert!(!b.contains(4));
        assert!(b.contains(5) && b.contains(7));
        assert!(!b.contains(8));
        assert!(!b.contains(u64::MAX));
    }

    /// Attack (issue 13, #14): in a 3-leaf tree the root is H(H(l0, l1), l2),
    /// which is also the root of a "2-leaf tree" (H(l0, l1), l2). A provider
    /// asked for job 1 could answer with job 2's receipt and a proof
    /// claiming 2 leaves. The auditor checks the size the chain recorded.
    #[test]
    fn a_proof_claiming_another_tree_size_is_refused() {
        let key = Keypair::from_seed([9; 32]);
        let receipts: Vec<SignedReceipt> = (0..3u8)
            .map(|i| {
                crate::Receipt {
                    chain_id: "agora-test".into(),
                    id: Hash32::digest(&[i]),
                    provider: key.account(),
                    model: Hash32::digest(b"m"),
                    prompt_hash: Hash32::ZERO,
                    output_hash: Hash32::ZERO,
                    text_hash: Hash32::ZERO,
                    params: crate::SamplingParams::new(1, 0.0, 1.0, vec![], 0),
                    usage: crate::Usage::default(),
                    price: crate::Price::default(),
                    cost: 0,
                    timestamp_ms: 0,
                    commitments: Hash32::ZERO,
                }
                .sign(&key)
            })
            .collect();
        let leaves: Vec<Hash32> = receipts.iter().map(receipt_leaf).collect();
        let root = crate::merkle::root(&leaves);
        let pair = crate::merkle::root(&leaves[..2]);
        let forged = MerkleProof {
            index: 1,
            leaf_count: 2,
            siblings: vec![pair],
        };
        assert!(
            forged.verify(leaves[2], root),
            "the odd-carry ambiguity exists"
        );
        let transcript = |r: &SignedReceipt| Transcript {
            receipt: r.clone(),
            input: crate::JobInput::Text { prompt: "x".into() },
            prompt_tokens: vec![],
            output_tokens: vec![],
            commitments: None,
            embeddings: vec![],
        };
        let dodge = JobProof {
            transcript: transcript(&receipts[2]),
            proof: forged,
        };
        assert_eq!(
            dodge.verify(&root, 1, 3),
            Err(JobProofError::WrongLeafCount { wanted: 3, got: 2 })
        );
        let honest = JobProof {
            transcript: transcript(&receipts[1]),
            proof: MerkleProof::new(&leaves, 1).unwrap(),
        };
        assert_eq!(honest.verify(&root, 1, 3), Ok(leaves[1]));
    }

    #[test]
    fn ids_are_distinct_per_input() {
        let a = accounts(2);
        assert_ne!(batch_id(&a[0], 0), batch_id(&a[0], 1));
        assert_ne!(batch_id(&a[0], 0), batch_id(&a[1], 0));
        let b = Hash32::digest(b"b");
        assert_ne!(dispute_id(&b, 0), dispute_id(&b, 1));
    }
}
