//! Where the gateway learns which models exist and who serves them.

use std::future::Future;

use agora_types::{ModelEntry, ProviderInfo};

/// What the gateway knows about the network: registered models and providers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The chain's id: every receipt the gateway accepts must name it.
    pub chain_id: String,
    /// Models in the chain's registry.
    pub models: Vec<ModelEntry>,
    /// Registered providers.
    pub providers: Vec<ProviderInfo>,
}

impl Snapshot {
    /// The registry entry a request names, by API name or by model id (hex).
    pub fn model(&self, name: &str) -> Option<&ModelEntry> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .or_else(|| self.models.iter().find(|m| m.id.to_hex() == name))
    }

    /// Providers that serve `model`.
    pub fn providers_of<'a>(
        &'a self,
        model: &'a ModelEntry,
    ) -> impl Iterator<Item = &'a ProviderInfo> + 'a {
        self.providers
            .iter()
            .filter(move |p| p.models.contains(&model.id))
    }
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

    /// The chain RPC behind the directory, if any (to find receipt batches).
    fn chain(&self) -> Option<agora_chain_client::ChainClient> {
        None
    }
}
