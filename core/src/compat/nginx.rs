//! nginx's `hash $key consistent;` and plain `hash $key;` (the
//! `ngx_http_upstream_hash_module`), reproduced bit for bit.
//!
//! Read `DESIGN.md` §7a first. In short:
//!
//! - [`NginxConsistent`]: every server gets `160 x weight` points on a 32-bit
//!   circle. The server's address text as written in `nginx.conf` is split into
//!   host and port (the port is the run of digits after the last `:`; `unix:`
//!   paths have no port), and point `j` is the CRC-32 of
//!   `host, a NUL byte, port, prev` where `prev` is point `j - 1` as 4
//!   little-endian bytes (0 for the first point). Points are sorted, equal
//!   hashes keep the one generated first, and a key goes to the first point at
//!   or after `crc32(key)`, wrapping to the first. A `down` server's points stay
//!   on the circle: nginx walks on to the following points, 21 at most, and then
//!   falls back to round robin.
//! - [`NginxModulo`]: `hash $key;`. `h = (crc32(key) >> 16) & 0x7fff` is added to
//!   an accumulator, the accumulator modulo the total weight picks a server by
//!   walking the weights in `server` order; a `down` server rehashes with
//!   `crc32(decimal(n) || key)` for the `n`-th retry (n = 1, 2, ...), 21 tries at
//!   most, then round robin.
//!
//! Both are `no_std`, allocation-free (capacities are const generics) and never
//! panic. A lookup returns `None` exactly where nginx does not pick by key (no
//! server, an empty key, every tried server down): nginx then uses round robin,
//! whose answer depends on the requests before it.

use core::fmt;
use core::net::IpAddr;

use super::util::{crc32_update, decimal};

/// Points per unit of weight in nginx's consistent hash (`ngx_http_upstream_init_chash`).
pub const POINTS_PER_WEIGHT: u32 = 160;

/// nginx gives up picking by key after this many retries (then uses round robin).
pub const MAX_TRIES: u32 = 20;

/// Incremental CRC-32 (IEEE), as nginx's `ngx_crc32_init` / `ngx_crc32_update`
/// / `ngx_crc32_final`. `Clone` lets a common prefix be hashed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc32(u32);

impl Crc32 {
    /// A fresh CRC (state `0xFFFF_FFFF`).
    #[must_use]
    pub const fn new() -> Self {
        Self(0xFFFF_FFFF)
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0 = crc32_update(self.0, bytes);
    }

    /// The CRC of everything fed so far.
    #[must_use]
    pub const fn finish(self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

/// CRC-32 (IEEE) of `bytes`: `crc32(b"123456789") == 0xCBF4_3926`.
#[must_use]
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finish()
}

/// Why a server could not be added. The upstream is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum NginxAddError {
    /// The upstream already holds its compile-time maximum of servers.
    Full,
    /// Weight 0: nginx rejects `weight=0`.
    ZeroWeight,
    /// The points (`160 x weight`) do not fit the compile-time point capacity,
    /// or the total weight overflows.
    NoRoom,
    /// Another server has the same address text (nginx would alternate between
    /// the two by round robin, which no key decides) or, vanishingly rarely,
    /// the same CRC-32 of host and port.
    Duplicate,
}

impl fmt::Display for NginxAddError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NginxAddError::Full => "upstream is full (compile-time server capacity reached)",
            NginxAddError::ZeroWeight => "weight must be at least 1",
            NginxAddError::NoRoom => {
                "not enough point capacity for this server's weight (160 points per unit)"
            }
            NginxAddError::Duplicate => "a server with the same address is already in the upstream",
        })
    }
}

impl core::error::Error for NginxAddError {}

/// A server index that is not in the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownServer;

impl fmt::Display for UnknownServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no such server in the upstream")
    }
}

impl core::error::Error for UnknownServer {}

