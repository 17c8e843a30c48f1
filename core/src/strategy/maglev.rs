//! Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
//! Load Balancer", NSDI 2016).

use crate::fleet::{AddError, Backend, BackendId, BatchError, Fleet, UnknownBackend};
use crate::hash::{mix, position, reduce32};
use crate::strategy::{
    FleetView, LoadAware, Membership, Placement, Strategy, fleet_view, inherent_membership,
    keyed_load, keyed_strategy,
};

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
/// Backends take turns claiming their next unclaimed entry until the table is
/// full. A backend of weight `w` has its turns `t = 0, 1, 2, ...` at times
/// `(2t + 1) / 2w`, evenly spaced `1 / w` apart; all turns are taken in order of
/// time (compared exactly, in integers), ties in insertion order. With equal
/// weights every round is a tie, so this is classic Maglev (one turn each per
/// round, in insertion order); with unequal weights the turns interleave, so a
/// backend owns `M x w / W` entries within `1/2 + n w / 2W` (`n` backends, total
/// weight `W`) whatever the weights' scale: multiplying every weight by the same
/// factor gives the same table. A key hash `h` reads entry `((h >> 32) x M) >> 32`.
///
/// Cost: lookup is one table read, *O*(1); every fleet or health change rebuilds the
/// table in *O*(M log M) expected (the permutation walks, as Maglev) plus
/// *O*(M log n) for the turn order when weights differ (a binary heap of the
/// backends; equal weights take turns round robin, *O*(1) each), with no
/// allocation. [`add_many`](Self::add_many) adds a whole fleet with one rebuild.
/// Memory: 4 bytes per entry (two tables: the placement over every backend,
/// which [`lookup`](Self::lookup) reads, and the table over the backends that
/// are up, which [`pick`](Self::pick) reads; equal, and copied rather than
/// rebuilt, while every backend is up) plus 16 per backend (the rebuild's
/// scratch: cursor, step, and next turn: count, weight, slot). Disruption: a backend's keys all move when it
/// leaves, and about `1/n` of keys move to a new one, plus a small excess that
/// shrinks as `M / n` grows (the paper recommends `M > 100 n`; with `M = 65537` and
/// 5 → 6 backends the excess is under 1% of keys, checked in the tests). Backends
/// marked down are left out of the table [`pick`](Self::pick) reads (Maglev's
/// own health model: a health change rebuilds that table, so a few keys of up
/// backends move too); [`lookup`](Self::lookup) keeps them.
#[derive(Debug, Clone)]
pub struct Maglev<const B: usize, const M: usize> {
    fleet: Fleet<B>,
    /// The table over the backends that are up (what `pick` reads). During a
    /// rebuild: backend slots (`EMPTY` = unclaimed); after it: ids.
    table: [u16; M],
    /// The table over every backend, health ignored (what `lookup` reads).
    placement: [u16; M],
    /// Per slot, rebuild scratch: the next permutation entry to try.
    next: [u32; B],
    /// Per slot, rebuild scratch: `M - skip` (the step without `%`).
    back: [u32; B],
    /// Rebuild scratch: the up backends' next turns; a min-heap by time when
    /// weights differ, in insertion order when they are equal.
    turns: [Turn; B],
    /// Some backend is up: `table` is valid.
    filled: bool,
    /// Some backend exists: `placement` is valid.
    placed: bool,
}

/// A backend's next turn during a rebuild: turn `t` of slot `slot`, weight `w`.
/// Kept whole in the heap so comparing two turns reads nothing else.
#[derive(Debug, Clone, Copy)]
struct Turn {
    t: u32,
    w: u16,
    slot: u16,
}

impl Turn {
    const ZERO: Self = Self {
        t: 0,
        w: 1,
        slot: 0,
    };
}

/// `true` when turn `a` comes before turn `b`: turn `t` of a backend of weight
/// `w` is at time `(2t + 1) / 2w`, so compare `(2 t_a + 1) w_b < (2 t_b + 1) w_a`,
/// ties by slot (insertion order). `t < 2^32` and `w < 2^16`, so each product is
/// below `2^49`: no overflow.
#[inline]
fn turn_before(a: Turn, b: Turn) -> bool {
    let lhs = (2 * u64::from(a.t) + 1) * u64::from(b.w);
    let rhs = (2 * u64::from(b.t) + 1) * u64::from(a.w);
    lhs < rhs || (lhs == rhs && a.slot < b.slot)
}

