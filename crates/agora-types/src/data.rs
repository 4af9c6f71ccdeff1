//! The data market's on-chain records (compute-to-data): datasets that stay
//! on their hosts, algorithms identified by the hash of their WebAssembly
//! module, paid jobs, and the run receipts a host signs, settles and is
//! audited on. The charge rule lives here so the ledger, the data node and
//! the buyer all compute the same price.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{codec, AccountId, Amount, Hash32, Height, KeyError, Keypair, Signature};

/// Domain of data job ids.
const DATA_JOB_ID_DOMAIN: &str = "agora 2026 data job id v1";
/// Domain of a job's sandbox randomness seed.
const DATA_JOB_SEED_DOMAIN: &str = "agora 2026 data job seed v1";
/// Domain of the hash of a job's parameters.
const DATA_PARAMS_DOMAIN: &str = "agora 2026 data params v1";
/// Domain of the hash of a job's output.
const DATA_OUTPUT_DOMAIN: &str = "agora 2026 data output v1";
/// Domain of the bytes a host signs for a run receipt.
const DATA_RECEIPT_DOMAIN: &str = "agora 2026 data receipt v1";
/// Domain of a settled data receipt's leaf in its batch's Merkle tree.
const DATA_RECEIPT_LEAF_DOMAIN: &str = "agora 2026 data receipt leaf v1";

/// Fuel is priced per this many units.
pub const FUEL_PRICE_UNIT: u64 = 1_000_000;

/// Who may run an algorithm over a dataset.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessPolicy {
    /// Only these algorithm ids (each must also be registered to be run).
    Allow(Vec<Hash32>),
    /// Any registered algorithm.
    AnyRegistered,
}

impl AccessPolicy {
    /// Whether the policy lets `algorithm` run.
    pub fn allows(&self, algorithm: &Hash32) -> bool {
        match self {
            Self::Allow(ids) => ids.contains(algorithm),
            Self::AnyRegistered => true,
        }
    }
}

/// A dataset offered for compute-to-data: described and priced on chain,
/// its bytes kept by its hosts and never served to buyers.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DatasetEntry {
    /// Content id: the blob store's BLAKE3 id of the file, or of the
    /// collection manifest of a folder.
    pub id: Hash32,
    /// Who is paid `price_per_run`; must be the registering sender.
    pub owner: AccountId,
    /// Short unique-looking name, for people.
    pub name: String,
    /// Schema and description (for example the CSV header and units).
    pub description: String,
    /// Paid to the owner for each run that completes.
    pub price_per_run: Amount,
    /// Paid to the host per [`FUEL_PRICE_UNIT`] fuel burned, whatever the outcome.
    pub price_per_mfuel: Amount,
    /// Which algorithms may run on it.
    pub policy: AccessPolicy,
    /// Registered providers (data nodes) that hold the data and run jobs;
    /// their provider collateral answers for the receipts they sign.
    pub hosts: Vec<AccountId>,
}

/// An algorithm: a WASI preview 1 module, identified by the BLAKE3 hash of
/// its bytes (the blob store's id).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AlgorithmEntry {
    /// BLAKE3 of the module.
    pub id: Hash32,
    /// Who is paid `price_per_run`; must be the registering sender.
    pub owner: AccountId,
    /// Short name, for people.
    pub name: String,
    /// Paid to the owner for each run that completes.
    pub price_per_run: Amount,
}

/// How a run ended, as a receipt records it (the sandbox's run status).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum DataRunStatus {
    /// The module finished (exit code 0).
    Success,
    /// The module exited with this non-zero code (a usage error, say); it completed.
    Exit(i32),
    /// A WebAssembly trap.
    Trap,
    /// The fuel ran out.
    OutOfFuel,
    /// Memory past the cap was asked for.
    MemoryExceeded,
    /// Output past the cap was written.
    OutputTooLarge,
    /// The host's wall-clock deadline passed: not reproducible, never charged.
    DeadlineExceeded,
}

impl DataRunStatus {
    /// Whether the run produced a result the buyer pays full price for.
    pub fn completed(self) -> bool {
        matches!(self, Self::Success | Self::Exit(_))
    }

    /// Whether a validator can reproduce the run exactly (all but the deadline).
    pub fn reproducible(self) -> bool {
        self != Self::DeadlineExceeded
    }
}

/// The prices a job was opened under, fixed at open so later changes to
/// either entry cannot raise what the buyer owes.
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
pub struct DataPrices {
    /// The dataset owner's price per completed run.
    pub dataset_per_run: Amount,
    /// The algorithm owner's price per completed run.
    pub algorithm_per_run: Amount,
    /// The host's price per [`FUEL_PRICE_UNIT`] fuel.
    pub per_mfuel: Amount,
}

/// What a run costs, split by payee.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataCharge {
    /// To the host, for the fuel burned.
    pub host: Amount,
    /// To the dataset owner.
    pub dataset_owner: Amount,
    /// To the algorithm owner.
    pub algorithm_owner: Amount,
}