/// The CRC state after `host NUL port`, as nginx splits a server's address text.
fn address_base(address: &[u8]) -> Crc32 {
    let (host, port): (&[u8], &[u8]) = if address.len() >= 5
        && address
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"unix:"))
    {
        (address.get(5..).unwrap_or(&[]), &[])
    } else {
        // The port is the run of ASCII digits after the last ':', if that run
        // reaches a ':' (so "[::1]:80" splits at the last colon, "host" has none).
        let digits = address
            .iter()
            .rev()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let colon = address.len().checked_sub(digits + 1);
        match colon {
            Some(c) if address.get(c) == Some(&b':') => (
                address.get(..c).unwrap_or(&[]),
                address.get(c + 1..).unwrap_or(&[]),
            ),
            _ => (address, &[]),
        }
    };
    let mut crc = Crc32::new();
    crc.update(host);
    crc.update(&[0]);
    crc.update(port);
    crc
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ServerSlot {
    weight: u32,
    down: bool,
    base: u32,
}

const EMPTY_SLOT: ServerSlot = ServerSlot {
    weight: 0,
    down: false,
    base: 0,
};

/// The `server` lines of an upstream, in order: up to `S`, no allocation.
#[derive(Debug, Clone)]
struct Servers<const S: usize> {
    slots: [ServerSlot; S],
    len: usize,
}

impl<const S: usize> Servers<S> {
    const fn new() -> Self {
        Self {
            slots: [EMPTY_SLOT; S],
            len: 0,
        }
    }

    const fn len(&self) -> usize {
        self.len
    }

    /// The servers added so far.
    fn active(&self) -> &[ServerSlot] {
        self.slots.get(..self.len).unwrap_or(&[])
    }

    /// Appends a server; returns its index. [`NginxAddError::Full`] at `S`.
    fn push(&mut self, slot: ServerSlot) -> Result<usize, NginxAddError> {
        let index = self.len;
        *self.slots.get_mut(index).ok_or(NginxAddError::Full)? = slot;
        self.len = index + 1;
        Ok(index)
    }

    fn set_down(&mut self, index: usize, down: bool) -> Result<(), UnknownServer> {
        match self
            .slots
            .get_mut(..self.len)
            .and_then(|s| s.get_mut(index))
        {
            Some(s) => {
                s.down = down;
                Ok(())
            }
            None => Err(UnknownServer),
        }
    }
}

/// `Default`, `new`, `len` and `is_empty` of a weighted upstream type
/// (`$ty<S>` holding its servers in a [`Weighted<S>`] field `servers`).
macro_rules! weighted_upstream {
    ($ty:ident) => {
        impl<const S: usize> Default for $ty<S> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<const S: usize> $ty<S> {
            /// An empty upstream.
            #[must_use]
            pub const fn new() -> Self {
                Self {
                    servers: Weighted::new(),
                }
            }

            /// Number of servers.
            #[must_use]
            pub const fn len(&self) -> usize {
                self.servers.len()
            }

            /// `true` when there is no server.
            #[must_use]
            pub const fn is_empty(&self) -> bool {
                self.servers.len() == 0
            }
        }
    };
}

/// The servers of a weighted upstream (`hash $key;`, `ip_hash;`) and their
/// total weight, down servers included (nginx counts them).
#[derive(Debug, Clone)]
struct Weighted<const S: usize> {
    servers: Servers<S>,
    total_weight: u32,
}

impl<const S: usize> Weighted<S> {
    const fn new() -> Self {
        Self {
            servers: Servers::new(),
            total_weight: 0,
        }
    }

    const fn len(&self) -> usize {
        self.servers.len()
    }

    fn set_down(&mut self, index: usize, down: bool) -> Result<(), UnknownServer> {
        self.servers.set_down(index, down)
    }

    /// Appends a server of `weight`; returns its index.
    fn add(&mut self, weight: u32) -> Result<usize, NginxAddError> {
        if weight == 0 {
            return Err(NginxAddError::ZeroWeight);
        }
        if self.servers.len() >= S {
            return Err(NginxAddError::Full);
        }
        let total = self
            .total_weight
            .checked_add(weight)
            .ok_or(NginxAddError::NoRoom)?;
        let index = self.servers.push(ServerSlot {
            weight,
            down: false,
            base: 0,
        })?;
        self.total_weight = total;
        Ok(index)
    }

