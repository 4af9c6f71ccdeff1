//! The ledger state: its fields, its Merkle leaves and root, and the
//! account reads every rule builds on.

use std::collections::BTreeMap;

use agora_types::merkle::{self, MerkleProof};
use agora_types::{
    codec, AccountId, AgentEntry, AgentPayment, AlgorithmEntry, Amount, DataJob, DatasetEntry,
    Dispute, Earnings, Feedback, Hash32, Height, ModelEntry, ModelId, Params, ProviderAudits,
    ProviderInfo, ReceiptBatch, SignedDataReceipt, ValidationRequest,
};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::channels::Channel;
use crate::committee::{Committee, ValidatorEndpoint};
use crate::staking::{Unbonding, Validator};
use crate::weights::Markets;

/// Merkle key of the chain metadata leaf.
const META_KEY: &[u8] = b"meta";
/// Key prefix of account leaves.
const ACCOUNT_PREFIX: u8 = 1;
/// Key prefix of model registry leaves.
const MODEL_PREFIX: u8 = 2;
/// Key prefix of provider registry leaves.
const PROVIDER_PREFIX: u8 = 3;
/// Key prefix of payment channel leaves.
const CHANNEL_PREFIX: u8 = 4;
/// Key prefix of validator leaves.
const VALIDATOR_PREFIX: u8 = 5;
/// Key prefix of delegation leaves.
const DELEGATION_PREFIX: u8 = 6;
/// Key of the (single) unbonding queue leaf.
const UNBONDING_PREFIX: u8 = 7;
/// Key prefix of receipt batch leaves.
const BATCH_PREFIX: u8 = 8;
/// Key prefix of verdict leaves.
const VERDICT_PREFIX: u8 = 9;
/// Key prefix of dispute leaves.
const DISPUTE_PREFIX: u8 = 10;
/// Key prefix of provider audit record leaves.
const PROVIDER_AUDITS_PREFIX: u8 = 11;
/// Key prefix of earnings leaves.
const EARNINGS_PREFIX: u8 = 16;
/// Key of the (single) weights-and-bonds leaf.
const MARKETS_PREFIX: u8 = 17;
/// Key prefix of validator endpoint leaves.
const ENDPOINT_PREFIX: u8 = 18;
/// Key of the (single) committee leaf.
const COMMITTEE_PREFIX: u8 = 19;
/// Key prefix of registered datasets.
const DATASET_PREFIX: u8 = 20;
/// Key prefix of registered algorithms.
const ALGORITHM_PREFIX: u8 = 21;
/// Key prefix of open data jobs.
const DATA_JOB_PREFIX: u8 = 22;
/// Key prefix of the receipts of live data batches.
const DATA_BATCH_PREFIX: u8 = 23;
/// Key prefix of registered agents.
const AGENT_PREFIX: u8 = 24;
/// Key prefix of agent payments that may still carry feedback.
const AGENT_PAYMENT_PREFIX: u8 = 25;
/// Key prefix of feedback, by the payment that entitled it.
const FEEDBACK_PREFIX: u8 = 26;
/// Key prefix of validation requests, by batch and index.
const VALIDATION_PREFIX: u8 = 27;

fn entry_key(prefix: u8, id: &[u8; 32]) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(prefix);
    key.extend_from_slice(id);
    key
}

/// The Merkle key of an account's leaf (what a light client hashes with the account).
pub fn account_key(id: &AccountId) -> Vec<u8> {
    entry_key(ACCOUNT_PREFIX, &id.0)
}

/// Balance and replay counter of one account.
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
pub struct Account {
    /// Spendable base units.
    pub balance: Amount,
    /// Nonce the next transaction from this account must carry.
    pub nonce: u64,
}