/// Claims the first unclaimed entry of a permutation for `slot`, starting at
/// `*next`, and leaves `*next` after it. The permutation visits every entry within
/// `M` steps (`M` prime, `1 <= skip < M`), and the caller only calls this while an
/// entry is unclaimed. `back = M - skip` keeps the step in range without `%`.
#[inline]
fn claim(table: &mut [u16], next: &mut u32, back: usize, slot: u16) {
    let m = table.len();
    let mut c = *next as usize;
    let mut steps = m;
    while let Some(e) = table.get_mut(c) {
        c = if c >= back { c - back } else { c + (m - back) };
        if *e == EMPTY {
            *e = slot;
            break;
        }
        steps -= 1;
        if steps == 0 {
            break;
        }
    }
    *next = c as u32;
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
            placement: [EMPTY; M],
            next: [0; B],
            back: [0; B],
            turns: [Turn::ZERO; B],
            filled: false,
            placed: false,
        }
    }

    /// The table size.
    #[must_use]
    pub const fn table_size(&self) -> usize {
        M
    }

    /// Pure placement: the backend owning `key_hash` in the table over every
    /// backend, health ignored. `None` with no backend. One table read.
    #[must_use]
    #[inline]
    pub fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        if !self.placed {
            return None;
        }
        self.placement
            .get(reduce32(position(key_hash), M as u32) as usize)
            .map(|&id| BackendId(id))
    }

    /// The backend owning `key_hash` in the table over the backends that are
    /// up. `None` when none is up. One table read.
    #[must_use]
    #[inline]
    pub fn pick(&self, key_hash: u64) -> Option<BackendId> {
        if !self.filled {
            return None;
        }
        self.table
            .get(reduce32(position(key_hash), M as u32) as usize)
            .map(|&id| BackendId(id))
    }

    /// Adds a backend and rebuilds the tables (see [`Maglev`] for the cost;
    /// [`add_many`](Self::add_many) adds a fleet with one rebuild).
    ///
    /// # Errors
    /// [`AddError`]; the fleet is unchanged on error.
    pub fn add(&mut self, id: BackendId, name: &[u8], weight: u32) -> Result<(), AddError> {
        self.fleet.add(id, name, weight)?;
        self.rebuild();
        Ok(())
    }

    /// Removes a backend and rebuilds the tables.
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    pub fn remove(&mut self, id: BackendId) -> Result<(), UnknownBackend> {
        self.fleet.remove(id)?;
        self.rebuild();
        Ok(())
    }

    /// Marks a backend up or down; a change rebuilds the table `pick` reads
    /// (a copy of the placement when every backend is up again).
    ///
    /// # Errors
    /// [`UnknownBackend`] if no backend has this id.
    pub fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        let slot = self.fleet.slot(id).ok_or(UnknownBackend(id))?;
        let was = self.fleet.get(slot).map(|b| b.up);
        self.fleet.set_up(id, up)?;
        if was != Some(up) {
            self.rebuild_live();
        }
        Ok(())
    }

    /// The backends, in insertion order.
    #[must_use]
    pub fn backends(&self) -> &[Backend] {
        self.fleet.as_slice()
    }

    /// Adds several backends, `(id, name, weight)` each, and rebuilds the table
    /// once (one [`add`](Self::add) per backend rebuilds it every time). The
    /// result is identical to adding them one by one. Cost: one rebuild (see
    /// [`Maglev`]) plus *O*(n) per backend for the duplicate checks.
    ///
    /// # Errors
    /// [`BatchError`]: the index of the first backend that cannot be added and
    /// why; the table is unchanged then.
    pub fn add_many(
        &mut self,
        backends: &[(BackendId, &[u8], u32)],
    ) -> Result<(), BatchError<AddError>> {
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
                return Err(BatchError { index: i, error: e });
            }
        }
        self.rebuild();
        Ok(())
    }

    /// How many table entries each backend owns, in insertion order. Cost:
    /// *O*(n × M), a scan of the table per backend.
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

    /// Rebuilds both tables after the fleet changed.
    fn rebuild(&mut self) {
        self.fill(true);
        self.rebuild_live();
    }

    /// Rebuilds the table of up backends: a copy of the placement while every
    /// backend is up.
    fn rebuild_live(&mut self) {
        if self.fleet.all_up() {
            self.table.copy_from_slice(&self.placement);
            self.filled = self.placed;
        } else {
            self.fill(false);
        }
    }

    /// Fills `placement` (`all`: every backend) or `table` (the up ones).
    fn fill(&mut self, all: bool) {
        let m = M as u64;
        let backends = self.fleet.as_slice();
        // The up backends' first turns in insertion order, each slot with its
        // permutation's start and `M - skip`; and whether all weights are equal.
        let mut ups = 0;
        let mut equal = true;
        let mut first_weight = None;
        for (slot, b) in backends.iter().enumerate() {
            if !b.up && !all {
                continue;
            }
            let (Some(turn), Some(next), Some(back)) = (
                self.turns.get_mut(ups),
                self.next.get_mut(slot),
                self.back.get_mut(slot),
            ) else {
                break;
            };
            *turn = Turn {
                t: 0,
                // Weights are 1..=MAX_WEIGHT (65535), checked on add.
                w: u16::try_from(b.weight).unwrap_or(u16::MAX),
                slot: slot as u16,
            };
            *next = (mix(b.name_hash, OFFSET_SEED) % m) as u32;
            let skip = mix(b.name_hash, SKIP_SEED) % (m - 1) + 1;
            *back = (m - skip) as u32;
            ups += 1;
            equal &= *first_weight.get_or_insert(b.weight) == b.weight;
        }
        let (table, filled) = if all {
            (&mut self.placement, &mut self.placed)
        } else {
            (&mut self.table, &mut self.filled)
        };
        *filled = ups > 0;
        if !*filled {
            return;
        }
        table.fill(EMPTY);
        let turns = self.turns.get_mut(..ups).unwrap_or_default();
        let (next, back) = (&mut self.next, &self.back);
        let mut claim_for = |slot: u16| {
            let s = usize::from(slot);
            if let (Some(next), Some(&back)) = (next.get_mut(s), back.get(s)) {
                claim(table, next, back as usize, slot);
            }
        };
        if equal {
            // Every round is a tie: one turn each, in insertion order.
            let mut left = M;
            'fill: loop {
                for turn in turns.iter() {
                    claim_for(turn.slot);
                    left -= 1;
                    if left == 0 {
                        break 'fill;
                    }
                }
            }
        } else {
            // Min-heap by time; each entry is claimed by the earliest turn.
            for i in (0..ups / 2).rev() {
                sift_down(turns, i);
            }
            for _ in 0..M {
                let Some(top) = turns.first_mut() else { break };
                claim_for(top.slot);
                top.t += 1;
                top_moved_later(turns);
            }
        }
        // Slots to ids, in place: a lookup is then a single read.
        for t in table.iter_mut() {
            *t = backends.get(usize::from(*t)).map_or(0, |b| b.id.0);
        }
    }
}

