//! The hot paths of issue 11: `pick` against `lookup` at large backend
//! capacities, lookups under cache pressure, and twemproxy ketama pool loads.
//!
//! - `pick/chring-ring-lookup/<B>` and `pick/chring-ring-pick/<B>`: a
//!   `Ring<B, 100 x B, I>` holding `B` backends of weight 1 (100 points each,
//!   the ring's full capacity), all up, for `B` = 8, 1024, 16384. `lookup` is
//!   [`Ring::lookup`] (health ignored), `pick` is `Strategy::pick` (what a
//!   balancer calls: [`Ring::pick`]). 4096 u64 keys per iteration,
//!   hashed inside the loop. `I` is a power of two `>= 100 x B`; the ring uses
//!   as many entries as its points need.
//! - `lookup/chring-ring-cold/100`, `lookup/pingora-ketama-cold/100` and
//!   `lookup/stream-only-cold/100` (in the `lookup` group, u64 keys, n = 100):
//!   before each lookup, the loop reads the next 1 KiB of a 32 MiB buffer
//!   (sequentially, wrapping), so the ring competes for L1/L2 with a streaming
//!   neighbour, as it does next to another process. `stream-only-cold` does the
//!   same reads and answers `key % 100` instead of a lookup: subtract it from the
//!   other two to get the lookup's cost under pressure.
//! - `ketama/chring-twemproxy-bulk/<n>`: `Ketama::add_many` of `n` servers
//!   (weight 1, `fnv1a_64`) into an empty pool, `n` = 128 and 1024 (one
//!   continuum build); `ketama/chring-twemproxy-add/128`: the same pool from 128
//!   `Ketama::add` calls (one continuum build each, what every add costs).

use std::hint::black_box;
use std::time::Instant;

use chring::compat::twemproxy::{Ketama, KeyHash};
use chring::{Ring, hash_u64};
use chring_benches::backend_name;
use criterion::{BenchmarkId, Criterion, Throughput};

use crate::{Keys, Lookups, fleet, id};

/// Builds on a thread with a large stack: `Box::new` of a multi-megabyte ring
/// may be built on the stack first.
fn big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(512 << 20)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("build thread")
}

fn pick_at<const B: usize, const P: usize, const I: usize>(l: &mut Lookups<'_, '_>) {
    let names = fleet::names(B);
    let mut ring: Box<Ring<B, P, I>> = big_stack(move || fleet::ring_bulk::<B, P, I>(&names));
    l.bench(
        "chring-ring-lookup",
        &mut ring,
        |r, k| id(r.lookup(hash_u64(k))),
        |r, k| id(r.lookup(chring::hash(k.as_bytes()))),
    );
    l.bench(
        "chring-ring-pick",
        &mut ring,
        |r, k| id(r.pick(hash_u64(k))),
        |r, k| id(r.pick(chring::hash(k.as_bytes()))),
    );
}

/// The `pick` group.
pub(crate) fn pick(c: &mut Criterion) {
    let keys = crate::u64_keys();
    let mut g = c.benchmark_group("pick");
    g.throughput(Throughput::Elements(crate::KEYS as u64));
    let keys = Keys::U64(&keys);
    pick_at::<8, 800, 1024>(&mut Lookups {
        g: &mut g,
        keys,
        n: 8,
    });
    pick_at::<1024, 102_400, 131_072>(&mut Lookups {
        g: &mut g,
        keys,
        n: 1024,
    });
    pick_at::<16_384, 1_638_400, 2_097_152>(&mut Lookups {
        g: &mut g,
        keys,
        n: 16_384,
    });
    g.finish();
}

/// A 32 MiB buffer read 1 KiB at a time, sequentially, wrapping.
struct Stream {
    buf: Vec<u64>,
    at: usize,
}

/// u64 words read before each lookup (1 KiB: 16 cache lines).
const STREAM_WORDS: usize = 128;

impl Stream {
    fn new() -> Self {
        let buf: Vec<u64> = (0..(32usize << 20) / 8).map(|i| i as u64).collect();
        Self { buf, at: 0 }
    }

    #[inline]
    fn touch(&mut self) -> u64 {
        let end = self.at + STREAM_WORDS;
        let s = self.buf[self.at..end].iter().fold(0u64, |a, &x| a ^ x);
        self.at = if end >= self.buf.len() { 0 } else { end };
        black_box(s)
    }
}

/// The cold lookups (called for the `lookup` group at n = 100 with u64 keys).
pub(crate) fn cold_lookups(l: &mut Lookups<'_, '_>) {
    if l.n() != 100 || l.is_str() {
        return;
    }
    let names = fleet::names(100);
    let mut s = (fleet::ring::<128, 12_800, 65_536>(&names), Stream::new());
    l.bench(
        "chring-ring-cold",
        &mut s,
        |(r, st), k| {
            st.touch();
            id(r.lookup(hash_u64(k)))
        },
        |_, _| unreachable!("u64 keys only"),
    );
    let mut s = (fleet::pingora(&fleet::pingora_buckets(100)), Stream::new());
    l.bench(
        "pingora-ketama-cold",
        &mut s,
        |(c, st), k| {
            st.touch();
            crate::peers::addr(c.node(&k.to_le_bytes()))
        },
        |_, _| unreachable!("u64 keys only"),
    );
    let mut st = Stream::new();
    l.bench(
        "stream-only-cold",
        &mut st,
        |st, k| {
            st.touch();
            k % 100
        },
        |_, _| unreachable!("u64 keys only"),
    );
}

/// Server identities `0..n`.
fn identities(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| backend_name(i).into_bytes()).collect()
}

type Pool = Ketama<1024, { 160 * 1024 }, 64>;

/// The `ketama` group.
pub(crate) fn ketama(c: &mut Criterion) {
    let mut g = c.benchmark_group("ketama");
    for n in [128usize, 1024] {
        let names = identities(n);
        let servers: Vec<(&[u8], u32)> = names.iter().map(|n| (n.as_slice(), 1)).collect();
        let bulk = || {
            let mut pool: Box<Pool> = Box::new(Ketama::new(KeyHash::Fnv1a64));
            pool.add_many(&servers).expect("add_many");
            assert_eq!(pool.points().len(), 160 * servers.len());
            pool
        };
        let t = Instant::now();
        drop(bulk());
        crate::configure(&mut g, t.elapsed());
        g.bench_function(BenchmarkId::new("chring-twemproxy-bulk", n), |b| {
            b.iter(bulk)
        });
        if n == 128 {
            let one_by_one = || {
                let mut pool: Box<Pool> = Box::new(Ketama::new(KeyHash::Fnv1a64));
                for &(name, w) in &servers {
                    pool.add(name, w).expect("add");
                }
                pool
            };
            let t = Instant::now();
            drop(one_by_one());
            crate::configure(&mut g, t.elapsed());
            g.bench_function(BenchmarkId::new("chring-twemproxy-add", n), |b| {
                b.iter(one_by_one)
            });
        }
    }
    g.finish();
}
