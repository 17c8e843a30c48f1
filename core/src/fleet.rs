//! Backends and the fixed-capacity fleet table every strategy keeps.
//!
//! A backend has a caller-chosen small [`BackendId`] (what lookups return) and a
//! name (the bytes that are hashed, e.g. `"10.0.0.7:11211"`): placement depends only
//! on the name, so the same fleet gives the same routing on every device whatever
//! ids or insertion order it uses. The table stores the name's 64-bit hash, not the
//! name: keep names in your own table, indexed by id.

use core::fmt;

use crate::hash::hash;

/// Identifies a backend in lookups. Chosen by the caller; must be unique per fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BackendId(pub u16);

impl From<u16> for BackendId {
    fn from(v: u16) -> Self {
        BackendId(v)
    }
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The largest weight any strategy accepts. Bounds every `points = vnodes x weight`
/// product well inside `u32`.
pub const MAX_WEIGHT: u32 = 65_535;

/// What a strategy knows about one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Backend {
    /// The caller's id.
    pub id: BackendId,
    /// [`hash`](crate::hash())`(name)`: the only thing placement depends on.
    pub name_hash: u64,
    /// Relative capacity, `1..=`[`MAX_WEIGHT`].
    pub weight: u32,
    /// Health: `false` means "marked down", skipped by lookups that honour health.
    pub up: bool,
    /// Requests in flight, as reported through [`LoadAware::start`](crate::LoadAware::start)
    /// and [`LoadAware::finish`](crate::LoadAware::finish).
    pub load: u32,
}

/// Why a backend could not be added. The fleet is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AddError {
    /// The fleet already holds its compile-time maximum of backends.
    Full,
    /// Another backend already has this id.
    DuplicateId,
    /// Another backend already has this name (same name hash).
    DuplicateName,
    /// Weight 0: a backend must be able to receive keys.
    ZeroWeight,
    /// Weight above [`MAX_WEIGHT`].
    WeightTooLarge,
    /// The strategy's point / bucket storage (a compile-time capacity) cannot hold
    /// this backend's share at this weight.
    NoRoom,
    /// The name does not suit this placement: empty or longer than its name
    /// storage, or not in the form it needs (the compat adapters of
    /// `compat::placement`; chring's own strategies take any name).
    BadName,
}

impl fmt::Display for AddError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddError::Full => "fleet is full (compile-time backend capacity reached)",
            AddError::DuplicateId => "a backend with this id already exists",
            AddError::DuplicateName => "a backend with this name already exists",
            AddError::ZeroWeight => "weight must be at least 1",
            AddError::WeightTooLarge => "weight exceeds MAX_WEIGHT (65535)",
            AddError::NoRoom => "not enough point/bucket capacity for this backend's weight",
            AddError::BadName => "the name does not suit this placement (length or form)",
        })
    }
}

impl core::error::Error for AddError {}

/// No backend has the given id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownBackend(pub BackendId);

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no backend with id {}", self.0.0)
    }
}

impl core::error::Error for UnknownBackend {}

/// Why a weight could not be changed. The fleet is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WeightError {
    /// No backend has this id.
    Unknown(UnknownBackend),
    /// Weight 0.
    ZeroWeight,
    /// Weight above [`MAX_WEIGHT`].
    WeightTooLarge,
    /// Not enough point / bucket capacity for the new weight.
    NoRoom,
}

impl fmt::Display for WeightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WeightError::Unknown(e) => return e.fmt(f),
            WeightError::ZeroWeight => "weight must be at least 1",
            WeightError::WeightTooLarge => "weight exceeds MAX_WEIGHT (65535)",
            WeightError::NoRoom => "not enough point/bucket capacity for this weight",
        })
    }
}

impl core::error::Error for WeightError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            WeightError::Unknown(e) => Some(e),
            _ => None,
        }
    }
}

impl From<UnknownBackend> for WeightError {
    fn from(e: UnknownBackend) -> Self {
        WeightError::Unknown(e)
    }
}

/// Why load feedback was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LoadError {
    /// No backend has this id.
    Unknown(UnknownBackend),
    /// `finish` without a matching `start`: the backend has no request in flight.
    NotStarted,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoadError::Unknown(e) => return e.fmt(f),
            LoadError::NotStarted => "finish without a matching start (no request in flight)",
        })
    }
}