    /// nginx's first try: `None` with no server; a single server is picked
    /// unless down; otherwise up to 21 hashes from `next_hash` (each
    /// `h mod total_weight` walks the weights in order) until one lands on a
    /// server that is up, else `None` (round robin). *O*(tries x S).
    fn pick(&self, mut next_hash: impl FnMut() -> u32) -> Option<usize> {
        let servers = self.servers.active();
        if servers.is_empty() || self.total_weight == 0 {
            return None;
        }
        if servers.len() == 1 {
            return servers.first().is_some_and(|s| !s.down).then_some(0);
        }
        for _ in 0..=MAX_TRIES {
            let mut w = next_hash() % self.total_weight;
            let mut pick = None;
            for (i, s) in servers.iter().enumerate() {
                if w < s.weight {
                    pick = Some((i, s.down));
                    break;
                }
                w -= s.weight;
            }
            match pick {
                Some((i, false)) => return Some(i),
                Some((_, true)) => {}
                None => return None, // unreachable: w < total weight
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Point {
    hash: u32,
    server: u16,
}

/// nginx's `hash $key consistent;`: up to `S` servers and `P` points
/// (`P >= 160 x total weight`; 8 bytes per point).
///
/// Servers are added in the order of their `server` lines and are named by
/// their index (0, 1, ...). The key is the bytes nginx hashes (the value of the
/// `hash` directive's expression for the request).
///
/// # Examples
///
/// ```
/// use chring::compat::nginx::NginxConsistent;
///
/// let mut up: NginxConsistent<4, 1024> = NginxConsistent::new();
/// up.add(b"10.0.0.1:11211", 1)?;
/// up.add(b"10.0.0.2:11211", 2)?;
/// let server = up.lookup(b"user:42").expect("two servers up");
/// assert!(server < 2);
/// # Ok::<(), chring::compat::nginx::NginxAddError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NginxConsistent<const S: usize, const P: usize> {
    servers: Servers<S>,
    points: [Point; P],
    npoints: usize,
}

impl<const S: usize, const P: usize> Default for NginxConsistent<S, P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const S: usize, const P: usize> NginxConsistent<S, P> {
    /// An empty upstream.
    #[must_use]
    pub const fn new() -> Self {
        const { assert!(S <= u16::MAX as usize, "S must fit a u16") };
        Self {
            servers: Servers::new(),
            points: [Point { hash: 0, server: 0 }; P],
            npoints: 0,
        }
    }

    /// Number of servers.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.servers.len()
    }

    /// `true` when there is no server.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.servers.len() == 0
    }

    /// Number of distinct points on the circle (after nginx's deduplication).
    #[must_use]
    pub const fn points(&self) -> usize {
        self.npoints
    }

    /// Adds the next `server` line: its address text exactly as written
    /// (`127.0.0.1:8080`, `cache-a:11211`, `unix:/tmp/s`) and its `weight=`.
    /// Returns its index. Computes in *O*(P log P) time (a re-sort).
    ///
    /// # Errors
    /// [`NginxAddError`]; the upstream is unchanged.
    pub fn add(&mut self, address: &[u8], weight: u32) -> Result<usize, NginxAddError> {
        if weight == 0 {
            return Err(NginxAddError::ZeroWeight);
        }
        let index = self.servers.len();
        if index >= S {
            return Err(NginxAddError::Full);
        }
        let base = address_base(address);
        let base_value = base.finish();
        if self.active().iter().any(|s| s.base == base_value) {
            return Err(NginxAddError::Duplicate);
        }
        let n = weight
            .checked_mul(POINTS_PER_WEIGHT)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or(NginxAddError::NoRoom)?;
        let end = self
            .npoints
            .checked_add(n)
            .filter(|&e| e <= P)
            .ok_or(NginxAddError::NoRoom)?;
        let server = u16::try_from(index).map_err(|_| NginxAddError::Full)?;
        let mut prev = 0u32;
        for p in self.points.get_mut(self.npoints..end).unwrap_or(&mut []) {
            let mut crc = base;
            crc.update(&prev.to_le_bytes());
            prev = crc.finish();
            *p = Point { hash: prev, server };
        }
        // nginx sorts with libc qsort (glibc: a stable merge sort) and keeps the
        // first of equal hashes: the one from the earlier `server` line.
        let all = self.points.get_mut(..end).unwrap_or(&mut []);
        all.sort_unstable_by_key(|p| (p.hash, p.server));
        let mut kept = 0usize;
        for i in 0..all.len() {
            let p = all.get(i).copied().unwrap_or_default();
            let dup = kept > 0 && all.get(kept - 1).is_some_and(|q| q.hash == p.hash);
            if !dup {
                if let Some(slot) = all.get_mut(kept) {
                    *slot = p;
                }
                kept += 1;
            }
        }
        self.npoints = kept;
        // `index < S` was checked above, so this cannot fail.
        self.servers.push(ServerSlot {
            weight,
            down: false,
            base: base_value,
        })
    }

    /// Marks server `index` `down` (the `down` parameter) or up.
    ///
    /// # Errors
    /// [`UnknownServer`] for an index not added.
    pub fn set_down(&mut self, index: usize, down: bool) -> Result<(), UnknownServer> {
        self.servers.set_down(index, down)
    }

    fn active(&self) -> &[ServerSlot] {
        self.servers.active()
    }

    fn is_down(&self, server: usize) -> bool {
        self.active().get(server).is_none_or(|s| s.down)
    }

    /// The server nginx picks for `key` on a first try with every server
    /// healthy (except those marked down). `None` where nginx uses round robin
    /// instead: no server, an empty key, or 21 points in a row on down servers.
    /// Computes in *O*(len(key) + log P) time.
    #[must_use]
    pub fn lookup(&self, key: &[u8]) -> Option<usize> {
        if self.servers.len() == 0 || key.is_empty() {
            return None;
        }
        if self.servers.len() == 1 {
            // One peer: nginx uses round robin, which can only pick that peer.
            return (!self.is_down(0)).then_some(0);
        }
        self.lookup_hash(crc32(key))
    }

    /// As [`lookup`](Self::lookup), from the key's CRC-32.
    #[must_use]
    pub fn lookup_hash(&self, hash: u32) -> Option<usize> {
        let points = self.points.get(..self.npoints).unwrap_or(&[]);
        if points.is_empty() {
            return None;
        }
        let start = points.partition_point(|p| p.hash < hash);
        for tries in 0..=MAX_TRIES as usize {
            let p = points.get((start + tries) % points.len())?;
            let server = usize::from(p.server);
            if !self.is_down(server) {
                return Some(server);
            }
        }
        None
    }
}

/// nginx's plain `hash $key;` (exposed as `nginx-modulo`): up to `S` servers.
///
/// # Examples
///
/// ```
/// use chring::compat::nginx::NginxModulo;
///
/// let mut up: NginxModulo<4> = NginxModulo::new();
/// up.add(1)?;
/// up.add(2)?;
/// assert!(up.lookup(b"user:42").is_some());
/// # Ok::<(), chring::compat::nginx::NginxAddError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NginxModulo<const S: usize> {
    servers: Weighted<S>,
}

