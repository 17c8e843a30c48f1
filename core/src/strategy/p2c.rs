//! Power of two choices, least loaded (Mitzenmacher, 2001).

use crate::fleet::{AddError, Backend, BackendId, Fleet, LoadError, UnknownBackend};
use crate::hash::{mix, position, reduce32};
use crate::strategy::{FleetView, LoadAware, Membership, Outcome, Placement, Strategy, fleet_view};

/// Picks two distinct backends that are up, both derived from the key hash (so a
/// run is reproducible without an RNG inside core; pass a random or sequential
/// hash for classic random two-choices), and sends the request to the one with
/// fewer requests in flight per unit of weight (the first on ties). The caller
/// reports load with [`LoadAware::start`] / [`LoadAware::finish`].
///
/// Not key-affine: a key follows load, not a placement. Cost: *O*(n) to find the
/// two up backends, one extra hash. Max load is `ln ln n / ln 2 + O(1)` above the
/// mean, against `ln n / ln ln n` for one random choice.
#[derive(Debug, Clone)]
pub struct PowerOfTwo<const B: usize> {
    fleet: Fleet<B>,
}

impl<const B: usize> Default for PowerOfTwo<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize> PowerOfTwo<B> {
    /// An empty fleet.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            fleet: Fleet::new(),
        }
    }

    fn nth_up(&self, n: usize) -> Option<&Backend> {
        self.fleet.as_slice().iter().filter(|b| b.up).nth(n)
    }
}

impl<const B: usize> FleetView for PowerOfTwo<B> {
    fleet_view!("p2c", |s| s.fleet);
}

impl<const B: usize> Membership for PowerOfTwo<B> {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        self.fleet.add(id, name, weight).map(|_| ())
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        self.fleet.remove(id).map(|_| ())
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        self.fleet.set_up(id, up)
    }
}

impl<const B: usize> LoadAware for PowerOfTwo<B> {
    fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        let up = self.fleet.as_slice().iter().filter(|b| b.up).count() as u32;
        if up == 0 {
            return None;
        }
        let i = reduce32(position(key_hash), up);
        let a = self.nth_up(i as usize)?;
        if up == 1 {
            return Some(a.id);
        }
        let mut j = reduce32(position(mix(key_hash, 2)), up - 1);
        if j >= i {
            j += 1;
        }
        let b = self.nth_up(j as usize)?;
        // load_a / w_a <= load_b / w_b, without division.
        let la = u64::from(a.load) * u64::from(b.weight);
        let lb = u64::from(b.load) * u64::from(a.weight);
        Some(if la <= lb { a.id } else { b.id })
    }
    fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        self.fleet.start(id)
    }
    /// Counts the request done; the outcome is not used.
    fn finish(&mut self, id: BackendId, _outcome: Outcome) -> Result<(), LoadError> {
        self.fleet.finish(id)
    }
}

impl<const B: usize> Strategy for PowerOfTwo<B> {
    fn is_keyed(&self) -> bool {
        false
    }
    fn placement(&self) -> Option<&dyn Placement> {
        None
    }
}
