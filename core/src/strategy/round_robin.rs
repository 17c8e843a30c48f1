//! Smooth weighted round robin, as nginx's upstream module does it.

use crate::fleet::{AddError, BackendId, Fleet, LoadError, UnknownBackend};
use crate::strategy::{FleetView, LoadAware, Membership, Outcome, Placement, Strategy, fleet_view};

/// Smooth weighted round robin (nginx's `ngx_http_upstream_get_peer`): each pick
/// adds every up backend's weight to its running score, takes the highest (first
/// on ties) and subtracts the total weight from it. Weights 5,1,1 give
/// `a a b a c a a`, interleaved rather than bursty; equal weights cycle in
/// insertion order.
///
/// Ignores the key (not key-affine, so a per-server cache sees every key: the
/// baseline of Scenario A). Cost: *O*(n) per pick, one `i64` per backend.
#[derive(Debug, Clone)]
pub struct RoundRobin<const B: usize> {
    fleet: Fleet<B>,
    current: heapless::Vec<i64, B>,
}

impl<const B: usize> Default for RoundRobin<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize> RoundRobin<B> {
    /// An empty fleet.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            fleet: Fleet::new(),
            current: heapless::Vec::new(),
        }
    }
}

impl<const B: usize> FleetView for RoundRobin<B> {
    fleet_view!("round_robin", |s| s.fleet);
}

impl<const B: usize> Membership for RoundRobin<B> {
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        self.fleet.add_with(id, name, weight, &mut self.current, 0)
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        self.fleet.remove_with(id, &mut self.current).map(|_| ())
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        self.fleet.set_up(id, up)
    }
}

impl<const B: usize> LoadAware for RoundRobin<B> {
    fn pick(&mut self, _key_hash: u64) -> Option<BackendId> {
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        let mut best_score = i64::MIN;
        for (i, (b, cur)) in self
            .fleet
            .as_slice()
            .iter()
            .zip(self.current.iter_mut())
            .enumerate()
        {
            if !b.up {
                continue;
            }
            let w = i64::from(b.weight);
            *cur += w;
            total += w;
            if *cur > best_score {
                best_score = *cur;
                best = Some(i);
            }
        }
        let i = best?;
        if let Some(c) = self.current.get_mut(i) {
            *c -= total;
        }
        self.fleet.get(i).map(|b| b.id)
    }
    fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        self.fleet.start(id)
    }
    /// Counts the request done; the outcome is not used.
    fn finish(&mut self, id: BackendId, _outcome: Outcome) -> Result<(), LoadError> {
        self.fleet.finish(id)
    }
}

impl<const B: usize> Strategy for RoundRobin<B> {
    fn is_keyed(&self) -> bool {
        false
    }
    fn placement(&self) -> Option<&dyn Placement> {
        None
    }
}
