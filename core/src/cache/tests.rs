use super::*;

/// The per-call-clock shape on top of `advance`, so that the behaviour tests
/// below read as a sequence of timed calls.
impl<K: Hash + Eq + Clone, V: Clone, const N: usize, Ix: CacheIndex> TtlCache<K, V, N, Ix> {
    fn get_at(&mut self, key: &K, now: Instant) -> Result<Option<&V>, ClockError> {
        self.advance(now)?;
        Ok(self.get(key))
    }

    fn get_mut_at(&mut self, key: &K, now: Instant) -> Result<Option<&mut V>, ClockError> {
        self.advance(now)?;
        Ok(self.get_mut(key))
    }

    fn insert_at(&mut self, key: K, value: V, now: Instant) -> Result<Inserted<K, V>, ClockError> {
        self.advance(now)?;
        Ok(self.insert(key, value))
    }

    fn remove_at_t(&mut self, key: &K, now: Instant) -> Result<Option<V>, ClockError> {
        self.advance(now)?;
        Ok(self.remove(key))
    }

    /// The value `key` would have at `now`, without touching `self`.
    fn peek_at(&self, key: &K, now: Instant) -> Option<V> {
        let mut c = self.clone();
        c.advance(now).ok()?;
        c.peek(key).cloned()
    }
}

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
            assert_eq!(c.bucket(&c.keys[i]), b);
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
                    let last = Instant(c.clock);
                    assert!(
                        last.wrapping_since(Instant(c.stamps[p]))
                            >= last.wrapping_since(Instant(c.stamps[i]))
                    );
                }
                assert!(c.alive(i), "expired entry left behind");
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
        c.insert_at(k, k, Instant(k)).unwrap();
    }
    c.get_at(&0, Instant(10)).unwrap();
    // Shrinking evicts the least recently used: 1, 2, 3 (0 was just read).
    c.set_limit(3).unwrap();
    check(&c);
    assert_eq!(c.len(), 3);
    assert_eq!(c.stats().evictions, 3);
    for k in [0, 4, 5] {
        assert!(c.peek_at(&k, Instant(10)).is_some(), "{k}");
    }
    // At the limit, an insert evicts.
    assert!(matches!(
        c.insert_at(9, 9, Instant(11)).unwrap(),
        Inserted::Evicted { key: 4, .. }
    ));
    assert_eq!(c.len(), 3);
    c.set_limit(8).unwrap();
    c.insert_at(10, 10, Instant(12)).unwrap();
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
    assert_eq!(c.insert_at(1, 2, t(0)), Ok(Inserted::New));
    assert_eq!(c.get_at(&1, t(4)), Ok(Some(&2)));
    assert_eq!(c.get_at(&1, t(5)), Ok(None));
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
    assert_eq!(c.get_at(&1, t(0)), Ok(None));
    assert_eq!(c.insert_at(1, 10, t(1)), Ok(Inserted::New));
    assert_eq!(c.get_at(&1, t(2)), Ok(Some(&10)));
    assert_eq!(c.get_at(&1, t(3)), Ok(Some(&10)));
    assert_eq!(c.get_at(&2, t(3)), Ok(None));
    assert_eq!(c.peek_at(&1, t(3)), Some(10)); // not counted
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
    assert_eq!(c.insert_at(1, 10, t(100)), Ok(Inserted::New));
    assert_eq!(c.peek_at(&1, t(109)), Some(10));
    assert_eq!(c.peek_at(&1, t(110)), None);
    assert_eq!(c.get_at(&1, t(109)), Ok(Some(&10)));
    assert_eq!(c.len(), 1);
    assert_eq!(c.get_at(&1, t(110)), Ok(None));
    assert_eq!(c.len(), 0);
    assert_eq!(c.stats().expirations, 1);
    assert_eq!(c.stats().misses, 1);
    // ttl = 1: alive only at the write tick.
    let mut c = cache::<4>(1);
    c.insert_at(5, 50, t(7)).unwrap();
    assert_eq!(c.get_at(&5, t(7)), Ok(Some(&50)));
    assert_eq!(c.get_at(&5, t(8)), Ok(None));
    check(&c);
}