impl DataCharge {
    /// Everything the buyer pays.
    pub fn total(&self) -> Amount {
        self.host
            .saturating_add(self.dataset_owner)
            .saturating_add(self.algorithm_owner)
    }
}

impl DataPrices {
    /// Fuel's price: `ceil(fuel × per_mfuel / 10⁶)`, saturating.
    pub fn fuel_cost(&self, fuel: u64) -> Amount {
        let cost =
            (u128::from(fuel) * u128::from(self.per_mfuel)).div_ceil(u128::from(FUEL_PRICE_UNIT));
        Amount::try_from(cost).unwrap_or(Amount::MAX)
    }

    /// The charge policy: a completed run pays fuel and both run prices; a
    /// run the module broke (trap, out of fuel, memory or output cap) pays
    /// the fuel it burned, since the host did that work; a run cut off by
    /// the host's deadline pays nothing.
    pub fn charge(&self, status: DataRunStatus, fuel_used: u64) -> DataCharge {
        match status {
            DataRunStatus::DeadlineExceeded => DataCharge::default(),
            s if s.completed() => DataCharge {
                host: self.fuel_cost(fuel_used),
                dataset_owner: self.dataset_per_run,
                algorithm_owner: self.algorithm_per_run,
            },
            _ => DataCharge {
                host: self.fuel_cost(fuel_used),
                ..DataCharge::default()
            },
        }
    }

    /// What the buyer escrows for a job allowed `max_fuel`: the most any outcome costs.
    pub fn max_charge(&self, max_fuel: u64) -> Amount {
        self.charge(DataRunStatus::Success, max_fuel).total()
    }
}

/// A paid job waiting for its host's receipt.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DataJob {
    /// [`data_job_id`] of the opening transaction.
    pub id: Hash32,
    /// Who pays.
    pub buyer: AccountId,
    /// The dataset.
    pub dataset: Hash32,
    /// The algorithm.
    pub algorithm: Hash32,
    /// The host that must run it.
    pub host: AccountId,
    /// [`params_hash`] of the parameters the buyer will send.
    pub params_hash: Hash32,
    /// Most fuel the run may burn.
    pub max_fuel: u64,
    /// Prices fixed at open.
    pub prices: DataPrices,
    /// Escrowed: [`DataPrices::max_charge`] of `max_fuel`.
    pub escrow: Amount,
    /// Height it was opened; the buyer may cancel after the job timeout.
    pub opened_at: Height,
}

/// The id of the data job opened by `buyer`'s transaction with `nonce`.
pub fn data_job_id(buyer: &AccountId, nonce: u64) -> Hash32 {
    Hash32::digest_in(DATA_JOB_ID_DOMAIN, &codec::encode(&(buyer, nonce)))
}

/// The sandbox's randomness seed for job `id`: fixed by the job, so every
/// re-run draws the same random bytes.
pub fn data_job_seed(id: &Hash32) -> Hash32 {
    Hash32::digest_in(DATA_JOB_SEED_DOMAIN, &id.0)
}

/// Hash of a job's parameter bytes (what the algorithm reads on stdin).
pub fn params_hash(params: &[u8]) -> Hash32 {
    Hash32::digest_in(DATA_PARAMS_DOMAIN, params)
}

/// Hash of a job's output bytes.
pub fn output_hash(output: &[u8]) -> Hash32 {
    Hash32::digest_in(DATA_OUTPUT_DOMAIN, output)
}

/// What a host attests about one run.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct DataReceipt {
    /// The job.
    pub job: Hash32,
    /// The dataset it ran on.
    pub dataset: Hash32,
    /// The algorithm it ran.
    pub algorithm: Hash32,
    /// [`params_hash`] of the parameters it ran with.
    pub params_hash: Hash32,
    /// How it ended.
    pub status: DataRunStatus,
    /// [`output_hash`] of its output (of nothing, unless it completed).
    pub output_hash: Hash32,
    /// Fuel burned.
    pub fuel_used: u64,
    /// The job's fuel budget the run was given (a re-run must use the same
    /// to reproduce running out).
    pub max_fuel: u64,
    /// What the buyer is charged: the job's [`DataPrices::charge`].
    pub charge: Amount,
}

impl DataReceipt {
    /// The bytes the host signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        Hash32::digest_in(DATA_RECEIPT_DOMAIN, &codec::encode(self))
            .0
            .to_vec()
    }

    /// Sign as `host`.
    pub fn sign(self, host: &Keypair) -> SignedDataReceipt {
        let signature = host.sign(&self.signing_bytes());
        SignedDataReceipt {
            receipt: self,
            host: host.account(),
            signature,
        }
    }
}

/// A run receipt with its host's signature: what the buyer gets with the
/// output, what the host settles, and what validators re-run.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedDataReceipt {
    /// The receipt.
    pub receipt: DataReceipt,
    /// The host that signed it.
    pub host: AccountId,
    /// The host's signature over [`DataReceipt::signing_bytes`].
    pub signature: Signature,
}

impl SignedDataReceipt {
    /// Check the host's signature.
    pub fn verify(&self) -> Result<(), KeyError> {
        self.host
            .verify(&self.receipt.signing_bytes(), &self.signature)
    }

