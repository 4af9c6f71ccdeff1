//! The explorer's RPC routes under `/explorer`: block pages, supply over
//! time, emission per tempo, slashes and earnings from the node's
//! [`agora_explorer::History`], and pages of accounts and providers from the
//! committed state.

use agora_explorer::listing::{self, AccountQuery};
use agora_explorer::rows::{
    AccountPage, BlockPage, EarningsPoint, ProviderRow, Slash, SupplyPoint, TempoEmission,
};
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::extract::{RpcQuery, Segment};
use crate::rpc::{parse_account, ApiError, SinceQuery};
use crate::Node;

/// `GET /explorer/blocks?before=H&limit=N`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlocksQuery {
    /// Only blocks below this height.
    before: Option<u64>,
    /// Most blocks (default 25, at most 100).
    limit: Option<usize>,
}

/// The routes, mounted by [`Node::router`].
pub(crate) fn routes() -> Router<Node> {
    Router::new()
        .route("/explorer/blocks", get(blocks))
        .route("/explorer/supply", get(supply))
        .route("/explorer/emissions", get(emissions))
        .route("/explorer/slashes", get(slashes))
        .route("/explorer/accounts", get(accounts))
        .route("/explorer/providers", get(providers))
        .route("/explorer/earnings/{account}", get(earnings))
}

/// Committed blocks below `before`, newest first.
async fn blocks(State(node): State<Node>, RpcQuery(q): RpcQuery<BlocksQuery>) -> Json<BlockPage> {
    let head = node.state().height;
    Json(node.history().blocks(head, q.before, q.limit.unwrap_or(25)))
}

/// Issuance after each block since `since`, oldest first.
async fn supply(
    State(node): State<Node>,
    RpcQuery(q): RpcQuery<SinceQuery>,
) -> Json<Vec<SupplyPoint>> {
    Json(node.history().supply(q.since.unwrap_or(0)))
}

/// Reward distributions, newest first.
async fn emissions(State(node): State<Node>) -> Json<Vec<TempoEmission>> {
    Json(node.history().emissions())
}

/// Slashed providers, newest first.
async fn slashes(State(node): State<Node>) -> Json<Vec<Slash>> {
    Json(node.history().slashes())
}

/// A page of accounts, sorted and filtered.
async fn accounts(
    State(node): State<Node>,
    RpcQuery(q): RpcQuery<AccountQuery>,
) -> Json<AccountPage> {
    Json(listing::accounts(&node.state(), &q))
}

/// Every provider, registered or not.
async fn providers(State(node): State<Node>) -> Json<Vec<ProviderRow>> {
    Json(listing::providers(&node.state()))
}

/// An account's earnings after each block that changed them.
async fn earnings(
    State(node): State<Node>,
    Segment(account): Segment,
) -> Result<Json<Vec<EarningsPoint>>, ApiError> {
    let account = parse_account(&account)?;
    Ok(Json(node.history().earnings(&account)))
}