impl core::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            LoadError::Unknown(e) => Some(e),
            LoadError::NotStarted => None,
        }
    }
}

impl From<UnknownBackend> for LoadError {
    fn from(e: UnknownBackend) -> Self {
        LoadError::Unknown(e)
    }
}

/// Why a batch (`add_many`) was refused: the error of the entry at `index`
/// (an entry that could not be added, or the one whose capacity ran out). The
/// structure is left unchanged: a batch is all or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BatchError<E> {
    /// Position of the offending entry in the batch.
    pub index: usize,
    /// Why that entry was refused.
    pub error: E,
}

impl<E: fmt::Display> fmt::Display for BatchError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch entry {}: {}", self.index, self.error)
    }
}

impl<E: core::error::Error + 'static> core::error::Error for BatchError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// Checks a weight against `1..=MAX_WEIGHT`.
pub(crate) fn check_weight(weight: u32) -> Result<(), AddError> {
    match weight {
        0 => Err(AddError::ZeroWeight),
        w if w > MAX_WEIGHT => Err(AddError::WeightTooLarge),
        _ => Ok(()),
    }
}

impl From<AddError> for WeightError {
    fn from(e: AddError) -> Self {
        match e {
            AddError::ZeroWeight => WeightError::ZeroWeight,
            AddError::WeightTooLarge => WeightError::WeightTooLarge,
            _ => WeightError::NoRoom,
        }
    }
}

/// "No slot" in the id index (slots are `0..B`, `B <= 65535`).
const NO_SLOT: u16 = u16::MAX;

/// The fixed-capacity table of backends, in insertion order (removal closes the
/// gap, so the order is the order of the remaining additions).
///
/// # Lookup by id
///
/// Ids are caller-chosen `u16`s, so the table keeps a hash index beside the
/// backends: `heads[h(id)]` is the first slot whose id hashes to bucket
/// `h(id)`, and `next[slot]` the following slot with the same bucket (separate
/// chaining threaded through two `[u16; B]` arrays, `B` buckets for at most
/// `B` backends, load factor <= 1). `h` is Fibonacci hashing of the id reduced
/// to `0..B` by a multiply-shift, so dense ids `0..n` spread evenly.
///
/// | operation | cost |
/// | --- | --- |
/// | `slot`, `set_up`, `start`, `finish` | *O*(1) expected (one chain of expected length < 2) |
/// | `push` | *O*(1) plus the caller's *O*(n) duplicate-name check |
/// | `remove_slot` | *O*(n): the backends shift down (insertion order is kept) and every chain is relinked |
///
/// Memory: 4 bytes per backend of capacity (`2 x [u16; B]`) on top of the backends.
#[derive(Debug, Clone)]
pub(crate) struct Fleet<const B: usize> {
    backends: heapless::Vec<Backend, B>,
    /// Bucket -> first slot of its chain, [`NO_SLOT`] for an empty bucket.
    heads: [u16; B],
    /// Slot -> next slot in its bucket's chain, [`NO_SLOT`] at the end.
    next: [u16; B],
    /// Sum of `load` over all backends, kept up to date (bounded loads reads it
    /// on every pick).
    load_sum: u64,
    /// Sum of `weight` over backends that are up, kept up to date.
    up_weight_sum: u64,
    /// Number of backends marked down, kept up to date: 0 lets health-aware
    /// lookups skip reading the owner's flag.
    down: usize,
}

impl<const B: usize> Fleet<B> {
    pub(crate) const fn new() -> Self {
        Self {
            backends: heapless::Vec::new(),
            heads: [NO_SLOT; B],
            next: [NO_SLOT; B],
            load_sum: 0,
            up_weight_sum: 0,
            down: 0,
        }
    }

    pub(crate) fn as_slice(&self) -> &[Backend] {
        &self.backends
    }

    pub(crate) fn len(&self) -> usize {
        self.backends.len()
    }

