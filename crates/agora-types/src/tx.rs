//! Signed transactions: the only way to change ledger state.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{
    codec, AccountId, Amount, Hash32, KeyError, Keypair, ModelEntry, ModelId, Price, Signature,
    SignedVoucher,
};

/// Domain of the bytes a transaction signature covers.
const TX_SIGNING_DOMAIN: &str = "agora 2026 transaction signature v1";
/// Domain of transaction ids.
const TX_ID_DOMAIN: &str = "agora 2026 transaction id v1";

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TxKind {
    /// Move `amount` from the sender to `to`.
    Transfer {
        /// Recipient.
        to: AccountId,
        /// Base units moved.
        amount: Amount,
    },
    /// Add a model to the content-addressed registry.
    RegisterModel {
        /// The entry; its id must not be registered yet.
        model: ModelEntry,
    },
    /// Register (or re-register, replacing the old record) the sender as a provider,
    /// locking `stake` from its balance as collateral.
    RegisterProvider {
        /// Base URL where it serves jobs.
        endpoint: String,
        /// Models served; each must be registered.
        models: Vec<ModelId>,
        /// Price per 1k tokens.
        price: Price,
        /// Collateral to lock.
        stake: Amount,
        /// Whether its jobs replay exactly (see [`crate::ProviderInfo::replayable`]).
        #[serde(default = "crate::registry::replayable_default")]
        replayable: bool,
    },
    /// Remove the sender's provider record and return its stake.
    DeregisterProvider,
    /// Escrow `deposit` from the sender (the client) in a new payment channel
    /// to `provider` for jobs on `model`; its id is [`crate::channel_id`]`(sender, nonce)`.
    OpenChannel {
        /// Who the channel pays.
        provider: AccountId,
        /// The model the channel pays for (its owner's royalty applies); the
        /// provider must be registered as serving it.
        model: ModelId,
        /// Base units escrowed.
        deposit: Amount,
    },
    /// Add to a channel's escrow (client only, not while closing).
    TopUpChannel {
        /// The channel.
        channel: Hash32,
        /// Base units added.
        amount: Amount,
    },
    /// The provider claims what the client's latest voucher owes beyond what
    /// was already paid, and records the receipts root the voucher covers.
    SettleChannel {
        /// The voucher, signed by the channel's client.
        voucher: SignedVoucher,
    },
    /// By the provider: close now (cooperative; the rest of the escrow goes
    /// back to the client). By the client: start the challenge window, during
    /// which the provider can still settle.
    CloseChannel {
        /// The channel.
        channel: Hash32,
    },
    /// By the client, once the challenge window has passed: take back the rest.
    FinishClose {
        /// The channel.
        channel: Hash32,
    },
    /// Bond the sender's own stake as a validator (or add to it) and set the
    /// share of delegators' rewards it keeps.
    BondValidator {
        /// Base units bonded.
        amount: Amount,
        /// Take rate on delegators' rewards, parts per million.
        take_ppm: u32,
    },
    /// A bonded validator announces (or replaces) the consensus key its node
    /// signs with and the `host:port` peers reach it at; only validators with
    /// an endpoint can be elected to the consensus committee.
    AnnounceValidator {
        /// The node's ed25519 consensus public key.
        consensus_key: AccountId,
        /// `host:port` of its p2p listener.
        p2p_addr: String,
        /// Proof of possession: the consensus key's signature over
        /// [`possession_message`]`(chain, sender)`, so nobody can announce
        /// (and so block or impersonate) a key whose secret it lacks.
        possession: Signature,
    },
    /// Bond stake to a validator on the sender's behalf.
    Delegate {
        /// The validator.
        validator: AccountId,
        /// Base units bonded.
        amount: Amount,
    },
    /// Start unbonding own stake (sender = validator) or a delegation; it
    /// returns after the unbonding period and stays slashable until then.
    Unbond {
        /// The validator the stake is bonded to.
        validator: AccountId,
        /// Base units.
        amount: Amount,
    },
    /// By a registered provider: commit the Merkle root of `count` signed
    /// receipts (leaves [`crate::audit::receipt_leaf`]) of jobs it ran on
    /// `model`, making them auditable; the batch id is
    /// [`crate::audit::batch_id`]`(sender, nonce)`.
    CommitReceipts {
        /// Model the jobs ran.
        model: ModelId,
        /// Merkle root over the receipt leaves, in job order.
        root: Hash32,
        /// Number of receipts.
        count: u64,
    },
    /// By a bonded validator: the outcome of auditing job `index` of `batch`.
    /// A failure opens a dispute that a committee of other validators re-checks.
    SubmitVerdict {
        /// The batch id.
        batch: Hash32,
        /// Leaf index of the audited job under the batch root.
        index: u64,
        /// The receipt leaf the auditor checked.
        leaf: Hash32,
        /// Whether the job checked out.
        passed: bool,
        /// Hash of the auditor's evidence.
        evidence: Hash32,
    },
    /// By a member of a dispute's committee: its vote, once.
    VoteDispute {
        /// The dispute id.
        dispute: Hash32,
        /// True: the job failed (confirm); false: the accusation is wrong (refute).
        agree: bool,
    },
    /// By a bonded validator: commit to this epoch's weights over `model`'s
    /// providers; `hash` is [`crate::weights_commitment`].
    CommitWeights {
        /// The market (model) the weights are for.
        model: ModelId,
        /// The commitment.
        hash: Hash32,
    },
    /// By a bonded validator, in the epoch after its commit: reveal the
    /// weights; the next tempo boundary pays the emission pool by them.
    RevealWeights {
        /// The market (model).
        model: ModelId,
        /// Weight per provider (at most [`crate::MAX_WEIGHTS`], no repeats).
        weights: Vec<(AccountId, u16)>,
        /// The salt the commitment hid them with.
        salt: Hash32,
    },
    /// Offer a dataset for compute-to-data (its id must be new; the sender
    /// must be its owner; every host a registered provider).
    RegisterDataset {
        /// The entry.
        dataset: crate::DatasetEntry,
    },
    /// Register an algorithm module by its hash (the sender must be its owner).
    RegisterAlgorithm {
        /// The entry.
        algorithm: crate::AlgorithmEntry,
    },
    /// By a buyer: escrow the most a run of `algorithm` over `dataset` on
    /// `host` can cost; the job id is [`crate::data::data_job_id`]`(sender, nonce)`.
    OpenDataJob {
        /// The dataset.
        dataset: Hash32,
        /// The algorithm; the dataset's policy must allow it.
        algorithm: Hash32,
        /// One of the dataset's hosts.
        host: AccountId,
        /// [`crate::data::params_hash`] of the parameters the buyer will send.
        params_hash: Hash32,
        /// Most fuel the run may burn.
        max_fuel: u64,
    },
    /// By a host: settle its signed receipts for open jobs (each pays what
    /// the charge policy says and refunds the rest) and commit them as an
    /// auditable batch with id [`crate::audit::batch_id`]`(sender, nonce)`.
    SettleDataJobs {
        /// The receipts, each for a different open job of the sender's.
        receipts: Vec<crate::SignedDataReceipt>,
    },
    /// By a buyer, once the job timeout has passed without a settlement:
    /// take the escrow back.
    CancelDataJob {
        /// The job.
        job: Hash32,
    },
    /// By anyone holding two different receipts one host signed for one
    /// data job (say, the one it gave the buyer and the one it settled):
    /// proof of equivocation, which slashes the host's collateral and pays
    /// the reporter the auditors' share.
    ReportDataEquivocation {
        /// One receipt.
        first: Box<crate::SignedDataReceipt>,
        /// Another, for the same job, signed by the same host.
        second: Box<crate::SignedDataReceipt>,
    },
    /// Register the sender's account as an agent, bonding `stake` (at
    /// least `min_stake`); it is live for `heartbeat_ttl_blocks`.
    RegisterAgent {
        /// What it says about itself.
        profile: crate::AgentProfile,
        /// Stake to bond.
        stake: crate::Amount,
    },
    /// Replace the sender's agent profile; `sequence` must be the next one
    /// (so a replayed or reordered update is refused). Also a heartbeat.
    UpdateAgent {
        /// The entry's sequence plus one.
        sequence: u64,
        /// The new profile.
        profile: crate::AgentProfile,
    },
    /// Keep the sender's agent live for another `heartbeat_ttl_blocks`.
    AgentHeartbeat,
    /// Remove the sender's agent and return its stake.
    DeregisterAgent,
    /// Anchor the sender's action log: its first `count` entries (at least
    /// the last anchor's) have Merkle root `root` and end in `head`.
    AnchorAgentLog {
        /// Entries covered.
        count: u64,
        /// Merkle root over their link hashes.
        root: Hash32,
        /// Link hash of the last one.
        head: Hash32,
    },
    /// Pay a registered agent (not oneself); the payment, with id
    /// [`crate::agent::agent_payment_id`]`(sender, nonce)`, entitles the
    /// sender to one feedback.
    PayAgent {
        /// The agent's account.
        agent: AccountId,
        /// How much.
        amount: crate::Amount,
        /// What it pays for.
        reference: Hash32,
    },
    /// Rate an agent the sender paid, once per payment, within the
    /// feedback window.
    GiveFeedback {
        /// The payment.
        payment: Hash32,
        /// 0 to 100.
        score: u8,
        /// What it is about.
        tag: String,
    },
    /// Take back the sender's feedback.
    RevokeFeedback {
        /// The payment the feedback was given for.
        payment: Hash32,
    },
    /// Ask (burning `validation_fee`) for job `index` of inference batch
    /// `batch` to be audited: a validator is drawn for it from the batch's
    /// seed as for a sampled job, and its verdict counts the same.
    RequestValidation {
        /// The batch (its audits must be drawn already).
        batch: Hash32,
        /// The job's leaf index.
        index: u64,
    },
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Transaction {
    /// Chain the transaction is meant for; stops replay on another chain.
    pub chain_id: String,
    /// Sender, who signs and whose nonce advances.
    pub from: AccountId,
    /// Must equal the sender's current nonce; stops replay on this chain.
    pub nonce: u64,
    /// The action.
    pub kind: TxKind,
}

/// A transaction with the sender's signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// Sender's signature over [`Transaction::signing_bytes`].
    pub signature: Signature,
}

