//! The link type of a [`TtlCache`](super::TtlCache): [`CacheIndex`], sealed, for
//! [`u16`] and [`u32`].

use core::fmt;

mod sealed {
    /// Prevents implementations of [`CacheIndex`](super::CacheIndex) outside this crate.
    pub trait Sealed {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
}

/// The integer type a [`TtlCache`](super::TtlCache) stores its links in: [`u16`] (for `N < 65535`,
/// the smallest footprint) or [`u32`]. Sealed: it cannot be implemented outside
/// this crate.
pub trait CacheIndex: sealed::Sealed + Copy + Eq + fmt::Debug {
    /// The reserved "no entry" value, `Self::MAX`.
    const NIL: Self;
    /// `Self::MAX` as a `usize`: a cache's capacity `N` must be below it.
    const MAX_USIZE: usize;
    /// Converts an index below [`Self::MAX_USIZE`] (larger values truncate).
    fn from_usize(i: usize) -> Self;
    /// Converts to `usize`.
    fn to_usize(self) -> usize;
}

impl CacheIndex for u16 {
    const NIL: Self = u16::MAX;
    const MAX_USIZE: usize = u16::MAX as usize;
    #[inline]
    fn from_usize(i: usize) -> Self {
        i as u16
    }
    #[inline]
    fn to_usize(self) -> usize {
        usize::from(self)
    }
}

impl CacheIndex for u32 {
    const NIL: Self = u32::MAX;
    // On a 16-bit target this truncates to `usize::MAX`, which is still a valid bound.
    const MAX_USIZE: usize = u32::MAX as usize;
    #[inline]
    fn from_usize(i: usize) -> Self {
        i as u32
    }
    #[inline]
    fn to_usize(self) -> usize {
        self as usize
    }
}