    /// Its leaf in the Merkle tree of the batch that settled it.
    pub fn leaf(&self) -> Hash32 {
        Hash32::digest_in(DATA_RECEIPT_LEAF_DOMAIN, &codec::encode(self))
    }
}

/// The data market's chain parameters: the `[params.data]` table.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(default)]
pub struct DataParams {
    /// Most fuel one job may be allowed.
    pub max_job_fuel: u64,
    /// Blocks after opening from which the buyer may cancel an unsettled job.
    pub job_timeout_blocks: u64,
    /// Most receipts one settlement may carry.
    pub max_settle_receipts: u32,
    /// Most hosts a dataset may name.
    pub max_hosts: u32,
    /// Most algorithm ids an allow-list may name.
    pub max_allowed_algorithms: u32,
    /// Longest name, in bytes.
    pub max_name_bytes: u32,
    /// Longest description, in bytes.
    pub max_description_bytes: u32,
    /// What registering a dataset or an algorithm burns on top of the fee:
    /// every entry stays in the state, so filling it must cost.
    pub registration_fee: Amount,
}

impl Default for DataParams {
    fn default() -> Self {
        Self {
            max_job_fuel: 1_000_000_000_000,
            job_timeout_blocks: 3_000,
            max_settle_receipts: 64,
            max_hosts: 16,
            max_allowed_algorithms: 64,
            max_name_bytes: 64,
            max_description_bytes: 4_096,
            registration_fee: crate::params::DEFAULT_MODEL_REGISTRATION_FEE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prices() -> DataPrices {
        DataPrices {
            dataset_per_run: 1_000,
            algorithm_per_run: 300,
            per_mfuel: 7,
        }
    }

    #[test]
    fn each_outcome_is_charged_as_the_policy_says() {
        let p = prices();
        // 2.5 M fuel at 7 per million: 17.5, rounded up.
        let done = p.charge(DataRunStatus::Success, 2_500_000);
        assert_eq!(
            (done.host, done.dataset_owner, done.algorithm_owner),
            (18, 1_000, 300)
        );
        assert_eq!(p.charge(DataRunStatus::Exit(2), 2_500_000), done);
        for broken in [
            DataRunStatus::Trap,
            DataRunStatus::OutOfFuel,
            DataRunStatus::MemoryExceeded,
            DataRunStatus::OutputTooLarge,
        ] {
            assert_eq!(p.charge(broken, 2_500_000).total(), 18, "{broken:?}");
        }
        assert_eq!(
            p.charge(DataRunStatus::DeadlineExceeded, 2_500_000).total(),
            0
        );
        assert_eq!(p.max_charge(10_000_000), 1_370);
        // No outcome costs more than the escrow.
        for fuel in [0, 1, 999_999, 10_000_000] {
            assert!(p.charge(DataRunStatus::Success, fuel).total() <= p.max_charge(10_000_000));
        }
        let huge = DataPrices {
            per_mfuel: Amount::MAX,
            ..p
        };
        assert_eq!(huge.fuel_cost(u64::MAX), Amount::MAX);
    }

    #[test]
    fn receipts_verify_only_unchanged_and_under_their_host() {
        let host = Keypair::from_seed([3; 32]);
        let signed = DataReceipt {
            job: Hash32([1; 32]),
            dataset: Hash32([2; 32]),
            algorithm: Hash32([3; 32]),
            params_hash: params_hash(b"k=3"),
            status: DataRunStatus::Success,
            output_hash: output_hash(b"{}"),
            fuel_used: 10,
            max_fuel: 100,
            charge: 5,
        }
        .sign(&host);
        signed.verify().unwrap();
        let mut forged = signed.clone();
        forged.receipt.charge = 6;
        assert!(forged.verify().is_err());
        let mut other = signed.clone();
        other.host = Keypair::from_seed([4; 32]).account();
        assert!(other.verify().is_err());
    }

    /// Pinned with Python's `blake3`:
    /// `blake3(b"k=3", derive_key_context="agora 2026 data params v1")` and
    /// `blake3(bytes([9]*32), derive_key_context="agora 2026 data job seed v1")`,
    /// `blake3(b"{}", derive_key_context="agora 2026 data output v1")`.
    #[test]
    fn hash_domains_are_pinned() {
        assert_eq!(params_hash(b"k=3").to_hex(), PARAMS_K3);
        assert_eq!(data_job_seed(&Hash32([9; 32])).to_hex(), SEED_9);
        assert_eq!(output_hash(b"{}").to_hex(), OUTPUT_BRACES);
    }

    const PARAMS_K3: &str = "5f543cae73884a671cd2cceb9633f8d2cbf378b237b3d6f0c7da4384895ee535";
    const SEED_9: &str = "d89237e60fd6c07a77fd12a38c53b49940eb7fe814bff10143c135b660565e07";
    const OUTPUT_BRACES: &str = "8ceee3f68a313a347e8fa37110ed62a275183e5d334a49650aecc699c4275a98";
}
