//! twemproxy's `distribution: modula`: one slot per unit of weight, in server
//! order, and a key goes to slot `hash % slots`.
//!
//! "Server order" is nutcracker's, not the file's: when it reads its
//! configuration, nutcracker sorts each pool's servers by identity (to find
//! duplicates) and keeps that order, so add servers sorted by
//! [`server_order`] to route as nutcracker does.

use core::cmp::Ordering;
use core::fmt;

use super::pool::{Server, pool_accessors, unknown_index};
use super::{KeyHash, hash_tag};
use crate::fleet::UnknownBackend;

/// Why a server could not be added to (or removed from) a [`Modula`] pool. The
/// pool is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ModulaError {
    /// The pool already holds its compile-time maximum of servers.
    Full,
    /// Weight 0.
    ZeroWeight,
    /// The identity is longer than the pool's name capacity, or empty.
    BadName,
    /// Another server has the same identity (twemproxy rejects such a pool).
    DuplicateName,
    /// The slots (one per unit of weight) would not fit the pool's capacity.
    NoRoom,
    /// No server has this index (as a [`BackendId`](crate::BackendId); indexes past `u16::MAX`
    /// read as `u16::MAX`).
    Unknown(UnknownBackend),
}

impl fmt::Display for ModulaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModulaError::Full => "pool is full (compile-time server capacity reached)",
            ModulaError::ZeroWeight => "weight must be at least 1",
            ModulaError::BadName => "server identity is empty or longer than the name capacity",
            ModulaError::DuplicateName => "a server with this identity already exists",
            ModulaError::NoRoom => "the total weight exceeds the pool's slot capacity",
            ModulaError::Unknown(e) => return e.fmt(f),
        })
    }
}

impl core::error::Error for ModulaError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ModulaError::Unknown(e) => Some(e),
            _ => None,
        }
    }
}

impl From<UnknownBackend> for ModulaError {
    fn from(e: UnknownBackend) -> Self {
        ModulaError::Unknown(e)
    }
}

/// nutcracker's order of a pool's servers (`conf_server_name_cmp`): by
/// identity ([`ServerLine::identity`](super::ServerLine::identity)), shorter
/// first, then byte by byte. Only modula depends on it (ketama's points do not
/// depend on the order).
#[must_use]
pub fn server_order(a: &[u8], b: &[u8]) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A twemproxy `distribution: modula` pool: up to `B` servers whose weights add
/// up to at most `S` (one slot per unit of weight), identities of up to `N`
/// bytes.
///
/// twemproxy's `modula_update` lays the servers out in its order (the order
/// of [`add`](Self::add); nutcracker's is [`server_order`]),
/// server `i` taking `weight_i` consecutive slots, and `modula_dispatch` sends
/// hash `h` to slot `h % slots`. Adding or removing a server rebuilds the slots,
/// *O*(S); a lookup is a key hash and one division. Not consistent: changing
/// the slot count moves most keys.
///
/// Not modelled: `auto_eject_hosts` (twemproxy then rebuilds the slots without
/// the servers that failed; a proxy does that by building the pool from its
/// live servers).
#[derive(Debug, Clone)]
pub struct Modula<const B: usize, const S: usize, const N: usize = 64> {
    key_hash: KeyHash,
    hash_tag: Option<[u8; 2]>,
    servers: heapless::Vec<Server<N>, B>,
    slots: heapless::Vec<u16, S>,
}

impl<const B: usize, const S: usize, const N: usize> Modula<B, S, N> {
    const CHECK: () = assert!(
        B >= 1 && B <= u16::MAX as usize + 1,
        "Modula: B must be in 1..=65536"
    );

    /// An empty pool hashing keys with `key_hash`.
    #[must_use]
    pub const fn new(key_hash: KeyHash) -> Self {
        let () = Self::CHECK;
        Self {
            key_hash,
            hash_tag: None,
            servers: heapless::Vec::new(),
            slots: heapless::Vec::new(),
        }
    }

    pool_accessors!();

    /// The slots: the server index of each, in order.
    #[must_use]
    pub fn slots(&self) -> &[u16] {
        &self.slots
    }

    /// Adds a server at the end and rebuilds the slots; returns its index.
    /// *O*(B + S).
    ///
    /// # Errors
    /// [`ModulaError`]; the pool is unchanged on error.
    pub fn add(&mut self, identity: &[u8], weight: u32) -> Result<usize, ModulaError> {
        if weight == 0 {
            return Err(ModulaError::ZeroWeight);
        }
        if identity.is_empty() || identity.len() > N {
            return Err(ModulaError::BadName);
        }
        if self.servers.iter().any(|s| s.name.as_slice() == identity) {
            return Err(ModulaError::DuplicateName);
        }
        if self.servers.is_full() {
            return Err(ModulaError::Full);
        }
        let free = S - self.slots.len();
        if usize::try_from(weight).map_or(true, |w| w > free) {
            return Err(ModulaError::NoRoom);
        }
        let name = heapless::Vec::from_slice(identity).map_err(|_| ModulaError::BadName)?;
        self.servers
            .push(Server { name, weight })
            .map_err(|_| ModulaError::Full)?;
        self.rebuild();
        Ok(self.servers.len() - 1)
    }

