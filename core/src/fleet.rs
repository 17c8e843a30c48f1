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
    /// Requests in flight, as reported through [`Strategy::start`](crate::Strategy::start)
    /// and [`Strategy::finish`](crate::Strategy::finish).
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
    Unknown,
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
            WeightError::Unknown => "no backend with this id",
            WeightError::ZeroWeight => "weight must be at least 1",
            WeightError::WeightTooLarge => "weight exceeds MAX_WEIGHT (65535)",
            WeightError::NoRoom => "not enough point/bucket capacity for this weight",
        })
    }
}

impl core::error::Error for WeightError {}

/// Why load feedback was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LoadError {
    /// No backend has this id.
    Unknown,
    /// `finish` without a matching `start`: the backend has no request in flight.
    NotStarted,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoadError::Unknown => "no backend with this id",
            LoadError::NotStarted => "finish without a matching start (no request in flight)",
        })
    }
}

impl core::error::Error for LoadError {}

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

/// The fixed-capacity table of backends, in insertion order (removal closes the
/// gap, so the order is the order of the remaining additions).
#[derive(Debug, Clone)]
pub(crate) struct Fleet<const B: usize> {
    backends: heapless::Vec<Backend, B>,
    /// Sum of `load` over all backends, kept up to date (bounded loads reads it
    /// on every pick).
    load_sum: u64,
    /// Sum of `weight` over backends that are up, kept up to date.
    up_weight_sum: u64,
}

impl<const B: usize> Fleet<B> {
    pub(crate) const fn new() -> Self {
        Self {
            backends: heapless::Vec::new(),
            load_sum: 0,
            up_weight_sum: 0,
        }
    }

    pub(crate) fn as_slice(&self) -> &[Backend] {
        &self.backends
    }

    pub(crate) fn len(&self) -> usize {
        self.backends.len()
    }

    pub(crate) fn slot(&self, id: BackendId) -> Option<usize> {
        self.backends.iter().position(|b| b.id == id)
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
        self.up_weight_sum += u64::from(weight);
        Ok(slot)
    }

    /// Removes the backend at `slot`, keeping the order of the others.
    pub(crate) fn remove_slot(&mut self, slot: usize) -> Option<Backend> {
        if slot >= self.backends.len() {
            return None;
        }
        let b = self.backends.remove(slot);
        self.load_sum -= u64::from(b.load);
        if b.up {
            self.up_weight_sum -= u64::from(b.weight);
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
        let b = self
            .backends
            .iter_mut()
            .find(|b| b.id == id)
            .ok_or(UnknownBackend(id))?;
        if b.up != up {
            if up {
                self.up_weight_sum += u64::from(b.weight);
            } else {
                self.up_weight_sum -= u64::from(b.weight);
            }
        }
        b.up = up;
        Ok(())
    }

    pub(crate) fn start(&mut self, id: BackendId) -> Result<(), LoadError> {
        let b = self
            .backends
            .iter_mut()
            .find(|b| b.id == id)
            .ok_or(LoadError::Unknown)?;
        if let Some(l) = b.load.checked_add(1) {
            b.load = l;
            self.load_sum += 1;
        }
        Ok(())
    }

    pub(crate) fn finish(&mut self, id: BackendId) -> Result<(), LoadError> {
        let b = self
            .backends
            .iter_mut()
            .find(|b| b.id == id)
            .ok_or(LoadError::Unknown)?;
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
