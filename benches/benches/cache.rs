//! `cache`: chring's `TtlCache<u64, u16, N, Ix>` (u64 key to a backend id, the
//! flow-table shape) at capacity `N` = 1024 (`Ix = u16`) and 65536 (`Ix = u32`,
//! since `u16` links stop at 65534 entries).
//!
//! Ids `get-hit/<N>`, `get-miss/<N>`, `insert-evict/<N>`; one iteration is 4096
//! operations on random u64 keys generated before timing:
//!
//! - `get-hit`: the cache holds `N` keys; the gets walk a shuffled list of them
//!   (for 65536 the working set is the whole table, not 4096 hot keys).
//! - `get-miss`: keys that are not in the full cache.
//! - `insert-evict`: the cache is full and every key inserted is new, so each
//!   insert evicts the least recently used entry (the keys cycle through
//!   `2 x max(N, 4096)` distinct keys, so a key is always evicted before it
//!   comes back).
//!
//! The TTL is long and `now` fixed, so nothing expires. Every operation is
//! `advance(now)` then the call, as a flow table does per packet, so the clock
//! check and the expiry-list probe run every time. The cache is seeded
//! (`with_seed`), as a flow table facing untrusted keys must be; the seed's value
//! does not change the cost.

use std::hint::black_box;

use chring::{CacheIndex, Duration, Instant, TtlCache};
use criterion::{BenchmarkId, Criterion, Throughput};
use rand_core::Rng;

use crate::KEYS;

const NOW: Instant = Instant(1);

pub(crate) fn cache(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache");
    g.throughput(Throughput::Elements(KEYS as u64));
    g.sample_size(50);
    run::<1024, u16>(&mut g);
    run::<65_536, u32>(&mut g);
    g.finish();
}

fn keys(seed: u64, n: usize) -> Vec<u64> {
    let mut r = crate::rng(seed);
    (0..n).map(|_| r.next_u64()).collect()
}

/// A full cache of `N` entries holding `present`.
fn full<const N: usize, Ix: CacheIndex>(present: &[u64]) -> Box<TtlCache<u64, u16, N, Ix>> {
    let mut cache = Box::new(TtlCache::new(Duration(1 << 30)).expect("ttl"));
    cache.set_seed(0x5eed_0ff1_0e7a_b1e5);
    cache.advance(NOW).expect("clock");
    for (i, &k) in present.iter().enumerate() {
        let _ = cache.insert(k, i as u16);
    }
    assert!(cache.is_full());
    cache
}

fn run<const N: usize, Ix: CacheIndex>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    // Stream lengths are powers of two, so a cursor wraps with a mask.
    let stream = N.max(KEYS);
    let present = keys(N as u64, N);

    // Hits: every present key, shuffled, repeated up to the stream length.
    let mut hits: Vec<u64> = present.iter().copied().cycle().take(stream).collect();
    let mut r = crate::rng(1);
    for i in (1..hits.len()).rev() {
        hits.swap(i, (r.next_u64() % (i as u64 + 1)) as usize);
    }
    let mut cache = full::<N, Ix>(&present);
    let mut at = 0;
    g.bench_function(BenchmarkId::new("get-hit", N), |b| {
        b.iter(|| {
            for j in 0..KEYS {
                let k = hits[(at + j) & (stream - 1)];
                cache.advance(black_box(NOW)).expect("clock");
                black_box(cache.get(black_box(&k)));
            }
            at = (at + KEYS) & (stream - 1);
        });
    });
    assert_eq!(cache.stats().misses, 0);

    let misses = keys(2, KEYS);
    assert!(misses.iter().all(|k| cache.peek(k).is_none()));
    g.bench_function(BenchmarkId::new("get-miss", N), |b| {
        b.iter(|| {
            for k in &misses {
                cache.advance(black_box(NOW)).expect("clock");
                black_box(cache.get(black_box(k)));
            }
        });
    });
    drop(cache);

    let fresh = keys(3, 2 * stream);
    let mut cache = full::<N, Ix>(&present);
    let mut at = 0;
    g.bench_function(BenchmarkId::new("insert-evict", N), |b| {
        b.iter(|| {
            for j in 0..KEYS {
                let k = fresh[(at + j) & (2 * stream - 1)];
                cache.advance(black_box(NOW)).expect("clock");
                black_box(cache.insert(black_box(k), 7));
            }
            at = (at + KEYS) & (2 * stream - 1);
        });
    });
    let s = cache.stats();
    assert_eq!(s.evictions + N as u64, s.insertions, "every insert evicted");
}
