//! Hedging support for the existing strategies: the runner-up of a pick.
//!
//! A hedged request goes to the pick and, if it has not answered in time, also to
//! a second, distinct backend. The load-aware strategies
//! ([`LeastConn`](crate::LeastConn), [`PeakEwma`](crate::PeakEwma),
//! [`HealthScore`](crate::HealthScore)) have their own `pick_two`; this file adds
//! it to [`PowerOfTwo`] (the other of its two choices). For the ring the runner-up
//! is [`Ring::replicas`](crate::Ring::replicas)`(key_hash, 2)`'s second backend.

use crate::fleet::{Backend, BackendId};
use crate::hash::{mix, position, reduce32};
use crate::strategy::{PowerOfTwo, Strategy};

fn nth_up(backends: &[Backend], n: u32) -> Option<&Backend> {
    backends.iter().filter(|b| b.up).nth(n as usize)
}

impl<const B: usize> PowerOfTwo<B> {
    /// [`Strategy::pick`] and the other of the two choices, the runner-up for a
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
