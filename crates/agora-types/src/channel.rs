//! Payment channels: a client escrows funds on chain once, then pays a
//! provider per job off chain with signed cumulative vouchers; the provider
//! settles the latest voucher (and the Merkle root of the receipts it covers)
//! in one transaction, so chain load does not grow with the number of jobs.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::{codec, AccountId, Amount, Hash32, KeyError, Keypair, Signature};

/// Domain of the bytes a voucher signature covers.
const VOUCHER_SIGNING_DOMAIN: &str = "agora 2026 channel voucher v1";
/// Domain of channel ids.
const CHANNEL_ID_DOMAIN: &str = "agora 2026 channel id v2";

/// The id of the channel opened on chain `chain_id` by `client`'s
/// transaction with `nonce`. The chain is part of the id, so a voucher (which
/// names its channel) pays only on the chain it was signed for, even when a
/// client uses one key on several chains.
pub fn channel_id(chain_id: &str, client: &AccountId, nonce: u64) -> Hash32 {
    Hash32::digest_in(
        CHANNEL_ID_DOMAIN,
        &codec::encode(&(chain_id, client, nonce)),
    )
}

/// The client's promise: the provider may take `cumulative` in total from the channel.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Voucher {
    /// The channel.
    pub channel: Hash32,
    /// Total owed to the provider since the channel opened (never decreases).
    pub cumulative: Amount,
    /// Merkle root of the receipts of every job this voucher pays for.
    pub receipts_root: Hash32,
    /// Number of those jobs.
    pub jobs: u64,
}

/// A voucher with the client's signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedVoucher {
    /// The voucher.
    pub voucher: Voucher,
    /// The client's signature over [`Voucher::signing_bytes`].
    pub signature: Signature,
}

/// What a payer posts to a provider's `POST /v1/vouchers`: the voucher and
/// the ids of the jobs it pays for, in the order of its receipts root, from
/// index `first_job` on (those before were delivered with earlier vouchers).
/// The provider takes a voucher only if it ran every job named and the root
/// is theirs, so it can prove any of them to an auditor.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct VoucherDelivery {
    /// The signed voucher.
    pub voucher: SignedVoucher,
    /// Leaf index of the first job in `jobs`.
    #[serde(default)]
    pub first_job: u64,
    /// Job ids (receipt ids) from `first_job` on.
    #[serde(default)]
    pub jobs: Vec<Hash32>,
}

impl Voucher {
    /// The exact bytes the client signs.
    pub fn signing_bytes(&self) -> Vec<u8> {
        Hash32::digest_in(VOUCHER_SIGNING_DOMAIN, &codec::encode(self))
            .0
            .to_vec()
    }

    /// Sign with the client's key.
    pub fn sign(self, client: &Keypair) -> SignedVoucher {
        let signature = client.sign(&self.signing_bytes());
        SignedVoucher {
            voucher: self,
            signature,
        }
    }
}

impl SignedVoucher {
    /// Check the signature against the channel's client.
    pub fn verify(&self, client: &AccountId) -> Result<(), KeyError> {
        client.verify(&self.voucher.signing_bytes(), &self.signature)
    }
}
