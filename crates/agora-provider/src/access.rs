//! Who may read a batch job's transcript: only the validators the chain drew
//! for that job (its auditor, or a member of the committee re-checking a
//! dispute on it). Requests carry a [`TranscriptAuth`] header; the
//! [`AuditGate`] answers from the chain. The real gate is [`ChainAuditGate`].

use std::future::Future;
use std::pin::Pin;

use agora_chain_client::{ChainClient, ClientError};
use agora_types::access::{AuthError, TranscriptAuth, TRANSCRIPT_AUTH_HEADER};
use agora_types::{AccountId, Hash32};
use axum::http::{HeaderMap, StatusCode};

/// What [`AuditGate::may_read`] returns.
pub type GateFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>>;

/// Where the provider learns who was drawn for a job.
pub trait AuditGate: Send + Sync + 'static {
    /// The chain requests must be signed for.
    fn chain_id(&self) -> &str;
    /// Whether `who` was drawn to audit job `index` of `provider`'s batch
    /// with `root`, or sits on the committee of a dispute about it.
    fn may_read(
        &self,
        provider: AccountId,
        root: Hash32,
        index: u64,
        who: AccountId,
    ) -> GateFuture<'_>;
}

/// [`AuditGate`] over the chain RPC: the batch's drawn audits and the open disputes.
pub struct ChainAuditGate {
    client: ChainClient,
    chain_id: String,
}

impl ChainAuditGate {
    /// A gate reading the chain at `client` (whose chain id it asks once).
    pub async fn connect(client: ChainClient) -> Result<Self, ClientError> {
        let chain_id = client.status().await?.chain_id;
        Ok(ChainAuditGate { client, chain_id })
    }
}

impl AuditGate for ChainAuditGate {
    fn chain_id(&self) -> &str {
        &self.chain_id
    }

    fn may_read(
        &self,
        provider: AccountId,
        root: Hash32,
        index: u64,
        who: AccountId,
    ) -> GateFuture<'_> {
        Box::pin(async move {
            let mut since = None;
            let mut batches = Vec::new();
            loop {
                let page = self
                    .client
                    .batches(since)
                    .await
                    .map_err(|e| e.to_string())?;
                batches.extend(
                    page.batches
                        .iter()
                        .filter(|b| b.provider == provider && b.root == root && b.contains(index))
                        .cloned(),
                );
                match page.batches.last() {
                    Some(last) if page.more => since = Some(last.height),
                    _ => break,
                }
            }
            if batches.iter().any(|b| b.audits.contains(&(index, who))) {
                return Ok(true);
            }
            let disputes = self.client.disputes().await.map_err(|e| e.to_string())?;
            Ok(disputes.iter().any(|d| {
                d.index == index
                    && d.committee.contains(&who)
                    && batches.iter().any(|b| b.id == d.batch)
            }))
        })
    }
}

/// Why a transcript request was refused, with its HTTP status and code.
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// Check a request for job `index` under `root` of `provider`'s batches.
pub(crate) async fn authorize(
    gate: &dyn AuditGate,
    headers: &HeaderMap,
    provider: AccountId,
    root: Hash32,
    index: u64,
    now_ms: u64,
) -> Result<AccountId, Refusal> {
    let unauthorized = |e: AuthError| Refusal {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthorized",
        message: e.to_string(),
    };
    let value = headers
        .get(TRANSCRIPT_AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Refusal {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: format!(
                "batch transcripts go only to the validators drawn for them: sign the request in {TRANSCRIPT_AUTH_HEADER}"
            ),
        })?;
    let auth = TranscriptAuth::from_header(value).map_err(unauthorized)?;
    let who = auth
        .verify(gate.chain_id(), &root, index, now_ms)
        .map_err(unauthorized)?;
    match gate.may_read(provider, root, index, who).await {
        Ok(true) => Ok(who),
        Ok(false) => Err(Refusal {
            status: StatusCode::FORBIDDEN,
            code: "not_drawn",
            message: format!("{who} is not drawn to audit job {index} of batch root {root}"),
        }),
        Err(e) => Err(Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "chain_unavailable",
            message: format!("cannot check the audit draw on the chain: {e}"),
        }),
    }
}
