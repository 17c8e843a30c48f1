//! twemproxy (nutcracker) compatibility: `distribution: ketama` with every one of
//! its key hashes, bit for bit.
//!
//! twemproxy's ketama is libmemcached's: each server gets
//! `floor(weight / total_weight * 40 * servers) * 4` points (computed in `f32`,
//! as twemproxy does), the points are the four little-endian 32-bit words of
//! `MD5("{identity}-{i}")`, and a key goes to the first point at or after its
//! 32-bit hash, wrapping to the first point. The server's identity is its name
//! when the configuration gives one, else `host:port` as written, or the host
//! alone when the port is 11211 ([`ServerLine::identity`]). `DESIGN.md` §7c
//! describes the algorithm and each hash in full.
//!
//! No accessor panics and nothing allocates: [`Ketama`] keeps its servers, their
//! identities and its points in fixed storage sized by const generics.
//!
//! # Example
//!
//! ```
//! use chring::compat::twemproxy::{Ketama, KeyHash, ServerLine};
//!
//! // A pool of up to 8 servers and 8 x 160 points, names of up to 64 bytes.
//! let mut pool: Ketama<8, 1280> = Ketama::new(KeyHash::Fnv1a64);
//! for line in ["10.0.0.1:11211:1", "10.0.0.2:11212:1", "10.0.0.3:11211:2 cache-c"] {
//!     let server = ServerLine::parse(line.as_bytes())?;
//!     pool.add(server.identity(), server.weight)?;
//! }
//! assert_eq!(pool.name(0), Some(&b"10.0.0.1"[..])); // port 11211 is left out
//! assert_eq!(pool.name(1), Some(&b"10.0.0.2:11212"[..]));
//! assert_eq!(pool.name(2), Some(&b"cache-c"[..]));
//! let server = pool.server_for(b"customer-0012345").unwrap();
//! assert!(server < 3);
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```

use core::fmt;
use core::str::FromStr;

use super::util::{crc32_update, decimal};
use crate::fleet::{BackendId, BatchError, UnknownBackend};

/// Points of a server with the average weight (`40` MD5 digests of 4 points).
pub const POINTS_PER_SERVER: u32 = 160;
/// Points taken from one MD5 digest (its four little-endian 32-bit words).
pub const POINTS_PER_HASH: u32 = 4;
/// The port libmemcached (and so twemproxy) leaves out of an unnamed server's
/// identity.
pub const DEFAULT_PORT: u16 = 11211;
/// twemproxy hashes at most this many bytes of `"{identity}-{i}"` (its 273-byte
/// buffer less the terminating NUL).
pub const MAX_POINT_INPUT: usize = 272;

// ------------------------------------------------------------------ key hashes

/// One of twemproxy's key hashes (`hash:` in a pool). All return 32 bits.
///
/// Bytes ≥ 0x80 are treated as twemproxy treats them on x86 and x86-64, where C's
/// `char` is signed: the FNV family, `one_at_a_time` and the third byte of a
/// 3-byte tail in `hsieh` see them sign-extended; the others read them unsigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KeyHash {
    /// Bob Jenkins' one-at-a-time.
    OneAtATime,
    /// The first 4 bytes of MD5, little-endian.
    Md5,
    /// The XMODEM CRC-16 table, but the register is never masked to 16 bits.
    Crc16,
    /// libmemcached's CRC-32: bits 16..31 of the CRC-32, masked to 15 bits.
    Crc32,
    /// The standard CRC-32 (IEEE, as zlib).
    Crc32a,
    /// FNV-1 with the 64-bit basis and prime, truncated to 32 bits.
    Fnv1_64,
    /// FNV-1a with the 64-bit basis and prime both truncated to 32 bits
    /// (twemproxy's default).
    #[default]
    Fnv1a64,
    /// FNV-1, 32 bits.
    Fnv1_32,
    /// FNV-1a, 32 bits.
    Fnv1a32,
    /// Paul Hsieh's SuperFastHash.
    Hsieh,
    /// MurmurHash2 with seed `0xdeadbeef * len`.
    Murmur,
    /// Bob Jenkins' lookup3 `hashlittle` with initial value 13.
    Jenkins,
}

impl KeyHash {
    /// Every key hash, in twemproxy's order.
    pub const ALL: [KeyHash; 12] = [
        KeyHash::OneAtATime,
        KeyHash::Md5,
        KeyHash::Crc16,
        KeyHash::Crc32,
        KeyHash::Crc32a,
        KeyHash::Fnv1_64,
        KeyHash::Fnv1a64,
        KeyHash::Fnv1_32,
        KeyHash::Fnv1a32,
        KeyHash::Hsieh,
        KeyHash::Murmur,
        KeyHash::Jenkins,
    ];

    /// The name a nutcracker configuration uses (`hash: fnv1a_64`).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            KeyHash::OneAtATime => "one_at_a_time",
            KeyHash::Md5 => "md5",
            KeyHash::Crc16 => "crc16",
            KeyHash::Crc32 => "crc32",
            KeyHash::Crc32a => "crc32a",
            KeyHash::Fnv1_64 => "fnv1_64",
            KeyHash::Fnv1a64 => "fnv1a_64",
            KeyHash::Fnv1_32 => "fnv1_32",
            KeyHash::Fnv1a32 => "fnv1a_32",
            KeyHash::Hsieh => "hsieh",
            KeyHash::Murmur => "murmur",
            KeyHash::Jenkins => "jenkins",
        }
    }

    /// The key hash a configuration names (exactly, as twemproxy compares).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Hashes `key`. Computes in *O*(len) time.
    #[must_use]
    pub fn hash(self, key: &[u8]) -> u32 {
        match self {
            KeyHash::OneAtATime => one_at_a_time(key),
            KeyHash::Md5 => md5(key),
            KeyHash::Crc16 => crc16(key),
            KeyHash::Crc32 => crc32(key),
            KeyHash::Crc32a => crc32a(key),
            KeyHash::Fnv1_64 => fnv1_64(key),
            KeyHash::Fnv1a64 => fnv1a_64(key),
            KeyHash::Fnv1_32 => fnv1_32(key),
            KeyHash::Fnv1a32 => fnv1a_32(key),
            KeyHash::Hsieh => hsieh(key),
            KeyHash::Murmur => murmur(key),
            KeyHash::Jenkins => jenkins(key),
        }
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `hash:` value that is none of twemproxy's key hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownKeyHash;

impl fmt::Display for UnknownKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "unknown twemproxy hash (expected one_at_a_time, md5, crc16, crc32, crc32a, \
             fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur or jenkins)",
        )
    }
}

impl core::error::Error for UnknownKeyHash {}

impl FromStr for KeyHash {
    type Err = UnknownKeyHash;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or(UnknownKeyHash)
    }
}

/// A byte as C's signed `char` on x86, widened to 32 bits (sign-extended).
#[inline]
fn schar32(b: u8) -> u32 {
    b as i8 as i32 as u32
}

/// The first four bytes of `MD5(key)` as a little-endian `u32` (`hash: md5`).
#[must_use]
pub fn md5(key: &[u8]) -> u32 {
    let d = md5_digest(&[key]);
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

/// MD5 of the concatenation of `parts`.
fn md5_digest(parts: &[&[u8]]) -> [u8; 16] {
    use ::md5::Digest;
    let mut h = ::md5::Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

const FNV_64_INIT: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_64_PRIME: u64 = 0x0000_0100_0000_01b3;
const FNV_32_INIT: u32 = 2_166_136_261;
const FNV_32_PRIME: u32 = 16_777_619;

/// FNV-1 over a 64-bit state (multiply, then xor the sign-extended byte),
/// truncated to its low 32 bits (`hash: fnv1_64`).
#[must_use]
pub fn fnv1_64(key: &[u8]) -> u32 {
    let mut h = FNV_64_INIT;
    for &b in key {
        h = h.wrapping_mul(FNV_64_PRIME);
        h ^= b as i8 as i64 as u64;
    }
    h as u32
}

/// FNV-1a on a 32-bit state that starts from the low 32 bits of the 64-bit
/// basis and multiplies by the low 32 bits of the 64-bit prime, `0x1b3`
/// (`hash: fnv1a_64`, twemproxy's default).
#[must_use]
pub fn fnv1a_64(key: &[u8]) -> u32 {
    let mut h = FNV_64_INIT as u32;
    for &b in key {
        h ^= schar32(b);
        h = h.wrapping_mul(FNV_64_PRIME as u32);
    }
    h
}

/// FNV-1, 32 bits, sign-extended bytes (`hash: fnv1_32`).
#[must_use]
pub fn fnv1_32(key: &[u8]) -> u32 {
    let mut h = FNV_32_INIT;
    for &b in key {
        h = h.wrapping_mul(FNV_32_PRIME);
        h ^= schar32(b);
    }
    h
}

/// FNV-1a, 32 bits, sign-extended bytes (`hash: fnv1a_32`).
#[must_use]
pub fn fnv1a_32(key: &[u8]) -> u32 {
    let mut h = FNV_32_INIT;
    for &b in key {
        h ^= schar32(b);
        h = h.wrapping_mul(FNV_32_PRIME);
    }
    h
}

/// Jenkins' one-at-a-time, sign-extended bytes (`hash: one_at_a_time`).
#[must_use]
pub fn one_at_a_time(key: &[u8]) -> u32 {
    let mut v: u32 = 0;
    for &b in key {
        v = v.wrapping_add(schar32(b));
        v = v.wrapping_add(v << 10);
        v ^= v >> 6;
    }
    v = v.wrapping_add(v << 3);
    v ^= v >> 11;
    v.wrapping_add(v << 15)
}

/// The CRC-16/XMODEM table (polynomial 0x1021, MSB first).
const CRC16_TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u16) << 8;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000 != 0 {
                (c << 1) ^ 0x1021
            } else {
                c << 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// twemproxy's `crc16`: the XMODEM table step `crc = (crc << 8) ^