/// Restores the heap after the root's turn moved later (Floyd's bottom-up
/// variant: the hole goes down the earlier children to a leaf, one comparison a
/// level, then the root's turn climbs back, usually a step or two, as its new
/// time is rarely early). *O*(log n) comparisons.
fn top_moved_later(heap: &mut [Turn]) {
    let Some(&moving) = heap.first() else { return };
    let mut i = 0;
    loop {
        let l = 2 * i + 1;
        let Some(&left) = heap.get(l) else { break };
        let (c, child) = match heap.get(l + 1) {
            Some(&right) if turn_before(right, left) => (l + 1, right),
            _ => (l, left),
        };
        if let Some(e) = heap.get_mut(i) {
            *e = child;
        }
        i = c;
    }
    while i > 0 {
        let p = (i - 1) / 2;
        let Some(&parent) = heap.get(p) else { break };
        if !turn_before(moving, parent) {
            break;
        }
        if let Some(e) = heap.get_mut(i) {
            *e = parent;
        }
        i = p;
    }
    if let Some(e) = heap.get_mut(i) {
        *e = moving;
    }
}

/// Restores the heap property below `i` in a min-heap of turns (by
/// [`turn_before`]): *O*(log n) comparisons.
fn sift_down(heap: &mut [Turn], mut i: usize) {
    let Some(&moving) = heap.get(i) else { return };
    loop {
        let l = 2 * i + 1;
        let Some(&left) = heap.get(l) else { break };
        let (c, child) = match heap.get(l + 1) {
            Some(&right) if turn_before(right, left) => (l + 1, right),
            _ => (l, left),
        };
        if !turn_before(child, moving) {
            break;
        }
        if let Some(e) = heap.get_mut(i) {
            *e = child;
        }
        i = c;
    }
    if let Some(e) = heap.get_mut(i) {
        *e = moving;
    }
}

