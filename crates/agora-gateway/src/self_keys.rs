//! `POST /v1/keys`: a wallet asks for an API key by signing the request
//! with its own key, which never leaves the wallet. The key spends from a
//! custodial account the gateway keeps for that wallet (the wallet funds it
//! with an ordinary transfer), so the gateway can pay providers through
//! channels as for every other key. A request is refused unless its
//! signature is the owner's, it is fresh, it was never used before, and the
//! owner holds at least [`MIN_OWNER_BALANCE`] on chain (so that keys and the
//! accounts the gateway follows cost an attacker real funds).
//! `POST /v1/keys/withdraw`, signed the same way under its own domain, sends
//! what the wallet's custodial account holds back to the wallet, so nothing
//! funded through a key is ever stuck.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use agora_keys::{KeyBook, Limits};
use agora_types::{AccountId, Amount, Hash32, Signature};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::access::Access;
use crate::handlers::read_body;
use crate::{ApiError, Directory, Gateway};

/// The route.
pub const SELF_KEYS_ROUTE: &str = "/v1/keys";
/// Withdrawals from a wallet's custodial account back to the wallet.
pub const WITHDRAW_ROUTE: &str = "/v1/keys/withdraw";
/// Domain of the digest a wallet signs: BLAKE3 derive-key over the request's bytes.
pub const KEY_REQUEST_DOMAIN: &str = "agora 2026 gateway key request v1";
/// Domain of the digest a wallet signs to withdraw.
pub const WITHDRAW_DOMAIN: &str = "agora 2026 gateway withdrawal v1";
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

/// What a wallet asks to withdraw: `amount` from its custodial account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawRequest {
    owner: AccountId,
    amount: Amount,
    issued_at_ms: u64,
}

/// A signed request's signer and time.
trait Signed: DeserializeOwned {
    /// Who signed it.
    fn owner(&self) -> AccountId;
    /// When, by the signer's clock.
    fn issued_at_ms(&self) -> u64;
}

impl Signed for KeyRequest {
    fn owner(&self) -> AccountId {
        self.owner
    }
    fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }
}

impl Signed for WithdrawRequest {
    fn owner(&self) -> AccountId {
        self.owner
    }
    fn issued_at_ms(&self) -> u64 {
        self.issued_at_ms
    }
}

/// The digest a wallet signs for a request whose JSON text is `request`.
pub fn key_request_digest(request: &[u8]) -> Hash32 {
    Hash32::digest_in(KEY_REQUEST_DOMAIN, request)
}

/// The digest a wallet signs for a withdrawal whose JSON text is `request`.
pub fn withdraw_digest(request: &[u8]) -> Hash32 {
    Hash32::digest_in(WITHDRAW_DOMAIN, request)
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

/// The request in `body` once its signature, freshness and first use are checked.
async fn verified<D: Directory, R: Signed>(
    gw: &Gateway<D>,
    headers: &HeaderMap,
    body: Body,
    digest_of: fn(&[u8]) -> Hash32,
) -> Result<R, ApiError> {
    let bytes = read_body(headers, body, MAX_BODY).await?;
    let signed: SignedKeyRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::malformed(format!("the body is {{request, signature}}: {e}")))?;
    let request: R = serde_json::from_str(&signed.request)
        .map_err(|e| ApiError::invalid("request", format!("the request is unreadable: {e}")))?;
    let signature: Signature = signed
        .signature
        .parse()
        .map_err(|_| ApiError::invalid("signature", "the signature is not 64 bytes of hex"))?;
    let digest = digest_of(signed.request.as_bytes());
    request.owner().verify(&digest.0, &signature).map_err(|_| {
        refused(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "the signature is not the owner's over this request",
        )
    })?;
    let now = now_ms();
    if request.issued_at_ms().abs_diff(now) > MAX_SKEW_MS {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "stale_request",
            "issued_at_ms is more than 5 minutes from the gateway's clock",
        ));
    }
    let fresh = gw
        .key_requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .first_use(digest, now, request.issued_at_ms() + MAX_SKEW_MS);
    if !fresh {
        return Err(refused(
            StatusCode::CONFLICT,
            "replayed_request",
            "this signed request was already used",
        ));
    }
    Ok(request)
}

/// The key book, or a 404 for `route` on an open gateway (no keys at all).
fn book_of<'a, D: Directory>(gw: &'a Gateway<D>, route: &str) -> Result<&'a KeyBook, ApiError> {
    match &gw.access {
        Access::Keyed { book, .. } => Ok(book),
        Access::Open => Err(ApiError::unknown_route(route)),
    }
}

/// The chain behind the gateway's directory.
fn chain_of<D: Directory>(gw: &Gateway<D>) -> Result<agora_chain_client::ChainClient, ApiError> {
    gw.directory
        .chain()
        .ok_or_else(|| ApiError::directory("this gateway reads no chain"))
}

async fn issue<D: Directory>(
    gw: &Gateway<D>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let book = book_of(gw, SELF_KEYS_ROUTE)?;
    let request: KeyRequest = verified(gw, headers, body, key_request_digest).await?;
    let chain = chain_of(gw)?;
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

/// `POST /v1/keys/withdraw`.
pub async fn withdraw<D: Directory>(
    State(gw): State<Arc<Gateway<D>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    send_back(&gw, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn send_back<D: Directory>(
    gw: &Gateway<D>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let book = book_of(gw, WITHDRAW_ROUTE)?;
    let request: WithdrawRequest = verified(gw, headers, body, withdraw_digest).await?;
    let not_found = || {
        refused(
            StatusCode::NOT_FOUND,
            "no_custodial_account",
            "this gateway keeps no account for that owner (ask for a key first)",
        )
    };
    let account = book.owned_account(&request.owner).ok_or_else(not_found)?;
    let signer = book.signer(&account).ok_or_else(not_found)?;
    let chain = chain_of(gw)?;
    let nonce = chain
        .account(&account)
        .await
        .map_err(|e| ApiError::directory(format!("the custodial account cannot be read: {e}")))?
        .next_nonce;
    let tx = agora_types::Transaction {
        chain_id: gw.config.chain_id.clone(),
        from: account,
        nonce,
        kind: agora_types::TxKind::Transfer {
            to: request.owner,
            amount: request.amount,
        },
    }
    .sign(&signer);
    let id = chain.submit(&tx).await.map_err(|e| {
        refused(
            StatusCode::BAD_REQUEST,
            "withdrawal_refused",
            format!("the chain refused the withdrawal: {e}"),
        )
    })?;
    let body = json!({"tx": id, "from": account, "to": request.owner, "amount": request.amount});
    Ok((StatusCode::OK, Json(body)).into_response())
}
