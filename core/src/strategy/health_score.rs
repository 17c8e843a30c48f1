//! A health score per backend: errors and latency folded into one number that
//! scales the backend's share of requests.

use crate::fleet::{AddError, BackendId, Fleet, LoadError, UnknownBackend};
use crate::strategy::seeded::SplitMix64;
use crate::strategy::{Outcome, load_aware_fleet_methods, unkeyed_strategy};

/// 1.0 in the score's fixed point (16 fraction bits).
pub const SCORE_ONE: u32 = 1 << 16;
/// The lowest score: 1/32. A failing backend keeps this share of its weight, so
/// it still sees a few requests and can recover without an external probe.
pub const SCORE_FLOOR: u32 = SCORE_ONE / 32;
/// Error EWMA step: each request moves the error rate 1/16 of the way to 0
/// (success) or 1 (failure).
const ERR_SHIFT: u32 = 4;
/// Latency EWMA step: each successful request moves the latency 1/8 of the way.
const LAT_SHIFT: u32 = 3;
/// Latency fixed point: µs x 2^8.
const LAT_FRAC: u32 = 8;

/// Errors and latency folded into a score in `[1/32, 1]` per backend; the
/// request goes to a random up backend with probability proportional to
/// `weight x score`, so a backend whose errors rise loses traffic in proportion
/// *before* an external health check or ejector marks it down
/// ([`set_up`](Self::set_up)), and wins it back as it succeeds again.
///
/// **Per backend**, updated by [`finish`](Self::finish) with an [`Outcome`]:
///
/// - error rate `f`, an EWMA over requests: `f += (o - f) / 16`, `o = 1` for a
///   failed request, 0 for a successful one (fixed point, 16 fraction bits);
/// - latency `m`, an EWMA over successful requests: `m += (x - m) / 8`, the
///   first sample taken as is (a failure's latency is not counted: a refused
///   connection is fast and would look healthy).
///
/// **Score:** `s = max(1/32, (1 - f) x m_best / m)`, where `m_best` is the lowest
/// latency among up backends with a sample (a backend without one counts as
/// fast: factor 1). So a backend failing half its requests gets half the share
/// of a healthy one of the same speed, one twice as slow as the fastest gets
/// half, and one failing every request keeps the floor of 1/32 of its weight.
///
/// **Recovery.** Marking a backend down and up again keeps its statistics: it
/// comes back at its old score and earns its share back request by request
/// (each success moves `f` a sixteenth closer to 0), a slow start.
///
/// **Choice:** a draw from `key_hash XOR` a seeded SplitMix64 stream
/// (deterministic for a seed and a call sequence; not key-affine).
/// [`pick_two`](Self::pick_two) draws the runner-up from the other up backends
/// the same way, for a hedged request. In-flight counts are kept (for
/// [`Backend::load`](crate::Backend::load)) but do not enter the score; the clock ([`Outcome::at_us`])
/// is not used (the EWMAs count requests, not time).
///
/// Through the traits ([`LoadAware::finish`](crate::LoadAware::finish)), the same call as the inherent
/// [`finish`](Self::finish).
///
/// Cost: *O*(n) per pick (three passes, one division per backend), *O*(1)
/// expected per `start` / `finish`. State: 16 bytes per backend and one `u32`
/// of scratch on top of the fleet table.
///
/// ```
/// use chring::{BackendId, HealthScore, Outcome};
///
/// let mut lb: HealthScore<4> = HealthScore::new().with_seed(1);
/// lb.add(BackendId(0), b"a", 1)?;
/// lb.add(BackendId(1), b"b", 1)?;
/// for at_us in 0..8 {
///     lb.start(BackendId(1))?;
///     lb.finish(BackendId(1), Outcome { latency_us: 500, ok: false, at_us })?;
/// }
/// // Eight failures in a row: `b` is down to 0.94^8 = 60% of a healthy score.
/// assert!(lb.score(BackendId(1)).unwrap() < 40_000);
/// assert_eq!(lb.score(BackendId(0)), Some(chring::strategy::SCORE_ONE));
/// # Ok::<(), chring::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HealthScore<const B: usize> {
    fleet: Fleet<B>,
    /// Statistics, by slot.
    stats: heapless::Vec<Health, B>,
    /// `weight x score` of each slot during a pick (0 for a down backend).
    scratch: heapless::Vec<u64, B>,
    rng: SplitMix64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Health {
    /// Error rate, 16 fraction bits (`0..=SCORE_ONE`).
    err: u32,
    /// Latency in µs x 2^8; 0 before the first successful sample.
    lat: u64,
}