impl<const B: usize, const M: usize> Default for Maglev<B, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const B: usize, const M: usize> FleetView for Maglev<B, M> {
    fleet_view!("maglev", |s| s.fleet);
}

impl<const B: usize, const M: usize> Placement for Maglev<B, M> {
    fn lookup(&self, key_hash: u64) -> Option<BackendId> {
        Maglev::lookup(self, key_hash)
    }
    fn pick(&self, key_hash: u64) -> Option<BackendId> {
        Maglev::pick(self, key_hash)
    }
}

impl<const B: usize, const M: usize> Membership for Maglev<B, M> {
    inherent_membership!(Maglev);
}

impl<const B: usize, const M: usize> LoadAware for Maglev<B, M> {
    keyed_load!(|s| s.fleet);
}

impl<const B: usize, const M: usize> Strategy for Maglev<B, M> {
    keyed_strategy!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::{ProptestConfig, any, prop_assert, prop_assert_eq, proptest};

    /// Backends named `backend-<i>`, id `i`, with these weights, in order, added
    /// with one `add_many` (one rebuild; the same table as one `add` each).
    fn build<const M: usize>(weights: &[u32]) -> Box<Maglev<16, M>> {
        let names: Vec<String> = (0..weights.len()).map(|i| format!("backend-{i}")).collect();
        let batch: Vec<(BackendId, &[u8], u32)> = names
            .iter()
            .zip(weights)
            .enumerate()
            .map(|(i, (n, &w))| (BackendId(i as u16), n.as_bytes(), w))
            .collect();
        let mut m = Box::new(Maglev::new());
        m.add_many(&batch).unwrap();
        m
    }

    /// Entries per backend; ids are `0..n` (one pass, unlike `entries_per_backend`).
    fn counts<const B: usize, const M: usize>(m: &Maglev<B, M>) -> Vec<usize> {
        let mut c = vec![0; m.backends().len()];
        for &id in &m.table {
            c[usize::from(id)] += 1;
        }
        c
    }

    /// Issue 10: equal weights must split the table evenly whatever their size.
    /// Measured before the fix: 65535 : 2, 3000 : 1099, 400 : 331 : 300.
    #[test]
    fn issue10_equal_weights_split_evenly_at_any_scale() {
        fn even<const M: usize>(weights: &[u32]) {
            let c = counts(build::<M>(weights).as_ref());
            assert_eq!(c.iter().sum::<usize>(), M);
            let (lo, hi) = (c.iter().min().unwrap(), c.iter().max().unwrap());
            assert!(hi - lo <= 1, "{weights:?} at M = {M}: {c:?}");
        }
        even::<65_537>(&[65_535, 65_535]);
        even::<4099>(&[3000, 3000]);
        even::<1031>(&[100, 100, 100]);
    }

    /// Checks `counts` against the documented bound: `|c - M w / W| <= 1/2 + n w / 2W`
    /// (in integers: `|2 W c - 2 M w| <= W + n w`), and shares within 1% of `w / W`.
    fn assert_proportional(weights: &[u32], m: usize, c: &[usize]) {
        let n = weights.len() as u128;
        let total: u128 = weights.iter().map(|&w| u128::from(w)).sum();
        assert_eq!(c.iter().sum::<usize>(), m);
        for (&w, &got) in weights.iter().zip(c) {
            let (w, got, m) = (u128::from(w), got as u128, m as u128);
            let err2 = (2 * total * got).abs_diff(2 * m * w);
            assert!(
                err2 <= total + n * w,
                "{weights:?} at M = {m}: {c:?} (backend of weight {w} owns {got})"
            );
            let share_err = (got as f64 / m as f64 - w as f64 / total as f64).abs();
            assert!(share_err <= 0.01, "{weights:?} at M = {m}: {c:?}");
        }
    }

