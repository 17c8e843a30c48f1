//! `compat::twemproxy` (ketama) against a naive reference written here from
//! twemproxy 0.5's `nc_ketama.c`: per server `floorf(pct * 160 / 4 * n +
//! 1e-10) * 4` points, four per MD5 digest of `"{identity}-{i}"` (cut at 272
//! bytes, as chring documents), an MD5 from another crate (`md5`, not chring's
//! `md-5`), a `Vec` continuum sorted by (value, server) and a linear scan for
//! the first point at or after the key's hash (wrapping).
//!
//! Input: server lines (`host:port:weight [name]`, arbitrary bytes too) parsed
//! with `ServerLine::parse`, then add / remove / key operations on a pool;
//! every result, the continuum and every key's server must agree.
#![no_main]

use arbitrary::Arbitrary;
use chring::compat::twemproxy::{Ketama, KetamaError, KeyHash, ServerLine};
use chring::{BackendId, UnknownBackend};
use libfuzzer_sys::fuzz_target;

const B: usize = 8;
const P: usize = 160 * B;
const N: usize = 272;
const HASHES: [KeyHash; 12] = [
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

#[derive(Debug, Arbitrary)]
enum Line {
    /// `10.0.0.H:PORT:W [name]`
    Built {
        host: u8,
        port: u16,
        weight: u8,
        name: Option<u8>,
    },
    /// A UNIX socket path with a weight.
    Socket(u8, u8),
    Bytes(Vec<u8>),
}

impl Line {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Line::Built {
                host,
                port,
                weight,
                name,
            } => {
                let port = if port % 3 == 0 {
                    11211
                } else {
                    11200 + port % 16
                };
                let mut s = format!("10.0.0.{}:{port}:{}", host % 8, weight % 6);
                if let Some(n) = name {
                    s.push_str(&format!(" server-{}", n % 8));
                }
                s.into_bytes()
            }
            Line::Socket(p, w) => format!("/tmp/mc-{}.sock:{}", p % 4, w % 4).into_bytes(),
            Line::Bytes(b) => b.clone(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Add(Line),
    AddLong(u8, u8),
    Remove(u8),
    Key(Vec<u8>),
    Hash(u32),
}

#[derive(Debug, Arbitrary)]
struct Input {
    hash: u8,
    tag: Option<[u8; 2]>,
    ops: Vec<Op>,
}

fn ketama_points(weight: u32, total: u32, servers: u32) -> u32 {
    if total == 0 {
        return 0;
    }
    let pct: f32 = weight as f32 / total as f32;
    let x: f32 = pct * 160.0 / 4.0 * servers as f32;
    let y = (f64::from(x) + 0.0000000001) as f32;
    (y.floor() * 4.0) as u32
}

#[derive(Default)]
struct Reference {
    servers: Vec<(Vec<u8>, u32)>,
    points: Vec<(u32, usize)>,
}

impl Reference {
    fn total(&self) -> u64 {
        self.servers.iter().map(|s| u64::from(s.1)).sum()
    }

    fn rebuild(&mut self) {
        let total = self.total() as u32;
        let n = self.servers.len() as u32;
        self.points.clear();
        for (index, (name, w)) in self.servers.iter().enumerate() {
            for i in 0..ketama_points(*w, total, n) / 4 {
                let mut input = [name.as_slice(), b"-", i.to_string().as_bytes()].concat();
                input.truncate(272);
                let d = md5::compute(&input).0;
                for x in 0..4 {
                    let v =
                        u32::from_le_bytes([d[4 * x], d[4 * x + 1], d[4 * x + 2], d[4 * x + 3]]);
                    self.points.push((v, index));
                }
            }
        }
        self.points.sort();
    }

    fn add(&mut self, identity: &[u8], weight: u32) -> Result<usize, KetamaError> {
        if weight == 0 {
            return Err(KetamaError::ZeroWeight);
        }
        if self.servers.iter().any(|s| s.0 == identity) {
            return Err(KetamaError::DuplicateName);
        }
        if identity.is_empty() || identity.len() > N {
            return Err(KetamaError::BadName);
        }
        if self.servers.len() == B {
            return Err(KetamaError::Full);
        }
        let total = self.total() + u64::from(weight);
        if total > u64::from(u32::MAX) {
            return Err(KetamaError::WeightOverflow);
        }
        let n = self.servers.len() as u32 + 1;
        let need: u64 = self
            .servers
            .iter()
            .map(|s| s.1)
            .chain([weight])
            .map(|w| u64::from(ketama_points(w, total as u32, n)))
            .sum();
        if need > P as u64 {
            return Err(KetamaError::NoRoom);
        }
        self.servers.push((identity.to_vec(), weight));
        self.rebuild();
        Ok(self.servers.len() - 1)
    }

    fn dispatch(&self, hash: u32) -> Option<usize> {
        let p = self
            .points
            .iter()
            .find(|p| p.0 >= hash)
            .or(self.points.first())?;
        Some(p.1)
    }

    fn server_for(&self, kh: KeyHash, tag: Option<[u8; 2]>, key: &[u8]) -> Option<usize> {
        match self.servers.len() {
            0 => None,
            1 => Some(0),
            _ => {
                let mut k = key;
                if let Some([open, close]) = tag
                    && let Some(s) = key.iter().position(|&b| b == open)
                    && let Some(e) = key[s + 1..].iter().position(|&b| b == close)
                    && e > 0
                {
                    k = &key[s + 1..s + 1 + e];
                }
                self.dispatch(if k.is_empty() { 0 } else { kh.hash(k) })
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let kh = HASHES[usize::from(input.hash) % HASHES.len()];
    let mut pool: Ketama<B, P, N> = Ketama::new(kh);
    pool.set_hash_tag(input.tag);
    let mut r = Reference::default();
    for op in input.ops.iter().take(48) {
        match op {
            Op::Add(line) => {
                let text = line.bytes();
                let Ok(sl) = ServerLine::parse(&text) else {
                    continue;
                };
                assert!(sl.weight >= 1, "parsed weight 0 from {text:?}");
                if let Some(name) = sl.name {
                    assert_eq!(sl.identity(), name);
                    assert_eq!(sl.label(), name);
                } else {
                    assert_eq!(sl.label(), sl.address);
                }
                let got = pool.add(sl.identity(), sl.weight);
                assert_eq!(got, r.add(sl.identity(), sl.weight), "add {text:?}");
            }
            Op::AddLong(len, w) => {
                // Identities near and past the 272-byte cut.
                let name = vec![b'a' + len % 26; 260 + usize::from(len % 20)];
                let w = u32::from(w % 4);
                assert_eq!(
                    pool.add(&name, w),
                    r.add(&name, w),
                    "add of {} bytes",
                    name.len()
                );
            }
            Op::Remove(i) => {
                let i = usize::from(i % 10);
                let got = pool.remove(i);
                if i < r.servers.len() {
                    assert_eq!(got, Ok(()));
                    r.servers.remove(i);
                    r.rebuild();
                } else {
                    // The index, as a backend id (saturating at u16::MAX).
                    let id = BackendId(u16::try_from(i).unwrap_or(u16::MAX));
                    assert_eq!(got, Err(KetamaError::Unknown(UnknownBackend(id))));
                }
            }
            Op::Key(k) => {
                assert_eq!(
                    pool.server_for(k),
                    r.server_for(kh, input.tag, k),
                    "key {k:?}"
                );
            }
            Op::Hash(h) => assert_eq!(pool.dispatch(*h), r.dispatch(*h), "dispatch({h:#x})"),
        }
        assert_eq!(pool.len(), r.servers.len());
        let got: Vec<(u32, usize)> = pool
            .points()
            .iter()
            .map(|p| (p.value, usize::from(p.server)))
            .collect();
        assert_eq!(got, r.points, "continuum");
        for (i, s) in r.servers.iter().enumerate() {
            assert_eq!(pool.name(i), Some(s.0.as_slice()));
            assert_eq!(pool.weight(i), Some(s.1));
        }
    }
});
