//! Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
//! Load Balancer", NSDI 2016).

use crate::fleet::{AddError, BackendId, Fleet, UnknownBackend};
use crate::hash::{mix, position, reduce32};
use crate::strategy::Strategy;

/// Seeds that derive a backend's permutation from its name hash.
const OFFSET_SEED: u64 = 0x6d61_676c_6576_6f66; // "maglevof"
const SKIP_SEED: u64 = 0x6d61_676c_6576_736b; // "maglevsk"
const EMPTY: u16 = u16::MAX;

const fn is_prime(m: usize) -> bool {
    if m < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= m {
        if m % d == 0 {
            return false;
        }
        d += 1;
    }
    true
}

/// Maglev lookup table of prime size `M` for up to `B` backends.
///
/// Each backend has a permutation of the table: `offset = mix(name_hash, S1) % M`,
/// `skip = mix(name_hash, S2) % (M - 1) + 1`, entry `j` = `(offset + j x skip) % M`.
/// Backends take turns (in insertion order; a backend of weight `w` takes `w`
/// turns per round) claiming their next unclaimed entry until the table is full,
/// so each owns about `M x w / W` entries. A key hash `h` reads entry
/// `((h >> 32) x M) >> 32`.
///
/// Cost: lookup is one table read, *O*(1); every fleet or health change rebuilds the
/// table, *O*(M log M) expected, as Maglev does. Memory: 2 bytes per entry plus 4
/// per backend. Disruption: a backend's keys all move when it leaves, and about
/// `1/n` of keys move to a new one, plus a small excess that shrinks as `M / n`
/// grows (the paper recommends `M > 100 n`; with `M = 65537` and 5 → 6 backends the
/// excess is under 1% of keys, checked in the tests). Backends marked down are
/// left out of the rebuilt table.
#[derive(Debug, Clone)]
pub struct Maglev<const B: usize, const M: usize> {
    fleet: Fleet<B>,
    /// During a rebuild: backend slots (`EMPTY` = unclaimed); after it: ids.
    table: [u16; M],
    next: [u32; B],
    filled: bool,
}

impl<const B: usize, const M: usize> Maglev<B, M> {
    const CHECK: () = {
        assert!(is_prime(M), "Maglev: the table size M must be prime");
        assert!(M <= u32::MAX as usize, "Maglev: M must fit in u32");
        assert!(
            B >= 1 && B < u16::MAX as usize,
            "Maglev: B must be in 1..65535"
        );
    };

    /// An empty table.
    #[must_use]
    pub const fn new() -> Self {
        let () = Self::CHECK;
        Self {
            fleet: Fleet::new(),
            table: [EMPTY; M],
            next: [0; B],
            filled: false,
        }
    }

    /// The table size.
    #[must_use]
    pub const fn table_size(&self) -> usize {
        M
    }

    /// The backend owning `key_hash`: one table read.
    #[must_use]
    #[inline]
    pub fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        if !self.filled {
            return None;
        }
        self.table
            .get(reduce32(position(key_hash), M as u32) as usize)
            .map(|&id| BackendId(id))
    }

    /// Adds several backends, `(id, name, weight)` each, and rebuilds the table
    /// once (one [`Strategy::add`] per backend rebuilds it every time). The
    /// result is identical to adding them one by one.
    ///
    /// # Errors
    /// The index of the first backend that cannot be added and why; the table
    /// is unchanged then.
    pub fn add_many(
        &mut self,
        backends: &[(BackendId, &[u8], u32)],
    ) -> Result<(), (usize, AddError)> {
        let before = self.fleet.len();
        for (i, &(id, name, weight)) in backends.iter().enumerate() {
            let pushed = self
                .fleet
                .check_add(id, name, weight)
                .and_then(|h| self.fleet.push(id, h, weight));
            if let Err(e) = pushed {
                while self.fleet.len() > before {
                    self.fleet.remove_slot(self.fleet.len() - 1);
                }
                return Err((i, e));
            }
        }
        self.rebuild();
        Ok(())
    }

    /// How many table entries each backend owns, in insertion order.
    pub fn entries_per_backend(&self) -> impl Iterator<Item = (BackendId, usize)> + '_ {
        self.fleet.as_slice().iter().map(move |b| {
            let n = if self.filled {
                self.table.iter().filter(|&&t| t == b.id.0).count()
            } else {
                0
            };
            (b.id, n)
        })
    }

    fn rebuild(&mut self) {
        let m = M as u64;
        let backends = self.fleet.as_slice();
        self.filled = backends.iter().any(|b| b.up);
        if !self.filled {
            return;
        }
        self.table.fill(EMPTY);
        for (n, b) in self.next.iter_mut().zip(backends) {
            *n = (mix(b.name_hash, OFFSET_SEED) % m) as u32;
        }
        let mut left = M;
        'fill: loop {
            for (slot, b) in backends.iter().enumerate() {
                if !b.up {
                    continue;
                }
                let skip = mix(b.name_hash, SKIP_SEED) % (m - 1) + 1;
                for _ in 0..b.weight {
                    let Some(cur) = self.next.get_mut(slot) else {
                        continue 'fill;
                    };
                    // The permutation visits every entry within M steps (M prime).
                    loop {
                        let c = *cur as usize;
                        *cur = ((u64::from(*cur) + skip) % m) as u32;
                        if let Some(e) = self.table.get_mut(c) {
                            if *e == EMPTY {
                                *e = slot as u16;
                                break;
                            }
                        }
                    }
                    left -= 1;
                    if left == 0 {
                        break 'fill;
                    }
                }
            }
        }
        // Slots to ids, in place: a lookup is then a single read.
        for t in self.table.iter_mut() {
            *t = backends.get(usize::from(*t)).map_or(0, |b| b.id.0);
        }
    }
}

