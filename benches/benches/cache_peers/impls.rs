//! The caches of the `cache_*` groups behind one small trait, and the seeded key
//! workload they share. Self-contained (chring, the peer crates and `rand_pcg`
//! only) so that `benches/tests/cache_peers.rs` checks these very adapters.
//!
//! | id | structure | key hashing |
//! | --- | --- | --- |
//! | `chring` | `TtlCache<u64, u64, N, Ix>` (`Ix = u16` at 1024, `u32` at 65536): `N` chained buckets, LRU + expiry lists | its own seeded hash (folded 64x64->128 multiply per key word, as foldhash) |
//! | `schnellru` | `LruMap<u64, u64, ByLength>`: SwissTable + intrusive list | ahash, random seed (default `RandomState`) |
//! | `lru` | `LruCache<u64, u64>`: hashbrown map of boxed list nodes | foldhash (hashbrown's default) |
//! | `hashlink` | `LruCache<u64, u64>`: `LinkedHashMap` | foldhash (hashbrown's default) |
//! | `quick_cache` | `unsync::Cache<u64, u64>`: S3-FIFO-like CLOCK (not strict LRU) | foldhash (its default) |
//! | `uluru` | `LRUCache<(u64, u64), N>`: an array-backed linked list, linear search | none (equality scan) |
//! | `const-lru` | `ConstLru<u64, u64, N, Ix>`: sorted index, binary search | none (`Ord`) |
//!
//! uluru has no keyed insert (`insert` never looks for the key), so its `insert`
//! here is `find` then `insert`: what a key-value user has to write to keep keys
//! unique. Its lookups are linear (a walk of up to `N` links), so it runs at
//! N = 1024 only: at 65536 a miss walks 65,536 entries (tens of µs; an insert-evict
//! sample would take minutes).

use std::collections::HashSet;
use std::num::NonZeroUsize;

use chring::time::MAX_STEP;
use chring::{CacheIndex, Duration, Instant, TtlCache};
use const_lru::ConstLru;
use num_traits::{PrimInt, Unsigned};
use rand_core::{Rng, SeedableRng};

// ----- chring's calls, in one place -------------------------------------------
//
// The only calls into TtlCache: a seeded cache, and each operation as a caller
// with a free-running timer makes it: `advance(now)`, then the infallible call.

/// A long TTL: nothing expires during a benchmark run (the adapter asserts it).
const CHRING_TTL: Duration = Duration(MAX_STEP);

/// The bucket-hash seed (a device takes it from its TRNG; any value will do here).
const CHRING_SEED: u64 = 0x5eed_cafe_f00d_d00d;

/// An empty chring cache on the heap (65536 entries are ~3 MiB).
fn chring_new<const N: usize, Ix: CacheIndex>() -> Box<TtlCache<u64, u64, N, Ix>> {
    Box::new(
        TtlCache::new(CHRING_TTL)
            .expect("valid ttl")
            .with_seed(CHRING_SEED),
    )
}

/// `get` at `now`; the clock only moves forward here, so an error is a bug.
#[inline]
fn chring_get<const N: usize, Ix: CacheIndex>(
    c: &mut TtlCache<u64, u64, N, Ix>,
    k: u64,
    now: Instant,
) -> Option<u64> {
    c.advance(now).expect("forward clock");
    c.get(&k).copied()
}

/// `insert` at `now`.
#[inline]
fn chring_insert<const N: usize, Ix: CacheIndex>(
    c: &mut TtlCache<u64, u64, N, Ix>,
    k: u64,
    v: u64,
    now: Instant,
) {
    c.advance(now).expect("forward clock");
    let _ = c.insert(k, v);
}

// ----- the adapters -------------------------------------------------------------

/// A `u64 -> u64` cache of capacity [`Self::N`] as the benchmark drives it.
pub(crate) trait PeerCache {
    /// The `<impl>` part of the benchmark id.
    const ID: &'static str;
    /// Capacity.
    const N: usize;
    /// Whether eviction is strict LRU (everything but `quick_cache`).
    const STRICT_LRU: bool = true;
    /// An empty cache.
    fn empty() -> Self;
    /// A lookup that counts as a use (makes the entry most recently used).
    fn get(&mut self, k: u64) -> Option<u64>;
    /// Inserts or replaces; evicts when full and `k` is new.
    fn insert(&mut self, k: u64, v: u64);
    /// A lookup that changes nothing (for the untimed checks).
    fn peek(&self, k: u64) -> Option<u64>;
    /// Entries stored.
    fn len(&self) -> usize;
    /// Called after a benchmark: panics if the run was not what it claims (chring:
    /// an entry expired, or the clock did not move one tick per call).
    fn check(&self) {}
}

