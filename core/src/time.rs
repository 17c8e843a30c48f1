//! Ticks supplied by the caller: core never reads a clock.
//!
//! An [`Instant`] is a 32-bit tick counter that is allowed to wrap, like a
//! microcontroller's free-running timer (`SysTick`, a 32-bit `TIMx`). Comparisons use
//! serial-number arithmetic (RFC 1982): `b` is after `a` when `b - a` (wrapping) is
//! below 2^31. The tick length is the caller's choice (1 µs wraps after 71 minutes,
//! 1 ms after 49 days); the TTL cache stays exact across the wrap as long as
//! consecutive `advance`s are less than 2^31 ticks apart, reads a longer gap as
//! "everything expired", and reports a [`ClockError`] only for a `now` less than
//! one TTL behind its clock (see [`TtlCache::advance`](crate::TtlCache::advance)).

use core::fmt;

/// A point in time, in caller-defined ticks, on a wrapping 32-bit counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(pub u32);

/// A span of ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration(pub u32);

/// The largest step between two consecutive calls that is still read as forward
/// time: `2^31 - 1` ticks.
pub const MAX_STEP: u32 = i32::MAX as u32;

impl Instant {
    /// The instant `ticks` after the counter's zero.
    #[must_use]
    pub const fn from_ticks(ticks: u32) -> Self {
        Self(ticks)
    }

    /// The raw counter value.
    #[must_use]
    pub const fn ticks(self) -> u32 {
        self.0
    }

    /// Ticks elapsed from `earlier` to `self`, assuming `self` is not before
    /// `earlier` (wrapping subtraction).
    #[must_use]
    pub const fn wrapping_since(self, earlier: Instant) -> u32 {
        self.0.wrapping_sub(earlier.0)
    }

    /// Ticks elapsed from `earlier` to `self`, or an error if `self` is before
    /// `earlier` or more than [`MAX_STEP`] ticks after it (the two cannot be told
    /// apart on a wrapping counter).
    ///
    /// # Errors
    /// [`ClockError::Backwards`] as described.
    pub const fn checked_since(self, earlier: Instant) -> Result<u32, ClockError> {
        let d = self.0.wrapping_sub(earlier.0);
        if d > MAX_STEP {
            Err(ClockError::Backwards)
        } else {
            Ok(d)
        }
    }

    /// The instant `d` ticks later (wrapping).
    #[must_use]
    pub const fn wrapping_add(self, d: Duration) -> Instant {
        Instant(self.0.wrapping_add(d.0))
    }
}

impl Duration {
    /// A duration of `ticks` ticks.
    #[must_use]
    pub const fn from_ticks(ticks: u32) -> Self {
        Self(ticks)
    }

    /// The raw tick count.
    #[must_use]
    pub const fn ticks(self) -> u32 {
        self.0
    }
}

/// The caller's clock went backwards: for [`TtlCache::advance`](crate::TtlCache::advance),
/// `now` is 1 to `ttl - 1` ticks behind the cache's clock; for
/// [`Instant::checked_since`], `self` is before `earlier` or 2^31 ticks or more
/// after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClockError {
    /// `now` is behind the clock it is compared with (see the type's docs).
    Backwards,
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockError::Backwards => {
                f.write_str("clock went backwards: now is behind the previous call's tick")
            }
        }
    }
}

impl core::error::Error for ClockError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_arithmetic_across_wrap() {
        let a = Instant(u32::MAX - 5);
        let b = a.wrapping_add(Duration(10));
        assert_eq!(b, Instant(4));
        assert_eq!(b.checked_since(a), Ok(10));
        assert_eq!(a.checked_since(b), Err(ClockError::Backwards));
        assert_eq!(Instant(MAX_STEP).checked_since(Instant(0)), Ok(MAX_STEP));
        assert_eq!(
            Instant(MAX_STEP + 1).checked_since(Instant(0)),
            Err(ClockError::Backwards)
        );
    }
}
