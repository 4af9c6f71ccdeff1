//! Cost of one strict ed25519 transaction-signature check, from raw key bytes
//! and through `AccountId::verify` (whose decompressed-key cache skips the
//! point decompression), and of the decompression alone:
//! `cargo bench -p agora-types --bench verify`.

use agora_types::Keypair;
use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::VerifyingKey;
use std::hint::black_box;

fn verify(c: &mut Criterion) {
    let key = Keypair::generate();
    let msg = [7u8; 120];
    let sig = key.sign(&msg);
    let raw = ed25519_dalek::Signature::from_bytes(&sig.0);
    let account = key.account();
    let mut group = c.benchmark_group("ed25519");
    group.bench_function("verify_strict from key bytes", |b| {
        b.iter(|| {
            let vk = VerifyingKey::from_bytes(&account.0).expect("valid key");
            vk.verify_strict(black_box(&msg), &raw)
                .expect("valid signature")
        })
    });
    group.bench_function("AccountId::verify (cached key)", |b| {
        b.iter(|| {
            account
                .verify(black_box(&msg), &sig)
                .expect("valid signature")
        })
    });
    group.bench_function("decompression alone", |b| {
        b.iter(|| VerifyingKey::from_bytes(black_box(&account.0)).expect("valid key"))
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
