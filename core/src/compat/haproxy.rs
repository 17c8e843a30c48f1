//! HAProxy 2.6's `hash-type consistent` (`lb_chash.c`), reproduced bit for bit.
//!
//! Read `DESIGN.md` §7b first. In short: a server with user weight `w`
//! (`weight`, 0..=256, default 1) has `16 x w` nodes (`BE_WEIGHT_SCALE` = 16);
//! node `j` of the server with id `puid` sits at
//! `full_hash(puid x 4096 + j)` (4096 = `SRV_EWGHT_RANGE`), where `full_hash`
//! is Bob Jenkins' 32-bit integer hash followed by a multiplication by
//! 3221225473. The key is hashed with the backend's function ([`HashFunction`]:
//! sdbm, djb2, wt6 or crc32), then with `full_hash` again when `avalanche` is
//! set; a bare `hash-type consistent` means sdbm with avalanche
//! ([`HashType::default`]). A lookup takes the first node at or after the key's hash
//! (wrapping) and the node just before it, and picks the one at the smaller
//! distance, the previous one on a tie.
//!
//! Servers without an `id` are numbered as HAProxy does ([`assign_ids`]).
//! `no_std`, no allocation, no panics.

use core::fmt;

use super::nginx::crc32;

/// Nodes per unit of user weight (`BE_WEIGHT_SCALE`).
pub const NODES_PER_WEIGHT: u32 = 16;
/// The largest user weight HAProxy accepts (`SRV_UWGHT_MAX`).
pub const MAX_WEIGHT: u32 = 256;
/// The stride between two servers' node inputs (`SRV_EWGHT_RANGE` = 256 x 16).
pub const EWGHT_RANGE: u32 = 4096;

/// HAProxy's `full_hash`: Bob Jenkins' full-avalanche 32-bit integer hash,
/// times the prime 3221225473 (`include/haproxy/intops.h`).
#[must_use]
pub const fn full_hash(a: u32) -> u32 {
    let mut a = a;
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

/// HAProxy's `hash_sdbm`.
#[must_use]
pub fn sdbm(key: &[u8]) -> u32 {
    key.iter().fold(0u32, |h, &c| {
        u32::from(c)
            .wrapping_add(h << 6)
            .wrapping_add(h << 16)
            .wrapping_sub(h)
    })
}

/// HAProxy's `hash_djb2` (`h x 33 + c` from 5381).
#[must_use]
pub fn djb2(key: &[u8]) -> u32 {
    key.iter().fold(5381u32, |h, &c| {
        (h << 5).wrapping_add(h).wrapping_add(u32::from(c))
    })
}

/// HAProxy's `hash_wt6` (Willy Tarreau's 6-round variable rotations).
#[must_use]
pub fn wt6(key: &[u8]) -> u32 {
    let (mut h0, mut h1) = (0xa53c_965a_u32, 0x5ca6_953a_u32);
    let (mut step0, mut step1) = (6u32, 18u32);
    for &c in key {
        let t = u32::from(c);
        h0 = !(h0 ^ t);
        h1 = !(h1.wrapping_add(t));
        // `(x << s) | (x >> (32 - s))` in C: a rotation (x86 masks the shift
        // count, so s = 0 gives x either way).
        let t = h1.rotate_left(step0);
        h1 = h0.rotate_left(step1);
        h0 = t;
        let t = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = t & 0x1f;
        step1 = t >> 11;
    }
    h0 ^ h1
}

/// The key hash function of `hash-type consistent <function>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HashFunction {
    /// `sdbm`, HAProxy's default.
    #[default]
    Sdbm,
    /// `djb2`.
    Djb2,
    /// `wt6`.
    Wt6,
    /// `crc32` (IEEE CRC-32, as [`super::nginx::crc32`]).
    Crc32,
}