/// The whole ledger state after some block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct State {
    /// Chain this state belongs to.
    pub chain_id: String,
    /// Height of the last applied block (0 at genesis).
    pub height: Height,
    /// Id of the last applied block (the genesis hash at height 0).
    pub last_block_id: Hash32,
    /// Timestamp of the last applied block.
    pub last_timestamp_ms: u64,
    /// Chain parameters.
    pub params: Params,
    /// Accounts by key.
    pub accounts: BTreeMap<AccountId, Account>,
    /// Model registry by content hash.
    pub models: BTreeMap<ModelId, ModelEntry>,
    /// Provider registry by account.
    pub providers: BTreeMap<AccountId, ProviderInfo>,
    /// Open payment channels by id.
    pub channels: BTreeMap<Hash32, Channel>,
    /// Validators' bonded stake by account.
    pub validators: BTreeMap<AccountId, Validator>,
    /// Delegated stake by (delegator, validator).
    pub delegations: BTreeMap<(AccountId, AccountId), Amount>,
    /// Stake on its way back, in the order it started unbonding.
    pub unbonding: Vec<Unbonding>,
    /// Everything destroyed by slashing so far.
    pub burned: u128,
    /// Emission minted but not yet paid out by the reward distribution.
    pub emission_pool: Amount,
    /// Everything minted by emission so far (supply + burned = genesis + emitted).
    pub emitted: u128,
    /// Receipt batches still inside their audit window, by id.
    pub batches: BTreeMap<Hash32, ReceiptBatch>,
    /// Verdicts on live batches: (batch, leaf index, auditor) -> passed.
    pub verdicts: BTreeMap<(Hash32, u64, AccountId), bool>,
    /// Open disputes by id.
    pub disputes: BTreeMap<Hash32, Dispute>,
    /// Audit record of every provider ever audited, by account.
    pub provider_audits: BTreeMap<AccountId, ProviderAudits>,
    /// What each account has earned since genesis, by source.
    pub earnings: BTreeMap<AccountId, Earnings>,
    /// Weight commitments, reveals, bonds and consensus per model.
    pub markets: Markets,
    /// Consensus endpoints announced by validators, by staking account.
    pub validator_endpoints: BTreeMap<AccountId, ValidatorEndpoint>,
    /// The consensus committee elected at the last committee epoch boundary.
    pub committee: Committee,
    /// Receipt batches created in the block being applied (height, count):
    /// what `max_batches_per_block` counts.
    pub batches_in_block: (Height, u32),
    /// Datasets offered for compute-to-data, by content id.
    pub datasets: BTreeMap<Hash32, DatasetEntry>,
    /// Registered algorithms, by module hash.
    pub algorithms: BTreeMap<Hash32, AlgorithmEntry>,
    /// Paid data jobs awaiting settlement, by id.
    pub data_jobs: BTreeMap<Hash32, DataJob>,
    /// The settled receipts of data batches still inside their audit window,
    /// by batch id, in leaf order: what validators re-run.
    pub data_batches: BTreeMap<Hash32, Vec<SignedDataReceipt>>,
    /// Registered agents, by account.
    pub agents: BTreeMap<AccountId, AgentEntry>,
    /// Payments to agents still inside their feedback window and unrated, by id.
    pub agent_payments: BTreeMap<Hash32, AgentPayment>,
    /// Feedback given, by the payment that entitled it.
    pub feedback: BTreeMap<Hash32, Feedback>,
    /// Requested audits of jobs in live batches, by (batch, index).
    pub validation_requests: BTreeMap<(Hash32, u64), ValidationRequest>,
}

impl State {
    /// Commitment to the state a block header carries: the Merkle root over
    /// [`State::leaves`] (every field except `last_block_id`, which depends on
    /// the root), so one entry can be proven against it.
    pub fn root(&self) -> Hash32 {
        merkle::root(&self.leaves())
    }

