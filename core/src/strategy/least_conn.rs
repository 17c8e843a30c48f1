//! Weighted least connections, with nginx's tie-break (smooth weighted round
//! robin among the tied backends).

use core::cmp::Ordering;

use crate::fleet::{AddError, Backend, BackendId, Fleet, LoadError, UnknownBackend};
use crate::strategy::{Outcome, load_aware_fleet_methods, unkeyed_strategy};

/// Weighted least connections: the request goes to the up backend with the
/// fewest requests in flight per unit of weight, `in_flight / weight`, compared
/// exactly by cross-multiplication (`l_a x w_b < l_b x w_a`, no division, no
/// rounding).
///
/// Ties (every backend idle, or loads exactly proportional to the weights) are
/// broken as nginx's `least_conn` does: smooth weighted round robin among the
/// tied backends only (see [`RoundRobin`](crate::RoundRobin)), so equal
/// backends take turns in insertion order and weights hold even when requests
/// never overlap. Deterministic: the same sequence of calls gives the same
/// picks; the key hash is ignored (not key-affine).
///
/// Feedback: [`start`](Self::start) when a request is sent to the picked
/// backend, [`finish`](Self::finish) when it ends. The [`Outcome`] is not used
/// (only the in-flight count is); [`LoadAware::finish`](crate::LoadAware::finish) is the same call.
///
/// Cost: *O*(n) per pick (two passes over the backends, three for
/// [`pick_two`](Self::pick_two)); *O*(1) expected per `start` / `finish`. State: one `i64` per backend on top
/// of the fleet table.
///
/// ```
/// use chring::{BackendId, LeastConn, Outcome};
///
/// let mut lc: LeastConn<4> = LeastConn::new();
/// lc.add(BackendId(0), b"a", 1)?;
/// lc.add(BackendId(1), b"b", 1)?;
/// let first = lc.pick(0).unwrap();
/// lc.start(first)?;
/// // The other backend has nothing in flight: it takes the next request.
/// let second = lc.pick(0).unwrap();
/// assert_ne!(first, second);
/// lc.finish(first, Outcome { latency_us: 900, ok: true, at_us: 1_000 })?;
/// # Ok::<(), chring::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct LeastConn<const B: usize> {
    fleet: Fleet<B>,
    /// Smooth WRR scores, by slot (the tie-break).
    current: heapless::Vec<i64, B>,
}

impl<const B: usize> Default for LeastConn<B> {
    fn default() -> Self {
        Self::new()
    }
}

/// `a.load / a.weight` against `b.load / b.weight`, exactly.
fn by_load(a: &Backend, b: &Backend) -> Ordering {
    (u64::from(a.load) * u64::from(b.weight)).cmp(&(u64::from(b.load) * u64::from(a.weight)))
}

impl<const B: usize> LeastConn<B> {
    /// An empty fleet.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            fleet: Fleet::new(),
            current: heapless::Vec::new(),
        }
    }

    /// Adds a backend (up, nothing in flight). *O*(n) (duplicate-name check).
    ///
    /// # Errors
    /// [`AddError`]; the fleet is unchanged on error.
    pub fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        self.fleet.add_with(id, name, weight, &mut self.current, 0)
    }

    /// Removes a backend, with whatever it had in flight. *O*(n).
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    pub fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        self.fleet.remove_with(id, &mut self.current).map(|_| ())
    }

    load_aware_fleet_methods!("its in-flight count");

    /// A request on `id` finished. Only the in-flight count is used; `outcome`
    /// is accepted for a uniform feedback call. *O*(1) expected.
    ///
    /// # Errors
    /// [`LoadError::Unknown`] if no backend has this id, [`LoadError::NotStarted`]
    /// if it has nothing in flight.
    pub fn finish(&mut self, id: BackendId, outcome: Outcome) -> Result<(), LoadError> {
        let _ = outcome;
        self.fleet.finish(id)
    }

    /// The up backend with the least `in_flight / weight` (smooth weighted
    /// round robin among ties). `None` when no backend is up. The key hash is
    /// ignored. *O*(n).
    pub fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        let _ = key_hash;
        self.pick_slot()
            .and_then(|s| self.fleet.get(s))
            .map(|b| b.id)
    }

    /// [`pick`](Self::pick) and the runner-up for a hedged request: the least
    /// loaded of the other up backends (ties: the one smooth WRR would choose
    /// next, then insertion order). The second is `None` only when a single
    /// backend is up. *O*(n).
    pub fn pick_two(&mut self, key_hash: u64) -> Option<(BackendId, Option<BackendId>)> {
        let _ = key_hash;
        let best = self.pick_slot()?;
        let mut second: Option<(usize, &Backend, i64)> = None;
        for (slot, (b, &cur)) in self
            .fleet
            .as_slice()
            .iter()
            .zip(self.current.iter())
            .enumerate()
        {
            if !b.up || slot == best {
                continue;
            }
            let better = match second {
                None => true,
                Some((_, s, scur)) => match by_load(b, s) {
                    Ordering::Less => true,
                    Ordering::Equal => cur > scur,
                    Ordering::Greater => false,
                },
            };
            if better {
                second = Some((slot, b, cur));
            }
        }
        let first = self.fleet.get(best)?.id;
        Some((first, second.map(|(_, b, _)| b.id)))
    }

    fn pick_slot(&mut self) -> Option<usize> {
        // Pass 1: the least ratio.
        let mut least: Option<&Backend> = None;
        for b in self.fleet.as_slice().iter().filter(|b| b.up) {
            if least.is_none_or(|l| by_load(b, l) == Ordering::Less) {
                least = Some(b);
            }
        }
        let least = *least?;
        // Pass 2: smooth WRR among the backends at that ratio.
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (slot, (b, cur)) in self
            .fleet
            .as_slice()
            .iter()
            .zip(self.current.iter_mut())
            .enumerate()
        {
            if !b.up || by_load(b, &least) != Ordering::Equal {
                continue;
            }
            let w = i64::from(b.weight);
            // Saturating: the scores stay within a few total weights (nginx's
            // bound), this only keeps a broken invariant from panicking.
            *cur = cur.saturating_add(w);
            total = total.saturating_add(w);
            if best.is_none_or(|(_, s)| *cur > s) {
                best = Some((slot, *cur));
            }
        }
        let (slot, _) = best?;
        if let Some(c) = self.current.get_mut(slot) {
            *c = c.saturating_sub(total);
        }
        Some(slot)
    }
}