/// chring's `TtlCache`. Its clock (`now`) advances one tick per call, as a caller
/// reading a free-running timer would see it; the TTL is [`MAX_STEP`] ticks, so no
/// entry expires within the 2^31 calls a run would need for that.
pub(crate) struct Chring<const N: usize, Ix: CacheIndex> {
    c: Box<TtlCache<u64, u64, N, Ix>>,
    now: u32,
}

impl<const N: usize, Ix: CacheIndex> Chring<N, Ix> {
    #[inline]
    fn tick(&mut self) -> Instant {
        self.now = self.now.wrapping_add(1);
        Instant(self.now)
    }
}

impl<const N: usize, Ix: CacheIndex> PeerCache for Chring<N, Ix> {
    const ID: &'static str = "chring";
    const N: usize = N;
    fn empty() -> Self {
        Self {
            c: chring_new(),
            now: 0,
        }
    }
    #[inline]
    fn get(&mut self, k: u64) -> Option<u64> {
        let now = self.tick();
        chring_get(&mut self.c, k, now)
    }
    #[inline]
    fn insert(&mut self, k: u64, v: u64) {
        let now = self.tick();
        chring_insert(&mut self.c, k, v, now);
    }
    fn peek(&self, k: u64) -> Option<u64> {
        self.c.peek(&k).copied()
    }
    fn len(&self) -> usize {
        self.c.len()
    }
    fn check(&self) {
        let s = self.c.stats();
        assert_eq!(s.expirations, 0, "chring: an entry expired");
        let calls = s.hits + s.misses + s.insertions;
        assert_eq!(calls as u32, self.now, "chring: not one tick per call");
    }
}

/// `schnellru::LruMap` limited by length, default hasher.
pub(crate) struct Schnellru<const N: usize>(schnellru::LruMap<u64, u64>);