#[test]
fn ttl_from_write_is_not_extended_by_hits() {
    let mut c = cache::<4>(10);
    c.insert_at(1, 10, t(0)).unwrap();
    for now in 1..10 {
        assert_eq!(c.get_at(&1, t(now)), Ok(Some(&10)));
    }
    assert_eq!(c.get_at(&1, t(10)), Ok(None));
    // A write (replace) does restart it.
    c.insert_at(2, 20, t(10)).unwrap();
    assert_eq!(c.insert_at(2, 21, t(15)), Ok(Inserted::Replaced(20)));
    assert_eq!(c.get_at(&2, t(24)), Ok(Some(&21)));
    assert_eq!(c.get_at(&2, t(25)), Ok(None));
    check(&c);
}

#[test]
fn idle_mode_hits_refresh() {
    let mut c = idle::<4>(10);
    c.insert_at(1, 10, t(0)).unwrap();
    c.insert_at(2, 20, t(0)).unwrap();
    for now in (9..100).step_by(9) {
        assert_eq!(c.get_at(&1, t(now)), Ok(Some(&10)), "at {now}");
        check(&c);
    }
    // 2 was never hit: purged at 10.
    assert_eq!(c.len(), 1);
    assert_eq!(c.stats().expirations, 1);
    // get_mut refreshes too; peek does not.
    assert_eq!(
        c.get_mut_at(&1, t(105)).map(|v| v.map(|v| *v)),
        Ok(Some(10))
    );
    assert_eq!(c.peek_at(&1, t(114)), Some(10));
    assert_eq!(c.peek_at(&1, t(115)), None);
    assert_eq!(c.get_at(&1, t(115)), Ok(None));
    check(&c);
}

#[test]
fn idle_refresh_reorders_expiry_list() {
    let mut c = idle::<4>(10);
    c.insert_at(1, 1, t(0)).unwrap();
    c.insert_at(2, 2, t(1)).unwrap();
    c.insert_at(3, 3, t(2)).unwrap();
    assert_eq!(c.get_at(&1, t(5)), Ok(Some(&1))); // 1 now expires at 15
    check(&c);
    assert_eq!(c.advance(t(11)), Ok(1)); // 2
    assert_eq!(c.advance(t(12)), Ok(1)); // 3
    assert_eq!(c.advance(t(14)), Ok(0));
    assert_eq!(c.peek_at(&1, t(14)), Some(1));
    assert_eq!(c.advance(t(15)), Ok(1));
    assert!(c.is_empty());
    check(&c);
}

