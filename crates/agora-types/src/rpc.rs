//! JSON shapes of the chain node's HTTP RPC, shared by the server and its clients.

use serde::{Deserialize, Serialize};

use crate::{
    AccountId, Amount, Earnings, Hash32, Height, ModelEntry, ModelId, ProviderAudits, ProviderInfo,
    ReceiptBatch,
};

/// `POST /tx` body: a borsh-encoded [`crate::SignedTransaction`] in hex.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmitTx {
    /// Hex of the canonical encoding.
    pub tx: String,
}

/// `POST /tx` answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submitted {
    /// Transaction id.
    pub id: Hash32,
}

/// `POST /txs` body: several transactions, applied to the mempool in order
/// (consecutive nonces of one sender may share a batch).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmitTxs {
    /// Hex of each canonical encoding.
    pub txs: Vec<String>,
}

/// One transaction's outcome in a `POST /txs` answer: its id, or why it was refused.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchItem {
    /// Admitted to the mempool.
    Accepted {
        /// Transaction id.
        id: Hash32,
    },
    /// Refused; the same error a lone `POST /tx` would give.
    Refused {
        /// The error.
        error: RpcErrorDetail,
    },
}

/// `POST /txs` answer: one item per submitted transaction, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SubmittedBatch {
    /// Outcomes in submission order.
    pub results: Vec<BatchItem>,
}

/// Where a transaction stands (`GET /tx/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// In the mempool.
    Pending,
    /// In a committed block.
    Committed {
        /// Block height.
        height: Height,
    },
    /// Dropped when a block was built (it no longer applied).
    Rejected {
        /// Stable machine-readable code, as the RPC answers on submission (e.g. `duplicate_batch`).
        #[serde(default)]
        code: String,
        /// Why.
        error: String,
    },
}

/// `GET /head`: the latest committed block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// Chain name.
    pub chain_id: String,
    /// Height of the last block (0 before the first).
    pub height: Height,
    /// Its id.
    pub block_id: Hash32,
    /// State root after it.
    pub state_root: Hash32,
    /// Its timestamp.
    pub timestamp_ms: u64,
}

/// `GET /finality/{height}`: what consensus proved about a committed block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockFinality {
    /// Block height.
    pub height: Height,
    /// Block id.
    pub block_id: Hash32,
    /// State root after the block.
    pub state_root: Hash32,
    /// Per-block randomness from the finalization certificate's threshold VRF
    /// seed (hex); `None` for blocks of the single-node producer or blocks this
    /// node learned through a descendant's certificate.
    pub randomness: Option<Hash32>,
    /// The encoded finalization certificate (hex), when known.
    pub certificate: Option<String>,
}

/// `GET /proof/account/{id}`: an account with a Merkle proof against the
/// state root of the block at `height` (check that block's certificate too).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountProof {
    /// Height of the block whose post-state the proof is against.
    pub height: Height,
    /// That block's id.
    pub block_id: Hash32,
    /// That block's state root.
    pub state_root: Hash32,
    /// The account.
    pub id: AccountId,
    /// Its balance.
    pub balance: Amount,
    /// Its nonce.
    pub nonce: u64,
    /// The Merkle path from the account's leaf to `state_root`.
    pub proof: crate::merkle::MerkleProof,
}

/// One entry of `GET /validators`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorStake {
    /// The validator's account.
    pub id: AccountId,
    /// Its own bonded stake.
    pub self_stake: Amount,
    /// Stake delegated to it.
    pub delegated: Amount,
    /// Take rate on delegators' rewards, parts per million.
    pub take_ppm: u32,
}

/// `GET /channel/{id}`: an open payment channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelInfo {
    /// Channel id.
    pub id: Hash32,
    /// Who pays.
    pub client: AccountId,
    /// Who is paid.
    pub provider: AccountId,
    /// The model it pays for.
    pub model: ModelId,
    /// Everything escrowed so far.
    pub deposit: Amount,
    /// Paid to the provider so far.
    pub paid: Amount,
    /// Receipts root of the last settled voucher.
    pub receipts_root: Hash32,
    /// Jobs the last settled voucher covers.
    pub jobs: u64,
    /// Height from which the client may finish closing, once it started.
    pub closable_at: Option<Height>,
}

