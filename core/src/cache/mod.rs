//! A fixed-capacity TTL + LRU cache that doubles as an L4 flow table.
//!
//! [`TtlCache`] plays two roles:
//!
//! - **Cache-tier server** ([`TtlCache::new`]): an entry lives `ttl` ticks from its
//!   last *write*; a read hit does not extend it (memcached / CDN semantics).
//! - **L4 balancer flow table** ([`TtlCache::new_idle`]): an entry lives until it has
//!   been *idle* for `ttl` ticks; every hit refreshes it (conntrack semantics), so a
//!   busy flow never times out while a silent one is reclaimed.
//!
//! # Time: one fallible `advance`, infallible operations
//!
//! The cache never reads a clock. It keeps its own clock, the tick of the last
//! accepted [`advance`](TtlCache::advance), and the caller moves it with
//! `advance(now)`, where `now` is an [`Instant`]: a 32-bit tick counter that may
//! wrap. [`get`](TtlCache::get), [`insert`](TtlCache::insert),
//! [`remove`](TtlCache::remove) and the rest then work at the cache's clock and
//! **cannot fail** (the shape of `embassy-time`'s monotonic clock feeding
//! infallible maps). Every stored entry is alive at the cache's clock: `advance`
//! drops the expired ones.
//!
//! `advance(now)` reads `d = now - clock` (wrapping, modulo 2^32):
//!
//! | `now` | read as | what happens |
//! | --- | --- | --- |
//! | first call, or first after [`clear`](TtlCache::clear) | the start of time | the clock is set to `now` (entries stored before keep their age 0) |
//! | `d < 2^31` | forward by `d` ticks | the clock moves to `now`; expired entries are purged. Exact across the `u32` wrap |
//! | `d >= 2^31` and `clock - now >= ttl` | a gap longer than every TTL (`>= 2^31` ticks) | **everything expired**: every entry is dropped (counted in [`CacheStats::expirations`]) and the clock resynchronises to `now` |
//! | `d >= 2^31` and `clock - now < ttl` | backwards by `clock - now` ticks (1 to `ttl - 1`) | [`ClockError::Backwards`]; **nothing changes**, and the cache keeps working at its own clock |
//!
//! So the only error is a genuine small step back: less than one TTL behind the
//! cache's clock, within the past half of the wrapping circle. It never locks the
//! cache: the operations after it still work (at the cache's clock), and a later
//! `advance` is accepted as soon as `now` is no longer within `ttl - 1` ticks
//! behind the clock. With a monotonic wrapping clock:
//!
//! - consecutive `advance`s less than 2^31 ticks apart are exact;
//! - a quiet period of 2^31 ticks or more reads either as "everything expired"
//!   (exact, since every TTL is shorter) or, when the counter has almost come
//!   round again (the gap is within `ttl - 1` ticks below a multiple of 2^32), as
//!   a small step back: that `advance` is refused, entries may outlive their TTL
//!   until the counter passes the clock (at most `ttl - 1` ticks), and no call is
//!   refused work. A gap of a whole multiple of 2^32 ticks is invisible to any
//!   32-bit counter: entries may outlive their TTL by that gap.
//!
//! [`clear`](TtlCache::clear) forgets the clock: the next `advance` accepts any
//! `now`.
//!
//! # Eviction policy and cost
//!
//! Entries are dropped **expired first, then least recently used**:
//!
//! - [`advance`](TtlCache::advance) purges every expired entry, oldest first, from
//!   the head of an expiry-ordered list. Each entry is purged at most once, so the
//!   purge is amortised *O*(1) per operation (counted in
//!   [`CacheStats::expirations`]).
//! - If the cache is full when a new key is inserted, the least recently used
//!   entry (by last hit or write) is evicted in *O*(1) and handed back in
//!   [`Inserted::Evicted`] (counted in [`CacheStats::evictions`]).
//! - Lookups hash the key once into `N` chained buckets: *O*(1) expected.
//!
//! Nothing allocates and nothing panics: storage is inline and sized by `N`, and the
//! constructors are `const fn`, so a cache can live in a `static`.
//!
//! # Hash flooding and the seed
//!
//! The bucket of a key is a **seeded** hash: a folded 64 x 64 -> 128-bit multiply
//! per 64-bit word of the key (the construction of `foldhash`, hashbrown's default
//! hasher), with both multiplicands derived from a 64-bit seed. Keys crafted to
//! share a bucket under one seed spread over the buckets under another, so an
//! attacker who cannot learn the seed cannot build long chains.
//! [`new`](TtlCache::new) and the other constructors use the fixed, public
//! [`DEFAULT_SEED`]: fine for trusted keys (a simulator, a cache tier keyed by
//! its own ids), but **a flow table facing untrusted keys (packets) must be
//! seeded** with [`with_seed`](TtlCache::with_seed) (`const`) or
//! [`set_seed`](TtlCache::set_seed), from a TRNG, a unique device id mixed with a
//! boot counter, or the OS RNG. The seed only places entries in buckets: results
//! never depend on it. It is a hash-flooding defence, not a keyed MAC: an attacker
//! who can time lookups for long enough may still learn something about it.
//!
//! # Memory
//!
//! Storage is struct-of-arrays, so there is no per-entry padding. Each of the `N`
//! slots costs
//!
//! `size_of::<K>() + size_of::<V>() + 4 + 6 * size_of::<Ix>()` bytes
//!
//! (key, value, a `u32` stamp, five list links and one bucket head), for example
//! 26 bytes for `K = u64, V = u16, Ix = u16` and 38 bytes with `Ix = u32`; see
//! [`TtlCache::bytes_per_entry`]. The index type `Ix` ([`u16`] or [`u32`]) bounds
//! the capacity: `N < 65535` with `u16`.
//!
//! # Example
//!
//! ```
//! use chring::{Duration, Inserted, Instant, TtlCache};
//!
//! // A flow table: 64 flows, u16 links, a flow dies after 1000 idle ticks, and a
//! // seed (on a device: from its TRNG) so crafted flow keys cannot flood a bucket.
//! let mut flows: TtlCache<u64, u16, 64, u16> =
//!     TtlCache::new_idle(Duration::from_ticks(1000))?.with_seed(0x5eed_1234_abcd_0042);
//! let flow = 0x0a00_0001_01bb_c350; // e.g. a hash of the 5-tuple
//! flows.advance(Instant(0))?;
//! assert_eq!(flows.insert(flow, 3), Inserted::New);
//! flows.advance(Instant(999))?;
//! assert_eq!(flows.get(&flow), Some(&3)); // hit: idle timer restarts
//! flows.advance(Instant(1998))?;
//! assert_eq!(flows.get(&flow), Some(&3));
//! assert_eq!(flows.advance(Instant(2998))?, 1); // 1000 ticks idle: purged
//! assert_eq!(flows.get(&flow), None);
//! // A small step back is refused and changes nothing; the table still works.
//! assert!(flows.advance(Instant(2990)).is_err());
//! assert_eq!(flows.insert(flow, 4), Inserted::New);
//! // A month of silence (2^31 ticks or more) just means everything expired.
//! assert_eq!(flows.advance(Instant(2998u32.wrapping_add(3_000_000_000)))?, 1);
//!
//! // A cache-tier server: entries live 100 ticks from their write.
//! let mut cache: TtlCache<u32, u32, 2> = TtlCache::new(Duration::from_ticks(100))?;
//! cache.advance(Instant(0))?;
//! cache.insert(1, 10);
//! cache.insert(2, 20);
//! assert_eq!(cache.get(&1), Some(&10)); // 2 is now least recently used
//! assert_eq!(cache.insert(3, 30), Inserted::Evicted { key: 2, value: 20 });
//! cache.advance(Instant(100))?;
//! assert_eq!(cache.get(&1), None); // written at 0: expired at 100
//! # Ok::<(), chring::Error>(())
//! ```

