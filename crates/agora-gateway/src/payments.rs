//! Paying providers through payment channels. For each (provider, model) the
//! payer keeps a [`ChannelBook`]: what it owes in total and the receipt leaves
//! of every job paid so far. Finished jobs queue for up to
//! [`PayerConfig::voucher_delay`] so that one voucher pays for all that
//! finished meanwhile; it then adds their receipts' costs, opens the channel on first use (or tops it up when the escrow runs
//! low) through a [`Funding`] port, signs a cumulative [`Voucher`] over the
//! Merkle root of all leaves, and posts it to the provider's
//! `POST /v1/vouchers` with the ids of the jobs the provider has not been
//! sent yet (it takes a voucher only for receipts it can prove). Each channel's book is locked for the whole step, so
//! vouchers are cumulative and strictly monotone even when jobs finish at
//! once. Failures are logged and retried by [`Payer::run_retries`]; they
//! never touch the client's response. With a [`ChannelStore`] every
//! finished job is journaled as owed before its client is answered and
//! every book is on disk before its voucher is sent, so a restarted
//! gateway keeps its channels and pays for every job it served, once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_types::{
    AccountId, Amount, Keypair, ModelId, ProviderInfo, SignedReceipt, SignedVoucher,
};
use agora_wire::provider::ProviderEndpoint;
use futures::future::BoxFuture;

mod accounts;
mod book;
mod funding;
mod store;
pub use accounts::AccountPayers;
pub use book::ChannelBook;
pub use funding::{ChainFunding, Funding};
pub use store::ChannelStore;
use store::Owed;

/// Why a payment step failed (it is retried later).
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    /// Opening or topping up the channel on chain failed.
    #[error("channel funding failed: {0}")]
    Funding(String),
    /// The channel store could not be read or written.
    #[error("channel store: {0}")]
    Store(String),
    /// The provider did not take the voucher.
    #[error("voucher delivery to {endpoint} failed: {why}")]
    Delivery {
        /// The provider's endpoint.
        endpoint: String,
        /// What went wrong.
        why: String,
    },
}

/// How the payer funds channels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayerConfig {
    /// Escrow of a new channel, and the least a top-up adds.
    pub deposit: Amount,
    /// How often undelivered vouchers are retried.
    pub retry_every: Duration,
    /// The chain paid on: unless it is a development chain (and by default,
    /// empty), vouchers go to public provider addresses only.
    pub chain_id: String,
    /// How long a finished job waits for others to share its voucher: one
    /// voucher (a signature, a request, a provider-side commit) then pays
    /// for every job of the channel that finished meanwhile.
    pub voucher_delay: Duration,
}

impl Default for PayerConfig {
    fn default() -> Self {
        PayerConfig {
            deposit: 1_000_000,
            retry_every: Duration::from_secs(2),
            chain_id: String::new(),
            voucher_delay: Duration::from_millis(20),
        }
    }
}

type Key = (AccountId, ModelId);

/// One channel's book with where to deliver its vouchers.
struct Entry {
    endpoint: String,
    book: ChannelBook,
}

/// Pays providers for finished jobs through payment channels.
pub struct Payer<F> {
    funding: F,
    key: Keypair,
    config: PayerConfig,
    http: reqwest::Client,
    books: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<Entry>>>>,
    /// Finished jobs waiting for their channel's book: whoever takes the
    /// book next records all of them and sends one voucher for the lot.
    pending: Mutex<HashMap<Key, Vec<SignedReceipt>>>,
    store: Option<Arc<ChannelStore>>,
}

impl<F: Funding> Payer<F> {
    /// A payer signing vouchers with `key` (the account `funding` spends
    /// from), keeping its channel books in memory only.
    pub fn new(funding: F, key: Keypair, config: PayerConfig) -> Arc<Self> {
        Arc::new(Self::build(funding, key, config, None))
    }

    /// A payer whose channel books live in `store`: those it left there are
    /// loaded (and retried), and every change is written before it is used.
    pub fn persistent(
        funding: F,
        key: Keypair,
        config: PayerConfig,
        store: Arc<ChannelStore>,
    ) -> Result<Arc<Self>, PayError> {
        let client = key.account();
        let mut entries: HashMap<Key, Entry> = store
            .load(&client)?
            .into_iter()
            .map(|(provider, model, endpoint, book)| ((provider, model), Entry { endpoint, book }))
            .collect();
        // Jobs journaled as owed but in no book (the last run died between
        // the two writes) join their books now; the retries deliver them.
        for owed in store.owed(&client)? {
            let key = (owed.provider, owed.receipt.receipt.model);
            let entry = entries.entry(key).or_insert_with(|| Entry {
                endpoint: owed.endpoint.clone(),
                book: ChannelBook::default(),
            });
            let id = owed.receipt.receipt.id;
            let from = match entry.book.jobs.iter().position(|j| *j == id) {
                Some(at) => at,
                None => {
                    entry.book.record(&owed.receipt);
                    entry.book.jobs.len() - 1
                }
            };
            store.save(
                &client,
                (&key.0, &key.1),
                &entry.endpoint,
                &entry.book,
                from,
            )?;
        }
        let payer = Self::build(funding, key, config, Some(store));
        {
            let mut books = payer.books.lock().unwrap_or_else(|e| e.into_inner());
            for (key, entry) in entries {
                books.insert(key, Arc::new(tokio::sync::Mutex::new(entry)));
            }
        }
        Ok(Arc::new(payer))
    }