    fn weighted_case<const M: usize>(weights: &[u32], k: u32) {
        let a = build::<M>(weights);
        let ca = counts(a.as_ref());
        assert_proportional(weights, M, &ca);
        let scaled: Vec<u32> = weights.iter().map(|w| w * k).collect();
        let b = build::<M>(&scaled);
        // Same turn order at every scale, hence the very same table.
        assert!(a.table == b.table, "{weights:?} x {k} at M = {M}");
    }

    #[test]
    fn weighted_shares_follow_weights() {
        weighted_case::<65_537>(&[1, 3], 21_845);
        weighted_case::<65_537>(&[1, 1, 2, 1, 3], 8191);
        weighted_case::<4099>(&[65_535, 1, 1, 1], 1);
        weighted_case::<1031>(&[7, 11, 13, 65_000], 1);
    }

    /// The rule as DESIGN.md states it, written the slow way: before each claim,
    /// scan every up backend for the earliest next turn (`(2t + 1) / 2w`, exact
    /// fractions compared in `u128`, ties to the earlier backend); walk with `%`.
    fn naive_table(fleet: &[(u16, u64, u32, bool)], m: usize) -> Vec<u16> {
        let m64 = m as u64;
        let mut table: Vec<Option<u16>> = vec![None; m];
        let mut next: Vec<u64> = fleet.iter().map(|b| mix(b.1, OFFSET_SEED) % m64).collect();
        let skip: Vec<u64> = fleet
            .iter()
            .map(|b| mix(b.1, SKIP_SEED) % (m64 - 1) + 1)
            .collect();
        let mut turns = vec![0u128; fleet.len()];
        for _ in 0..m {
            let j = (0..fleet.len())
                .filter(|&j| fleet[j].3)
                .min_by(|&a, &b| {
                    let ta = (2 * turns[a] + 1) * u128::from(fleet[b].2);
                    let tb = (2 * turns[b] + 1) * u128::from(fleet[a].2);
                    ta.cmp(&tb).then(a.cmp(&b))
                })
                .unwrap();
            loop {
                let c = next[j] as usize;
                next[j] = (next[j] + skip[j]) % m64;
                if table[c].is_none() {
                    table[c] = Some(fleet[j].0);
                    break;
                }
            }
            turns[j] += 1;
        }
        table.into_iter().map(Option::unwrap).collect()
    }

