//! The adversary safety guard: a provider cheats on purpose only on a
//! development chain, whoever starts it.

use agora_chain_client::ChainClient;
use agora_tasks::{fail, Context, Failure};
use agora_types::network::{is_development_chain, DEV_CHAIN_ID};

use crate::Adversary;

/// Refuse to cheat anywhere but on a development chain.
pub async fn ensure_development_chain(
    chain: &ChainClient,
    mode: &Adversary,
) -> Result<(), Failure> {
    let chain_id = chain
        .head()
        .await
        .context("reading the chain id (--adversary needs it)")?
        .chain_id;
    if !is_development_chain(&chain_id) {
        fail!(
            "--adversary {mode} is refused on chain {chain_id:?}: adversarial providers run only \
             on development chains ({DEV_CHAIN_ID} or ids ending in -devnet, -localnet, -test)"
        );
    }
    tracing::warn!(%mode, %chain_id, "THIS PROVIDER CHEATS ON PURPOSE (--adversary); testing only");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_development_chains_allow_adversaries() {
        assert!(is_development_chain(DEV_CHAIN_ID));
        assert!(is_development_chain("agora-localnet"));
        assert!(is_development_chain("verify-test"));
        assert!(!is_development_chain("agora-mainnet"));
        assert!(!is_development_chain("agora-devnet-but-not"));
        assert!(!is_development_chain(""));
    }
}
