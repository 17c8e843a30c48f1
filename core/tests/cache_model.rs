//! Model-based test of `TtlCache`: random operation sequences are run against the
//! cache and against an obviously-correct `std` model (a `HashMap` with absolute
//! 64-bit times and a recency counter), comparing every return value (including
//! which entry was evicted), the length, the contents and the statistics after
//! every operation.
//!
//! The model keeps time as an absolute `u64`, so it never relies on wrapping
//! arithmetic: the cache's ticks start near `u32::MAX` in many cases and wrap,
//! and the comparison checks that expiry stays exact across the wrap. Clock steps
//! range from 0 to beyond `MAX_STEP`, and some operations are issued at invalid
//! times (before the previous call or more than `MAX_STEP` after it), which must
//! fail and change nothing.

use std::collections::HashMap;

use chring::cache::{CacheIndex, InsertError};
use chring::time::MAX_STEP;
use chring::{CacheStats, ClockError, Duration, Inserted, Instant, TtlCache};
use proptest::prelude::*;

type K = u8;
type V = u32;

/// Keys come from a small domain so hits, collisions, evictions and expiry are
/// frequent even with tiny capacities.
const KEYS: u8 = 12;

#[derive(Debug, Clone)]
enum Op {
    Get(K),
    /// `get_mut`, then overwrite the value (if found) with a fresh one.
    GetMut(K),
    Insert(K),
    Remove(K),
    Purge,
    /// `peek` at `last + offset` (no clock check, no state change).
    Peek(K, u32),
    /// Move the caller's clock; the next call sees the new `now`.
    Advance(u32),
    /// An operation (0 get, 1 insert, 2 remove, 3 purge) at an invalid time:
    /// `last - (1 + off % 1000)` or `last + MAX_STEP + 1 + off % 1000`.
    BadTime(u8, K, bool, u32),
    Clear,
    ResetStats,
}

#[derive(Debug, Clone)]
struct Case {
    n: usize,
    ix16: bool,
    idle: bool,
    ttl: u32,
    start: u32,
    ops: Vec<Op>,
}

/// The reference: absolute times, a `HashMap`, a recency counter.
#[derive(Debug)]
struct Model {
    cap: usize,
    ttl: u64,
    idle: bool,
    started: bool,
    /// The previous accepted call's `now` (ticks) and its absolute time.
    last: u32,
    abs: u64,
    /// key -> (value, absolute stamp, recency)
    map: HashMap<K, (V, u64, u64)>,
    tick: u64,
    stats: CacheStats,
}

impl Model {
    fn new(cap: usize, ttl: u32, idle: bool) -> Self {
        Self {
            cap,
            ttl: u64::from(ttl),
            idle,
            started: false,
            last: 0,
            abs: 0,
            map: HashMap::new(),
            tick: 0,
            stats: CacheStats::default(),
        }
    }

    /// Accepts `now` if it is at most `MAX_STEP` ticks after the previous call,
    /// then drops every expired entry.
    fn advance(&mut self, now: u32) -> Result<usize, ClockError> {
        if self.started {
            let step = now.wrapping_sub(self.last);
            if step > MAX_STEP {
                return Err(ClockError::Backwards);
            }
            self.abs += u64::from(step);
        }
        self.started = true;
        self.last = now;
        let (abs, ttl) = (self.abs, self.ttl);
        let before = self.map.len();
        self.map.retain(|_, &mut (_, stamp, _)| abs - stamp < ttl);
        let purged = before - self.map.len();
        self.stats.expirations += purged as u64;
        Ok(purged)
    }

    fn touch(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn get(&mut self, k: K, now: u32) -> Result<Option<V>, ClockError> {
        self.advance(now)?;
        let rec = self.touch();
        let (abs, idle) = (self.abs, self.idle);
        match self.map.get_mut(&k) {
            Some(e) => {
                self.stats.hits += 1;
                e.2 = rec;
                if idle {
                    e.1 = abs;
                }
                Ok(Some(e.0))
            }
            None => {
                self.stats.misses += 1;
                Ok(None)
            }
        }
    }

    fn insert(&mut self, k: K, v: V, now: u32) -> Result<Inserted<K, V>, InsertError<K, V>> {
        if let Err(error) = self.advance(now) {
            return Err(InsertError {
                key: k,
                value: v,
                error,
            });
        }
        let rec = self.touch();
        self.stats.insertions += 1;
        if let Some(e) = self.map.get_mut(&k) {
            let old = e.0;
            *e = (v, self.abs, rec);
            return Ok(Inserted::Replaced(old));
        }
        let mut out = Inserted::New;
        if self.map.len() >= self.cap {
            let (&victim, _) = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.2)
                .expect("full map is non-empty");
            let (value, _, _) = self.map.remove(&victim).expect("present");
            self.stats.evictions += 1;
            out = Inserted::Evicted { key: victim, value };
        }
        self.map.insert(k, (v, self.abs, rec));
        Ok(out)
    }

