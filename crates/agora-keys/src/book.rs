//! The [`KeyBook`]: keys, accounts and in-flight reservations in memory,
//! backed by the [`Store`]. Every check-and-reserve happens under one lock,
//! so concurrent requests on one key can never together pass a budget;
//! each finished job's charge is committed by a background writer (whatever
//! has queued up, in one transaction) before [`Hold::charge`] returns, so a
//! gateway killed right after answering has still counted what it served.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use agora_types::{AccountId, Amount, Hash32, Keypair};

use crate::calendar::day_label;
use crate::limits::{check_budget, Limits};
use crate::rate::RateWindow;
use crate::store::{KeyRecord, Store, UsageRow};
use crate::{secret, KeysError, Refusal};

/// Most live keys one wallet may hold through `POST /v1/keys`.
pub const MAX_OWNED_KEYS: usize = 16;

/// The most a request may cost and the most tokens it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ask {
    /// Prompt and completion tokens at the dearest eligible provider's price.
    pub max_cost: Amount,
    /// Prompt tokens the prompt can hold plus every choice's `max_tokens`.
    pub max_tokens: u64,
}

/// A key as listed: its record and what its running requests reserve.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyView {
    /// The stored record.
    #[serde(flatten)]
    pub record: KeyRecord,
    /// Maximum cost of its running requests.
    pub reserved: Amount,
}

struct Live {
    record: KeyRecord,
    reserved: Amount,
    rate: RateWindow,
}

#[derive(Default)]
struct Funds {
    available: Option<Amount>,
    reserved: Amount,
}

#[derive(Default)]
struct Inner {
    keys: HashMap<Hash32, Live>,
    ids: HashMap<String, Hash32>,
    funds: HashMap<AccountId, Funds>,
    signers: HashMap<AccountId, Keypair>,
    next_hold: u64,
}

enum Write {
    /// A charge, and who waits until it is committed.
    Charge(Box<(KeyRecord, UsageRow)>, mpsc::Sender<()>),
    Flush(mpsc::Sender<()>),
}

/// Keys, budgets, reservations and custodial accounts of one gateway.
pub struct KeyBook {
    store: Arc<Store>,
    inner: Mutex<Inner>,
    /// The writer's queue; taken (closing it) when the book is dropped.
    writer: Mutex<Option<mpsc::Sender<Write>>>,
    /// The writer thread, joined when the book is dropped so the store is
    /// closed (and every charge written) once the book is gone.
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    clock: fn() -> u64,
}

fn system_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Commit queued charges, as many per transaction as have queued up.
fn write_loop(store: Arc<Store>, rx: mpsc::Receiver<Write>) {
    while let Ok(first) = rx.recv() {
        let (mut records, mut usage, mut waiters) = (HashMap::new(), Vec::new(), Vec::new());
        for w in std::iter::once(first).chain(rx.try_iter()) {
            match w {
                Write::Charge(charge, done) => {
                    let (record, row) = *charge;
                    usage.push(row);
                    records.insert(record.hash, record);
                    waiters.push(done);
                }
                Write::Flush(done) => waiters.push(done),
            }
        }
        let records: Vec<KeyRecord> = records.into_values().collect();
        if let Err(e) = store.write(&records, &usage) {
            tracing::error!(error = %e, "cannot record key spending");
        }
        for w in waiters {
            let _ = w.send(());
        }
    }
}

impl KeyBook {
    /// The book kept in the redb file at `path`, with the system clock.
    pub fn open(path: &Path) -> Result<Arc<Self>, KeysError> {
        Self::open_with_clock(path, system_ms)
    }

    /// The book at `path` reading time (ms since the epoch) from `clock`.
    pub fn open_with_clock(path: &Path, clock: fn() -> u64) -> Result<Arc<Self>, KeysError> {
        Self::with_store(Store::open(path)?, clock)
    }

    /// A book in memory only: nothing survives it (for tests and throwaway gateways).
    pub fn in_memory() -> Result<Arc<Self>, KeysError> {
        Self::with_store(Store::in_memory()?, system_ms)
    }

