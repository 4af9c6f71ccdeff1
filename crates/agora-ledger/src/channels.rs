//! Payment channel rules. A channel escrows a client's deposit for one
//! provider and one model it serves; the provider settles signed cumulative vouchers (never more than
//! the deposit, never the same amount twice; the model's owner takes its
//! royalty share of each payment, see `royalties.rs`); the client gets back what was
//! not paid, either at once when the provider closes, or after a challenge
//! window during which the provider can still settle. The jobs each
//! settlement adds form a receipt batch audited like a `CommitReceipts` one,
//! so every paid job can be drawn for audit.

use agora_types::audit::batch_id;
use agora_types::{
    channel_id, AccountId, Amount, Hash32, Height, ModelId, ReceiptBatch, SignedVoucher,
};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{State, TxError};

/// An open payment channel.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Channel {
    /// Who pays (and signs vouchers).
    pub client: AccountId,
    /// Who is paid.
    pub provider: AccountId,
    /// The model it pays for; its owner takes the model's royalty share.
    pub model: ModelId,
    /// Everything ever escrowed (opening deposit plus top-ups).
    pub deposit: Amount,
    /// Paid to the provider so far (the last settled voucher's cumulative amount).
    pub paid: Amount,
    /// Receipts root of the last settled voucher: what audits sample from.
    pub receipts_root: Hash32,
    /// Jobs covered by the last settled voucher.
    pub jobs: u64,
    /// Set once the client starts closing: the height from which it may finish.
    pub closable_at: Option<Height>,
}

impl Channel {
    /// Base units still held in escrow.
    pub fn escrow(&self) -> Amount {
        self.deposit - self.paid
    }
}

impl State {
    fn channel(&self, id: &Hash32) -> Result<&Channel, TxError> {
        self.channels.get(id).ok_or(TxError::UnknownChannel(*id))
    }

    fn credit_check(&self, to: &AccountId, amount: Amount) -> Result<(), TxError> {
        self.account(to)
            .balance
            .checked_add(amount)
            .map(|_| ())
            .ok_or(TxError::Overflow)
    }

    pub(crate) fn open_channel(
        &mut self,
        client: AccountId,
        nonce: u64,
        provider: AccountId,
        model: ModelId,
        deposit: Amount,
    ) -> Result<(), TxError> {
        if deposit == 0 {
            return Err(TxError::ZeroAmount);
        }
        if provider == client {
            return Err(TxError::InvalidField {
                field: "provider",
                reason: "a channel to oneself pays nothing".into(),
            });
        }
        self.check_serves(provider, model)?;
        self.debit(client, deposit)?;
        let channel = Channel {
            client,
            provider,
            model,
            deposit,
            paid: 0,
            receipts_root: Hash32::default(),
            jobs: 0,
            closable_at: None,
        };
        self.channels
            .insert(channel_id(&self.chain_id, &client, nonce), channel);
        Ok(())
    }

    pub(crate) fn top_up_channel(
        &mut self,
        sender: AccountId,
        id: &Hash32,
        amount: Amount,
    ) -> Result<(), TxError> {
        let channel = self.channel(id)?;
        if channel.client != sender {
            return Err(TxError::NotChannelParty { role: "client" });
        }
        if channel.closable_at.is_some() {
            return Err(TxError::ChannelClosing(*id));
        }
        if amount == 0 {
            return Err(TxError::ZeroAmount);
        }
        let deposit = channel
            .deposit
            .checked_add(amount)
            .ok_or(TxError::Overflow)?;
        self.debit(sender, amount)?;
        if let Some(c) = self.channels.get_mut(id) {
            c.deposit = deposit;
        }
        Ok(())
    }

    pub(crate) fn settle_channel(
        &mut self,
        sender: AccountId,
        nonce: u64,
        signed: &SignedVoucher,
        height: Height,
    ) -> Result<(), TxError> {
        let v = &signed.voucher;
        let channel = self.channel(&v.channel)?;
        if channel.provider != sender {
            return Err(TxError::NotChannelParty { role: "provider" });
        }
        signed
            .verify(&channel.client)
            .map_err(|_| TxError::BadVoucherSignature)?;
        if v.cumulative <= channel.paid {
            return Err(TxError::StaleVoucher {
                cumulative: v.cumulative,
                paid: channel.paid,
            });
        }
        if v.cumulative > channel.deposit {
            return Err(TxError::VoucherExceedsDeposit {
                cumulative: v.cumulative,
                deposit: channel.deposit,
            });
        }
        if v.jobs < channel.jobs {
            return Err(TxError::JobsDecreased {
                jobs: v.jobs,
                settled: channel.jobs,
            });
        }
        let new_jobs = v.jobs - channel.jobs;
        let first_index = channel.jobs;
        let max = self.params.audit.max_batch_jobs;
        if new_jobs > max {
            // Every new job is a candidate for an audit draw: bounded like a batch.
            return Err(TxError::BatchTooLarge { max, got: new_jobs });
        }
        if new_jobs > 0 {
            self.check_batch_room(height)?;
        }
        let model = channel.model;
        let split = self.settlement_split(sender, model, v.cumulative - channel.paid)?;
        self.pay_settlement(split);
        if let Some(c) = self.channels.get_mut(&v.channel) {
            c.paid = v.cumulative;
            c.receipts_root = v.receipts_root;
            c.jobs = v.jobs;
        }
        if new_jobs > 0 {
            // The jobs this voucher adds are a batch, audited like any
            // other: a provider takes a voucher only once it holds every
            // receipt under its root (in the payer's order), so it can serve
            // the proof of any job the draw picks. Being paid is committing.
            self.count_batch(height);
            let id = batch_id(&sender, nonce);
            self.batches.insert(
                id,
                ReceiptBatch {
                    id,
                    provider: sender,
                    model: Some(model),
                    root: v.receipts_root,
                    first_index,
                    count: new_jobs,
                    height,
                    channel: Some(v.channel),
                    seed: None,
                    audits: Vec::new(),
                },
            );
        }
        Ok(())
    }

    pub(crate) fn close_channel(
        &mut self,
        sender: AccountId,
        id: &Hash32,
        height: Height,
    ) -> Result<(), TxError> {
        let channel = self.channel(id)?;
        if sender == channel.provider {
            // Cooperative: the provider gives up further claims; refund now.
            return self.refund_and_remove(id);
        }
        if sender != channel.client {
            return Err(TxError::NotChannelParty {
                role: "client or provider",
            });
        }
        if channel.closable_at.is_some() {
            return Err(TxError::ChannelClosing(*id));
        }
        let at = height.saturating_add(self.params.channel_challenge_blocks);
        if let Some(c) = self.channels.get_mut(id) {
            c.closable_at = Some(at);
        }
        Ok(())
    }

    pub(crate) fn finish_close(
        &mut self,
        sender: AccountId,
        id: &Hash32,
        height: Height,
    ) -> Result<(), TxError> {
        let channel = self.channel(id)?;
        if sender != channel.client {
            return Err(TxError::NotChannelParty { role: "client" });
        }
        match channel.closable_at {
            Some(at) if height >= at => self.refund_and_remove(id),
            other => Err(TxError::ChallengeOpen {
                channel: *id,
                at: other.unwrap_or(0),
            }),
        }
    }

    fn refund_and_remove(&mut self, id: &Hash32) -> Result<(), TxError> {
        let channel = self.channel(id)?;
        let (client, refund) = (channel.client, channel.escrow());
        self.credit_check(&client, refund)?;
        self.accounts.entry(client).or_default().balance += refund;
        self.channels.remove(id);
        Ok(())
    }
}