/// T[((crc >> 8) ^ byte) & 0xff]` on a 32-bit register that is never masked,
/// so results exceed 16 bits for keys of 3 bytes and more (`hash: crc16`).
#[must_use]
pub fn crc16(key: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in key {
        let i = ((crc >> 8) ^ u32::from(b)) & 0xff;
        crc = (crc << 8) ^ u32::from(CRC16_TABLE[i as usize]);
    }
    crc
}

/// The standard CRC-32 register after `key` (not yet inverted).
fn crc32_register(key: &[u8]) -> u32 {
    crc32_update(u32::MAX, key)
}

/// libmemcached's CRC-32: `(crc32(key) >> 16) & 0x7fff` (`hash: crc32`).
#[must_use]
pub fn crc32(key: &[u8]) -> u32 {
    (!crc32_register(key) >> 16) & 0x7fff
}

/// The standard CRC-32 (IEEE 802.3, zlib's `crc32`) (`hash: crc32a`).
#[must_use]
pub fn crc32a(key: &[u8]) -> u32 {
    !crc32_register(key)
}

/// Paul Hsieh's SuperFastHash as twemproxy has it (`hash: hsieh`): 16-bit words
/// read little-endian and unsigned, except the last byte of a 3-byte tail, which
/// is sign-extended before its shift by 18. The empty key hashes to 0.
#[must_use]
pub fn hsieh(key: &[u8]) -> u32 {
    if key.is_empty() {
        return 0;
    }
    let get16 = |s: &[u8]| -> u32 {
        u32::from(s.first().copied().unwrap_or(0))
            | (u32::from(s.get(1).copied().unwrap_or(0)) << 8)
    };
    let mut h: u32 = 0;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        h = h.wrapping_add(get16(c));
        let tmp = (get16(c.get(2..).unwrap_or(&[])) << 11) ^ h;
        h = (h << 16) ^ tmp;
        h = h.wrapping_add(h >> 11);
    }
    let tail = chunks.remainder();
    match tail.len() {
        3 => {
            h = h.wrapping_add(get16(tail));
            h ^= h << 16;
            h ^= schar32(tail.get(2).copied().unwrap_or(0)) << 18;
            h = h.wrapping_add(h >> 11);
        }
        2 => {
            h = h.wrapping_add(get16(tail));
            h ^= h << 11;
            h = h.wrapping_add(h >> 17);
        }
        1 => {
            h = h.wrapping_add(u32::from(tail.first().copied().unwrap_or(0)));
            h ^= h << 10;
            h = h.wrapping_add(h >> 1);
        }
        _ => {}
    }
    h ^= h << 3;
    h = h.wrapping_add(h >> 5);
    h ^= h << 4;
    h = h.wrapping_add(h >> 17);
    h ^= h << 25;
    h.wrapping_add(h >> 6)
}

/// MurmurHash2 with seed `0xdeadbeef * len` and 4-byte words read little-endian
/// (`hash: murmur`). Lengths count modulo 2^32, as twemproxy's `uint32_t` does.
#[must_use]
pub fn murmur(key: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let len = key.len() as u32;
    let mut h = 0xdead_beef_u32.wrapping_mul(len) ^ len;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
            c.get(2).copied().unwrap_or(0),
            c.get(3).copied().unwrap_or(0),
        ]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// Bob Jenkins' lookup3 `hashlittle` with initial value 13, bytes unsigned and
