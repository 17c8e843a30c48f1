//! `hash % n`: the seeds' IPHash, and nginx's plain `hash $key` shape.

use crate::fleet::{AddError, BackendId, Fleet, UnknownBackend};
use crate::strategy::{Strategy, fleet_methods};

/// Modulo hashing: the key hash modulo the total weight picks a slice of the
/// backends laid end to end in insertion order (with weights all 1 this is plain
/// `hash % n`).
///
/// Cost: *O*(1) arithmetic plus *O*(n) to walk the weights. Disruption: when `n`
/// changes, a key keeps its backend only if `hash % n` happens to agree: adding a
/// 6th backend to 5 moves about 5/6 of all keys. It is here as the baseline that
/// consistent hashing beats. A down backend's keys go to the next backend that is
/// up, in insertion order (wrapping).
#[derive(Debug, Clone)]
pub struct Modulo<const B: usize> {
    fleet: Fleet<B>,
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
        }
    }

    /// The backend for `key_hash`, honouring health. `None` if none is up.
    #[must_use]
    pub fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        let backends = self.fleet.as_slice();
        let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
        if total == 0 {
            return None;
        }
        let mut x = key_hash % total;
        let mut start = 0;
        for (i, b) in backends.iter().enumerate() {
            let w = u64::from(b.weight);
            if x < w {
                start = i;
                break;
            }
            x -= w;
        }
        let n = backends.len();
        (0..n)
            .filter_map(|k| backends.get((start + k) % n))
            .find(|b| b.up)
            .map(|b| b.id)
    }
}

impl<const B: usize> Strategy for Modulo<B> {
    fn name(&self) -> &'static str {
        "modulo"
    }
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        let h = self.fleet.check_add(id, name, weight)?;
        self.fleet.push(id, h, weight).map(|_| ())
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        self.fleet.remove_slot(slot);
        Ok(())
    }
    fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        self.lookup(key_hash)
    }
    fleet_methods!();
}
