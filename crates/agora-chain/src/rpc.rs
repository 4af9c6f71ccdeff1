//! The HTTP/JSON RPC: submit transactions, read accounts, registries, blocks
//! and the head. Errors come back as `{"error": {"code", "message"}}`.

use std::time::Duration;

use agora_types::rpc::{
    AccountInfo, AccountProof, BatchItem, BatchPage, BlockFinality, ChainStatus, ChannelInfo, Head,
    ProviderAccount, ProviderAuditStatus, RpcErrorBody, RpcErrorDetail, SubmitTx, SubmitTxs,
    Submitted, SubmittedBatch, SupplyInfo, TxStatus, ValidatorStake,
};
use agora_types::{codec, AccountId, Dispute, Hash32, ReceiptBatch, SignedTransaction};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::extract::{RpcQuery, Segment};
use crate::{ChainError, Node, SubmitError};

/// Largest accepted request body.
const MAX_BODY_BYTES: usize = 1 << 20;
/// Most transactions in one `POST /txs`.
const MAX_BATCH_TXS: usize = 1_000;
/// Longest a `GET /tx/{id}?wait_ms=` call may wait.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(30);
/// Batches per `GET /batches` page (a page may exceed it to finish a height).
const BATCH_PAGE: usize = 256;

/// An RPC error with its HTTP status.
pub(crate) struct ApiError(StatusCode, &'static str, String);

impl ApiError {
    /// The error's JSON form, without its HTTP status.
    fn detail(self) -> RpcErrorDetail {
        RpcErrorDetail {
            code: self.1.into(),
            message: self.2,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0;
        let body = RpcErrorBody {
            error: self.detail(),
        };
        (status, Json(body)).into_response()
    }
}

impl From<ChainError> for ApiError {
    fn from(e: ChainError) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let status = match e {
            SubmitError::MempoolFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            SubmitError::SenderLimit(_) => StatusCode::TOO_MANY_REQUESTS,
            SubmitError::Duplicate(_) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError(status, e.code(), e.to_string())
    }
}

/// A request the hardened server refused (overloaded, or no answer in
/// time), in the RPC's error shape.
pub(crate) fn refusal(refusal: agora_tasks::Refusal) -> Response {
    let error = ApiError(refusal.status(), refusal.code(), refusal.to_string());
    refusal.with_retry_after(error.into_response())
}

pub(crate) fn not_found(what: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "not_found", what)
}

pub(crate) fn bad_request(code: &'static str, message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, code, message)
}

impl Node {
    /// The RPC routes, ready to serve.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/tx", post(submit))
            .route("/txs", post(submit_batch))
            .route("/tx/{id}", get(tx_status))
            .route("/head", get(head))
            .route("/status", get(status))
            .route("/account/{id}", get(account))
            .route("/providers", get(providers))
            .route("/models", get(models))
            .route("/block/{height}", get(block))
            .route("/finality/{height}", get(finality))
            .route("/proof/account/{id}", get(account_proof))
            .route("/validators", get(validators))
            .route("/committee", get(committee))
            .route("/params", get(params))
            .route("/channel/{id}", get(channel))
            .route("/batches", get(batches))
            .route("/batch/{id}", get(batch))
            .route("/verdicts/{batch}", get(verdicts))
            .route("/disputes", get(disputes))
            .route("/audits/{provider}", get(audits))
            .route("/supply", get(supply))
            .route("/datasets", get(datasets))
            .route("/dataset/{id}", get(dataset))
            .route("/algorithms", get(algorithms))
            .route("/data/job/{id}", get(data_job))
            .route("/data/batch/{id}", get(data_batch))
            .route("/data/settled/{job}", get(data_settled))
            .route("/agents", get(crate::agent_rpc::agents))
            .route("/validations", get(crate::agent_rpc::validations))
            .route("/agent/{id}", get(crate::agent_rpc::agent))
            .route("/agent/{id}/feedback", get(crate::agent_rpc::feedback))
            .route(agora_metrics::METRICS_ROUTE, get(crate::metrics::scrape))
            .merge(crate::explorer_rpc::routes())
            .fallback(|| async { not_found("no such RPC route".into()) })
            .method_not_allowed_fallback(|| async {
                ApiError(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this RPC route does not take that method".into(),
                )
            })
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(self.metrics().http_layer())
            .with_state(self.clone())
    }
}

