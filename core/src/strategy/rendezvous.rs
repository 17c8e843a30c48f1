//! Rendezvous (highest random weight) hashing, weighted by the logarithmic method.

use crate::fleet::{AddError, Backend, BackendId, Fleet, UnknownBackend};
use crate::hash::mix;
use crate::strategy::{
    FleetView, LoadAware, Membership, Placement, Strategy, fleet_view, inherent_membership,
    keyed_load, keyed_strategy,
};

/// Rendezvous / HRW hashing (Thaler & Ravishankar, 1998): every backend scores the
/// key with `s = mix(key_hash, name_hash)`; the highest score wins.
///
/// Weights use the logarithmic method (Schindelhauer & Schomaker, 2005; as in
/// Resch's "weighted rendezvous"): with `u = ((s >> 11) + 0.5) / 2^53` in (0, 1),
/// the score is `w / -ln(u)`, and a backend wins a share of keys proportional to
/// its weight. Ties are broken by `s`, then by name hash, so with equal weights
/// the answer is exactly plain HRW (the transform is monotonic in `s`), and that
/// case skips the logarithm. The maths is `libm`'s, identical on every target.
///
/// Cost: *O*(n) per pick (one 8-byte XXH3 per backend, plus a logarithm when
/// weights differ); no state beyond the fleet. Disruption: exactly minimal:
/// adding a backend moves only the keys it now wins; removing one (or marking it
/// down) moves only its own keys.
#[derive(Debug, Clone)]
pub struct Rendezvous<const B: usize> {
    fleet: Fleet<B>,
}

impl<const B: usize> Default for Rendezvous<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize> Rendezvous<B> {
    /// An empty fleet.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            fleet: Fleet::new(),
        }
    }

    /// Adds a backend. *O*(n) (the duplicate-name check).
    ///
    /// # Errors
    /// [`AddError`]; the fleet is unchanged on error.
    pub fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        self.fleet.add(id, name, weight).map(|_| ())
    }

    /// Removes a backend. *O*(n).
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    pub fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        self.fleet.remove(id).map(|_| ())
    }

    /// Marks a backend up or down. *O*(1).
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    pub fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        self.fleet.set_up(id, up)
    }

    /// The backends, in insertion order.
    #[must_use]
    pub fn backends(&self) -> &[Backend] {
        self.fleet.as_slice()
    }

    /// Pure placement: the winning backend among all, health ignored. `None`
    /// with no backend. *O*(n).
    #[must_use]
    pub fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        self.winner(key_hash, false)
    }

    /// The winning backend among those that are up (a down backend's keys go
    /// to their second-highest score). `None` when none is up. *O*(n).
    #[must_use]
    pub fn pick(&self, key_hash: u64) -> Option<BackendId> {
        self.winner(key_hash, true)
    }

    fn winner(&self, key_hash: u64, only_up: bool) -> Option<BackendId> {
        let backends = self.fleet.as_slice();
        let w0 = backends.first()?.weight;
        let equal = backends.iter().all(|b| b.weight == w0);
        let up = backends.iter().filter(|b| b.up || !only_up);
        if equal {
            up.max_by_key(|b| (mix(key_hash, b.name_hash), b.name_hash))
                .map(|b| b.id)
        } else {
            let mut best: Option<(f64, u64, u64, &Backend)> = None;
            for b in up {
                let s = mix(key_hash, b.name_hash);
                let u = ((s >> 11) as f64 + 0.5) * (1.0 / 9_007_199_254_740_992.0);
                let score = f64::from(b.weight) / -libm::log(u);
                let better = match best {
                    None => true,
                    Some((bs, bss, bn, _)) => {
                        score > bs || (score == bs && (s, b.name_hash) > (bss, bn))
                    }
                };
                if better {
                    best = Some((score, s, b.name_hash, b));
                }
            }
            best.map(|(_, _, _, b)| b.id)
        }
    }
}

impl<const B: usize> FleetView for Rendezvous<B> {
    fleet_view!("rendezvous", |s| s.fleet);
}

impl<const B: usize> Placement for Rendezvous<B> {
    fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        Rendezvous::lookup(self, key_hash)
    }
    fn pick(&self, key_hash: u64) -> Option<BackendId> {
        Rendezvous::pick(self, key_hash)
    }
}

impl<const B: usize> Membership for Rendezvous<B> {
    inherent_membership!(Rendezvous);
}

impl<const B: usize> LoadAware for Rendezvous<B> {
    keyed_load!(|s| s.fleet);
}

impl<const B: usize> Strategy for Rendezvous<B> {
    keyed_strategy!();
}