    /// The bucket of `id` in `0..B`: Fibonacci hashing, then a multiply-shift
    /// reduction (no division).
    #[inline]
    fn bucket(id: BackendId) -> usize {
        let h = u32::from(id.0).wrapping_mul(0x9E37_79B9);
        ((u64::from(h) * B as u64) >> 32) as usize
    }

    /// The slot of the backend with this id. *O*(1) expected.
    #[inline]
    pub(crate) fn slot(&self, id: BackendId) -> Option<usize> {
        let mut s = *self.heads.get(Self::bucket(id))?;
        // A chain never holds more than `len` slots; the bound keeps a broken
        // invariant from looping.
        for _ in 0..self.backends.len() {
            if s == NO_SLOT {
                return None;
            }
            let slot = usize::from(s);
            if self.backends.get(slot)?.id == id {
                return Some(slot);
            }
            s = *self.next.get(slot)?;
        }
        None
    }

    /// Links `slot` (holding a backend with this id) at the head of its chain.
    fn link(heads: &mut [u16; B], next: &mut [u16; B], id: BackendId, slot: usize) {
        if let (Some(head), Some(n)) = (heads.get_mut(Self::bucket(id)), next.get_mut(slot)) {
            *n = *head;
            *head = slot as u16;
        }
    }

    /// Relinks every chain after the backend `removed` left and the slots after
    /// it moved down. *O*(n): only the buckets in use are touched.
    fn relink(&mut self, removed: BackendId) {
        let Self {
            backends,
            heads,
            next,
            ..
        } = self;
        for id in backends.iter().map(|b| b.id).chain([removed]) {
            if let Some(h) = heads.get_mut(Self::bucket(id)) {
                *h = NO_SLOT;
            }
        }
        for (slot, b) in backends.iter().enumerate() {
            Self::link(heads, next, b.id, slot);
        }
    }

    pub(crate) fn get(&self, slot: usize) -> Option<&Backend> {
        self.backends.get(slot)
    }

    /// Validates an addition without performing it.
    pub(crate) fn check_add(
        &self,
        id: BackendId,
        name: &[u8],
        weight: u32,
    ) -> Result<u64, AddError> {
        check_weight(weight)?;
        if self.backends.is_full() {
            return Err(AddError::Full);
        }
        if self.slot(id).is_some() {
            return Err(AddError::DuplicateId);
        }
        let name_hash = hash(name);
        if self.backends.iter().any(|b| b.name_hash == name_hash) {
            return Err(AddError::DuplicateName);
        }
        Ok(name_hash)
    }

    /// Appends a backend validated by [`Self::check_add`]; returns its slot.
    pub(crate) fn push(
        &mut self,
        id: BackendId,
        name_hash: u64,
        weight: u32,
    ) -> Result<usize, AddError> {
        let slot = self.backends.len();
        self.backends
            .push(Backend {
                id,
                name_hash,
                weight,
                up: true,
                load: 0,
            })
            .map_err(|_| AddError::Full)?;
        Self::link(&mut self.heads, &mut self.next, id, slot);
        self.up_weight_sum += u64::from(weight);
        Ok(slot)
    }

    /// [`Self::check_add`] then [`Self::push`]: adds an up backend with
    /// nothing in flight; returns its slot. *O*(n) (duplicate-name check).
    pub(crate) fn add(
        &mut self,
        id: BackendId,
        name: &[u8],
        weight: u32,
    ) -> Result<usize, AddError> {
        let h = self.check_add(id, name, weight)?;
        self.push(id, h, weight)
    }

    /// [`Self::add`] for a strategy that keeps `value` per slot in `side`
    /// (parallel to the backends): the addition is validated first, and
    /// nothing changes when either vector is full.
    pub(crate) fn add_with<T, const N: usize>(
        &mut self,
        id: BackendId,
        name: &[u8],
        weight: u32,
        side: &mut heapless::Vec<T, N>,
        value: T,
    ) -> Result<(), AddError> {
        let h = self.check_add(id, name, weight)?;
        side.push(value).map_err(|_| AddError::Full)?;
        self.push(id, h, weight).map(|_| ())
    }

