//! Typed client for the chain node's HTTP/JSON RPC.

use std::time::Duration;

use agora_types::rpc::{
    AccountInfo, AccountProof, BatchPage, BlockFinality, ChainStatus, ChannelInfo, Head,
    ProviderAuditStatus, RpcErrorBody, SubmitTx, Submitted, SupplyInfo, TxStatus, ValidatorStake,
};
use agora_types::{
    codec, AccountId, Amount, Block, Dispute, Hash32, Keypair, ModelEntry, ModelId, Price,
    ProviderInfo, Transaction, TxKind,
};
use serde::de::DeserializeOwned;

/// Why an RPC call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached or the connection broke.
    #[error("chain RPC {url} unreachable: {source}")]
    Transport {
        /// The URL called.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// The node answered with an error.
    #[error("chain RPC refused ({status}, {code}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Machine-readable code, e.g. `bad_nonce`.
        code: String,
        /// The node's message.
        message: String,
    },
    /// A transaction did not commit in time.
    #[error("transaction {0} not committed within {1:?}")]
    Timeout(Hash32, Duration),
    /// A transaction was dropped by the block producer.
    #[error("transaction {id} was rejected ({code}): {error}")]
    TxRejected {
        /// Transaction id.
        id: Hash32,
        /// Machine-readable code, e.g. `duplicate_batch`.
        code: String,
        /// Why.
        error: String,
    },
}

/// A transaction the chain committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Its id.
    pub id: Hash32,
    /// The nonce it was signed with.
    pub nonce: u64,
    /// Height of the block that holds it.
    pub height: u64,
    /// The chain it was signed for.
    pub chain_id: String,
}

/// The terms a provider registers on (`RegisterProvider`'s fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderTerms {
    /// Base URL where it serves.
    pub endpoint: String,
    /// Models served (none: a data node only).
    pub models: Vec<ModelId>,
    /// Price per 1k tokens.
    pub price: Price,
    /// Collateral locked.
    pub stake: Amount,
    /// Whether its jobs replay exactly.
    pub replayable: bool,
}

/// A handle on one chain node's RPC.
#[derive(Clone, Debug)]
pub struct ChainClient {
    base: String,
    http: reqwest::Client,
}

impl ChainClient {
    /// Client for the node at `base_url` (e.g. `http://127.0.0.1:26657`).
    pub fn new(base_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        ChainClient {
            base: base_url.trim_end_matches('/').to_string(),
            http,
        }
    }

