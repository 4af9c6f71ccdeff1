//! The OpenAI-compatible gateway: `GET /v1/models`, `POST /v1/chat/completions`
//! and `POST /v1/completions`, streaming and not, routed to providers that the
//! chain lists for the requested model.

use std::future::Future;

use agora_types::{ModelEntry, ProviderInfo};

/// What the gateway knows about the network: registered models and providers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Models in the chain's registry.
    pub models: Vec<ModelEntry>,
    /// Registered providers.
    pub providers: Vec<ProviderInfo>,
}

/// Why the directory could not be read.
#[derive(Debug, thiserror::Error)]
#[error("directory unavailable: {0}")]
pub struct DirectoryError(pub String);

/// Where the gateway learns models and providers from; the real implementation
/// reads the chain's RPC.
pub trait Directory: Send + Sync + 'static {
    /// The current registries.
    fn snapshot(&self) -> impl Future<Output = Result<Snapshot, DirectoryError>> + Send;
}