/// `GET /account/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountInfo {
    /// The account.
    pub id: AccountId,
    /// Committed balance.
    pub balance: Amount,
    /// Next nonce in committed state.
    pub nonce: u64,
    /// Next nonce counting transactions waiting in the mempool; sign with this one.
    pub next_nonce: u64,
    /// What it has earned since genesis, by source.
    #[serde(default)]
    pub earned: Earnings,
}

/// `GET /supply`: where every base unit is, so anyone can check issuance.
/// `total_supply + burned = genesis allocations + emitted`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyInfo {
    /// Height the figures are for.
    pub height: Height,
    /// Everything in existence: balances, stakes, escrows, bonded and
    /// unbonding stake, and the emission pool.
    pub total_supply: u128,
    /// Destroyed by slashing so far.
    pub burned: u128,
    /// Minted by emission so far.
    pub emitted: u128,
    /// Minted but not yet paid out by the reward distribution.
    pub emission_pool: Amount,
    /// Most base units that will ever exist.
    pub supply_cap: Amount,
}

/// One provider's account as `GET /status` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAccount {
    /// The provider.
    pub id: AccountId,
    /// Its spendable balance (stake not included).
    pub balance: Amount,
    /// What it has earned since genesis, by source.
    pub earned: Earnings,
}

/// `GET /status`: head plus registries, what `agora status` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// Chain name.
    pub chain_id: String,
    /// Committed height.
    pub height: Height,
    /// Registered models.
    pub models: Vec<ModelEntry>,
    /// Registered providers.
    pub providers: Vec<ProviderInfo>,
    /// Balances plus stake.
    pub total_supply: u128,
    /// Transactions waiting in the mempool.
    pub mempool: usize,
    /// Audit record of every provider that is registered or has one.
    #[serde(default)]
    pub audits: Vec<ProviderAuditStatus>,
    /// Issuance figures at `height`.
    #[serde(default)]
    pub supply: SupplyInfo,
    /// Balance and earnings of every registered provider, in `providers` order.
    #[serde(default)]
    pub provider_accounts: Vec<ProviderAccount>,
}

/// `GET /audits/{provider}` (and one entry of [`ChainStatus::audits`]): a
/// provider's collateral and audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAuditStatus {
    /// The provider's account.
    pub provider: AccountId,
    /// Whether it is registered now.
    pub registered: bool,
    /// Collateral locked now (0 when not registered).
    pub stake: Amount,
    /// Its audit record (all zero if it was never audited).
    pub audits: ProviderAudits,
}

/// `GET /batches?since=H`: receipt batches committed after height `H`, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPage {
    /// The batches, ordered by (height, id); a page never splits one height.
    pub batches: Vec<ReceiptBatch>,
    /// Whether more follow: ask again with `since` = the last batch's height.
    pub more: bool,
}

/// `GET /data/settled/{job}`: the receipt a host settled for a job, where
/// a buyer compares it with the one it was given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledDataReceipt {
    /// The data batch that settled it.
    pub batch: Hash32,
    /// Its leaf index in that batch.
    pub index: u64,
    /// The receipt as settled.
    pub receipt: crate::SignedDataReceipt,
}

/// `GET /validations?since=H`: a requested audit with the batch it is in
/// (as it stands now), so its auditor can replay the job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationTask {
    /// The request.
    pub request: crate::ValidationRequest,
    /// Its batch.
    pub batch: ReceiptBatch,
}

/// Error body of every non-2xx RPC answer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RpcErrorBody {
    /// The error.
    pub error: RpcErrorDetail,
}

/// Machine-readable code plus a human message.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RpcErrorDetail {
    /// Stable code, e.g. `bad_nonce`, `mempool_full`, `not_found`.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_transaction_carries_its_code() {
        let status = TxStatus::Rejected {
            code: "duplicate_batch".into(),
            error: "batch root already committed".into(),
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["status"], "rejected");
        assert_eq!(json["code"], "duplicate_batch");
        assert_eq!(serde_json::from_value::<TxStatus>(json).unwrap(), status);
        // A node that reports no code still parses (empty code).
        let old: TxStatus = serde_json::from_str(r#"{"status":"rejected","error":"x"}"#).unwrap();
        assert_eq!(
            old,
            TxStatus::Rejected {
                code: String::new(),
                error: "x".into()
            }
        );
    }
}
