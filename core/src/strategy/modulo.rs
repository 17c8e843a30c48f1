//! `hash % n`: the seeds' IPHash, and nginx's plain `hash $key` shape.

use crate::fleet::{AddError, Backend, BackendId, Fleet, UnknownBackend};
use crate::strategy::{
    FleetView, LoadAware, Membership, Placement, Strategy, fleet_view, inherent_membership,
    keyed_load, keyed_strategy,
};

/// Modulo hashing: the key hash modulo the total weight picks a slice of the
/// backends laid end to end in insertion order (with weights all 1 this is plain
/// `hash % n`).
///
/// Cost: one 64-bit remainder, plus a binary search over the cumulative weights
/// when weights differ (*O*(log n)); 8 bytes per backend. Disruption: when `n`
/// changes, a key keeps its backend only if `hash % n` happens to agree: adding a
/// 6th backend to 5 moves about 5/6 of all keys. It is here as the baseline that
/// consistent hashing beats. A down backend's keys go to the next backend that is
/// up, in insertion order (wrapping).
#[derive(Debug, Clone)]
pub struct Modulo<const B: usize> {
    fleet: Fleet<B>,
    /// `cumulative[i]` = total weight of backends `0..=i`.
    cumulative: heapless::Vec<u64, B>,
    /// All weights are 1: the slot is `hash % n` directly.
    unit: bool,
}

impl<const B: usize> Default for Modulo<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize> Modulo<B> {
    /// An empty fleet.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            fleet: Fleet::new(),
            cumulative: heapless::Vec::new(),
            unit: true,
        }
    }

    fn reindex(&mut self) {
        self.cumulative.clear();
        let mut total = 0u64;
        for b in self.fleet.as_slice() {
            total += u64::from(b.weight);
            // Same length as the fleet, so this cannot fail.
            let _ = self.cumulative.push(total);
        }
        self.unit = self.fleet.as_slice().iter().all(|b| b.weight == 1);
    }

    /// Adds a backend at the end (every key's slice may change). *O*(n).
    ///
    /// # Errors
    /// [`AddError`]; the fleet is unchanged on error.
    pub fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        self.fleet.add(id, name, weight)?;
        self.reindex();
        Ok(())
    }

    /// Removes a backend; the later ones move down a slot. *O*(n).
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    pub fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        self.fleet.remove(id)?;
        self.reindex();
        Ok(())
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

    /// The slot whose slice holds `key_hash`.
    #[inline]
    fn slot_of(&self, key_hash: u64) -> Option<usize> {
        if self.unit {
            Some(key_hash.checked_rem(self.fleet.len() as u64)? as usize)
        } else {
            let total = *self.cumulative.last()?;
            let x = key_hash.checked_rem(total)?;
            Some(self.cumulative.partition_point(|&c| c <= x))
        }
    }

    /// Pure placement: the backend whose slice holds `key_hash`, health
    /// ignored. `None` with no backend. *O*(1) with unit weights, else
    /// *O*(log n).
    #[must_use]
    #[inline]
    pub fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        let slot = self.slot_of(key_hash)?;
        self.fleet.get(slot).map(|b| b.id)
    }

    /// The backend for `key_hash` among those that are up: the owner, else the
    /// next backend that is up in insertion order (wrapping). `None` if none is
    /// up.
    #[must_use]
    #[inline]
    pub fn pick(&self, key_hash: u64) -> Option<BackendId> {
        let backends = self.fleet.as_slice();
        let n = backends.len();
        let start = self.slot_of(key_hash)?;
        match backends.get(start) {
            Some(b) if b.up => Some(b.id),
            _ => (1..n)
                .filter_map(|k| backends.get((start + k) % n))
                .find(|b| b.up)
                .map(|b| b.id),
        }
    }
}

impl<const B: usize> FleetView for Modulo<B> {
    fleet_view!("modulo", |s| s.fleet);
}

impl<const B: usize> Placement for Modulo<B> {
    fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        Modulo::lookup(self, key_hash)
    }
    fn pick(&self, key_hash: u64) -> Option<BackendId> {
        Modulo::pick(self, key_hash)
    }
}

impl<const B: usize> Membership for Modulo<B> {
    inherent_membership!(Modulo);
}

impl<const B: usize> LoadAware for Modulo<B> {
    keyed_load!(|s| s.fleet);
}

impl<const B: usize> Strategy for Modulo<B> {
    keyed_strategy!();
}
