//! `POST /v1/keys`: a wallet asks for an API key by signing the request
//! with its own key, which never leaves the wallet. The key spends from a
//! custodial account the gateway keeps for that wallet (the wallet funds it
//! with an ordinary transfer), so the gateway can pay providers through
//! channels as for every other key. A request is refused unless its
//! signature is the owner's, it is fresh, it was never used before, and the
//! owner holds at least [`MIN_OWNER_BALANCE`] on chain (so that keys and the
//! accounts the gateway follows cost an attacker real funds).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use agora_keys::Limits;
use agora_types::{AccountId, Amount, Hash32, Signature};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::access::Access;
use crate::handlers::read_body;
use crate::{ApiError, Directory, Gateway};

/// The route.
pub const SELF_KEYS_ROUTE: &str = "/v1/keys";
/// Domain of the digest a wallet signs: BLAKE3 derive-key over the request's bytes.
pub const KEY_REQUEST_DOMAIN: &str = "agora 2026 gateway key request v1";
/// Least an owner must hold on chain to be issued keys.
pub const MIN_OWNER_BALANCE: Amount = 1_000;
/// How far a request's `issued_at_ms` may be from the gateway's clock.
const MAX_SKEW_MS: u64 = 5 * 60 * 1000;
/// Largest request body.
const MAX_BODY: usize = 8 << 10;

/// The body: the request as the exact JSON text signed, and the signature.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedKeyRequest {
    request: String,
    signature: String,
}

/// What a wallet asks for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRequest {
    owner: AccountId,
    #[serde(default)]
    name: String,
    issued_at_ms: u64,
    total: Option<u64>,
    daily: Option<u64>,
    weekly: Option<u64>,
    monthly: Option<u64>,
    rpm: Option<u32>,
    tpm: Option<u64>,
}

/// The digest a wallet signs for a request whose JSON text is `request`.
pub fn key_request_digest(request: &[u8]) -> Hash32 {
    Hash32::digest_in(KEY_REQUEST_DOMAIN, request)
}

/// Digests of requests already served, until they could no longer be fresh.
#[derive(Default)]
pub(crate) struct SeenRequests(HashMap<Hash32, u64>);

impl SeenRequests {
    /// Remember `digest` until `expires_ms`; false if it was already seen.
    fn first_use(&mut self, digest: Hash32, now_ms: u64, expires_ms: u64) -> bool {
        self.0.retain(|_, until| *until >= now_ms);
        self.0.insert(digest, expires_ms).is_none()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, "invalid_request_error", code, message)
}

/// `POST /v1/keys`.
pub async fn create<D: Directory>(
    State(gw): State<Arc<Gateway<D>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    issue(&gw, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn issue<D: Directory>(
    gw: &Gateway<D>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let Access::Keyed { book, .. } = &gw.access else {
        return Err(ApiError::unknown_route(SELF_KEYS_ROUTE));
    };
    let bytes = read_body(headers, body, MAX_BODY).await?;
    let signed: SignedKeyRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::malformed(format!("the body is {{request, signature}}: {e}")))?;
    let request: KeyRequest = serde_json::from_str(&signed.request).map_err(|e| {
        ApiError::invalid(
            "request",
            format!("request is {{owner, name, issued_at_ms, total, daily, weekly, monthly, rpm, tpm}}: {e}"),
        )
    })?;
    let signature: Signature = signed
        .signature
        .parse()
        .map_err(|_| ApiError::invalid("signature", "the signature is not 64 bytes of hex"))?;
    let digest = key_request_digest(signed.request.as_bytes());
    request.owner.verify(&digest.0, &signature).map_err(|_| {
        refused(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "the signature is not the owner's over this request",
        )
    })?;
    let now = now_ms();
    if request.issued_at_ms.abs_diff(now) > MAX_SKEW_MS {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "stale_request",
            "issued_at_ms is more than 5 minutes from the gateway's clock",
        ));
    }
    let chain = gw
        .directory
        .chain()
        .ok_or_else(|| ApiError::directory("this gateway reads no chain"))?;
    let balance = chain
        .account(&request.owner)
        .await
        .map_err(|e| ApiError::directory(format!("the owner's account cannot be read: {e}")))?
        .balance;
    if balance < MIN_OWNER_BALANCE {
        return Err(refused(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_balance",
            format!("the owner holds {balance}; keys need at least {MIN_OWNER_BALANCE} on chain"),
        ));
    }
    let fresh = gw
        .key_requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .first_use(digest, now, request.issued_at_ms + MAX_SKEW_MS);
    if !fresh {
        return Err(refused(
            StatusCode::CONFLICT,
            "replayed_request",
            "this signed request was already used",
        ));
    }
    let limits = Limits {
        total: request.total,
        daily: request.daily,
        weekly: request.weekly,
        monthly: request.monthly,
        rpm: request.rpm,
        tpm: request.tpm,
    };
    let (secret, record) = book
        .create_owned_key(&request.name, request.owner, limits)
        .map_err(|e| ApiError::invalid("request", e.to_string()))?;
    let body = json!({
        "key": secret, "id": record.id, "name": record.name, "account": record.account,
        "owner": request.owner, "limits": record.limits,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}
