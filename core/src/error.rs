//! One error type that every per-operation error converts into, for callers that
//! just want `?` (as in the crate-level example). [`Error::source`] hands back
//! the operation's own error, so a report can walk the chain.
//!
//! [`Error::source`]: core::error::Error::source

use core::fmt;

#[cfg(feature = "compat")]
use crate::compat::{
    haproxy::{HaproxyAddError, IdError},
    nginx::{NginxAddError, UnknownServer},
    twemproxy::{KetamaError, ServerLineError, UnknownKeyHash},
};
#[cfg(feature = "protocol")]
use crate::protocol::ProtocolError;
#[cfg(feature = "workload")]
use crate::workload::WorkloadError;
use crate::{
    AddError, BatchError, CacheConfigError, ClockError, ConfigError, LoadError, UnknownBackend,
    WeightError,
};

/// Any chring error. Each operation returns its own small enum; this wraps them
/// all (`From` each), and `source()` returns the wrapped one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// From [`Membership::add`](crate::Membership::add).
    Add(AddError),
    /// From an `add_many` of a strategy ([`Ring::add_many`](crate::Ring::add_many)).
    AddBatch(BatchError<AddError>),
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
    /// From a key generator's parameters ([`workload`](crate::workload)).
    #[cfg(feature = "workload")]
    #[cfg_attr(docsrs, doc(cfg(feature = "workload")))]
    Workload(WorkloadError),
    /// From the line protocol or its controller ([`protocol`](crate::protocol)).
    #[cfg(feature = "protocol")]
    #[cfg_attr(docsrs, doc(cfg(feature = "protocol")))]
    Protocol(ProtocolError),
    /// From a twemproxy ketama pool ([`compat::twemproxy`](crate::compat::twemproxy)).
    #[cfg(feature = "compat")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
    Ketama(KetamaError),
    /// From a ketama pool's `add_many`.
    #[cfg(feature = "compat")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
    KetamaBatch(BatchError<KetamaError>),
    /// From a twemproxy `servers:` line.
    #[cfg(feature = "compat")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
    ServerLine(ServerLineError),
    /// From a twemproxy `hash:` name.
    #[cfg(feature = "compat")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
    KeyHash(UnknownKeyHash),
    /// From an nginx upstream.
    #[cfg(feature = "compat")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
    NginxAdd(NginxAddError),
    /// From an nginx server index.
    #[cfg(feature = "compat")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
    NginxServer(UnknownServer),
    /// From an HAProxy backend.
    #[cfg(feature = "compat")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
    HaproxyAdd(HaproxyAddError),
    /// From an HAProxy server id.
    #[cfg(feature = "compat")]
    #[cfg_attr(docsrs, doc(cfg(feature = "compat")))]
    HaproxyId(IdError),
}

impl Error {
    /// The wrapped error.
    fn inner(&self) -> &(dyn core::error::Error + 'static) {
        match self {
            Error::Add(e) => e,
            Error::AddBatch(e) => e,
            Error::Unknown(e) => e,
            Error::Weight(e) => e,
            Error::Load(e) => e,
            Error::Config(e) => e,
            Error::CacheConfig(e) => e,
            Error::Clock(e) => e,
            #[cfg(feature = "workload")]
            Error::Workload(e) => e,
            #[cfg(feature = "protocol")]
            Error::Protocol(e) => e,
            #[cfg(feature = "compat")]
            Error::Ketama(e) => e,
            #[cfg(feature = "compat")]
            Error::KetamaBatch(e) => e,
            #[cfg(feature = "compat")]
            Error::ServerLine(e) => e,
            #[cfg(feature = "compat")]
            Error::KeyHash(e) => e,
            #[cfg(feature = "compat")]
            Error::NginxAdd(e) => e,
            #[cfg(feature = "compat")]
            Error::NginxServer(e) => e,
            #[cfg(feature = "compat")]
            Error::HaproxyAdd(e) => e,
            #[cfg(feature = "compat")]
            Error::HaproxyId(e) => e,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.inner(), f)
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(self.inner())
    }
}

macro_rules! from {
    ($($(#[$m:meta])* $t:ty => $v:ident),* $(,)?) => {$(
        $(#[$m])*
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::$v(e)
            }
        }
    )*};
}
from!(
    AddError => Add,
    BatchError<AddError> => AddBatch,
    UnknownBackend => Unknown,
    WeightError => Weight,
    LoadError => Load,
    ConfigError => Config,
    CacheConfigError => CacheConfig,
    ClockError => Clock,
    #[cfg(feature = "workload")] WorkloadError => Workload,
    #[cfg(feature = "protocol")] ProtocolError => Protocol,
    #[cfg(feature = "compat")] KetamaError => Ketama,
    #[cfg(feature = "compat")] BatchError<KetamaError> => KetamaBatch,
    #[cfg(feature = "compat")] ServerLineError => ServerLine,
    #[cfg(feature = "compat")] UnknownKeyHash => KeyHash,
    #[cfg(feature = "compat")] NginxAddError => NginxAdd,
    #[cfg(feature = "compat")] UnknownServer => NginxServer,
    #[cfg(feature = "compat")] HaproxyAddError => HaproxyAdd,
    #[cfg(feature = "compat")] IdError => HaproxyId,
);
