//! Accounts, keys and usage over HTTP. `GET /v1/usage` shows a key its own
//! spend and usage; the `/admin` routes (behind the operator's admin key,
//! mounted only when one is configured) create custodial accounts, issue,
//! list and revoke keys, and show every key's usage. `agora keys` drives them.

use std::sync::Arc;

use agora_keys::{KeyBook, KeysError, Limits, UsageRow};
use agora_types::AccountId;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::access::{presented, Access};
use crate::handlers::read_body;
use crate::{ApiError, Directory, Gateway};

/// A key's own usage.
pub const USAGE_ROUTE: &str = "/v1/usage";
/// Custodial accounts (GET lists, POST creates).
pub const ACCOUNTS_ROUTE: &str = "/admin/accounts";
/// Keys (GET lists, POST issues).
pub const KEYS_ROUTE: &str = "/admin/keys";
/// One key (DELETE revokes).
pub const KEY_ROUTE: &str = "/admin/keys/{id}";
/// Every key's usage (`?key=ID` for one).
pub const ADMIN_USAGE_ROUTE: &str = "/admin/usage";

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 64 << 10;

type Gw<D> = State<Arc<Gateway<D>>>;

/// A new key: its name, the account it spends from, and its limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// A label.
    #[serde(default)]
    pub name: String,
    /// The custodial account it spends from.
    pub account: AccountId,
    /// Most it may ever spend.
    pub total: Option<u64>,
    /// Most per UTC day.
    pub daily: Option<u64>,
    /// Most per ISO week.
    pub weekly: Option<u64>,
    /// Most per calendar month.
    pub monthly: Option<u64>,
    /// Most requests per minute.
    pub rpm: Option<u32>,
    /// Most tokens per minute.
    pub tpm: Option<u64>,
}

impl NewKey {
    /// Its budgets and rate limits.
    pub fn limits(&self) -> Limits {
        Limits {
            total: self.total,
            daily: self.daily,
            weekly: self.weekly,
            monthly: self.monthly,
            rpm: self.rpm,
            tpm: self.tpm,
        }
    }
}

/// `?key=ID`.
#[derive(Debug, Deserialize)]
pub struct UsageQuery {
    /// One key's public id.
    pub key: Option<String>,
}

/// The admin routes, when the gateway has keys and an admin key.
pub(crate) fn routes<D: Directory>(gw: &Arc<Gateway<D>>) -> Router<Arc<Gateway<D>>> {
    let keyed = matches!(gw.access, Access::Keyed { .. });
    if !keyed || gw.config.admin_key_hash.is_none() {
        return Router::new();
    }
    Router::new()
        .route(
            ACCOUNTS_ROUTE,
            get(list_accounts::<D>).post(create_account::<D>),
        )
        .route(KEYS_ROUTE, get(list_keys::<D>).post(create_key::<D>))
        .route(KEY_ROUTE, delete(revoke_key::<D>))
        .route(ADMIN_USAGE_ROUTE, get(all_usage::<D>))
}

fn keys_error(e: KeysError) -> ApiError {
    match e {
        KeysError::NoSuchKey(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "key_not_found",
            e.to_string(),
        ),
        KeysError::NoSuchAccount(_) | KeysError::Invalid(_) => {
            ApiError::invalid("account", e.to_string())
        }
        KeysError::Store(_) | KeysError::Corrupt(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "key_store",
            e.to_string(),
        ),
    }
}

/// The key book, if `headers` carry the admin key.
fn admin<'a, D: Directory>(
    gw: &'a Gateway<D>,
    headers: &HeaderMap,
) -> Result<&'a Arc<KeyBook>, ApiError> {
    let Access::Keyed { book, .. } = &gw.access else {
        return Err(ApiError::unknown_route("/admin"));
    };
    let presented = presented(headers).map(agora_keys::hash);
    match (presented, gw.config.admin_key_hash) {
        (Some(p), Some(want)) if p == want => Ok(book),
        (None, _) => Err(ApiError::unauthorized(
            "The admin API needs 'Authorization: Bearer ADMIN_KEY'.",
        )),
        _ => Err(ApiError::unauthorized("Incorrect admin key.")),
    }
}