impl HashFunction {
    /// The function named as in the configuration (`sdbm`, `djb2`, `wt6`, `crc32`).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "sdbm" => Some(Self::Sdbm),
            "djb2" => Some(Self::Djb2),
            "wt6" => Some(Self::Wt6),
            "crc32" => Some(Self::Crc32),
            _ => None,
        }
    }

    /// Hashes `key`.
    #[must_use]
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            Self::Sdbm => sdbm(key),
            Self::Djb2 => djb2(key),
            Self::Wt6 => wt6(key),
            Self::Crc32 => crc32(key),
        }
    }
}

/// `hash-type consistent [function [avalanche]]`. Its default, a bare
/// `hash-type consistent`, is sdbm *with* avalanche; naming a function turns
/// avalanche off unless `avalanche` follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct HashType {
    /// The key hash function.
    pub function: HashFunction,
    /// `avalanche`: [`full_hash`] applied to the function's result.
    pub avalanche: bool,
}

impl Default for HashType {
    /// A bare `hash-type consistent`: sdbm with avalanche.
    fn default() -> Self {
        Self::new(HashFunction::Sdbm, true)
    }
}

impl HashType {
    /// `function`, with or without `avalanche`.
    #[must_use]
    pub const fn new(function: HashFunction, avalanche: bool) -> Self {
        Self {
            function,
            avalanche,
        }
    }

    /// The 32-bit hash HAProxy looks up for `key`.
    #[must_use]
    pub fn key_hash(self, key: &[u8]) -> u32 {
        let h = self.function.hash(key);
        if self.avalanche { full_hash(h) } else { h }
    }
}

/// Why server ids could not be assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum IdError {
    /// Two servers have the same explicit id.
    Duplicate,
    /// An explicit id is 0 or above `i32::MAX` (HAProxy: "custom id has to be > 0").
    OutOfRange,
    /// No id is left (all of `1..=i32::MAX` taken).
    Exhausted,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdError::Duplicate => "two servers have the same id",
            IdError::OutOfRange => "a server id must be in 1..=2147483647",
            IdError::Exhausted => "no server id left",
        })
    }
}

impl core::error::Error for IdError {}

/// Numbers the servers of a backend as HAProxy does: `ids[i]` is server `i`'s
/// `id` in configuration order, 0 when it has none; on return every entry is
/// set. Walking the servers in order with a counter `next` starting at 1, a
/// server without an id takes the smallest id `>= next` that no server uses
/// (and `next` becomes that id); then `next` goes up by one, after every
/// server, with or without an explicit id (`check_config_validity` in
/// `cfgparse.c`). Computes in *O*(n^2) time.
///
/// # Errors
/// [`IdError`]; `ids` may then be partly assigned.
pub fn assign_ids(ids: &mut [u32]) -> Result<(), IdError> {
    let max = i32::MAX as u32;
    for (i, &id) in ids.iter().enumerate() {
        if id > max {
            return Err(IdError::OutOfRange);
        }
        if id != 0 && ids.get(..i).is_some_and(|before| before.contains(&id)) {
            return Err(IdError::Duplicate);
        }
    }
    let mut next = 1u32;
    for i in 0..ids.len() {
        if ids.get(i) == Some(&0) {
            while ids.contains(&next) {
                next = next
                    .checked_add(1)
                    .filter(|&n| n <= max)
                    .ok_or(IdError::Exhausted)?;
            }
            if let Some(slot) = ids.get_mut(i) {
                *slot = next;
            }
        }
        // HAProxy steps its counter after every server, numbered or not.
        next = next.saturating_add(1);
    }
    Ok(())
}

/// Why a server could not be added. The backend is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HaproxyAddError {
    /// The backend already holds its compile-time maximum of servers.
    Full,
    /// Weight above [`MAX_WEIGHT`] (256).
    WeightTooLarge,
    /// Id 0 (ids start at 1; see [`assign_ids`]).
    ZeroId,
    /// Another server has this id, or one equal to it modulo 2^20: their nodes
    /// would land on the same points (`id x 4096` wraps at 2^32).
    DuplicateId,
    /// The nodes (`16 x weight`) do not fit the compile-time node capacity.
    NoRoom,
}

