//! Payment channel vouchers: `POST /v1/vouchers` takes a client's signed
//! cumulative voucher, checks it against the channel on chain (signed by the
//! channel's client, paying this provider, never less than the voucher held,
//! never more than the escrow), and keeps the latest per channel durably in
//! the transcript database; the [`VoucherSettler`] settles each channel's
//! latest unsettled voucher on chain every interval, one transaction for
//! however many jobs it covers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use agora_chain_client::{ChainClient, ClientError};
use agora_engine::InferenceEngine;
use agora_types::rpc::ChannelInfo;
use agora_types::{codec, AccountId, Amount, Hash32, Keypair, SignedVoucher, TxKind};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use borsh::{BorshDeserialize, BorshSerialize};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use serde_json::json;

use crate::service::{body_rejection, error, Provider};
use crate::{ProviderError, TranscriptStore};

/// Latest voucher per channel: channel id -> [`HeldVoucher`].
const VOUCHERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("vouchers");
/// How long one settlement may take to land.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The latest voucher of a channel and how much of it is settled.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct HeldVoucher {
    /// The latest voucher taken.
    pub voucher: SignedVoucher,
    /// Cumulative amount already settled on chain.
    pub settled: Amount,
}

/// Why a voucher was refused.
#[derive(Debug, thiserror::Error)]
pub enum VoucherError {
    /// The chain has no such open channel.
    #[error("no open channel {0}")]
    UnknownChannel(Hash32),
    /// The channel pays someone else.
    #[error("channel {channel} pays {payee}, not this provider")]
    NotOurs {
        /// The channel.
        channel: Hash32,
        /// Who it pays.
        payee: AccountId,
    },
    /// The signature is not the channel client's.
    #[error("the voucher is not signed by channel {0}'s client")]
    BadSignature(Hash32),
    /// Less than a voucher already held or settled.
    #[error("voucher for {cumulative} is below the {held} already held for this channel")]
    Decreasing {
        /// The voucher's amount.
        cumulative: Amount,
        /// What is already held (or settled).
        held: Amount,
    },
    /// More than the channel escrows.
    #[error("voucher for {cumulative} exceeds the channel's deposit of {deposit}")]
    OverDeposit {
        /// The voucher's amount.
        cumulative: Amount,
        /// The channel's deposit.
        deposit: Amount,
    },
    /// The chain could not be asked about the channel.
    #[error("cannot read the channel from the chain: {0}")]
    Chain(String),
    /// The voucher store failed.
    #[error(transparent)]
    Store(#[from] ProviderError),
}

impl VoucherError {
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            VoucherError::UnknownChannel(_) => (StatusCode::NOT_FOUND, "unknown_channel"),
            VoucherError::NotOurs { .. } => (StatusCode::FORBIDDEN, "wrong_provider"),
            VoucherError::BadSignature(_) => (StatusCode::UNAUTHORIZED, "bad_signature"),
            VoucherError::Decreasing { .. } => (StatusCode::CONFLICT, "stale_voucher"),
            VoucherError::OverDeposit { .. } => (StatusCode::PAYMENT_REQUIRED, "over_deposit"),
            VoucherError::Chain(_) => (StatusCode::SERVICE_UNAVAILABLE, "chain_unavailable"),
            VoucherError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "store"),
        }
    }
}

/// Check `v` against its channel as the chain has it, for provider `me`
/// holding `held` (the cumulative amount of the latest voucher it has).
pub fn check_voucher(
    v: &SignedVoucher,
    channel: &ChannelInfo,
    me: &AccountId,
    held: Amount,
) -> Result<(), VoucherError> {
    let id = v.voucher.channel;
    if channel.provider != *me {
        return Err(VoucherError::NotOurs {
            channel: id,
            payee: channel.provider,
        });
    }
    if v.verify(&channel.client).is_err() || channel.id != id {
        return Err(VoucherError::BadSignature(id));
    }
    let held = held.max(channel.paid);
    if v.voucher.cumulative < held {
        return Err(VoucherError::Decreasing {
            cumulative: v.voucher.cumulative,
            held,
        });
    }
    if v.voucher.cumulative > channel.deposit {
        return Err(VoucherError::OverDeposit {
            cumulative: v.voucher.cumulative,
            deposit: channel.deposit,
        });
    }
    Ok(())
}

