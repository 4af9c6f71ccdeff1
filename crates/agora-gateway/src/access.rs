//! Who may call the gateway and who pays: with a [`KeyBook`], every
//! completion needs one of its keys and spends from that key's account
//! (reserve before sending, charge after); without one the gateway is open
//! and pays no one. Refusals map to OpenAI's error shapes.

use std::sync::Arc;

use agora_keys::{bearer, KeyBook, Refusal};
use axum::http::{HeaderMap, StatusCode};

use crate::payments::JobPayer;
use crate::ApiError;

/// How requests are admitted and paid for.
#[derive(Clone)]
pub(crate) enum Access {
    /// Anyone may call; no provider is paid.
    Open,
    /// Keys from `book` are required; `payer` pays each key's account's providers.
    Keyed {
        /// Keys, budgets and accounts.
        book: Arc<KeyBook>,
        /// Pays providers from the account of the key that asked.
        payer: Arc<dyn JobPayer>,
    },
}

/// The key an `Authorization` header carries, if any.
pub(crate) fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        let (status, kind, code) = match &refusal {
            Refusal::MissingKey | Refusal::UnknownKey | Refusal::Revoked(_) => (
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "invalid_api_key",
            ),
            Refusal::Budget { .. } => (
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_quota",
                "budget_exceeded",
            ),
            Refusal::Funds { .. } => (
                StatusCode::PAYMENT_REQUIRED,
                "insufficient_quota",
                "insufficient_funds",
            ),
            Refusal::Rate(r) => (
                StatusCode::TOO_MANY_REQUESTS,
                if r.limit_name == "rpm" {
                    "requests"
                } else {
                    "tokens"
                },
                "rate_limit_exceeded",
            ),
            Refusal::TooLarge { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "tokens",
                "rate_limit_exceeded",
            ),
            Refusal::FundsUnknown(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "funds_unknown",
            ),
        };
        let mut e = ApiError::new(status, kind, code, refusal.to_string());
        e.retry_after = refusal
            .retry_after_secs()
            .map(|s| u32::try_from(s).unwrap_or(u32::MAX));
        e
    }
}