impl fmt::Display for HaproxyAddError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HaproxyAddError::Full => "backend is full (compile-time server capacity reached)",
            HaproxyAddError::WeightTooLarge => "weight exceeds 256",
            HaproxyAddError::ZeroId => "server id must be at least 1",
            HaproxyAddError::DuplicateId => {
                "another server has this id (or one equal to it modulo 2^20)"
            }
            HaproxyAddError::NoRoom => {
                "not enough node capacity for this server's weight (16 nodes per unit)"
            }
        })
    }
}

impl core::error::Error for HaproxyAddError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Node {
    key: u32,
    server: u16,
}

/// HAProxy 2.6 `hash-type consistent`: up to `S` servers and `P` nodes
/// (`P >= 16 x total weight`; 8 bytes per node).
///
/// # Examples
///
/// ```
/// use chring::compat::haproxy::{HaproxyConsistent, HashFunction, HashType};
///
/// let mut be: HaproxyConsistent<4, 256> =
///     HaproxyConsistent::new(HashType::new(HashFunction::Sdbm, false));
/// be.add(1, 1)?; // id 1, weight 1
/// be.add(2, 3)?; // id 2, weight 3
/// let server = be.lookup(b"/index.html").expect("nodes on the tree");
/// assert!(server < 2);
/// # Ok::<(), chring::compat::haproxy::HaproxyAddError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HaproxyConsistent<const S: usize, const P: usize> {
    hash: HashType,
    ids: [u32; S],
    len: usize,
    nodes: [Node; P],
    nnodes: usize,
}

impl<const S: usize, const P: usize> HaproxyConsistent<S, P> {
    /// An empty backend hashing keys with `hash`.
    #[must_use]
    pub const fn new(hash: HashType) -> Self {
        const { assert!(S <= u16::MAX as usize, "S must fit a u16") };
        Self {
            hash,
            ids: [0; S],
            len: 0,
            nodes: [Node { key: 0, server: 0 }; P],
            nnodes: 0,
        }
    }

    /// The key hashing of this backend.
    #[must_use]
    pub const fn hash_type(&self) -> HashType {
        self.hash
    }

    /// Number of servers.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// `true` when there is no server.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of nodes on the tree.
    #[must_use]
    pub const fn nodes(&self) -> usize {
        self.nnodes
    }

    /// Adds a server with id `id` (its `id`, or the one [`assign_ids`] gives it)
    /// and user weight `weight` (0..=256; 0 adds no node). Returns its index.
    /// Computes in *O*(P log P) time (a re-sort).
    ///
    /// # Errors
    /// [`HaproxyAddError`]; the backend is unchanged.
    pub fn add(&mut self, id: u32, weight: u32) -> Result<usize, HaproxyAddError> {
        if weight > MAX_WEIGHT {
            return Err(HaproxyAddError::WeightTooLarge);
        }
        if id == 0 {
            return Err(HaproxyAddError::ZeroId);
        }
        let index = self.len;
        if index >= S {
            return Err(HaproxyAddError::Full);
        }
        // Node inputs id x 4096 + j (j < 4096) collide exactly when two ids are
        // equal modulo 2^20.
        let ids = self.ids.get(..index).unwrap_or(&[]);
        if ids.iter().any(|&o| (o ^ id) & 0xF_FFFF == 0) {
            return Err(HaproxyAddError::DuplicateId);
        }
        let n = (weight * NODES_PER_WEIGHT) as usize;
        let end = self
            .nnodes
            .checked_add(n)
            .filter(|&e| e <= P)
            .ok_or(HaproxyAddError::NoRoom)?;
        let server = u16::try_from(index).map_err(|_| HaproxyAddError::Full)?;
        let base = id.wrapping_mul(EWGHT_RANGE);
        for (j, node) in (0u32..).zip(self.nodes.get_mut(self.nnodes..end).unwrap_or(&mut [])) {
            *node = Node {
                key: full_hash(base.wrapping_add(j)),
                server,
            };
        }
        // Keys are distinct (full_hash is a bijection and the inputs differ).
        self.nodes
            .get_mut(..end)
            .unwrap_or(&mut [])
            .sort_unstable_by_key(|n| n.key);
        self.nnodes = end;
        if let Some(slot) = self.ids.get_mut(index) {
            *slot = id;
        }
        self.len = index + 1;
        Ok(index)
    }

