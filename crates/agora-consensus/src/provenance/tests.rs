//! Output provenance checks with real certificates: a devnet validator set
//! signs the finalization of a block holding a receipt batch's transaction.

use agora_types::audit::{batch_root, receipt_leaf};
use agora_types::block::tx_root;
use agora_types::c2pa::Manifest;
use agora_types::merkle::{self, MerkleProof};
use agora_types::provenance::{find_batch_tx, OutputEvidence, ProvenanceError};
use agora_types::{
    hash_output_text, Block, BlockHeader, Hash32, Keypair, Price, Receipt, SamplingParams,
    SignedReceipt, Transaction, TxKind, Usage,
};
use commonware_codec::Encode;
use commonware_consensus::simplex::types::{Finalization, Finalize, Proposal};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_parallel::Sequential;
use commonware_utils::non_empty;

use super::verify_output;
use crate::block::{to_digest, Digest};
use crate::keys::{devnet_keys, Scheme};

const CHAIN: &str = "agora-test";
const TEXTS: [&str; 3] = ["The sky is blue.", "Grass is green.", "Snow is white."];

fn receipt(key: &Keypair, text: &str, i: u8) -> SignedReceipt {
    Receipt {
        chain_id: CHAIN.into(),
        id: Hash32::digest(&[i]),
        provider: key.account(),
        model: Hash32::digest(b"model"),
        prompt_hash: Hash32::digest(b"prompt"),
        output_hash: Hash32::digest(text.as_bytes()),
        text_hash: hash_output_text(text),
        params: SamplingParams::new(16, 0.0, 1.0, vec![], 7),
        usage: Usage::default(),
        price: Price::default(),
        cost: 12,
        timestamp_ms: 1,
        commitments: Hash32::ZERO,
    }
    .sign(key)
}

/// A finalization certificate of `block` by the devnet set dealt from `seed`,
/// and that set's identity.
fn certify(seed: u64, block: Hash32) -> (Vec<u8>, Vec<u8>) {
    let keys = devnet_keys(seed, 4).unwrap();
    let proposal = Proposal::new(
        Round::new(Epoch::zero(), View::new(3)),
        View::new(2),
        to_digest(block),
    );
    let signers: Vec<Scheme> = keys
        .validators
        .iter()
        .map(|v| v.genesis.as_ref().unwrap().scheme.clone())
        .collect();
    let votes: Vec<Finalize<Scheme, Digest>> = signers
        .iter()
        .map(|s| Finalize::sign(s, proposal.clone()).unwrap())
        .collect();
    let cert =
        Finalization::from_finalizes(&signers[0], non_empty![@votes.iter()], &Sequential).unwrap();
    let identity = keys.output.public().public().encode().to_vec();
    (cert.encode().to_vec(), identity)
}

/// Evidence for `TEXTS[1]` committed by a `CommitReceipts` in block 7 (after
/// another provider's commit), with its certificate and identity.
fn honest() -> (OutputEvidence, Vec<u8>) {
    let key = Keypair::from_seed([3; 32]);
    let other = Keypair::from_seed([4; 32]);
    let receipts: Vec<SignedReceipt> = (0..3u8)
        .map(|i| receipt(&key, TEXTS[i as usize], i))
        .collect();
    let root = batch_root(&receipts);
    let leaves: Vec<Hash32> = receipts.iter().map(receipt_leaf).collect();
    let commit = |k: &Keypair, root: Hash32| {
        Transaction {
            chain_id: CHAIN.into(),
            from: k.account(),
            nonce: 5,
            kind: TxKind::CommitReceipts {
                model: Hash32::digest(b"model"),
                root,
                count: 3,
            },
        }
        .sign(k)
    };
    let txs = vec![commit(&other, Hash32::digest(b"x")), commit(&key, root)];
    let header = BlockHeader {
        chain_id: CHAIN.into(),
        height: 7,
        parent: Hash32::digest(b"parent"),
        timestamp_ms: 1_000,
        proposer: other.account(),
        tx_root: tx_root(&txs),
        state_root: Hash32::digest(b"state"),
        consensus: Hash32::ZERO,
        randomness: Hash32::ZERO,
    };
    let (cert, identity) = certify(11, header.id());
    let tx_index = find_batch_tx(&txs, &key.account(), &root).unwrap();
    let evidence = OutputEvidence {
        receipt: receipts[1].clone(),
        root,
        proof: MerkleProof::new(&leaves, 1).unwrap(),
        block: Block { header, txs },
        tx_index,
        certificate: hex::encode(cert),
    };
    (evidence, identity)
}