use core::fmt;
use core::hash::Hash;
use core::mem;

use heapless::Vec;

use crate::time::{ClockError, Duration, Instant, MAX_STEP};

mod hash;
mod index;
mod list;

pub use self::hash::DEFAULT_SEED;
use self::hash::hash_keys;
pub use self::index::CacheIndex;
#[cfg(test)]
use self::list::decode;
use self::list::{CHAIN, EXP, HEAD, LRU, TAIL, next_slot, prev_slot};

/// A rejected cache configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CacheConfigError {
    /// The TTL is zero ticks: every entry would be expired on arrival.
    ZeroTtl,
    /// The TTL exceeds [`MAX_STEP`] (2^31 - 1 ticks), so ages could not be told
    /// apart across the wrap of the 32-bit tick counter.
    TtlTooLong,
    /// A runtime limit outside `1..=N` ([`TtlCache::set_limit`]).
    BadLimit,
}

impl fmt::Display for CacheConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheConfigError::ZeroTtl => f.write_str("cache TTL must be at least one tick"),
            CacheConfigError::TtlTooLong => {
                f.write_str("cache TTL must be at most 2^31 - 1 ticks (MAX_STEP)")
            }
            CacheConfigError::BadLimit => {
                f.write_str("cache limit must be between 1 and the compile-time capacity N")
            }
        }
    }
}

impl core::error::Error for CacheConfigError {}

