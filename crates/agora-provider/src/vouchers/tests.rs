//! The provider's voucher checks and store.

use agora_types::Voucher;

use super::*;

/// Errors compare by their debug form (a store error is not comparable).
fn same(got: &VoucherError, want: &VoucherError) {
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
}

struct Setup {
    client: Keypair,
    me: AccountId,
    channel: ChannelInfo,
}

fn setup() -> Setup {
    let client = Keypair::generate();
    let me = Keypair::generate().account();
    let channel = ChannelInfo {
        id: Hash32([7; 32]),
        client: client.account(),
        provider: me,
        model: Hash32::ZERO,
        deposit: 100,
        paid: 10,
        receipts_root: Hash32::ZERO,
        jobs: 1,
        closable_at: None,
    };
    Setup {
        client,
        me,
        channel,
    }
}

fn voucher(s: &Setup, cumulative: Amount, key: &Keypair) -> SignedVoucher {
    Voucher {
        channel: s.channel.id,
        cumulative,
        receipts_root: Hash32([1; 32]),
        jobs: 3,
    }
    .sign(key)
}

#[test]
fn a_good_voucher_passes() {
    let s = setup();
    check_voucher(&voucher(&s, 40, &s.client), &s.channel, &s.me, 30).unwrap();
    // Equal to what is held: a harmless resend.
    check_voucher(&voucher(&s, 40, &s.client), &s.channel, &s.me, 40).unwrap();
    // The whole deposit may be spent.
    check_voucher(&voucher(&s, 100, &s.client), &s.channel, &s.me, 0).unwrap();
}

#[test]
fn a_forged_signature_is_refused() {
    let s = setup();
    let forged = voucher(&s, 40, &Keypair::generate());
    let err = check_voucher(&forged, &s.channel, &s.me, 0).unwrap_err();
    same(&err, &VoucherError::BadSignature(s.channel.id));
    assert_eq!(err.status().0, StatusCode::UNAUTHORIZED);
    // A voucher signed for another channel does not pass as this one's.
    let mut other = s.channel.clone();
    other.id = Hash32([8; 32]);
    assert!(matches!(
        check_voucher(&voucher(&s, 40, &s.client), &other, &s.me, 0),
        Err(VoucherError::BadSignature(_))
    ));
}

#[test]
fn a_channel_paying_someone_else_is_refused() {
    let s = setup();
    let stranger = Keypair::generate().account();
    let err = check_voucher(&voucher(&s, 40, &s.client), &s.channel, &stranger, 0).unwrap_err();
    same(
        &err,
        &VoucherError::NotOurs {
            channel: s.channel.id,
            payee: s.me,
        },
    );
    assert_eq!(err.status().0, StatusCode::FORBIDDEN);
}

#[test]
fn a_decreasing_voucher_is_refused() {
    let s = setup();
    let err = check_voucher(&voucher(&s, 39, &s.client), &s.channel, &s.me, 40).unwrap_err();
    same(
        &err,
        &VoucherError::Decreasing {
            cumulative: 39,
            held: 40,
        },
    );
    // Below what the chain already paid, even with nothing held.
    let err = check_voucher(&voucher(&s, 9, &s.client), &s.channel, &s.me, 0).unwrap_err();
    same(
        &err,
        &VoucherError::Decreasing {
            cumulative: 9,
            held: 10,
        },
    );
    assert_eq!(err.status().0, StatusCode::CONFLICT);
}

#[test]
fn a_voucher_over_the_deposit_is_refused() {
    let s = setup();
    let err = check_voucher(&voucher(&s, 101, &s.client), &s.channel, &s.me, 0).unwrap_err();
    same(
        &err,
        &VoucherError::OverDeposit {
            cumulative: 101,
            deposit: 100,
        },
    );
    assert!(err.status().0.is_client_error());
}

#[test]
fn the_store_keeps_the_latest_and_tracks_settlement_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let s = setup();
    let id = s.channel.id;
    {
        let store = TranscriptStore::open(&path).unwrap();
        assert!(store.unsettled_vouchers().unwrap().is_empty());
        store.keep_voucher(&voucher(&s, 20, &s.client)).unwrap();
        store.keep_voucher(&voucher(&s, 30, &s.client)).unwrap();
        assert!(matches!(
            store.keep_voucher(&voucher(&s, 25, &s.client)),
            Err(VoucherError::Decreasing {
                cumulative: 25,
                held: 30
            })
        ));
        let due = store.unsettled_vouchers().unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].voucher.cumulative, 30);
        store.mark_settled(&id, 30).unwrap();
        assert!(store.unsettled_vouchers().unwrap().is_empty());
        store.keep_voucher(&voucher(&s, 45, &s.client)).unwrap();
    }
    let store = TranscriptStore::open(&path).unwrap();
    let held = store.voucher(&id).unwrap().unwrap();
    assert_eq!(held.voucher.voucher.cumulative, 45);
    assert_eq!(held.settled, 30);
    assert_eq!(store.unsettled_vouchers().unwrap().len(), 1);
}
