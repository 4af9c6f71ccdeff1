//! The gateway's view of the network, read from the chain RPC.

use agora_chain_client::ChainClient;

use crate::{Directory, DirectoryError, Snapshot};

/// A [`Directory`] backed by a chain node's `/status`.
pub struct ChainDirectory(pub ChainClient);

impl Directory for ChainDirectory {
    async fn snapshot(&self) -> Result<Snapshot, DirectoryError> {
        let status = self
            .0
            .status()
            .await
            .map_err(|e| DirectoryError(e.to_string()))?;
        Ok(Snapshot {
            chain_id: status.chain_id,
            models: status.models,
            providers: status.providers,
        })
    }

    fn chain(&self) -> Option<ChainClient> {
        Some(self.0.clone())
    }
}