fn respond(result: Result<serde_json::Value, ApiError>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn list_accounts<D: Directory>(State(gw): Gw<D>, headers: HeaderMap) -> Response {
    respond(admin(&gw, &headers).map(|book| {
        let data: Vec<_> = book
            .accounts()
            .into_iter()
            .map(|a| {
                let (available, reserved) = book.funds(&a);
                json!({"account": a, "available": available, "reserved": reserved})
            })
            .collect();
        json!({"object": "list", "data": data})
    }))
}

async fn create_account<D: Directory>(State(gw): Gw<D>, headers: HeaderMap) -> Response {
    respond(admin(&gw, &headers).and_then(|book| {
        let account = book.create_account().map_err(keys_error)?;
        Ok(json!({"account": account}))
    }))
}

async fn list_keys<D: Directory>(State(gw): Gw<D>, headers: HeaderMap) -> Response {
    respond(admin(&gw, &headers).map(|book| json!({"object": "list", "data": book.list()})))
}

async fn create_key<D: Directory>(State(gw): Gw<D>, headers: HeaderMap, body: Body) -> Response {
    let book = match admin(&gw, &headers) {
        Ok(b) => b.clone(),
        Err(e) => return e.into_response(),
    };
    let made = async {
        let bytes = read_body(&headers, body, MAX_ADMIN_BODY).await?;
        let new: NewKey = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::malformed(format!(
                "a new key is {{name, account, total, daily, weekly, monthly, rpm, tpm}}: {e}"
            ))
        })?;
        let (secret, record) = book
            .create_key(&new.name, new.account, new.limits())
            .map_err(keys_error)?;
        let mut body = serde_json::to_value(&record).unwrap_or_default();
        body["key"] = json!(secret);
        Ok::<_, ApiError>((StatusCode::CREATED, Json(body)).into_response())
    };
    made.await.unwrap_or_else(IntoResponse::into_response)
}

async fn revoke_key<D: Directory>(
    State(gw): Gw<D>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    respond(admin(&gw, &headers).and_then(|book| {
        let record = book.revoke(&id).map_err(keys_error)?;
        Ok(serde_json::to_value(record).unwrap_or_default())
    }))
}

async fn all_usage<D: Directory>(
    State(gw): Gw<D>,
    headers: HeaderMap,
    Query(q): Query<UsageQuery>,
) -> Response {
    let book = match admin(&gw, &headers) {
        Ok(b) => b.clone(),
        Err(e) => return e.into_response(),
    };
    usage_of(book, q.key).await
}

/// Usage rows of `key` (every key's if `None`), read off the async runtime.
async fn usage_rows(book: Arc<KeyBook>, key: Option<String>) -> Result<Vec<UsageRow>, ApiError> {
    tokio::task::spawn_blocking(move || book.usage(key.as_deref()))
        .await
        .map_err(|e| keys_error(KeysError::Store(e.to_string())))?
        .map_err(keys_error)
}

async fn usage_of(book: Arc<KeyBook>, key: Option<String>) -> Response {
    match usage_rows(book, key).await {
        Ok(rows) => Json(json!({"object": "list", "data": rows})).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/usage`: the calling key's record (limits, spend) and usage rows.
pub async fn own_usage<D: Directory>(State(gw): Gw<D>, headers: HeaderMap) -> Response {
    let Access::Keyed { book, .. } = &gw.access else {
        return ApiError::unknown_route(USAGE_ROUTE).into_response();
    };
    let id = match book.identify(presented(&headers)) {
        Ok(id) => id,
        Err(refusal) => return ApiError::from(refusal).into_response(),
    };
    let key = book.list().into_iter().find(|k| k.record.id == id);
    match usage_rows(book.clone(), Some(id)).await {
        Ok(rows) => Json(json!({"object": "list", "key": key, "data": rows})).into_response(),
        Err(e) => e.into_response(),
    }
}