/// Counters kept by a [`TtlCache`] (all saturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CacheStats {
    /// [`get`](TtlCache::get) / [`get_mut`](TtlCache::get_mut) calls that found a
    /// live entry.
    pub hits: u64,
    /// [`get`](TtlCache::get) / [`get_mut`](TtlCache::get_mut) calls that did not.
    pub misses: u64,
    /// Successful [`insert`](TtlCache::insert)s, new keys and replacements alike.
    pub insertions: u64,
    /// Live entries evicted (least recently used first) to make room for a new key.
    pub evictions: u64,
    /// Entries dropped because their TTL ran out.
    pub expirations: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or `0.0` before the first lookup.
    #[must_use]
    pub fn hit_rate(&self) -> f64 {
        let lookups = self.hits.saturating_add(self.misses);
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

/// What a successful [`TtlCache::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Inserted<K, V> {
    /// The key was absent (or expired) and there was room.
    New,
    /// The key was present and alive: its value is handed back, and the entry now
    /// holds the new value with a fresh stamp and is the most recently used. The
    /// stored key is kept (the key passed in is dropped).
    Replaced(V),
    /// The key was absent and the cache was full even after purging expired
    /// entries: the least recently used entry was removed and is handed back.
    Evicted {
        /// The evicted entry's key.
        key: K,
        /// The evicted entry's value.
        value: V,
    },
}

/// `Vec::swap_remove` without a panic path: `None` only if `v` is empty.
#[inline]
fn swap_remove<T, const N: usize>(v: &mut Vec<T, N>, i: usize) -> Option<T> {
    let last = v.pop()?;
    match v.get_mut(i) {
        Some(slot) => Some(mem::replace(slot, last)),
        None => Some(last),
    }
}

/// A fixed-capacity cache of at most `N` entries with a TTL and LRU eviction; see
/// the [module docs](self) for the two modes, the clock, the seed, the eviction
/// policy and the memory cost.
///
/// `Ix` is the link type ([`u16`] or [`u32`], default [`u32`]); `N` must be at
/// least 1 and below `Ix::MAX` (checked at compile time by the constructors):
///
/// ```compile_fail
/// # use chring::{Duration, TtlCache};
/// let c = TtlCache::<u32, u32, 0>::new(Duration(1)); // N = 0
/// ```
///
/// ```compile_fail
/// # use chring::{Duration, TtlCache};
/// let c = TtlCache::<u8, u8, 65535, u16>::new(Duration(1)); // N too large for u16
/// ```
///
/// Constructors are `const fn`. A `const` initialiser cannot unwrap the `Result`
/// of [`new`](Self::new) on stable Rust (the cache has drop glue), so `static`s use
/// [`new_const`](Self::new_const) / [`new_idle_const`](Self::new_idle_const), which
/// check the TTL at compile time instead:
///
/// ```
/// use core::cell::RefCell;
/// use chring::{Instant, TtlCache};
///
/// // 1024 flows, u16 links, 30 000 idle ticks. On a target, wrap it in e.g. a
/// // `critical_section::Mutex` instead of a thread-local, and seed it at boot
/// // from the TRNG with `set_seed`.
/// std::thread_local! {
///     static FLOWS: RefCell<TtlCache<u64, u16, 1024, u16>> =
///         const { RefCell::new(TtlCache::new_idle_const::<30_000>()) };
/// }
/// static EMPTY: TtlCache<u64, u16, 1024, u16> = TtlCache::new_const::<100>();
/// assert_eq!(EMPTY.capacity(), 1024);
/// FLOWS.with_borrow_mut(|f| {
///     f.set_seed(0x1234_5678_9abc_def0);
///     f.advance(Instant(0))?;
///     f.insert(7, 1);
///     Ok::<(), chring::ClockError>(())
/// })?;
/// # Ok::<(), chring::Error>(())
/// ```
///
/// ```compile_fail
/// # use chring::TtlCache;
/// static C: TtlCache<u32, u32, 8> = TtlCache::new_const::<0>(); // zero TTL
/// ```
#[derive(Clone)]
pub struct TtlCache<K, V, const N: usize, Ix: CacheIndex = u32> {
    keys: Vec<K, N>,
    values: Vec<V, N>,
    /// Tick of the write (or of the last hit, in idle mode).
    stamps: Vec<u32, N>,
    /// `[chain next, LRU prev, LRU next, expiry prev, expiry next]`.
    links: Vec<[Ix; 5], N>,
    /// Head of each bucket's chain.
    buckets: [Ix; N],
    /// `[list][HEAD, TAIL]`: the LRU list runs least to most recently used, the
    /// expiry list oldest to newest stamp.
    ends: [[Ix; 2]; 2],
    ttl: u32,
    /// Runtime capacity, `1..=N` (defaults to `N`).
    limit: usize,
    idle: bool,
    /// Whether `clock` was set by an `advance` since construction or `clear`.
    synced: bool,
    /// The cache's clock: every stored entry is alive at this tick.
    clock: u32,
    seed: u64,
    /// The bucket hash's multiplicands, derived from `seed`.
    hash_keys: [u64; 2],
    stats: CacheStats,
}