unkeyed_strategy!(LeastConn, "least_conn");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Strategy;

    fn lc(weights: &[u32]) -> LeastConn<8> {
        let mut s = LeastConn::new();
        for (i, &w) in weights.iter().enumerate() {
            s.add(BackendId(i as u16), &[i as u8], w).unwrap();
        }
        s
    }

    fn done() -> Outcome {
        Outcome {
            latency_us: 1,
            ok: true,
            at_us: 0,
        }
    }

    #[test]
    fn idle_ties_follow_smooth_wrr_like_nginx() {
        // Requests that never overlap: every pick is a tie, so the order is
        // nginx's smooth WRR for 5, 1, 1: a a b a c a a.
        let mut s = lc(&[5, 1, 1]);
        let order: Vec<u16> = (0..14)
            .map(|k| {
                let id = s.pick(k).unwrap();
                s.start(id).unwrap();
                s.finish(id, done()).unwrap();
                id.0
            })
            .collect();
        assert_eq!(order, [0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn balances_requests_in_flight_by_weight() {
        let mut s = lc(&[1, 2, 3]);
        for k in 0..60 {
            let id = s.pick(k).unwrap();
            s.start(id).unwrap();
        }
        let loads: Vec<u32> = s.backends().iter().map(|b| b.load).collect();
        assert_eq!(loads, [10, 20, 30]);
        // Finishing two on #1 makes it the least loaded per weight.
        s.finish(BackendId(1), done()).unwrap();
        s.finish(BackendId(1), done()).unwrap();
        assert_eq!(s.pick(0), Some(BackendId(1)));
    }

    #[test]
    fn runner_up_is_the_next_least_loaded() {
        let mut s = lc(&[1, 1, 1, 1]);
        for (id, n) in [(0u16, 3), (1, 1), (2, 2), (3, 5)] {
            for _ in 0..n {
                s.start(BackendId(id)).unwrap();
            }
        }
        assert_eq!(s.pick_two(0), Some((BackendId(1), Some(BackendId(2)))));
        s.set_up(BackendId(2), false).unwrap();
        assert_eq!(s.pick_two(0), Some((BackendId(1), Some(BackendId(0)))));
    }

    #[test]
    fn trait_finish_is_the_in_flight_decrement() {
        let mut s = lc(&[1, 1]);
        let ok = Outcome::new(10, true, 0);
        {
            let d: &mut dyn Strategy = &mut s;
            assert_eq!(d.name(), "least_conn");
            assert!(!d.is_keyed());
            d.start(BackendId(0)).unwrap();
            assert_eq!(d.backends()[0].load, 1);
            d.finish(BackendId(0), ok).unwrap();
            assert_eq!(d.backends()[0].load, 0);
            assert_eq!(d.finish(BackendId(0), ok), Err(LoadError::NotStarted));
        }
    }
}