/// Boxed future of a [`ChannelLookup`].
pub type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<ChannelInfo>, String>> + Send + 'a>>;

/// Where the provider reads channels; the real implementation is the chain RPC.
pub trait ChannelLookup: Send + Sync + 'static {
    /// The open channel `id`, or `None` if the chain has none.
    fn channel(&self, id: Hash32) -> LookupFuture<'_>;
}

impl ChannelLookup for ChainClient {
    fn channel(&self, id: Hash32) -> LookupFuture<'_> {
        Box::pin(async move {
            match ChainClient::channel(self, &id).await {
                Ok(c) => Ok(Some(c)),
                Err(ClientError::Rejected { status: 404, .. }) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// Create the voucher table in a fresh database.
pub(crate) fn create_tables(w: &WriteTransaction) -> Result<(), ProviderError> {
    w.open_table(VOUCHERS)?;
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<HeldVoucher, ProviderError> {
    codec::decode(bytes).map_err(|e| ProviderError::Corrupt(e.to_string()))
}

impl TranscriptStore {
    /// The latest voucher held for `channel`.
    pub fn voucher(&self, channel: &Hash32) -> Result<Option<HeldVoucher>, ProviderError> {
        let r = self.db.begin_read()?;
        let table = r.open_table(VOUCHERS)?;
        let Some(bytes) = table.get(channel.0.as_slice())? else {
            return Ok(None);
        };
        decode(bytes.value()).map(Some)
    }

    /// Keep `v` as its channel's latest voucher unless it is below the one
    /// held (checked and written in one transaction, so concurrent posts cannot go back).
    pub fn keep_voucher(&self, v: &SignedVoucher) -> Result<(), VoucherError> {
        let w = self.db.begin_write().map_err(ProviderError::from)?;
        {
            let mut table = w.open_table(VOUCHERS).map_err(ProviderError::from)?;
            let key = v.voucher.channel.0;
            let held = match table.get(key.as_slice()).map_err(ProviderError::from)? {
                Some(bytes) => Some(decode(bytes.value())?),
                None => None,
            };
            let settled = held.as_ref().map_or(0, |h| h.settled);
            if let Some(h) = &held {
                if v.voucher.cumulative < h.voucher.voucher.cumulative {
                    return Err(VoucherError::Decreasing {
                        cumulative: v.voucher.cumulative,
                        held: h.voucher.voucher.cumulative,
                    });
                }
            }
            let entry = HeldVoucher {
                voucher: v.clone(),
                settled,
            };
            table
                .insert(key.as_slice(), codec::encode(&entry).as_slice())
                .map_err(ProviderError::from)?;
        }
        w.commit().map_err(ProviderError::from)?;
        Ok(())
    }

    /// Latest vouchers worth more than what is settled of their channel.
    pub fn unsettled_vouchers(&self) -> Result<Vec<SignedVoucher>, ProviderError> {
        let r = self.db.begin_read()?;
        let table = r.open_table(VOUCHERS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (_, bytes) = entry?;
            let held = decode(bytes.value())?;
            if held.voucher.voucher.cumulative > held.settled {
                out.push(held.voucher);
            }
        }
        Ok(out)
    }

    /// Record that `channel` is settled up to `cumulative`.
    pub fn mark_settled(&self, channel: &Hash32, cumulative: Amount) -> Result<(), ProviderError> {
        let w = self.db.begin_write()?;
        {
            let mut table = w.open_table(VOUCHERS)?;
            let held = match table.get(channel.0.as_slice())? {
                Some(bytes) => Some(decode(bytes.value())?),
                None => None,
            };
            if let Some(mut held) = held {
                held.settled = held.settled.max(cumulative);
                table.insert(channel.0.as_slice(), codec::encode(&held).as_slice())?;
            }
        }
        w.commit()?;
        Ok(())
    }
}

/// `POST /v1/vouchers`: check and keep a voucher.
pub(crate) async fn post_voucher<E: InferenceEngine>(
    State(p): State<Arc<Provider<E>>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_rejection(e),
    };
    let v: SignedVoucher = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_voucher",
                format!("invalid voucher: {e}"),
            )
        }
    };
    match accept(&p, v.clone()).await {
        Ok(()) => Json(json!({
            "channel": v.voucher.channel,
            "cumulative": v.voucher.cumulative,
            "jobs": v.voucher.jobs,
        }))
        .into_response(),
        Err(e) => {
            let (status, code) = e.status();
            error(status, "invalid_request_error", code, e.to_string())
        }
    }
}

async fn accept<E: InferenceEngine>(p: &Provider<E>, v: SignedVoucher) -> Result<(), VoucherError> {
    let Some(lookup) = &p.channels else {
        return Err(VoucherError::Chain(
            "this provider reads no chain, so it takes no vouchers".into(),
        ));
    };
    let id = v.voucher.channel;
    let channel = lookup
        .channel(id)
        .await
        .map_err(VoucherError::Chain)?
        .ok_or(VoucherError::UnknownChannel(id))?;
    let store = p.transcripts.clone();
    let me = p.account();
    tokio::task::spawn_blocking(move || {
        let held = store
            .voucher(&id)?
            .map_or(0, |h| h.voucher.voucher.cumulative);
        check_voucher(&v, &channel, &me, held)?;
        store.keep_voucher(&v)
    })
    .await
    .map_err(|e| VoucherError::Chain(format!("voucher task failed: {e}")))?
}

/// Settles the latest unsettled voucher of every channel on chain, periodically.
pub struct VoucherSettler {
    store: Arc<TranscriptStore>,
    chain: ChainClient,
    key: Keypair,
    every: Duration,
}

impl VoucherSettler {
    /// A settler for the vouchers in `store`, signing with the provider's `key`.
    pub fn new(
        store: Arc<TranscriptStore>,
        chain: ChainClient,
        key: Keypair,
        every: Duration,
    ) -> Self {
        VoucherSettler {
            store,
            chain,
            key,
            every,
        }
    }