async fn submit(
    State(node): State<Node>,
    body: Result<Json<SubmitTx>, JsonRejection>,
) -> Result<Json<Submitted>, ApiError> {
    let Json(body) = body.map_err(json_rejection)?;
    let tx = decode_tx(&body.tx)?;
    let id = submit_off_runtime(node, vec![tx])
        .await?
        .pop()
        .expect("one outcome per transaction")?;
    Ok(Json(Submitted { id }))
}

fn json_rejection(e: JsonRejection) -> ApiError {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.body_text())
        }
        _ => bad_request("malformed", e.body_text()),
    }
}

/// Decode one hex transaction.
fn decode_tx(hex_tx: &str) -> Result<SignedTransaction, ApiError> {
    let bytes = hex::decode(hex_tx.trim())
        .map_err(|e| bad_request("malformed", format!("tx is not hex: {e}")))?;
    codec::decode(&bytes).map_err(|e| ApiError::from(SubmitError::Malformed(e.to_string())))
}

/// Hand transactions to the mempool on a blocking worker: signature checks
/// must not hold up the RPC's async threads.
async fn submit_off_runtime(
    node: Node,
    txs: Vec<SignedTransaction>,
) -> Result<Vec<Result<Hash32, SubmitError>>, ApiError> {
    tokio::task::spawn_blocking(move || node.submit_batch(txs))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("submission task failed: {e}"),
            )
        })
}

/// Submit up to [`MAX_BATCH_TXS`] transactions in order; each gets its own
/// outcome, so one refusal does not stop the rest.
async fn submit_batch(
    State(node): State<Node>,
    body: Result<Json<SubmitTxs>, JsonRejection>,
) -> Result<Json<SubmittedBatch>, ApiError> {
    let Json(body) = body.map_err(json_rejection)?;
    if body.txs.len() > MAX_BATCH_TXS {
        return Err(bad_request(
            "too_many",
            format!(
                "{} transactions in one batch; at most {MAX_BATCH_TXS}",
                body.txs.len()
            ),
        ));
    }
    let decoded: Vec<Result<SignedTransaction, ApiError>> =
        body.txs.iter().map(|hex_tx| decode_tx(hex_tx)).collect();
    let valid: Vec<SignedTransaction> = decoded
        .iter()
        .filter_map(|d| d.as_ref().ok().cloned())
        .collect();
    let mut outcomes = submit_off_runtime(node, valid).await?.into_iter();
    let results = decoded
        .into_iter()
        .map(|d| {
            match d.map(|_| {
                outcomes
                    .next()
                    .expect("one outcome per decoded transaction")
            }) {
                Ok(Ok(id)) => BatchItem::Accepted { id },
                Ok(Err(e)) => BatchItem::Refused {
                    error: ApiError::from(e).detail(),
                },
                Err(e) => BatchItem::Refused { error: e.detail() },
            }
        })
        .collect();
    Ok(Json(SubmittedBatch { results }))
}

#[derive(Deserialize)]
struct WaitQuery {
    wait_ms: Option<u64>,
}

/// Status of a transaction; with `?wait_ms=N`, waits up to N ms for it to commit.
async fn tx_status(
    State(node): State<Node>,
    Segment(id): Segment,
    RpcQuery(q): RpcQuery<WaitQuery>,
) -> Result<Json<TxStatus>, ApiError> {
    let id = parse_hash(&id)?;
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0)).min(MAX_WAIT);
    let mut heights = node.subscribe_height();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let status = node.tx_status(&id)?;
        match status {
            Some(TxStatus::Pending) => {}
            Some(s) => return Ok(Json(s)),
            None => return Err(not_found(format!("transaction {id} is unknown"))),
        }
        // Wait for the next block (or the deadline) and look again.
        match tokio::time::timeout_at(deadline, heights.changed()).await {
            Ok(Ok(())) => continue,
            _ => return Ok(Json(TxStatus::Pending)),
        }
    }
}

fn head_of(node: &Node) -> Head {
    let s = node.state();
    Head {
        chain_id: s.chain_id.clone(),
        height: s.height,
        block_id: s.last_block_id,
        state_root: s.root(),
        timestamp_ms: s.last_timestamp_ms,
    }
}

async fn head(State(node): State<Node>) -> Json<Head> {
    Json(head_of(&node))
}