weighted_upstream!(NginxModulo);

impl<const S: usize> NginxModulo<S> {
    /// Adds the next `server` line with its `weight=` (its address does not
    /// matter to plain `hash`, only its position). Returns its index.
    ///
    /// # Errors
    /// [`NginxAddError::Full`], [`NginxAddError::ZeroWeight`], or
    /// [`NginxAddError::NoRoom`] when the total weight overflows a `u32`.
    pub fn add(&mut self, weight: u32) -> Result<usize, NginxAddError> {
        self.servers.add(weight)
    }

    /// Marks server `index` `down` or up. A down server keeps its share of the
    /// total weight (nginx counts it), so its keys rehash.
    ///
    /// # Errors
    /// [`UnknownServer`] for an index not added.
    pub fn set_down(&mut self, index: usize, down: bool) -> Result<(), UnknownServer> {
        self.servers.set_down(index, down)
    }

    /// The server nginx picks for `key` on a first try (servers healthy except
    /// those marked down); `None` where nginx uses round robin instead (no
    /// server, an empty key, 21 tries on down servers). Computes in
    /// *O*(tries x (len(key) + S)) time.
    #[must_use]
    pub fn lookup(&self, key: &[u8]) -> Option<usize> {
        if key.is_empty() {
            return None;
        }
        let mut acc = 0u32;
        let mut digits = [0u8; 10];
        let mut rehash = 0u32;
        self.servers.pick(|| {
            // Cache::Memcached's formula: ((crc32([REHASH] KEY) >> 16) & 0x7fff)
            // summed over the tries, REHASH in decimal and omitted on the first.
            let mut crc = Crc32::new();
            if rehash > 0 {
                crc.update(decimal(rehash, &mut digits));
            }
            rehash += 1;
            crc.update(key);
            acc = acc.wrapping_add((crc.finish() >> 16) & 0x7FFF);
            acc
        })
    }
}