    /// The state's entries as Merkle leaves, in a fixed order: the chain's
    /// metadata first, then accounts, models and providers, each by key.
    pub fn leaves(&self) -> Vec<Hash32> {
        let meta = codec::encode(&(
            &self.chain_id,
            self.height,
            self.last_timestamp_ms,
            &self.params,
            self.burned,
            self.emission_pool,
            self.emitted,
        ));
        let mut out =
            Vec::with_capacity(1 + self.accounts.len() + self.models.len() + self.providers.len());
        out.push(merkle::leaf_hash(META_KEY, &meta));
        out.extend(
            self.accounts
                .iter()
                .map(|(id, a)| merkle::leaf_hash(&account_key(id), &codec::encode(a))),
        );
        out.extend(
            self.models.iter().map(|(id, m)| {
                merkle::leaf_hash(&entry_key(MODEL_PREFIX, &id.0), &codec::encode(m))
            }),
        );
        out.extend(self.providers.iter().map(|(id, p)| {
            merkle::leaf_hash(&entry_key(PROVIDER_PREFIX, &id.0), &codec::encode(p))
        }));
        out.extend(self.channels.iter().map(|(id, c)| {
            merkle::leaf_hash(&entry_key(CHANNEL_PREFIX, &id.0), &codec::encode(c))
        }));
        out.extend(self.validators.iter().map(|(id, v)| {
            merkle::leaf_hash(&entry_key(VALIDATOR_PREFIX, &id.0), &codec::encode(v))
        }));
        out.extend(self.delegations.iter().map(|((from, to), amount)| {
            let mut key = entry_key(DELEGATION_PREFIX, &from.0);
            key.extend_from_slice(&to.0);
            merkle::leaf_hash(&key, &codec::encode(amount))
        }));
        out.push(merkle::leaf_hash(
            &[UNBONDING_PREFIX],
            &codec::encode(&self.unbonding),
        ));
        out.extend(
            self.batches.iter().map(|(id, b)| {
                merkle::leaf_hash(&entry_key(BATCH_PREFIX, &id.0), &codec::encode(b))
            }),
        );
        out.extend(
            self.verdicts
                .iter()
                .map(|((batch, index, auditor), passed)| {
                    let mut key = entry_key(VERDICT_PREFIX, &batch.0);
                    key.extend_from_slice(&index.to_le_bytes());
                    key.extend_from_slice(&auditor.0);
                    merkle::leaf_hash(&key, &codec::encode(passed))
                }),
        );
        out.extend(self.disputes.iter().map(|(id, d)| {
            merkle::leaf_hash(&entry_key(DISPUTE_PREFIX, &id.0), &codec::encode(d))
        }));
        out.extend(self.provider_audits.iter().map(|(id, a)| {
            merkle::leaf_hash(&entry_key(PROVIDER_AUDITS_PREFIX, &id.0), &codec::encode(a))
        }));
        out.extend(self.earnings.iter().map(|(id, e)| {
            merkle::leaf_hash(&entry_key(EARNINGS_PREFIX, &id.0), &codec::encode(e))
        }));
        out.push(merkle::leaf_hash(
            &[MARKETS_PREFIX],
            &codec::encode(&self.markets),
        ));
        out.extend(self.validator_endpoints.iter().map(|(id, e)| {
            merkle::leaf_hash(&entry_key(ENDPOINT_PREFIX, &id.0), &codec::encode(e))
        }));
        out.push(merkle::leaf_hash(
            &[COMMITTEE_PREFIX],
            &codec::encode(&self.committee),
        ));
        out.extend(self.datasets.iter().map(|(id, d)| {
            merkle::leaf_hash(&entry_key(DATASET_PREFIX, &id.0), &codec::encode(d))
        }));
        out.extend(self.algorithms.iter().map(|(id, a)| {
            merkle::leaf_hash(&entry_key(ALGORITHM_PREFIX, &id.0), &codec::encode(a))
        }));
        out.extend(self.data_jobs.iter().map(|(id, j)| {
            merkle::leaf_hash(&entry_key(DATA_JOB_PREFIX, &id.0), &codec::encode(j))
        }));
        out.extend(self.data_batches.iter().map(|(id, r)| {
            merkle::leaf_hash(&entry_key(DATA_BATCH_PREFIX, &id.0), &codec::encode(r))
        }));
        out.extend(
            self.agents.iter().map(|(id, a)| {
                merkle::leaf_hash(&entry_key(AGENT_PREFIX, &id.0), &codec::encode(a))
            }),
        );
        out.extend(self.agent_payments.iter().map(|(id, p)| {
            merkle::leaf_hash(&entry_key(AGENT_PAYMENT_PREFIX, &id.0), &codec::encode(p))
        }));
        out.extend(self.feedback.iter().map(|(id, f)| {
            merkle::leaf_hash(&entry_key(FEEDBACK_PREFIX, &id.0), &codec::encode(f))
        }));
        out.extend(self.validation_requests.iter().map(|((batch, index), r)| {
            let mut key = entry_key(VALIDATION_PREFIX, &batch.0);
            key.extend_from_slice(&index.to_le_bytes());
            merkle::leaf_hash(&key, &codec::encode(r))
        }));
        out
    }

    /// Proof of `id`'s account against [`State::root`], or `None` if the
    /// account has never existed (absence is not provable with this tree).
    pub fn prove_account(&self, id: &AccountId) -> Option<(Account, MerkleProof)> {
        let position = self.accounts.keys().position(|k| k == id)?;
        let proof = MerkleProof::new(&self.leaves(), 1 + position)?;
        Some((self.accounts[id], proof))
    }

    /// An account, or the empty account if it never received anything.
    pub fn account(&self, id: &AccountId) -> Account {
        self.accounts.get(id).copied().unwrap_or_default()
    }

    /// Every base unit in existence: balances plus locked stake.
    pub fn total_supply(&self) -> u128 {
        let balances: u128 = self.accounts.values().map(|a| u128::from(a.balance)).sum();
        let stakes: u128 = self.providers.values().map(|p| u128::from(p.stake)).sum();
        let escrow: u128 = self.channels.values().map(|c| u128::from(c.escrow())).sum();
        let bonded: u128 = self
            .validators
            .values()
            .map(|v| u128::from(v.total()))
            .sum();
        let unbonding: u128 = self.unbonding.iter().map(|u| u128::from(u.amount)).sum();
        let data_escrow: u128 = self.data_jobs.values().map(|j| u128::from(j.escrow)).sum();
        let agent_stakes: u128 = self.agents.values().map(|a| u128::from(a.stake)).sum();
        balances
            + stakes
            + escrow
            + bonded
            + unbonding
            + data_escrow
            + agent_stakes
            + u128::from(self.emission_pool)
    }
}
