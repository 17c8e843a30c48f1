//! Criterion benchmarks for chring.
//!
//! Dimensions: strategy, number of backends `n` (5, 100, 1000), 100 points per
//! backend where the algorithm has points, u64 keys (4096 pre-generated random
//! keys, hashed outside the timed loop and passed through `black_box`).
//!
//! Run: `cargo bench -p chring-benches`.

use std::hint::black_box;

use chring::{BackendId, Jump, Maglev, Modulo, Rendezvous, Ring, RingConfig, Strategy};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_core::{Rng, SeedableRng};

const KEYS: usize = 4096;

fn keys() -> Vec<u64> {
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(7);
    (0..KEYS).map(|_| rng.next_u64()).collect()
}

fn fill(s: &mut dyn Strategy, n: u16) {
    for i in 0..n {
        s.add(
            BackendId(i),
            format!("10.0.{}.{}:11211", i / 256, i % 256).as_bytes(),
            1,
        )
        .expect("add");
    }
}

/// Runs `lookup` over every pre-generated key hash.
fn bench_keys(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    ks: &[u64],
    mut lookup: impl FnMut(u64) -> Option<BackendId>,
) {
    c.bench_function(id, |b| {
        b.iter(|| {
            for &k in ks {
                black_box(lookup(black_box(chring::hash_u64(k))));
            }
        })
    });
}

fn lookup(c: &mut Criterion) {
    let ks = keys();
    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(KEYS as u64));
    for n in [5u16, 100, 1000] {
        let mut ring = Box::new(Ring::<1000, 100_000, 65_536>::new(RingConfig::new(100)).unwrap());
        fill(ring.as_mut(), n);
        bench_keys(&mut g, BenchmarkId::new("chring-ring", n), &ks, |k| {
            ring.lookup(k)
        });

        let mut maglev = Box::new(Maglev::<1000, 65_537>::new());
        fill(maglev.as_mut(), n);
        bench_keys(&mut g, BenchmarkId::new("chring-maglev", n), &ks, |k| {
            maglev.lookup(k)
        });

        let mut jump = Box::new(Jump::<1000, 1000>::new());
        fill(jump.as_mut(), n);
        bench_keys(&mut g, BenchmarkId::new("chring-jump", n), &ks, |k| {
            jump.lookup(k)
        });

        let mut modulo = Box::new(Modulo::<1000>::new());
        fill(modulo.as_mut(), n);
        bench_keys(&mut g, BenchmarkId::new("chring-modulo", n), &ks, |k| {
            modulo.lookup(k)
        });

        if n <= 100 {
            let mut hrw = Box::new(Rendezvous::<1000>::new());
            fill(hrw.as_mut(), n);
            bench_keys(&mut g, BenchmarkId::new("chring-rendezvous", n), &ks, |k| {
                hrw.lookup(k)
            });
        }
    }
    g.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