    fn remove(&mut self, k: K, now: u32) -> Result<Option<V>, ClockError> {
        self.advance(now)?;
        Ok(self.map.remove(&k).map(|e| e.0))
    }

    /// The value of `k` if alive `offset` ticks after the last accepted call.
    fn peek(&self, k: K, offset: u32) -> Option<V> {
        let e = self.map.get(&k)?;
        (self.abs + u64::from(offset) - e.1 < self.ttl).then_some(e.0)
    }
}

fn compare<const N: usize, Ix: CacheIndex>(
    cache: &TtlCache<K, V, N, Ix>,
    model: &Model,
    at: usize,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(cache.len(), model.map.len(), "len after op {}", at);
    prop_assert_eq!(cache.is_empty(), model.map.is_empty());
    prop_assert_eq!(cache.is_full(), model.map.len() == N);
    prop_assert_eq!(cache.stats(), model.stats, "stats after op {}", at);
    let mut got: Vec<(K, V)> = cache.iter().map(|(k, v)| (*k, *v)).collect();
    got.sort_unstable();
    let mut want: Vec<(K, V)> = model.map.iter().map(|(k, e)| (*k, e.0)).collect();
    want.sort_unstable();
    prop_assert_eq!(got, want, "contents after op {}", at);
    if model.started {
        for k in 0..KEYS {
            prop_assert_eq!(
                cache.peek(&k, Instant(model.last)).copied(),
                model.peek(k, 0),
                "peek({}) after op {}",
                k,
                at
            );
        }
    }
    Ok(())
}

