//! Criterion benchmarks: chring against the crates.io consistent-hashing crates,
//! in one run.
//!
//! Groups and dimensions:
//!
//! - `lookup` (u64 keys) and `lookup_str` (16-byte keys such as
//!   `customer-0012345`): ids `<impl>/<n>`, `n` = 5, 100, 1000 backends of weight 1.
//!   One iteration looks up 4096 pre-generated keys (criterion's throughput is set
//!   to 4096 elements; `scripts/bench-table.py` divides by it). Keys are generated
//!   before the timed closure and passed through `black_box`. Every lookup hashes
//!   its key inside the timed loop: chring with `chring::hash_u64` / `chring::hash`
//!   (XXH3-64), each peer with its own hash, because the peers hash internally.
//!   Points per backend: 100 where the algorithm has points, 160 for
//!   pingora-ketama (fixed by the crate). Impls: chring's in `ring.rs`, the peers
//!   in `peers.rs`, hand-written reference baselines in `baseline.rs`.
//! - `build`: `<impl>/100` builds a structure of 100 backends from nothing;
//!   `<impl>/add-to-100` adds a 101st backend to a built one (the copy it starts
//!   from is made outside the timing). `chring-maglev*/1024` and
//!   `chring-maglev/add-to-1024`: Maglev builds at 1,024 backends (`maglev_build.rs`).
//! - `lookup/<impl>-cold/100`: the same lookups with a streaming read of a
//!   32 MiB buffer between them (cache pressure), for chring's ring and
//!   pingora-ketama, plus the stream alone (`hot.rs`).
//! - `pick`: `Ring::lookup` against `Strategy::pick` (health-aware) at backend
//!   capacities 8, 1024 and 16384, all up (`hot.rs`).
//! - `ketama`: twemproxy pools of 128 and 1024 servers loaded with
//!   `Ketama::add_many` (one continuum build), and 128 one by one (`hot.rs`).
//! - `cache`: `TtlCache<u64, u16, N, Ix>` get hit, get miss and insert with
//!   eviction, at `N` = 1024 and 65536 (`cache.rs`).
//! - `cache_get_hit`, `cache_get_miss`, `cache_insert_evict`: `TtlCache<u64, u64,
//!   N, Ix>` against the LRU caches users would pick (schnellru, lru, hashlink,
//!   quick_cache; uluru and const-lru without an allocator), ids
//!   `<group>/<impl>/<N>`, `N` = 1024 and 65536 (`cache_peers.rs`).
//! - `proto`: chring-proxy's hand-written RESP2 and memcached request framing
//!   against redis-protocol's RESP2 decoder, ids `proto/resp-parse/<impl>` and
//!   `proto/memcache-parse/<impl>` (`proto.rs`).
//!
//! Run: `cargo bench -p chring-benches` (everything: about 17 minutes on a quiet
//! 2-core machine), or a filter such as `cargo bench -p chring-benches --
//! 'lookup/.*/100'`. Then `python3 scripts/bench-table.py` prints the README tables.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use rand_core::{Rng, SeedableRng};

mod baseline;
mod cache;
mod cache_peers;
mod fleet;
mod hot;
mod maglev_build;
mod peers;
mod proto;
mod ring;

/// Keys per iteration.
pub(crate) const KEYS: usize = 4096;

/// Fleet sizes of the lookup groups.
const NS: [usize; 3] = [5, 100, 1000];

pub(crate) fn rng(seed: u64) -> rand_pcg::Pcg64Mcg {
    rand_pcg::Pcg64Mcg::seed_from_u64(seed)
}

/// 4096 random u64 keys.
fn u64_keys() -> Vec<u64> {
    let mut r = rng(7);
    (0..KEYS).map(|_| r.next_u64()).collect()
}

/// 4096 random 16-byte keys, `customer-0012345` style.
fn str_keys() -> Vec<String> {
    let mut r = rng(8);
    (0..KEYS)
        .map(|_| chring_benches::str_key(r.next_u64()))
        .collect()
}

