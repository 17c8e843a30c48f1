//! `hash % n`: the seeds' IPHash, and nginx's plain `hash $key` shape.

use crate::fleet::{AddError, BackendId, Fleet, UnknownBackend};
use crate::strategy::{Strategy, fleet_methods};

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

    /// The backend for `key_hash`, honouring health. `None` if none is up.
    #[must_use]
    #[inline]
    pub fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        let backends = self.fleet.as_slice();
        let n = backends.len();
        let start = if self.unit {
            key_hash.checked_rem(n as u64)? as usize
        } else {
            let total = *self.cumulative.last()?;
            let x = key_hash.checked_rem(total)?;
            self.cumulative.partition_point(|&c| c <= x)
        };
        match backends.get(start) {
            Some(b) if b.up => Some(b.id),
            _ => (1..n)
                .filter_map(|k| backends.get((start + k) % n))
                .find(|b| b.up)
                .map(|b| b.id),
        }
    }
}

impl<const B: usize> Strategy for Modulo<B> {
    fn name(&self) -> &'static str {
        "modulo"
    }
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        let h = self.fleet.check_add(id, name, weight)?;
        self.fleet.push(id, h, weight)?;
        self.reindex();
        Ok(())
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        self.fleet.remove_slot(slot);
        self.reindex();
        Ok(())
    }
    fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        self.lookup(key_hash)
    }
    fleet_methods!();
}
