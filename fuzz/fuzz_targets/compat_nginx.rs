//! `compat::nginx` against a naive reference written here from nginx 1.22's
//! `ngx_http_upstream_hash_module.c`: a bitwise CRC-32, a `Vec` continuum
//! sorted and deduplicated by hash, a linear scan for the first point at or
//! after the key's hash, up to 20 more points past `down` servers; and plain
//! `hash $key;` (Cache::Memcached's rehash loop) over the weight list.
//!
//! Input: a list of servers (address bytes, weight, down) added in order, then
//! keys; every `add` result, every key's server and every `lookup_hash` must
//! agree with the reference.
#![no_main]

use arbitrary::Arbitrary;
use chring::compat::nginx::{NginxAddError, NginxConsistent, NginxModulo};
use libfuzzer_sys::fuzz_target;

const S: usize = 6;
const P: usize = 160 * 12;

#[derive(Debug, Arbitrary)]
struct Server {
    address: Address,
    weight: u8,
    down: bool,
}

#[derive(Debug, Arbitrary)]
enum Address {
    HostPort(u8, u16),
    Unix(Vec<u8>),
    Bytes(Vec<u8>),
}

impl Address {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Address::HostPort(h, p) => format!("10.0.0.{}:{}", h % 8, p % 4 + 8080).into_bytes(),
            Address::Unix(p) => [b"unix:".as_slice(), p].concat(),
            Address::Bytes(b) => b.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    servers: Vec<Server>,
    keys: Vec<Vec<u8>>,
    hashes: Vec<u32>,
}

/// CRC-32 (IEEE 802.3, reflected, as `ngx_crc32_long`), one bit at a time.
fn crc32_update(mut crc: u32, bytes: &[u8]) -> u32 {
    crc = !crc;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// CRC-32 of the concatenation of `parts`.
fn crc32(parts: &[&[u8]]) -> u32 {
    // The reflected CRC can be chained by feeding the complement back in.
    parts.iter().fold(0, |crc, p| crc32_update(crc, p))
}

/// nginx's split of a server address into host and port (`unix:` has no port).
fn host_port(addr: &[u8]) -> (&[u8], &[u8]) {
    if addr.len() >= 5 && addr[..5].eq_ignore_ascii_case(b"unix:") {
        return (&addr[5..], b"");
    }
    match addr.iter().rposition(|&b| b == b':') {
        Some(c) if addr[c + 1..].iter().all(u8::is_ascii_digit) => (&addr[..c], &addr[c + 1..]),
        _ => (addr, b""),
    }
}

struct Reference {
    /// (weight, down, host, port)
    servers: Vec<(u32, bool, Vec<u8>, Vec<u8>)>,
    points: Vec<(u32, usize)>,
}

impl Reference {
    fn base(host: &[u8], port: &[u8]) -> u32 {
        crc32(&[host, &[0], port])
    }

    fn add(&mut self, addr: &[u8], weight: u32) -> Result<usize, NginxAddError> {
        if weight == 0 {
            return Err(NginxAddError::ZeroWeight);
        }
        if self.servers.len() >= S {
            return Err(NginxAddError::Full);
        }
        let (host, port) = host_port(addr);
        let base = Self::base(host, port);
        if self.servers.iter().any(|s| Self::base(&s.2, &s.3) == base) {
            return Err(NginxAddError::Duplicate);
        }
        if self.points.len() + 160 * weight as usize > P {
            return Err(NginxAddError::NoRoom);
        }
        let index = self.servers.len();
        let mut prev = 0u32;
        for _ in 0..160 * weight {
            prev = crc32(&[host, &[0], port, &prev.to_le_bytes()]);
            self.points.push((prev, index));
        }
        self.points.sort();
        self.points.dedup_by_key(|p| p.0);
        self.servers
            .push((weight, false, host.to_vec(), port.to_vec()));
        Ok(index)
    }

    fn lookup_hash(&self, hash: u32) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self
            .points
            .iter()
            .position(|p| p.0 >= hash)
            .unwrap_or(self.points.len());
        (0..=20)
            .map(|t| self.points[(start + t) % self.points.len()].1)
            .find(|&s| !self.servers[s].1)
    }

    fn lookup(&self, key: &[u8]) -> Option<usize> {
        match self.servers.len() {
            0 => None,
            _ if key.is_empty() => None,
            1 => (!self.servers[0].1).then_some(0),
            _ => self.lookup_hash(crc32(&[key])),
        }
    }

    /// `hash $key;`: Cache::Memcached's rehash loop over the weight list.
    fn modulo(&self, key: &[u8]) -> Option<usize> {
        let total: u32 = self.servers.iter().map(|s| s.0).sum();
        if self.servers.is_empty() || key.is_empty() {
            return None;
        }
        if self.servers.len() == 1 {
            return (!self.servers[0].1).then_some(0);
        }
        let mut acc = 0u32;
        for rehash in 0..=20u32 {
            let prefix = if rehash == 0 {
                String::new()
            } else {
                rehash.to_string()
            };
            acc = acc.wrapping_add((crc32(&[prefix.as_bytes(), key]) >> 16) & 0x7fff);
            let mut w = acc % total;
            let i = self
                .servers
                .iter()
                .position(|s| {
                    let hit = w < s.0;
                    w = w.saturating_sub(s.0);
                    hit
                })
                .expect("w < total");
            if !self.servers[i].1 {
                return Some(i);
            }
        }
        None
    }
}

fuzz_target!(|input: Input| {
    let mut up: NginxConsistent<S, P> = NginxConsistent::new();
    let mut modulo: NginxModulo<S> = NginxModulo::new();
    let mut r = Reference {
        servers: Vec::new(),
        points: Vec::new(),
    };
    for s in input.servers.iter().take(8) {
        let addr = s.address.bytes();
        let w = u32::from(s.weight % 5);
        let got = up.add(&addr, w);
        assert_eq!(got, r.add(&addr, w), "add({addr:?}, {w})");
        if let Ok(i) = got {
            assert_eq!(modulo.add(w), Ok(i), "modulo add");
            if s.down {
                up.set_down(i, true).expect("known index");
                modulo.set_down(i, true).expect("known index");
                r.servers[i].1 = true;
            }
        }
    }
    assert_eq!(up.len(), r.servers.len());
    assert_eq!(up.points(), r.points.len(), "distinct points");
    assert!(up.set_down(r.servers.len(), true).is_err());
    for key in input.keys.iter().take(64) {
        assert_eq!(
            up.lookup(key),
            r.lookup(key),
            "hash consistent: key {key:?}"
        );
        assert_eq!(modulo.lookup(key), r.modulo(key), "hash: key {key:?}");
    }
    for &h in input.hashes.iter().take(64) {
        assert_eq!(up.lookup_hash(h), r.lookup_hash(h), "lookup_hash({h:#x})");
    }
});
