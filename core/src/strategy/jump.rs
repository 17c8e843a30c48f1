//! Jump consistent hash (Lamping & Veach, 2014), extended to remove any backend.

use crate::fleet::{AddError, Backend, BackendId, Fleet, UnknownBackend};
use crate::hash::mix;
use crate::strategy::{
    FleetView, LoadAware, Membership, Placement, Strategy, fleet_view, inherent_membership,
    keyed_load, keyed_strategy,
};

/// Marks a bucket whose backend was removed.
const HOLE: u32 = u32::MAX;

/// A bucket entry's flag: its backend is up (the low 16 bits hold its id).
const UP: u32 = 1 << 16;

/// Retries before the deterministic fallback scan (see [`Jump`]).
const MAX_ATTEMPTS: u64 = 32;

/// The jump consistent hash function: maps a 64-bit key to a bucket in `0..n`
/// such that growing `n` to `n + 1` moves only keys to the new bucket
/// (Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm", 2014).
/// Returns 0 when `n == 0`.
#[must_use]
#[inline]
pub fn jump_hash(mut key: u64, n: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    let n = i64::from(n);
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    // The loop runs at least once (n >= 1), so `b` ends in `0..n`.
    while j < n {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// Jump consistent hash over `S` buckets for up to `B` backends.
///
/// A backend of weight `w` owns `w` buckets. Jump alone can only grow or shrink
/// at the end; here a removed backend's buckets become holes: a key whose bucket
/// is a hole (or belongs to a backend marked down) retries with
/// `jump(mix(key_hash, attempt), n)` until it lands on a live bucket, so keys on
/// live buckets never move. New backends fill holes first (lowest bucket first),
/// then append. After 32 failed attempts (probability `(holes / n)^32`) the key
/// takes the next live bucket after its last attempt.
///
/// Unlike the ring, the mapping depends on the order of additions and removals
/// (bucket numbers), not only on names: replay the same fleet changes to get the
/// same routing.
///
/// Cost: *O*(ln n) per attempt, expected `n / live` attempts; a bucket is 4 bytes
/// (its backend's id and health, so a lookup reads one entry and nothing else).
/// Disruption: exactly minimal for additions, removals and health changes.
#[derive(Debug, Clone)]
pub struct Jump<const B: usize, const S: usize> {
    fleet: Fleet<B>,
    /// Per bucket: [`HOLE`], or the backend's id, with [`UP`] while it is up.
    buckets: heapless::Vec<u32, S>,
}

impl<const B: usize, const S: usize> Default for Jump<B, S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize, const S: usize> Jump<B, S> {
    const CHECK: () = assert!(
        B < u16::MAX as usize && S <= u32::MAX as usize,
        "Jump: B must be below 65535"
    );

    /// An empty fleet.
    #[must_use]
    pub const fn new() -> Self {
        let () = Self::CHECK;
        Self {
            fleet: Fleet::new(),
            buckets: heapless::Vec::new(),
        }
    }

    /// Number of buckets, holes included.
    #[must_use]
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// The backend of a bucket that is up.
    #[inline]
    fn live(&self, bucket: u32) -> Option<BackendId> {
        let e = *self.buckets.get(bucket as usize)?;
        // Holes have every high bit set, down backends none.
        (e >> 16 == UP >> 16).then_some(BackendId(e as u16))
    }

    /// The backend of a bucket that is not a hole, up or down.
    #[inline]
    fn owned(&self, bucket: u32) -> Option<BackendId> {
        let e = *self.buckets.get(bucket as usize)?;
        (e != HOLE).then_some(BackendId(e as u16))
    }

    /// Pure placement: the backend for `key_hash`, health ignored (holes left
    /// by removed backends are retried; buckets of down backends are not).
    /// `None` with no backend. *O*(ln n) per attempt.
    #[must_use]
    #[inline]
    pub fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        let n = self.buckets.len() as u32;
        let first = jump_hash(key_hash, n);
        match self.owned(first) {
            Some(id) => Some(id),
            None => self.retry(key_hash, n, first, Self::owned),
        }
    }

    /// The backend for `key_hash` among backends that are up: a key whose
    /// bucket is a hole or down retries (see [`Jump`]). `None` when none is up.
    #[must_use]
    #[inline]
    pub fn pick(&self, key_hash: u64) -> Option<BackendId> {
        let n = self.buckets.len() as u32;
        // Attempt 0, the only one unless the bucket is a hole or down: small
        // enough to inline, with the retries out of line.
        let first = jump_hash(key_hash, n);
        match self.live(first) {
            Some(id) => Some(id),
            None => self.retry(key_hash, n, first, Self::live),
        }
    }

    /// Attempts `1..MAX_ATTEMPTS` of [`pick`](Self::pick) or
    /// [`lookup`](Self::lookup) (`accept` says which buckets qualify), then the
    /// scan.
    #[cold]
    #[inline(never)]
    fn retry(
        &self,
        key_hash: u64,
        n: u32,
        first: u32,
        accept: fn(&Self, u32) -> Option<BackendId>,
    ) -> Option<BackendId> {
        let mut last = first;
        for attempt in 1..MAX_ATTEMPTS {
            last = jump_hash(mix(key_hash, attempt), n);
            if let Some(id) = accept(self, last) {
                return Some(id);
            }
        }
        (1..=n).find_map(|d| accept(self, (last + d) % n))
    }

    /// Adds a backend: its `weight` buckets fill holes first (lowest first),
    /// then append. *O*(buckets).
    ///
    /// # Errors
    /// [`AddError`] ([`AddError::NoRoom`] when the `S` buckets cannot hold
    /// it); the fleet is unchanged on error.
    pub fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        let h = self.fleet.check_add(id, name, weight)?;
        let holes = self.buckets.iter().filter(|&&s| s == HOLE).count();
        let need = (weight as usize).saturating_sub(holes);
        if need > S - self.buckets.len() {
            return Err(AddError::NoRoom);
        }
        self.fleet.push(id, h, weight)?;
        // New backends are up.
        let entry = u32::from(id.0) | UP;
        let mut left = weight as usize;
        for s in self.buckets.iter_mut().filter(|s| **s == HOLE) {
            if left == 0 {
                break;
            }
            *s = entry;
            left -= 1;
        }
        for _ in 0..left {
            self.buckets.push(entry).map_err(|_| AddError::NoRoom)?;
        }
        Ok(())
    }

    /// Removes a backend: its buckets become holes. *O*(buckets).
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    pub fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        for s in self.buckets.iter_mut() {
            if *s != HOLE && *s as u16 == id.0 {
                *s = HOLE;
            }
        }
        self.fleet.remove_slot(slot);
        Ok(())
    }

    /// Marks a backend up or down (its buckets' flags). *O*(buckets).
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    pub fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        self.fleet.set_up(id, up)?;
        let entry = u32::from(id.0) | if up { UP } else { 0 };
        for s in self.buckets.iter_mut() {
            if *s != HOLE && *s as u16 == id.0 {
                *s = entry;
            }
        }
        Ok(())
    }

    /// The backends, in insertion order.
    #[must_use]
    pub fn backends(&self) -> &[Backend] {
        self.fleet.as_slice()
    }
}