async fn status(State(node): State<Node>) -> Json<ChainStatus> {
    let s = node.state();
    Json(ChainStatus {
        chain_id: s.chain_id.clone(),
        height: s.height,
        models: s.models.values().cloned().collect(),
        providers: s.providers.values().cloned().collect(),
        total_supply: s.total_supply(),
        mempool: node.mempool_len(),
        audits: audit_statuses(&s),
        supply: supply_of(&s),
        provider_accounts: s
            .providers
            .keys()
            .map(|id| ProviderAccount {
                id: *id,
                balance: s.account(id).balance,
                earned: s.earnings(id),
            })
            .collect(),
    })
}

fn supply_of(s: &agora_ledger::State) -> SupplyInfo {
    SupplyInfo {
        height: s.height,
        total_supply: s.total_supply(),
        burned: s.burned,
        emitted: s.emitted,
        emission_pool: s.emission_pool,
        supply_cap: s.params.supply_cap,
    }
}

/// Issuance figures: total supply, burned, emitted, the emission pool and the cap.
async fn supply(State(node): State<Node>) -> Json<SupplyInfo> {
    Json(supply_of(&node.state()))
}

async fn account(
    State(node): State<Node>,
    Segment(id): Segment,
) -> Result<Json<AccountInfo>, ApiError> {
    let id = parse_account(&id)?;
    let state = node.state();
    let a = state.account(&id);
    Ok(Json(AccountInfo {
        id,
        balance: a.balance,
        nonce: a.nonce,
        next_nonce: node.next_nonce(&id),
        earned: state.earnings(&id),
    }))
}

async fn providers(State(node): State<Node>) -> Json<Vec<agora_types::ProviderInfo>> {
    Json(node.state().providers.values().cloned().collect())
}

async fn models(State(node): State<Node>) -> Json<Vec<agora_types::ModelEntry>> {
    Json(node.state().models.values().cloned().collect())
}

pub(crate) fn parse_account(id: &str) -> Result<AccountId, ApiError> {
    id.parse()
        .map_err(|e: agora_types::KeyError| bad_request("malformed", e.to_string()))
}

pub(crate) fn parse_hash(id: &str) -> Result<Hash32, ApiError> {
    id.parse()
        .map_err(|e: agora_types::hash::ParseHashError| bad_request("malformed", e.to_string()))
}

async fn batch(
    State(node): State<Node>,
    Segment(id): Segment,
) -> Result<Json<agora_types::ReceiptBatch>, ApiError> {
    let id = parse_hash(&id)?;
    node.state()
        .batches
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| not_found(format!("no live batch {id}")))
}

/// `GET /verdicts/{batch}`: the audit verdicts recorded on a live batch's jobs.
async fn verdicts(
    State(node): State<Node>,
    Segment(id): Segment,
) -> Result<Json<Vec<agora_types::provenance::VerdictEntry>>, ApiError> {
    let id = parse_hash(&id)?;
    let state = node.state();
    if !state.batches.contains_key(&id) {
        return Err(not_found(format!("no live batch {id}")));
    }
    let range = (id, 0, AccountId([0; 32]))..=(id, u64::MAX, AccountId([0xff; 32]));
    let list = state
        .verdicts
        .range(range)
        .map(
            |((_, index, auditor), passed)| agora_types::provenance::VerdictEntry {
                index: *index,
                auditor: *auditor,
                passed: *passed,
            },
        );
    Ok(Json(list.collect()))
}

async fn datasets(State(node): State<Node>) -> Json<Vec<agora_types::DatasetEntry>> {
    Json(node.state().datasets.values().cloned().collect())
}

async fn dataset(
    State(node): State<Node>,
    Segment(id): Segment,
) -> Result<Json<agora_types::DatasetEntry>, ApiError> {
    let id = parse_hash(&id)?;
    node.state()
        .datasets
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| not_found(format!("no dataset {id}")))
}

async fn algorithms(State(node): State<Node>) -> Json<Vec<agora_types::AlgorithmEntry>> {
    Json(node.state().algorithms.values().cloned().collect())
}

async fn data_job(
    State(node): State<Node>,
    Segment(id): Segment,
) -> Result<Json<agora_types::DataJob>, ApiError> {
    let id = parse_hash(&id)?;
    node.state()
        .data_jobs
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| {
            not_found(format!(
                "no open data job {id} (never opened, settled or cancelled)"
            ))
        })
}

