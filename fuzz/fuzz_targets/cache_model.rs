//! `TtlCache` against a model: a `Vec` of entries with absolute (`u64`, never
//! wrapping) time stamps and recency counters.
//!
//! Every timed op is what a caller with a free-running 32-bit timer does:
//! `advance(now)` (the one fallible call), then the infallible operation, which
//! works at the cache's clock whether or not `advance` accepted `now`. Ops:
//! insert / get / get_mut / remove / advance alone / peek / contains_key /
//! set_seed / set_limit / clear / reset_stats, with clock steps that are small,
//! arbitrary, a little behind, exactly 2^31 - 1 or 2^31 ahead, or multiples of the
//! TTL, starting anywhere on the `u32` counter (so it wraps), in both modes (write
//! TTL and idle TTL) and with both index types. After every op the results,
//! `len`, the entries and the statistics must equal the model's.
//!
//! The clock rule is written here from the documented contract (core's cache
//! module docs, "Time"), in absolute time, in one function: [`clock_rule`].
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
    /// A few ticks behind the last `now`.
    Back(u16),
    MaxStep,
    PastMaxStep,
    /// A multiple of the TTL, plus or minus one tick, ahead or behind.
    Ttl(u8, i8, bool),
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Op {
    Insert(u8, u32, Dt),
    Get(u8, Dt),
    GetMut(u8, u32, Dt),
    Remove(u8, Dt),
    Advance(Dt),
    Peek(u8),
    Seed(u64),
    SetLimit(u8),
    Clear,
    ResetStats,
}

#[derive(Debug, Arbitrary)]
struct Input {
    ttl: u32,
    idle: bool,
    seed: Option<u64>,
    start: u32,
    ops: Vec<Op>,
}

/// What `advance(now)` means, from the documented rule with `d = now - clock`
/// (modulo 2^32) and `behind = clock - now` (modulo 2^32).
#[derive(Debug, PartialEq, Eq)]
enum Clock {
    /// First call, or first after `clear`: the clock starts at `now`.
    Start,
    /// `d < 2^31`: forward by `d` ticks.
    Forward(u64),
    /// `d >= 2^31` and `behind >= ttl`: a gap longer than every TTL.
    Gap,
    /// `d >= 2^31` and `behind < ttl`: rejected, nothing changes.
    Backwards,
}

fn clock_rule(clock: Option<u32>, now: u32, ttl: u64) -> Clock {
    let Some(clock) = clock else {
        return Clock::Start;
    };
    let d = (u64::from(now) + (1 << 32) - u64::from(clock)) % (1 << 32);
    let behind = ((1 << 32) - d) % (1 << 32);
    if d < 1 << 31 {
        Clock::Forward(d)
    } else if behind >= ttl {
        Clock::Gap
    } else {
        Clock::Backwards
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
    /// The next `now`, relative to the last one a caller passed.
    fn next(&self, now: u32, dt: Dt) -> u32 {
        match dt {
            Dt::Small(d) => now.wrapping_add(u32::from(d)),
            Dt::Any(d) => now.wrapping_add(d),
            Dt::Back(d) => now.wrapping_sub(u32::from(d)),
            Dt::MaxStep => now.wrapping_add(MAX_STEP),
            Dt::PastMaxStep => now.wrapping_add(MAX_STEP + 1),
            Dt::Ttl(k, e, ahead) => {
                let d = (self.ttl as u32)
                    .wrapping_mul(u32::from(k % 4))
                    .wrapping_add(e.signum() as u32);
                if ahead {
                    now.wrapping_add(d)
                } else {
                    now.wrapping_sub(d)
                }
            }
        }
    }

    /// `advance(now)`: moves the clock and purges, or rejects with nothing changed.
    fn advance(&mut self, now: u32) -> Result<usize, ClockError> {
        let step = match clock_rule(self.last, now, self.ttl) {
            Clock::Start => 0,
            Clock::Forward(d) => d,
            // Every entry is older than the TTL: any step of at least the TTL.
            Clock::Gap => self.ttl.max(1 << 32),
            Clock::Backwards => return Err(ClockError::Backwards),
        };
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

    fn lookup(&mut self, key: u16) -> Option<usize> {
        match self.find(key) {
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
        }
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
    if let Some(seed) = input.seed {
        c = c.with_seed(seed);
        assert_eq!(c.seed(), seed);
    }
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
    // The next `now` is relative to the last one passed, accepted or not.
    let mut now = input.start;
    for op in input.ops.iter().take(512) {
        // Timed ops: `advance` first, compared with the model's clock rule.
        let dt = match *op {
            Op::Insert(_, _, dt) | Op::Get(_, dt) | Op::GetMut(_, _, dt) | Op::Remove(_, dt) => {
                Some(dt)
            }
            Op::Advance(dt) => Some(dt),
            _ => None,
        };
        if let Some(dt) = dt {
            now = m.next(now, dt);
            let want = m.advance(now);
            assert_eq!(c.advance(Instant(now)), want, "advance to {now}");
            if want.is_ok() {
                assert_eq!(c.now(), Some(Instant(now)), "clock after advance");
            }
        }
        match *op {
            Op::Insert(k, v, _) => {
                let k = u16::from(k % 24);
                let got = c.insert(k, v);
                let want = match m.find(k) {
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
                assert_eq!(got, want, "insert");
            }
            Op::Get(k, _) => {
                let k = u16::from(k % 24);
                let got = c.get(&k).copied();
                let want = m.lookup(k).map(|i| m.entries[i].value);
                assert_eq!(got, want, "get");
            }
            Op::GetMut(k, v, _) => {
                let k = u16::from(k % 24);
                let got = c.get_mut(&k).map(|slot| std::mem::replace(slot, v));
                let want = m
                    .lookup(k)
                    .map(|i| std::mem::replace(&mut m.entries[i].value, v));
                assert_eq!(got, want, "get_mut");
            }
            Op::Remove(k, _) => {
                let k = u16::from(k % 24);
                let got = c.remove(&k);
                let want = m.find(k).map(|i| m.entries.remove(i).value);
                assert_eq!(got, want, "remove");
            }
            Op::Advance(_) => {}
            Op::Peek(k) => {
                // Every stored entry is alive at the cache's clock.
                let k = u16::from(k % 24);
                let want = m.find(k).map(|i| m.entries[i].value);
                assert_eq!(c.peek(&k).copied(), want, "peek");
                assert_eq!(c.contains_key(&k), want.is_some(), "contains_key");
            }
            Op::Seed(seed) => {
                c.set_seed(seed);
                assert_eq!(c.seed(), seed);
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
                // Forgets the clock: the next `advance` accepts any `now`.
                c.clear();
                m.entries.clear();
                m.last = None;
                assert_eq!(c.now(), None);
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
