//! The console's wire formats, pinned from the Rust side to the same fixed
//! vectors the console's own tests assert (`console/tests/unit.test.ts`),
//! which `console/tests/vector.py` computes independently with Python's
//! `blake3` and `pynacl`: a signed transfer the wallet submits, and the
//! digests of a wallet's API-key request and withdrawal.

use agora_types::{AccountId, Keypair, Transaction, TxKind};

const ACCOUNT: &str = "ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
const SIGNED_TRANSFER: &str = concat!(
    "0c00000061676f72612d6465766e6574ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c",
    "0300000000000000000909090909090909090909090909090909090909090909090909090909090909393000000000000",
    "0c874f42576a0fd87e2f40ad26a8c686a4e5f4ef355ce0760e94f0dc7871292371e9f56d430fb75faa09b997cc92c17f159acc9888f6de3fdeb1fe030be34290f",
);
const TX_ID: &str = "ea2ded469f6654f15cdb5d633688e56cc18b5cc8919868f983e326b57e657352";
const KEY_REQUEST: &str = r#"{"owner":"ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c","name":"console test","issued_at_ms":1700000000000,"total":1000}"#;
const KEY_DIGEST: &str = "89d81dc309dde649109ccfeeb177e6c1838eaf115a1ccd60096fe27eaa565e00";
const WITHDRAWAL: &str = r#"{"owner":"ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c","amount":4000,"issued_at_ms":1700000000000}"#;
const WITHDRAW_DIGEST: &str = "a822fc48b1b33fa56415319f45ae2c9d71b35e438460ce3dcd82621235d9fc0f";
const KEY_SIGNATURE: &str = "adde8519a50425a79eb851a268efd4c043f4c3215f119b05502fb94859834bc02d004298ea6f342a5f9b9d4db898049efc8ae654f712fab8ea6981acf0eafc04";

#[test]
fn a_wallet_transfer_encodes_and_signs_as_the_console_does() {
    let key = Keypair::from_seed([7; 32]);
    assert_eq!(key.account().to_hex(), ACCOUNT);
    let signed = Transaction {
        chain_id: "agora-devnet".into(),
        from: key.account(),
        nonce: 3,
        kind: TxKind::Transfer {
            to: AccountId([9; 32]),
            amount: 12345,
        },
    }
    .sign(&key);
    assert_eq!(
        hex::encode(agora_types::codec::encode(&signed)),
        SIGNED_TRANSFER
    );
    assert_eq!(signed.id().to_hex(), TX_ID);
    signed.verify_signature().unwrap();
}

#[test]
fn a_wallet_key_request_digest_and_signature_are_pinned() {
    let key = Keypair::from_seed([7; 32]);
    let digest = agora_gateway::key_request_digest(KEY_REQUEST.as_bytes());
    assert_eq!(digest.to_hex(), KEY_DIGEST);
    assert_eq!(hex::encode(key.sign(&digest.0).0), KEY_SIGNATURE);
}

#[test]
fn a_wallet_withdrawal_digest_is_pinned() {
    let digest = agora_gateway::withdraw_digest(WITHDRAWAL.as_bytes());
    assert_eq!(digest.to_hex(), WITHDRAW_DIGEST);
    assert_ne!(
        digest,
        agora_gateway::key_request_digest(WITHDRAWAL.as_bytes()),
        "a key request's signature never passes for a withdrawal"
    );
}
