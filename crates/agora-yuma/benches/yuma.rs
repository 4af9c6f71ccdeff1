//! Yuma epoch for 256 validators × 4,096 providers, at full and 10% weight
//! density, against a dense f64 reference.

use std::hint::black_box;

use agora_yuma::{epoch, YumaInput, YumaParams};
use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../tests/common/reference.rs"]
mod reference;

const VALIDATORS: usize = 256;
const PROVIDERS: usize = 4096;

/// A small deterministic generator (xorshift64*), so the bench needs no rand.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Validators scoring providers by a shared quality plus noise; at 100% every
/// validator weights every provider, below that about `density_pct`% of the
/// entries are present. Bonds come from one earlier epoch.
fn market(density_pct: u64) -> (YumaParams, YumaInput) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ density_pct);
    let quality: Vec<u64> = (0..PROVIDERS).map(|_| rng.next() % 40_000).collect();
    let stakes: Vec<u64> = (0..VALIDATORS)
        .map(|_| 1_000_000_000 + rng.next() % 1_000_000_000_000)
        .collect();
    let weights: Vec<Vec<(u16, u16)>> = (0..VALIDATORS)
        .map(|_| {
            let mut row = Vec::new();
            for (j, q) in quality.iter().enumerate() {
                // Sparse markets: validators weight the best providers (the
                // top density/0.9 by quality), each with 90% chance.
                let keep = density_pct >= 100
                    || (*q >= 40_000 - 40_000 * density_pct / 90 && rng.next() % 10 < 9);
                if keep {
                    row.push((j as u16, (q + rng.next() % 20_000 + 1) as u16));
                }
            }
            row
        })
        .collect();
    let params = YumaParams {
        max_validators: VALIDATORS,
        ..YumaParams::default()
    };
    let mut input = YumaInput::new(PROVIDERS, stakes, weights, 1_000_000_000_000);
    let first = epoch(&params, &input).expect("valid input");
    input.prev_bonds = first.new_bonds;
    (params, input)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("yuma_epoch_256x4096");
    group.sample_size(20);
    for density in [100, 10] {
        let (params, input) = market(density);
        let nnz: usize = input.weights.iter().map(Vec::len).sum();
        let bonds: usize = input.prev_bonds.iter().map(Vec::len).sum();
        eprintln!("density {density}%: {nnz} weights, {bonds} bonds");
        group.bench_function(format!("fixed_point_density_{density}pct"), |b| {
            b.iter(|| epoch(black_box(&params), black_box(&input)).expect("valid input"))
        });
    }
    let (params, input) = market(100);
    let rp = reference::RefParams {
        max_validators: params.max_validators,
        ..reference::RefParams::default()
    };
    group.sample_size(10);
    group.bench_function("dense_f64_reference_density_100pct", |b| {
        b.iter(|| {
            reference::reference_epoch(
                black_box(&rp),
                PROVIDERS,
                &input.stakes,
                &input.active,
                &input.weights,
                &input.prev_bonds,
                input.emission,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
