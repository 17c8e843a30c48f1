//! A streaming latency quantile for `hedge_after: pNN`.
//!
//! Log-linear buckets, 8 per power of two from 8 µs to 2²⁷ µs (134 s), so a
//! quantile is read to within 12.5 % (the upper bound of its bucket), where
//! the pool's Prometheus histogram ([`crate::state::Histogram`]) has a dozen
//! wide buckets (10, 25, 50, 100 ms ...). Every [`DECAY_EVERY`] samples all
//! counts are halved, so the estimate follows the pool's recent latency: a
//! response weighs half as much after each further 1,024, and a change of
//! latency shows in the quantile within a few thousand responses, as
//! Finagle's windowed percentiles for backup requests do.
//!
//! Lock-free: one relaxed increment per sample; a halving that races with
//! increments may lose or keep a few of them, which an estimate can bear.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Buckets per power of two.
const SUB: u32 = 8;
/// The smallest power of two with buckets of its own (smaller values count
/// as `2^LOW_POWER` µs).
const LOW_POWER: u32 = 3;
/// Values of `2^HIGH_POWER` µs and above share the last bucket.
const HIGH_POWER: u32 = 27;
/// Buckets in all: the log-linear ones, then one for everything above.
const BUCKETS: usize = ((HIGH_POWER - LOW_POWER) * SUB) as usize + 1;
/// Samples between two halvings of every count.
pub const DECAY_EVERY: u64 = 1024;

/// The bucket of `us` microseconds.
fn index(us: u64) -> usize {
    let us = us.max(1 << LOW_POWER);
    let p = 63 - us.leading_zeros();
    if p >= HIGH_POWER {
        return BUCKETS - 1;
    }
    // The three bits after the leading one pick the sub-bucket.
    let sub = (us >> (p - LOW_POWER)) & u64::from(SUB - 1);
    ((p - LOW_POWER) * SUB) as usize + sub as usize
}

/// The largest value of bucket `i` (`u64::MAX` for the last). Bucket
/// `i` holds the values whose leading bit is `2^(LOW_POWER + i / SUB)` and
/// whose next three bits are `i % SUB`.
fn upper(i: usize) -> u64 {
    if i >= BUCKETS - 1 {
        return u64::MAX;
    }
    let shift = i / SUB as usize;
    let sub = (i % SUB as usize) as u64;
    ((u64::from(SUB) + sub + 1) << shift) - 1
}

/// Recent latencies of a pool, for quantiles (see the module docs).
#[derive(Debug)]
pub struct Quantiles {
    counts: [AtomicU32; BUCKETS],
    seen: AtomicU64,
}

impl Default for Quantiles {
    fn default() -> Self {
        Quantiles {
            counts: std::array::from_fn(|_| AtomicU32::new(0)),
            seen: AtomicU64::new(0),
        }
    }
}

impl Quantiles {
    /// Records one latency of `us` microseconds. *O*(1), and *O*(buckets)
    /// once every [`DECAY_EVERY`] samples (the halving).
    pub fn record(&self, us: u64) {
        if let Some(c) = self.counts.get(index(us)) {
            c.fetch_add(1, Relaxed);
        }
        let n = self.seen.fetch_add(1, Relaxed).wrapping_add(1);
        if n % DECAY_EVERY == 0 {
            for c in &self.counts {
                let _ = c.fetch_update(Relaxed, Relaxed, |v| Some(v / 2));
            }
        }
    }

    /// Samples recorded in all (before any halving).
    #[must_use]
    pub fn seen(&self) -> u64 {
        self.seen.load(Relaxed)
    }

    /// The quantile `q` (0..=1) of the recent latencies: the upper bound of
    /// its bucket in µs (at least 8 µs), `u64::MAX` when it lies above
    /// 2²⁷ µs; `None` before any sample.
    #[must_use]
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        // One copy (on the stack): the rank and the walk see the same counts.
        let counts: [u64; BUCKETS] =
            std::array::from_fn(|i| self.counts.get(i).map_or(0, |c| u64::from(c.load(Relaxed))));
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        // q in 0..=1, so the rank is within 1..=total.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut below = 0;
        for (i, c) in counts.iter().enumerate() {
            below += c;
            if below >= rank {
                return Some(upper(i));
            }
        }
        Some(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(us: u64) -> u64 {
        upper(index(us))
    }

    #[test]
    fn every_value_is_within_its_buckets_bound_and_above_the_previous() {
        let mut v = 8u64;
        while v < (1 << HIGH_POWER) {
            let i = index(v);
            assert!(v <= bound(v), "{v} above its bound {}", bound(v));
            // At most 12.5 % above the value.
            assert!(bound(v) - v <= v / 8, "{v}: bound {}", bound(v));
            if i > 0 {
                assert!(v > upper(i - 1), "{v} in bucket {i}");
            }
            v = v + 1 + v / 97;
        }
        assert_eq!(index(0), 0);
        assert_eq!(index(7), 0);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(index(1 << HIGH_POWER), BUCKETS - 1);
        assert_eq!(index((1 << HIGH_POWER) - 1), BUCKETS - 2);
    }

    #[test]
    fn quantiles_of_a_uniform_spread_are_within_an_eighth() {
        let q = Quantiles::default();
        assert_eq!(q.quantile_us(0.5), None);
        // 1 ms to 10 ms in 1 µs steps, each once, in a scrambled order (so
        // the halvings weigh no part of the range more than another).
        for k in 0..9_001u64 {
            q.record(1_000 + k * 7_919 % 9_001);
        }
        for (p, want) in [
            (0.5, 5_500.0),
            (0.9, 9_100.0),
            (0.95, 9_550.0),
            (0.99, 9_910.0),
        ] {
            let got = q.quantile_us(p).unwrap() as f64;
            assert!(
                got >= want * 0.97 && got <= want * 1.13,
                "p{p}: {got} for {want}"
            );
        }
        assert_eq!(q.seen(), 9_001);
    }

    #[test]
    fn the_estimate_follows_a_change_of_latency() {
        let q = Quantiles::default();
        for _ in 0..20_000 {
            q.record(20_000);
        }
        let slow = q.quantile_us(0.95).unwrap();
        assert!((20_000..=22_500).contains(&slow), "{slow}");
        // Faster now: after 4 halvings the old samples weigh 1/16 of theirs,
        // and the 95th percentile is the new latency.
        for _ in 0..(5 * DECAY_EVERY) {
            q.record(2_000);
        }
        let fast = q.quantile_us(0.95).unwrap();
        assert!((2_000..=2_250).contains(&fast), "{fast}");
        assert!(q.quantile_us(0.5).unwrap() <= 2_250);
    }

    #[test]
    fn extremes_are_counted() {
        let q = Quantiles::default();
        q.record(0);
        assert_eq!(q.quantile_us(1.0), Some(8));
        q.record(u64::MAX);
        q.record(u64::MAX);
        assert_eq!(q.quantile_us(1.0), Some(u64::MAX));
        assert_eq!(q.quantile_us(0.0), Some(8));
        assert_eq!(q.quantile_us(f64::NAN), Some(8));
    }
}