/// assembled little-endian (`hash: jenkins`). The empty key hashes to
/// `0xdeadbeef + 13`.
#[must_use]
pub fn jenkins(key: &[u8]) -> u32 {
    let init = 0xdead_beef_u32
        .wrapping_add(key.len() as u32)
        .wrapping_add(13);
    let (mut a, mut b, mut c) = (init, init, init);
    let word = |s: &[u8], i: usize| -> u32 {
        let mut w = 0u32;
        for k in 0..4 {
            w |= u32::from(s.get(i + k).copied().unwrap_or(0)) << (8 * k);
        }
        w
    };
    let mut rest = key;
    while rest.len() > 12 {
        a = a.wrapping_add(word(rest, 0));
        b = b.wrapping_add(word(rest, 4));
        c = c.wrapping_add(word(rest, 8));
        // mix(a, b, c)
        a = a.wrapping_sub(c);
        a ^= c.rotate_left(4);
        c = c.wrapping_add(b);
        b = b.wrapping_sub(a);
        b ^= a.rotate_left(6);
        a = a.wrapping_add(c);
        c = c.wrapping_sub(b);
        c ^= b.rotate_left(8);
        b = b.wrapping_add(a);
        a = a.wrapping_sub(c);
        a ^= c.rotate_left(16);
        c = c.wrapping_add(b);
        b = b.wrapping_sub(a);
        b ^= a.rotate_left(19);
        a = a.wrapping_add(c);
        c = c.wrapping_sub(b);
        c ^= b.rotate_left(4);
        b = b.wrapping_add(a);
        rest = rest.get(12..).unwrap_or(&[]);
    }
    if rest.is_empty() {
        return c;
    }
    // The last 1..=12 bytes; `word` reads missing bytes as 0.
    a = a.wrapping_add(word(rest, 0));
    b = b.wrapping_add(word(rest, 4));
    c = c.wrapping_add(word(rest, 8));
    // final(a, b, c)
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c.wrapping_sub(b.rotate_left(24))
}

/// The part of `key` twemproxy hashes when the pool has `hash_tag: "ab"`: the
/// bytes strictly between the first `a` and the first `b` after it, when that
/// part is not empty; otherwise the whole key.
#[must_use]
pub fn hash_tag(key: &[u8], tag: [u8; 2]) -> &[u8] {
    let [open, close] = tag;
    let Some(start) = key.iter().position(|&b| b == open) else {
        return key;
    };
    let inner = key.get(start + 1..).unwrap_or(&[]);
    match inner.iter().position(|&b| b == close) {
        Some(end) if end > 0 => inner.get(..end).unwrap_or(key),
        _ => key,
    }
}

// ------------------------------------------------------------- server lines

/// One `servers:` entry of a nutcracker pool, `host:port:weight [name]` or
/// `/path/to/socket:weight [name]`, split as twemproxy splits it: from the end,
/// the name after the last space, then the weight after the last `:`, then the
/// port after the `:` before it (so an IPv6 host keeps its colons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ServerLine<'a> {
    /// The host (or the socket's path), as written.
    pub host: &'a [u8],
    /// The port as written (`None` for a UNIX socket).
    pub port_text: Option<&'a [u8]>,
    /// The port's value (0 for a UNIX socket).
    pub port: u16,
    /// The weight, at least 1.
    pub weight: u32,
    /// The name after the space, if any.
    pub name: Option<&'a [u8]>,
    /// The line without ` name` and without `:weight`: `host:port`, or the path.
    pub address: &'a [u8],
    /// The identity string exactly as twemproxy forms it (see [`identity`](Self::identity)).
    identity: &'a [u8],
}

/// Why a server line is not `host:port:weight [name]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ServerLineError {
    /// Not `host:port:weight [name]` nor `/path:weight [name]`.
    Format,
    /// The weight is not a decimal integer (or above `u32::MAX`).
    BadWeight,
    /// Weight 0.
    ZeroWeight,
    /// The port is not a decimal integer in `1..=65535`.
    BadPort,
    /// The name after the space is empty.
    EmptyName,
}

impl fmt::Display for ServerLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerLineError::Format => {
                "not a \"host:port:weight [name]\" or \"/path/unix_socket:weight [name]\" server"
            }
            ServerLineError::BadWeight => "invalid weight in \"host:port:weight [name]\"",
            ServerLineError::ZeroWeight => "zero weight in \"host:port:weight [name]\"",
            ServerLineError::BadPort => "invalid port in \"host:port:weight [name]\"",
            ServerLineError::EmptyName => "empty name after \"host:port:weight \"",
        })
    }
}

impl core::error::Error for ServerLineError {}

/// twemproxy's `nc_atoi`: decimal digits only, at least one.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        c.is_ascii_digit().then(|| v * 10 + u64::from(c - b'0'))
    })
}

impl<'a> ServerLine<'a> {
    /// Splits one server entry (the YAML scalar, without the `- `).
    ///
    /// # Errors
    /// [`ServerLineError`] for what twemproxy would reject.
    pub fn parse(line: &'a [u8]) -> Result<Self, ServerLineError> {
        let unix = line.first() == Some(&b'/');
        let (rest, name) = match line.iter().rposition(|&b| b == b' ') {
            Some(sp) => {
                let name = line.get(sp + 1..).unwrap_or(&[]);
                if name.is_empty() {
                    return Err(ServerLineError::EmptyName);
                }
                (line.get(..sp).unwrap_or(&[]), Some(name))
            }
            None => (line, None),
        };
        let colon = rest
            .iter()
            .rposition(|&b| b == b':')
            .ok_or(ServerLineError::Format)?;
        let weight_text = rest.get(colon + 1..).unwrap_or(&[]);
        let address = rest.get(..colon).unwrap_or(&[]);
        let weight = parse_decimal(weight_text)
            .and_then(|w| u32::try_from(w).ok())
            .ok_or(ServerLineError::BadWeight)?;
        if weight == 0 {
            return Err(ServerLineError::ZeroWeight);
        }
        let (host, port_text, port, identity) = if unix {
            if address.contains(&b':') {
                return Err(ServerLineError::Format);
            }
            // twemproxy's identity for an unnamed socket is the path plus the
            // `:` before the weight (its length arithmetic counts an empty port).
            (address, None, 0, rest.get(..=colon).unwrap_or(rest))
        } else {
            let pc = address
                .iter()
                .rposition(|&b| b == b':')
                .ok_or(ServerLineError::Format)?;
            let host = address.get(..pc).unwrap_or(&[]);
            let port_text = address.get(pc + 1..).unwrap_or(&[]);
            let port = parse_decimal(port_text)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p != 0)
                .ok_or(ServerLineError::BadPort)?;
            let identity = if port == DEFAULT_PORT { host } else { address };
            (host, Some(port_text), port, identity)
        };
        Ok(Self {
            host,
            port_text,
            port,
            weight,
            name,
            address,
            identity: name.unwrap_or(identity),
        })
    }

    /// The string twemproxy hashes for this server's points: its name when it
    /// has one; else `host:port` as written, or the host alone when the port is
    /// 11211 (libmemcached's convention).
    #[must_use]
    pub const fn identity(&self) -> &'a [u8] {
        self.identity
    }

    /// How a user names this server: its name, else `host:port` as written.
    #[must_use]
    pub fn label(&self) -> &'a [u8] {
        self.name.unwrap_or(self.address)
    }
}

