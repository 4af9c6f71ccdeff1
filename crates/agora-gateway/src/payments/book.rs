//! [`ChannelBook`]: what a payer owes one provider for one model, and
//! the vouchers and deliveries made from it.

use agora_types::audit::receipt_leaf;
use agora_types::{
    merkle, Amount, Hash32, Keypair, SignedReceipt, SignedVoucher, Voucher, VoucherDelivery,
};

/// What the payer owes one provider for one model, and the channel that pays it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelBook {
    /// The open channel, once the chain included it.
    pub channel: Option<Hash32>,
    /// Escrowed in it so far.
    pub deposit: Amount,
    /// Owed in total for every job recorded (the next voucher's amount).
    pub cumulative: Amount,
    /// Receipt leaves of those jobs, in the order they were paid.
    pub leaves: Vec<Hash32>,
    /// Their job ids, in the same order.
    pub jobs: Vec<Hash32>,
    /// The root of `leaves`, kept as they are appended (a voucher per job
    /// would otherwise rehash every leaf of the channel).
    pub frontier: merkle::Frontier,
    /// Cumulative amount of the last voucher the provider accepted.
    pub delivered: Amount,
    /// Job ids the provider holds (sent with accepted vouchers).
    pub delivered_jobs: u64,
}

impl ChannelBook {
    /// Record one finished job.
    pub fn record(&mut self, receipt: &SignedReceipt) {
        self.cumulative = self.cumulative.saturating_add(receipt.receipt.cost);
        self.push(receipt_leaf(receipt), receipt.receipt.id);
    }

    /// Append one paid job's leaf and id.
    pub(crate) fn push(&mut self, leaf: Hash32, job: Hash32) {
        self.leaves.push(leaf);
        self.frontier.push(leaf);
        self.jobs.push(job);
    }

    /// The voucher covering everything recorded, signed by `key` (`None` before the channel opens).
    pub fn voucher(&self, key: &Keypair) -> Option<SignedVoucher> {
        let channel = self.channel?;
        Some(
            Voucher {
                channel,
                cumulative: self.cumulative,
                receipts_root: self.frontier.root(),
                jobs: self.leaves.len() as u64,
            }
            .sign(key),
        )
    }

    /// The delivery of `voucher`: it with the job ids the provider lacks.
    pub fn delivery(&self, voucher: SignedVoucher) -> VoucherDelivery {
        let first = self.delivered_jobs.min(self.jobs.len() as u64);
        VoucherDelivery {
            voucher,
            first_job: first,
            jobs: self.jobs[first as usize..].to_vec(),
        }
    }

    /// Whether the provider lacks a voucher for something recorded.
    pub fn behind(&self) -> bool {
        self.cumulative > self.delivered
    }
}