    /// The node's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn read<T: DeserializeOwned>(
        &self,
        url: String,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<T, ClientError> {
        let transport = |source| ClientError::Transport {
            url: url.clone(),
            source,
        };
        let resp = resp.map_err(transport)?;
        let status = resp.status();
        if status.is_success() {
            return resp.json().await.map_err(transport);
        }
        let text = resp.text().await.unwrap_or_default();
        let (code, message) = match serde_json::from_str::<RpcErrorBody>(&text) {
            Ok(body) => (body.error.code, body.error.message),
            Err(_) => ("http".to_string(), text),
        };
        Err(ClientError::Rejected {
            status: status.as_u16(),
            code,
            message,
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self.http.get(&url).send().await;
        self.read(url, resp).await
    }

    /// One receipt batch still inside its audit window.
    pub async fn batch(&self, id: &Hash32) -> Result<agora_types::ReceiptBatch, ClientError> {
        self.get(&format!("/batch/{id}")).await
    }

    /// Every dataset offered for compute-to-data.
    pub async fn datasets(&self) -> Result<Vec<agora_types::DatasetEntry>, ClientError> {
        self.get("/datasets").await
    }

    /// One dataset's entry.
    pub async fn dataset(&self, id: &Hash32) -> Result<agora_types::DatasetEntry, ClientError> {
        self.get(&format!("/dataset/{id}")).await
    }

    /// Every registered algorithm.
    pub async fn algorithms(&self) -> Result<Vec<agora_types::AlgorithmEntry>, ClientError> {
        self.get("/algorithms").await
    }

    /// An open (unsettled) data job.
    pub async fn data_job(&self, id: &Hash32) -> Result<agora_types::DataJob, ClientError> {
        self.get(&format!("/data/job/{id}")).await
    }

    /// The settled receipts of a live data batch, in leaf order.
    pub async fn data_batch(
        &self,
        id: &Hash32,
    ) -> Result<Vec<agora_types::SignedDataReceipt>, ClientError> {
        self.get(&format!("/data/batch/{id}")).await
    }

    /// The receipt a host settled for data job `job`, while its batch is live.
    pub async fn settled_data_receipt(
        &self,
        job: &Hash32,
    ) -> Result<agora_types::rpc::SettledDataReceipt, ClientError> {
        self.get(&format!("/data/settled/{job}")).await
    }

    /// Agents matching `query` (say `capability=summarise&model=NAME&all=true`; empty: all live).
    pub async fn agents(&self, query: &str) -> Result<Vec<agora_types::AgentEntry>, ClientError> {
        self.get(&format!("/agents?{query}")).await
    }

    /// One agent, with its log anchors and reputation.
    pub async fn agent(&self, id: &AccountId) -> Result<agora_types::AgentEntry, ClientError> {
        self.get(&format!("/agent/{id}")).await
    }

    /// Every feedback given on agent `id`.
    pub async fn agent_feedback(
        &self,
        id: &AccountId,
    ) -> Result<Vec<agora_types::Feedback>, ClientError> {
        self.get(&format!("/agent/{id}/feedback")).await
    }

    /// Requested audits made in blocks above `since`, each with its batch.
    pub async fn validations(
        &self,
        since: u64,
    ) -> Result<Vec<agora_types::rpc::ValidationTask>, ClientError> {
        self.get(&format!("/validations?since={since}")).await
    }

    /// The latest committed block's summary.
    pub async fn head(&self) -> Result<Head, ClientError> {
        self.get("/head").await
    }

    /// Head plus registries.
    pub async fn status(&self) -> Result<ChainStatus, ClientError> {
        self.get("/status").await
    }

    /// An account's balance and nonces.
    pub async fn account(&self, id: &AccountId) -> Result<AccountInfo, ClientError> {
        self.get(&format!("/account/{id}")).await
    }

    /// Registered providers.
    pub async fn providers(&self) -> Result<Vec<ProviderInfo>, ClientError> {
        self.get("/providers").await
    }

    /// Registered models.
    pub async fn models(&self) -> Result<Vec<ModelEntry>, ClientError> {
        self.get("/models").await
    }

    /// A committed block.
    pub async fn block(&self, height: u64) -> Result<Block, ClientError> {
        self.get(&format!("/block/{height}")).await
    }

    /// What consensus proved about a committed block: certificate and randomness.
    pub async fn finality(&self, height: u64) -> Result<BlockFinality, ClientError> {
        self.get(&format!("/finality/{height}")).await
    }

    /// An account with a Merkle proof against the latest committed state root.
    pub async fn account_proof(&self, id: &AccountId) -> Result<AccountProof, ClientError> {
        self.get(&format!("/proof/account/{id}")).await
    }

    /// The chain's parameters (fixed at genesis): audit rate, windows, collateral rule, emission.
    pub async fn params(&self) -> Result<agora_types::Params, ClientError> {
        self.get("/params").await
    }

    /// Validators and their bonded stake.
    pub async fn validators(&self) -> Result<Vec<ValidatorStake>, ClientError> {
        self.get("/validators").await
    }

    /// An open payment channel.
    pub async fn channel(&self, id: &Hash32) -> Result<ChannelInfo, ClientError> {
        self.get(&format!("/channel/{id}")).await
    }

    /// Receipt batches committed after height `since` (all live ones if
    /// `None`), oldest first; when `more` is set, ask again from the last height.
    pub async fn batches(&self, since: Option<u64>) -> Result<BatchPage, ClientError> {
        match since {
            Some(h) => self.get(&format!("/batches?since={h}")).await,
            None => self.get("/batches").await,
        }
    }

    /// Open audit disputes.
    pub async fn disputes(&self) -> Result<Vec<Dispute>, ClientError> {
        self.get("/disputes").await
    }

    /// A provider's collateral and audit record.
    pub async fn audits(&self, provider: &AccountId) -> Result<ProviderAuditStatus, ClientError> {
        self.get(&format!("/audits/{provider}")).await
    }

    /// Issuance figures: total supply, burned, emitted, emission pool, cap.
    pub async fn supply(&self) -> Result<SupplyInfo, ClientError> {
        self.get("/supply").await
    }

    /// Where a transaction stands, waiting up to `wait` for it to commit.
    pub async fn tx_status(&self, id: &Hash32, wait: Duration) -> Result<TxStatus, ClientError> {
        self.get(&format!("/tx/{id}?wait_ms={}", wait.as_millis()))
            .await
    }

    /// Submit a signed transaction; returns its id once the mempool admits it.
    pub async fn submit(&self, tx: &agora_types::SignedTransaction) -> Result<Hash32, ClientError> {
        let url = format!("{}/tx", self.base);
        let body = SubmitTx {
            tx: hex::encode(codec::encode(tx)),
        };
        let resp = self.http.post(&url).json(&body).send().await;
        self.read::<Submitted>(url, resp).await.map(|s| s.id)
    }

    /// Submit several signed transactions in one request (`POST /txs`, at most
    /// 1,000), applied in order; each gets its own outcome.
    pub async fn submit_batch(
        &self,
        txs: &[agora_types::SignedTransaction],
    ) -> Result<Vec<agora_types::rpc::BatchItem>, ClientError> {
        let url = format!("{}/txs", self.base);
        let body = agora_types::rpc::SubmitTxs {
            txs: txs.iter().map(|t| hex::encode(codec::encode(t))).collect(),
        };
        let resp = self.http.post(&url).json(&body).send().await;
        self.read::<agora_types::rpc::SubmittedBatch>(url, resp)
            .await
            .map(|b| b.results)
    }

    /// Register `key` as a provider on `terms` unless the chain already
    /// lists it on exactly those terms; the commit height, or `None` when
    /// nothing had to be sent.
    pub async fn ensure_provider(
        &self,
        key: &Keypair,
        terms: &ProviderTerms,
        timeout: Duration,
    ) -> Result<Option<u64>, ClientError> {
        let me = key.account();
        let current = self.providers().await?.into_iter().find(|p| p.id == me);
        if current.is_some_and(|p| {
            p.endpoint == terms.endpoint
                && p.models == terms.models
                && p.price == terms.price
                && p.stake == terms.stake
                && p.replayable == terms.replayable
        }) {
            return Ok(None);
        }
        let kind = TxKind::RegisterProvider {
            endpoint: terms.endpoint.clone(),
            models: terms.models.clone(),
            price: terms.price,
            stake: terms.stake,
            replayable: terms.replayable,
        };
        Ok(Some(self.send_and_wait(key, kind, timeout).await?))
    }

    /// Bond `stake` for `key` as a validator unless it already has bonded
    /// stake of its own; whether it bonded now.
    pub async fn ensure_bonded(
        &self,
        key: &Keypair,
        stake: Amount,
        timeout: Duration,
    ) -> Result<bool, ClientError> {
        let me = key.account();
        let bonded = self
            .validators()
            .await?
            .iter()
            .any(|v| v.id == me && v.self_stake > 0);
        if bonded {
            return Ok(false);
        }
        let kind = TxKind::BondValidator {
            amount: stake,
            take_ppm: 0,
        };
        self.send_and_wait(key, kind, timeout).await?;
        Ok(true)
    }

    /// Sign `kind` with `key` at the account's next nonce, submit it, and wait
    /// until it is committed (or `timeout` passes).
    pub async fn send_and_wait(
        &self,
        key: &Keypair,
        kind: TxKind,
        timeout: Duration,
    ) -> Result<u64, ClientError> {
        Ok(self.send_and_confirm(key, kind, timeout).await?.height)
    }

    /// [`ChainClient::send_and_wait`], reporting the transaction's id and
    /// nonce too (a channel's id derives from the opening nonce).
    pub async fn send_and_confirm(
        &self,
        key: &Keypair,
        kind: TxKind,
        timeout: Duration,
    ) -> Result<Committed, ClientError> {
        let chain_id = self.head().await?.chain_id;
        let nonce = self.account(&key.account()).await?.next_nonce;
        let tx = Transaction {
            chain_id: chain_id.clone(),
            from: key.account(),
            nonce,
            kind,
        }
        .sign(key);
        let id = self.submit(&tx).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self
                .tx_status(&id, left.min(Duration::from_secs(10)))
                .await?
            {
                TxStatus::Committed { height } => {
                    return Ok(Committed {
                        id,
                        nonce,
                        height,
                        chain_id,
                    })
                }
                TxStatus::Rejected { code, error } => {
                    return Err(ClientError::TxRejected { id, code, error })
                }
                TxStatus::Pending if left.is_zero() => {
                    return Err(ClientError::Timeout(id, timeout))
                }
                TxStatus::Pending => {}
            }
        }
    }
}
