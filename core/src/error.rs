//! One error type that every per-operation error converts into, for callers that
//! just want `?` (as in the crate-level example).

use core::fmt;

use crate::{
    AddError, CacheConfigError, ClockError, ConfigError, LoadError, UnknownBackend, WeightError,
};

/// Any chring error. Each operation returns its own small enum; this wraps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// From [`Strategy::add`](crate::Strategy::add).
    Add(AddError),
    /// From removal, health or weight changes of an unknown id.
    Unknown(UnknownBackend),
    /// From a weight change.
    Weight(WeightError),
    /// From load feedback.
    Load(LoadError),
    /// From a strategy's configuration.
    Config(ConfigError),
    /// From a cache's configuration.
    CacheConfig(CacheConfigError),
    /// From a cache operation given a bad clock.
    Clock(ClockError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Add(e) => e.fmt(f),
            Error::Unknown(e) => e.fmt(f),
            Error::Weight(e) => e.fmt(f),
            Error::Load(e) => e.fmt(f),
            Error::Config(e) => e.fmt(f),
            Error::CacheConfig(e) => e.fmt(f),
            Error::Clock(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for Error {}

macro_rules! from {
    ($($t:ident => $v:ident),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::$v(e)
            }
        }
    )*};
}
from!(AddError => Add, UnknownBackend => Unknown, WeightError => Weight, LoadError => Load,
      ConfigError => Config, CacheConfigError => CacheConfig, ClockError => Clock);
