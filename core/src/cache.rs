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
//! # Eviction policy and cost
//!
//! Entries are dropped **expired first, then least recently used**:
//!
//! - Every mutating call first purges every expired entry, oldest first, from the
//!   head of an expiry-ordered list. Each entry is purged at most once, so the purge
//!   is amortised *O*(1) per operation (counted in [`CacheStats::expirations`]).
//! - If the cache is still full when a new key is inserted, the least recently used
//!   entry (by last hit or write) is evicted in *O*(1) and handed back in
//!   [`Inserted::Evicted`] (counted in [`CacheStats::evictions`]).
//! - Lookups hash the key once into `N` chained buckets: *O*(1) expected.
//!
//! Nothing allocates and nothing panics: storage is inline and sized by `N`, and the
//! constructors are `const fn`, so a cache can live in a `static`.
//!
//! # Time and wraparound
//!
//! The cache never reads a clock: every mutating call takes `now` as an
//! [`Instant`], a 32-bit tick counter that may wrap. The cache remembers the
//! previous call's `now` and rejects, with [`ClockError::Backwards`] and without
//! changing anything (statistics included), a `now` that is before it or more than
//! [`MAX_STEP`] (2^31 - 1) ticks after it. Because the TTL is at most [`MAX_STEP`]
//! too and expired entries are purged on every call, every age the cache computes
//! is below 2^32, so expiry is **exact across the `u32` wrap**: an entry written at
//! tick `t` is alive while `now - t < ttl` and expired from `now == t + ttl` on,
//! whatever the counter's value.
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
//! // A flow table: 64 flows, u16 links, a flow dies after 1000 idle ticks.
//! let mut flows: TtlCache<u64, u16, 64, u16> = TtlCache::new_idle(Duration::from_ticks(1000))?;
//! let flow = 0x0a00_0001_01bb_c350; // e.g. a hash of the 5-tuple
//! let backend = 3;
//! let inserted = flows.insert(flow, backend, Instant(0)).map_err(|e| e.error)?;
//! assert_eq!(inserted, Inserted::New);
//! assert_eq!(flows.get(&flow, Instant(999))?, Some(&3)); // hit: idle timer restarts
//! assert_eq!(flows.get(&flow, Instant(1998))?, Some(&3));
//! assert_eq!(flows.get(&flow, Instant(2998))?, None); // 1000 ticks idle: gone
//! assert_eq!(flows.stats().expirations, 1);
//!
//! // A cache-tier server: entries live 100 ticks from their write.
//! let mut cache: TtlCache<u32, u32, 2> = TtlCache::new(Duration::from_ticks(100))?;
//! cache.insert(1, 10, Instant(0)).map_err(|e| e.error)?;
//! cache.insert(2, 20, Instant(1)).map_err(|e| e.error)?;
//! assert_eq!(cache.get(&1, Instant(2))?, Some(&10)); // 2 is now least recently used
//! let evicted = cache.insert(3, 30, Instant(3)).map_err(|e| e.error)?;
//! assert_eq!(evicted, Inserted::Evicted { key: 2, value: 20 });
//! assert_eq!(cache.get(&1, Instant(100))?, None); // written at 0: expired at 100
//! # Ok::<(), chring::Error>(())
//! ```

use core::fmt;
use core::hash::{Hash, Hasher};
use core::mem;

use heapless::Vec;

use crate::time::{ClockError, Duration, Instant, MAX_STEP};

mod sealed {
    /// Prevents implementations of [`CacheIndex`](super::CacheIndex) outside this crate.
    pub trait Sealed {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
}

/// The integer type a [`TtlCache`] stores its links in: [`u16`] (for `N < 65535`,
/// the smallest footprint) or [`u32`]. Sealed: it cannot be implemented outside
/// this crate.
pub trait CacheIndex: sealed::Sealed + Copy + Eq + fmt::Debug {
    /// The reserved "no entry" value, `Self::MAX`.
    const NIL: Self;
    /// `Self::MAX` as a `usize`: a cache's capacity `N` must be below it.
    const MAX_USIZE: usize;
    /// Converts an index below [`Self::MAX_USIZE`] (larger values truncate).
    fn from_usize(i: usize) -> Self;
    /// Converts to `usize`.
    fn to_usize(self) -> usize;
}

impl CacheIndex for u16 {
    const NIL: Self = u16::MAX;
    const MAX_USIZE: usize = u16::MAX as usize;
    #[inline]
    fn from_usize(i: usize) -> Self {
        i as u16
    }
    #[inline]
    fn to_usize(self) -> usize {
        usize::from(self)
    }
}

impl CacheIndex for u32 {
    const NIL: Self = u32::MAX;
    // On a 16-bit target this truncates to `usize::MAX`, which is still a valid bound.
    const MAX_USIZE: usize = u32::MAX as usize;
    #[inline]
    fn from_usize(i: usize) -> Self {
        i as u32
    }
    #[inline]
    fn to_usize(self) -> usize {
        self as usize
    }
}

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

/// A failed [`TtlCache::insert`]: the clock was rejected, nothing changed, and the
/// key and value are handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct InsertError<K, V> {
    /// The key that was not inserted.
    pub key: K,
    /// The value that was not inserted.
    pub value: V,
    /// Why.
    pub error: ClockError,
}

impl<K, V> fmt::Display for InsertError<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cache insert rejected: {}", self.error)
    }
}