#[test]
fn lru_eviction_order_and_handback() {
    let mut c = cache::<3>(1000);
    for k in 1..=3 {
        assert_eq!(c.insert_at(k, k * 10, t(k)), Ok(Inserted::New));
    }
    assert!(c.is_full());
    // Recency: 1 < 2 < 3. Touch 1, then 2 is the LRU.
    assert_eq!(c.get_at(&1, t(4)), Ok(Some(&10)));
    assert_eq!(
        c.insert_at(4, 40, t(5)),
        Ok(Inserted::Evicted { key: 2, value: 20 })
    );
    check(&c);
    // peek does not change recency: 3 is next.
    assert_eq!(c.peek_at(&3, t(6)), Some(30));
    // A replace makes the entry MRU.
    assert_eq!(c.insert_at(3, 31, t(6)), Ok(Inserted::Replaced(30)));
    assert_eq!(
        c.insert_at(5, 50, t(7)),
        Ok(Inserted::Evicted { key: 1, value: 10 })
    );
    assert_eq!(
        c.insert_at(6, 60, t(8)),
        Ok(Inserted::Evicted { key: 4, value: 40 })
    );
    assert_eq!(
        c.insert_at(7, 70, t(9)),
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
    c.insert_at(1, 10, t(0)).unwrap();
    c.insert_at(2, 20, t(5)).unwrap();
    c.get_at(&1, t(6)).unwrap(); // 2 is LRU, but 1 expires first
    assert_eq!(c.insert_at(3, 30, t(10)), Ok(Inserted::New));
    assert_eq!(c.stats().expirations, 1);
    assert_eq!(c.stats().evictions, 0);
    assert_eq!(c.peek_at(&2, t(10)), Some(20));
    assert_eq!(c.peek_at(&1, t(10)), None);
    // Re-inserting an expired key is New, not Replaced.
    let mut c = cache::<2>(10);
    c.insert_at(1, 10, t(0)).unwrap();
    assert_eq!(c.insert_at(1, 11, t(10)), Ok(Inserted::New));
    check(&c);
}

#[test]
fn clock_backwards_changes_nothing() {
    let mut c = cache::<4>(100);
    c.insert_at(1, 10, t(50)).unwrap();
    c.insert_at(2, 20, t(60)).unwrap();
    c.get_at(&1, t(61)).unwrap();
    c.get_at(&9, t(61)).unwrap();
    let stats = c.stats();
    let snapshot = c.clone();
    // 1 to ttl - 1 ticks back: refused, nothing changes.
    for back in [1, 2, 50, 61, 99] {
        assert_eq!(
            c.advance(t(61u32.wrapping_sub(back))),
            Err(ClockError::Backwards),
            "{back}"
        );
    }
    assert_eq!(c.get_at(&1, t(60)), Err(ClockError::Backwards));
    assert_eq!(
        c.get_mut_at(&2, t(0)).map(|v| v.is_some()),
        Err(ClockError::Backwards)
    );
    assert_eq!(c.remove_at_t(&1, t(60)), Err(ClockError::Backwards));
    assert_eq!(c.insert_at(3, 30, t(60)), Err(ClockError::Backwards));
    assert_eq!(c.stats(), stats);
    assert_eq!(c.len(), 2);
    assert_eq!(c.now(), Some(t(61)));
    assert_eq!(c.stamps.as_slice(), snapshot.stamps.as_slice());
    assert_eq!(c.links.as_slice(), snapshot.links.as_slice());
    assert_eq!(c.buckets, snapshot.buckets);
    assert_eq!(c.ends, snapshot.ends);
    // The cache keeps working at its own clock after a refused advance.
    assert_eq!(c.get(&1), Some(&10));
    assert_eq!(c.insert(3, 30), Inserted::New);
    assert_eq!(c.remove(&3), Some(30));
    // The same tick is fine.
    assert_eq!(c.get_at(&1, t(61)), Ok(Some(&10)));
    check(&c);
}

/// Issue 10, part 2: `now` 2^31 ticks or more ahead of the clock (or a whole TTL
/// or more behind it, the same thing on a wrapping counter) means everything
/// expired: accepted, the clock resynchronises and the cache keeps working.
#[test]
fn long_gap_expires_everything_and_resynchronises() {
    for ttl in [1, 10, 1000, MAX_STEP - 1, MAX_STEP] {
        for gap in [
            MAX_STEP + 1,
            MAX_STEP + 2,
            3_000_000_000,
            u32::MAX - ttl + 1, // exactly ttl behind
            u32::MAX - ttl.saturating_mul(2).min(MAX_STEP),
        ] {
            let back = gap.wrapping_neg();
            if back < ttl {
                continue;
            }
            let mut c = idle::<4>(ttl);
            let start = t(u32::MAX - 3);
            c.insert_at(1, 10, start).unwrap();
            c.insert_at(2, 20, start).unwrap();
            let now = start.wrapping_add(Duration(gap));
            assert_eq!(c.advance(now), Ok(2), "ttl {ttl}, gap {gap}");
            assert!(c.is_empty());
            assert_eq!(c.stats().expirations, 2);
            assert_eq!(c.now(), Some(now));
            // Time runs on from the new clock.
            assert_eq!(c.insert_at(3, 30, now), Ok(Inserted::New));
            let later = now.wrapping_add(Duration(ttl - 1));
            assert_eq!(c.get_at(&3, later), Ok(Some(&30)));
            assert_eq!(c.get_at(&3, later.wrapping_add(Duration(ttl))), Ok(None));
            check(&c);
        }
    }
}

/// Issue 10, part 2: the reported lock-up. After a quiet period of 2^31 ticks or
/// more, the old cache refused every call for up to another 2^31 ticks. Now, for
/// any gap, every operation works, and `advance` is refused only when the gap is
/// within `ttl - 1` ticks below a multiple of 2^32 (a step back, as far as a
/// 32-bit counter can tell), and then only until the counter passes the clock.
#[test]
fn quiet_period_never_locks_the_cache() {
    let ttl = 30_000;
    let mut gaps: std::vec::Vec<u64> = std::vec![
        1 << 31,
        (1 << 31) + 1,
        (1 << 31) + 1000,
        3_000_000_000,
        (1 << 32) - u64::from(ttl),
        (1 << 32) - u64::from(ttl) + 1,
        (1 << 32) - 1,
        1 << 32,
        (1 << 32) + 5,
        (1 << 33) - 7,
        40 * 24 * 3600 * 1000, // 40 days of 1 ms ticks
    ];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        gaps.push(x % (1 << 34));
    }
    for &gap in &gaps {
        let mut c = idle::<8>(ttl);
        let mut real: u64 = 0xffff_ff00; // the caller's monotonic time
        let tick = |r: u64| Instant(r as u32);
        c.insert_at(1, 10, tick(real)).unwrap();
        real += gap;
        let r = gap as u32; // the gap as the counter sees it
        let refused = r > MAX_STEP && r.wrapping_neg() < ttl;
        assert_eq!(c.advance(tick(real)).is_err(), refused, "gap {gap}");
        // Whatever advance said, the cache works.
        assert_eq!(c.insert(2, 20), Inserted::New);
        assert_eq!(c.get(&2), Some(&20));
        assert_eq!(c.remove(&2), Some(20));
        // Keep calling with the monotonic clock: within ttl ticks it is accepted.
        let mut calls = 0;
        while c.advance(tick(real)).is_err() {
            real += 1000;
            calls += 1;
            assert!(calls <= ttl / 1000 + 1, "gap {gap}: refused for too long");
        }
        // From there on, time is exact again.
        assert_eq!(c.insert_at(3, 30, tick(real)), Ok(Inserted::New));
        assert_eq!(c.get_at(&3, tick(real + u64::from(ttl) - 1)), Ok(Some(&30)));
        real += 2 * u64::from(ttl) - 1;
        assert_eq!(c.get_at(&3, tick(real)), Ok(None));
        check(&c);
    }
}

