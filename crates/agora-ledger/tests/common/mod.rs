//! Helpers the ledger's integration tests share: deterministic keys, a
//! genesis funding them, and transactions sent through the real block builder.

#![allow(dead_code)]

use agora_ledger::{build_block, BlockCandidate, Genesis, State, TxError};
use agora_testkit::GenesisBuilder;
use agora_types::{
    AccountId, Hash32, Keypair, ModelEntry, SignedTransaction, Transaction, TxKind, Voucher,
};

/// `n` keys from the seeds `first`, `first + 1`, ….
pub fn keys(n: u8, first: u8) -> Vec<Keypair> {
    (0..n)
        .map(|i| Keypair::from_seed([i + first; 32]))
        .collect()
}

/// A genesis of `chain` giving every key `balance` and registering `models`;
/// callers adjust its params before calling `state()`. Its minimum validator
/// bond is 1 base unit and it charges no fees, so that tests of other rules
/// can use small, exact numbers; the defaults have their own tests
/// (`attacks.rs`).
pub fn genesis(chain: &str, keys: &[Keypair], balance: u64, models: Vec<ModelEntry>) -> Genesis {
    models
        .into_iter()
        .fold(GenesisBuilder::new(chain), GenesisBuilder::model)
        .fund_keys(keys, balance)
        .without_fees()
        .params(|p| p.min_validator_bond = 1)
        .build()
}

/// `kind` signed by `key` at its next nonce on `s`'s chain.
pub fn signed(s: &State, key: &Keypair, kind: TxKind) -> SignedTransaction {
    Transaction {
        chain_id: s.chain_id.clone(),
        from: key.account(),
        nonce: s.account(&key.account()).nonce,
        kind,
    }
    .sign(key)
}

/// One block with at most one transaction, through the real block builder;
/// returns the transaction's rejection, if any.
pub fn block(s: &mut State, tx: Option<SignedTransaction>) -> Option<TxError> {
    let built = build_block(
        s,
        BlockCandidate {
            proposer: AccountId([0; 32]),
            timestamp_ms: s.last_timestamp_ms + 1,
            txs: tx.into_iter().collect(),
            randomness: agora_types::Hash32::ZERO,
        },
    );
    *s = built.state;
    built.rejected.into_iter().next().map(|(_, e)| e)
}

/// A 1-byte MIT test model called `name`, its id the digest of `id_seed`,
/// with no owner and no royalty.
pub fn model(id_seed: &[u8], name: &str) -> ModelEntry {
    ModelEntry {
        id: Hash32::digest(id_seed),
        name: name.into(),
        architecture: "llama".into(),
        quantization: "Q4_1".into(),
        size_bytes: 1,
        license: "MIT".into(),
        owner: AccountId([0; 32]),
        royalty_ppm: 0,
        tokenizer_hash: Default::default(),
    }
}

/// Sign `kind` and put it in the next block; returns its rejection, if any.
pub fn send(s: &mut State, key: &Keypair, kind: TxKind) -> Option<TxError> {
    let tx = signed(s, key, kind);
    block(s, Some(tx))
}

/// `SettleChannel` of `channel` with `client`'s voucher for `cumulative`
/// over `jobs` jobs (the receipts root stands in for the jobs' leaves).
pub fn settlement(client: &Keypair, channel: Hash32, cumulative: u64, jobs: u64) -> TxKind {
    let voucher = Voucher {
        channel,
        cumulative,
        receipts_root: Hash32::digest(&jobs.to_le_bytes()),
        jobs,
    }
    .sign(client);
    TxKind::SettleChannel { voucher }
}

/// `SubmitVerdict` on job `index` of `batch` (leaf and evidence stand-ins).
pub fn verdict(batch: Hash32, index: u64, passed: bool) -> TxKind {
    TxKind::SubmitVerdict {
        batch,
        index,
        leaf: Hash32::digest(&index.to_le_bytes()),
        passed,
        evidence: Hash32::digest(b"evidence"),
    }
}
