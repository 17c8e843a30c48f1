//! Each server's cache: a [`chring::TtlCache`] sized at run time.
//!
//! `TtlCache` has a compile-time capacity `N` and a run-time limit
//! ([`TtlCache::set_limit`]). The simulator picks the smallest of three compiled
//! sizes that holds the requested capacity and lowers the limit to it, so small
//! caches stay small (a 1024-slot cache is 36 KiB; the 65,536-slot one 2.3 MiB).

use chring::{CacheStats, ClockError, Duration, Instant, TtlCache};

/// The largest cache capacity the simulator supports.
pub const MAX_CACHE_CAPACITY: usize = 65_536;

/// What a simulated server needs from its cache (object safe, over every `N`).
pub(crate) trait ServerCache: Send {
    /// Looks `key` up at `now`: `true` on a hit.
    fn lookup(&mut self, key: u64, now: Instant) -> Result<bool, ClockError>;
    /// Writes `key` at `now` (its TTL starts now).
    fn write(&mut self, key: u64, now: Instant) -> Result<(), ClockError>;
    /// Drops expired entries at `now`.
    fn purge(&mut self, now: Instant) -> Result<usize, ClockError>;
    /// chring's counters.
    fn stats(&self) -> CacheStats;
}

impl<const N: usize> ServerCache for TtlCache<u64, (), N> {
    fn lookup(&mut self, key: u64, now: Instant) -> Result<bool, ClockError> {
        self.advance(now)?;
        Ok(self.get(&key).is_some())
    }
    fn write(&mut self, key: u64, now: Instant) -> Result<(), ClockError> {
        self.advance(now)?;
        let _ = self.insert(key, ());
        Ok(())
    }
    fn purge(&mut self, now: Instant) -> Result<usize, ClockError> {
        self.advance(now)
    }
    fn stats(&self) -> CacheStats {
        TtlCache::stats(self)
    }
}

fn sized<const N: usize>(capacity: usize, ttl: Duration) -> anyhow::Result<Box<dyn ServerCache>> {
    let mut c = Box::new(TtlCache::<u64, (), N>::new(ttl)?);
    c.set_limit(capacity)?;
    Ok(c)
}

/// A write-TTL cache of `capacity` entries (1..=[`MAX_CACHE_CAPACITY`]) whose
/// entries live `ttl` ticks.
pub(crate) fn new_server_cache(
    capacity: usize,
    ttl: Duration,
) -> anyhow::Result<Box<dyn ServerCache>> {
    match capacity {
        0 => anyhow::bail!("cache capacity must be at least 1"),
        1..=1024 => sized::<1024>(capacity, ttl),
        1025..=8192 => crate::util::on_big_stack(move || sized::<8192>(capacity, ttl))?,
        8193..=MAX_CACHE_CAPACITY => {
            crate::util::on_big_stack(move || sized::<MAX_CACHE_CAPACITY>(capacity, ttl))?
        }
        _ => anyhow::bail!("cache capacity {capacity} exceeds the maximum of {MAX_CACHE_CAPACITY}"),
    }
}