    /// Classic Maglev (the paper's Algorithm 1): one turn each per round, in
    /// insertion order. Unweighted fleets must still get exactly this table.
    fn classic_table(name_hashes: &[u64], m: usize) -> Vec<u16> {
        let fleet: Vec<_> = (0..name_hashes.len())
            .map(|i| (i as u16, name_hashes[i], 1, true))
            .collect();
        let m64 = m as u64;
        let mut table: Vec<Option<u16>> = vec![None; m];
        let mut next: Vec<u64> = fleet.iter().map(|b| mix(b.1, OFFSET_SEED) % m64).collect();
        let mut left = m;
        'fill: loop {
            for (j, b) in fleet.iter().enumerate() {
                let skip = mix(b.1, SKIP_SEED) % (m64 - 1) + 1;
                loop {
                    let c = next[j] as usize;
                    next[j] = (next[j] + skip) % m64;
                    if table[c].is_none() {
                        table[c] = Some(b.0);
                        break;
                    }
                }
                left -= 1;
                if left == 0 {
                    break 'fill;
                }
            }
        }
        table.into_iter().map(Option::unwrap).collect()
    }

    #[test]
    fn turn_order_does_not_overflow() {
        let turn = |t, w, slot| Turn { t, w, slot };
        let max = crate::MAX_WEIGHT as u16;
        assert!(turn_before(turn(u32::MAX, max, 0), turn(u32::MAX, max, 1)));
        assert!(!turn_before(turn(u32::MAX, max, 1), turn(u32::MAX, max, 0)));
        assert!(turn_before(
            turn(u32::MAX - 1, max, 9),
            turn(u32::MAX, max, 0)
        ));
        assert!(!turn_before(turn(u32::MAX, 1, 0), turn(0, max, 1)));
        assert!(turn_before(turn(0, max, 1), turn(u32::MAX, 1, 0)));
        // (2 x 1 + 1) / (2 x 3) = (2 x 0 + 1) / (2 x 1): a tie, insertion order.
        assert!(turn_before(turn(1, 3, 0), turn(0, 1, 1)));
        assert!(!turn_before(turn(0, 1, 1), turn(1, 3, 0)));
    }

    /// A backend marked down is left out: the table equals the one built
    /// without it (same insertion order for the others).
    #[test]
    fn down_backend_is_left_out() {
        let mut m = build::<4099>(&[5, 1, 7, 2]);
        m.set_up(BackendId(2), false).unwrap();
        let mut without: Box<Maglev<16, 4099>> = Box::default();
        for (i, w) in [(0u16, 5), (1, 1), (3, 2)] {
            without
                .add(BackendId(i), format!("backend-{i}").as_bytes(), w)
                .unwrap();
        }
        assert!(m.table == without.table);
        m.set_up(BackendId(2), true).unwrap();
        assert!(m.table == build::<4099>(&[5, 1, 7, 2]).table);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The heap-driven rebuild equals the slow statement of the rule, with
        /// random weights and health; equal weights give classic Maglev.
        #[test]
        fn rebuild_matches_the_rule(
            fleet in proptest::collection::vec((1u32..=65_535, any::<bool>(), 0u32..3), 1..=12),
            equal in any::<bool>(),
        ) {
            let fleet: Vec<(u16, u64, u32, bool)> = fleet
                .iter()
                .enumerate()
                .map(|(i, &(w, up, small))| {
                    // Mix big and small weights; `equal` makes them all one value.
                    let w = if equal { fleet[0].0 } else if small == 0 { w % 4 + 1 } else { w };
                    (i as u16 + 100, crate::hash(format!("b{i}").as_bytes()), w, up || i == 0)
                })
                .collect();
            let mut m: Box<Maglev<16, 1031>> = Box::default();
            for (i, &(id, _, w, up)) in fleet.iter().enumerate() {
                m.add(BackendId(id), format!("b{i}").as_bytes(), w).unwrap();
                if !up {
                    m.set_up(BackendId(id), false).unwrap();
                }
            }
            prop_assert_eq!(&m.table[..], &naive_table(&fleet, 1031)[..]);
            if equal && fleet.iter().all(|b| b.3) {
                let hashes: Vec<u64> = fleet.iter().map(|b| b.1).collect();
                let classic: Vec<u16> =
                    classic_table(&hashes, 1031).iter().map(|&i| i + 100).collect();
                prop_assert_eq!(&m.table[..], &classic[..]);
            }
        }

        /// Random weights up to 65535 on several primes: every backend owns
        /// `M w / W` entries within the documented bound (and its share is within
        /// 1% of `w / W`), and multiplying every weight by `k` changes nothing.
        #[test]
        fn shares_follow_weights_at_any_scale(
            weights in proptest::collection::vec(1u32..=65_535, 1..=16),
            prime in 0usize..3,
            k in 1u32..=65_535,
        ) {
            let max = *weights.iter().max().unwrap();
            let k = 1 + (k - 1) % (65_535 / max);
            match prime {
                0 => weighted_case::<1031>(&weights, k),
                1 => weighted_case::<4099>(&weights, k),
                _ => weighted_case::<65_537>(&weights, k),
            }
        }

        /// Equal weights, any value: shares within one entry of each other.
        #[test]
        fn equal_weights_within_one_entry(
            n in 1usize..=16,
            w in 1u32..=65_535,
            prime in 0usize..3,
        ) {
            let weights = vec![w; n];
            let c = match prime {
                0 => counts(build::<1031>(&weights).as_ref()),
                1 => counts(build::<4099>(&weights).as_ref()),
                _ => counts(build::<65_537>(&weights).as_ref()),
            };
            let (lo, hi) = (c.iter().min().unwrap(), c.iter().max().unwrap());
            prop_assert!(hi - lo <= 1, "{n} x {w}: {c:?}");
        }
    }

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
        assert_eq!(
            many.add_many(&bad),
            Err(BatchError {
                index: 1,
                error: AddError::DuplicateName
            })
        );
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
