//! Transaction gossip: a transaction submitted to any validator's RPC is sent
//! to every other validator, so whoever leads the next view can include it.
//!
//! Validators are fully connected (authenticated `lookup` p2p), so one hop
//! reaches everyone: only locally submitted transactions are sent, and
//! received ones are handed to the [`TxSource`], which drops duplicates and
//! invalid transactions before they take pool space.

use agora_types::{codec, SignedTransaction};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_utils::channel::mpsc;
use tracing::{debug, warn};

use crate::mempool::TxSource;

/// The local end of gossip: transactions to send to every other validator.
pub type GossipSender = mpsc::UnboundedSender<SignedTransaction>;
/// What the gossip task reads local transactions from.
pub type GossipReceiver = mpsc::UnboundedReceiver<SignedTransaction>;

/// A channel pair for local transactions to gossip.
pub fn gossip_channel() -> (GossipSender, GossipReceiver) {
    mpsc::unbounded_channel()
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
                            let sent = sender.send(Recipients::All, codec::encode(&tx), false);
                            debug!(id = %tx.id(), peers = sent.len(), "transaction gossiped");
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
            Ok((peer, bytes)) => match codec::decode::<SignedTransaction>(bytes.as_ref()) {
                Ok(tx) => txs.admit(tx),
                Err(e) => warn!(?peer, error = %e, "undecodable gossiped transaction dropped"),
            },
            Err(e) => {
                debug!(error = %e, "gossip channel closed");
                return;
            }
        }
    }
}