    /// The server for `key` (the bytes HAProxy hashes: the header value, the
    /// URI part, the sample expression's result); `None` when no node is on
    /// the tree. Computes in *O*(len(key) + log P) time.
    #[must_use]
    pub fn lookup(&self, key: &[u8]) -> Option<usize> {
        self.lookup_hash(self.hash.key_hash(key))
    }

    /// The server for a key hash (after `avalanche`): `chash_get_server_hash`.
    #[must_use]
    pub fn lookup_hash(&self, hash: u32) -> Option<usize> {
        let nodes = self.nodes.get(..self.nnodes).unwrap_or(&[]);
        let i = nodes.partition_point(|n| n.key < hash);
        let next = nodes.get(i).or_else(|| nodes.first())?;
        let i = if i == nodes.len() { 0 } else { i };
        let prev = match i.checked_sub(1) {
            Some(p) => nodes.get(p),
            None => nodes.last(),
        }?;
        let dp = hash.wrapping_sub(prev.key);
        let dn = next.key.wrapping_sub(hash);
        let pick = if dp <= dn { prev } else { next };
        Some(usize::from(pick.server))
    }
}

/// Why a map-based backend could not be built. The backend is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HaproxyMapError {
    /// More servers than the compile-time capacity `S`.
    Full,
    /// A weight above [`MAX_WEIGHT`] (256).
    WeightTooLarge,
    /// The map (the sum of the weights divided by their greatest common
    /// divisor) does not fit the compile-time capacity `M`.
    NoRoom,
}

impl fmt::Display for HaproxyMapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HaproxyMapError::Full => "backend is full (compile-time server capacity reached)",
            HaproxyMapError::WeightTooLarge => "weight exceeds 256",
            HaproxyMapError::NoRoom => {
                "the map (total weight / gcd of the weights) exceeds the compile-time capacity"
            }
        })
    }
}

impl core::error::Error for HaproxyMapError {}

/// Greatest common divisor (Euclid, as `init_server_map`).
const fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// HAProxy 2.6 `hash-type map-based` (`lb_map.c`), HAProxy's default for the
/// hashing `balance` algorithms: up to `S` servers and a map of up to `M`
/// slots.
///
/// Each server's effective weight is its user weight divided by the greatest
/// common divisor of all non-zero weights (`init_server_map`); the map has one
/// slot per unit of effective weight (`tot`), filled by HAProxy's smooth
/// weighted round robin (`recalc_server_map`: for each slot every usable server
/// adds its weight to a score, the first server with the highest
/// `(score + tot) / tot` takes the slot and loses `tot`). A key goes to slot
/// `hash mod tot`, `hash` being the backend's [`HashType::key_hash`]. Servers
/// of weight 0 take no slot. Adding a server rebuilds the whole map (as
/// HAProxy does), which moves most keys: that is the price of map-based
/// hashing.
///
/// # Examples
///
/// ```
/// use chring::compat::haproxy::{HaproxyMap, HashFunction, HashType};
///
/// let mut be: HaproxyMap<4, 64> = HaproxyMap::new(HashType::new(HashFunction::Sdbm, false));
/// be.set_weights(&[2, 4, 6])?; // gcd 2: effective weights 1, 2, 3
/// assert_eq!(be.slots(), 6);
/// let server = be.lookup(b"/index.html").expect("servers up");
/// assert!(server < 3);
/// # Ok::<(), chring::compat::haproxy::HaproxyMapError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HaproxyMap<const S: usize, const M: usize> {
    hash: HashType,
    len: usize,
    map: [u16; M],
    tot: usize,
}