impl Transaction {
    /// The exact bytes the sender signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        Hash32::digest_in(TX_SIGNING_DOMAIN, &codec::encode(self))
            .0
            .to_vec()
    }

    /// Sign with `key`, which must control `from`.
    pub fn sign(self, key: &Keypair) -> SignedTransaction {
        let signature = key.sign(&self.signing_bytes());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

impl SignedTransaction {
    /// Unique id: hash of the canonical encoding, signature included.
    pub fn id(&self) -> Hash32 {
        Hash32::digest_in(TX_ID_DOMAIN, &codec::encode(self))
    }

    /// Check the signature against the sender.
    pub fn verify_signature(&self) -> Result<(), KeyError> {
        self.tx
            .from
            .verify(&self.tx.signing_bytes(), &self.signature)
    }
}

/// Domain of the proof that an announced consensus key is the sender's.
const POSSESSION_DOMAIN: &str = "agora 2026 consensus key possession v1";

/// The bytes a consensus key signs to prove that `validator` holds it on
/// `chain_id` (the `possession` of `AnnounceValidator`).
pub fn possession_message(chain_id: &str, validator: &AccountId) -> Vec<u8> {
    Hash32::digest_in(
        POSSESSION_DOMAIN,
        &crate::codec::encode(&(chain_id, validator)),
    )
    .0
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &Keypair) -> SignedTransaction {
        Transaction {
            chain_id: "test".into(),
            from: key.account(),
            nonce: 0,
            kind: TxKind::Transfer {
                to: Keypair::generate().account(),
                amount: 5,
            },
        }
        .sign(key)
    }

    /// Pinned vector, computed independently with Python's `blake3`:
    /// `blake3(u32le(12) + b"agora-devnet" + bytes([7]*32),
    /// derive_key_context="agora 2026 consensus key possession v1")`.
    #[test]
    fn possession_message_matches_the_pinned_vector() {
        let message = possession_message("agora-devnet", &AccountId([7; 32]));
        assert_eq!(
            hex::encode(message),
            "0f05f6c91513e17a68391937b33012d732a522ef01ce00071729e33c4cd42319"
        );
    }

    #[test]
    fn signature_covers_every_field() {
        let key = Keypair::generate();
        let tx = sample(&key);
        assert!(tx.verify_signature().is_ok());
        let mut other_chain = tx.clone();
        other_chain.tx.chain_id = "other".into();
        assert!(other_chain.verify_signature().is_err());
        let mut other_nonce = tx.clone();
        other_nonce.tx.nonce = 1;
        assert!(other_nonce.verify_signature().is_err());
    }

    #[test]
    fn encoding_round_trips_and_rejects_trailing_bytes() {
        let tx = sample(&Keypair::generate());
        let bytes = codec::encode(&tx);
        assert_eq!(codec::decode::<SignedTransaction>(&bytes).unwrap(), tx);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(codec::decode::<SignedTransaction>(&longer).is_err());
        assert!(codec::decode::<SignedTransaction>(&bytes[..bytes.len() - 1]).is_err());
    }
}