async fn data_batch(
    State(node): State<Node>,
    Segment(id): Segment,
) -> Result<Json<Vec<agora_types::SignedDataReceipt>>, ApiError> {
    let id = parse_hash(&id)?;
    node.state()
        .data_batches
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| not_found(format!("no live data batch {id}")))
}

/// The settled receipt of a job, searched among the live data batches
/// (bounded by the audit window and the per-block batch limit).
async fn data_settled(
    State(node): State<Node>,
    Segment(job): Segment,
) -> Result<Json<agora_types::rpc::SettledDataReceipt>, ApiError> {
    let job = parse_hash(&job)?;
    let state = node.state();
    state
        .data_batches
        .iter()
        .find_map(|(batch, receipts)| {
            let index = receipts.iter().position(|r| r.receipt.job == job)?;
            Some(agora_types::rpc::SettledDataReceipt {
                batch: *batch,
                index: index as u64,
                receipt: receipts[index].clone(),
            })
        })
        .map(Json)
        .ok_or_else(|| {
            not_found(format!(
                "data job {job} is not in a live data batch (not settled yet, cancelled, or its audit window closed)"
            ))
        })
}

fn parse_height(height: &str) -> Result<u64, ApiError> {
    height
        .parse()
        .map_err(|_| bad_request("malformed", format!("height {height:?} is not a number")))
}

async fn block(
    State(node): State<Node>,
    Segment(height): Segment,
) -> Result<Json<agora_types::Block>, ApiError> {
    let height = parse_height(&height)?;
    node.block(height)?
        .map(Json)
        .ok_or_else(|| not_found(format!("no block at height {height}")))
}

async fn finality(
    State(node): State<Node>,
    Segment(height): Segment,
) -> Result<Json<BlockFinality>, ApiError> {
    let height = parse_height(&height)?;
    let missing = || not_found(format!("no block at height {height}"));
    let block = node.block(height)?.ok_or_else(missing)?;
    let finality = node.finality(height)?.ok_or_else(missing)?;
    Ok(Json(BlockFinality {
        height,
        block_id: block.header.id(),
        state_root: block.header.state_root,
        randomness: finality.randomness.map(Hash32),
        certificate: finality.certificate.map(hex::encode),
    }))
}

async fn account_proof(
    State(node): State<Node>,
    Segment(id): Segment,
) -> Result<Json<AccountProof>, ApiError> {
    let id = parse_account(&id)?;
    let state = node.state();
    let (account, proof) = state.prove_account(&id).ok_or_else(|| {
        not_found(format!(
            "account {id} does not exist (absence has no proof in this tree)"
        ))
    })?;
    Ok(Json(AccountProof {
        height: state.height,
        block_id: state.last_block_id,
        state_root: state.root(),
        id,
        balance: account.balance,
        nonce: account.nonce,
        proof,
    }))
}

async fn params(State(node): State<Node>) -> Json<agora_ledger::Params> {
    Json(node.state().params.clone())
}

/// The consensus committee elected from stake at the last committee epoch
/// boundary, with what the current stake would elect now.
async fn committee(State(node): State<Node>) -> Json<serde_json::Value> {
    let state = node.state();
    Json(serde_json::json!({
        "epoch_blocks": state.params.committee.epoch_blocks,
        "current": state.committee,
        "candidates": state.elect_committee(),
    }))
}

async fn validators(State(node): State<Node>) -> Json<Vec<ValidatorStake>> {
    let state = node.state();
    Json(
        state
            .validators
            .iter()
            .map(|(id, v)| ValidatorStake {
                id: *id,
                self_stake: v.self_stake,
                delegated: v.delegated,
                take_ppm: v.take_ppm,
            })
            .collect(),
    )
}

async fn channel(
    State(node): State<Node>,
    Segment(id): Segment,
) -> Result<Json<ChannelInfo>, ApiError> {
    let id = parse_hash(&id)?;
    let state = node.state();
    let c = state
        .channels
        .get(&id)
        .ok_or_else(|| not_found(format!("no open channel {id}")))?;
    Ok(Json(ChannelInfo {
        id,
        client: c.client,
        provider: c.provider,
        model: c.model,
        deposit: c.deposit,
        paid: c.paid,
        receipts_root: c.receipts_root,
        jobs: c.jobs,
        closable_at: c.closable_at,
    }))
}

