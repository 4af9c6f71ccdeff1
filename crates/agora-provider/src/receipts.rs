//! `GET /v1/receipts/{id}`: anyone may fetch a job's signed receipt and,
//! once it is committed (in a sealed batch's `CommitReceipts` or a settled
//! voucher's root), the Merkle proof of its leaf, so a client can prove
//! where an output came from. Neither the prompt nor the output is served.

use std::sync::Arc;

use agora_engine::InferenceEngine;
use agora_types::merkle::MerkleProof;
use agora_types::provenance::{ProviderReceipt, ReceiptInclusion};
use agora_types::{codec, Hash32};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use redb::ReadableTable;

use crate::batches::{SealedBatch, SEALED};
use crate::service::{by_job, Provider};
use crate::{ProviderError, TranscriptStore};

impl TranscriptStore {
    /// Job `id`'s receipt and its inclusion proof once committed; `None` if
    /// the job is unknown (or its transcript already pruned).
    pub fn receipt_proof(&self, id: &Hash32) -> Result<Option<ProviderReceipt>, ProviderError> {
        let Some(t) = self.get(id)? else {
            return Ok(None);
        };
        let r = self.db.begin_read()?;
        let inclusion = match sealed_inclusion(&r, id)? {
            Some(found) => found,
            None => crate::paid::paid_inclusion(&r, id)?,
        };
        Ok(Some(ProviderReceipt {
            receipt: t.receipt,
            inclusion,
        }))
    }
}

/// `Some(inclusion)` if a sealed batch holds `job` (`Some(None)` while the
/// batch is not committed yet), `None` if none does.
#[allow(clippy::option_option)]
fn sealed_inclusion(
    r: &redb::ReadTransaction,
    job: &Hash32,
) -> Result<Option<Option<ReceiptInclusion>>, ProviderError> {
    for entry in r.open_table(SEALED)?.iter()? {
        let (_, bytes) = entry?;
        let batch: SealedBatch =
            codec::decode(bytes.value()).map_err(|e| ProviderError::Corrupt(e.to_string()))?;
        let Some(i) = batch.jobs.iter().position(|j| j == job) else {
            continue;
        };
        let Some(height) = batch.committed_at else {
            return Ok(Some(None));
        };
        let proof = MerkleProof::new(&batch.leaves, i)
            .ok_or_else(|| ProviderError::Corrupt("batch leaves and jobs disagree".into()))?;
        return Ok(Some(Some(ReceiptInclusion {
            root: batch.root,
            proof,
            height: Some(height),
            channel: None,
        })));
    }
    Ok(None)
}

/// `GET /v1/receipts/{id}`.
pub(crate) async fn receipt<E: InferenceEngine>(
    State(p): State<Arc<Provider<E>>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    by_job(p.transcripts.clone(), id, "receipt", |store, id| {
        store.receipt_proof(id)
    })
    .await
}