impl<K: fmt::Debug, V: fmt::Debug> core::error::Error for InsertError<K, V> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Deterministic FxHash-style hasher (multiply-rotate per word, murmur3 `fmix64`
/// avalanche at the end). No randomness: the same keys land in the same buckets on
/// every device and every run.
struct FxHasher {
    h: u64,
}

const FX_SEED: u64 = 0x517c_c1b7_2722_0a95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.h = (self.h.rotate_left(5) ^ w).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = 0u64;
            for (i, &b) in chunk.iter().enumerate() {
                w |= u64::from(b) << (8 * i);
            }
            self.add(w);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        h
    }
}

// Link slots in each entry's `[Ix; 5]`.
const CHAIN: usize = 0;
// List ids; list `l` uses slots `1 + 2l` (prev) and `2 + 2l` (next).
const LRU: usize = 0;
const EXP: usize = 1;
const HEAD: usize = 0;
const TAIL: usize = 1;

#[inline]
const fn prev_slot(list: usize) -> usize {
    1 + 2 * list
}

#[inline]
const fn next_slot(list: usize) -> usize {
    2 + 2 * list
}

#[inline]
fn decode<Ix: CacheIndex>(x: Ix) -> Option<usize> {
    if x == Ix::NIL {
        None
    } else {
        Some(x.to_usize())
    }
}

#[inline]
fn encode<Ix: CacheIndex>(i: Option<usize>) -> Ix {
    match i {
        Some(i) => Ix::from_usize(i),
        None => Ix::NIL,
    }
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
/// the [module docs](self) for the two modes, the eviction policy and the memory
/// cost.
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
/// use chring::TtlCache;
///
/// // 1024 flows, u16 links, 30 000 idle ticks. On a target, wrap it in e.g. a
/// // `critical_section::Mutex` instead of a thread-local.
/// std::thread_local! {
///     static FLOWS: RefCell<TtlCache<u64, u16, 1024, u16>> =
///         const { RefCell::new(TtlCache::new_idle_const::<30_000>()) };
/// }
/// static EMPTY: TtlCache<u64, u16, 1024, u16> = TtlCache::new_const::<100>();
/// assert_eq!(EMPTY.capacity(), 1024);
/// FLOWS.with_borrow_mut(|f| f.insert(7, 1, chring::Instant(0)).map(|_| ()))
///     .map_err(|e| e.error)?;
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
    started: bool,
    last: u32,
    stats: CacheStats,
}

impl<K, V, const N: usize, Ix: CacheIndex> TtlCache<K, V, N, Ix> {
    /// A cache whose entries expire `ttl` ticks after their last write; hits do not
    /// extend them. *O*(`N`) to initialise the bucket heads; `const`.
    ///
    /// # Errors
    /// [`CacheConfigError::ZeroTtl`] if `ttl` is 0, [`CacheConfigError::TtlTooLong`]
    /// if it exceeds [`MAX_STEP`].
    pub const fn new(ttl: Duration) -> Result<Self, CacheConfigError> {
        Self::with_mode(ttl, false)
    }

    /// A flow table: entries expire after `ttl` ticks without a hit or write; every
    /// hit refreshes them. *O*(`N`) to initialise the bucket heads; `const`.
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
            started: false,
            last: 0,
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

    /// Number of entries stored. Entries that expired after the last mutating call
    /// are still counted until the next one purges them. *O*(1).
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no entry is stored. *O*(1).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `N` entries are stored (the next insert of a new key may evict,
    /// unless some have expired meanwhile). *O*(1).
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

    /// The counters. *O*(1).
    #[must_use]
    pub const fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Zeroes the counters. *O*(1).
    pub fn reset_stats(&mut self) {
        self.stats = CacheStats::default();
    }

    /// Removes every entry (not counted in the statistics, which are kept; the clock
    /// check keeps the last `now` too). *O*(`N`).
    pub fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
        self.stamps.clear();
        self.links.clear();
        self.buckets = [Ix::NIL; N];
        self.ends = [[Ix::NIL; 2]; 2];
    }

    /// The stored entries, in unspecified order. Entries that expired after the last
    /// mutating call are included until the next one purges them. *O*(1) per item.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&K, &V)> + DoubleEndedIterator {
        self.keys.iter().zip(self.values.iter())
    }

    // ----- internal list plumbing -----

    #[inline]
    fn link(&self, i: usize, slot: usize) -> Option<usize> {
        match self.links.get(i).and_then(|l| l.get(slot)) {
            Some(&x) => decode(x),
            None => {
                debug_assert!(false, "link of a missing entry");
                None
            }
        }
    }

    #[inline]
    fn set_link(&mut self, i: usize, slot: usize, to: Option<usize>) {
        match self.links.get_mut(i).and_then(|l| l.get_mut(slot)) {
            Some(x) => *x = encode(to),
            None => debug_assert!(false, "link of a missing entry"),
        }
    }

    #[inline]
    fn end(&self, list: usize, which: usize) -> Option<usize> {
        self.ends
            .get(list)
            .and_then(|e| e.get(which))
            .and_then(|&x| decode(x))
    }

    #[inline]
    fn set_end(&mut self, list: usize, which: usize, to: Option<usize>) {
        if let Some(x) = self.ends.get_mut(list).and_then(|e| e.get_mut(which)) {
            *x = encode(to);
        }
    }

    fn unlink(&mut self, list: usize, i: usize) {
        let p = self.link(i, prev_slot(list));
        let n = self.link(i, next_slot(list));
        match p {
            Some(p) => self.set_link(p, next_slot(list), n),
            None => self.set_end(list, HEAD, n),
        }
        match n {
            Some(n) => self.set_link(n, prev_slot(list), p),
            None => self.set_end(list, TAIL, p),
        }
        self.set_link(i, prev_slot(list), None);
        self.set_link(i, next_slot(list), None);
    }

    fn push_back(&mut self, list: usize, i: usize) {
        let t = self.end(list, TAIL);
        self.set_link(i, prev_slot(list), t);
        self.set_link(i, next_slot(list), None);
        match t {
            Some(t) => self.set_link(t, next_slot(list), Some(i)),
            None => self.set_end(list, HEAD, Some(i)),
        }
        self.set_end(list, TAIL, Some(i));
    }

    fn move_to_back(&mut self, list: usize, i: usize) {
        if self.end(list, TAIL) != Some(i) {
            self.unlink(list, i);
            self.push_back(list, i);
        }
    }

    /// Makes whatever points at `target` in bucket `b`'s chain (the bucket head or
    /// the predecessor) point at `to` instead.
    fn chain_redirect(&mut self, b: usize, target: usize, to: Option<usize>) {
        let Some(head) = self.buckets.get_mut(b) else {
            debug_assert!(false, "bucket out of range");
            return;
        };
        if decode(*head) == Some(target) {
            *head = encode(to);
            return;
        }
        let mut cur = decode(*head);
        let mut steps = 0;
        while let Some(c) = cur {
            let next = self.link(c, CHAIN);
            if next == Some(target) {
                self.set_link(c, CHAIN, to);
                return;
            }
            cur = next;
            steps += 1;
            if steps > N {
                break;
            }
        }
        debug_assert!(false, "entry missing from its bucket chain");
    }
}