#[test]
fn an_honest_output_verifies() {
    let (e, identity) = honest();
    let ok = verify_output(&identity, &e, TEXTS[1]).unwrap();
    assert_eq!(ok.height, 7);
    assert_eq!(ok.block, e.block.header.id());
    assert_eq!(ok.job, e.receipt.receipt.id);
}

#[test]
fn a_tampered_text_is_rejected() {
    let (e, identity) = honest();
    for text in [TEXTS[0], "The sky is blue!", "", "Grass is green. "] {
        assert!(matches!(
            verify_output(&identity, &e, text),
            Err(ProvenanceError::TextMismatch { .. })
        ));
    }
}

#[test]
fn a_tampered_receipt_is_rejected() {
    let (mut e, identity) = honest();
    e.receipt.receipt.cost += 1;
    assert_eq!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::BadReceiptSignature)
    );
    // Re-signed by someone else under the provider's name: still not the provider's.
    let (mut e, _) = honest();
    let stranger = Keypair::from_seed([9; 32]);
    let mut forged = e.receipt.receipt.clone().sign(&stranger);
    forged.receipt = e.receipt.receipt.clone();
    e.receipt = forged;
    assert_eq!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::BadReceiptSignature)
    );
    // A receipt honestly signed by the stranger for this text is not in the batch.
    let (mut e, _) = honest();
    e.receipt = receipt(&stranger, TEXTS[1], 1);
    assert_eq!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::NotInBatch(e.root))
    );
}

#[test]
fn a_wrong_proof_is_rejected() {
    let (mut e, identity) = honest();
    let key = Keypair::from_seed([3; 32]);
    let leaves: Vec<Hash32> = (0..3u8)
        .map(|i| receipt_leaf(&receipt(&key, TEXTS[i as usize], i)))
        .collect();
    e.proof = MerkleProof::new(&leaves, 0).unwrap();
    assert!(matches!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::NotInBatch(_))
    ));
    // The claimed root is another batch's (the tree of the first two leaves).
    let (mut e, identity) = honest();
    e.root = merkle::root(&leaves[..2]);
    e.proof = MerkleProof::new(&leaves[..2], 1).unwrap();
    assert!(matches!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::NotTheBatchTx { .. })
    ));
}

#[test]
fn a_wrong_block_or_transaction_is_rejected() {
    // Another transaction of the block does not create this batch.
    let (mut e, identity) = honest();
    e.tx_index = 0;
    assert!(matches!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::NotTheBatchTx { .. })
    ));
    e.tx_index = 9;
    assert!(matches!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::TxNotInBlock(9, 7))
    ));
    // A transaction list that is not the block's.
    let (mut e, identity) = honest();
    e.block.txs.remove(0);
    e.tx_index = 0;
    assert_eq!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::TxRootMismatch)
    );
    // A forged transaction signature.
    let (mut e, identity) = honest();
    let sig = e.block.txs[0].signature;
    e.block.txs[1].signature = sig;
    e.block.header.tx_root = tx_root(&e.block.txs);
    assert_eq!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::BadTxSignature)
    );
    // A header edited to fit (here: another height) is not the certified block.
    let (mut e, identity) = honest();
    e.block.header.height = 8;
    assert!(matches!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::Finality(m)) if m.contains("finalizes")
    ));
}