    /// Removes server `index` (later servers move down one index) and rebuilds
    /// the slots. *O*(B + S).
    ///
    /// # Errors
    /// [`ModulaError::Unknown`] for an index past the end.
    pub fn remove(&mut self, index: usize) -> Result<(), ModulaError> {
        if index >= self.servers.len() {
            return Err(unknown_index(index).into());
        }
        self.servers.remove(index);
        self.rebuild();
        Ok(())
    }

    fn rebuild(&mut self) {
        self.slots.clear();
        for (index, s) in self.servers.iter().enumerate() {
            for _ in 0..s.weight {
                // `add` checked the capacity, so this cannot fail.
                let pushed = self.slots.push(index as u16);
                debug_assert!(pushed.is_ok());
            }
        }
    }

    /// The server of slot `hash % slots`; `None` when the pool is empty. *O*(1).
    #[must_use]
    pub fn dispatch(&self, hash: u32) -> Option<usize> {
        let n = u32::try_from(self.slots.len()).ok().filter(|&n| n > 0)?;
        let slot = self.slots.get(usize::try_from(hash % n).ok()?)?;
        Some(usize::from(*slot))
    }

    /// The server twemproxy sends `key` to: a pool of one server takes every
    /// key; otherwise the key (or its `hash_tag` part) is hashed, the empty key
    /// to 0, and [`dispatch`](Self::dispatch)ed. `None` for an empty pool.
    #[must_use]
    pub fn server_for(&self, key: &[u8]) -> Option<usize> {
        match self.servers.len() {
            0 => None,
            1 => Some(0),
            _ => {
                let key = match self.hash_tag {
                    Some(tag) => hash_tag(key, tag),
                    None => key,
                };
                let h = if key.is_empty() {
                    0
                } else {
                    self.key_hash.hash(key)
                };
                self.dispatch(h)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendId;

    #[test]
    fn slots_follow_weights_in_order() {
        let mut m: Modula<4, 16> = Modula::new(KeyHash::Fnv1a64);
        assert_eq!(m.server_for(b"k"), None);
        assert_eq!(m.add(b"a", 1), Ok(0));
        assert_eq!(m.server_for(b"anything"), Some(0));
        assert_eq!(m.add(b"b", 2), Ok(1));
        assert_eq!(m.add(b"c", 1), Ok(2));
        assert_eq!(m.slots(), [0, 1, 1, 2]);
        for (h, s) in [(0, 0), (1, 1), (2, 1), (3, 2), (4, 0), (u32::MAX, 2)] {
            assert_eq!(m.dispatch(h), Some(s), "hash {h}");
        }
        for key in [&b"user:1"[..], b"x", b"customer-0012345"] {
            let want = m.slots()[(KeyHash::Fnv1a64.hash(key) % 4) as usize];
            assert_eq!(m.server_for(key), Some(usize::from(want)));
        }
        // The empty key hashes to 0.
        assert_eq!(m.server_for(b""), Some(0));
        m.remove(0).unwrap();
        assert_eq!(m.slots(), [0, 0, 1]);
        assert_eq!(m.name(1), Some(&b"c"[..]));
    }

    #[test]
    fn nutcracker_order_is_length_then_bytes() {
        let mut ids = [&b"10.0.0.3:6379"[..], b"b", b"10.0.0.1", b"a", b"10.0.0.10"];
        ids.sort_by(|a, b| server_order(a, b));
        assert_eq!(
            ids,
            [&b"a"[..], b"b", b"10.0.0.1", b"10.0.0.10", b"10.0.0.3:6379"]
        );
    }

    #[test]
    fn hash_tag_and_errors() {
        let mut m: Modula<2, 4, 4> = Modula::new(KeyHash::Md5);
        m.set_hash_tag(Some(*b"{}"));
        assert_eq!(m.add(b"a", 0), Err(ModulaError::ZeroWeight));
        assert_eq!(m.add(b"", 1), Err(ModulaError::BadName));
        assert_eq!(m.add(b"toolong", 1), Err(ModulaError::BadName));
        assert_eq!(m.add(b"a", 5), Err(ModulaError::NoRoom));
        m.add(b"a", 1).unwrap();
        assert_eq!(m.add(b"a", 1), Err(ModulaError::DuplicateName));
        m.add(b"b", 3).unwrap();
        assert_eq!(m.add(b"c", 1), Err(ModulaError::Full));
        assert_eq!(m.server_for(b"x{tag}y"), m.server_for(b"tag"));
        assert_eq!(
            m.remove(7),
            Err(ModulaError::Unknown(UnknownBackend(BackendId(7))))
        );
        assert_eq!(m.len(), 2);
        assert_eq!(m.weight(1), Some(3));
    }
}
