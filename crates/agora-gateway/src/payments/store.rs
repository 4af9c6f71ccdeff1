//! Channel books on disk (redb), so a restarted gateway keeps using its
//! open channels and still owes providers every job it recorded. A book's
//! head (channel, deposit, what is owed and delivered) is one row; each
//! paid job's receipt leaf and id is a row of its own, appended once.
//! A finished job is first written to the owed journal (before its client
//! gets the answer) and leaves it in the transaction that adds it to its
//! book, so a gateway killed at any point still pays for it exactly once.

use std::path::Path;
use std::sync::Arc;

use agora_types::{AccountId, Amount, Hash32, ModelId, SignedReceipt};
use borsh::{BorshDeserialize, BorshSerialize};
use redb::{Database, TableDefinition};

use super::{ChannelBook, PayError};

/// client ‖ provider ‖ model → borsh [`Head`].
const HEADS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("channel_heads");
/// client ‖ provider ‖ model ‖ index (big-endian) → leaf ‖ job id.
const LEAVES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("channel_leaves");

/// client ‖ job id → borsh [`Owed`].
const OWED: TableDefinition<&[u8], &[u8]> = TableDefinition::new("owed_jobs");

/// A finished job not yet in its channel book.
#[derive(BorshSerialize, BorshDeserialize)]
pub(crate) struct Owed {
    /// The provider's account.
    pub provider: AccountId,
    /// Where its vouchers go.
    pub endpoint: String,
    /// The job's receipt.
    pub receipt: SignedReceipt,
}

/// A book without its leaves.
#[derive(BorshSerialize, BorshDeserialize)]
struct Head {
    endpoint: String,
    channel: Option<Hash32>,
    deposit: Amount,
    cumulative: Amount,
    delivered: Amount,
    delivered_jobs: u64,
}

/// One channel book as loaded: provider, model, endpoint and the book.
pub(crate) type LoadedBook = (AccountId, ModelId, String, ChannelBook);

/// The redb file behind every account's channel books.
pub struct ChannelStore {
    db: Database,
}

fn store_error(e: impl std::fmt::Display) -> PayError {
    PayError::Store(e.to_string())
}

fn book_key(client: &AccountId, provider: &AccountId, model: &ModelId) -> Vec<u8> {
    [
        client.0.as_slice(),
        provider.0.as_slice(),
        model.0.as_slice(),
    ]
    .concat()
}

impl ChannelStore {
    /// Open (or create) the store at `path`.
    pub fn open(path: &Path) -> Result<Arc<Self>, PayError> {
        let db = Database::create(path).map_err(store_error)?;
        let w = db.begin_write().map_err(store_error)?;
        w.open_table(HEADS).map_err(store_error)?;
        w.open_table(LEAVES).map_err(store_error)?;
        w.open_table(OWED).map_err(store_error)?;
        w.commit().map_err(store_error)?;
        Ok(Arc::new(ChannelStore { db }))
    }

    /// Every book whose client is `client`.
    pub(crate) fn load(&self, client: &AccountId) -> Result<Vec<LoadedBook>, PayError> {
        let r = self.db.begin_read().map_err(store_error)?;
        let heads = r.open_table(HEADS).map_err(store_error)?;
        let leaves = r.open_table(LEAVES).map_err(store_error)?;
        let (lo, hi) = (
            [client.0.as_slice(), &[0u8; 64]].concat(),
            [client.0.as_slice(), &[0xffu8; 64]].concat(),
        );
        let mut out = Vec::new();
        for entry in heads
            .range(lo.as_slice()..=hi.as_slice())
            .map_err(store_error)?
        {
            let (k, v) = entry.map_err(store_error)?;
            let key = k.value().to_vec();
            let head = Head::try_from_slice(v.value()).map_err(store_error)?;
            let provider = AccountId(key[32..64].try_into().map_err(store_error)?);
            let model = Hash32(key[64..96].try_into().map_err(store_error)?);
            let mut book = ChannelBook {
                channel: head.channel,
                deposit: head.deposit,
                cumulative: head.cumulative,
                delivered: head.delivered,
                delivered_jobs: head.delivered_jobs,
                ..ChannelBook::default()
            };
            let (from, to) = (
                [key.as_slice(), &[0u8; 8]].concat(),
                [key.as_slice(), &[0xffu8; 8]].concat(),
            );
            for row in leaves
                .range(from.as_slice()..=to.as_slice())
                .map_err(store_error)?
            {
                let (_, v) = row.map_err(store_error)?;
                let bytes = v.value();
                if bytes.len() != 64 {
                    return Err(PayError::Store("a channel leaf row is not 64 bytes".into()));
                }
                book.push(
                    Hash32(bytes[..32].try_into().map_err(store_error)?),
                    Hash32(bytes[32..].try_into().map_err(store_error)?),
                );
            }
            out.push((provider, model, head.endpoint, book));
        }
        Ok(out)
    }