/// A monotonic wrapping clock with steps below 2^31 is never refused, over many
/// wraps, whatever the TTL.
#[test]
fn monotonic_clock_is_never_refused() {
    let mut x = 0x9e37_79b9u32;
    for ttl in [1, 7, 1 << 20, MAX_STEP] {
        let mut c = idle::<4>(ttl);
        let mut now = t(0);
        for i in 0..10_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            now = now.wrapping_add(Duration(if i % 3 == 0 {
                x % (MAX_STEP + 1)
            } else {
                x % 16
            }));
            c.advance(now).unwrap();
            let _ = c.insert(x % 6, i);
        }
        check(&c);
    }
}

#[test]
fn max_step_jump() {
    let mut c = cache::<4>(MAX_STEP);
    c.insert_at(1, 10, t(5)).unwrap();
    // Exactly MAX_STEP later: accepted, and the entry is exactly expired.
    assert_eq!(c.get_at(&1, t(5 + MAX_STEP)), Ok(None));
    assert_eq!(c.stats().expirations, 1);
    c.insert_at(2, 20, t(5 + MAX_STEP)).unwrap();
    assert_eq!(
        c.get_at(&2, t(5 + MAX_STEP).wrapping_add(Duration(MAX_STEP - 1))),
        Ok(Some(&20))
    );
    let now = t(5 + MAX_STEP).wrapping_add(Duration(MAX_STEP - 1));
    // MAX_STEP + 1 later, i.e. 2^31 ticks: read as "everything expired" (it was
    // refused before issue 10; the contract changed on purpose).
    let stats = c.stats();
    assert_eq!(c.advance(now.wrapping_add(Duration(MAX_STEP + 1))), Ok(1));
    assert_eq!(c.stats().expirations, stats.expirations + 1);
    assert!(c.is_empty());
    // First call ever: any tick is accepted; ticks are then read forward from it.
    let mut c = cache::<4>(10);
    assert_eq!(c.now(), None);
    assert_eq!(c.get_at(&1, t(u32::MAX)), Ok(None));
    assert_eq!(c.get_at(&1, t(MAX_STEP - 1)), Ok(None));
    // 1 to 9 ticks behind: refused (ttl 10); 10 behind: a long gap, accepted.
    assert_eq!(c.get_at(&1, t(MAX_STEP - 2)), Err(ClockError::Backwards));
    assert_eq!(c.get_at(&1, t(MAX_STEP - 10)), Err(ClockError::Backwards));
    assert_eq!(c.get_at(&1, t(MAX_STEP - 11)), Ok(None));
    assert_eq!(c.now(), Some(t(MAX_STEP - 11)));
    check(&c);
}

