//! Model-based test of `TtlCache`: random operation sequences are run against the
//! cache and against an obviously-correct `std` model (a `HashMap` with absolute
//! 64-bit times and a recency counter), comparing every return value (including
//! which entry was evicted), the length, the contents and the statistics after
//! every operation.
//!
//! The model keeps time as an absolute `u64` and reads the caller's 32-bit ticks
//! with its own rule, written from the contract in the cache's module docs (not
//! from the implementation), with `u64` remainders instead of wrapping
//! arithmetic:
//!
//! - the first `advance` (and the first after `clear`) sets the clock;
//! - `now` that is `ahead = (now - clock) mod 2^32 < 2^31` ticks ahead moves time
//!   forward by `ahead`;
//! - otherwise `now` is `behind = 2^32 - ahead` ticks behind: if `behind < ttl`
//!   the call is refused and nothing changes, else every entry has expired and the
//!   clock is `now`.
//!
//! The cache's ticks start near `u32::MAX` in many cases and wrap; clock steps
//! range from 0 to beyond 2^31, and some `advance`s go back by less or more than
//! the TTL. A second property drives the cache with a monotonic 64-bit clock,
//! truncated to 32 bits as a hardware counter is, and checks it never locks up.

use std::collections::HashMap;

use chring::cache::CacheIndex;
use chring::{CacheStats, ClockError, Duration, Inserted, Instant, TtlCache};
use proptest::prelude::*;

type K = u8;
type V = u32;

/// Keys come from a small domain so hits, collisions, evictions and expiry are
/// frequent even with tiny capacities.
const KEYS: u8 = 12;

const WRAP: u64 = 1 << 32;
const HALF: u64 = 1 << 31;