    fn build(
        funding: F,
        key: Keypair,
        config: PayerConfig,
        store: Option<Arc<ChannelStore>>,
    ) -> Self {
        // A provider's endpoint never redirects the gateway elsewhere, nor
        // resolves into its private network (SSRF).
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        let http = agora_tasks::endpoint_client(builder, &config.chain_id)
            .build()
            .unwrap_or_default();
        Payer {
            funding,
            key,
            config,
            http,
            books: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            store,
        }
    }

    /// Write `entry`'s head and its leaves from `new_from` on (a failure is
    /// logged: the book in memory stays right and the next save catches up).
    fn save(&self, (provider, model): Key, entry: &Entry, new_from: usize) {
        if let Some(store) = &self.store {
            let client = self.key.account();
            if let Err(e) = store.save(
                &client,
                (&provider, &model),
                &entry.endpoint,
                &entry.book,
                new_from,
            ) {
                tracing::error!(%provider, error = %e, "cannot save a channel book");
            }
        }
    }

    fn entry(&self, provider: &ProviderInfo, model: ModelId) -> Arc<tokio::sync::Mutex<Entry>> {
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        books
            .entry((provider.id, model))
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Entry {
                    endpoint: provider.endpoint.clone(),
                    book: ChannelBook::default(),
                }))
            })
            .clone()
    }

    /// Record a finished job and pay for it: returns the voucher the
    /// provider took, or `None` when a concurrent call took this job along
    /// with its own (jobs that finish while a voucher is on its way are
    /// paid together by the next one).
    pub async fn pay(
        &self,
        provider: &ProviderInfo,
        receipt: &SignedReceipt,
    ) -> Result<Option<SignedVoucher>, PayError> {
        self.queue(provider, receipt.clone());
        self.flush(provider, receipt.receipt.model).await
    }

    /// Add a finished job to its channel's queue; true if it is the first
    /// there (no flush is on its way yet).
    fn queue(&self, provider: &ProviderInfo, receipt: SignedReceipt) -> bool {
        let key = (provider.id, receipt.receipt.model);
        let mut pending = self.lock_pending();
        let queue = pending.entry(key).or_default();
        queue.push(receipt);
        queue.len() == 1
    }

    /// Record every queued job of `provider`'s `model` channel and deliver
    /// one voucher for them (`None`: another flush already took them).
    async fn flush(
        &self,
        provider: &ProviderInfo,
        model: ModelId,
    ) -> Result<Option<SignedVoucher>, PayError> {
        let key = (provider.id, model);
        let entry = self.entry(provider, model);
        let mut entry = entry.lock().await;
        let queued = self.lock_pending().remove(&key).unwrap_or_default();
        if queued.is_empty() {
            return Ok(None);
        }
        entry.endpoint.clone_from(&provider.endpoint);
        let before = entry.book.leaves.len();
        for r in &queued {
            entry.book.record(r);
        }
        // The jobs are owed from now on, whatever happens to this process.
        self.save(key, &entry, before);
        let result = self.sync(key.0, key.1, &mut entry).await;
        self.save(key, &entry, entry.book.leaves.len());
        result.map(Some)
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<SignedReceipt>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bring one channel up to date: open or top up as needed, then deliver the latest voucher.
    async fn sync(
        &self,
        provider: AccountId,
        model: ModelId,
        entry: &mut Entry,
    ) -> Result<SignedVoucher, PayError> {
        let book = &mut entry.book;
        match book.channel {
            None => {
                let deposit = self.config.deposit.max(book.cumulative);
                let id = self.funding.open(provider, model, deposit).await?;
                tracing::info!(channel = %id, %provider, deposit, "opened a payment channel");
                book.channel = Some(id);
                book.deposit = deposit;
            }
            Some(id) if book.cumulative > book.deposit => {
                let amount = self.config.deposit.max(book.cumulative - book.deposit);
                self.funding.top_up(id, amount).await?;
                tracing::info!(channel = %id, amount, "topped up a payment channel");
                book.deposit += amount;
            }
            Some(_) => {}
        }
        let voucher = book
            .voucher(&self.key)
            .ok_or_else(|| PayError::Funding("the channel is not open".into()))?;
        let url = ProviderEndpoint::Vouchers.url(&entry.endpoint);
        let delivery = |why: String| PayError::Delivery {
            endpoint: entry.endpoint.clone(),
            why,
        };
        let resp = self
            .http
            .post(&url)
            .json(&book.delivery(voucher.clone()))
            .send()
            .await
            .map_err(|e| delivery(e.to_string()))?;
        if !resp.status().is_success() {
            let status = resp.status();
            if status == reqwest::StatusCode::CONFLICT {
                // The provider's view of the channel's jobs differs (say it
                // lost state): send every job id with the next attempt.
                book.delivered_jobs = 0;
            }
            let body = resp.text().await.unwrap_or_default();
            return Err(delivery(format!("{status}: {body}")));
        }
        book.delivered = voucher.voucher.cumulative;
        book.delivered_jobs = voucher.voucher.jobs;
        Ok(voucher)
    }

    /// Every channel's book as it stands.
    pub async fn books(&self) -> Vec<ChannelBook> {
        let entries: Vec<_> = {
            let books = self.books.lock().unwrap_or_else(|e| e.into_inner());
            books.values().cloned().collect()
        };
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            out.push(e.lock().await.book.clone());
        }
        out
    }

    /// Retry every channel whose provider lacks its latest voucher.
    pub async fn retry_once(&self) {
        let entries: Vec<_> = {
            let books = self.books.lock().unwrap_or_else(|e| e.into_inner());
            books.iter().map(|(k, v)| (*k, v.clone())).collect()
        };
        for ((provider, model), entry) in entries {
            let mut entry = entry.lock().await;
            if entry.book.behind() {
                if let Err(e) = self.sync(provider, model, &mut entry).await {
                    tracing::warn!(%provider, error = %e, "paying a provider failed again");
                }
                self.save((provider, model), &entry, entry.book.leaves.len());
            }
        }
    }

    /// Retry undelivered vouchers every `retry_every` until `shutdown` resolves.
    pub async fn run_retries(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        let mut ticks = agora_tasks::Periodic::every(self.config.retry_every, shutdown);
        while ticks.tick().await {
            self.retry_once().await;
        }
    }
}

