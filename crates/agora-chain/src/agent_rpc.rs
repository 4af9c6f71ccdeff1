//! The agent registry's RPC routes: discovery by capability and model,
//! one agent with its log anchors and reputation, and its feedback; and
//! the validation requests (audits asked for) that auditors pick up.

use agora_types::{AgentEntry, Feedback, ModelId};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use crate::extract::{RpcQuery, Segment};
use crate::rpc::{not_found, parse_account, ApiError, SinceQuery};
use crate::Node;

/// `GET /agents` filters.
#[derive(Deserialize)]
pub(crate) struct AgentQuery {
    /// Only agents announcing this capability.
    capability: Option<String>,
    /// Only agents using this model (id, or a registered model's name).
    model: Option<String>,
    /// Also those whose heartbeat expired.
    #[serde(default)]
    all: bool,
}

/// `GET /agents?capability=C&model=M&all=true`: live agents (all, with
/// `all`) matching both filters, by account.
pub(crate) async fn agents(
    State(node): State<Node>,
    RpcQuery(q): RpcQuery<AgentQuery>,
) -> Result<Json<Vec<AgentEntry>>, ApiError> {
    let state = node.state();
    let model: Option<ModelId> = match &q.model {
        None => None,
        Some(m) => Some(match m.parse() {
            Ok(id) => id,
            Err(_) => state
                .models
                .values()
                .find(|e| e.name == *m)
                .map(|e| e.id)
                .ok_or_else(|| not_found(format!("no registered model {m:?}")))?,
        }),
    };
    Ok(Json(
        state
            .agents
            .values()
            .filter(|a| q.all || a.live_at(state.height))
            .filter(|a| {
                q.capability
                    .as_ref()
                    .is_none_or(|c| a.profile.capabilities.contains(c))
            })
            .filter(|a| model.is_none_or(|m| a.profile.models.contains(&m)))
            .cloned()
            .collect(),
    ))
}

/// `GET /agent/{id}`.
pub(crate) async fn agent(
    State(node): State<Node>,
    Segment(id): Segment,
) -> Result<Json<AgentEntry>, ApiError> {
    let id = parse_account(&id)?;
    node.state()
        .agents
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| not_found(format!("no agent registered as {id}")))
}

/// `GET /agent/{id}/feedback`: every feedback on it, revoked ones marked.
pub(crate) async fn feedback(
    State(node): State<Node>,
    Segment(id): Segment,
) -> Result<Json<Vec<Feedback>>, ApiError> {
    let id = parse_account(&id)?;
    Ok(Json(
        node.state()
            .feedback
            .values()
            .filter(|f| f.agent == id)
            .cloned()
            .collect(),
    ))
}

/// `GET /validations?since=H`: requested audits in live batches made after
/// height `H`, oldest first, each with its batch.
pub(crate) async fn validations(
    State(node): State<Node>,
    RpcQuery(q): RpcQuery<SinceQuery>,
) -> Json<Vec<agora_types::rpc::ValidationTask>> {
    let state = node.state();
    let since = q.since.unwrap_or(0);
    let mut tasks: Vec<_> = state
        .validation_requests
        .values()
        .filter(|r| r.height > since)
        .filter_map(|r| {
            Some(agora_types::rpc::ValidationTask {
                request: r.clone(),
                batch: state.batches.get(&r.batch)?.clone(),
            })
        })
        .collect();
    tasks.sort_by_key(|t| (t.request.height, t.request.batch, t.request.index));
    Json(tasks)
}