impl<const S: usize, const M: usize> HaproxyMap<S, M> {
    /// An empty backend hashing keys with `hash` (map-based's default is
    /// sdbm without avalanche).
    #[must_use]
    pub const fn new(hash: HashType) -> Self {
        const { assert!(S <= u16::MAX as usize, "S must fit a u16") };
        Self {
            hash,
            len: 0,
            map: [0; M],
            tot: 0,
        }
    }

    /// The key hashing of this backend.
    #[must_use]
    pub const fn hash_type(&self) -> HashType {
        self.hash
    }

    /// Number of servers (with weight 0 or not).
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// `true` when there is no server.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slots in the map (`tot`, the sum of the effective weights); 0 when no
    /// server has a weight.
    #[must_use]
    pub const fn slots(&self) -> usize {
        self.tot
    }

    /// Builds the map of servers `0..weights.len()` with these user weights
    /// (0..=256, in configuration order), replacing the previous servers.
    /// Computes in *O*(tot x S) time.
    ///
    /// # Errors
    /// [`HaproxyMapError`]; the backend is then unchanged.
    pub fn set_weights(&mut self, weights: &[u32]) -> Result<(), HaproxyMapError> {
        if weights.len() > S {
            return Err(HaproxyMapError::Full);
        }
        if weights.iter().any(|&w| w > MAX_WEIGHT) {
            return Err(HaproxyMapError::WeightTooLarge);
        }
        // The gcd of the non-zero weights, from the first non-zero one on.
        let mut g = 0u32;
        for &w in weights {
            if w != 0 {
                g = if g == 0 { w } else { gcd(g, w) };
            }
        }
        let g = g.max(1);
        let tot: usize = weights.iter().map(|&w| (w / g) as usize).sum();
        if tot > M {
            return Err(HaproxyMapError::NoRoom);
        }
        let tot_i = tot as i64;
        // Scores start at 0 (`wscore`); at most S servers, kept on the stack
        // through the map itself: compute slot by slot.
        let mut scores = [0i64; S];
        for o in 0..tot {
            let mut best: Option<usize> = None;
            let mut max = 0i64;
            for (i, &w) in weights.iter().enumerate() {
                let e = i64::from(w / g);
                if e == 0 {
                    continue; // not usable: weight 0
                }
                if tot == 1 {
                    best = Some(i);
                    break;
                }
                let Some(score) = scores.get_mut(i) else {
                    continue;
                };
                *score += e;
                let v = (*score + tot_i) / tot_i;
                if best.is_none() || v > max {
                    max = v;
                    best = Some(i);
                }
            }
            if let Some(b) = best {
                if let Some(score) = scores.get_mut(b) {
                    *score -= tot_i;
                }
                if let Some(slot) = self.map.get_mut(o) {
                    *slot = u16::try_from(b).unwrap_or(u16::MAX);
                }
            }
        }
        self.tot = tot;
        self.len = weights.len();
        Ok(())
    }

    /// The server for `key` (the bytes HAProxy hashes); `None` when no server
    /// has a weight. Computes in *O*(len(key)) time.
    #[must_use]
    pub fn lookup(&self, key: &[u8]) -> Option<usize> {
        self.lookup_hash(self.hash.key_hash(key))
    }

    /// The server for a key hash (after `avalanche`): `map_get_server_hash`,
    /// slot `hash mod tot`.
    #[must_use]
    pub fn lookup_hash(&self, hash: u32) -> Option<usize> {
        if self.tot == 0 {
            return None;
        }
        let slot = (hash as usize) % self.tot;
        self.map.get(slot).map(|&s| usize::from(s))
    }
}

