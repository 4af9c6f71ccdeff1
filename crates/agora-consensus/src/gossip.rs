//! Transaction gossip: a transaction submitted to any validator's RPC is sent
//! to every other validator, so whoever leads the next view can include it.
//!
//! Validators are fully connected (authenticated `lookup` p2p), so one hop
//! reaches everyone: only locally submitted transactions are sent, and
//! received ones are handed to the [`TxSource`], which drops duplicates and
//! invalid transactions before they take pool space.
//!
//! Transactions travel in batches: each send takes everything queued locally
//! (up to [`MAX_BATCH_TXS`] transactions and [`MAX_BATCH_BYTES`] encoded
//! bytes, far below the p2p message limit, which is at least a full block)
//! as one message, a borsh `Vec<SignedTransaction>`, which the peer admits
//! with one [`TxSource::admit_batch`] call.

use agora_types::{codec, SignedTransaction};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_utils::channel::mpsc;
use tracing::{debug, warn};

use crate::mempool::TxSource;

/// Most transactions in one gossip message.
pub const MAX_BATCH_TXS: usize = 2_000;
/// Most encoded transaction bytes in one gossip message (the p2p limit is at
/// least a block, 1 MiB by default).
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The local end of gossip: transactions to send to every other validator.
pub type GossipSender = mpsc::UnboundedSender<SignedTransaction>;
/// What the gossip task reads local transactions from.
pub type GossipReceiver = mpsc::UnboundedReceiver<SignedTransaction>;

/// A channel pair for local transactions to gossip.
pub fn gossip_channel() -> (GossipSender, GossipReceiver) {
    mpsc::unbounded_channel()
}

/// `first` and whatever else is queued in `local` right now, encoded as one
/// gossip message, with the number of transactions in it. Collection stops at
/// [`MAX_BATCH_TXS`] transactions or once [`MAX_BATCH_BYTES`] is reached (so a
/// batch exceeds it by less than one transaction); the rest waits.
pub fn next_batch(first: SignedTransaction, local: &mut GossipReceiver) -> (Vec<u8>, usize) {
    let mut batch = vec![first];
    let mut bytes = codec::encode(&batch[0]).len();
    while batch.len() < MAX_BATCH_TXS && bytes < MAX_BATCH_BYTES {
        let Ok(tx) = local.try_recv() else { break };
        bytes += codec::encode(&tx).len();
        batch.push(tx);
    }
    let n = batch.len();
    (codec::encode(&batch), n)
}

/// Decode one gossip message into its transactions.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<SignedTransaction>, codec::CodecError> {
    codec::decode(bytes)
}

/// Forward local transactions to every peer and admit peers' transactions,
/// until the network channel closes.
pub async fn run<S, R, T>(mut sender: S, mut receiver: R, mut local: GossipReceiver, txs: T)
where
    S: Sender,
    R: Receiver,
    T: TxSource,
{
    use futures::FutureExt as _;
    let mut local_open = true;
    loop {
        let incoming = if local_open {
            futures::select_biased! {
                tx = local.recv().fuse() => {
                    match tx {
                        Some(tx) => {
                            let (message, n) = next_batch(tx, &mut local);
                            let sent = sender.send(Recipients::All, message, false);
                            debug!(txs = n, peers = sent.len(), "transactions gossiped");
                        }
                        None => local_open = false,
                    }
                    continue;
                }
                msg = receiver.recv().fuse() => msg,
            }
        } else {
            receiver.recv().await
        };
        match incoming {
            Ok((peer, bytes)) => match decode_batch(bytes.as_ref()) {
                Ok(batch) => txs.admit_batch(batch),
                Err(e) => warn!(?peer, error = %e, "undecodable gossip message dropped"),
            },
            Err(e) => {
                debug!(error = %e, "gossip channel closed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_types::{Keypair, Transaction, TxKind};

    fn transfer(key: &Keypair, nonce: u64) -> SignedTransaction {
        Transaction {
            chain_id: "test".into(),
            from: key.account(),
            nonce,
            kind: TxKind::Transfer {
                to: Keypair::from_seed([9; 32]).account(),
                amount: 1,
            },
        }
        .sign(key)
    }

    #[test]
    fn one_message_carries_everything_queued_in_order() {
        let key = Keypair::from_seed([1; 32]);
        let (tx, mut rx) = gossip_channel();
        let txs: Vec<_> = (0..10).map(|n| transfer(&key, n)).collect();
        for t in &txs[1..] {
            tx.send(t.clone()).unwrap();
        }
        let (message, n) = next_batch(txs[0].clone(), &mut rx);
        assert_eq!(n, 10);
        assert_eq!(decode_batch(&message).unwrap(), txs);
        assert!(rx.try_recv().is_err(), "the queue was drained");
    }

    #[test]
    fn batches_stop_at_a_bound_and_the_rest_waits() {
        let key = Keypair::from_seed([2; 32]);
        let (tx, mut rx) = gossip_channel();
        let total = MAX_BATCH_TXS as u64 + 5;
        for n in 1..total {
            tx.send(transfer(&key, n)).unwrap();
        }
        let (message, n) = next_batch(transfer(&key, 0), &mut rx);
        assert!(message.len() <= MAX_BATCH_BYTES + 1024);
        let first = decode_batch(&message).unwrap();
        assert_eq!(first.len(), n);
        assert!(n < total as usize, "one message took all {total}");
        let next = rx.try_recv().unwrap();
        assert_eq!(
            next.tx.nonce, n as u64,
            "the next batch starts where this one stopped"
        );
        let (rest, m) = next_batch(next, &mut rx);
        assert_eq!(n + m, total as usize);
        let rest = decode_batch(&rest).unwrap();
        assert_eq!(rest.last().unwrap().tx.nonce, total - 1);
    }

    #[test]
    fn garbage_is_not_a_batch() {
        assert!(decode_batch(&[1, 2, 3]).is_err());
        let one = transfer(&Keypair::from_seed([3; 32]), 0);
        // A lone transaction (the old one-per-message format) is not a batch.
        assert!(decode_batch(&codec::encode(&one)).is_err());
    }
}