#[derive(Debug, Clone)]
enum Op {
    Get(K),
    /// `get_mut`, then overwrite the value (if found) with a fresh one.
    GetMut(K),
    Insert(K),
    Remove(K),
    Peek(K),
    /// Move the caller's clock forward by this many ticks, then `advance`.
    Advance(u32),
    /// `advance` to `clock - (1 + off)`: behind the cache's clock, by less or
    /// more than the TTL.
    Back(u32),
    Clear,
    ResetStats,
    /// Reseed (the model ignores seeds: results must not depend on them).
    Seed(u64),
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
    /// The tick of the last accepted `advance`, if any since the start or `clear`.
    clock: Option<u32>,
    /// Absolute time of the clock.
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
            clock: None,
            abs: 0,
            map: HashMap::new(),
            tick: 0,
            stats: CacheStats::default(),
        }
    }

    fn expire(&mut self) -> usize {
        let (abs, ttl) = (self.abs, self.ttl);
        let before = self.map.len();
        self.map.retain(|_, &mut (_, stamp, _)| abs - stamp < ttl);
        let purged = before - self.map.len();
        self.stats.expirations += purged as u64;
        purged
    }

    /// The documented clock rule (see the file's docs).
    fn advance(&mut self, now: u32) -> Result<usize, ClockError> {
        let Some(clock) = self.clock else {
            self.clock = Some(now);
            return Ok(0);
        };
        let ahead = (u64::from(now) + WRAP - u64::from(clock)) % WRAP;
        if ahead < HALF {
            self.abs += ahead;
        } else if WRAP - ahead < self.ttl {
            return Err(ClockError::Backwards);
        } else {
            // A gap longer than every TTL: anything later than all stamps by a
            // TTL or more expires everything.
            self.abs += WRAP;
        }
        self.clock = Some(now);
        Ok(self.expire())
    }

    fn touch(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn get(&mut self, k: K) -> Option<V> {
        let rec = self.touch();
        let (abs, idle) = (self.abs, self.idle);
        match self.map.get_mut(&k) {
            Some(e) => {
                self.stats.hits += 1;
                e.2 = rec;
                if idle {
                    e.1 = abs;
                }
                Some(e.0)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    fn insert(&mut self, k: K, v: V) -> Inserted<K, V> {
        let rec = self.touch();
        self.stats.insertions += 1;
        if let Some(e) = self.map.get_mut(&k) {
            let old = e.0;
            *e = (v, self.abs, rec);
            return Inserted::Replaced(old);
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
        out
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
    prop_assert_eq!(
        cache.now().map(Instant::ticks),
        model.clock,
        "clock after op {}",
        at
    );
    let mut got: Vec<(K, V)> = cache.iter().map(|(k, v)| (*k, *v)).collect();
    got.sort_unstable();
    let mut want: Vec<(K, V)> = model.map.iter().map(|(k, e)| (*k, e.0)).collect();
    want.sort_unstable();
    prop_assert_eq!(got, want, "contents after op {}", at);
    for k in 0..KEYS {
        prop_assert_eq!(
            cache.peek(&k).copied(),
            model.map.get(&k).map(|e| e.0),
            "peek({}) after op {}",
            k,
            at
        );
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
                let got = cache.get(&k).copied();
                prop_assert_eq!(got, model.get(k), "get({}) at op {}", k, at);
            }
            Op::GetMut(k) => {
                let got = cache.get_mut(&k).map(|v| std::mem::replace(v, seq));
                let want = model.get(k);
                if want.is_some() {
                    if let Some(e) = model.map.get_mut(&k) {
                        e.0 = seq;
                    }
                }
                prop_assert_eq!(got, want, "get_mut({}) at op {}", k, at);
            }
            Op::Insert(k) => {
                let got = cache.insert(k, seq);
                prop_assert_eq!(got, model.insert(k, seq), "insert({}) at op {}", k, at);
            }
            Op::Remove(k) => {
                let got = cache.remove(&k);
                let want = model.map.remove(&k).map(|e| e.0);
                prop_assert_eq!(got, want, "remove({}) at op {}", k, at);
            }
            Op::Peek(k) => {
                let got = cache.peek(&k).copied();
                prop_assert_eq!(got, model.map.get(&k).map(|e| e.0), "peek at op {}", at);
            }
            Op::Advance(step) => {
                now = now.wrapping_add(step);
                let got = cache.advance(Instant(now));
                prop_assert_eq!(got, model.advance(now), "advance(+{}) at op {}", step, at);
            }
            Op::Back(off) => {
                let Some(clock) = model.clock else { continue };
                let bad = (u64::from(clock) + WRAP - 1 - u64::from(off)) % WRAP;
                let bad = u32::try_from(bad).expect("below 2^32");
                let before = cache.clone();
                let got = cache.advance(Instant(bad));
                let want = model.advance(bad);
                prop_assert_eq!(
                    got,
                    want,
                    "advance back {} at op {}",
                    1 + u64::from(off),
                    at
                );
                if want.is_err() {
                    // Refused: nothing changed, stats and clock included.
                    prop_assert_eq!(cache.stats(), before.stats());
                    prop_assert_eq!(cache.now(), before.now());
                    prop_assert_eq!(cache.len(), before.len());
                } else {
                    now = bad;
                }
            }
            Op::Clear => {
                cache.clear();
                model.map.clear();
                model.clock = None;
            }
            Op::ResetStats => {
                cache.reset_stats();
                model.stats = CacheStats::default();
            }
            Op::Seed(s) => {
                cache.set_seed(s);
                prop_assert_eq!(cache.seed(), s);
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
        1 => (i32::MAX as u32 - 4)..=(i32::MAX as u32 + 4),
        1 => 0u32..=i32::MAX as u32,
        // 2^31 and more: a long gap, or a step back.
        1 => (i32::MAX as u32 + 1)..=u32::MAX,
        1 => (u32::MAX - 16)..=u32::MAX,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => key().prop_map(Op::Get),
        1 => key().prop_map(Op::GetMut),
        7 => key().prop_map(Op::Insert),
        2 => key().prop_map(Op::Remove),
        1 => key().prop_map(Op::Peek),
        8 => step().prop_map(Op::Advance),
        2 => prop_oneof![0u32..16, 0u32..=i32::MAX as u32].prop_map(Op::Back),
        1 => Just(Op::Clear),
        1 => Just(Op::ResetStats),
        1 => any::<u64>().prop_map(Op::Seed),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=8,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            4 => 1u32..=12,
            1 => 1u32..=i32::MAX as u32,
            1 => (i32::MAX as u32 - 2)..=i32::MAX as u32,
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

/// A monotonic 64-bit clock, truncated to the 32-bit counter the cache sees,
/// with gaps of any length (up to 2^36 ticks).
fn monotonic_run(ttl: u32, start: u64, gaps: &[u64]) -> Result<(), TestCaseError> {
    let mut c: TtlCache<u32, u64, 4, u16> = TtlCache::new_idle(Duration(ttl)).expect("ttl");
    let mut real = start;
    let counter = |r: u64| Instant(r as u32);
    c.advance(counter(real)).expect("first advance");
    let mut accepted = real;
    for (i, &gap) in gaps.iter().enumerate() {
        real += gap;
        let r = gap % WRAP;
        // Refused only if the counter reads as 1 to ttl - 1 ticks behind the
        // clock: the gap since the last accepted call is within ttl - 1 ticks
        // below a multiple of 2^32.
        let since = (real - accepted) % WRAP;
        let expect_refused = since >= HALF && WRAP - since < u64::from(ttl);
        let got = c.advance(counter(real));
        prop_assert_eq!(got.is_err(), expect_refused, "gap {} ({}) at {}", gap, r, i);
        if got.is_ok() {
            accepted = real;
            prop_assert_eq!(c.now(), Some(counter(real)));
        } else {
            // Never refused for long: after ttl more ticks it is accepted.
            let later = real + u64::from(ttl);
            let mut probe = c.clone();
            prop_assert!(
                probe.advance(counter(later)).is_ok(),
                "still refused at {}",
                i
            );
        }
        // Work is never refused.
        let key = i as u32 % 6;
        let _ = c.insert(key, real);
        prop_assert_eq!(c.get(&key).copied(), Some(real));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cache_matches_model(case in case()) {
        dispatch(&case)?;
    }

    #[test]
    fn monotonic_clock_never_locks_up(
        ttl in prop_oneof![1u32..=16, 1u32..=i32::MAX as u32],
        start in any::<u32>(),
        gaps in prop::collection::vec(
            prop_oneof![
                4 => 0u64..100,
                2 => 0u64..(1 << 36),
                1 => ((1u64 << 32) - 64)..=((1 << 32) + 64),
                1 => ((1u64 << 31) - 64)..=((1 << 31) + 64),
            ],
            1..60,
        ),
    ) {
        monotonic_run(ttl, u64::from(start), &gaps)?;
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

/// The scenario: a flow table idle for 25 days of 1 ms ticks (more than
/// 2^31 ticks), then traffic again: accepted at once, everything expired.
#[test]
fn month_of_silence_at_1ms() {
    let case = Case {
        n: 4,
        ix16: true,
        idle: true,
        ttl: 30_000,
        start: 1_000,
        ops: vec![
            Op::Advance(0),
            Op::Insert(1),
            Op::Insert(2),
            Op::Advance(25 * 24 * 3600 * 1000),
            Op::Get(1),
            Op::Insert(3),
            Op::Advance(29_999),
            Op::Get(3),
            Op::Advance(30_000),
            Op::Get(3),
        ],
    };
    dispatch(&case).unwrap();
    monotonic_run(30_000, 1_000, &[0, 25 * 24 * 3600 * 1000, 1, 30_000 * 5]).unwrap();
}