#[test]
fn sequences_cross_u32_max() {
    let mut c = cache::<4>(10);
    let start = u32::MAX - 5;
    c.insert_at(1, 10, t(start)).unwrap();
    c.insert_at(2, 20, t(u32::MAX)).unwrap();
    assert_eq!(c.get_at(&1, t(3)), Ok(Some(&10))); // age 9
    assert_eq!(c.get_at(&1, t(4)), Ok(None)); // age 10
    assert_eq!(c.get_at(&2, t(8)), Ok(Some(&20))); // age 9
    assert_eq!(c.get_at(&2, t(9)), Ok(None));
    check(&c);
    // Idle mode across the wrap, repeatedly, with long TTLs.
    let mut c = idle::<4>(MAX_STEP);
    let mut now = t(u32::MAX - 1);
    c.insert_at(7, 70, now).unwrap();
    for _ in 0..8 {
        now = now.wrapping_add(Duration(MAX_STEP - 1));
        assert_eq!(c.get_at(&7, now), Ok(Some(&70)));
    }
    now = now.wrapping_add(Duration(MAX_STEP));
    assert_eq!(c.get_at(&7, now), Ok(None));
    check(&c);
}

#[test]
fn swap_remove_relinks_moved_entry() {
    let mut c: TtlCache<u32, u32, 16> = cache(1000);
    for k in 0..16 {
        c.insert_at(k, k + 100, t(k)).unwrap();
    }
    check(&c);
    let mut present: std::vec::Vec<u32> = (0..16).collect();
    let mut now = 16;
    for k in [7, 0, 15, 3, 12, 8] {
        assert_eq!(c.remove_at_t(&k, t(now)), Ok(Some(k + 100)));
        assert_eq!(c.remove_at_t(&k, t(now)), Ok(None));
        present.retain(|&p| p != k);
        check(&c);
        for &p in &present {
            assert_eq!(c.peek_at(&p, t(now)), Some(p + 100), "lost {p}");
        }
        now += 1;
    }
    // Keep operating: the LRU order survived the moves (oldest write first).
    for k in 100..106 {
        assert_eq!(c.insert_at(k, k, t(now)), Ok(Inserted::New));
    }
    check(&c);
    for (i, k) in (100..110).enumerate() {
        let victim = present[i];
        assert_eq!(
            c.insert_at(k + 10, 0, t(now)),
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
        c.insert_at(k, k, t(k * 10)).unwrap();
    }
    c.remove_at_t(&0, t(75)).unwrap();
    c.remove_at_t(&4, t(75)).unwrap();
    check(&c);
    for (k, at) in [(1, 110), (2, 120), (3, 130), (5, 150), (6, 160), (7, 170)] {
        assert_eq!(c.peek_at(&k, t(at - 1)), Some(k));
        assert_eq!(c.advance(t(at)), Ok(1), "{k}");
        check(&c);
    }
    assert!(c.is_empty());
}

#[test]
fn u16_index_and_byte_keys() {
    let mut c: TtlCache<[u8; 5], u8, 64, u16> = TtlCache::new(Duration(50)).unwrap();
    for i in 0..200u32 {
        let key = [i as u8, 1, 2, 3, (i >> 8) as u8];
        let r = c.insert_at(key, i as u8, t(i / 4)).unwrap();
        if i < 64 {
            assert_eq!(r, Inserted::New);
        } else {
            assert!(matches!(r, Inserted::Evicted { .. }), "{i}: {r:?}");
        }
        check(&c);
    }
    assert_eq!(c.len(), 64);
    assert_eq!(c.peek_at(&[199, 1, 2, 3, 0], t(49)), Some(199));
    // The largest capacity a u16 index allows (a static: 1.2 MB is too much stack).
    static BIG: TtlCache<u8, u8, 65534, u16> = TtlCache::new_const::<1>();
    assert_eq!(BIG.capacity(), 65534);
}

#[test]
fn capacity_one() {
    let mut c = cache::<1>(10);
    assert_eq!(c.insert_at(1, 10, t(0)), Ok(Inserted::New));
    assert_eq!(c.insert_at(1, 11, t(1)), Ok(Inserted::Replaced(10)));
    assert_eq!(
        c.insert_at(2, 20, t(2)),
        Ok(Inserted::Evicted { key: 1, value: 11 })
    );
    check(&c);
    assert_eq!(c.get_at(&1, t(3)), Ok(None));
    assert_eq!(c.get_at(&2, t(3)), Ok(Some(&20)));
    assert_eq!(c.insert_at(3, 30, t(12)), Ok(Inserted::New)); // 2 expired at 12
    assert_eq!(c.remove_at_t(&3, t(12)), Ok(Some(30)));
    assert!(c.is_empty());
    check(&c);
    assert_eq!(c.insert_at(4, 40, t(13)), Ok(Inserted::New));
    check(&c);
}

#[test]
fn clear_iter_get_mut() {
    let mut c = idle::<8>(10);
    for k in 0..5 {
        c.insert_at(k, k, t(0)).unwrap();
    }
    if let Ok(Some(v)) = c.get_mut_at(&3, t(1)) {
        *v = 33;
    }
    assert_eq!(c.peek_at(&3, t(1)), Some(33));
    let mut all: std::vec::Vec<(u32, u32)> = c.iter().map(|(k, v)| (*k, *v)).collect();
    all.sort_unstable();
    assert_eq!(all, [(0, 0), (1, 1), (2, 2), (3, 33), (4, 4)]);
    assert_eq!(c.iter().len(), 5);
    let stats = c.stats();
    c.clear();
    assert!(c.is_empty());
    assert_eq!(c.stats(), stats);
    // clear() forgets the clock (it kept it before issue 10): any tick is next.
    assert_eq!(c.now(), None);
    assert_eq!(c.get_at(&3, t(2)), Ok(None));
    let mut d = c.clone();
    d.clear();
    assert_eq!(d.get_at(&3, t(0)), Ok(None));
    c.insert_at(3, 3, t(2)).unwrap();
    check(&c);
    let s = std::format!("{c:?}");
    assert!(s.contains("TtlCache") && s.contains("3: 3"), "{s}");
}

#[test]
fn errors_display() {
    assert!(!std::format!("{}", CacheConfigError::ZeroTtl).is_empty());
    assert!(!std::format!("{}", CacheConfigError::TtlTooLong).is_empty());
    let e = ClockError::Backwards;
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
                    let _ = c.get_at(&key, now).unwrap();
                }
                1 | 2 => {
                    let _ = c.insert_at(key, key, now).unwrap();
                }
                _ => {
                    let _ = c.remove_at_t(&key, now).unwrap();
                }
            }
            check(&c);
        }
    }
}

