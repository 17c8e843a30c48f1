//! `cache_get_hit`, `cache_get_miss`, `cache_insert_evict`: chring's `TtlCache`
//! against the LRU caches a user would pick instead, in one run (issue 11).
//!
//! Ids `<group>/<impl>/<N>`, impl = `chring`, `schnellru`, `lru`, `hashlink`,
//! `quick_cache` (std) and `uluru`, `const-lru` (no allocator); `N` = 1024 and
//! 65536 (uluru at 1024 only: its lookups are a linear walk, see `impls.rs`).
//! Keys and values are `u64`; every cache hashes the key inside the timed loop
//! with its own default hasher (chring with its own, see `impls.rs`).
//!
//! One iteration is 4096 operations (criterion's throughput is 4096 elements;
//! `scripts/bench-table.py` prints ns per operation). Each benchmark starts from
//! a cache filled with the workload's `N` keys (a seeded PCG stream), then:
//!
//! - `cache_get_hit`: gets keys known present, walking a shuffled list of them
//!   (`max(N, 4096)` long, so at 65536 the working set is the whole cache);
//! - `cache_get_miss`: gets 4096 keys known absent;
//! - `cache_insert_evict`: inserts keys never seen before (a stream of
//!   `2 x max(N, 4096)` keys), so every insert evicts. (quick_cache, being scan
//!   resistant, admits them to a small probation queue and evicts among those.)
//!
//! chring's clock advances one tick per operation (its TTL is 2^31 - 1 ticks, so
//! nothing expires, which the run asserts): it does its clock check, the
//! expiry-list probe and the stamp bookkeeping on every call, as in production.
//! The peers track no time.
//!
//! Before timing, one untimed pass of 4096 operations checks the answers (every
//! hit found with its value, every miss absent, the cache still full after the
//! inserts) and picks the sampling (flat, 10 samples, above 2 ms an iteration).
//! `benches/tests/cache_peers.rs` checks the same adapters at both sizes.

use std::hint::black_box;
use std::time::Instant;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};

use crate::{KEYS, configure};

mod impls;

use impls::{
    Chring, ConstLruPeer, Hashlink, Lru, PeerCache, QuickCache, Schnellru, Uluru, Workload,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    GetHit,
    GetMiss,
    InsertEvict,
}

impl Op {
    fn group(self) -> &'static str {
        match self {
            Op::GetHit => "cache_get_hit",
            Op::GetMiss => "cache_get_miss",
            Op::InsertEvict => "cache_insert_evict",
        }
    }
}

pub(crate) fn cache_peers(c: &mut Criterion) {
    let small = Workload::new(1024, KEYS);
    let big = Workload::new(65_536, KEYS);
    for op in [Op::GetHit, Op::GetMiss, Op::InsertEvict] {
        let mut g = c.benchmark_group(op.group());
        g.throughput(Throughput::Elements(KEYS as u64));
        bench::<Chring<1024, u16>>(&mut g, op, &small);
        bench::<Chring<65_536, u32>>(&mut g, op, &big);
        bench::<Schnellru<1024>>(&mut g, op, &small);
        bench::<Schnellru<65_536>>(&mut g, op, &big);
        bench::<Lru<1024>>(&mut g, op, &small);
        bench::<Lru<65_536>>(&mut g, op, &big);
        bench::<Hashlink<1024>>(&mut g, op, &small);
        bench::<Hashlink<65_536>>(&mut g, op, &big);
        bench::<QuickCache<1024>>(&mut g, op, &small);
        bench::<QuickCache<65_536>>(&mut g, op, &big);
        bench::<Uluru<1024>>(&mut g, op, &small);
        bench::<ConstLruPeer<1024, u16>>(&mut g, op, &small);
        bench::<ConstLruPeer<65_536, u32>>(&mut g, op, &big);
        g.finish();
    }
}

/// One `<group>/<C::ID>/<C::N>` benchmark on a freshly filled cache.
fn bench<C: PeerCache>(g: &mut BenchmarkGroup<'_, WallTime>, op: Op, w: &Workload) {
    let name = format!("{}/{}/{}", op.group(), C::ID, C::N);
    let mut c: C = w.filled();
    assert_eq!(c.len(), C::N, "{name}: not full after {} inserts", C::N);
    let stream: &[u64] = match op {
        Op::GetHit => &w.hits,
        Op::GetMiss => &w.misses,
        Op::InsertEvict => &w.fresh,
    };
    let mask = stream.len() - 1;
    assert!(stream.len().is_power_of_two());

    // Untimed pass: the answers, and how long an iteration takes.
    let t = Instant::now();
    for &k in &stream[..KEYS] {
        match op {
            Op::GetHit => assert_eq!(c.get(k), Some(Workload::value(k)), "{name}: hit"),
            Op::GetMiss => assert_eq!(c.get(k), None, "{name}: miss"),
            Op::InsertEvict => {
                c.insert(k, Workload::value(k));
                assert_eq!(c.len(), C::N, "{name}: insert did not evict");
            }
        }
    }
    configure(g, t.elapsed());
    let mut at = KEYS & mask;

    let id = BenchmarkId::new(C::ID, C::N);
    match op {
        Op::GetHit | Op::GetMiss => g.bench_function(id, |b| {
            b.iter(|| {
                for j in 0..KEYS {
                    let k = stream[(at + j) & mask];
                    black_box(c.get(black_box(k)));
                }
                at = (at + KEYS) & mask;
            });
        }),
        Op::InsertEvict => g.bench_function(id, |b| {
            b.iter(|| {
                for j in 0..KEYS {
                    let k = stream[(at + j) & mask];
                    c.insert(black_box(k), black_box(!k));
                }
                at = (at + KEYS) & mask;
            });
        }),
    };

    c.check();
    assert_eq!(c.len(), C::N, "{name}: size changed during the run");
    if op != Op::InsertEvict && C::STRICT_LRU {
        let lost = w.present.iter().filter(|&&k| c.peek(k).is_none()).count();
        assert_eq!(lost, 0, "{name}: gets lost entries");
    }
}