impl<const N: usize> PeerCache for Schnellru<N> {
    const ID: &'static str = "schnellru";
    const N: usize = N;
    fn empty() -> Self {
        let n = u32::try_from(N).expect("N fits u32");
        Self(schnellru::LruMap::new(schnellru::ByLength::new(n)))
    }
    #[inline]
    fn get(&mut self, k: u64) -> Option<u64> {
        self.0.get(&k).copied()
    }
    #[inline]
    fn insert(&mut self, k: u64, v: u64) {
        self.0.insert(k, v);
    }
    fn peek(&self, k: u64) -> Option<u64> {
        self.0.peek(&k).copied()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// `lru::LruCache`, default hasher.
pub(crate) struct Lru<const N: usize>(lru::LruCache<u64, u64>);

impl<const N: usize> PeerCache for Lru<N> {
    const ID: &'static str = "lru";
    const N: usize = N;
    fn empty() -> Self {
        Self(lru::LruCache::new(NonZeroUsize::new(N).expect("N > 0")))
    }
    #[inline]
    fn get(&mut self, k: u64) -> Option<u64> {
        self.0.get(&k).copied()
    }
    #[inline]
    fn insert(&mut self, k: u64, v: u64) {
        self.0.put(k, v);
    }
    fn peek(&self, k: u64) -> Option<u64> {
        self.0.peek(&k).copied()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// `hashlink::LruCache`, default hasher.
pub(crate) struct Hashlink<const N: usize>(hashlink::LruCache<u64, u64>);

impl<const N: usize> PeerCache for Hashlink<N> {
    const ID: &'static str = "hashlink";
    const N: usize = N;
    fn empty() -> Self {
        Self(hashlink::LruCache::new(N))
    }
    #[inline]
    fn get(&mut self, k: u64) -> Option<u64> {
        self.0.get(&k).copied()
    }
    #[inline]
    fn insert(&mut self, k: u64, v: u64) {
        self.0.insert(k, v);
    }
    fn peek(&self, k: u64) -> Option<u64> {
        self.0.peek(&k).copied()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// `quick_cache::unsync::Cache` holding `N` items, default hasher. Not strict
/// LRU: a hit sets a reference bit, eviction runs a CLOCK over hot and cold queues.
pub(crate) struct QuickCache<const N: usize>(quick_cache::unsync::Cache<u64, u64>);

impl<const N: usize> PeerCache for QuickCache<N> {
    const ID: &'static str = "quick_cache";
    const N: usize = N;
    const STRICT_LRU: bool = false;
    fn empty() -> Self {
        Self(quick_cache::unsync::Cache::new(N))
    }
    #[inline]
    fn get(&mut self, k: u64) -> Option<u64> {
        self.0.get(&k).copied()
    }
    #[inline]
    fn insert(&mut self, k: u64, v: u64) {
        self.0.insert(k, v);
    }
    fn peek(&self, k: u64) -> Option<u64> {
        self.0.peek(&k).copied()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// `uluru::LRUCache` of `(key, value)` pairs: no allocator, linear search.
pub(crate) struct Uluru<const N: usize>(uluru::LRUCache<(u64, u64), N>);

impl<const N: usize> PeerCache for Uluru<N> {
    const ID: &'static str = "uluru";
    const N: usize = N;
    fn empty() -> Self {
        Self(uluru::LRUCache::new())
    }
    #[inline]
    fn get(&mut self, k: u64) -> Option<u64> {
        self.0.find(|e| e.0 == k).map(|e| e.1)
    }
    #[inline]
    fn insert(&mut self, k: u64, v: u64) {
        match self.0.find(|e| e.0 == k) {
            Some(e) => e.1 = v,
            None => {
                self.0.insert((k, v));
            }
        }
    }
    fn peek(&self, k: u64) -> Option<u64> {
        self.0.iter().find(|e| e.0 == k).map(|e| e.1)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// `const_lru::ConstLru` with index type `I`: no allocator, a sorted key index
/// searched by binary search (an insert shifts it: *O*(N)).
pub(crate) struct ConstLruPeer<const N: usize, I: PrimInt + Unsigned>(
    Box<ConstLru<u64, u64, N, I>>,
);

impl<const N: usize, I: PrimInt + Unsigned> PeerCache for ConstLruPeer<N, I> {
    const ID: &'static str = "const-lru";
    const N: usize = N;
    fn empty() -> Self {
        // `ConstLru::new` builds on the stack (1.8 MiB at 65536); the crate's
        // `init_at_alloc` initialises it in place instead.
        let mut b = Box::<ConstLru<u64, u64, N, I>>::new_uninit();
        // SAFETY: `b` is a fresh, uninitialised allocation of the right layout, as
        // `init_at_alloc` requires; it initialises every field (the crate's own
        // example does the same with `alloc` + `Box::from_raw`).
        unsafe { ConstLru::init_at_alloc(b.as_mut_ptr()) };
        // SAFETY: initialised just above.
        Self(unsafe { b.assume_init() })
    }
    #[inline]
    fn get(&mut self, k: u64) -> Option<u64> {
        self.0.get(&k).copied()
    }
    #[inline]
    fn insert(&mut self, k: u64, v: u64) {
        self.0.insert(k, v);
    }
    fn peek(&self, k: u64) -> Option<u64> {
        self.0.get_untouched(&k).copied()
    }
    fn len(&self) -> usize {
        self.0.len().to_usize().unwrap_or(usize::MAX)
    }
}

// ----- the workload ---------------------------------------------------------------

/// Keys of one capacity `n`, all distinct u64s from a seeded PCG stream.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    /// The `n` keys a full cache holds (inserted in this order).
    pub(crate) present: Vec<u64>,
    /// `present` repeated to `max(n, ops)` keys and shuffled: the hit stream.
    pub(crate) hits: Vec<u64>,
    /// `ops` keys that are in no other list: the miss stream.
    pub(crate) misses: Vec<u64>,
    /// `2 x max(n, ops)` new keys: the insert stream. A strict LRU of `n` entries
    /// has evicted each one before the stream wraps round to it again.
    pub(crate) fresh: Vec<u64>,
}

impl Workload {
    /// The workload for capacity `n` with `ops` operations per iteration; both
    /// powers of two, so a cursor into a stream wraps with a mask.
    pub(crate) fn new(n: usize, ops: usize) -> Self {
        assert!(n.is_power_of_two() && ops.is_power_of_two());
        let mut r = rand_pcg::Pcg64Mcg::seed_from_u64(0xC0FF_EE00 ^ n as u64);
        let stream = n.max(ops);
        let mut seen = HashSet::new();
        let mut draw = |count: usize| -> Vec<u64> {
            let mut v = Vec::with_capacity(count);
            while v.len() < count {
                let k = r.next_u64();
                if seen.insert(k) {
                    v.push(k);
                }
            }
            v
        };
        let present = draw(n);
        let misses = draw(ops);
        let fresh = draw(2 * stream);
        let mut hits: Vec<u64> = present.iter().copied().cycle().take(stream).collect();
        // Fisher-Yates, so the branch predictor and prefetcher cannot learn the order.
        let mut r = rand_pcg::Pcg64Mcg::seed_from_u64(1);
        for i in (1..hits.len()).rev() {
            hits.swap(i, (r.next_u64() % (i as u64 + 1)) as usize);
        }
        Self {
            present,
            hits,
            misses,
            fresh,
        }
    }

    /// The value stored under `k`.
    pub(crate) fn value(k: u64) -> u64 {
        !k
    }

    /// A cache of capacity `C::N` holding exactly `present` (inserted in order).
    pub(crate) fn filled<C: PeerCache>(&self) -> C {
        let mut c = C::empty();
        for &k in &self.present {
            c.insert(k, Self::value(k));
        }
        c
    }
}