    /// Settle every channel whose latest voucher is not settled yet; returns how many settled.
    pub async fn settle_once(&self) -> Result<usize, ProviderError> {
        let store = self.store.clone();
        let due = tokio::task::spawn_blocking(move || store.unsettled_vouchers())
            .await
            .map_err(|e| ProviderError::Store(e.to_string()))??;
        let mut settled = 0;
        for voucher in due {
            let (id, cumulative) = (voucher.voucher.channel, voucher.voucher.cumulative);
            let kind = TxKind::SettleChannel { voucher };
            match self
                .chain
                .send_and_confirm(&self.key, kind, SETTLE_TIMEOUT)
                .await
            {
                Ok(done) => {
                    tracing::info!(channel = %id, cumulative, height = done.height, "settled a payment channel");
                    self.store.mark_settled(&id, cumulative)?;
                    settled += 1;
                }
                Err(e) => {
                    // Already settled this far (e.g. before a restart)? Then nothing is owed.
                    match self.chain.channel(&id).await {
                        Ok(c) if c.paid >= cumulative => self.store.mark_settled(&id, c.paid)?,
                        _ => {
                            tracing::warn!(channel = %id, error = %e, "settlement failed; will retry")
                        }
                    }
                }
            }
        }
        Ok(settled)
    }

    /// Settle every `every` until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut ticks = agora_tasks::Periodic::every(self.every, shutdown);
        while ticks.tick().await {
            if let Err(e) = self.settle_once().await {
                tracing::warn!(error = %e, "cannot settle payment channels");
            }
        }
    }
}

#[cfg(test)]
mod tests;