// ------------------------------------------------------------------ continuum

/// One point of the continuum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Point {
    /// Its position on the 32-bit circle.
    pub value: u32,
    /// The index of its server (insertion order).
    pub server: u16,
}

/// Why a server could not be added to (or removed from) a [`Ketama`] pool. The
/// pool is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum KetamaError {
    /// The pool already holds its compile-time maximum of servers.
    Full,
    /// Weight 0.
    ZeroWeight,
    /// The total weight would not fit in `u32`.
    WeightOverflow,
    /// The identity is longer than the pool's name capacity, or empty.
    BadName,
    /// Another server has the same identity (twemproxy rejects such a pool).
    DuplicateName,
    /// The continuum would need more points than the pool's capacity.
    NoRoom,
    /// No server has this index (the index, as a [`BackendId`]; indexes past
    /// `u16::MAX` read as `u16::MAX`).
    Unknown(UnknownBackend),
}

impl fmt::Display for KetamaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KetamaError::Full => "pool is full (compile-time server capacity reached)",
            KetamaError::ZeroWeight => "weight must be at least 1",
            KetamaError::WeightOverflow => "total weight exceeds u32::MAX",
            KetamaError::BadName => "server identity is empty or longer than the name capacity",
            KetamaError::DuplicateName => "a server with this identity already exists",
            KetamaError::NoRoom => "not enough point capacity for the continuum",
            KetamaError::Unknown(e) => return e.fmt(f),
        })
    }
}

impl core::error::Error for KetamaError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            KetamaError::Unknown(e) => Some(e),
            _ => None,
        }
    }
}

impl From<UnknownBackend> for KetamaError {
    fn from(e: UnknownBackend) -> Self {
        KetamaError::Unknown(e)
    }
}

/// Points twemproxy gives a server of `weight` in a pool of `servers` servers
/// whose weights add up to `total_weight`:
/// `(u32) floorf((float)(pct * 160 / 4 * (float)servers + 1e-10)) * 4` with
/// `pct = (float)weight / (float)total_weight`, in `f32` exactly as compiled for
/// x86-64 (the `1e-10` is added in `f64`, then rounded back to `f32`). 0 when
/// `total_weight` is 0.
#[must_use]
pub fn ketama_points(weight: u32, total_weight: u32, servers: u32) -> u32 {
    if total_weight == 0 {
        return 0;
    }
    let pct = weight as f32 / total_weight as f32;
    let x = pct * POINTS_PER_SERVER as f32 / 4.0 * servers as f32;
    let x = (f64::from(x) + 0.000_000_000_1) as f32;
    (libm::floorf(x) * 4.0) as u32
}

#[derive(Debug, Clone)]
struct Server<const N: usize> {
    name: heapless::Vec<u8, N>,
    weight: u32,
}

/// A twemproxy `distribution: ketama` pool: up to `B` servers, up to `P`
/// continuum points (`160 x servers` always suffices; fewer do for pools that
/// are not full), server identities of up to `N` bytes.
///
/// Every [`add`](Self::add) or [`remove`](Self::remove) rebuilds the continuum,
/// as twemproxy does (each server's share depends on every weight): `40 x
/// servers` MD5 digests and a sort. To load a whole configuration, use
/// [`add_many`](Self::add_many), which builds the continuum once (adding `n`
/// servers one by one costs *O*(n²) digests). Lookups are a key hash and a
/// binary search, *O*(len + log P). The pool keeps the servers in insertion
/// order; lookups return the index.
///
/// Not modelled: `auto_eject_hosts` (twemproxy then rebuilds the continuum
/// without servers that failed, which depends on run-time failures).
#[derive(Debug, Clone)]
pub struct Ketama<const B: usize, const P: usize, const N: usize = 64> {
    key_hash: KeyHash,
    hash_tag: Option<[u8; 2]>,
    servers: heapless::Vec<Server<N>, B>,
    /// [`hash`](crate::hash())`(name)` of each server, in server order: duplicate
    /// checks scan these 8 bytes per server instead of the names.
    name_hashes: heapless::Vec<u64, B>,
    total_weight: u32,
    points: heapless::Vec<Point, P>,
}

impl<const B: usize, const P: usize, const N: usize> Ketama<B, P, N> {
    const CHECK: () = assert!(
        B >= 1 && B <= u16::MAX as usize + 1,
        "Ketama: B must be in 1..=65536"
    );

    /// An empty pool hashing keys with `key_hash`.
    #[must_use]
    pub const fn new(key_hash: KeyHash) -> Self {
        let () = Self::CHECK;
        Self {
            key_hash,
            hash_tag: None,
            servers: heapless::Vec::new(),
            name_hashes: heapless::Vec::new(),
            total_weight: 0,
            points: heapless::Vec::new(),
        }
    }

