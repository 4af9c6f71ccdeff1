//! The OpenAI-compatible gateway: `GET /v1/models`, `POST /v1/chat/completions`
//! and `POST /v1/completions`, streaming and not, routed to providers that the
//! chain lists for the requested model.
//!
//! The gateway holds no state of its own beyond a cached [`Snapshot`] of the
//! network and short-lived provider health; it learns the network through
//! the narrow [`Directory`] trait. With a [`Payer`] it pays providers for
//! every finished job through payment channels.

mod api_keys;
mod chain_directory;
mod completion;
mod directory;
mod error;
mod gateway;
mod handlers;
mod metrics;
mod payments;
mod provider_client;
mod request;
mod routing;
mod start;

pub use api_keys::{ApiKeyError, ApiKeys, KEY_PREFIX};
pub use chain_directory::ChainDirectory;
pub use directory::{Directory, DirectoryError, Snapshot};
pub use error::ApiError;
pub use gateway::{Gateway, GatewayConfig, GatewayError};
pub use metrics::GatewayMetrics;
pub use payments::{ChainFunding, ChannelBook, Funding, JobPayer, PayError, Payer, PayerConfig};
pub use routing::Routing;
pub use start::{serve_limits, start, GatewayHandle, GatewaySetup, PayerSetup};
