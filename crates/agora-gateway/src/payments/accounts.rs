//! Paying from many accounts: each API key spends from its own on-chain
//! account, so each account gets its own [`Payer`] (its own channels,
//! nonces and vouchers), made on first use from the signing key the
//! [`KeyBook`] keeps for it. No account ever pays for another's jobs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use agora_chain_client::ChainClient;
use agora_keys::KeyBook;
use agora_types::{AccountId, Amount, ProviderInfo, SignedReceipt};
use futures::future::BoxFuture;

use super::{ChainFunding, ChannelStore, JobPayer, PayError, Payer, PayerConfig};

/// One [`Payer`] per custodial account of a [`KeyBook`].
pub struct AccountPayers {
    book: Arc<KeyBook>,
    chain: ChainClient,
    config: PayerConfig,
    store: Arc<ChannelStore>,
    payers: Mutex<HashMap<AccountId, Arc<Payer<ChainFunding>>>>,
}

impl AccountPayers {
    /// Payers for `book`'s accounts, funding channels through `chain` and
    /// keeping their books in `store`; books left there by an earlier run
    /// are loaded now, so their undelivered vouchers are retried.
    pub fn new(
        book: Arc<KeyBook>,
        chain: ChainClient,
        config: PayerConfig,
        store: Arc<ChannelStore>,
    ) -> Result<Arc<Self>, PayError> {
        let payers = Arc::new(AccountPayers {
            book,
            chain,
            config,
            store,
            payers: Mutex::new(HashMap::new()),
        });
        for account in payers.book.accounts() {
            payers.payer(&account)?;
        }
        Ok(payers)
    }

    /// The payer of `account` (`None` if the book holds no signing key for it).
    fn payer(&self, account: &AccountId) -> Result<Option<Arc<Payer<ChainFunding>>>, PayError> {
        let mut payers = self.payers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = payers.get(account) {
            return Ok(Some(p.clone()));
        }
        let Some(key) = self.book.signer(account) else {
            return Ok(None);
        };
        let funding = ChainFunding::new(self.chain.clone(), key.clone());
        let payer = Payer::persistent(funding, key, self.config.clone(), self.store.clone())?;
        payers.insert(*account, payer.clone());
        Ok(Some(payer))
    }

    /// Retry every account's undelivered vouchers every `retry_every` until `shutdown` resolves.
    pub async fn run_retries(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        let mut ticks = agora_tasks::Periodic::every(self.config.retry_every, shutdown);
        while ticks.tick().await {
            let payers: Vec<_> = {
                let map = self.payers.lock().unwrap_or_else(|e| e.into_inner());
                map.values().cloned().collect()
            };
            for p in payers {
                p.retry_once().await;
            }
        }
    }
}

impl JobPayer for AccountPayers {
    fn job_done(
        self: Arc<Self>,
        account: AccountId,
        provider: ProviderInfo,
        receipt: SignedReceipt,
    ) {
        match self.payer(&account) {
            Ok(Some(p)) => p.job_done(account, provider, receipt),
            Ok(None) => {
                tracing::error!(%account, "no signing key for this account; a job is not paid")
            }
            Err(e) => {
                tracing::error!(%account, error = %e, "cannot load this account's channels; a job is not paid")
            }
        }
    }

    fn available(
        self: Arc<Self>,
        account: AccountId,
    ) -> BoxFuture<'static, Result<Amount, PayError>> {
        Box::pin(async move {
            match self.payer(&account)? {
                Some(p) => Payer::available(&p).await,
                None => Err(PayError::Funding(format!(
                    "no signing key for account {account}"
                ))),
            }
        })
    }
}
