//! Escrow on chain: the [`Funding`] port the payer opens and tops up
//! channels through, and [`ChainFunding`], its implementation over a chain
//! node's RPC with a funded key.

use std::future::Future;
use std::time::Duration;

use agora_chain_client::{ChainClient, ClientError};
use agora_types::{channel_id, AccountId, Amount, Hash32, Keypair, ModelId, TxKind};

use super::PayError;

/// How long a channel transaction may take to land.
const TX_TIMEOUT: Duration = Duration::from_secs(60);

/// Escrow operations on chain; the real implementation is [`ChainFunding`].
pub trait Funding: Send + Sync + 'static {
    /// The paying account (the channels' client).
    fn client(&self) -> AccountId;
    /// Open a channel to `provider` for `model` escrowing `deposit`; its id once included.
    fn open(
        &self,
        provider: AccountId,
        model: ModelId,
        deposit: Amount,
    ) -> impl Future<Output = Result<Hash32, PayError>> + Send;
    /// Add `amount` to `channel`'s escrow and wait for inclusion.
    fn top_up(
        &self,
        channel: Hash32,
        amount: Amount,
    ) -> impl Future<Output = Result<(), PayError>> + Send;
    /// The paying account's free (unescrowed) balance.
    fn balance(&self) -> impl Future<Output = Result<Amount, PayError>> + Send;
}

/// [`Funding`] by transactions signed with a funded key, through a chain node's RPC.
pub struct ChainFunding {
    chain: ChainClient,
    key: Keypair,
    /// One channel transaction at a time: each takes the key's next nonce.
    nonce: tokio::sync::Mutex<()>,
}

impl ChainFunding {
    /// Funding from `key`'s account through `chain`.
    pub fn new(chain: ChainClient, key: Keypair) -> Self {
        ChainFunding {
            chain,
            key,
            nonce: tokio::sync::Mutex::new(()),
        }
    }
}

fn funding_error(e: ClientError) -> PayError {
    PayError::Funding(e.to_string())
}

impl Funding for ChainFunding {
    fn client(&self) -> AccountId {
        self.key.account()
    }

    async fn open(
        &self,
        provider: AccountId,
        model: ModelId,
        deposit: Amount,
    ) -> Result<Hash32, PayError> {
        let _turn = self.nonce.lock().await;
        let kind = TxKind::OpenChannel {
            provider,
            model,
            deposit,
        };
        let done = self
            .chain
            .send_and_confirm(&self.key, kind, TX_TIMEOUT)
            .await
            .map_err(funding_error)?;
        Ok(channel_id(&done.chain_id, &self.key.account(), done.nonce))
    }

    async fn top_up(&self, channel: Hash32, amount: Amount) -> Result<(), PayError> {
        let _turn = self.nonce.lock().await;
        let kind = TxKind::TopUpChannel { channel, amount };
        self.chain
            .send_and_confirm(&self.key, kind, TX_TIMEOUT)
            .await
            .map_err(funding_error)?;
        Ok(())
    }

    async fn balance(&self) -> Result<Amount, PayError> {
        let info = self
            .chain
            .account(&self.key.account())
            .await
            .map_err(funding_error)?;
        Ok(info.balance)
    }
}
