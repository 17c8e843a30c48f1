//! Why a line got an `-ERR` reply.

use core::fmt;

#[cfg(doc)]
use super::{KINDS, MAX_NAME};
use crate::AddError;
#[cfg(doc)]
use crate::MAX_WEIGHT;

/// Why a line got an `-ERR` reply. `Display` is the reason after `-ERR `.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ProtocolError {
    /// The line did not fit the line buffer.
    LineTooLong,
    /// The line is not UTF-8.
    BadUtf8,
    /// The line is empty or blank (no reply is sent for it).
    Empty,
    /// The verb is not a command.
    UnknownCommand,
    /// Too few or too many arguments for this verb (upper case).
    WrongArity(&'static str),
    /// A number is not a decimal `u32`.
    BadNumber,
    /// A name is longer than [`MAX_NAME`] bytes.
    NameTooLong,
    /// A name has a control character.
    BadName,
    /// `STRATEGY` with a name that is not one of [`KINDS`]'s.
    UnknownStrategy,
    /// No server has this name.
    UnknownServer,
    /// A server with this name (or the same name hash) exists.
    DuplicateServer,
    /// All `B` slots are taken.
    FleetFull,
    /// Weight 0.
    ZeroWeight,
    /// Weight above [`MAX_WEIGHT`].
    WeightTooLarge,
    /// A strategy's storage cannot hold the fleet's weight.
    NoRoom,
    /// `REPLICAS key 0`.
    ZeroReplicas,
    /// `ROUTE` with no server up.
    NoServerUp,
    /// `now` went backwards.
    Clock,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ProtocolError::LineTooLong => "line too long",
            ProtocolError::BadUtf8 => "bad utf-8",
            ProtocolError::Empty => "empty line",
            ProtocolError::UnknownCommand => "unknown command",
            ProtocolError::WrongArity(verb) => {
                return write!(f, "wrong number of arguments for '{verb}'");
            }
            ProtocolError::BadNumber => "bad number",
            ProtocolError::NameTooLong => "name too long",
            ProtocolError::BadName => "bad name",
            ProtocolError::UnknownStrategy => "unknown strategy",
            ProtocolError::UnknownServer => "unknown server",
            ProtocolError::DuplicateServer => "server already exists",
            ProtocolError::FleetFull => "fleet is full",
            ProtocolError::ZeroWeight => "weight must be at least 1",
            ProtocolError::WeightTooLarge => "weight too large",
            ProtocolError::NoRoom => "not enough capacity for this weight",
            ProtocolError::ZeroReplicas => "replica count must be at least 1",
            ProtocolError::NoServerUp => "no server is up",
            ProtocolError::Clock => "clock went backwards",
        };
        f.write_str(s)
    }
}

impl core::error::Error for ProtocolError {}

impl From<AddError> for ProtocolError {
    fn from(e: AddError) -> Self {
        match e {
            AddError::Full => ProtocolError::FleetFull,
            AddError::DuplicateId | AddError::DuplicateName => ProtocolError::DuplicateServer,
            AddError::ZeroWeight => ProtocolError::ZeroWeight,
            AddError::WeightTooLarge => ProtocolError::WeightTooLarge,
            AddError::NoRoom => ProtocolError::NoRoom,
            AddError::BadName => ProtocolError::BadName,
        }
    }
}
