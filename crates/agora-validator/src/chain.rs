//! [`AuditChain`] over the chain RPC, signing with the validator's key.

use std::time::Duration;

use tokio::sync::OnceCell;

use agora_chain_client::ChainClient;
use agora_types::{AccountId, Hash32, Keypair, ModelId, Params, TxKind};

use crate::ports::{
    AuditChain, AuditError, BatchInfo, DisputeInfo, Judging, ProviderScore, RequestedAudit, Served,
};

/// How long a verdict or vote may take to be included.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The chain as an auditor sees it, through one node's RPC.
pub struct RpcChain {
    client: ChainClient,
    key: Keypair,
    /// The genesis parameters, read once: they never change.
    params: OnceCell<Params>,
}

impl RpcChain {
    /// Read from and submit to the node at `client`, signing as `key`.
    pub fn new(client: ChainClient, key: Keypair) -> Self {
        RpcChain {
            client,
            key,
            params: OnceCell::new(),
        }
    }

    /// The chain's parameters, fetched on first use.
    async fn params(&self) -> Result<&Params, AuditError> {
        self.params
            .get_or_try_init(|| async { self.client.params().await.map_err(chain_error) })
            .await
    }
}

/// What the auditor needs of an on-chain batch.
fn batch_info(b: agora_types::ReceiptBatch) -> BatchInfo {
    BatchInfo {
        id: b.id,
        provider: b.provider,
        root: b.root,
        first_index: b.first_index,
        count: b.count,
        height: b.height,
        model: b.model,
        audits: b.seed.map(|_| b.audits),
    }
}

fn chain_error(e: impl std::fmt::Display) -> AuditError {
    AuditError::Chain(e.to_string())
}

impl AuditChain for RpcChain {
    async fn head(&self) -> Result<u64, AuditError> {
        Ok(self.client.head().await.map_err(chain_error)?.height)
    }

    async fn batches_since(&self, height: u64) -> Result<Vec<BatchInfo>, AuditError> {
        let page = self
            .client
            .batches(Some(height))
            .await
            .map_err(chain_error)?;
        Ok(page.batches.into_iter().map(batch_info).collect())
    }

    async fn validations_since(&self, height: u64) -> Result<Vec<RequestedAudit>, AuditError> {
        let tasks = self.client.validations(height).await.map_err(chain_error)?;
        Ok(tasks
            .into_iter()
            .map(|t| RequestedAudit {
                height: t.request.height,
                index: t.request.index,
                auditor: t.request.auditor,
                batch: batch_info(t.batch),
            })
            .collect())
    }

    async fn audit_window(&self) -> Result<u64, AuditError> {
        Ok(self.params().await?.audit.audit_window_blocks)
    }

    async fn disputes(&self) -> Result<Vec<DisputeInfo>, AuditError> {
        let disputes = self.client.disputes().await.map_err(chain_error)?;
        let mut out = Vec::with_capacity(disputes.len());
        for d in disputes {
            // The root is the batch's; a pruned batch can no longer be re-checked.
            let Some((root, leaf_count, model)) = self.batch_root(&d.batch).await? else {
                continue;
            };
            out.push(DisputeInfo {
                id: d.id,
                batch: d.batch,
                root,
                index: d.index,
                leaf_count,
                model,
                provider: d.provider,
                committee: d.committee,
                voted: d.votes.into_iter().map(|(who, _)| who).collect(),
                opened_at: d.opened_at,
            });
        }
        Ok(out)
    }

    async fn served(&self, provider: &AccountId) -> Result<Option<Served>, AuditError> {
        let providers = self.client.providers().await.map_err(chain_error)?;
        Ok(providers
            .into_iter()
            .find(|p| &p.id == provider)
            .map(|p| Served {
                endpoint: p.endpoint,
                judging: if p.replayable {
                    Judging::Replay
                } else {
                    Judging::Statistical
                },
            }))
    }

    async fn tempo_blocks(&self) -> Result<u64, AuditError> {
        Ok(self.params().await?.tempo_blocks)
    }

    async fn scores(&self, model: &ModelId) -> Result<Vec<ProviderScore>, AuditError> {
        let status = self.client.status().await.map_err(chain_error)?;
        let tokens = self.params().await?.audit.reference_job_tokens;
        Ok(status
            .providers
            .iter()
            .filter(|p| p.models.contains(model))
            .map(|p| {
                let audits = status
                    .audits
                    .iter()
                    .find(|a| a.provider == p.id)
                    .map(|a| a.audits)
                    .unwrap_or_default();
                ProviderScore {
                    provider: p.id,
                    passed: audits.audits_passed,
                    failed: audits.audits_failed,
                    flagged: audits.audits_flagged,
                    stake: p.stake,
                    job_value: p.price.cost(tokens, tokens),
                }
            })
            .collect())
    }

    async fn submit(&self, kind: TxKind) -> Result<(), AuditError> {
        self.client
            .send_and_wait(&self.key, kind, SUBMIT_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(chain_error)
    }
}

impl RpcChain {
    /// The root of a live batch and the number of leaves under it, by id.
    async fn batch_root(
        &self,
        id: &Hash32,
    ) -> Result<Option<(Hash32, u64, Option<ModelId>)>, AuditError> {
        let mut since = None;
        loop {
            let page = self.client.batches(since).await.map_err(chain_error)?;
            if let Some(b) = page.batches.iter().find(|b| &b.id == id) {
                let leaf_count = b.first_index.saturating_add(b.count);
                return Ok(Some((b.root, leaf_count, b.model)));
            }
            match page.batches.last() {
                Some(last) if page.more => since = Some(last.height),
                _ => return Ok(None),
            }
        }
    }
}