impl<const B: usize, const S: usize> FleetView for Jump<B, S> {
    fleet_view!("jump", |s| s.fleet);
}

impl<const B: usize, const S: usize> Placement for Jump<B, S> {
    fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        Jump::lookup(self, key_hash)
    }
    fn pick(&self, key_hash: u64) -> Option<BackendId> {
        Jump::pick(self, key_hash)
    }
}

impl<const B: usize, const S: usize> Membership for Jump<B, S> {
    inherent_membership!(Jump);
}

impl<const B: usize, const S: usize> LoadAware for Jump<B, S> {
    keyed_load!(|s| s.fleet);
}

impl<const B: usize, const S: usize> Strategy for Jump<B, S> {
    keyed_strategy!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_reference_values() {
        // Test vectors shared by public ports of the paper's C++ function.
        assert_eq!(jump_hash(1, 1), 0);
        assert_eq!(jump_hash(42, 57), 43);
        assert_eq!(jump_hash(0xDEAD_10CC, 1), 0);
        assert_eq!(jump_hash(0xDEAD_10CC, 666), 361);
        assert_eq!(jump_hash(256, 1024), 520);
        assert_eq!(jump_hash(0, 0), 0);
        // Monotone: growing n only moves keys to the new bucket.
        for k in 0..2000u64 {
            let key = crate::hash_u64(k);
            for n in 1..40 {
                let a = jump_hash(key, n);
                let b = jump_hash(key, n + 1);
                assert!(a < n);
                assert!(b == a || b == n);
            }
        }
    }
}