/// What the gateway calls to pay for jobs, and to learn what an account can spend.
pub trait JobPayer: Send + Sync + 'static {
    /// Pay `provider` for the job of `receipt` from `account`, in the background.
    fn job_done(
        self: Arc<Self>,
        account: AccountId,
        provider: ProviderInfo,
        receipt: SignedReceipt,
    );
    /// What `account` can still spend: its free balance plus the unspent
    /// escrow of its channels.
    fn available(
        self: Arc<Self>,
        account: AccountId,
    ) -> BoxFuture<'static, Result<Amount, PayError>>;
}

impl<F: Funding> Payer<F> {
    /// The account's free balance plus what its channels hold beyond what is owed.
    pub async fn available(&self) -> Result<Amount, PayError> {
        let free = self.funding.balance().await?;
        let escrow = self
            .books()
            .await
            .iter()
            .map(|b| b.deposit.saturating_sub(b.cumulative))
            .fold(0u64, u64::saturating_add);
        Ok(free.saturating_add(escrow))
    }
}

impl<F: Funding> JobPayer for Payer<F> {
    fn job_done(
        self: Arc<Self>,
        account: AccountId,
        provider: ProviderInfo,
        receipt: SignedReceipt,
    ) {
        if account != self.funding.client() {
            tracing::error!(%account, "a job of another account reached this payer; not paid");
            return;
        }
        // On disk before the client gets its answer: whatever happens to
        // this process from here on, the job is paid.
        if let Some(store) = &self.store {
            let owed = Owed {
                provider: provider.id,
                endpoint: provider.endpoint.clone(),
                receipt: receipt.clone(),
            };
            if let Err(e) = store.owe(&account, &owed) {
                tracing::error!(provider = %provider.id, error = %e, "cannot journal an owed job");
            }
        }
        let model = receipt.receipt.model;
        if self.queue(&provider, receipt) {
            tokio::spawn(async move {
                tokio::time::sleep(self.config.voucher_delay).await;
                if let Err(e) = self.flush(&provider, model).await {
                    tracing::warn!(provider = %provider.id, error = %e, "paying a provider failed; will retry");
                }
            });
        }
    }

    fn available(
        self: Arc<Self>,
        account: AccountId,
    ) -> BoxFuture<'static, Result<Amount, PayError>> {
        Box::pin(async move {
            if account != self.funding.client() {
                return Err(PayError::Funding(format!(
                    "this payer does not spend from {account}"
                )));
            }
            Payer::available(&self).await
        })
    }
}

#[cfg(test)]
mod tests;
