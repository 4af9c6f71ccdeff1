//! Why a request was refused before it was sent: every way a key, its
//! budgets, its rate limits or its account's funds can say no.

use agora_types::{AccountId, Amount};

use crate::limits::OverBudget;
use crate::rate::OverRate;

/// A request the key book refused; the gateway answers it in OpenAI's shape.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No `Authorization: Bearer` key was sent.
    #[error("You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.")]
    MissingKey,
    /// The key is not one this gateway issued.
    #[error("Incorrect API key provided. This gateway serves only the keys it issued.")]
    UnknownKey,
    /// The key was revoked.
    #[error("The API key {0} has been revoked.")]
    Revoked(String),
    /// A budget would be exceeded.
    #[error("The key's {} budget of {} is exhausted: {} spent or reserved, this request may cost up to {ask}.", .over.budget, .over.limit, .over.committed)]
    Budget {
        /// The budget at fault.
        over: OverBudget,
        /// The request's maximum cost.
        ask: Amount,
    },
    /// A rate limit would be exceeded.
    #[error("Rate limit reached: the key allows {} {} per minute.", .0.limit, if .0.limit_name == "rpm" { "requests" } else { "tokens" })]
    Rate(OverRate),
    /// The request alone exceeds the key's tokens per minute.
    #[error("This request may use {tokens} tokens, more than the key's limit of {limit} per minute; lower max_tokens.")]
    TooLarge {
        /// Tokens the request may use.
        tokens: u64,
        /// The key's tpm limit.
        limit: u64,
    },
    /// The account behind the key cannot cover the request.
    #[error("The account {account} behind this key has {available} available (after running requests), and this request may cost up to {ask}; fund the account.")]
    Funds {
        /// The account.
        account: AccountId,
        /// What it can still spend.
        available: Amount,
        /// The request's maximum cost.
        ask: Amount,
    },
    /// The account's funds are not known yet (fail closed).
    #[error("The funds of account {0} are not known yet; retry shortly.")]
    FundsUnknown(AccountId),
}

impl Refusal {
    /// Seconds after which the same request may pass, where waiting helps.
    pub fn retry_after_secs(&self) -> Option<u64> {
        let ceil = |ms: u64| ms.div_ceil(1000).max(1);
        match self {
            Refusal::Budget { over, .. } => over.resets_in_ms.map(ceil),
            Refusal::Rate(r) => Some(ceil(r.retry_in_ms)),
            Refusal::FundsUnknown(_) => Some(2),
            _ => None,
        }
    }
}