/// The starting value of nginx's `ip_hash` (`iphp->hash = 89`).
pub const IP_HASH_SEED: u32 = 89;

/// nginx's `ip_hash;` (`ngx_http_upstream_ip_hash_module`): up to `S` servers.
///
/// The client address picks the server: its first three octets for IPv4, all
/// sixteen bytes for IPv6. Starting from 89, each byte `b` makes
/// `h = (h x 113 + b) mod 6271`; `h mod total_weight` then picks a server by
/// walking the weights in `server` order. A `down` server keeps its weight: the
/// same bytes are folded into `h` again (the hash carries on from where it
/// was) and the walk repeats, 21 tries at most, after which nginx uses round
/// robin. A single server is always picked by round robin (`peers->single`),
/// which is that server unless it is down.
///
/// `no_std`, no allocation, no panics.
///
/// # Examples
///
/// ```
/// use core::net::{IpAddr, Ipv4Addr};
/// use chring::compat::nginx::NginxIpHash;
///
/// let mut up: NginxIpHash<4> = NginxIpHash::new();
/// up.add(1)?;
/// up.add(2)?;
/// let client = IpAddr::V4(Ipv4Addr::new(192, 168, 7, 42));
/// let server = up.lookup(client).expect("two servers up");
/// // The last octet does not matter.
/// assert_eq!(up.lookup(IpAddr::V4(Ipv4Addr::new(192, 168, 7, 1))), Some(server));
/// # Ok::<(), chring::compat::nginx::NginxAddError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NginxIpHash<const S: usize> {
    servers: Weighted<S>,
}

weighted_upstream!(NginxIpHash);

impl<const S: usize> NginxIpHash<S> {
    /// Adds the next `server` line with its `weight=`. Returns its index.
    /// Computes in *O*(1) time.
    ///
    /// # Errors
    /// [`NginxAddError::Full`], [`NginxAddError::ZeroWeight`], or
    /// [`NginxAddError::NoRoom`] when the total weight overflows a `u32`.
    pub fn add(&mut self, weight: u32) -> Result<usize, NginxAddError> {
        self.servers.add(weight)
    }

    /// Marks server `index` `down` or up. A down server keeps its share of the
    /// total weight (nginx counts it), so its clients rehash.
    ///
    /// # Errors
    /// [`UnknownServer`] for an index not added.
    pub fn set_down(&mut self, index: usize, down: bool) -> Result<(), UnknownServer> {
        self.servers.set_down(index, down)
    }