    /// Removes the backend with this id, keeping the order of the others;
    /// returns the slot it had. *O*(n).
    pub(crate) fn remove(&mut self, id: BackendId) -> Result<usize, UnknownBackend> {
        let slot = self.slot(id).ok_or(UnknownBackend(id))?;
        self.remove_slot(slot);
        Ok(slot)
    }

    /// [`Self::remove`] for a strategy that keeps one value per slot in `side`
    /// (parallel to the backends): that value goes too.
    pub(crate) fn remove_with<T, const N: usize>(
        &mut self,
        id: BackendId,
        side: &mut heapless::Vec<T, N>,
    ) -> Result<usize, UnknownBackend> {
        let slot = self.remove(id)?;
        if slot < side.len() {
            side.remove(slot);
        }
        Ok(slot)
    }

    /// Removes the backend at `slot`, keeping the order of the others.
    pub(crate) fn remove_slot(&mut self, slot: usize) -> Option<Backend> {
        if slot >= self.backends.len() {
            return None;
        }
        let b = self.backends.remove(slot);
        self.relink(b.id);
        self.load_sum -= u64::from(b.load);
        if b.up {
            self.up_weight_sum -= u64::from(b.weight);
        } else {
            self.down -= 1;
        }
        Some(b)
    }

    pub(crate) fn set_weight(&mut self, slot: usize, weight: u32) {
        if let Some(b) = self.backends.get_mut(slot) {
            if b.up {
                self.up_weight_sum = self.up_weight_sum - u64::from(b.weight) + u64::from(weight);
            }
            b.weight = weight;
        }
    }

    pub(crate) fn set_up(&mut self, id: BackendId, up: bool) -> Result<(), UnknownBackend> {
        let slot = self.slot(id).ok_or(UnknownBackend(id))?;
        let b = self.backends.get_mut(slot).ok_or(UnknownBackend(id))?;
        if b.up != up {
            if up {
                self.up_weight_sum += u64::from(b.weight);
                self.down -= 1;
            } else {
                self.up_weight_sum -= u64::from(b.weight);
                self.down += 1;
            }
        }
        b.up = up;
        Ok(())
    }

    pub(crate) fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        let slot = self.slot(id).ok_or(UnknownBackend(id))?;
        let b = self.backends.get_mut(slot).ok_or(UnknownBackend(id))?;
        if let Some(l) = b.load.checked_add(1) {
            b.load = l;
            self.load_sum += 1;
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self, id: BackendId) -> Result<(), LoadError> {
        let slot = self.slot(id).ok_or(UnknownBackend(id))?;
        let b = self.backends.get_mut(slot).ok_or(UnknownBackend(id))?;
        b.load = b.load.checked_sub(1).ok_or(LoadError::NotStarted)?;
        self.load_sum -= 1;
        Ok(())
    }

    /// Requests in flight over all backends. *O*(1).
    pub(crate) fn total_load(&self) -> u64 {
        debug_assert_eq!(
            self.load_sum,
            self.backends.iter().map(|b| u64::from(b.load)).sum::<u64>()
        );
        self.load_sum
    }

    /// `true` when no backend is marked down. *O*(1).
    #[inline]
    pub(crate) fn all_up(&self) -> bool {
        debug_assert_eq!(self.down, self.backends.iter().filter(|b| !b.up).count());
        self.down == 0
    }