    fn with_store(store: Store, clock: fn() -> u64) -> Result<Arc<Self>, KeysError> {
        let store = Arc::new(store);
        let mut inner = Inner::default();
        for record in store.keys()? {
            inner.ids.insert(record.id.clone(), record.hash);
            let live = Live {
                record,
                reserved: 0,
                rate: RateWindow::default(),
            };
            inner.keys.insert(live.record.hash, live);
        }
        for key in store.accounts()? {
            inner.signers.insert(key.account(), key);
        }
        let (tx, rx) = mpsc::channel();
        let writer_store = store.clone();
        let thread = std::thread::Builder::new()
            .name("agora-keys-writer".into())
            .spawn(move || write_loop(writer_store, rx))
            .map_err(|e| KeysError::Store(e.to_string()))?;
        Ok(Arc::new(KeyBook {
            store,
            inner: Mutex::new(inner),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
            clock,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new custodial account: the gateway generates and keeps its signing key.
    pub fn create_account(&self) -> Result<AccountId, KeysError> {
        self.import_account(Keypair::generate())
    }

    /// Keep `key` so keys bound to its account can spend from it.
    pub fn import_account(&self, key: Keypair) -> Result<AccountId, KeysError> {
        self.store.put_account(&key)?;
        let account = key.account();
        self.lock().signers.insert(account, key);
        Ok(account)
    }

    /// The signing key of a custodial account.
    pub fn signer(&self, account: &AccountId) -> Option<Keypair> {
        self.lock().signers.get(account).cloned()
    }

    /// Every custodial account.
    pub fn accounts(&self) -> Vec<AccountId> {
        let mut out: Vec<_> = self.lock().signers.keys().copied().collect();
        out.sort();
        out
    }

    /// Issue a key named `name` spending from `account` under `limits`;
    /// returns its secret (shown once, never stored) and its record.
    pub fn create_key(
        &self,
        name: &str,
        account: AccountId,
        limits: Limits,
    ) -> Result<(String, KeyRecord), KeysError> {
        let secret = secret::generate();
        let record = self.insert_key(&secret, name, account, limits, None)?;
        Ok((secret, record))
    }

    /// Keep an existing secret (say, from a key file written before the key
    /// book existed) as a key of `account`; a secret already held is left
    /// as it is. Returns its record.
    pub fn import_key(
        &self,
        secret: &str,
        name: &str,
        account: AccountId,
        limits: Limits,
    ) -> Result<KeyRecord, KeysError> {
        let secret = secret.trim();
        if secret.len() < 16 {
            return Err(KeysError::Invalid(
                "an API key has at least 16 characters".into(),
            ));
        }
        if let Some(live) = self.lock().keys.get(&secret::hash(secret)) {
            return Ok(live.record.clone());
        }
        self.insert_key(secret, name, account, limits, None)
    }

    /// Issue a key for the wallet `owner`: it spends from the one custodial
    /// account kept for that owner (made on its first key), and an owner
    /// holds at most [`MAX_OWNED_KEYS`] live keys. Returns the secret and record.
    pub fn create_owned_key(
        &self,
        name: &str,
        owner: AccountId,
        limits: Limits,
    ) -> Result<(String, KeyRecord), KeysError> {
        // One owner's keys are counted and its account made under one lock,
        // so two concurrent requests cannot pass the cap or make two accounts.
        static ISSUING: Mutex<()> = Mutex::new(());
        let _issuing = ISSUING.lock().unwrap_or_else(|e| e.into_inner());
        let (live, account) = {
            let inner = self.lock();
            let owned = || {
                inner
                    .keys
                    .values()
                    .filter(|k| k.record.owner == Some(owner))
            };
            let live = owned().filter(|k| !k.record.revoked).count();
            (live, owned().map(|k| k.record.account).next())
        };
        if live >= MAX_OWNED_KEYS {
            return Err(KeysError::Invalid(format!(
                "an owner holds at most {MAX_OWNED_KEYS} live keys; revoke one first"
            )));
        }
        let account = match account {
            Some(account) => account,
            None => self.create_account()?,
        };
        let secret = secret::generate();
        let record = self.insert_key(&secret, name, account, limits, Some(owner))?;
        Ok((secret, record))
    }

    /// The custodial account kept for the wallet `owner`, if it was ever issued a key.
    pub fn owned_account(&self, owner: &AccountId) -> Option<AccountId> {
        self.lock()
            .keys
            .values()
            .find(|k| k.record.owner == Some(*owner))
            .map(|k| k.record.account)
    }

    fn insert_key(
        &self,
        secret: &str,
        name: &str,
        account: AccountId,
        limits: Limits,
        owner: Option<AccountId>,
    ) -> Result<KeyRecord, KeysError> {
        if name.len() > 128 || name.chars().any(char::is_control) {
            return Err(KeysError::Invalid(
                "a key name has at most 128 printable characters".into(),
            ));
        }
        if !self.lock().signers.contains_key(&account) {
            return Err(KeysError::NoSuchAccount(account));
        }
        let hash = secret::hash(secret);
        let record = KeyRecord {
            id: secret::public_id(&hash),
            hash,
            name: name.to_string(),
            account,
            limits,
            created_ms: (self.clock)(),
            revoked: false,
            spend: Default::default(),
            owner,
        };
        self.store.write(std::slice::from_ref(&record), &[])?;
        let mut inner = self.lock();
        inner.ids.insert(record.id.clone(), hash);
        inner.keys.insert(
            hash,
            Live {
                record: record.clone(),
                reserved: 0,
                rate: RateWindow::default(),
            },
        );
        Ok(record)
    }

    /// Revoke the key with public id `id`: refused from now on.
    pub fn revoke(&self, id: &str) -> Result<KeyRecord, KeysError> {
        let record = {
            let mut inner = self.lock();
            let hash = *inner
                .ids
                .get(id)
                .ok_or_else(|| KeysError::NoSuchKey(id.to_string()))?;
            let live = inner
                .keys
                .get_mut(&hash)
                .ok_or_else(|| KeysError::NoSuchKey(id.to_string()))?;
            live.record.revoked = true;
            live.record.clone()
        };
        self.store.write(std::slice::from_ref(&record), &[])?;
        Ok(record)
    }

    /// Every key, oldest first.
    pub fn list(&self) -> Vec<KeyView> {
        let inner = self.lock();
        let mut out: Vec<KeyView> = inner
            .keys
            .values()
            .map(|l| KeyView {
                record: l.record.clone(),
                reserved: l.reserved,
            })
            .collect();
        out.sort_by(|a, b| {
            (a.record.created_ms, &a.record.id).cmp(&(b.record.created_ms, &b.record.id))
        });
        out
    }

    /// What each live key with a budget may still spend now (its tightest
    /// budget less what it spent), by public id.
    pub fn remaining_budgets(&self) -> Vec<(String, Amount)> {
        let now = (self.clock)();
        let inner = self.lock();
        inner
            .keys
            .values()
            .filter(|l| !l.record.revoked)
            .filter_map(|l| {
                let left = crate::limits::remaining(&l.record.limits, &l.record.spend, now)?;
                Some((l.record.id.clone(), left))
            })
            .collect()
    }

    /// The public id of the live key whose secret is `secret`.
    pub fn identify(&self, secret: Option<&str>) -> Result<String, Refusal> {
        let secret = secret.ok_or(Refusal::MissingKey)?;
        let inner = self.lock();
        let live = inner
            .keys
            .get(&secret::hash(secret))
            .ok_or(Refusal::UnknownKey)?;
        if live.record.revoked {
            return Err(Refusal::Revoked(live.record.id.clone()));
        }
        Ok(live.record.id.clone())
    }

    /// Set what `account` can spend: its free on-chain balance plus the
    /// unspent escrow of its open channels. Until this is called for an
    /// account, its keys are refused.
    pub fn set_funds(&self, account: AccountId, available: Amount) {
        self.lock().funds.entry(account).or_default().available = Some(available);
    }

    /// What `account` can spend (unknown until [`KeyBook::set_funds`]) and
    /// what its running requests reserve.
    pub fn funds(&self, account: &AccountId) -> (Option<Amount>, Amount) {
        self.lock()
            .funds
            .get(account)
            .map_or((None, 0), |f| (f.available, f.reserved))
    }

    /// Check `ask` against the key `secret`'s state, budgets and rate limits
    /// and its account's funds, and reserve it for a request on `model`.
    pub fn reserve(
        self: &Arc<Self>,
        secret: Option<&str>,
        ask: Ask,
        model: &str,
    ) -> Result<Hold, Refusal> {
        let secret = secret.ok_or(Refusal::MissingKey)?;
        let hash = secret::hash(secret);
        let now = (self.clock)();
        let mut inner = self.lock();
        let inner = &mut *inner;
        let live = inner.keys.get_mut(&hash).ok_or(Refusal::UnknownKey)?;
        let record = &live.record;
        if record.revoked {
            return Err(Refusal::Revoked(record.id.clone()));
        }
        if let Some(limit) = record.limits.tpm.filter(|&l| ask.max_tokens > l) {
            return Err(Refusal::TooLarge {
                tokens: ask.max_tokens,
                limit,
            });
        }
        check_budget(
            &record.limits,
            &record.spend,
            live.reserved,
            ask.max_cost,
            now,
        )
        .map_err(|over| Refusal::Budget {
            over,
            ask: ask.max_cost,
        })?;
        let funds = inner.funds.entry(record.account).or_default();
        let Some(available) = funds.available else {
            return Err(Refusal::FundsUnknown(record.account));
        };
        let left = available.saturating_sub(funds.reserved);
        if ask.max_cost > left {
            return Err(Refusal::Funds {
                account: record.account,
                available: left,
                ask: ask.max_cost,
            });
        }
        inner.next_hold += 1;
        let id = inner.next_hold;
        live.rate
            .admit(&record.limits, now, id, ask.max_tokens)
            .map_err(Refusal::Rate)?;
        live.reserved = live.reserved.saturating_add(ask.max_cost);
        funds.reserved = funds.reserved.saturating_add(ask.max_cost);
        Ok(Hold {
            book: self.clone(),
            hash,
            id,
            key_id: record.id.clone(),
            account: record.account,
            reserved: ask.max_cost,
            model: model.to_string(),
            usage: UsageRow::default(),
        })
    }

    /// Charge one finished job of `hold`: its cost leaves the account's funds
    /// and joins the key's spend, replacing as much of the reservation; the
    /// charge is committed before this returns (the writer groups
    /// concurrent charges into one transaction).
    fn charge(&self, hold: &mut Hold, job: &UsageRow) {
        let now = (self.clock)();
        let released = job.cost.min(hold.reserved);
        hold.reserved -= released;
        let record = {
            let mut inner = self.lock();
            let inner = &mut *inner;
            if let Some(funds) = inner.funds.get_mut(&hold.account) {
                funds.reserved = funds.reserved.saturating_sub(released);
                funds.available = funds.available.map(|a| a.saturating_sub(job.cost));
            }
            let Some(live) = inner.keys.get_mut(&hold.hash) else {
                return;
            };
            live.reserved = live.reserved.saturating_sub(released);
            live.record.spend.add(job.cost, now);
            live.record.clone()
        };
        let row = UsageRow {
            key: hold.key_id.clone(),
            day: day_label(now),
            model: hold.model.clone(),
            ..job.clone()
        };
        let (done, committed) = mpsc::channel();
        if self.queue(Write::Charge(Box::new((record, row)), done)) {
            let _ = committed.recv();
        }
    }

    /// Release what `hold` still reserves (its charges are already made).
    fn settle(&self, hold: &Hold) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        if let Some(funds) = inner.funds.get_mut(&hold.account) {
            funds.reserved = funds.reserved.saturating_sub(hold.reserved);
        }
        if let Some(live) = inner.keys.get_mut(&hold.hash) {
            live.reserved = live.reserved.saturating_sub(hold.reserved);
            live.rate.settle(
                hold.id,
                hold.usage.prompt_tokens + hold.usage.completion_tokens,
            );
        }
    }

    /// Hand `write` to the writer thread (false if it has stopped).
    fn queue(&self, write: Write) -> bool {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let sent = writer.as_ref().is_some_and(|w| w.send(write).is_ok());
        if !sent {
            tracing::error!("the key book's writer stopped; a charge is not recorded");
        }
        sent
    }

    /// Wait until every charge made so far is committed to the store.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::channel();
        if self.queue(Write::Flush(tx)) {
            let _ = rx.recv();
        }
    }

    /// Usage rows of the key with public id `key` (every key's if `None`),
    /// including every charge made so far.
    pub fn usage(&self, key: Option<&str>) -> Result<Vec<UsageRow>, KeysError> {
        self.flush();
        self.store.usage(key)
    }
}

impl Drop for KeyBook {
    fn drop(&mut self) {
        // Closing the queue ends the writer once it has written everything.
        drop(self.writer.lock().unwrap_or_else(|e| e.into_inner()).take());
        let thread = self
            .writer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}

/// A request's reservation. Record what its jobs cost with
/// [`Hold::charge`]; dropping it releases the reservation and charges that.
pub struct Hold {
    book: Arc<KeyBook>,
    hash: Hash32,
    id: u64,
    /// The key's public id.
    pub key_id: String,
    /// The account that pays.
    pub account: AccountId,
    reserved: Amount,
    model: String,
    usage: UsageRow,
}

impl Hold {
    /// Charge one finished, paid job; returns once the charge is on disk
    /// (it blocks for about one store commit). The first job of a request
    /// counts the request.
    pub fn charge(&mut self, cost: Amount, prompt_tokens: u64, completion_tokens: u64) {
        let job = UsageRow {
            requests: u64::from(self.usage.requests == 0),
            prompt_tokens,
            completion_tokens,
            cost,
            ..UsageRow::default()
        };
        self.usage.absorb(&job);
        let book = self.book.clone();
        book.charge(self, &job);
    }

    /// What it still reserves (its charges replace the reservation).
    pub fn reserved(&self) -> Amount {
        self.reserved
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.book.settle(self);
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hold({} reserves {})", self.key_id, self.reserved)
    }
}

#[cfg(test)]
mod tests;