impl<const B: usize> Default for HealthScore<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// The score with the fleet's best latency `best` (0: none known).
    fn score(&self, best: u64) -> u32 {
        let ok = u64::from(SCORE_ONE - self.err.min(SCORE_ONE));
        let s = if best == 0 || self.lat == 0 {
            ok
        } else {
            // best <= lat here, so the factor is <= 1.
            ok * best / self.lat
        };
        u32::try_from(s)
            .unwrap_or(SCORE_ONE)
            .clamp(SCORE_FLOOR, SCORE_ONE)
    }
}

impl<const B: usize> HealthScore<B> {
    /// An empty fleet, seed 0.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            fleet: Fleet::new(),
            stats: heapless::Vec::new(),
            scratch: heapless::Vec::new(),
            rng: SplitMix64::new(0),
        }
    }

    /// The same strategy with its random stream seeded by `seed`.
    #[must_use]
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.rng = SplitMix64::new(seed);
        self
    }

    /// Adds a backend (up, no errors, no latency sample: score 1). *O*(n)
    /// (duplicate-name check).
    ///
    /// # Errors
    /// [`AddError`]; the fleet is unchanged on error.
    pub fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        let h = self.fleet.check_add(id, name, weight)?;
        self.stats
            .push(Health::default())
            .map_err(|_| AddError::Full)?;
        if self.scratch.push(0).is_err() {
            self.stats.pop();
            return Err(AddError::Full);
        }
        self.fleet.push(id, h, weight).map(|_| ())
    }

    /// Removes a backend with its statistics. *O*(n).
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    pub fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        self.fleet.remove_with(id, &mut self.stats)?;
        self.scratch.pop();
        Ok(())
    }

    load_aware_fleet_methods!("its statistics");

    /// A request on `id` finished: one fewer in flight, its success or failure
    /// folded into the error rate and (on success) its latency into the
    /// latency EWMA. *O*(1) expected.
    ///
    /// # Errors
    /// [`LoadError::Unknown`] if no backend has this id, [`LoadError::NotStarted`]
    /// if it has nothing in flight; nothing is recorded then.
    pub fn finish(&mut self, id: BackendId, outcome: Outcome) -> Result<(), LoadError> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        self.fleet.finish(id)?;
        if let Some(h) = self.stats.get_mut(slot) {
            let target = if outcome.ok { 0 } else { SCORE_ONE };
            // err and target are in 0..=2^16: the difference fits an i32.
            let err = h.err as i32 + ((target as i32 - h.err as i32) >> ERR_SHIFT);
            h.err = u32::try_from(err).unwrap_or(0).min(SCORE_ONE);
            // A failure's target of 2^16 with err just below it still moves:
            // (2^16 - err) >> 4 is 0 once err > 2^16 - 16; close the gap.
            if !outcome.ok && h.err > SCORE_ONE - (1 << ERR_SHIFT) {
                h.err = SCORE_ONE;
            }
            if outcome.ok {
                let x = (u64::from(outcome.latency_us) << LAT_FRAC).max(1);
                h.lat = if h.lat == 0 {
                    x
                } else if x >= h.lat {
                    h.lat + ((x - h.lat) >> LAT_SHIFT)
                } else {
                    h.lat - ((h.lat - x) >> LAT_SHIFT)
                };
            }
        }
        Ok(())
    }

    /// The lowest latency among up backends with a sample (0: none).
    fn best_latency(&self) -> u64 {
        self.fleet
            .as_slice()
            .iter()
            .zip(self.stats.iter())
            .filter(|(b, h)| b.up && h.lat != 0)
            .map(|(_, h)| h.lat)
            .min()
            .unwrap_or(0)
    }

    /// The score of `id` now, with 16 fraction bits: [`SCORE_FLOOR`]`..=`[`SCORE_ONE`].
    /// `None` for an unknown id. *O*(n) (the fleet's best latency).
    #[must_use]
    pub fn score(&self, id: BackendId) -> Option<u32> {
        let slot = self.fleet.slot(id)?;
        Some(self.stats.get(slot)?.score(self.best_latency()))
    }

    /// A random up backend, with probability proportional to `weight x score`.
    /// `None` when no backend is up. *O*(n).
    pub fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        let r = self.rng.next_u64() ^ key_hash;
        let total = self.fill_scratch();
        let slot = self.draw(r, total, None)?;
        self.fleet.get(slot).map(|b| b.id)
    }

    /// [`pick`](Self::pick) and a runner-up for a hedged request: a second draw
    /// among the other up backends, proportional to `weight x score`; `None`
    /// only when a single backend is up. *O*(n).
    pub fn pick_two(&mut self, key_hash: u64) -> Option<(BackendId, Option<BackendId>)> {
        let r = self.rng.next_u64() ^ key_hash;
        let total = self.fill_scratch();
        let first = self.draw(r, total, None)?;
        let rest = total - self.scratch.get(first).copied().unwrap_or(0);
        let r2 = self.rng.next_u64();
        let second = self.draw(r2, rest, Some(first));
        let id = |s: usize| self.fleet.get(s).map(|b| b.id);
        Some((id(first)?, second.and_then(id)))
    }

    /// Fills `scratch` with `weight x score` (0 for down backends); returns the
    /// sum (at most `B x 2^32`).
    fn fill_scratch(&mut self) -> u64 {
        let best = self.best_latency();
        let mut total = 0u64;
        for ((b, h), s) in self
            .fleet
            .as_slice()
            .iter()
            .zip(self.stats.iter())
            .zip(self.scratch.iter_mut())
        {
            *s = if b.up {
                u64::from(b.weight) * u64::from(h.score(best))
            } else {
                0
            };
            total = total.saturating_add(*s);
        }
        total
    }

    /// The slot whose cumulative range of `scratch` holds `r` scaled to
    /// `0..total`, skipping `except`.
    fn draw(&self, r: u64, total: u64, except: Option<usize>) -> Option<usize> {
        if total == 0 {
            return None;
        }
        let mut x = ((u128::from(r) * u128::from(total)) >> 64) as u64;
        for (slot, &s) in self.scratch.iter().enumerate() {
            if Some(slot) == except || s == 0 {
                continue;
            }
            if x < s {
                return Some(slot);
            }
            x -= s;
        }
        None
    }
}