    /// Total weight of the backends that are up. *O*(1).
    pub(crate) fn up_weight(&self) -> u64 {
        debug_assert_eq!(
            self.up_weight_sum,
            self.backends
                .iter()
                .filter(|b| b.up)
                .map(|b| u64::from(b.weight))
                .sum::<u64>()
        );
        self.up_weight_sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Push(u16),
        Remove(u16),
        SetUp(u16, bool),
        Start(u16),
        Finish(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Ids from a small range collide often (duplicates, unknown ids); a few
        // large ones exercise the hash.
        let id = prop_oneof![0u16..24, any::<u16>()];
        prop_oneof![
            3 => id.clone().prop_map(Op::Push),
            1 => id.clone().prop_map(Op::Remove),
            1 => (id.clone(), any::<bool>()).prop_map(|(i, u)| Op::SetUp(i, u)),
            2 => id.clone().prop_map(Op::Start),
            1 => id.prop_map(Op::Finish),
        ]
    }

    /// Every operation by id agrees with a linear search over the table (the
    /// pre-index implementation), and the order stays the insertion order.
    fn check_against_linear<const B: usize>(ops: &[Op]) {
        let mut f: Fleet<B> = Fleet::new();
        let mut model: Vec<Backend> = Vec::new();
        for op in ops {
            match *op {
                Op::Push(i) => {
                    let id = BackendId(i);
                    let name = i.to_le_bytes();
                    let expect = if model.len() >= B {
                        Err(AddError::Full)
                    } else if model.iter().any(|b| b.id == id) {
                        Err(AddError::DuplicateId)
                    } else {
                        Ok(hash(&name))
                    };
                    assert_eq!(f.check_add(id, &name, 1), expect);
                    if let Ok(h) = expect {
                        assert_eq!(f.push(id, h, 1), Ok(model.len()));
                        model.push(Backend {
                            id,
                            name_hash: h,
                            weight: 1,
                            up: true,
                            load: 0,
                        });
                    }
                }
                Op::Remove(i) => {
                    let pos = model.iter().position(|b| b.id == BackendId(i));
                    assert_eq!(f.slot(BackendId(i)), pos);
                    if let Some(p) = pos {
                        assert_eq!(f.remove_slot(p), Some(model.remove(p)));
                    }
                }
                Op::SetUp(i, up) => {
                    let b = model.iter_mut().find(|b| b.id == BackendId(i));
                    let expect = b.map(|b| b.up = up).ok_or(UnknownBackend(BackendId(i)));
                    assert_eq!(f.set_up(BackendId(i), up), expect);
                }
                Op::Start(i) => {
                    let b = model.iter_mut().find(|b| b.id == BackendId(i));
                    let expect = b
                        .map(|b| b.load += 1)
                        .ok_or(LoadError::Unknown(UnknownBackend(BackendId(i))));
                    assert_eq!(f.start(BackendId(i)), expect);
                }
                Op::Finish(i) => {
                    let expect = match model.iter_mut().find(|b| b.id == BackendId(i)) {
                        None => Err(LoadError::Unknown(UnknownBackend(BackendId(i)))),
                        Some(b) if b.load == 0 => Err(LoadError::NotStarted),
                        Some(b) => {
                            b.load -= 1;
                            Ok(())
                        }
                    };
                    assert_eq!(f.finish(BackendId(i)), expect);
                }
            }
            assert_eq!(f.as_slice(), &model[..]);
            for (slot, b) in model.iter().enumerate() {
                assert_eq!(f.slot(b.id), Some(slot));
            }
            let _ = (f.total_load(), f.up_weight());
            assert_eq!(f.all_up(), model.iter().all(|b| b.up));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn ops_by_id_match_linear_model(ops in proptest::collection::vec(op(), 0..200)) {
            check_against_linear::<1>(&ops);
            check_against_linear::<7>(&ops);
            check_against_linear::<16>(&ops);
        }
    }

    #[test]
    fn full_fleet_of_every_id_pattern() {
        // A 1.7 MiB fleet: built on a thread with room for it.
        std::thread::Builder::new()
            .stack_size(16 << 20)
            .spawn(full_fleet)
            .unwrap()
            .join()
            .unwrap();
    }

    fn full_fleet() {
        // Dense, strided and extreme ids at B = 65535 all resolve.
        let mut f: Box<Fleet<65_535>> = Box::new(Fleet::new());
        for i in 0..65_535u16 {
            let id = BackendId(i.wrapping_mul(40_503).wrapping_add(7));
            assert_eq!(f.push(id, u64::from(i), 1), Ok(usize::from(i)));
        }
        assert_eq!(f.push(BackendId(1), 0, 1), Err(AddError::Full));
        for i in (0..65_535u16).step_by(97) {
            let id = BackendId(i.wrapping_mul(40_503).wrapping_add(7));
            assert_eq!(f.slot(id), Some(usize::from(i)));
        }
        // The one id left out of the bijection above.
        let missing = (0..=u16::MAX)
            .map(BackendId)
            .find(|&id| f.slot(id).is_none());
        assert!(missing.is_some());
    }
}
