//! Hedging support for the existing strategies: the runner-up of a pick.
//!
//! A hedged request goes to the pick and, if it has not answered in time, also to
//! a second, distinct backend. The load-aware strategies
//! ([`LeastConn`](crate::LeastConn), [`PeakEwma`](crate::PeakEwma),
//! [`HealthScore`](crate::HealthScore)) have their own `pick_two`; this file adds
//! it to [`PowerOfTwo`] (the other of its two choices) and [`Rendezvous`] (the
//! second-highest score: where the key goes if the pick fails). For the ring the
//! runner-up is [`Ring::replicas`](crate::Ring::replicas)`(key_hash, 2)`'s second
//! backend.

use core::cmp::Ordering;

use crate::fleet::{Backend, BackendId};
use crate::hash::{mix, position, reduce32};
use crate::strategy::{FleetView, PowerOfTwo, Rendezvous};

fn nth_up(backends: &[Backend], n: u32) -> Option<&Backend> {
    backends.iter().filter(|b| b.up).nth(n as usize)
}

impl<const B: usize> PowerOfTwo<B> {
    /// [`Strategy::pick`](crate::LoadAware::pick) and the other of the two choices, the runner-up for a
    /// hedged request: the same two candidates and the same rule (lower
    /// `load / weight`, the first on ties), so the first is always what `pick`
    /// returns. The second is `None` only when a single backend is up. *O*(n).
    #[must_use]
    pub fn pick_two(&self, key_hash: u64) -> Option<(BackendId, Option<BackendId>)> {
        let backends = self.backends();
        let up = u32::try_from(backends.iter().filter(|b| b.up).count()).ok()?;
        if up == 0 {
            return None;
        }
        let i = reduce32(position(key_hash), up);
        let a = nth_up(backends, i)?;
        if up == 1 {
            return Some((a.id, None));
        }
        let mut j = reduce32(position(mix(key_hash, 2)), up - 1);
        if j >= i {
            j += 1;
        }
        let b = nth_up(backends, j)?;
        let la = u64::from(a.load) * u64::from(b.weight);
        let lb = u64::from(b.load) * u64::from(a.weight);
        Some(if la <= lb {
            (a.id, Some(b.id))
        } else {
            (b.id, Some(a.id))
        })
    }
}

/// A backend's rendezvous score for a key: the order of [`Rendezvous`]'s
/// placement (`DESIGN.md` §4): `(w / -ln(u), s, name_hash)` with unequal
/// weights, `(s, name_hash)` with equal ones (the same order, without the
/// logarithm).
#[derive(Clone, Copy)]
struct Score {
    weighted: f64,
    s: u64,
    name_hash: u64,
}

impl Score {
    fn of(key_hash: u64, b: &Backend, equal: bool) -> Self {
        let s = mix(key_hash, b.name_hash);
        let weighted = if equal {
            0.0
        } else {
            let u = ((s >> 11) as f64 + 0.5) * (1.0 / 9_007_199_254_740_992.0);
            f64::from(b.weight) / -libm::log(u)
        };
        Self {
            weighted,
            s,
            name_hash: b.name_hash,
        }
    }

    fn cmp(&self, other: &Self) -> Ordering {
        self.weighted
            .partial_cmp(&other.weighted)
            .unwrap_or(Ordering::Equal)
            .then((self.s, self.name_hash).cmp(&(other.s, other.name_hash)))
    }
}

impl<const B: usize> Rendezvous<B> {
    /// [`Strategy::pick`](crate::LoadAware::pick) and the runner-up for a hedged request: the up
    /// backends with the highest and the second-highest score for the key (the
    /// second is where the key moves if the first goes down). The second is
    /// `None` only when a single backend is up. *O*(n), as `pick`.
    #[must_use]
    pub fn pick_two(&self, key_hash: u64) -> Option<(BackendId, Option<BackendId>)> {
        let backends = self.backends();
        let w0 = backends.first()?.weight;
        let equal = backends.iter().all(|b| b.weight == w0);
        let mut best: Option<(Score, BackendId)> = None;
        let mut second: Option<(Score, BackendId)> = None;
        for b in backends.iter().filter(|b| b.up) {
            let sc = Score::of(key_hash, b, equal);
            match best {
                Some((bs, _)) if sc.cmp(&bs) != Ordering::Greater => {
                    if second.is_none_or(|(ss, _)| sc.cmp(&ss) == Ordering::Greater) {
                        second = Some((sc, b.id));
                    }
                }
                _ => {
                    second = best;
                    best = Some((sc, b.id));
                }
            }
        }
        best.map(|(_, a)| (a, second.map(|(_, b)| b)))
    }
}