fn run<const N: usize, Ix: CacheIndex>(case: &Case) -> Result<(), TestCaseError> {
    let ttl = Duration(case.ttl);
    let mut cache: TtlCache<K, V, N, Ix> = if case.idle {
        TtlCache::new_idle(ttl)
    } else {
        TtlCache::new(ttl)
    }
    .expect("valid ttl");
    prop_assert_eq!(cache.capacity(), N);
    prop_assert_eq!(cache.is_idle(), case.idle);
    let mut model = Model::new(N, case.ttl, case.idle);
    let mut now = case.start;
    let mut seq: V = 0;
    for (at, op) in case.ops.iter().enumerate() {
        seq += 1;
        match *op {
            Op::Get(k) => {
                let got = cache.get(&k, Instant(now)).map(Option::<&V>::copied);
                prop_assert_eq!(got, model.get(k, now), "get({}) at op {}", k, at);
            }
            Op::GetMut(k) => {
                let got = match cache.get_mut(&k, Instant(now)) {
                    Ok(Some(v)) => {
                        let old = *v;
                        *v = seq;
                        Ok(Some(old))
                    }
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                let want = model.get(k, now);
                if let Ok(Some(_)) = want {
                    if let Some(e) = model.map.get_mut(&k) {
                        e.0 = seq;
                    }
                }
                prop_assert_eq!(got, want, "get_mut({}) at op {}", k, at);
            }
            Op::Insert(k) => {
                let got = cache.insert(k, seq, Instant(now));
                prop_assert_eq!(got, model.insert(k, seq, now), "insert({}) at op {}", k, at);
            }
            Op::Remove(k) => {
                let got = cache.remove(&k, Instant(now));
                prop_assert_eq!(got, model.remove(k, now), "remove({}) at op {}", k, at);
            }
            Op::Purge => {
                let got = cache.purge_expired(Instant(now));
                prop_assert_eq!(got, model.advance(now), "purge at op {}", at);
            }
            Op::Peek(k, offset) => {
                if model.started {
                    let at_time = Instant(model.last.wrapping_add(offset));
                    prop_assert_eq!(
                        cache.peek(&k, at_time).copied(),
                        model.peek(k, offset),
                        "peek({}, +{}) at op {}",
                        k,
                        offset,
                        at
                    );
                }
            }
            Op::Advance(step) => now = now.wrapping_add(step),
            Op::BadTime(kind, k, back, off) => {
                let bad = if back {
                    model.last.wrapping_sub(1 + off % 1000)
                } else {
                    model.last.wrapping_add(MAX_STEP + 1 + off % 1000)
                };
                // Before the first call every time is valid; the model decides.
                let stats = cache.stats();
                let len = cache.len();
                match kind % 4 {
                    0 => {
                        let got = cache.get(&k, Instant(bad)).map(Option::<&V>::copied);
                        prop_assert_eq!(got, model.get(k, bad), "late get at op {}", at);
                    }
                    1 => {
                        let got = cache.insert(k, seq, Instant(bad));
                        prop_assert_eq!(got, model.insert(k, seq, bad), "late insert at {}", at);
                    }
                    2 => {
                        let got = cache.remove(&k, Instant(bad));
                        prop_assert_eq!(got, model.remove(k, bad), "late remove at op {}", at);
                    }
                    _ => {
                        let got = cache.purge_expired(Instant(bad));
                        prop_assert_eq!(got, model.advance(bad), "late purge at op {}", at);
                    }
                }
                if model.last != bad {
                    // Rejected: nothing changed, stats included.
                    prop_assert_eq!(cache.stats(), stats);
                    prop_assert_eq!(cache.len(), len);
                } else {
                    // Accepted (first call): the caller's clock follows.
                    now = bad;
                }
            }
            Op::Clear => {
                cache.clear();
                model.map.clear();
            }
            Op::ResetStats => {
                cache.reset_stats();
                model.stats = CacheStats::default();
            }
        }
        compare(&cache, &model, at)?;
    }
    Ok(())
}

fn key() -> impl Strategy<Value = K> {
    0..KEYS
}

fn step() -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => 0u32..4,
        4 => 0u32..40,
        1 => (MAX_STEP - 4)..=MAX_STEP,
        1 => 0u32..=MAX_STEP,
        // Huge: the next call must fail (unless further steps wrap it back).
        1 => (MAX_STEP + 1)..=u32::MAX,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => key().prop_map(Op::Get),
        1 => key().prop_map(Op::GetMut),
        7 => key().prop_map(Op::Insert),
        2 => key().prop_map(Op::Remove),
        1 => Just(Op::Purge),
        1 => (key(), prop_oneof![0u32..40, 0u32..=MAX_STEP]).prop_map(|(k, d)| Op::Peek(k, d)),
        6 => step().prop_map(Op::Advance),
        1 => (0u8..4, key(), any::<bool>(), any::<u32>())
            .prop_map(|(kind, k, back, off)| Op::BadTime(kind, k, back, off)),
        1 => Just(Op::Clear),
        1 => Just(Op::ResetStats),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=8,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            4 => 1u32..=12,
            1 => 1u32..=MAX_STEP,
            1 => (MAX_STEP - 2)..=MAX_STEP,
        ],
        prop_oneof![
            2 => (u32::MAX - 64)..=u32::MAX,
            1 => 0u32..64,
            1 => any::<u32>(),
        ],
        prop::collection::vec(op(), 0..200),
    )
        .prop_map(|(n, ix16, idle, ttl, start, ops)| Case {
            n,
            ix16,
            idle,
            ttl,
            start,
            ops,
        })
}

fn dispatch(case: &Case) -> Result<(), TestCaseError> {
    macro_rules! by_n {
        ($ix:ty) => {
            match case.n {
                1 => run::<1, $ix>(case),
                2 => run::<2, $ix>(case),
                3 => run::<3, $ix>(case),
                4 => run::<4, $ix>(case),
                5 => run::<5, $ix>(case),
                6 => run::<6, $ix>(case),
                7 => run::<7, $ix>(case),
                _ => run::<8, $ix>(case),
            }
        };
    }
    if case.ix16 { by_n!(u16) } else { by_n!(u32) }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cache_matches_model(case in case()) {
        dispatch(&case)?;
    }
}

/// A fixed long run near the wrap with both modes, so the slow paths (many
/// expirations, many evictions) are exercised even if the random cases are unlucky.
#[test]
fn long_fixed_sequence_matches_model() {
    let mut ops = Vec::new();
    let mut x = 0x9e37_79b9u32;
    for _ in 0..5000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let k = (x >> 8) as u8 % KEYS;
        ops.push(match x % 7 {
            0 | 1 => Op::Insert(k),
            2 | 3 => Op::Get(k),
            4 => Op::Remove(k),
            5 => Op::Advance(x >> 29),
            _ => Op::Advance((x >> 24) % 9),
        });
    }
    for idle in [false, true] {
        let case = Case {
            n: 8,
            ix16: idle,
            idle,
            ttl: 6,
            start: u32::MAX - 2000,
            ops: ops.clone(),
        };
        dispatch(&case).unwrap();
    }
}