/// The hash `balance source` computes for a client address: the XOR of its
/// 32-bit big-endian words (one for IPv4, four for IPv6), with [`full_hash`]
/// after it when `avalanche` is set. The hash function of `hash-type` plays
/// no part (`get_server_sh`).
#[must_use]
pub fn source_hash(addr: core::net::IpAddr, avalanche: bool) -> u32 {
    let mut h = 0u32;
    match addr {
        core::net::IpAddr::V4(a) => h = u32::from_be_bytes(a.octets()),
        core::net::IpAddr::V6(a) => {
            for w in a.octets().chunks_exact(4) {
                let mut b = [0u8; 4];
                b.copy_from_slice(w);
                h ^= u32::from_be_bytes(b);
            }
        }
    }
    if avalanche { full_hash(h) } else { h }
}

/// The value `balance url_param NAME` hashes in a request URI: the query
/// (after the first `?`) is split at `&`, and the first parameter that starts
/// with `NAME=` gives its value, up to the next `&` (`get_server_ph`). `None`
/// when there is no query or no such parameter: HAProxy then balances by round
/// robin. An empty value is hashed (as the empty string). Computes in
/// *O*(len(uri)) time.
#[must_use]
pub fn url_param<'u>(uri: &'u [u8], name: &[u8]) -> Option<&'u [u8]> {
    let q = uri.iter().position(|&c| c == b'?')?;
    let mut params = uri.get(q + 1..)?;
    let plen = name.len();
    // HAProxy's loop: `while (uri_len > plen)`.
    while params.len() > plen {
        if params.get(plen) == Some(&b'=') && params.get(..plen) == Some(name) {
            let value = params.get(plen + 1..).unwrap_or(&[]);
            let end = value.iter().position(|&c| c == b'&').unwrap_or(value.len());
            return value.get(..end);
        }
        let amp = params.iter().position(|&c| c == b'&')?;
        params = params.get(amp + 1..)?;
    }
    None
}

/// The path of a request URI as `balance uri path-only` takes it
/// (`http_parse_path`): an origin-form URI (`/...`) whole; an absolute URI
/// (`scheme://authority/path...`) from the `/` after its authority on (empty
/// when nothing follows the authority); anything else (`*`, an authority
/// alone, an empty URI) empty. The query string stays: `balance uri` cuts it
/// unless `whole`. Computes in *O*(len(uri)) time.
#[must_use]
pub fn path_only(uri: &[u8]) -> &[u8] {
    match uri.first() {
        None | Some(b'*') => &[],
        Some(b'/') => uri,
        Some(c) if c.is_ascii_alphabetic() => {
            // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) "://"
            let mut i = 1;
            while uri
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
            {
                i += 1;
            }
            if uri.get(i..i + 3) != Some(b"://") {
                return &[];
            }
            let rest = uri.get(i + 3..).unwrap_or(&[]);
            match rest.iter().position(|&c| c == b'/') {
                Some(p) => rest.get(p..).unwrap_or(&[]),
                None => &[],
            }
        }
        Some(_) => &[],
    }
}