    /// Sets `hash_tag` (e.g. `*b"{}"`): keys are hashed on the part between the
    /// two characters (see [`hash_tag()`]).
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
    pub const fn key_hash(&self) -> KeyHash {
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

    /// The continuum, sorted by position.
    #[must_use]
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Points the continuum needs for these servers' weights.
    fn points_needed(&self, total: u32, n: usize) -> u64 {
        let n32 = n as u32;
        self.servers
            .iter()
            .map(|s| u64::from(ketama_points(s.weight, total, n32)))
            .sum()
    }

    /// Adds a server with this identity ([`ServerLine::identity`]) and weight
    /// at the end, and rebuilds the continuum. Returns its index.
    ///
    /// # Errors
    /// [`KetamaError`]; the pool is unchanged on error.
    pub fn add(&mut self, identity: &[u8], weight: u32) -> Result<usize, KetamaError> {
        self.add_many(&[(identity, weight)]).map_err(|e| e.error)?;
        Ok(self.servers.len() - 1)
    }

    /// Adds several servers at the end, `(identity, weight)` each in
    /// configuration order, and builds the continuum once: the result is
    /// identical to [`add`](Self::add)ing them one by one, at the cost of one
    /// rebuild (`40 x servers` MD5 digests and a sort: 40,960 digests and
    /// 163,840 points for 1,024 servers) instead of one per server. This is how a proxy loads or reloads
    /// a pool. Duplicate checks compare 64-bit name hashes first: *O*(n²)
    /// integer comparisons, a fraction of the digests' cost.
    ///
    /// # Errors
    /// [`BatchError`]: the position in `servers` of the first one that cannot
    /// be added and why ([`KetamaError`], counting duplicates within the batch; `NoRoom` names
    /// the last server, since only the whole pool's continuum can overflow);
    /// the pool is unchanged then.
    pub fn add_many(&mut self, servers: &[(&[u8], u32)]) -> Result<(), BatchError<KetamaError>> {
        let before = self.servers.len();
        let mut total = self.total_weight;
        for (i, &(identity, weight)) in servers.iter().enumerate() {
            if let Err(e) = self.check_one(identity, weight, &mut total) {
                self.truncate(before);
                return Err(BatchError { index: i, error: e });
            }
            let server = Server {
                name: heapless::Vec::from_slice(identity).unwrap_or_default(),
                weight,
            };
            let hash = crate::hash::hash(identity);
            if self.servers.push(server).is_err() || self.name_hashes.push(hash).is_err() {
                self.truncate(before);
                return Err(BatchError {
                    index: i,
                    error: KetamaError::Full,
                });
            }
        }
        if self.points_needed(total, self.servers.len()) > P as u64 {
            self.truncate(before);
            return Err(BatchError {
                index: servers.len().saturating_sub(1),
                error: KetamaError::NoRoom,
            });
        }
        self.total_weight = total;
        self.rebuild();
        Ok(())
    }

    /// Drops the servers from `len` on (a batch that failed validation).
    fn truncate(&mut self, len: usize) {
        self.servers.truncate(len);
        self.name_hashes.truncate(len);
    }

    /// Validates one server against the pool as it stands (including servers
    /// of the current batch already pushed) and adds its weight to `total`.
    fn check_one(&self, identity: &[u8], weight: u32, total: &mut u32) -> Result<(), KetamaError> {
        if weight == 0 {
            return Err(KetamaError::ZeroWeight);
        }
        let h = crate::hash::hash(identity);
        let mut same = self
            .name_hashes
            .iter()
            .enumerate()
            .filter(|&(_, &x)| x == h);
        if same.any(|(i, _)| self.name(i) == Some(identity)) {
            return Err(KetamaError::DuplicateName);
        }
        if identity.is_empty() || identity.len() > N {
            return Err(KetamaError::BadName);
        }
        if self.servers.is_full() {
            return Err(KetamaError::Full);
        }
        *total = total
            .checked_add(weight)
            .ok_or(KetamaError::WeightOverflow)?;
        Ok(())
    }

    /// Removes server `index` (later servers move down one index) and rebuilds
    /// the continuum.
    ///
    /// # Errors
    /// [`KetamaError::Unknown`] for an index past the end.
    pub fn remove(&mut self, index: usize) -> Result<(), KetamaError> {
        if index >= self.servers.len() {
            let id = u16::try_from(index).unwrap_or(u16::MAX);
            return Err(UnknownBackend(BackendId(id)).into());
        }
        let s = self.servers.remove(index);
        if index < self.name_hashes.len() {
            self.name_hashes.remove(index);
        }
        self.total_weight -= s.weight;
        self.rebuild();
        Ok(())
    }

    /// Removes every server.
    pub fn clear(&mut self) {
        self.servers.clear();
        self.name_hashes.clear();
        self.points.clear();
        self.total_weight = 0;
    }

    fn rebuild(&mut self) {
        self.points.clear();
        let n = self.servers.len() as u32;
        let mut input = [0u8; MAX_POINT_INPUT];
        for (index, s) in self.servers.iter().enumerate() {
            let count = ketama_points(s.weight, self.total_weight, n) / POINTS_PER_HASH;
            for i in 0..count {
                let len = point_input(&mut input, &s.name, i);
                let digest = md5_digest(&[input.get(..len).unwrap_or(&[])]);
                for w in digest.chunks_exact(4) {
                    let value = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                    // `add` checked the capacity, so this cannot fail.
                    let pushed = self.points.push(Point {
                        value,
                        server: index as u16,
                    });
                    debug_assert!(pushed.is_ok());
                }
            }
        }
        // twemproxy's qsort leaves equal positions (a 2^-32 event per pair) in
        // an unspecified order; we break ties by server index.
        self.points.sort_unstable();
    }

    /// The server at or after position `hash` on the continuum (wrapping to the
    /// first point). `None` when the continuum is empty. *O*(log P).
    #[must_use]
    pub fn dispatch(&self, hash: u32) -> Option<usize> {
        let i = self.points.partition_point(|p| p.value < hash);
        let p = self.points.get(i).or_else(|| self.points.first())?;
        Some(usize::from(p.server))
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

/// Writes `"{name}-{i}"` into `buf`, cut to [`MAX_POINT_INPUT`] bytes as
/// twemproxy's `snprintf` cuts it; returns its length.
fn point_input(buf: &mut [u8; MAX_POINT_INPUT], name: &[u8], i: u32) -> usize {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let parts: [&[u8]; 3] = [name, b"-", decimal(i, &mut digits)];
    for b in parts.iter().flat_map(|p| p.iter()) {
        let Some(slot) = buf.get_mut(len) else { break };
        *slot = *b;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of twemproxy's own C hash functions (src/hashkit, compiled with
    /// gcc -O2 on x86-64; every key also hashed at byte offsets 1..3 with the same
    /// result), in the order of [`KeyHash::ALL`].
    #[rustfmt::skip]
    const HASH_VECTORS: &[(&[u8], [u32; 12])] = &[
        (b"", [0x00000000, 0xd98c1dd4, 0x00000000, 0x00000000, 0x00000000, 0x84222325, 0x84222325, 0x811c9dc5, 0x811c9dc5, 0x00000000, 0x00000000, 0xdeadbefc]),
        (b"\x61", [0xca2e9442, 0xb975c10c, 0x00007c87, 0x000068b7, 0xe8b7be43, 0x8601b7be, 0x8601ec8c, 0x050c5d7e, 0xe40c292c, 0x93642e87, 0x4b41757c, 0xe0a38690]),
        (b"\x61\x62", [0x45e61e58, 0x43f47e18, 0x007c74ff, 0x00001e83, 0x9e83486d, 0xb4eb37b8, 0xb545986a, 0x70772d38, 0x4d2505ca, 0x5b8c0ec3, 0xe3b54dfb, 0xc1b5695b]),
        (b"\x61\x62\x63", [0xed131f5b, 0x98500190, 0x7c749dd6, 0x00003524, 0x352441c2, 0x6bafadcb, 0x0541574b, 0x439c2f4b, 0x1a47e90b, 0xe5186b3a, 0x7b0cc428, 0x8f415600]),
        (b"\x61\x62\x63\x64", [0xcd8b6206, 0x4c71fce2, 0x749da836, 0x00006d82, 0xed82cd11, 0xfb844f95, 0xee0724dd, 0xb9de7375, 0xce3479bd, 0x3ab452d8, 0xef6a86af, 0xd512151a]),
        (b"\x61\x62\x63\x64\x65", [0xb98559fc, 0xd9b456ab, 0x9da83ee1, 0x00000587, 0x8587d865, 0x61d33a4a, 0x762364a8, 0x0e2fc14a, 0x749bcf08, 0x84786722, 0x9a263eda, 0x5cff335b]),
        (b"\x66\x6f\x6f\x3a\x62\x61\x72\x3a\x62\x61\x7a", [0x7358e4e9, 0x09a4f25b, 0x047d73e7, 0x000020bd, 0x20bd4479, 0x435ef423, 0xfa2713e7, 0x578d7e03, 0xe08b1ac7, 0x70b9f58a, 0xac67de49, 0xe2d820d8]),
        (b"\x68\x65\x6c\x6c\x6f\x20\x77\x6f\x72\x6c\x64\x21", [0x9bd919d3, 0x8ef93ffc, 0x063b577b, 0x000003b4, 0x03b4c26d, 0xb97b86bc, 0xcd5a2672, 0x8a01b99c, 0xb034fff2, 0x13724f63, 0x7f8cfcad, 0x1bc66602]),
        (b"\x30\x31\x32\x33\x34\x35\x36\x37\x38\x39\x61\x62\x63", [0xcae77770, 0x71d9312d, 0x66f21798, 0x00004e68, 0xce68ad26, 0x0d0f5624, 0x0bd2b7f6, 0x54a63804, 0x8136b5b6, 0x9aefedfa, 0xc23faf3e, 0x37f93ead]),
        (b"\x63\x75\x73\x74\x6f\x6d\x65\x72\x2d\x30\x30\x31\x32\x33\x34\x35", [0x0d610985, 0x67d56dc6, 0x27e3f9bb, 0x00004e0a, 0xce0a82d3, 0x238626a3, 0xd4f2451f, 0x63c354a3, 0xfe24361f, 0x050ddbd5, 0x7189ec04, 0x058d3a03]),
        (b"\xc3\xa9\x74\xc3\xa9\x00", [0x8859c1c1, 0x70bea6bb, 0x26a7a20d, 0x000053f8, 0x53f8282c, 0xa0ae5115, 0x678ba7d5, 0xd82521b5, 0xdfa60435, 0x4050f533, 0x6f8f6f07, 0xc004c200]),
        (b"\xff", [0xae65a494, 0xd44f5900, 0x00001ef0, 0x00007f00, 0xff000000, 0x79fe4820, 0x79fe466e, 0xfaf3a2e0, 0xf9f3a14e, 0x02a6dba8, 0xdb530a9c, 0xe1964da8]),
        (b"\x80\x81\x82", [0xe8cce13b, 0x0a7685b3, 0x919aa239, 0x00003f5a, 0x3f5a8994, 0x94a33c86, 0x8a50dfa8, 0xcfab51a6, 0x0ef7fca8, 0x6bc37572, 0x5822874f, 0x3015dd51]),
        (b"\xce\xba\xce\xbb\xce\xb5\xce\xb9\xce\xb4\xce\xaf\x2d\x31\x32", [0x70266073, 0x8a7fb986, 0x3cc8e355, 0x000064c4, 0xe4c49fff, 0xcf81bcb1, 0x4acd179d, 0x24b5c491, 0x9afc2b3d, 0x1f0f9d45, 0xeab11848, 0xb961d220]),
        (b"\xfe\xff\x00\x7f\x80", [0xe64a96dc, 0xc3bc254b, 0xfb7d32b2, 0x00002a3c, 0xaa3cf9c9, 0xdfbc3fa9, 0x2feb2b19, 0x05d5a5a9, 0x5262f199, 0x99475eb9, 0x0a01b64a, 0x5dea6e6b]),
        (b"\x54\x68\x65\x20\x71\x75\x69\x63\x6b\x20\x62\x72\x6f\x77\x6e\x20\x66\x6f\x78\x20\x6a\x75\x6d\x70\x73\x20\x6f\x76\x65\x72\x20\x74\x68\x65\x20\x6c\x61\x7a\x79\x20\x64\x6f\x67\x20\xe2\x9c\x93", [0x513477fe, 0xdb55e9e8, 0x90ce0758, 0x00003fc5, 0xbfc505da, 0x669cc9ab, 0x5fb94f57, 0xc13066cb, 0xb8237837, 0x9e0c23d2, 0x6db6e331, 0x54af50d5]),
    ];

    #[test]
    fn hashes_match_twemproxy_c() {
        for (key, expect) in HASH_VECTORS {
            for (h, &e) in KeyHash::ALL.iter().zip(expect) {
                assert_eq!(h.hash(key), e, "{h} of {key:x?}");
            }
        }
    }

    /// twemproxy's points per server (its `float` expression, compiled with gcc
    /// -O2 on x86-64) for these weights.
    #[rustfmt::skip]
    const POINT_VECTORS: &[(&[u32], &[u32])] = &[
        (&[1, 1, 1, 1, 1], &[160, 160, 160, 160, 160]),
        (&[1, 1, 2, 1, 3], &[100, 100, 200, 100, 300]),
        (&[1, 1, 2, 1, 3, 1], &[104, 104, 212, 104, 320, 104]),
        (&[3, 7, 11], &[68, 160, 248]),
        (&[1, 2, 3, 4, 5, 6, 7], &[40, 80, 120, 160, 200, 240, 280]),
        (&[100, 1], &[316, 0]),
        (&[1, 1000], &[0, 316]),
        (&[5, 5, 5], &[160, 160, 160]),
        (&[1, 1, 1], &[160, 160, 160]),
        (&[7, 7, 7, 7, 7, 7, 7], &[160, 160, 160, 160, 160, 160, 160]),
    ];

    #[test]
    fn points_per_server_match_twemproxy_c() {
        for (weights, expect) in POINT_VECTORS {
            let total: u32 = weights.iter().sum();
            let n = weights.len() as u32;
            let got: heapless::Vec<u32, 8> = weights
                .iter()
                .map(|&w| ketama_points(w, total, n))
                .collect();
            assert_eq!(got.as_slice(), *expect, "{weights:?}");
        }
    }

    /// The four little-endian words of MD5("{identity}-0"), from twemproxy's
    /// md5_signature.
    const MD5_POINTS: &[(&[u8], [u32; 4])] = &[
        (
            b"127.0.0.1:22122-0",
            [0x5ed83cd8, 0x029a9152, 0xaf45e36b, 0x720a74b0],
        ),
        (
            b"cache-a-0",
            [0x02f1ae2a, 0x20db8069, 0x5341bc30, 0xc7da8fe7],
        ),
        (
            b"10.0.0.1-0",
            [0x2194783c, 0x36d6a85b, 0xf1edf592, 0x40a9b8cf],
        ),
    ];

    #[test]
    fn first_digest_points() {
        for (identity, words) in MD5_POINTS {
            let mut pool: Ketama<2, 512> = Ketama::new(KeyHash::Md5);
            pool.add(&identity[..identity.len() - 2], 1).unwrap();
            for w in words {
                assert!(pool.points().iter().any(|p| p.value == *w), "{identity:?}");
            }
            assert_eq!(pool.points().len(), 160);
        }
    }

    #[test]
    fn server_lines_split_as_twemproxy() {
        let s = ServerLine::parse(b"127.0.0.1:11211:1").unwrap();
        assert_eq!(
            (s.identity(), s.label(), s.weight),
            (&b"127.0.0.1"[..], &b"127.0.0.1:11211"[..], 1)
        );
        let s = ServerLine::parse(b"127.0.0.1:022122:3").unwrap();
        assert_eq!((s.identity(), s.port), (&b"127.0.0.1:022122"[..], 22122));
        let s = ServerLine::parse(b"10.0.0.2:11211:2 cache-b").unwrap();
        assert_eq!(
            (s.identity(), s.label()),
            (&b"cache-b"[..], &b"cache-b"[..])
        );
        let s = ServerLine::parse(b"::1:6379:1").unwrap();
        assert_eq!((s.host, s.identity()), (&b"::1"[..], &b"::1:6379"[..]));
        let s = ServerLine::parse(b"/tmp/mc.sock:2").unwrap();
        assert_eq!(
            (s.identity(), s.label(), s.port),
            (&b"/tmp/mc.sock:"[..], &b"/tmp/mc.sock"[..], 0)
        );
        for (bad, e) in [
            (&b"host:1"[..], ServerLineError::Format),
            (b"host", ServerLineError::Format),
            (b"host:11211:0", ServerLineError::ZeroWeight),
            (b"host:11211:x", ServerLineError::BadWeight),
            (b"host:11211:", ServerLineError::BadWeight),
            (b"host:0:1", ServerLineError::BadPort),
            (b"host:65536:1", ServerLineError::BadPort),
            (b"host:11211:1 ", ServerLineError::EmptyName),
            (b"host:11211:1 a b", ServerLineError::BadWeight),
            (
                b"host:11211:99999999999999999999",
                ServerLineError::BadWeight,
            ),
        ] {
            assert_eq!(ServerLine::parse(bad), Err(e), "{bad:?}");
        }
    }

    #[test]
    fn hash_tags() {
        assert_eq!(hash_tag(b"user:{42}:name", *b"{}"), b"42");
        assert_eq!(hash_tag(b"user:{}:name", *b"{}"), b"user:{}:name");
        assert_eq!(hash_tag(b"user:{42", *b"{}"), b"user:{42");
        assert_eq!(hash_tag(b"a}{b}", *b"{}"), b"b");
        assert_eq!(hash_tag(b"x:ab:y", *b"::"), b"ab");
        let mut pool: Ketama<4, 640> = Ketama::new(KeyHash::Murmur);
        for n in [&b"a"[..], b"b", b"c"] {
            pool.add(n, 1).unwrap();
        }
        pool.set_hash_tag(Some(*b"{}"));
        for k in 0..200u32 {
            let mut key = [0u8; 16];
            let n = point_input(&mut [0; MAX_POINT_INPUT], b"", k);
            key[..4].copy_from_slice(b"{t}-");
            key[4..4 + n].fill(b'z');
            assert_eq!(pool.server_for(&key[..4 + n]), pool.server_for(b"t"));
        }
    }

    #[test]
    fn dispatch_and_edges() {
        let mut pool: Ketama<3, 480, 8> = Ketama::new(KeyHash::Fnv1a64);
        assert_eq!(pool.server_for(b"k"), None);
        assert_eq!(pool.dispatch(5), None);
        pool.add(b"one", 1).unwrap();
        assert_eq!(pool.server_for(b"k"), Some(0));
        pool.add(b"two", 3).unwrap();
        assert_eq!(pool.points().len(), 80 + 240);
        assert!(pool.points().windows(2).all(|w| w[0] <= w[1]));
        let first = pool.points()[0];
        let last = pool.points()[pool.points().len() - 1];
        assert_eq!(pool.dispatch(first.value), Some(usize::from(first.server)));
        assert_eq!(pool.dispatch(0), Some(usize::from(first.server)));
        assert_eq!(pool.dispatch(last.value), Some(usize::from(last.server)));
        if last.value < u32::MAX {
            assert_eq!(
                pool.dispatch(last.value + 1),
                Some(usize::from(first.server))
            );
        }
        // The empty key hashes to 0.
        assert_eq!(pool.server_for(b""), pool.dispatch(0));
        assert_eq!(pool.add(b"two", 1), Err(KetamaError::DuplicateName));
        assert_eq!(pool.add(b"", 1), Err(KetamaError::BadName));
        assert_eq!(pool.add(b"123456789", 1), Err(KetamaError::BadName));
        assert_eq!(pool.add(b"x", 0), Err(KetamaError::ZeroWeight));
        assert_eq!(pool.add(b"x", u32::MAX), Err(KetamaError::WeightOverflow));
        // 3 servers of weight 1, 3, 1 need 96 + 288 + 96 = 480 points: fits.
        pool.add(b"three", 1).unwrap();
        assert_eq!(pool.add(b"four", 1), Err(KetamaError::Full));
        pool.remove(0).unwrap();
        assert_eq!(pool.name(0), Some(&b"two"[..]));
        assert_eq!(
            pool.remove(2),
            Err(KetamaError::Unknown(UnknownBackend(BackendId(2))))
        );
        let mut small: Ketama<4, 300> = Ketama::new(KeyHash::Md5);
        small.add(b"a", 1).unwrap();
        assert_eq!(small.add(b"b", 1), Err(KetamaError::NoRoom));
        assert_eq!(small.len(), 1);
        assert_eq!(small.points().len(), 160);
    }

    #[test]
    fn adding_a_server_moves_keys_only_to_it() {
        let mut pool: Ketama<8, 1280> = Ketama::new(KeyHash::Md5);
        for n in [&b"a:1"[..], b"b:1", b"c:1", b"d:1", b"e:1"] {
            pool.add(n, 1).unwrap();
        }
        let before: heapless::Vec<usize, 1000> = (0..1000u32)
            .map(|k| pool.server_for(&k.to_le_bytes()).unwrap())
            .collect();
        pool.add(b"f:1", 1).unwrap();
        for (k, &b) in (0..1000u32).zip(&before) {
            let a = pool.server_for(&k.to_le_bytes()).unwrap();
            assert!(a == b || a == 5);
        }
    }

    #[test]
    fn add_many_equals_one_by_one() {
        let names: Vec<Vec<u8>> = (0..40u32)
            .map(|i| format!("10.0.{}.{}:11211", i / 7, i).into_bytes())
            .collect();
        let servers: Vec<(&[u8], u32)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_slice(), (i % 3 + 1) as u32))
            .collect();
        let mut one: Box<Ketama<64, 10_240>> = Box::new(Ketama::new(KeyHash::Md5));
        for &(n, w) in &servers {
            one.add(n, w).unwrap();
        }
        // All at once, and in two batches on top of a non-empty pool.
        let mut all: Box<Ketama<64, 10_240>> = Box::new(Ketama::new(KeyHash::Md5));
        all.add_many(&servers).unwrap();
        let mut two: Box<Ketama<64, 10_240>> = Box::new(Ketama::new(KeyHash::Md5));
        two.add(servers[0].0, servers[0].1).unwrap();
        two.add_many(&servers[1..25]).unwrap();
        two.add_many(&servers[25..]).unwrap();
        for pool in [&all, &two] {
            assert_eq!(pool.points(), one.points());
            assert_eq!(pool.len(), one.len());
            for i in 0..servers.len() {
                assert_eq!(pool.name(i), one.name(i));
                assert_eq!(pool.weight(i), one.weight(i));
            }
        }
        assert_eq!(all.add_many(&[]), Ok(()));
        assert_eq!(all.points(), one.points());
    }

    #[test]
    fn add_many_errors_name_the_server_and_change_nothing() {
        let mut pool: Ketama<4, 640, 8> = Ketama::new(KeyHash::Fnv1a64);
        pool.add(b"a", 1).unwrap();
        let before = pool.points().to_vec();
        type Batch<'a> = &'a [(&'a [u8], u32)];
        let cases: [(Batch<'_>, (usize, KetamaError)); 7] = [
            (&[(b"b", 1), (b"c", 0)], (1, KetamaError::ZeroWeight)),
            (&[(b"b", 1), (b"a", 1)], (1, KetamaError::DuplicateName)),
            (&[(b"b", 1), (b"b", 1)], (1, KetamaError::DuplicateName)),
            (&[(b"", 1)], (0, KetamaError::BadName)),
            (&[(b"b", 1), (b"123456789", 1)], (1, KetamaError::BadName)),
            (
                &[(b"b", 1), (b"c", 1), (b"d", 1), (b"e", 1)],
                (3, KetamaError::Full),
            ),
            (&[(b"b", u32::MAX)], (0, KetamaError::WeightOverflow)),
        ];
        for (batch, err) in cases {
            let (index, error) = err;
            assert_eq!(
                pool.add_many(batch),
                Err(BatchError { index, error }),
                "{batch:?}"
            );
            assert_eq!(pool.len(), 1);
            assert_eq!(pool.points(), &before[..]);
        }
        let mut small: Ketama<4, 300> = Ketama::new(KeyHash::Md5);
        assert_eq!(
            small.add_many(&[(b"a", 1), (b"b", 1)]),
            Err(BatchError {
                index: 1,
                error: KetamaError::NoRoom
            })
        );
        assert!(small.is_empty() && small.points().is_empty());
    }

    #[test]
    fn names_round_trip() {
        for h in KeyHash::ALL {
            assert_eq!(h.name().parse::<KeyHash>(), Ok(h));
        }
        assert_eq!("FNV1A_64".parse::<KeyHash>(), Err(UnknownKeyHash));
        assert_eq!(KeyHash::default(), KeyHash::Fnv1a64);
    }

    #[test]
    fn point_input_formats_and_cuts() {
        let mut buf = [0u8; MAX_POINT_INPUT];
        let n = point_input(&mut buf, b"10.0.0.1:11212", 39);
        assert_eq!(&buf[..n], b"10.0.0.1:11212-39");
        let n = point_input(&mut buf, b"a", 0);
        assert_eq!(&buf[..n], b"a-0");
        let n = point_input(&mut buf, b"b", u32::MAX);
        assert_eq!(&buf[..n], b"b-4294967295");
        let long = [b'x'; 300];
        assert_eq!(point_input(&mut buf, &long, 7), MAX_POINT_INPUT);
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    extern crate std;

    /// This thread's CPU time (wall time is meaningless on a loaded machine).
    struct Cpu(u64);
    impl Cpu {
        fn now() -> Self {
            let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
            Cpu(s.split_whitespace().next().unwrap().parse().unwrap())
        }
        fn elapsed(&self) -> std::time::Duration {
            std::time::Duration::from_nanos(Self::now().0 - self.0)
        }
    }

    #[test]
    #[ignore = "timing only: cargo test --release -p chring --lib ketama_timing -- --ignored --nocapture"]
    fn ketama_timing() {
        let names: std::vec::Vec<std::string::String> = (0..1024)
            .map(|i| std::format!("10.0.{}.{}:11211", i / 256, i % 256))
            .collect();
        let servers: std::vec::Vec<(&[u8], u32)> =
            names.iter().map(|n| (n.as_bytes(), 1)).collect();
        let mut pool: std::boxed::Box<Ketama<1024, { 160 * 1024 }>> =
            std::boxed::Box::new(Ketama::new(KeyHash::Fnv1a64));
        for _ in 0..3 {
            pool.clear();
            let t = Cpu::now();
            pool.add_many(&servers).unwrap();
            std::println!("add_many: {:?}", t.elapsed());
            let t = Cpu::now();
            pool.rebuild();
            std::println!("  of which rebuild: {:?}", t.elapsed());
        }
        let t = Cpu::now();
        let mut input = [0u8; MAX_POINT_INPUT];
        let mut x = 0u8;
        for s in &names {
            for i in 0..40 {
                let len = point_input(&mut input, s.as_bytes(), i);
                x ^= md5_digest(&[&input[..len]])[0];
            }
        }
        std::println!("40960 md5: {:?} {x}", t.elapsed());
        let mut pts = pool.points.clone();
        let mut r = 1u32;
        for p in pts.iter_mut() {
            r = r.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            p.value ^= r;
        }
        let t = Cpu::now();
        pts.sort_unstable();
        std::println!("sort: {:?}", t.elapsed());
        assert!(pts.windows(2).all(|w| w[0] <= w[1]));
    }
}