impl<K, V, const N: usize, Ix: CacheIndex> TtlCache<K, V, N, Ix> {
    /// A cache whose entries expire `ttl` ticks after their last write; hits do not
    /// extend them. Uses [`DEFAULT_SEED`]: seed it with
    /// [`with_seed`](Self::with_seed) if its keys are untrusted. *O*(`N`) to
    /// initialise the bucket heads; `const`.
    ///
    /// # Errors
    /// [`CacheConfigError::ZeroTtl`] if `ttl` is 0, [`CacheConfigError::TtlTooLong`]
    /// if it exceeds [`MAX_STEP`].
    pub const fn new(ttl: Duration) -> Result<Self, CacheConfigError> {
        Self::with_mode(ttl, false)
    }

    /// A flow table: entries expire after `ttl` ticks without a hit or write; every
    /// hit refreshes them. Uses [`DEFAULT_SEED`]: a flow table whose keys come from
    /// packets must be seeded ([`with_seed`](Self::with_seed)). *O*(`N`) to
    /// initialise the bucket heads; `const`.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub const fn new_idle(ttl: Duration) -> Result<Self, CacheConfigError> {
        Self::with_mode(ttl, true)
    }

    /// As [`new`](Self::new), with the TTL (in ticks) checked at compile time, so it
    /// is infallible: for `static` initialisers, which cannot unwrap a `Result`
    /// holding a cache. A `TTL` of 0 or above [`MAX_STEP`] fails to compile.
    /// *O*(`N`); `const`.
    #[must_use]
    pub const fn new_const<const TTL: u32>() -> Self {
        const {
            assert!(
                TTL >= 1 && TTL <= MAX_STEP,
                "TtlCache TTL must be in 1..=MAX_STEP"
            );
        }
        Self::build(TTL, false)
    }

    /// As [`new_idle`](Self::new_idle), with the TTL checked at compile time; see
    /// [`new_const`](Self::new_const).
    #[must_use]
    pub const fn new_idle_const<const TTL: u32>() -> Self {
        const {
            assert!(
                TTL >= 1 && TTL <= MAX_STEP,
                "TtlCache TTL must be in 1..=MAX_STEP"
            );
        }
        Self::build(TTL, true)
    }

    /// The bucket hash's seed. *O*(1).
    #[must_use]
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    const fn with_mode(ttl: Duration, idle: bool) -> Result<Self, CacheConfigError> {
        if ttl.ticks() == 0 {
            return Err(CacheConfigError::ZeroTtl);
        }
        if ttl.ticks() > MAX_STEP {
            return Err(CacheConfigError::TtlTooLong);
        }
        Ok(Self::build(ttl.ticks(), idle))
    }

    /// The empty cache; `ttl` is already validated.
    const fn build(ttl: u32, idle: bool) -> Self {
        const {
            assert!(
                N >= 1 && N < Ix::MAX_USIZE,
                "TtlCache capacity N must be at least 1 and below the index type's MAX"
            );
        }
        Self {
            keys: Vec::new(),
            values: Vec::new(),
            stamps: Vec::new(),
            links: Vec::new(),
            buckets: [Ix::NIL; N],
            ends: [[Ix::NIL; 2]; 2],
            ttl,
            limit: N,
            idle,
            synced: false,
            clock: 0,
            seed: DEFAULT_SEED,
            hash_keys: hash_keys(DEFAULT_SEED),
            stats: CacheStats {
                hits: 0,
                misses: 0,
                insertions: 0,
                evictions: 0,
                expirations: 0,
            },
        }
    }

    /// Bytes of storage per slot: `size_of::<K>() + size_of::<V>() + 4 + 6 *
    /// size_of::<Ix>()` (key, value, stamp, five links, one bucket head). The whole
    /// cache is `N` times this plus a few words.
    ///
    /// ```
    /// use chring::TtlCache;
    /// assert_eq!(TtlCache::<u64, u16, 1, u16>::bytes_per_entry(), 26);
    /// assert_eq!(TtlCache::<u64, u16, 1, u32>::bytes_per_entry(), 38);
    /// ```
    #[must_use]
    pub const fn bytes_per_entry() -> usize {
        mem::size_of::<K>() + mem::size_of::<V>() + 4 + 6 * mem::size_of::<Ix>()
    }

    /// The capacity, `N`. *O*(1).
    #[must_use]
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The runtime capacity: at most this many entries are kept (`N` unless
    /// lowered with [`set_limit`](Self::set_limit)). *O*(1).
    #[must_use]
    pub const fn limit(&self) -> usize {
        self.limit
    }

    /// Number of entries stored, all alive at the cache's clock. *O*(1).
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no entry is stored. *O*(1).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether [`limit`](Self::limit) entries are stored (the next insert of a
    /// new key evicts, unless an [`advance`](Self::advance) expires some first).
    /// *O*(1).
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.keys.len() >= self.limit
    }

    /// The TTL. *O*(1).
    #[must_use]
    pub const fn ttl(&self) -> Duration {
        Duration::from_ticks(self.ttl)
    }

    /// Whether this is an idle-timeout cache ([`new_idle`](Self::new_idle)): hits
    /// refresh entries. *O*(1).
    #[must_use]
    pub const fn is_idle(&self) -> bool {
        self.idle
    }

    /// The cache's clock: the `now` of the last accepted
    /// [`advance`](Self::advance), or `None` before the first one (or after
    /// [`clear`](Self::clear)). *O*(1).
    #[must_use]
    pub const fn now(&self) -> Option<Instant> {
        if self.synced {
            Some(Instant(self.clock))
        } else {
            None
        }
    }

    /// The counters. *O*(1).
    #[must_use]
    pub const fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Zeroes the counters. *O*(1).
    pub fn reset_stats(&mut self) {
        self.stats = CacheStats::default();
    }

    /// Removes every entry (not counted in the statistics, which are kept) and
    /// forgets the clock: the next [`advance`](Self::advance) accepts any `now`.
    /// The seed and the limit are kept. *O*(`N`).
    pub fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
        self.stamps.clear();
        self.links.clear();
        self.buckets = [Ix::NIL; N];
        self.ends = [[Ix::NIL; 2]; 2];
        self.synced = false;
    }

    /// The stored entries (all alive at the cache's clock), in unspecified order.
    /// *O*(1) per item.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&K, &V)> + DoubleEndedIterator {
        self.keys.iter().zip(self.values.iter())
    }

    /// Whether entry `i` is alive at the cache's clock.
    #[inline]
    fn alive(&self, i: usize) -> bool {
        match self.stamps.get(i) {
            Some(&s) => self.clock.wrapping_sub(s) < self.ttl,
            None => false,
        }
    }

    /// Drops every entry, counting each as expired.
    fn expire_all(&mut self) -> usize {
        let n = self.keys.len();
        self.keys.clear();
        self.values.clear();
        self.stamps.clear();
        self.links.clear();
        self.buckets = [Ix::NIL; N];
        self.ends = [[Ix::NIL; 2]; 2];
        self.stats.expirations = self.stats.expirations.saturating_add(n as u64);
        n
    }
}

