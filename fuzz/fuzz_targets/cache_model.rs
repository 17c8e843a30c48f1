//! `TtlCache` against a model: a `Vec` of entries with absolute (`u64`, never
//! wrapping) time stamps and recency counters.
//!
//! Ops: insert / get / get_mut / remove / purge_expired / peek / set_limit /
//! clear / reset_stats, with clock steps that are small, arbitrary (beyond
//! `MAX_STEP`: rejected), exactly `MAX_STEP`, or long gaps, starting anywhere on
//! the `u32` counter (so it wraps), in both modes (write TTL and idle TTL) and
//! with both index types. After every op the results, `len`, the entries and
//! the statistics must equal the model's.
//!
//! The clock rule of the cache is kept in one function, [`clock_step`], so the
//! model follows a change of the cache's clock API in one place.
#![no_main]

use arbitrary::Arbitrary;
use chring::time::MAX_STEP;
use chring::{
    CacheConfigError, CacheIndex, CacheStats, ClockError, Duration, Inserted, Instant, TtlCache,
};
use libfuzzer_sys::fuzz_target;

const N: usize = 8;

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Dt {
    Small(u8),
    Any(u32),
    MaxStep,
    PastMaxStep,
    /// A multiple of the TTL, plus or minus one tick.
    Ttl(u8, i8),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Op {
    Insert(u8, u32, Dt),
    Get(u8, Dt),
    GetMut(u8, u32, Dt),
    Remove(u8, Dt),
    Purge(Dt),
    Peek(u8, u8),
    SetLimit(u8),
    Clear,
    ResetStats,
}

#[derive(Debug, Arbitrary)]
struct Input {
    ttl: u32,
    idle: bool,
    start: u32,
    ops: Vec<Op>,
}

/// The cache's clock rule (core/src/cache.rs, "Time and wraparound"): the
/// first call is accepted whatever `now`; later ones must be `0..=MAX_STEP`
/// ticks after the previous accepted `now` (wrapping). Returns the step, or
/// `None` when the call must be rejected with nothing changed.
fn clock_step(last: Option<u32>, now: u32) -> Option<u64> {
    match last {
        None => Some(0),
        Some(last) => {
            let d = now.wrapping_sub(last);
            (d <= MAX_STEP).then_some(u64::from(d))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: u16,
    value: u32,
    stamp: u64,
    used: u64,
}

struct Model {
    ttl: u64,
    idle: bool,
    limit: usize,
    last: Option<u32>,
    /// Absolute time of the last accepted call (starts far from 0).
    abs: u64,
    seq: u64,
    entries: Vec<Entry>,
    stats: CacheStats,
}

impl Model {
    fn dt(&self, dt: Dt) -> u32 {
        match dt {
            Dt::Small(d) => u32::from(d),
            Dt::Any(d) => d,
            Dt::MaxStep => MAX_STEP,
            Dt::PastMaxStep => MAX_STEP + 1,
            Dt::Ttl(k, e) => (self.ttl as u32)
                .wrapping_mul(u32::from(k % 4))
                .wrapping_add(e.signum() as u32),
        }
    }

    /// Advances the clock and purges, or says the call is rejected.
    fn advance(&mut self, now: u32) -> Result<usize, ClockError> {
        let step = clock_step(self.last, now).ok_or(ClockError::Backwards)?;
        self.last = Some(now);
        self.abs += step;
        let (abs, ttl) = (self.abs, self.ttl);
        let before = self.entries.len();
        self.entries.retain(|e| abs - e.stamp < ttl);
        let purged = before - self.entries.len();
        self.stats.expirations += purged as u64;
        Ok(purged)
    }

    fn find(&self, key: u16) -> Option<usize> {
        self.entries.iter().position(|e| e.key == key)
    }

    fn evict_lru(&mut self) -> Option<Entry> {
        let i = (0..self.entries.len()).min_by_key(|&i| self.entries[i].used)?;
        self.stats.evictions += 1;
        Some(self.entries.remove(i))
    }

    fn touch(&mut self, i: usize) {
        self.seq += 1;
        self.entries[i].used = self.seq;
    }

    fn lookup(&mut self, key: u16, now: u32) -> Result<Option<usize>, ClockError> {
        self.advance(now)?;
        Ok(match self.find(key) {
            Some(i) => {
                self.stats.hits += 1;
                self.touch(i);
                if self.idle {
                    self.entries[i].stamp = self.abs;
                }
                Some(i)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        })
    }
}

fn check<Ix: CacheIndex>(c: &TtlCache<u16, u32, N, Ix>, m: &Model) {
    assert_eq!(c.len(), m.entries.len(), "len");
    assert_eq!(c.stats(), m.stats, "stats");
    assert_eq!(c.limit(), m.limit, "limit");
    let mut got: Vec<(u16, u32)> = c.iter().map(|(k, v)| (*k, *v)).collect();
    let mut want: Vec<(u16, u32)> = m.entries.iter().map(|e| (e.key, e.value)).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "entries");
}

fn run<Ix: CacheIndex>(input: &Input) {
    let ttl = match input.ttl % 8 {
        0 => input.ttl >> 3, // anything, 0 and > MAX_STEP included
        1 => MAX_STEP,
        _ => 1 + (input.ttl >> 3) % 300,
    };
    let built = if input.idle {
        TtlCache::<u16, u32, N, Ix>::new_idle(Duration(ttl))
    } else {
        TtlCache::<u16, u32, N, Ix>::new(Duration(ttl))
    };
    let mut c = match built {
        Ok(c) => {
            assert!((1..=MAX_STEP).contains(&ttl), "accepted TTL {ttl}");
            c
        }
        Err(e) => {
            let want = if ttl == 0 {
                CacheConfigError::ZeroTtl
            } else {
                CacheConfigError::TtlTooLong
            };
            assert!(ttl == 0 || ttl > MAX_STEP, "rejected TTL {ttl}");
            assert_eq!(e, want);
            return;
        }
    };
    assert_eq!(c.is_idle(), input.idle);
    let mut m = Model {
        ttl: u64::from(ttl),
        idle: input.idle,
        limit: N,
        last: None,
        abs: 1 << 40,
        seq: 0,
        entries: Vec::new(),
        stats: CacheStats::default(),
    };
    // The next call's `now` is relative to the last one made, accepted or not.
    let mut now = input.start;
    for op in input.ops.iter().take(512) {
        match *op {
            Op::Insert(k, v, dt) => {
                let k = u16::from(k % 24);
                now = now.wrapping_add(m.dt(dt));
                let got = c.insert(k, v, Instant(now));
                let want = match m.advance(now) {
                    Err(e) => Err(e),
                    Ok(_) => {
                        let out = match m.find(k) {
                            Some(i) => {
                                let old = std::mem::replace(&mut m.entries[i].value, v);
                                m.entries[i].stamp = m.abs;
                                m.touch(i);
                                Inserted::Replaced(old)
                            }
                            None => {
                                let out = if m.entries.len() >= m.limit {
                                    let e = m.evict_lru().expect("full, so not empty");
                                    Inserted::Evicted {
                                        key: e.key,
                                        value: e.value,
                                    }
                                } else {
                                    Inserted::New
                                };
                                m.seq += 1;
                                m.entries.push(Entry {
                                    key: k,
                                    value: v,
                                    stamp: m.abs,
                                    used: m.seq,
                                });
                                out
                            }
                        };
                        m.stats.insertions += 1;
                        Ok(out)
                    }
                };
                match (got, want) {
                    (Ok(g), Ok(w)) => assert_eq!(g, w, "insert"),
                    (Err(g), Err(w)) => {
                        assert_eq!((g.key, g.value, g.error), (k, v, w), "rejected insert")
                    }
                    (g, w) => panic!("insert: cache {g:?}, model {w:?}"),
                }
            }
            Op::Get(k, dt) => {
                let k = u16::from(k % 24);
                now = now.wrapping_add(m.dt(dt));
                let got = c.get(&k, Instant(now)).map(|v| v.copied());
                let want = m.lookup(k, now).map(|i| i.map(|i| m.entries[i].value));
                assert_eq!(got, want, "get");
            }
            Op::GetMut(k, v, dt) => {
                let k = u16::from(k % 24);
                now = now.wrapping_add(m.dt(dt));
                let got = c.get_mut(&k, Instant(now)).map(|r| {
                    r.map(|slot| {
                        let old = *slot;
                        *slot = v;
                        old
                    })
                });
                let want = m
                    .lookup(k, now)
                    .map(|i| i.map(|i| std::mem::replace(&mut m.entries[i].value, v)));
                assert_eq!(got, want, "get_mut");
            }
            Op::Remove(k, dt) => {
                let k = u16::from(k % 24);
                now = now.wrapping_add(m.dt(dt));
                let got = c.remove(&k, Instant(now));
                let want = m
                    .advance(now)
                    .map(|_| m.find(k).map(|i| m.entries.remove(i).value));
                assert_eq!(got, want, "remove");
            }
            Op::Purge(dt) => {
                now = now.wrapping_add(m.dt(dt));
                assert_eq!(
                    c.purge_expired(Instant(now)),
                    m.advance(now),
                    "purge_expired"
                );
            }
            Op::Peek(k, d) => {
                // No clock check and no change: look at most 255 ticks ahead of
                // the last accepted call.
                let k = u16::from(k % 24);
                let Some(last) = m.last else { continue };
                let at = last.wrapping_add(u32::from(d));
                let abs = m.abs + u64::from(d);
                let want = m
                    .find(k)
                    .filter(|&i| abs - m.entries[i].stamp < m.ttl)
                    .map(|i| m.entries[i].value);
                assert_eq!(c.peek(&k, Instant(at)).copied(), want, "peek");
                assert_eq!(c.contains_key(&k, Instant(at)), want.is_some());
            }
            Op::SetLimit(l) => {
                let l = usize::from(l % (N as u8 + 2));
                let got = c.set_limit(l);
                if l == 0 || l > N {
                    assert_eq!(got, Err(CacheConfigError::BadLimit));
                } else {
                    assert_eq!(got, Ok(()));
                    m.limit = l;
                    while m.entries.len() > l {
                        m.evict_lru();
                    }
                }
            }
            Op::Clear => {
                c.clear();
                m.entries.clear();
            }
            Op::ResetStats => {
                c.reset_stats();
                m.stats = CacheStats::default();
            }
        }
        check(&c, &m);
    }
}

fuzz_target!(|input: Input| {
    run::<u16>(&input);
    run::<u32>(&input);
});