impl<K: Hash + Eq, V, const N: usize, Ix: CacheIndex> TtlCache<K, V, N, Ix> {
    /// Bucket of a key: fastrange of its 32-bit hash onto `0..N`.
    #[inline]
    fn bucket(key: &K) -> usize {
        let mut h = FxHasher { h: 0 };
        key.hash(&mut h);
        let h32 = (h.finish() >> 32) as u32;
        ((u64::from(h32) * N as u64) >> 32) as usize
    }

    /// Index of `key`, alive or not.
    fn find(&self, key: &K) -> Option<usize> {
        let mut cur = self.buckets.get(Self::bucket(key)).and_then(|&x| decode(x));
        let mut steps = 0;
        while let Some(i) = cur {
            if self.keys.get(i)? == key {
                return Some(i);
            }
            cur = self.link(i, CHAIN);
            steps += 1;
            if steps > N {
                debug_assert!(false, "cycle in a bucket chain");
                return None;
            }
        }
        None
    }

    #[inline]
    fn alive(&self, i: usize, now: Instant) -> bool {
        match self.stamps.get(i) {
            Some(&s) => now.wrapping_since(Instant(s)) < self.ttl,
            None => false,
        }
    }

    /// Removes entry `i`: unlinks it, moves the last entry into its slot (relinking
    /// everything that pointed at the last entry) and shrinks the arrays.
    fn remove_at(&mut self, i: usize) -> Option<(K, V)> {
        let len = self.keys.len();
        if i >= len {
            debug_assert!(false, "remove_at out of range");
            return None;
        }
        let b = Self::bucket(self.keys.get(i)?);
        let next = self.link(i, CHAIN);
        self.chain_redirect(b, i, next);
        self.unlink(LRU, i);
        self.unlink(EXP, i);
        let last = len - 1;
        if i != last {
            // Nothing points at `i` any more; redirect every pointer to `last`.
            let bl = Self::bucket(self.keys.get(last)?);
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

    /// Appends a new entry (the caller made room and checked the key is absent).
    fn push_entry(&mut self, key: K, value: V, now: Instant) {
        let i = self.keys.len();
        let b = Self::bucket(&key);
        let head = self.buckets.get(b).copied().unwrap_or(Ix::NIL);
        let ok = self.keys.push(key).is_ok()
            & self.values.push(value).is_ok()
            & self.stamps.push(now.ticks()).is_ok()
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

    /// Drops every entry expired at `now`, oldest first; returns how many.
    fn purge(&mut self, now: Instant) -> usize {
        let mut purged = 0;
        while let Some(h) = self.end(EXP, HEAD) {
            if self.alive(h, now) || self.remove_at(h).is_none() {
                break;
            }
            purged += 1;
            self.stats.expirations = self.stats.expirations.saturating_add(1);
        }
        purged
    }

    /// Checks and records `now`, then purges. Changes nothing on error.
    fn advance(&mut self, now: Instant) -> Result<usize, ClockError> {
        if self.started {
            now.checked_since(Instant(self.last))?;
        }
        self.started = true;
        self.last = now.ticks();
        Ok(self.purge(now))
    }

    /// The lookup behind `get` / `get_mut`: counts, and on a hit makes the entry
    /// most recently used (and refreshes it in idle mode).
    fn lookup(&mut self, key: &K, now: Instant) -> Result<Option<usize>, ClockError> {
        self.advance(now)?;
        match self.find(key) {
            Some(i) => {
                self.stats.hits = self.stats.hits.saturating_add(1);
                self.move_to_back(LRU, i);
                if self.idle {
                    if let Some(s) = self.stamps.get_mut(i) {
                        *s = now.ticks();
                    }
                    self.move_to_back(EXP, i);
                }
                Ok(Some(i))
            }
            None => {
                self.stats.misses = self.stats.misses.saturating_add(1);
                Ok(None)
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

    /// Looks `key` up at `now`. A hit counts in [`CacheStats::hits`] and makes the
    /// entry the most recently used; in idle mode it also restarts its TTL. A miss
    /// counts in [`CacheStats::misses`]. Expired entries are purged first.
    /// *O*(1) expected, amortised.
    ///
    /// # Errors
    /// [`ClockError::Backwards`] if `now` is before the previous call's or more than
    /// [`MAX_STEP`] ticks after it; nothing changes then.
    pub fn get(&mut self, key: &K, now: Instant) -> Result<Option<&V>, ClockError> {
        Ok(match self.lookup(key, now)? {
            Some(i) => self.values.get(i),
            None => None,
        })
    }

    /// As [`get`](Self::get), with a mutable reference to the value.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_mut(&mut self, key: &K, now: Instant) -> Result<Option<&mut V>, ClockError> {
        Ok(match self.lookup(key, now)? {
            Some(i) => self.values.get_mut(i),
            None => None,
        })
    }

    /// The value of `key` if it is stored and alive at `now`, without touching
    /// anything: no statistics, no recency or TTL change, no clock check, no purge.
    /// *O*(1) expected.
    #[must_use]
    pub fn peek(&self, key: &K, now: Instant) -> Option<&V> {
        let i = self.find(key)?;
        if self.alive(i, now) {
            self.values.get(i)
        } else {
            None
        }
    }

    /// Whether `key` is stored and alive at `now`; as [`peek`](Self::peek).
    #[must_use]
    pub fn contains_key(&self, key: &K, now: Instant) -> bool {
        self.peek(key, now).is_some()
    }

    /// Inserts or replaces `key` at `now`, after purging expired entries. The entry
    /// becomes the most recently used, stamped `now`. If the key is new and the
    /// cache is still full, the least recently used entry is evicted and handed
    /// back. Counts in [`CacheStats::insertions`] (and
    /// [`evictions`](CacheStats::evictions)). *O*(1) expected, amortised.
    ///
    /// # Errors
    /// An [`InsertError`] holding `key`, `value` and [`ClockError::Backwards`] if
    /// `now` is before the previous call's or more than [`MAX_STEP`] ticks after it;
    /// nothing changes then. (`.map_err(|e| e.error)` turns it into a
    /// [`ClockError`], e.g. for `?` into [`crate::Error`].)
    pub fn insert(
        &mut self,
        key: K,
        value: V,
        now: Instant,
    ) -> Result<Inserted<K, V>, InsertError<K, V>> {
        if let Err(error) = self.advance(now) {
            return Err(InsertError { key, value, error });
        }
        if let Some(i) = self.find(&key) {
            let old = match self.values.get_mut(i) {
                Some(slot) => mem::replace(slot, value),
                None => {
                    debug_assert!(false, "values shorter than keys");
                    value
                }
            };
            if let Some(s) = self.stamps.get_mut(i) {
                *s = now.ticks();
            }
            self.move_to_back(LRU, i);
            self.move_to_back(EXP, i);
            self.stats.insertions = self.stats.insertions.saturating_add(1);
            return Ok(Inserted::Replaced(old));
        }
        let mut outcome = Inserted::New;
        if self.is_full() {
            if let Some((key, value)) = self.end(LRU, HEAD).and_then(|h| self.remove_at(h)) {
                self.stats.evictions = self.stats.evictions.saturating_add(1);
                outcome = Inserted::Evicted { key, value };
            }
        }
        self.push_entry(key, value, now);
        self.stats.insertions = self.stats.insertions.saturating_add(1);
        Ok(outcome)
    }

    /// Removes `key` at `now` (after purging expired entries) and returns its value
    /// if it was stored and alive. Not counted in the statistics. *O*(1) expected,
    /// amortised.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn remove(&mut self, key: &K, now: Instant) -> Result<Option<V>, ClockError> {
        self.advance(now)?;
        Ok(match self.find(key) {
            Some(i) => self.remove_at(i).map(|(_, v)| v),
            None => None,
        })
    }

    /// Drops every entry expired at `now` and returns how many (each also counts in
    /// [`CacheStats::expirations`]). Every other mutating call does this first, so
    /// calling it is only needed to reclaim space eagerly (e.g. from a timer).
    /// *O*(purged).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn purge_expired(&mut self, now: Instant) -> Result<usize, ClockError> {
        self.advance(now)
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
mod tests {
    use super::*;

    const fn t(x: u32) -> Instant {
        Instant(x)
    }

    fn cache<const N: usize>(ttl: u32) -> TtlCache<u32, u32, N> {
        TtlCache::new(Duration(ttl)).unwrap()
    }

    fn idle<const N: usize>(ttl: u32) -> TtlCache<u32, u32, N> {
        TtlCache::new_idle(Duration(ttl)).unwrap()
    }

    /// Walks every structure and checks the invariants.
    fn check<K: Hash + Eq, V, const N: usize, Ix: CacheIndex>(c: &TtlCache<K, V, N, Ix>) {
        let len = c.keys.len();
        assert_eq!(c.values.len(), len);
        assert_eq!(c.stamps.len(), len);
        assert_eq!(c.links.len(), len);
        // Bucket chains: every entry exactly once, in its own bucket.
        let mut seen = [false; 512];
        let mut total = 0;
        for (b, &head) in c.buckets.iter().enumerate() {
            let mut cur = decode(head);
            while let Some(i) = cur {
                assert!(i < len);
                assert!(!seen[i], "entry {i} reachable twice");
                seen[i] = true;
                assert_eq!(TtlCache::<K, V, N, Ix>::bucket(&c.keys[i]), b);
                total += 1;
                cur = decode(c.links[i][CHAIN]);
            }
        }
        assert_eq!(total, len);
        // Both lists: consistent prev/next, every entry once.
        for list in [LRU, EXP] {
            let mut prev = None;
            let mut cur = c.end(list, HEAD);
            let mut n = 0;
            while let Some(i) = cur {
                assert!(i < len);
                assert_eq!(decode(c.links[i][prev_slot(list)]), prev);
                if list == EXP {
                    if let Some(p) = prev {
                        // Expiry order: ages non-increasing along the list.
                        let last = Instant(c.last);
                        assert!(
                            last.wrapping_since(Instant(c.stamps[p]))
                                >= last.wrapping_since(Instant(c.stamps[i]))
                        );
                    }
                    assert!(c.alive(i, Instant(c.last)), "expired entry left behind");
                }
                prev = Some(i);
                cur = decode(c.links[i][next_slot(list)]);
                n += 1;
                assert!(n <= len);
            }
            assert_eq!(c.end(list, TAIL), prev);
            assert_eq!(n, len);
        }
    }

    #[test]
    fn config_errors() {
        assert_eq!(
            TtlCache::<u32, u32, 4>::new(Duration(0)).err(),
            Some(CacheConfigError::ZeroTtl)
        );
        assert_eq!(
            TtlCache::<u32, u32, 4>::new_idle(Duration(MAX_STEP + 1)).err(),
            Some(CacheConfigError::TtlTooLong)
        );
        assert!(TtlCache::<u32, u32, 4>::new(Duration(MAX_STEP)).is_ok());
        assert!(TtlCache::<u32, u32, 4>::new(Duration(1)).is_ok());
        let c = idle::<4>(7);
        assert!(c.is_idle());
        assert_eq!(c.ttl(), Duration(7));
        assert_eq!(c.capacity(), 4);
        assert!(!cache::<4>(7).is_idle());
    }

    #[test]
    fn runtime_limit() {
        let mut c = cache::<8>(100);
        assert_eq!(c.limit(), 8);
        assert_eq!(c.set_limit(0), Err(CacheConfigError::BadLimit));
        assert_eq!(c.set_limit(9), Err(CacheConfigError::BadLimit));
        for k in 0..6u32 {
            c.insert(k, k, Instant(k)).unwrap();
        }
        c.get(&0, Instant(10)).unwrap();
        // Shrinking evicts the least recently used: 1, 2, 3 (0 was just read).
        c.set_limit(3).unwrap();
        check(&c);
        assert_eq!(c.len(), 3);
        assert_eq!(c.stats().evictions, 3);
        for k in [0, 4, 5] {
            assert!(c.peek(&k, Instant(10)).is_some(), "{k}");
        }
        // At the limit, an insert evicts.
        assert!(matches!(
            c.insert(9, 9, Instant(11)).unwrap(),
            Inserted::Evicted { key: 4, .. }
        ));
        assert_eq!(c.len(), 3);
        c.set_limit(8).unwrap();
        c.insert(10, 10, Instant(12)).unwrap();
        assert_eq!(c.len(), 4);
        check(&c);
    }

    static STATIC_CACHE: TtlCache<u64, u16, 32, u16> = TtlCache::new_const::<5>();
    static STATIC_FLOWS: TtlCache<u64, u16, 32, u16> = TtlCache::new_idle_const::<5>();

    #[test]
    fn const_construction() {
        assert_eq!(STATIC_CACHE.capacity(), 32);
        assert!(STATIC_CACHE.is_empty());
        let mut c = STATIC_CACHE.clone();
        assert_eq!(c.insert(1, 2, t(0)), Ok(Inserted::New));
        assert_eq!(c.get(&1, t(4)), Ok(Some(&2)));
        assert_eq!(c.get(&1, t(5)), Ok(None));
        assert!(!STATIC_CACHE.is_idle());
        assert!(STATIC_FLOWS.is_idle());
        assert_eq!(STATIC_FLOWS.ttl(), Duration(5));
        let max: TtlCache<u8, u8, 2> = TtlCache::new_const::<MAX_STEP>();
        assert_eq!(max.ttl(), Duration(MAX_STEP));
    }

    #[test]
    fn bytes_per_entry_figures() {
        assert_eq!(TtlCache::<u64, u16, 1, u16>::bytes_per_entry(), 26);
        assert_eq!(TtlCache::<u64, u16, 1, u32>::bytes_per_entry(), 38);
        assert_eq!(TtlCache::<u64, u64, 1, u32>::bytes_per_entry(), 44);
        // The whole struct is N entries plus a small constant overhead.
        let size = mem::size_of::<TtlCache<u64, u16, 1024, u16>>();
        let per = TtlCache::<u64, u16, 1024, u16>::bytes_per_entry();
        assert!(size >= 1024 * per && size <= 1024 * per + 128, "{size}");
    }

    #[test]
    fn hit_miss_counting() {
        let mut c = cache::<4>(100);
        assert_eq!(c.get(&1, t(0)), Ok(None));
        assert_eq!(c.insert(1, 10, t(1)), Ok(Inserted::New));
        assert_eq!(c.get(&1, t(2)), Ok(Some(&10)));
        assert_eq!(c.get(&1, t(3)), Ok(Some(&10)));
        assert_eq!(c.get(&2, t(3)), Ok(None));
        assert_eq!(c.peek(&1, t(3)), Some(&10)); // not counted
        assert_eq!(
            c.stats(),
            CacheStats {
                hits: 2,
                misses: 2,
                insertions: 1,
                evictions: 0,
                expirations: 0
            }
        );
        assert!((c.stats().hit_rate() - 0.5).abs() < 1e-12);
        assert_eq!(CacheStats::default().hit_rate(), 0.0);
        c.reset_stats();
        assert_eq!(c.stats(), CacheStats::default());
        check(&c);
    }

    #[test]
    fn expiry_exactly_at_boundary() {
        let mut c = cache::<4>(10);
        assert_eq!(c.insert(1, 10, t(100)), Ok(Inserted::New));
        assert_eq!(c.peek(&1, t(109)), Some(&10));
        assert_eq!(c.peek(&1, t(110)), None);
        assert_eq!(c.get(&1, t(109)), Ok(Some(&10)));
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&1, t(110)), Ok(None));
        assert_eq!(c.len(), 0);
        assert_eq!(c.stats().expirations, 1);
        assert_eq!(c.stats().misses, 1);
        // ttl = 1: alive only at the write tick.
        let mut c = cache::<4>(1);
        c.insert(5, 50, t(7)).unwrap();
        assert_eq!(c.get(&5, t(7)), Ok(Some(&50)));
        assert_eq!(c.get(&5, t(8)), Ok(None));
        check(&c);
    }

    #[test]
    fn ttl_from_write_is_not_extended_by_hits() {
        let mut c = cache::<4>(10);
        c.insert(1, 10, t(0)).unwrap();
        for now in 1..10 {
            assert_eq!(c.get(&1, t(now)), Ok(Some(&10)));
        }
        assert_eq!(c.get(&1, t(10)), Ok(None));
        // A write (replace) does restart it.
        c.insert(2, 20, t(10)).unwrap();
        assert_eq!(c.insert(2, 21, t(15)), Ok(Inserted::Replaced(20)));
        assert_eq!(c.get(&2, t(24)), Ok(Some(&21)));
        assert_eq!(c.get(&2, t(25)), Ok(None));
        check(&c);
    }

    #[test]
    fn idle_mode_hits_refresh() {
        let mut c = idle::<4>(10);
        c.insert(1, 10, t(0)).unwrap();
        c.insert(2, 20, t(0)).unwrap();
        for now in (9..100).step_by(9) {
            assert_eq!(c.get(&1, t(now)), Ok(Some(&10)), "at {now}");
            check(&c);
        }
        // 2 was never hit: purged at 10.
        assert_eq!(c.len(), 1);
        assert_eq!(c.stats().expirations, 1);
        // get_mut refreshes too; peek does not.
        assert_eq!(c.get_mut(&1, t(105)).map(|v| v.map(|v| *v)), Ok(Some(10)));
        assert_eq!(c.peek(&1, t(114)), Some(&10));
        assert_eq!(c.peek(&1, t(115)), None);
        assert_eq!(c.get(&1, t(115)), Ok(None));
        check(&c);
    }

    #[test]
    fn idle_refresh_reorders_expiry_list() {
        let mut c = idle::<4>(10);
        c.insert(1, 1, t(0)).unwrap();
        c.insert(2, 2, t(1)).unwrap();
        c.insert(3, 3, t(2)).unwrap();
        assert_eq!(c.get(&1, t(5)), Ok(Some(&1))); // 1 now expires at 15
        check(&c);
        assert_eq!(c.purge_expired(t(11)), Ok(1)); // 2
        assert_eq!(c.purge_expired(t(12)), Ok(1)); // 3
        assert_eq!(c.purge_expired(t(14)), Ok(0));
        assert_eq!(c.peek(&1, t(14)), Some(&1));
        assert_eq!(c.purge_expired(t(15)), Ok(1));
        assert!(c.is_empty());
        check(&c);
    }

    #[test]
    fn lru_eviction_order_and_handback() {
        let mut c = cache::<3>(1000);
        for k in 1..=3 {
            assert_eq!(c.insert(k, k * 10, t(k)), Ok(Inserted::New));
        }
        assert!(c.is_full());
        // Recency: 1 < 2 < 3. Touch 1, then 2 is the LRU.
        assert_eq!(c.get(&1, t(4)), Ok(Some(&10)));
        assert_eq!(
            c.insert(4, 40, t(5)),
            Ok(Inserted::Evicted { key: 2, value: 20 })
        );
        check(&c);
        // peek does not change recency: 3 is next.
        assert_eq!(c.peek(&3, t(6)), Some(&30));
        // A replace makes the entry MRU.
        assert_eq!(c.insert(3, 31, t(6)), Ok(Inserted::Replaced(30)));
        assert_eq!(
            c.insert(5, 50, t(7)),
            Ok(Inserted::Evicted { key: 1, value: 10 })
        );
        assert_eq!(
            c.insert(6, 60, t(8)),
            Ok(Inserted::Evicted { key: 4, value: 40 })
        );
        assert_eq!(
            c.insert(7, 70, t(9)),
            Ok(Inserted::Evicted { key: 3, value: 31 })
        );
        assert_eq!(c.stats().evictions, 4);
        assert_eq!(c.stats().insertions, 8);
        let mut keys: std::vec::Vec<u32> = c.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        assert_eq!(keys, [5, 6, 7]);
        check(&c);
    }

    #[test]
    fn expired_entries_go_before_lru() {
        let mut c = cache::<2>(10);
        c.insert(1, 10, t(0)).unwrap();
        c.insert(2, 20, t(5)).unwrap();
        c.get(&1, t(6)).unwrap(); // 2 is LRU, but 1 expires first
        assert_eq!(c.insert(3, 30, t(10)), Ok(Inserted::New));
        assert_eq!(c.stats().expirations, 1);
        assert_eq!(c.stats().evictions, 0);
        assert_eq!(c.peek(&2, t(10)), Some(&20));
        assert_eq!(c.peek(&1, t(10)), None);
        // Re-inserting an expired key is New, not Replaced.
        let mut c = cache::<2>(10);
        c.insert(1, 10, t(0)).unwrap();
        assert_eq!(c.insert(1, 11, t(10)), Ok(Inserted::New));
        check(&c);
    }

    #[test]
    fn clock_backwards_changes_nothing() {
        let mut c = cache::<4>(100);
        c.insert(1, 10, t(50)).unwrap();
        c.insert(2, 20, t(60)).unwrap();
        c.get(&1, t(61)).unwrap();
        c.get(&9, t(61)).unwrap();
        let stats = c.stats();
        let snapshot = c.clone();
        assert_eq!(c.get(&1, t(60)), Err(ClockError::Backwards));
        assert_eq!(
            c.get_mut(&2, t(0)).map(|v| v.is_some()),
            Err(ClockError::Backwards)
        );
        assert_eq!(c.remove(&1, t(60)), Err(ClockError::Backwards));
        assert_eq!(c.purge_expired(t(60)), Err(ClockError::Backwards));
        assert_eq!(
            c.insert(3, 30, t(60)),
            Err(InsertError {
                key: 3,
                value: 30,
                error: ClockError::Backwards
            })
        );
        // 2^31 ticks forward reads as backwards too.
        assert_eq!(
            c.get(&1, t(61u32.wrapping_add(MAX_STEP + 1))),
            Err(ClockError::Backwards)
        );
        assert_eq!(c.stats(), stats);
        assert_eq!(c.len(), 2);
        assert_eq!(c.last, snapshot.last);
        assert_eq!(c.links.as_slice(), snapshot.links.as_slice());
        assert_eq!(c.buckets, snapshot.buckets);
        assert_eq!(c.ends, snapshot.ends);
        // The same tick is fine.
        assert_eq!(c.get(&1, t(61)), Ok(Some(&10)));
        check(&c);
    }

    #[test]
    fn max_step_jump() {
        let mut c = cache::<4>(MAX_STEP);
        c.insert(1, 10, t(5)).unwrap();
        // Exactly MAX_STEP later: accepted, and the entry is exactly expired.
        assert_eq!(c.get(&1, t(5 + MAX_STEP)), Ok(None));
        assert_eq!(c.stats().expirations, 1);
        c.insert(2, 20, t(5 + MAX_STEP)).unwrap();
        assert_eq!(
            c.get(&2, t(5 + MAX_STEP).wrapping_add(Duration(MAX_STEP - 1))),
            Ok(Some(&20))
        );
        let now = t(5 + MAX_STEP).wrapping_add(Duration(MAX_STEP - 1));
        // MAX_STEP + 1 later: an error, nothing changes.
        let stats = c.stats();
        assert_eq!(
            c.get(&2, now.wrapping_add(Duration(MAX_STEP + 1))),
            Err(ClockError::Backwards)
        );
        assert_eq!(c.stats(), stats);
        assert_eq!(c.len(), 1);
        // First call ever: any tick is accepted.
        let mut c = cache::<4>(10);
        assert_eq!(c.get(&1, t(u32::MAX)), Ok(None));
        assert_eq!(c.get(&1, t(MAX_STEP - 1)), Ok(None));
        assert_eq!(c.get(&1, t(MAX_STEP - 2)), Err(ClockError::Backwards));
        check(&c);
    }

    #[test]
    fn sequences_cross_u32_max() {
        let mut c = cache::<4>(10);
        let start = u32::MAX - 5;
        c.insert(1, 10, t(start)).unwrap();
        c.insert(2, 20, t(u32::MAX)).unwrap();
        assert_eq!(c.get(&1, t(3)), Ok(Some(&10))); // age 9
        assert_eq!(c.get(&1, t(4)), Ok(None)); // age 10
        assert_eq!(c.get(&2, t(8)), Ok(Some(&20))); // age 9
        assert_eq!(c.get(&2, t(9)), Ok(None));
        check(&c);
        // Idle mode across the wrap, repeatedly, with long TTLs.
        let mut c = idle::<4>(MAX_STEP);
        let mut now = t(u32::MAX - 1);
        c.insert(7, 70, now).unwrap();
        for _ in 0..8 {
            now = now.wrapping_add(Duration(MAX_STEP - 1));
            assert_eq!(c.get(&7, now), Ok(Some(&70)));
        }
        now = now.wrapping_add(Duration(MAX_STEP));
        assert_eq!(c.get(&7, now), Ok(None));
        check(&c);
    }

    #[test]
    fn swap_remove_relinks_moved_entry() {
        let mut c: TtlCache<u32, u32, 16> = cache(1000);
        for k in 0..16 {
            c.insert(k, k + 100, t(k)).unwrap();
        }
        check(&c);
        let mut present: std::vec::Vec<u32> = (0..16).collect();
        let mut now = 16;
        for k in [7, 0, 15, 3, 12, 8] {
            assert_eq!(c.remove(&k, t(now)), Ok(Some(k + 100)));
            assert_eq!(c.remove(&k, t(now)), Ok(None));
            present.retain(|&p| p != k);
            check(&c);
            for &p in &present {
                assert_eq!(c.peek(&p, t(now)), Some(&(p + 100)), "lost {p}");
            }
            now += 1;
        }
        // Keep operating: the LRU order survived the moves (oldest write first).
        for k in 100..106 {
            assert_eq!(c.insert(k, k, t(now)), Ok(Inserted::New));
        }
        check(&c);
        for (i, k) in (100..110).enumerate() {
            let victim = present[i];
            assert_eq!(
                c.insert(k + 10, 0, t(now)),
                Ok(Inserted::Evicted {
                    key: victim,
                    value: victim + 100
                })
            );
            check(&c);
        }
        // Expiry order survived too: entries expire in write order.
        let mut c: TtlCache<u32, u32, 8> = cache(100);
        for k in 0..8 {
            c.insert(k, k, t(k * 10)).unwrap();
        }
        c.remove(&0, t(75)).unwrap();
        c.remove(&4, t(75)).unwrap();
        check(&c);
        for (k, at) in [(1, 110), (2, 120), (3, 130), (5, 150), (6, 160), (7, 170)] {
            assert_eq!(c.peek(&k, t(at - 1)), Some(&k));
            assert_eq!(c.purge_expired(t(at)), Ok(1), "{k}");
            check(&c);
        }
        assert!(c.is_empty());
    }

    #[test]
    fn u16_index_and_byte_keys() {
        let mut c: TtlCache<[u8; 5], u8, 64, u16> = TtlCache::new(Duration(50)).unwrap();
        for i in 0..200u32 {
            let key = [i as u8, 1, 2, 3, (i >> 8) as u8];
            let r = c.insert(key, i as u8, t(i / 4)).unwrap();
            if i < 64 {
                assert_eq!(r, Inserted::New);
            } else {
                assert!(matches!(r, Inserted::Evicted { .. }), "{i}: {r:?}");
            }
            check(&c);
        }
        assert_eq!(c.len(), 64);
        assert_eq!(c.peek(&[199, 1, 2, 3, 0], t(49)), Some(&199));
        // The largest capacity a u16 index allows (a static: 1.2 MB is too much stack).
        static BIG: TtlCache<u8, u8, 65534, u16> = TtlCache::new_const::<1>();
        assert_eq!(BIG.capacity(), 65534);
    }

    #[test]
    fn capacity_one() {
        let mut c = cache::<1>(10);
        assert_eq!(c.insert(1, 10, t(0)), Ok(Inserted::New));
        assert_eq!(c.insert(1, 11, t(1)), Ok(Inserted::Replaced(10)));
        assert_eq!(
            c.insert(2, 20, t(2)),
            Ok(Inserted::Evicted { key: 1, value: 11 })
        );
        check(&c);
        assert_eq!(c.get(&1, t(3)), Ok(None));
        assert_eq!(c.get(&2, t(3)), Ok(Some(&20)));
        assert_eq!(c.insert(3, 30, t(12)), Ok(Inserted::New)); // 2 expired at 12
        assert_eq!(c.remove(&3, t(12)), Ok(Some(30)));
        assert!(c.is_empty());
        check(&c);
        assert_eq!(c.insert(4, 40, t(13)), Ok(Inserted::New));
        check(&c);
    }

    #[test]
    fn clear_iter_get_mut() {
        let mut c = idle::<8>(10);
        for k in 0..5 {
            c.insert(k, k, t(0)).unwrap();
        }
        if let Ok(Some(v)) = c.get_mut(&3, t(1)) {
            *v = 33;
        }
        assert_eq!(c.peek(&3, t(1)), Some(&33));
        let mut all: std::vec::Vec<(u32, u32)> = c.iter().map(|(k, v)| (*k, *v)).collect();
        all.sort_unstable();
        assert_eq!(all, [(0, 0), (1, 1), (2, 2), (3, 33), (4, 4)]);
        assert_eq!(c.iter().len(), 5);
        let stats = c.stats();
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.stats(), stats);
        assert_eq!(c.get(&3, t(2)), Ok(None));
        assert_eq!(c.get(&3, t(0)), Err(ClockError::Backwards)); // clock kept
        c.insert(3, 3, t(2)).unwrap();
        check(&c);
        let s = std::format!("{c:?}");
        assert!(s.contains("TtlCache") && s.contains("3: 3"), "{s}");
    }

    #[test]
    fn errors_display() {
        assert!(!std::format!("{}", CacheConfigError::ZeroTtl).is_empty());
        assert!(!std::format!("{}", CacheConfigError::TtlTooLong).is_empty());
        let e = InsertError {
            key: 1u8,
            value: 2u8,
            error: ClockError::Backwards,
        };
        assert!(std::format!("{e}").contains("backwards"));
        let _: &dyn core::error::Error = &e;
    }

    #[test]
    fn many_keys_random_ops_keep_invariants() {
        // A small deterministic xorshift drives a long mixed sequence.
        let mut s = 0x1234_5678u32;
        let mut rng = move || {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s
        };
        for idle_mode in [false, true] {
            let mut c: TtlCache<u32, u32, 32, u16> = if idle_mode {
                TtlCache::new_idle(Duration(200)).unwrap()
            } else {
                TtlCache::new(Duration(200)).unwrap()
            };
            let mut now = Instant(u32::MAX - 3000);
            for _ in 0..20_000 {
                now = now.wrapping_add(Duration(rng() % 4));
                let key = rng() % 64;
                match rng() % 4 {
                    0 => {
                        let _ = c.get(&key, now).unwrap();
                    }
                    1 | 2 => {
                        let _ = c.insert(key, key, now).unwrap();
                    }
                    _ => {
                        let _ = c.remove(&key, now).unwrap();
                    }
                }
                check(&c);
            }
        }
    }
}
