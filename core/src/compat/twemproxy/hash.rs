//! twemproxy's twelve key hashes (`hash:` in a pool) and `hash_tag`.

use core::fmt;
use core::str::FromStr;

use super::super::util::crc32_update;

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
pub(super) fn md5_digest(parts: &[&[u8]]) -> [u8; 16] {
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