/// The keys of one lookup group.
#[derive(Clone, Copy)]
pub(crate) enum Keys<'a> {
    U64(&'a [u64]),
    Str(&'a [String]),
}

/// One lookup group at one fleet size: each implementation calls [`Lookups::bench`].
pub(crate) struct Lookups<'a, 'g> {
    g: &'a mut BenchmarkGroup<'g, WallTime>,
    keys: Keys<'a>,
    n: usize,
}

impl<'a> Lookups<'a, '_> {
    pub(crate) fn n(&self) -> usize {
        self.n
    }

    pub(crate) fn is_str(&self) -> bool {
        matches!(self.keys, Keys::Str(_))
    }

    /// Benchmarks `<id>/<n>`: `by_u64` routes a u64 key, `by_str` a string key (only
    /// the one for this group's keys runs). Both return the chosen backend as a
    /// number, `u64::MAX` for none.
    ///
    /// Before timing, one untimed pass checks the answers (every key routed, at
    /// least `n / 2` distinct backends) and picks the sampling: slow impls
    /// (over 2 ms per 4096 keys) get 10 flat samples.
    pub(crate) fn bench<S>(
        &mut self,
        id: &str,
        state: &mut S,
        mut by_u64: impl FnMut(&mut S, u64) -> u64,
        mut by_str: impl FnMut(&mut S, &'a str) -> u64,
    ) {
        let bid = BenchmarkId::new(id, self.n);
        let t = Instant::now();
        let seen: HashSet<u64> = match self.keys {
            Keys::U64(ks) => ks.iter().map(|&k| by_u64(state, k)).collect(),
            Keys::Str(ks) => ks.iter().map(|k| by_str(state, k)).collect(),
        };
        let pass = t.elapsed();
        assert!(
            !seen.contains(&u64::MAX),
            "{id}/{}: a key found no backend",
            self.n
        );
        assert!(
            seen.len() >= self.n.min(KEYS) / 2,
            "{id}/{}: only {} distinct backends",
            self.n,
            seen.len()
        );
        configure(self.g, pass);
        match self.keys {
            Keys::U64(ks) => self.g.bench_function(bid, |b| {
                b.iter(|| {
                    for &k in ks {
                        black_box(by_u64(state, black_box(k)));
                    }
                });
            }),
            Keys::Str(ks) => self.g.bench_function(bid, |b| {
                b.iter(|| {
                    for k in ks {
                        black_box(by_str(state, black_box(k.as_str())));
                    }
                });
            }),
        };
    }
}

/// Sampling for a benchmark whose iteration takes about `pass`: criterion's
/// default linear sampling needs ~1300 iterations at 50 samples, too many for the
/// O(n) lookups at n = 1000 and for the builds that take milliseconds.
pub(crate) fn configure(g: &mut BenchmarkGroup<'_, WallTime>, pass: Duration) {
    if pass > Duration::from_millis(2) {
        g.sampling_mode(SamplingMode::Flat).sample_size(10);
    } else {
        g.sampling_mode(SamplingMode::Auto).sample_size(50);
    }
}

/// `build/<id>/100`: `make()` builds a structure of 100 backends from nothing. The
/// result is dropped inside the timing (freeing is part of the cost).
pub(crate) fn bench_build<T>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    mut make: impl FnMut() -> T,
) {
    let t = Instant::now();
    drop(make());
    configure(g, t.elapsed());
    g.bench_function(BenchmarkId::new(id, chring_benches::N_BUILD), |b| {
        b.iter(&mut make)
    });
}

/// `build/<id>/add-to-100`: `add` one backend to what `setup` returns (a structure
/// of 100 backends, made outside the timing). The result is dropped after it.
pub(crate) fn bench_add<T>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    mut setup: impl FnMut() -> T,
    mut add: impl FnMut(&mut T),
) {
    let mut one = setup();
    let t = Instant::now();
    add(&mut one);
    configure(g, t.elapsed());
    g.bench_function(BenchmarkId::new(id, "add-to-100"), |b| {
        b.iter_batched(
            &mut setup,
            |mut s| {
                add(&mut s);
                s
            },
            BatchSize::LargeInput,
        );
    });
}

/// A `BackendId` as a number, `u64::MAX` for `None`.
pub(crate) fn id(b: Option<chring::BackendId>) -> u64 {
    b.map_or(u64::MAX, |b| u64::from(b.0))
}

fn lookup_group(c: &mut Criterion, name: &str, keys: Keys<'_>) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(KEYS as u64));
    for n in NS {
        let mut l = Lookups { g: &mut g, keys, n };
        baseline::lookups(&mut l);
        ring::lookups(&mut l);
        peers::lookups(&mut l);
        hot::cold_lookups(&mut l);
    }
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let keys = u64_keys();
    lookup_group(c, "lookup", Keys::U64(&keys));
}

fn lookup_str(c: &mut Criterion) {
    let keys = str_keys();
    lookup_group(c, "lookup_str", Keys::Str(&keys));
}

fn build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    baseline::build(&mut g);
    ring::build(&mut g);
    maglev_build::build(&mut g);
    peers::build(&mut g);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = lookup, lookup_str, build, cache::cache, cache_peers::cache_peers, hot::pick, hot::ketama, proto::proto
}
criterion_main!(benches);