impl<K: Hash + Eq, V, const N: usize, Ix: CacheIndex> TtlCache<K, V, N, Ix> {
    /// The same cache with its bucket hash seeded by `seed` instead of
    /// [`DEFAULT_SEED`] (see the [module docs](self#hash-flooding-and-the-seed)):
    /// `TtlCache::new_idle(ttl)?.with_seed(seed)`. As [`set_seed`](Self::set_seed),
    /// in builder form. *O*(`N`).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.set_seed(seed);
        self
    }

    /// Seeds the bucket hash with `seed` and moves the stored entries to their new
    /// buckets, so it can run at any time (e.g. at boot on a cache in a `static`,
    /// with a seed from the TRNG or the device's unique id). Nothing else changes:
    /// contents, recency, expiry, clock and statistics are kept. *O*(`N`).
    pub fn set_seed(&mut self, seed: u64) {
        self.seed = seed;
        self.hash_keys = hash_keys(seed);
        self.buckets = [Ix::NIL; N];
        for i in 0..self.keys.len() {
            let Some(key) = self.keys.get(i) else { break };
            let b = self.bucket(key);
            let Some(head) = self.buckets.get_mut(b) else {
                debug_assert!(false, "bucket out of range");
                continue;
            };
            let old = mem::replace(head, Ix::from_usize(i));
            if let Some(l) = self.links.get_mut(i) {
                l[CHAIN] = old;
            }
        }
    }

    /// Index of `key`.
    #[inline]
    fn find(&self, key: &K) -> Option<usize> {
        self.find_in(self.bucket(key), key)
    }

    /// Index of `key`, whose bucket is `b`: a walk of `b`'s chain. Chains are
    /// acyclic by construction (every entry is in exactly one chain, once); debug
    /// builds check it with a step bound, release builds spend no branch on it.
    ///
    /// The first two entries of the chain are tried without a branch between
    /// them: the head's comparison selects the head or its successor (the head
    /// again when the chain has one entry), and one comparison tests the
    /// choice. At one entry per bucket on average, nine hits in ten are at one
    /// of the first two places, so a hit costs one predictable branch instead of
    /// a loop exit the predictor cannot learn.
    #[inline]
    fn find_in(&self, b: usize, key: &K) -> Option<usize> {
        let (keys, links): (&[K], &[[Ix; 5]]) = (&self.keys, &self.links);
        let head = self.buckets.get(b).copied().unwrap_or(Ix::NIL).to_usize();
        // An empty bucket (NIL head) ends here through the bounds check.
        let k0 = keys.get(head)?;
        let next = links.get(head).map_or(Ix::NIL, |l| l[CHAIN]).to_usize();
        let second = if next < keys.len() { next } else { head };
        let k1 = keys.get(second)?;
        // Select first, test once: the selects compile to conditional moves.
        let (i, k) = if k0 == key { (head, k0) } else { (second, k1) };
        if k == key {
            return Some(i);
        }
        if second == head {
            return None;
        }
        self.find_after(second, key)
    }

    /// The rest of [`find_in`](Self::find_in)'s walk: the entries after `i`.
    #[inline]
    fn find_after(&self, i: usize, key: &K) -> Option<usize> {
        let (keys, links): (&[K], &[[Ix; 5]]) = (&self.keys, &self.links);
        let mut cur = links.get(i).map_or(Ix::NIL, |l| l[CHAIN]);
        #[cfg(debug_assertions)]
        let mut steps = 0;
        // A NIL link ends the walk through the bounds check (NIL >= N).
        while let Some(k) = keys.get(cur.to_usize()) {
            if k == key {
                return Some(cur.to_usize());
            }
            cur = links.get(cur.to_usize()).map_or(Ix::NIL, |l| l[CHAIN]);
            #[cfg(debug_assertions)]
            {
                steps += 1;
                if steps > N {
                    debug_assert!(false, "cycle in a bucket chain");
                    return None;
                }
            }
        }
        None
    }

    /// Removes entry `i`: unlinks it, moves the last entry into its slot (relinking
    /// everything that pointed at the last entry) and shrinks the arrays.
    fn remove_at(&mut self, i: usize) -> Option<(K, V)> {
        let len = self.keys.len();
        if i >= len {
            debug_assert!(false, "remove_at out of range");
            return None;
        }
        let b = self.bucket(self.keys.get(i)?);
        let next = self.link(i, CHAIN);
        self.chain_redirect(b, i, next);
        self.unlink(LRU, i);
        self.unlink(EXP, i);
        let last = len - 1;
        if i != last {
            // Nothing points at `i` any more; redirect every pointer to `last`.
            let bl = self.bucket(self.keys.get(last)?);
            self.chain_redirect(bl, last, Some(i));
            for list in [LRU, EXP] {
                match self.link(last, prev_slot(list)) {
                    Some(p) => self.set_link(p, next_slot(list), Some(i)),
                    None => self.set_end(list, HEAD, Some(i)),
                }
                match self.link(last, next_slot(list)) {
                    Some(n) => self.set_link(n, prev_slot(list), Some(i)),
                    None => self.set_end(list, TAIL, Some(i)),
                }
            }
        }
        let k = swap_remove(&mut self.keys, i);
        let v = swap_remove(&mut self.values, i);
        let _ = swap_remove(&mut self.stamps, i);
        let _ = swap_remove(&mut self.links, i);
        debug_assert!(self.keys.len() == self.values.len());
        debug_assert!(self.keys.len() == self.stamps.len());
        debug_assert!(self.keys.len() == self.links.len());
        Some((k?, v?))
    }

    /// Appends a new entry stamped at the clock into bucket `b`, its key's (the
    /// caller made room and checked the key is absent).
    fn push_entry(&mut self, b: usize, key: K, value: V) {
        let i = self.keys.len();
        let head = self.buckets.get(b).copied().unwrap_or(Ix::NIL);
        let ok = self.keys.push(key).is_ok()
            & self.values.push(value).is_ok()
            & self.stamps.push(self.clock).is_ok()
            & self
                .links
                .push([head, Ix::NIL, Ix::NIL, Ix::NIL, Ix::NIL])
                .is_ok();
        if !ok {
            debug_assert!(false, "push_entry on a full cache");
            return;
        }
        if let Some(h) = self.buckets.get_mut(b) {
            *h = Ix::from_usize(i);
        }
        self.push_back(LRU, i);
        self.push_back(EXP, i);
    }

    /// Evicts entry `i` in place: the new entry (key in bucket `b`, absent) takes
    /// its slot, stamped at the clock and most recently used, and the old key and
    /// value are returned. No other entry moves, unlike [`remove_at`](Self::remove_at)
    /// then [`push_entry`](Self::push_entry). `Err` hands the new entry back if `i`
    /// is out of range (a broken invariant).
    fn replace_at(&mut self, i: usize, b: usize, key: K, value: V) -> Result<(K, V), (K, V)> {
        let Some(old_b) = self.keys.get(i).map(|k| self.bucket(k)) else {
            return Err((key, value));
        };
        let (Some(ks), Some(vs)) = (self.keys.get_mut(i), self.values.get_mut(i)) else {
            debug_assert!(false, "values shorter than keys");
            return Err((key, value));
        };
        let old = (mem::replace(ks, key), mem::replace(vs, value));
        let next = self.link(i, CHAIN);
        self.chain_redirect(old_b, i, next);
        let head = self.buckets.get(b).copied().unwrap_or(Ix::NIL);
        if let Some(h) = self.buckets.get_mut(b) {
            *h = Ix::from_usize(i);
        }
        let clock = self.clock;
        if let Some(l) = self.links.get_mut(i) {
            l[CHAIN] = head;
        }
        if let Some(s) = self.stamps.get_mut(i) {
            *s = clock;
        }
        self.move_to_back(LRU, i);
        self.move_to_back(EXP, i);
        Ok(old)
    }

    /// Moves the cache's clock to `now` and purges the entries expired then; returns
    /// how many were dropped (each also counts in [`CacheStats::expirations`]).
    /// With `d = now - clock` (wrapping), as the [module docs](self#time-one-fallible-advance-infallible-operations)
    /// tabulate:
    ///
    /// - first call (or first after [`clear`](Self::clear)): the clock is set to
    ///   `now`, nothing expires;
    /// - `d < 2^31`: forward by `d`, exact across the `u32` wrap;
    /// - `d >= 2^31` and `clock - now >= ttl`: a gap longer than every TTL, so
    ///   every entry expires and the clock resynchronises to `now`;
    /// - `d >= 2^31` and `clock - now < ttl`: a step back, rejected.
    ///
    /// *O*(1 + purged) (*O*(`N`) when everything expires at once).
    ///
    /// # Errors
    /// [`ClockError::Backwards`] if `now` is 1 to `ttl - 1` ticks behind the
    /// cache's clock. Nothing changes then (statistics included), and every other
    /// operation keeps working at the cache's clock.
    #[inline]
    pub fn advance(&mut self, now: Instant) -> Result<usize, ClockError> {
        let now = now.ticks();
        // The common case, inlined into the caller: a synced clock moving
        // forward and an oldest entry still alive, so nothing to purge.
        if self.synced && now.wrapping_sub(self.clock) <= MAX_STEP {
            self.clock = now;
            let oldest_alive = match self.ends.get(EXP).map(|e| e[HEAD]) {
                Some(h) if h != Ix::NIL => self.alive(h.to_usize()),
                _ => true,
            };
            return Ok(if oldest_alive { 0 } else { self.purge() });
        }
        self.advance_slow(now)
    }

    /// The rest of [`advance`](Self::advance): the first call, and a step back
    /// or a gap of 2^31 ticks or more.
    #[cold]
    #[inline(never)]
    fn advance_slow(&mut self, now: u32) -> Result<usize, ClockError> {
        if !self.synced {
            // Entries stored before the first advance are stamped at the old
            // clock, age 0: shift them with the clock so they keep that age.
            let shift = now.wrapping_sub(self.clock);
            for s in self.stamps.iter_mut() {
                *s = s.wrapping_add(shift);
            }
            self.clock = now;
            self.synced = true;
            return Ok(0);
        }
        let forward = now.wrapping_sub(self.clock);
        if forward <= MAX_STEP {
            self.clock = now;
            return Ok(self.purge());
        }
        if self.clock.wrapping_sub(now) < self.ttl {
            return Err(ClockError::Backwards);
        }
        self.clock = now;
        Ok(self.expire_all())
    }

    /// Drops every entry expired at the cache's clock, oldest first; returns how
    /// many.
    #[inline(never)]
    fn purge(&mut self) -> usize {
        let mut purged = 0;
        while let Some(h) = self.end(EXP, HEAD) {
            if self.alive(h) || self.remove_at(h).is_none() {
                break;
            }
            purged += 1;
            self.stats.expirations = self.stats.expirations.saturating_add(1);
        }
        purged
    }

    /// The lookup behind `get` / `get_mut`: counts, and on a hit makes the entry
    /// most recently used (and refreshes it in idle mode).
    #[inline]
    fn lookup(&mut self, key: &K) -> Option<usize> {
        match self.find(key) {
            Some(i) => {
                self.stats.hits = self.stats.hits.saturating_add(1);
                self.move_to_back(LRU, i);
                if self.idle {
                    let clock = self.clock;
                    if let Some(s) = self.stamps.get_mut(i) {
                        *s = clock;
                    }
                    self.move_to_back(EXP, i);
                }
                Some(i)
            }
            None => {
                self.stats.misses = self.stats.misses.saturating_add(1);
                None
            }
        }
    }

    /// Lowers (or raises, up to `N`) the number of entries kept, so one compiled
    /// size can serve capacities chosen at run time (a simulator's sweep, a flow
    /// table sized from configuration). Shrinking below the current length evicts
    /// least recently used entries, counted in [`CacheStats::evictions`].
    /// *O*(evicted).
    ///
    /// # Errors
    /// [`CacheConfigError::BadLimit`] unless `1 <= limit <= N`; nothing changes then.
    pub fn set_limit(&mut self, limit: usize) -> Result<(), CacheConfigError> {
        if limit == 0 || limit > N {
            return Err(CacheConfigError::BadLimit);
        }
        self.limit = limit;
        while self.keys.len() > limit {
            match self.end(LRU, HEAD).and_then(|h| self.remove_at(h)) {
                Some(_) => self.stats.evictions = self.stats.evictions.saturating_add(1),
                None => break,
            }
        }
        Ok(())
    }

    /// Looks `key` up at the cache's clock. A hit counts in [`CacheStats::hits`]
    /// and makes the entry the most recently used; in idle mode it also restarts
    /// its TTL. A miss counts in [`CacheStats::misses`]. *O*(1) expected.
    #[inline]
    pub fn get(&mut self, key: &K) -> Option<&V> {
        let i = self.lookup(key)?;
        self.values.get(i)
    }

    /// As [`get`](Self::get), with a mutable reference to the value.
    #[inline]
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.lookup(key)?;
        self.values.get_mut(i)
    }

    /// The value of `key`, without touching anything: no statistics, no recency
    /// or TTL change. *O*(1) expected.
    #[must_use]
    pub fn peek(&self, key: &K) -> Option<&V> {
        let i = self.find(key)?;
        debug_assert!(self.alive(i), "expired entry left behind");
        self.values.get(i)
    }

    /// Whether `key` is stored; as [`peek`](Self::peek).
    #[must_use]
    pub fn contains_key(&self, key: &K) -> bool {
        self.peek(key).is_some()
    }

    /// Inserts or replaces `key` at the cache's clock. The entry becomes the most
    /// recently used, stamped at the clock. If the key is new and the cache is
    /// full, the least recently used entry is evicted and handed back. Counts in
    /// [`CacheStats::insertions`] (and [`evictions`](CacheStats::evictions)).
    /// Infallible. *O*(1) expected.
    pub fn insert(&mut self, key: K, value: V) -> Inserted<K, V> {
        let b = self.bucket(&key);
        if let Some(i) = self.find_in(b, &key) {
            let old = match self.values.get_mut(i) {
                Some(slot) => mem::replace(slot, value),
                None => {
                    debug_assert!(false, "values shorter than keys");
                    value
                }
            };
            let clock = self.clock;
            if let Some(s) = self.stamps.get_mut(i) {
                *s = clock;
            }
            self.move_to_back(LRU, i);
            self.move_to_back(EXP, i);
            self.stats.insertions = self.stats.insertions.saturating_add(1);
            return Inserted::Replaced(old);
        }
        self.stats.insertions = self.stats.insertions.saturating_add(1);
        // Full: the least recently used entry's slot takes the new one (expired
        // entries are gone already: `advance` purged them).
        let (key, value) = match self.end(LRU, HEAD).filter(|_| self.is_full()) {
            Some(h) => match self.replace_at(h, b, key, value) {
                Ok((key, value)) => {
                    self.stats.evictions = self.stats.evictions.saturating_add(1);
                    return Inserted::Evicted { key, value };
                }
                Err(new) => new,
            },
            None => (key, value),
        };
        self.push_entry(b, key, value);
        Inserted::New
    }

    /// Removes `key` and returns its value if it was stored. Not counted in the
    /// statistics. *O*(1) expected.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.find(key)?;
        self.remove_at(i).map(|(_, v)| v)
    }
}

impl<K: fmt::Debug, V: fmt::Debug, const N: usize, Ix: CacheIndex> fmt::Debug
    for TtlCache<K, V, N, Ix>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Entries<'a, K, V>(&'a [K], &'a [V]);
        impl<K: fmt::Debug, V: fmt::Debug> fmt::Debug for Entries<'_, K, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().zip(self.1.iter()))
                    .finish()
            }
        }
        f.debug_struct("TtlCache")
            .field("capacity", &N)
            .field("len", &self.keys.len())
            .field("ttl", &self.ttl)
            .field("idle", &self.idle)
            .field("stats", &self.stats)
            .field("entries", &Entries(&self.keys, &self.values))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