    /// Journal a finished job of `client` as owed.
    pub(crate) fn owe(&self, client: &AccountId, owed: &Owed) -> Result<(), PayError> {
        let key = [client.0.as_slice(), owed.receipt.receipt.id.0.as_slice()].concat();
        let bytes = borsh::to_vec(owed).map_err(store_error)?;
        let w = self.db.begin_write().map_err(store_error)?;
        w.open_table(OWED)
            .map_err(store_error)?
            .insert(key.as_slice(), bytes.as_slice())
            .map_err(store_error)?;
        w.commit().map_err(store_error)
    }

    /// Every job `client` owes that is in no book yet.
    pub(crate) fn owed(&self, client: &AccountId) -> Result<Vec<Owed>, PayError> {
        let r = self.db.begin_read().map_err(store_error)?;
        let owed = r.open_table(OWED).map_err(store_error)?;
        let (lo, hi) = (
            [client.0.as_slice(), &[0u8; 32]].concat(),
            [client.0.as_slice(), &[0xffu8; 32]].concat(),
        );
        let mut out = Vec::new();
        for row in owed
            .range(lo.as_slice()..=hi.as_slice())
            .map_err(store_error)?
        {
            let (_, v) = row.map_err(store_error)?;
            out.push(Owed::try_from_slice(v.value()).map_err(store_error)?);
        }
        Ok(out)
    }

    /// Write `book`'s head and its leaves from index `new_from` on, and
    /// clear the `settled` jobs from the owed journal, in one transaction.
    pub(crate) fn save(
        &self,
        client: &AccountId,
        (provider, model): (&AccountId, &ModelId),
        endpoint: &str,
        book: &ChannelBook,
        new_from: usize,
    ) -> Result<(), PayError> {
        let key = book_key(client, provider, model);
        let head = Head {
            endpoint: endpoint.to_string(),
            channel: book.channel,
            deposit: book.deposit,
            cumulative: book.cumulative,
            delivered: book.delivered,
            delivered_jobs: book.delivered_jobs,
        };
        let w = self.db.begin_write().map_err(store_error)?;
        {
            let mut heads = w.open_table(HEADS).map_err(store_error)?;
            let bytes = borsh::to_vec(&head).map_err(store_error)?;
            heads
                .insert(key.as_slice(), bytes.as_slice())
                .map_err(store_error)?;
            let mut leaves = w.open_table(LEAVES).map_err(store_error)?;
            for (i, (leaf, job)) in book
                .leaves
                .iter()
                .zip(&book.jobs)
                .enumerate()
                .skip(new_from)
            {
                let row_key = [key.as_slice(), &(i as u64).to_be_bytes()].concat();
                let row = [leaf.0.as_slice(), job.0.as_slice()].concat();
                leaves
                    .insert(row_key.as_slice(), row.as_slice())
                    .map_err(store_error)?;
            }
            let mut owed = w.open_table(OWED).map_err(store_error)?;
            for job in book.jobs.iter().skip(new_from) {
                let owed_key = [client.0.as_slice(), job.0.as_slice()].concat();
                owed.remove(owed_key.as_slice()).map_err(store_error)?;
            }
        }
        w.commit().map_err(store_error)?;
        Ok(())
    }
}