unkeyed_strategy!(HealthScore, "health_score");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Strategy;

    fn four() -> HealthScore<8> {
        let mut s = HealthScore::new().with_seed(5);
        for i in 0..4u16 {
            s.add(BackendId(i), &i.to_le_bytes(), 1).unwrap();
        }
        s
    }

    /// `n` requests through `pick`; backend #3 answers `ok3(n)`, the others
    /// succeed. All take 1 ms. Returns #3's share.
    fn run(s: &mut HealthScore<8>, n: u64, ok3: impl Fn(u64) -> bool) -> f64 {
        let mut hits = 0;
        for k in 0..n {
            let id = s.pick(k).unwrap();
            s.start(id).unwrap();
            let ok = id != BackendId(3) || ok3(k);
            hits += u64::from(id == BackendId(3));
            s.finish(
                id,
                Outcome {
                    latency_us: 1_000,
                    ok,
                    at_us: k,
                },
            )
            .unwrap();
        }
        hits as f64 / n as f64
    }

    #[test]
    fn a_failing_backend_loses_share_before_ejection_and_wins_it_back() {
        let mut s = four();
        let healthy = run(&mut s, 4_000, |_| true);
        assert!((healthy - 0.25).abs() < 0.03, "healthy share {healthy}");
        // Half its requests fail: its score settles near 1/2, its share near
        // 0.5 / 3.5 = 14%.
        run(&mut s, 1_000, |k| k % 2 == 0);
        let half = run(&mut s, 4_000, |k| k % 2 == 0);
        assert!((0.09..0.19).contains(&half), "half-failing share {half}");
        // Every request fails: down to the floor, 1/32 / 3.03 = 1%, while it
        // is still up (no ejector has acted yet).
        run(&mut s, 1_000, |_| false);
        let failing = run(&mut s, 4_000, |_| false);
        assert!(failing < 0.02, "failing share {failing}");
        assert_eq!(s.score(BackendId(3)), Some(SCORE_FLOOR));
        // Ejected, then back: it succeeds again and earns its share back.
        s.set_up(BackendId(3), false).unwrap();
        assert_eq!(run(&mut s, 1_000, |_| true), 0.0);
        s.set_up(BackendId(3), true).unwrap();
        let back = run(&mut s, 4_000, |_| true);
        assert!(back > failing, "recovering share {back}");
        let recovered = run(&mut s, 4_000, |_| true);
        assert!(
            (recovered - 0.25).abs() < 0.03,
            "recovered share {recovered}"
        );
    }

    #[test]
    fn score_folds_errors_and_latency() {
        let mut s = four();
        let fin = |s: &mut HealthScore<8>, id: u16, latency_us: u32, ok: bool| {
            s.start(BackendId(id)).unwrap();
            s.finish(
                BackendId(id),
                Outcome {
                    latency_us,
                    ok,
                    at_us: 0,
                },
            )
            .unwrap();
        };
        for _ in 0..200 {
            fin(&mut s, 0, 1_000, true);
            fin(&mut s, 1, 2_000, true);
            fin(&mut s, 2, 1_000, true);
            fin(&mut s, 2, 1_000, false);
        }
        assert_eq!(s.score(BackendId(0)), Some(SCORE_ONE));
        // Twice as slow as the best: half.
        assert_eq!(s.score(BackendId(1)), Some(SCORE_ONE / 2));
        // Every other request failing: about half (the EWMA ends on a failure).
        let half = s.score(BackendId(2)).unwrap();
        assert!((30_000..36_000).contains(&half), "{half}");
        // No sample yet: full score.
        assert_eq!(s.score(BackendId(3)), Some(SCORE_ONE));
        assert_eq!(s.score(BackendId(9)), None);
        // The best latency is among up backends: with #0 and #2 down, #1 is
        // the best.
        s.set_up(BackendId(0), false).unwrap();
        assert_eq!(s.score(BackendId(1)), Some(SCORE_ONE / 2));
        s.set_up(BackendId(2), false).unwrap();
        assert_eq!(s.score(BackendId(1)), Some(SCORE_ONE));
    }

    #[test]
    fn error_rate_reaches_both_ends() {
        let mut s = four();
        for ok in [false, true] {
            for _ in 0..300 {
                s.start(BackendId(0)).unwrap();
                s.finish(
                    BackendId(0),
                    Outcome {
                        latency_us: 10,
                        ok,
                        at_us: 0,
                    },
                )
                .unwrap();
            }
            let want = if ok { SCORE_ONE } else { SCORE_FLOOR };
            assert_eq!(s.score(BackendId(0)), Some(want));
        }
    }

    #[test]
    fn the_traits_forward_the_outcome() {
        let mut s = four();
        let d: &mut dyn Strategy = &mut s;
        assert_eq!(d.name(), "health_score");
        assert!(!d.is_keyed());
        assert!(d.placement().is_none());
        for _ in 0..10 {
            d.start(BackendId(0)).unwrap();
            d.finish(BackendId(0), Outcome::new(1_000, false, 0))
                .unwrap();
        }
        assert!(s.score(BackendId(0)) < Some(SCORE_ONE));
        assert_eq!(s.backends()[0].load, 0);
    }
}