fn audit_status(s: &agora_ledger::State, provider: AccountId) -> ProviderAuditStatus {
    let registered = s.providers.get(&provider);
    ProviderAuditStatus {
        provider,
        registered: registered.is_some(),
        stake: registered.map_or(0, |p| p.stake),
        audits: s
            .provider_audits
            .get(&provider)
            .copied()
            .unwrap_or_default(),
    }
}

/// Every registered provider and every provider with an audit record.
fn audit_statuses(s: &agora_ledger::State) -> Vec<ProviderAuditStatus> {
    let ids: std::collections::BTreeSet<AccountId> = s
        .providers
        .keys()
        .chain(s.provider_audits.keys())
        .copied()
        .collect();
    ids.into_iter().map(|id| audit_status(s, id)).collect()
}

#[derive(Deserialize)]
pub(crate) struct SinceQuery {
    pub(crate) since: Option<u64>,
}

/// Receipt batches committed after `since` (default 0: all live ones), oldest
/// first, a page at a time.
async fn batches(State(node): State<Node>, RpcQuery(q): RpcQuery<SinceQuery>) -> Json<BatchPage> {
    let state = node.state();
    Json(page_batches(
        state.batches.values(),
        q.since.unwrap_or(0),
        BATCH_PAGE,
    ))
}

/// The batches after height `since` ordered by (height, id), cut after about
/// `limit` without splitting a height (one height alone may exceed it).
fn page_batches<'a>(
    batches: impl Iterator<Item = &'a ReceiptBatch>,
    since: u64,
    limit: usize,
) -> BatchPage {
    let mut all: Vec<ReceiptBatch> = batches.filter(|b| b.height > since).cloned().collect();
    all.sort_by_key(|b| (b.height, b.id));
    let mut more = false;
    if all.len() > limit {
        let cut_height = all[limit].height;
        let first_at_cut = all.partition_point(|b| b.height < cut_height);
        let end = if first_at_cut > 0 {
            first_at_cut
        } else {
            all.partition_point(|b| b.height <= cut_height)
        };
        more = end < all.len();
        all.truncate(end);
    }
    BatchPage { batches: all, more }
}

async fn disputes(State(node): State<Node>) -> Json<Vec<Dispute>> {
    Json(node.state().disputes.values().cloned().collect())
}

async fn audits(
    State(node): State<Node>,
    Segment(provider): Segment,
) -> Result<Json<ProviderAuditStatus>, ApiError> {
    let provider = parse_account(&provider)?;
    Ok(Json(audit_status(&node.state(), provider)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(height: u64, tag: u8) -> ReceiptBatch {
        ReceiptBatch {
            id: Hash32([tag; 32]),
            provider: AccountId([0; 32]),
            model: None,
            root: Hash32::ZERO,
            first_index: 0,
            count: 1,
            height,
            channel: None,
            seed: None,
            audits: Vec::new(),
        }
    }

    fn heights(page: &BatchPage) -> Vec<(u64, u8)> {
        page.batches.iter().map(|b| (b.height, b.id.0[0])).collect()
    }

    #[test]
    fn pages_follow_height_order_and_never_split_a_height() {
        let all = [
            batch(3, 1),
            batch(1, 2),
            batch(2, 3),
            batch(2, 4),
            batch(5, 5),
        ];
        let page = page_batches(all.iter(), 0, 10);
        assert_eq!(heights(&page), vec![(1, 2), (2, 3), (2, 4), (3, 1), (5, 5)]);
        assert!(!page.more);
        // A limit of 2 would split height 2: the page stops before it.
        let page = page_batches(all.iter(), 0, 2);
        assert_eq!(heights(&page), vec![(1, 2)]);
        assert!(page.more);
        // Continuing from the last height: height 2 whole, then the rest.
        let page = page_batches(all.iter(), 1, 2);
        assert_eq!(heights(&page), vec![(2, 3), (2, 4)]);
        assert!(page.more);
        // One height bigger than the limit is sent whole.
        let page = page_batches(all.iter(), 1, 1);
        assert_eq!(heights(&page), vec![(2, 3), (2, 4)]);
        assert!(page.more);
        let page = page_batches(all.iter(), 3, 1);
        assert_eq!(heights(&page), vec![(5, 5)]);
        assert!(!page.more);
    }
}