/// Keys whose bucket under `seed` equals that of the first one: an attacker's
/// crafted set against a known seed, found by brute force as an attacker would.
fn crafted<const N: usize>(seed: u64, count: usize) -> std::vec::Vec<u64> {
    let c: TtlCache<u64, (), N, u32> = TtlCache::new(Duration(10)).unwrap().with_seed(seed);
    let target = c.bucket(&0);
    (0u64..)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .filter(|k| c.bucket(k) == target)
        .take(count)
        .collect()
}

/// Per-bucket counts of `keys` under `seed`.
fn loads<const N: usize>(seed: u64, keys: &[u64]) -> std::vec::Vec<usize> {
    let c: TtlCache<u64, (), N, u32> = TtlCache::new(Duration(10)).unwrap().with_seed(seed);
    let mut l = std::vec![0usize; N];
    for k in keys {
        l[c.bucket(k)] += 1;
    }
    l
}

/// Issue 10, part 3: keys crafted to collide in one bucket under one seed spread
/// evenly under another (as evenly as random keys: balls into bins).
#[test]
fn crafted_collisions_spread_under_another_seed() {
    const N: usize = 1024;
    for (a, b) in [
        (DEFAULT_SEED, 0x5eed_0000_0000_0001),
        (1, 2),
        (0, u64::MAX),
        (0xdead_beef, 0xdead_beee),
    ] {
        let keys = crafted::<N>(a, N);
        assert_eq!(loads::<N>(a, &keys).iter().max(), Some(&N), "seed {a:#x}");
        let l = loads::<N>(b, &keys);
        let max = *l.iter().max().unwrap();
        let used = l.iter().filter(|&&n| n > 0).count();
        // N keys into N buckets: max load ~5 and ~63% of buckets used (1 - 1/e).
        assert!(max <= 8, "seeds {a:#x} -> {b:#x}: max bucket {max}");
        assert!(
            (580..=720).contains(&used),
            "seeds {a:#x} -> {b:#x}: {used} buckets used"
        );
        // Chi-square against uniform, 1023 degrees of freedom: mean 1023, sd 45.
        let chi2: f64 = l.iter().map(|&n| (n as f64 - 1.0).powi(2)).sum();
        assert!(
            chi2 < 1023.0 + 6.0 * 45.0,
            "seeds {a:#x} -> {b:#x}: chi2 {chi2}"
        );
    }
}

