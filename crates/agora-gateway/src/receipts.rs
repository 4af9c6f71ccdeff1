//! Receipts of the jobs this gateway served, for provenance: `GET
//! /v1/receipts/{id}` (the id of the `x-agora-receipt` header) returns the
//! signed receipt, the provider that served it and, once committed on
//! chain, the batch holding it with the Merkle proof the provider gives.
//! The gateway remembers the last [`MAX_RECEIPTS`] jobs only.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use agora_chain_client::ChainClient;
use agora_types::audit::batch_id;
use agora_types::provenance::{
    check_inclusion, find_batch_tx, BatchRef, ProviderReceipt, ReceiptInclusion, ReceiptRecord,
    ServedBy,
};
use agora_types::{AccountId, Hash32, SignedReceipt};
use agora_wire::provider::receipt_url;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::{ApiError, Directory, Gateway};

/// The route.
pub const RECEIPTS_ROUTE: &str = "/v1/receipts/{id}";
/// Most receipts remembered; the oldest is forgotten first.
pub const MAX_RECEIPTS: usize = 100_000;
/// Most pages of `GET /batches` read looking for a batch.
const MAX_BATCH_PAGES: usize = 64;

/// The receipts of the last jobs served, by job id.
#[derive(Default)]
pub(crate) struct ReceiptBook {
    by_id: HashMap<Hash32, (SignedReceipt, ServedBy)>,
    order: VecDeque<Hash32>,
}

impl ReceiptBook {
    /// Remember a finished job's receipt and who served it.
    pub(crate) fn remember(&mut self, receipt: &SignedReceipt, provider: ServedBy) {
        let id = receipt.receipt.id;
        if self.by_id.insert(id, (receipt.clone(), provider)).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_RECEIPTS {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }

    fn get(&self, id: &Hash32) -> Option<(SignedReceipt, ServedBy)> {
        self.by_id.get(id).cloned()
    }
}

fn bad_gateway(message: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "server_error",
        "provider_error",
        message,
    )
}

/// `GET /v1/receipts/{id}`.
pub(crate) async fn receipt<D: Directory>(
    State(gw): State<Arc<Gateway<D>>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match id.map(|Path(id)| id.parse::<Hash32>()) {
        Ok(Ok(id)) => id,
        _ => return ApiError::invalid("id", "not a job id").into_response(),
    };
    let known = gw
        .receipts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id);
    let Some((receipt, provider)) = known else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            format!("this gateway served no job {id} (or forgot it)"),
        )
        .into_response();
    };
    match record(&gw, receipt, provider).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn record<D: Directory>(
    gw: &Gateway<D>,
    receipt: SignedReceipt,
    provider: ServedBy,
) -> Result<ReceiptRecord, ApiError> {
    let url = receipt_url(&provider.endpoint, &receipt.receipt.id);
    let resp = gw
        .http
        .get(&url)
        .send()
        .await
        .map_err(|e| bad_gateway(format!("provider unreachable: {e}")))?;
    if !resp.status().is_success() {
        return Err(bad_gateway(format!(
            "provider answered {} for the receipt",
            resp.status()
        )));
    }
    let answer: ProviderReceipt = resp
        .json()
        .await
        .map_err(|e| bad_gateway(format!("provider's receipt does not decode: {e}")))?;
    let batch = match (answer.inclusion, gw.directory.chain()) {
        (Some(inc), Some(chain)) => {
            check_inclusion(&receipt, &inc.root, &inc.proof)
                .map_err(|e| bad_gateway(format!("provider's proof: {e}")))?;
            find_batch(&chain, &provider.id, &inc).await
        }
        _ => None,
    };
    Ok(ReceiptRecord {
        receipt,
        provider,
        batch,
    })
}

/// The on-chain batch with `inc`'s root by `provider`: looked up in the
/// block at the provider's height hint, else among the chain's live batches.
async fn find_batch(
    chain: &ChainClient,
    provider: &AccountId,
    inc: &ReceiptInclusion,
) -> Option<BatchRef> {
    let at = |batch: Hash32, height: u64| BatchRef {
        batch,
        height,
        root: inc.root,
        index: inc.proof.index,
        proof: inc.proof.clone(),
    };
    if let Some(h) = inc.height {
        if let Ok(block) = chain.block(h).await {
            if let Some(i) = find_batch_tx(&block.txs, provider, &inc.root) {
                let nonce = block.txs[i as usize].tx.nonce;
                return Some(at(batch_id(provider, nonce), h));
            }
        }
    }
    let mut since = None;
    for _ in 0..MAX_BATCH_PAGES {
        let page = chain.batches(since).await.ok()?;
        if let Some(b) = page
            .batches
            .iter()
            .find(|b| b.provider == *provider && b.root == inc.root)
        {
            return Some(at(b.id, b.height));
        }
        if !page.more {
            return None;
        }
        since = page.batches.last().map(|b| b.height);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_types::{Keypair, Price, Receipt, SamplingParams, Usage};

    fn receipt(i: u64) -> SignedReceipt {
        let key = Keypair::from_seed([1; 32]);
        Receipt {
            chain_id: "t".into(),
            id: Hash32::digest(&i.to_le_bytes()),
            provider: key.account(),
            model: Hash32::ZERO,
            prompt_hash: Hash32::ZERO,
            output_hash: Hash32::ZERO,
            text_hash: Hash32::ZERO,
            params: SamplingParams::new(1, 0.0, 1.0, vec![], 0),
            usage: Usage::default(),
            price: Price::default(),
            cost: 0,
            timestamp_ms: 0,
            commitments: Hash32::ZERO,
        }
        .sign(&key)
    }

    #[test]
    fn the_book_forgets_the_oldest_receipts_beyond_its_bound() {
        let mut book = ReceiptBook::default();
        let by = ServedBy {
            id: AccountId([2; 32]),
            endpoint: "http://p".into(),
        };
        let n = MAX_RECEIPTS as u64 + 3;
        for i in 0..n {
            book.remember(&receipt(i), by.clone());
        }
        // Remembering a job twice does not count it twice.
        book.remember(&receipt(n - 1), by.clone());
        assert_eq!(book.by_id.len(), MAX_RECEIPTS);
        assert_eq!(book.order.len(), MAX_RECEIPTS);
        for i in 0..3 {
            assert!(book.get(&receipt(i).receipt.id).is_none(), "{i} forgotten");
        }
        let (r, who) = book.get(&receipt(3).receipt.id).unwrap();
        assert_eq!((r, who), (receipt(3), by));
    }
}