impl<const B: usize, const M: usize> Default for Maglev<B, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize, const M: usize> Strategy for Maglev<B, M> {
    fn name(&self) -> &'static str {
        "maglev"
    }
    fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        let h = self.fleet.check_add(id, name, weight)?;
        self.fleet.push(id, h, weight)?;
        self.rebuild();
        Ok(())
    }
    fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        self.fleet.remove_slot(slot);
        self.rebuild();
        Ok(())
    }
    fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        let was = self
            .fleet
            .as_slice()
            .iter()
            .find(|b| b.id == id)
            .map(|b| b.up);
        self.fleet.set_up(id, up)?;
        if was != Some(up) {
            self.rebuild();
        }
        Ok(())
    }
    fn pick(&mut self, key_hash: u64) -> Option<BackendId> {
        self.lookup(key_hash)
    }
    fn start(&mut self, id: BackendId) -> Result<(), crate::LoadError> {
        self.fleet.start(id)
    }
    fn finish(&mut self, id: BackendId) -> Result<(), crate::LoadError> {
        self.fleet.finish(id)
    }
    fn backends(&self) -> &[crate::Backend] {
        self.fleet.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes() {
        assert!(is_prime(65_537));
        assert!(is_prime(251));
        assert!(!is_prime(65_536));
        assert!(!is_prime(1));
    }

    #[test]
    fn add_many_equals_one_by_one() {
        let mut one: Maglev<8, 251> = Maglev::new();
        for (i, n) in [b"a", b"b", b"c"].iter().enumerate() {
            one.add(BackendId(i as u16), *n, i as u32 + 1).unwrap();
        }
        let mut many: Maglev<8, 251> = Maglev::new();
        let batch: [(BackendId, &[u8], u32); 3] = [
            (BackendId(0), b"a", 1),
            (BackendId(1), b"b", 2),
            (BackendId(2), b"c", 3),
        ];
        many.add_many(&batch).unwrap();
        assert_eq!(one.table, many.table);
        let bad: [(BackendId, &[u8], u32); 2] = [(BackendId(5), b"x", 1), (BackendId(6), b"a", 1)];
        assert_eq!(many.add_many(&bad), Err((1, AddError::DuplicateName)));
        assert_eq!(many.backends().len(), 3);
        assert_eq!(one.table, many.table);
    }

    #[test]
    fn weighted_entries_are_proportional() {
        let mut m: Maglev<4, 65_537> = Maglev::new();
        m.add(BackendId(0), b"a", 1).unwrap();
        m.add(BackendId(1), b"b", 3).unwrap();
        let counts: Vec<_> = m.entries_per_backend().map(|(_, n)| n).collect();
        assert_eq!(counts.iter().sum::<usize>(), 65_537);
        let ratio = counts[1] as f64 / counts[0] as f64;
        assert!((ratio - 3.0).abs() < 0.01, "{counts:?}");
    }
}
