//! The OpenAI-compatible gateway: `GET /v1/models`, `POST /v1/chat/completions`
//! and `POST /v1/completions`, streaming and not, routed to providers that the
//! chain lists for the requested model.
//!
//! It learns the network through the narrow [`Directory`] trait and keeps a
//! cached [`Snapshot`] and short-lived provider health. With a [`KeyBook`]
//! it serves only that book's keys, reserves each request's maximum cost on
//! its key before sending it, and pays providers for every finished job
//! from the key's own account through payment channels ([`AccountPayers`]).

mod access;
mod admin;
mod chain_directory;
mod completion;
mod console_api;
mod directory;
mod embeddings;
mod error;
mod gateway;
mod handlers;
mod metrics;
mod payments;
mod provider_client;
mod receipts;
mod request;
mod routing;
mod self_keys;
mod start;
mod tools;

pub use admin::{NewKey, ACCOUNTS_ROUTE, ADMIN_USAGE_ROUTE, KEYS_ROUTE, KEY_ROUTE, USAGE_ROUTE};
pub use agora_keys::{KeyBook, Limits, KEY_PREFIX};
pub use chain_directory::ChainDirectory;
pub use console_api::{CHAIN_ROUTE, PROVIDERS_ROUTE};
pub use directory::{Directory, DirectoryError, Snapshot};
pub use embeddings::{EMBEDDINGS_ROUTE, MAX_INPUTS as MAX_EMBEDDING_INPUTS};
pub use error::ApiError;
pub use gateway::{Gateway, GatewayConfig, GatewayError};
pub use metrics::GatewayMetrics;
pub use payments::{
    AccountPayers, ChainFunding, ChannelBook, ChannelStore, Funding, JobPayer, PayError, Payer,
    PayerConfig,
};
pub use receipts::{MAX_RECEIPTS, RECEIPTS_ROUTE};
pub use routing::Routing;
pub use self_keys::{
    key_request_digest, withdraw_digest, KEY_REQUEST_DOMAIN, MIN_OWNER_BALANCE, SELF_KEYS_ROUTE,
    WITHDRAW_DOMAIN, WITHDRAW_ROUTE,
};
pub use start::{
    admin_key, client_keys, serve_limits, start, GatewayHandle, GatewaySetup, PayerSetup,
};
pub use tools::{Function, ToolCall, ToolChoice, Tools, MAX_TOOLS};