/// The same crafted keys in real caches: one chain of `N` under the seed they
/// were crafted for, short chains under another; results are identical.
#[test]
fn seeded_cache_defeats_crafted_keys() {
    const N: usize = 256;
    let keys = crafted::<N>(DEFAULT_SEED, N);
    let longest_chain = |c: &TtlCache<u64, u32, N>| {
        c.buckets
            .iter()
            .map(|&h| {
                let mut n = 0;
                let mut cur = decode(h);
                while let Some(i) = cur {
                    n += 1;
                    cur = decode(c.links[i][CHAIN]);
                }
                n
            })
            .max()
            .unwrap()
    };
    let mut flooded: TtlCache<u64, u32, N> = TtlCache::new_idle(Duration(100)).unwrap();
    let mut seeded: TtlCache<u64, u32, N> = TtlCache::new_idle(Duration(100))
        .unwrap()
        .with_seed(0x0123_4567_89ab_cdef);
    assert_eq!(seeded.seed(), 0x0123_4567_89ab_cdef);
    assert_eq!(flooded.seed(), DEFAULT_SEED);
    for (i, &k) in keys.iter().enumerate() {
        let now = t(i as u32 / 4);
        assert_eq!(
            flooded.insert_at(k, i as u32, now),
            seeded.insert_at(k, i as u32, now)
        );
    }
    assert_eq!(longest_chain(&flooded), N);
    assert!(longest_chain(&seeded) <= 8, "{}", longest_chain(&seeded));
    for &k in keys.iter().rev() {
        assert_eq!(flooded.get_at(&k, t(70)), seeded.get_at(&k, t(70)));
    }
    assert_eq!(flooded.stats(), seeded.stats());
    check(&flooded);
    check(&seeded);
}

/// `set_seed` moves stored entries to their new buckets and keeps everything
/// else: contents, recency, expiry order, clock and statistics.
#[test]
fn set_seed_rehashes_in_place() {
    let mut a = idle::<16>(50);
    for k in 0..16u32 {
        a.insert_at(k * 7, k, t(k)).unwrap();
    }
    a.get_at(&0, t(20)).unwrap();
    a.remove_at_t(&21, t(20)).unwrap();
    let mut b = a.clone();
    b.set_seed(42);
    assert_eq!(b.seed(), 42);
    check(&b);
    assert_eq!(b.stats(), a.stats());
    assert_eq!(b.now(), a.now());
    for k in 0..120u32 {
        assert_eq!(b.peek(&k), a.peek(&k), "{k}");
    }
    // Same evictions and expirations from here on.
    for k in 100..140u32 {
        let now = t(20 + k / 3);
        assert_eq!(a.insert_at(k, k, now), b.insert_at(k, k, now), "{k}");
        assert_eq!(a.get_at(&(k - 90), now), b.get_at(&(k - 90), now), "{k}");
    }
    assert_eq!(a.stats(), b.stats());
    check(&b);
    // A byte-array key (a 5-tuple) seeds the same way.
    let mut f: TtlCache<[u8; 13], u8, 8, u16> = TtlCache::new(Duration(9)).unwrap();
    f.advance(t(0)).unwrap();
    f.insert([1; 13], 1);
    f.set_seed(7);
    assert_eq!(f.get(&[1; 13]), Some(&1));
    check(&f);
}

