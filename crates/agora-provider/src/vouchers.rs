//! Payment channel vouchers: `POST /v1/vouchers` takes a client's signed
//! cumulative voucher with the ids of the jobs it adds, checks it against
//! the channel on chain (signed by the channel's client, paying this
//! provider, never less than the voucher held, never more than the escrow)
//! and against the provider's own receipts (`paid.rs`), and keeps the latest
//! per channel durably in the transcript database; the [`VoucherSettler`]
//! settles each channel's latest unsettled voucher on chain every interval,
//! one transaction for however many jobs it covers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use agora_chain_client::{ChainClient, ClientError};
use agora_engine::InferenceEngine;
use agora_types::rpc::ChannelInfo;
use agora_types::{
    codec, AccountId, Amount, Hash32, Keypair, SignedVoucher, TxKind, VoucherDelivery,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use borsh::{BorshDeserialize, BorshSerialize};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde_json::json;

use crate::service::{body_rejection, error, Provider};
use crate::{ProviderError, TranscriptStore};

/// Latest voucher per channel: channel id -> [`HeldVoucher`].
pub(crate) const VOUCHERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("vouchers");
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
    /// Fewer jobs than the voucher covers than it claims.
    #[error("voucher covers {jobs} jobs, fewer than the {held} of the voucher held")]
    JobsDecreased {
        /// The voucher's job count.
        jobs: u64,
        /// The held voucher's.
        held: u64,
    },
    /// The delivery leaves a gap: jobs before `needed` were never delivered.
    #[error("this provider holds {held} jobs of the channel; deliver the job ids from index {held} (needed up to {needed})")]
    MissingJobs {
        /// Jobs held for the channel.
        held: u64,
        /// Index the delivery needs held.
        needed: u64,
    },
    /// A delivered job id differs from the one already held at its index.
    #[error("job {index} of the channel differs from the one delivered before")]
    JobsMismatch {
        /// The leaf index.
        index: u64,
    },
    /// The provider ran no such job (or no longer holds its transcript).
    #[error("no job {0} here")]
    UnknownJob(Hash32),
    /// The job ran another model than the channel pays for.
    #[error("job {job} ran another model than the channel pays for")]
    WrongModel {
        /// The job.
        job: Hash32,
    },
    /// Another channel already paid for the job.
    #[error("job {job} is already paid by channel {channel}")]
    AlreadyPaid {
        /// The job.
        job: Hash32,
        /// The channel that paid it.
        channel: Hash32,
    },
    /// The voucher's receipts root is not the root of the receipts it names.
    #[error("the voucher's receipts root is not the Merkle root of the first {jobs} receipts of the channel")]
    RootMismatch {
        /// The voucher's job count.
        jobs: u64,
    },
    /// The voucher adds more jobs than one settlement may.
    #[error("the voucher adds {got} jobs since the last settlement; at most {max} may be settled at once, so deliver vouchers more often")]
    TooManyJobs {
        /// The bound.
        max: u64,
        /// What it adds.
        got: u64,
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
            VoucherError::JobsDecreased { .. } => (StatusCode::CONFLICT, "stale_voucher"),
            VoucherError::MissingJobs { .. } => (StatusCode::CONFLICT, "missing_jobs"),
            VoucherError::JobsMismatch { .. } => (StatusCode::CONFLICT, "jobs_mismatch"),
            VoucherError::UnknownJob(_) => (StatusCode::CONFLICT, "unknown_job"),
            VoucherError::WrongModel { .. } => (StatusCode::CONFLICT, "wrong_model"),
            VoucherError::AlreadyPaid { .. } => (StatusCode::CONFLICT, "job_already_paid"),
            VoucherError::RootMismatch { .. } => (StatusCode::CONFLICT, "receipts_root_mismatch"),
            VoucherError::TooManyJobs { .. } => (StatusCode::CONFLICT, "too_many_jobs"),
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

    /// Latest vouchers worth more than what is settled of their channel.
    pub fn unsettled_vouchers(&self) -> Result<Vec<SignedVoucher>, ProviderError> {
        let r = self.db.begin_read()?;
        Ok(unsettled_held(&r)?.into_iter().map(|h| h.voucher).collect())
    }
}

/// Held vouchers, read inside `r`, worth more than what is settled of their channel.
pub(crate) fn unsettled_held(r: &ReadTransaction) -> Result<Vec<HeldVoucher>, ProviderError> {
    let mut out = Vec::new();
    for entry in r.open_table(VOUCHERS)?.iter()? {
        let (_, bytes) = entry?;
        let held = decode(bytes.value())?;
        if held.voucher.voucher.cumulative > held.settled {
            out.push(held);
        }
    }
    Ok(out)
}

/// Record, inside `w`, that `channel` is settled up to `cumulative`.
pub(crate) fn mark_settled(
    w: &WriteTransaction,
    channel: &Hash32,
    cumulative: Amount,
) -> Result<(), ProviderError> {
    let mut table = w.open_table(VOUCHERS)?;
    let held = match table.get(channel.0.as_slice())? {
        Some(bytes) => Some(decode(bytes.value())?),
        None => None,
    };
    if let Some(mut held) = held {
        held.settled = held.settled.max(cumulative);
        table.insert(channel.0.as_slice(), codec::encode(&held).as_slice())?;
    }
    Ok(())
}

/// `POST /v1/vouchers`: check and keep a voucher ([`VoucherDelivery`]).
pub(crate) async fn post_voucher<E: InferenceEngine>(
    State(p): State<Arc<Provider<E>>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => return body_rejection(e),
    };
    let d: VoucherDelivery = match serde_json::from_slice(&body) {
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
    let v = d.voucher.voucher.clone();
    match accept(&p, d).await {
        Ok(()) => Json(json!({
            "channel": v.channel,
            "cumulative": v.cumulative,
            "jobs": v.jobs,
        }))
        .into_response(),
        Err(e) => {
            let (status, code) = e.status();
            error(status, "invalid_request_error", code, e.to_string())
        }
    }
}

async fn accept<E: InferenceEngine>(
    p: &Provider<E>,
    d: VoucherDelivery,
) -> Result<(), VoucherError> {
    let Some(lookup) = &p.channels else {
        return Err(VoucherError::Chain(
            "this provider reads no chain, so it takes no vouchers".into(),
        ));
    };
    let id = d.voucher.voucher.channel;
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
        check_voucher(&d.voucher, &channel, &me, held)?;
        store.take_voucher(&d, &channel)
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
        let due = tokio::task::spawn_blocking(move || store.due_settlements())
            .await
            .map_err(|e| ProviderError::Store(e.to_string()))??;
        let mut settled = 0;
        // A channel whose step failed settles nothing later this round: steps go in order.
        let mut stuck = Vec::new();
        for voucher in due {
            let (id, cumulative) = (voucher.voucher.channel, voucher.voucher.cumulative);
            if stuck.contains(&id) {
                continue;
            }
            // Recorded first: a settlement that lands after its wait times
            // out is still audited, so its proofs must be served.
            self.store.settling(&voucher)?;
            let kind = TxKind::SettleChannel {
                voucher: voucher.clone(),
            };
            match self
                .chain
                .send_and_confirm(&self.key, kind, SETTLE_TIMEOUT)
                .await
            {
                Ok(done) => {
                    tracing::info!(channel = %id, cumulative, jobs = voucher.voucher.jobs, height = done.height, "settled a payment channel");
                    self.store.settled(&voucher, done.height)?;
                    settled += 1;
                }
                Err(e) => {
                    // Already settled this far (e.g. before a restart)? Then nothing is owed;
                    // the head bounds the settlement's height for pruning.
                    match self.chain.channel(&id).await {
                        Ok(c) if c.paid >= cumulative => {
                            let head = self.chain.head().await?.height;
                            self.store.settled(&voucher, head)?;
                        }
                        _ => {
                            tracing::warn!(channel = %id, error = %e, "settlement failed; will retry");
                            stuck.push(id);
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