#[test]
fn a_certificate_of_another_identity_is_rejected() {
    let (mut e, identity) = honest();
    let (cert, stranger) = certify(12, e.block.header.id());
    // The stranger's certificate does not verify under the trusted identity...
    e.certificate = hex::encode(&cert);
    assert!(matches!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::Finality(_))
    ));
    // ...though it does under the stranger's: only the identity decides.
    assert!(verify_output(&stranger, &e, TEXTS[1]).is_ok());
    // A tampered certificate fails too.
    let (mut e, identity) = honest();
    let mut bytes = hex::decode(&e.certificate).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    e.certificate = hex::encode(bytes);
    assert!(matches!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::Finality(_))
    ));
}

#[test]
fn a_manifest_holds_the_evidence_and_its_edits_are_caught() {
    use agora_types::c2pa::Assertion;
    let (e, identity) = honest();
    let manifest = Manifest::new("agora test", e.clone());
    let evidence = manifest.evidence().unwrap();
    assert_eq!(evidence, &e);
    verify_output(&identity, evidence, TEXTS[1]).unwrap();

    // The content hash must be the receipt's text hash.
    let mut edited = manifest.clone();
    for a in &mut edited.assertions {
        if let Assertion::Receipt(r) = a {
            r.content_hash.hash = hash_output_text("other");
        }
    }
    assert!(matches!(
        edited.evidence(),
        Err(ProvenanceError::Manifest(_))
    ));
    // Without the created-by-a-model action it is not an agora manifest.
    let mut edited = manifest.clone();
    edited
        .assertions
        .retain(|a| matches!(a, Assertion::Receipt(_)));
    assert!(matches!(
        edited.evidence(),
        Err(ProvenanceError::Manifest(_))
    ));
    // A receipt swapped inside the manifest is caught by its signature.
    let mut edited = manifest;
    for a in &mut edited.assertions {
        if let Assertion::Receipt(r) = a {
            r.evidence.receipt.receipt.cost = 0;
        }
    }
    assert_eq!(
        verify_output(&identity, edited.evidence().unwrap(), TEXTS[1]),
        Err(ProvenanceError::BadReceiptSignature)
    );
}

#[test]
fn a_channel_settlement_creates_the_batch_too() {
    // The devnet's paying gateway pays by voucher: the batch root is the
    // settled voucher's receipts root, sent by the provider.
    let (mut e, _) = honest();
    let key = Keypair::from_seed([3; 32]);
    let client = Keypair::from_seed([5; 32]);
    let voucher = |root: Hash32| agora_types::Voucher {
        channel: Hash32::digest(b"channel"),
        cumulative: 36,
        receipts_root: root,
        jobs: 3,
    };
    let settle = |root: Hash32, from: &Keypair| {
        Transaction {
            chain_id: CHAIN.into(),
            from: from.account(),
            nonce: 6,
            kind: TxKind::SettleChannel {
                voucher: voucher(root).sign(&client),
            },
        }
        .sign(from)
    };
    e.block.txs = vec![settle(Hash32::digest(b"other"), &key), settle(e.root, &key)];
    e.block.header.tx_root = tx_root(&e.block.txs);
    let provider = key.account();
    assert_eq!(find_batch_tx(&e.block.txs, &provider, &e.root), Some(1));
    let (cert, identity) = certify(11, e.block.header.id());
    e.certificate = hex::encode(cert);
    e.tx_index = 1;
    verify_output(&identity, &e, TEXTS[1]).unwrap();
    // The client's settlement of the same root is not the provider's batch.
    e.block.txs[1] = settle(e.root, &client);
    e.block.header.tx_root = tx_root(&e.block.txs);
    assert!(matches!(
        verify_output(&identity, &e, TEXTS[1]),
        Err(ProvenanceError::NotTheBatchTx { .. })
    ));
}