/// The part of a header value `balance hdr(NAME) use_domain_only` hashes
/// (`get_server_hh`): scanning back from the end, the label before the last
/// dot, that is the domain of a host name without its TLD and sub-domains
/// (`www.example.com` -> `example`); the whole value when it has no dot.
/// Computes in *O*(len(value)) time.
#[must_use]
pub fn domain_only(value: &[u8]) -> &[u8] {
    // HAProxy walks p from value+len (one past the end, never a dot for it)
    // down to value+1: the first dot seen (at p) ends the domain, then the
    // next position whose previous byte is a dot starts it.
    let mut end = value.len();
    let mut dohash = false;
    let mut start = 0;
    let mut p = value.len();
    while p > 0 {
        if dohash {
            if value.get(p - 1) == Some(&b'.') {
                start = p;
                break;
            }
        } else if p < value.len() && value.get(p) == Some(&b'.') {
            end = p;
            dohash = true;
        }
        p -= 1;
    }
    value.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_functions() {
        assert_eq!(sdbm(b""), 0);
        assert_eq!(sdbm(b"a"), 97);
        assert_eq!(sdbm(b"ab"), 97u32.wrapping_mul(65599).wrapping_add(98));
        assert_eq!(djb2(b""), 5381);
        assert_eq!(djb2(b"a"), 5381 * 33 + 97);
        assert_eq!(HashFunction::Crc32.hash(b"123456789"), 0xCBF4_3926);
        // wt6 of the empty key is h0 ^ h1 of the initial state.
        assert_eq!(wt6(b""), 0xa53c_965a ^ 0x5ca6_953a);
        assert_ne!(wt6(b"a"), wt6(b"b"));
        assert_eq!(HashFunction::from_name("wt6"), Some(HashFunction::Wt6));
        assert_eq!(HashFunction::from_name("md5"), None);
        let t = HashType::new(HashFunction::Djb2, true);
        assert_eq!(t.key_hash(b"x"), full_hash(djb2(b"x")));
    }

    #[test]
    fn full_hash_is_a_bijection_sample() {
        let mut v: [u32; 4096] = core::array::from_fn(|i| full_hash(i as u32 * 977));
        v.sort_unstable();
        assert!(v.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn automatic_ids() {
        let mut ids = [0, 0, 0];
        assign_ids(&mut ids).unwrap();
        assert_eq!(ids, [1, 2, 3]);
        let mut ids = [5, 0, 0];
        assign_ids(&mut ids).unwrap();
        assert_eq!(ids, [5, 2, 3]);
        let mut ids = [0, 2, 0];
        assign_ids(&mut ids).unwrap();
        assert_eq!(ids, [1, 2, 3]);
        let mut ids = [0, 3, 0, 0];
        assign_ids(&mut ids).unwrap();
        assert_eq!(ids, [1, 3, 4, 5]);
        let mut ids = [0, 0, 1];
        assign_ids(&mut ids).unwrap();
        assert_eq!(ids, [2, 3, 1]);
        assert_eq!(assign_ids(&mut [2, 2]), Err(IdError::Duplicate));
        assert_eq!(assign_ids(&mut [u32::MAX]), Err(IdError::OutOfRange));
    }

    #[test]
    fn nearest_node() {
        let mut be: HaproxyConsistent<4, 256> = HaproxyConsistent::new(HashType::default());
        assert_eq!(be.lookup(b"k"), None);
        be.add(1, 1).unwrap();
        be.add(2, 2).unwrap();
        assert_eq!(be.nodes(), 48);
        assert_eq!(be.add(2, 1), Err(HaproxyAddError::DuplicateId));
        assert_eq!(be.add(2 + (1 << 20), 1), Err(HaproxyAddError::DuplicateId));
        assert_eq!(be.add(3, 257), Err(HaproxyAddError::WeightTooLarge));
        assert_eq!(be.add(3, 16), Err(HaproxyAddError::NoRoom));
        assert_eq!(be.add(0, 1), Err(HaproxyAddError::ZeroId));
        be.add(9, 0).unwrap();
        assert_eq!(be.nodes(), 48);
        let nodes = &be.nodes[..be.nnodes];
        // Brute force: the node at the smallest circular distance, the one
        // before the hash winning ties.
        for h in [
            0u32,
            1,
            u32::MAX,
            nodes[0].key,
            nodes[5].key.wrapping_add(7),
            0x8000_0000,
        ] {
            let best = nodes
                .iter()
                .min_by_key(|n| {
                    let before = h.wrapping_sub(n.key);
                    let after = n.key.wrapping_sub(h);
                    // ties: "before" wins, so rank it first
                    if before <= after {
                        (before, 0)
                    } else {
                        (after, 1)
                    }
                })
                .unwrap();
            assert_eq!(be.lookup_hash(h), Some(usize::from(best.server)), "{h:#x}");
        }
        for n in nodes {
            let srv = if (0..16).any(|j| full_hash(4096 + j) == n.key) {
                0
            } else {
                1
            };
            assert_eq!(n.server, srv);
        }
    }

    #[test]
    fn map_slots_follow_effective_weights() {
        let mut be: HaproxyMap<8, 64> = HaproxyMap::new(HashType::new(HashFunction::Sdbm, false));
        assert_eq!(be.lookup(b"k"), None);
        be.set_weights(&[2, 0, 4, 6]).unwrap();
        assert_eq!(be.slots(), 6);
        let map = &be.map[..be.tot];
        let count = |s: u16| map.iter().filter(|&&m| m == s).count();
        assert_eq!((count(0), count(1), count(2), count(3)), (1, 0, 2, 3));
        // HAProxy's recalc_server_map by hand for effective weights 1, 2, 3
        // (tot 6): each slot adds the weights to the scores, the first server
        // with the highest (score + 6) / 6 wins and loses 6. Slot 0: scores
        // 1, 2, 3 all give 1, so server 0 (the first) takes it.
        assert_eq!(map, [0, 3, 2, 3, 2, 3]);
        for k in 0..200u32 {
            let key = k.to_le_bytes();
            let want = map[(sdbm(&key) % 6) as usize];
            assert_eq!(be.lookup(&key), Some(usize::from(want)));
        }
        be.set_weights(&[5]).unwrap();
        assert_eq!((be.slots(), be.lookup(b"x")), (1, Some(0)));
        assert_eq!(be.set_weights(&[257]), Err(HaproxyMapError::WeightTooLarge));
        assert_eq!(be.set_weights(&[1; 9]), Err(HaproxyMapError::Full));
        assert_eq!(be.set_weights(&[64, 1]), Err(HaproxyMapError::NoRoom));
        assert_eq!((be.slots(), be.len()), (1, 1));
        be.set_weights(&[0, 0]).unwrap();
        assert_eq!(be.lookup(b"x"), None);
    }

    #[test]
    fn request_parts() {
        assert_eq!(url_param(b"/p?a=1&key=v1&key=v2", b"key"), Some(&b"v1"[..]));
        assert_eq!(url_param(b"/p?key=", b"key"), Some(&b""[..]));
        assert_eq!(url_param(b"/p?xkey=1&key=2", b"key"), Some(&b"2"[..]));
        assert_eq!(url_param(b"/p?key", b"key"), None);
        assert_eq!(url_param(b"/p/key=1", b"key"), None);
        assert_eq!(url_param(b"/p?a=1", b"key"), None);
        assert_eq!(url_param(b"/p?a=1&&key=3", b"key"), Some(&b"3"[..]));
        assert_eq!(path_only(b"/a/b?c"), b"/a/b?c");
        assert_eq!(path_only(b"http://h:80/a/b?c"), b"/a/b?c");
        assert_eq!(path_only(b"https://user@h"), b"");
        assert_eq!(path_only(b"h:80"), b"");
        assert_eq!(path_only(b"*"), b"");
        assert_eq!(path_only(b""), b"");
        assert_eq!(domain_only(b"www.example.com"), b"example");
        assert_eq!(domain_only(b"example.com"), b"example");
        assert_eq!(domain_only(b"a.b.example.co:8080"), b"example");
        assert_eq!(domain_only(b"localhost"), b"localhost");
        // Position 0 is never tested for a dot (HAProxy stops at value + 1).
        assert_eq!(domain_only(b".com"), b".com");
        assert_eq!(domain_only(b"a..com"), b"a.");
        assert_eq!(domain_only(b""), b"");
        use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let v4 = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(source_hash(v4, false), 0x0a01_0203);
        assert_eq!(source_hash(v4, true), full_hash(0x0a01_0203));
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(source_hash(v6, false), 0x2001_0db8 ^ 1);
    }
}