    /// The server nginx picks for a client at `addr` on a first try (servers
    /// healthy except those marked down); `None` where nginx uses round robin
    /// with more than one server (21 tries on down servers), or when no server
    /// is up to take it. Computes in *O*(tries x S) time.
    #[must_use]
    pub fn lookup(&self, addr: IpAddr) -> Option<usize> {
        let v4;
        let v6;
        let bytes: &[u8] = match addr {
            IpAddr::V4(a) => {
                v4 = a.octets();
                v4.get(..3).unwrap_or(&[])
            }
            IpAddr::V6(a) => {
                v6 = a.octets();
                &v6
            }
        };
        self.lookup_bytes(bytes)
    }

    /// As [`lookup`](Self::lookup), for the bytes nginx folds into the hash
    /// (3 for IPv4, 16 for IPv6; nginx uses 3 zero bytes for a client on a
    /// UNIX socket).
    #[must_use]
    pub fn lookup_bytes(&self, bytes: &[u8]) -> Option<usize> {
        let mut hash = IP_HASH_SEED;
        self.servers.pick(|| {
            for &b in bytes {
                hash = (hash * 113 + u32::from(b)) % 6271;
            }
            hash
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        let mut c = Crc32::new();
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finish(), 0xCBF4_3926);
    }

    #[test]
    fn address_split() {
        let base = |h: &[u8], p: &[u8]| {
            let mut c = Crc32::new();
            c.update(h);
            c.update(&[0]);
            c.update(p);
            c.finish()
        };
        assert_eq!(
            address_base(b"10.0.0.1:80").finish(),
            base(b"10.0.0.1", b"80")
        );
        assert_eq!(address_base(b"cache").finish(), base(b"cache", b""));
        assert_eq!(
            address_base(b"[::1]:8080").finish(),
            base(b"[::1]", b"8080")
        );
        assert_eq!(address_base(b"[::1]").finish(), base(b"[::1]", b""));
        assert_eq!(
            address_base(b"UNIX:/tmp/s:1").finish(),
            base(b"/tmp/s:1", b"")
        );
        assert_eq!(address_base(b"h:").finish(), base(b"h", b""));
    }

    #[test]
    fn decimal_digits() {
        let mut b = [0; 10];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(7, &mut b), b"7");
        assert_eq!(decimal(20, &mut b), b"20");
        assert_eq!(decimal(u32::MAX, &mut b), b"4294967295");
    }

    #[test]
    fn consistent_points_and_lookup() {
        let mut up: NginxConsistent<4, 2048> = NginxConsistent::new();
        assert_eq!(up.lookup(b"k"), None);
        assert_eq!(up.add(b"10.0.0.1:80", 1), Ok(0));
        assert_eq!(up.lookup(b"k"), Some(0));
        assert_eq!(up.add(b"10.0.0.2:80", 2), Ok(1));
        assert_eq!(up.points(), 480);
        assert_eq!(up.add(b"10.0.0.2:80", 1), Err(NginxAddError::Duplicate));
        assert_eq!(up.add(b"10.0.0.3:80", 0), Err(NginxAddError::ZeroWeight));
        assert_eq!(up.add(b"10.0.0.3:80", 100), Err(NginxAddError::NoRoom));
        assert_eq!(up.lookup(b""), None);
        // The first point at or after crc32(key), wrapping.
        let pts = &up.points[..up.points()];
        assert!(pts.windows(2).all(|w| w[0].hash < w[1].hash));
        for key in [&b"a"[..], b"b", b"user:1", b"zzz"] {
            let h = crc32(key);
            let want = pts.iter().find(|p| p.hash >= h).unwrap_or(&pts[0]).server;
            assert_eq!(up.lookup(key), Some(usize::from(want)));
        }
        // The first point of a server is crc32(host NUL port 00 00 00 00).
        let first = crc32(b"10.0.0.1\x0080\0\0\0\0");
        assert!(pts.iter().any(|p| p.hash == first && p.server == 0));
    }

