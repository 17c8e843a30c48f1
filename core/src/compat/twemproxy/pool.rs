//! What the ketama and modula pools share: a server (identity and weight),
//! the pool's key-hash settings and their accessors, and the error for an
//! index past the end.

use crate::fleet::{BackendId, UnknownBackend};

/// One server of a pool: its identity (at most `N` bytes) and weight.
#[derive(Debug, Clone)]
pub(super) struct Server<const N: usize> {
    pub(super) name: heapless::Vec<u8, N>,
    pub(super) weight: u32,
}

/// The error for server `index` when it is past the end: the index as a
/// [`BackendId`], `u16::MAX` for indexes past `u16::MAX`.
pub(super) fn unknown_index(index: usize) -> UnknownBackend {
    UnknownBackend(BackendId(u16::try_from(index).unwrap_or(u16::MAX)))
}

/// The accessors of a pool type (inside its inherent `impl` block) with
/// fields `key_hash: KeyHash`, `hash_tag: Option<[u8; 2]>` and
/// `servers: heapless::Vec<Server<N>, B>`.
macro_rules! pool_accessors {
    () => {
        /// Sets `hash_tag` (e.g. `*b"{}"`): keys are hashed on the part between
        /// the two characters (see [`hash_tag()`](super::hash_tag())).
        pub fn set_hash_tag(&mut self, tag: Option<[u8; 2]>) {
            self.hash_tag = tag;
        }

        /// The pool's `hash_tag`.
        #[must_use]
        pub const fn hash_tag(&self) -> Option<[u8; 2]> {
            self.hash_tag
        }

        /// The key hash.
        #[must_use]
        pub const fn key_hash(&self) -> super::KeyHash {
            self.key_hash
        }

        /// Number of servers.
        #[must_use]
        pub fn len(&self) -> usize {
            self.servers.len()
        }

        /// `true` with no server.
        #[must_use]
        pub fn is_empty(&self) -> bool {
            self.servers.is_empty()
        }

        /// The identity of server `index`.
        #[must_use]
        pub fn name(&self, index: usize) -> Option<&[u8]> {
            self.servers.get(index).map(|s| s.name.as_slice())
        }

        /// The weight of server `index`.
        #[must_use]
        pub fn weight(&self, index: usize) -> Option<u32> {
            self.servers.get(index).map(|s| s.weight)
        }
    };
}
pub(super) use pool_accessors;