/// Entries stored before the first `advance` are stamped at the unset clock and
/// keep age 0 when the first `advance` sets it, whatever the tick.
#[test]
fn entries_before_the_first_advance() {
    for first in [0, 5, MAX_STEP, MAX_STEP + 1, u32::MAX] {
        let mut c = cache::<4>(10);
        assert_eq!(c.now(), None);
        assert_eq!(c.insert(1, 10), Inserted::New);
        assert_eq!(c.advance(t(first)), Ok(0));
        assert_eq!(c.now(), Some(t(first)));
        let at = t(first).wrapping_add(Duration(9));
        assert_eq!(c.get_at(&1, at), Ok(Some(&10)), "{first}");
        assert_eq!(
            c.get_at(&1, at.wrapping_add(Duration(1))),
            Ok(None),
            "{first}"
        );
        check(&c);
    }
}

/// Issue 11: a full insert evicts in place. The new entry takes the least recently
/// used entry's slot and no other entry moves; LRU and expiry order, chains and
/// stats stay as they were (in both modes, with a lowered limit, with u16 links).
#[test]
fn eviction_reuses_the_lru_slot() {
    fn run<const IDLE: bool>() {
        let mut c: TtlCache<u32, u32, 16, u16> = if IDLE {
            TtlCache::new_idle(Duration(1000)).unwrap()
        } else {
            TtlCache::new(Duration(1000)).unwrap()
        };
        c.set_limit(8).unwrap();
        for k in 0..8 {
            assert_eq!(c.insert_at(k, k * 10, t(k)), Ok(Inserted::New));
        }
        assert_eq!(c.get_at(&0, t(8)), Ok(Some(&0))); // 1 is now least recently used
        let mut next_victim = [1u32, 2, 3, 4, 5, 6, 7, 0].into_iter();
        for (n, new) in (100u32..116).enumerate() {
            let before: std::vec::Vec<u32> = c.keys.iter().copied().collect();
            let victim = next_victim.next().unwrap_or(100 + n as u32 - 8);
            let now = t(10 + n as u32);
            assert_eq!(
                c.insert_at(new, new * 10, now),
                Ok(Inserted::Evicted {
                    key: victim,
                    value: victim * 10
                })
            );
            check(&c);
            assert_eq!(c.len(), 8);
            for (&was, &is) in before.iter().zip(c.keys.iter()) {
                assert_eq!(is, if was == victim { new } else { was }, "entry moved");
            }
            assert_eq!(c.peek(&new), Some(&(new * 10)));
            assert_eq!(c.peek(&victim), None);
        }
        let s = c.stats();
        assert_eq!((s.insertions, s.evictions, s.hits), (24, 16, 1));
        // 108..=115 remain, written at 18..=25: expiry order followed the slots'
        // new stamps, so at 1021 exactly the four oldest go.
        assert_eq!(c.advance(t(1021)), Ok(4));
        check(&c);
        let mut left: std::vec::Vec<u32> = c.keys.iter().copied().collect();
        left.sort_unstable();
        assert_eq!(left, [112, 113, 114, 115]);
    }
    run::<false>();
    run::<true>();
}

/// Every place in a long chain: the head, its successor (the two tried
/// without a branch between them) and the entries after them (the walk), for
/// hits, misses, replacements and removals.
#[test]
fn lookups_at_every_chain_position() {
    let mut c: TtlCache<u64, u64, 16, u16> = TtlCache::new(Duration(100)).unwrap();
    // Twelve keys that share one bucket, and four that share it but are absent.
    let mut same: std::vec::Vec<u64> = (0..100_000u64)
        .filter(|k| c.bucket(k) == 3)
        .take(16)
        .collect();
    assert_eq!(same.len(), 16);
    let absent = same.split_off(12);
    c.advance(t(0)).unwrap();
    for &k in &same {
        assert_eq!(c.insert(k, !k), Inserted::New);
    }
    check(&c);
    for (j, &k) in same.iter().enumerate() {
        assert_eq!(c.peek(&k), Some(&!k), "key {j} of the chain");
        assert_eq!(c.get(&k), Some(&!k), "key {j} of the chain");
    }
    for &k in &absent {
        assert_eq!(c.get(&k), None);
    }
    // Replace and remove at the head, second place and deeper.
    for &j in &[11usize, 10, 5, 0] {
        let k = same[j];
        assert_eq!(c.insert(k, k), Inserted::Replaced(!k));
        assert_eq!(c.get(&k), Some(&k));
        assert_eq!(c.remove(&k), Some(k));
        assert_eq!(c.get(&k), None);
        check(&c);
    }
    assert_eq!(c.stats().misses, 4 + 4);
}