    #[test]
    fn consistent_down_walks_on() {
        let mut up: NginxConsistent<4, 4096> = NginxConsistent::new();
        for a in ["a:1", "b:1", "c:1"] {
            up.add(a.as_bytes(), 1).unwrap();
        }
        let keys: [&[u8]; 4] = [b"1", b"2", b"3", b"4"];
        let before: [Option<usize>; 4] = core::array::from_fn(|i| up.lookup(keys[i]));
        up.set_down(1, true).unwrap();
        for (k, b) in keys.iter().zip(before) {
            let now = up.lookup(k).unwrap();
            assert_ne!(now, 1);
            if b != Some(1) {
                assert_eq!(Some(now), b);
            }
        }
        assert_eq!(up.set_down(3, true), Err(UnknownServer));
        for i in 0..3 {
            up.set_down(i, true).unwrap();
        }
        assert_eq!(up.lookup(b"1"), None);
    }

    #[test]
    fn modulo_weights_and_rehash() {
        let mut up: NginxModulo<4> = NginxModulo::new();
        up.add(1).unwrap();
        up.add(1).unwrap();
        up.add(2).unwrap();
        let h = (crc32(b"key") >> 16) & 0x7FFF;
        let w = h % 4;
        let want = match w {
            0 => 0,
            1 => 1,
            _ => 2,
        };
        assert_eq!(up.lookup(b"key"), Some(want));
        up.set_down(want, true).unwrap();
        let mut c = Crc32::new();
        c.update(b"1");
        c.update(b"key");
        let acc = h + ((c.finish() >> 16) & 0x7FFF);
        let second = match acc % 4 {
            0 => 0,
            1 => 1,
            _ => 2,
        };
        if second != want {
            assert_eq!(up.lookup(b"key"), Some(second));
        }
        for i in 0..3 {
            up.set_down(i, true).unwrap();
        }
        assert_eq!(up.lookup(b"key"), None);
        assert_eq!(up.add(0), Err(NginxAddError::ZeroWeight));
    }

    #[test]
    fn ip_hash_weights_down_and_single() {
        use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let mut up: NginxIpHash<4> = NginxIpHash::new();
        let a = IpAddr::V4(Ipv4Addr::new(10, 20, 30, 40));
        assert_eq!(up.lookup(a), None);
        up.add(1).unwrap();
        assert_eq!(up.lookup(a), Some(0));
        up.set_down(0, true).unwrap();
        assert_eq!(up.lookup(a), None);
        up.set_down(0, false).unwrap();
        up.add(2).unwrap();
        up.add(1).unwrap();
        // By hand: 89 -> (89*113+10)%6271 = 3796 -> (3796*113+20)%6271 = 2540
        // -> (2540*113+30)%6271 = 4855; 4855 % 4 = 3: server 2 (weights 1, 2, 1).
        assert_eq!(up.lookup(a), Some(2));
        assert_eq!(
            up.lookup(IpAddr::V4(Ipv4Addr::new(10, 20, 30, 99))),
            Some(2)
        );
        // Server 2 down: the same three bytes again, from 4855, give 4376;
        // 4376 % 4 = 0: server 0.
        up.set_down(2, true).unwrap();
        assert_eq!(up.lookup(a), Some(0));
        up.set_down(0, true).unwrap();
        up.set_down(1, true).unwrap();
        assert_eq!(up.lookup(a), None); // 21 tries, all down
        assert_eq!(up.set_down(3, true), Err(UnknownServer));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let mut two: NginxIpHash<2> = NginxIpHash::new();
        two.add(1).unwrap();
        two.add(1).unwrap();
        let mut h = 89u32;
        for b in Ipv6Addr::LOCALHOST.octets() {
            h = (h * 113 + u32::from(b)) % 6271;
        }
        assert_eq!(two.lookup(v6), Some((h % 2) as usize));
        assert_eq!(two.add(1), Err(NginxAddError::Full));
        assert_eq!(two.add(0), Err(NginxAddError::ZeroWeight));
    }
}
