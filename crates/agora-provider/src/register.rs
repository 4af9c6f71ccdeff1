//! Registering the provider (and, if needed, its model) on the chain.

use std::time::Duration;

use agora_chain_client::{ChainClient, ProviderTerms};
use agora_types::{Amount, Keypair, ModelEntry, Price, TxKind};

use crate::ProviderError;

/// How long to wait for each registration transaction to commit.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// Make sure the chain lists `model` and this provider serving it at
/// `endpoint` with `price` and `stake`, flagged `replayable` or not (an
/// upstream engine's jobs are not); submits only the transactions needed.
pub async fn register_on_chain(
    chain: &ChainClient,
    key: &Keypair,
    endpoint: &str,
    model: &ModelEntry,
    price: Price,
    stake: Amount,
    replayable: bool,
) -> Result<(), ProviderError> {
    let models = chain.models().await?;
    match models.iter().find(|m| m.id == model.id) {
        Some(_) => {}
        None if models.iter().any(|m| m.name == model.name) => {
            return Err(ProviderError::Registration(format!(
                "the name {:?} is registered for a different file than {}",
                model.name, model.id
            )))
        }
        None => {
            // The registering key becomes the model's owner (the ledger insists).
            let kind = TxKind::RegisterModel {
                model: ModelEntry {
                    owner: key.account(),
                    ..model.clone()
                },
            };
            chain.send_and_wait(key, kind, COMMIT_TIMEOUT).await?;
            tracing::info!(model = %model.id, name = %model.name, "model registered on chain");
        }
    }
    let terms = ProviderTerms {
        endpoint: endpoint.to_string(),
        models: vec![model.id],
        price,
        stake,
        replayable,
    };
    if let Some(height) = chain.ensure_provider(key, &terms, COMMIT_TIMEOUT).await? {
        tracing::info!(provider = %key.account(), height, "provider registered on chain");
    }
    Ok(())
}
