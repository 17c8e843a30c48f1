//! The ketama continuum: points per server, the MD5 points, the lookup.

use core::fmt;

use super::super::util::decimal;
use super::hash::md5_digest;
use super::pool::{Server, pool_accessors, unknown_index};
use super::{KeyHash, MAX_POINT_INPUT, POINTS_PER_HASH, POINTS_PER_SERVER, hash_tag};
use crate::fleet::{BatchError, UnknownBackend};
use md5x4::{Blocks, LANES, MAX_ONE_BLOCK};

mod md5x4;

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
    /// No server has this index (the index, as a [`BackendId`](crate::BackendId); indexes past
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

    pool_accessors!();

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

    /// Adds a server with this identity ([`ServerLine::identity`](super::ServerLine::identity)) and weight
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
            return Err(unknown_index(index).into());
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

    /// Recomputes the continuum from the servers: `40 x servers` MD5 digests
    /// (four at a time, see [`md5x4`]) and a sort ([`sort_points`]).
    fn rebuild(&mut self) {
        self.points.clear();
        let n = self.servers.len() as u32;
        let mut input = [0u8; MAX_POINT_INPUT];
        let mut blocks = Blocks::new();
        let points = &mut self.points;
        for (index, s) in self.servers.iter().enumerate() {
            let count = ketama_points(s.weight, self.total_weight, n) / POINTS_PER_HASH;
            let server = index as u16;
            // `"{name}-"` once per server; each point input appends its digits.
            let prefix = point_input(&mut input, &s.name, 0).saturating_sub(1);
            let one_block = prefix + 10 <= MAX_ONE_BLOCK;
            let mut i = 0;
            while i < count {
                let lanes = (count - i).min(LANES as u32);
                if one_block {
                    for lane in 0..lanes {
                        let len = digits_after(&mut input, prefix, i + lane);
                        blocks.set(lane as usize, input.get(..len).unwrap_or(&[]));
                    }
                    let digests = blocks.digests();
                    for d in digests.iter().take(lanes as usize) {
                        for &value in d {
                            push_point(points, value, server);
                        }
                    }
                } else {
                    for lane in 0..lanes {
                        let len = point_input(&mut input, &s.name, i + lane);
                        let digest = md5_digest(&[input.get(..len).unwrap_or(&[])]);
                        for w in digest.chunks_exact(4) {
                            let value = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
                            push_point(points, value, server);
                        }
                    }
                }
                i += lanes;
            }
        }
        // twemproxy's qsort leaves equal positions (a 2^-32 event per pair) in
        // an unspecified order; we break ties by server index.
        sort_points(points);
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

#[inline]
fn push_point<const P: usize>(points: &mut heapless::Vec<Point, P>, value: u32, server: u16) {
    // `add_many` checked the capacity, so this cannot fail.
    let pushed = points.push(Point { value, server });
    debug_assert!(pushed.is_ok());
}

/// Writes the decimal digits of `i` into `buf` after its first `prefix` bytes
/// (`"{name}-"`, written by [`point_input`]); returns the input's length, cut
/// to [`MAX_POINT_INPUT`] as [`point_input`] cuts it.
fn digits_after(buf: &mut [u8; MAX_POINT_INPUT], prefix: usize, i: u32) -> usize {
    let mut digits = [0u8; 10];
    let d = decimal(i, &mut digits);
    let mut len = prefix;
    for (slot, &b) in buf.iter_mut().skip(prefix).zip(d) {
        *slot = b;
        len += 1;
    }
    len
}

/// Sorts the continuum by `(value, server)`, as `sort_unstable` would, with
/// fewer comparisons (each one a branch the predictor cannot learn on random
/// positions): an in-place radix pass on the top byte of `value` (American
/// flag sort: 256 counters on the stack, no scratch buffer, each point moved
/// at most once) puts every point in its 1/256th of the circle; a run of more
/// than [`RADIX_RUN`] points (1,024 servers give about 640; positions are MD5
/// output, so they spread evenly) gets a second pass on the next byte; what is
/// left is sorted by one 48-bit integer key (a few points per run).
/// *O*(n) moves plus *O*(n) small sorts, against *O*(n log n) comparisons.
fn sort_points(points: &mut [Point]) {
    let ends = flag_pass(points, 24);
    let mut start = 0;
    for &end in &ends {
        if let Some(run) = points.get_mut(start..end) {
            if run.len() > RADIX_RUN {
                let sub = flag_pass(run, 16);
                let mut s = 0;
                for &e in &sub {
                    if let Some(r) = run.get_mut(s..e) {
                        sort_run(r);
                    }
                    s = e;
                }
            } else {
                sort_run(run);
            }
        }
        start = end;
    }
}

/// Runs longer than this get a second radix pass in [`sort_points`].
const RADIX_RUN: usize = 64;

/// Sorts a run by `(value, server)` as one integer key.
fn sort_run(run: &mut [Point]) {
    run.sort_unstable_by_key(|p| (u64::from(p.value) << 16) | u64::from(p.server));
}

/// One in-place radix pass (American flag sort) on the byte of `value` at
/// bit `shift`: afterwards digit `d`'s points are `points[ends[d - 1]..ends[d]]`
/// (from 0 for `d = 0`). Returns `ends`.
fn flag_pass(points: &mut [Point], shift: u32) -> [usize; 256] {
    let digit = |p: &Point| usize::from((p.value >> shift) as u8);
    let mut ends = [0usize; 256];
    for p in points.iter() {
        if let Some(c) = ends.get_mut(digit(p)) {
            *c += 1;
        }
    }
    // Running sums: `heads[d]..ends[d]` is digit `d`'s run still to fill.
    let mut heads = [0usize; 256];
    let mut sum = 0;
    for (h, e) in heads.iter_mut().zip(ends.iter_mut()) {
        *h = sum;
        sum += *e;
        *e = sum;
    }
    for d in 0..256 {
        let end = ends.get(d).copied().unwrap_or(0);
        while let Some(&h) = heads.get(d).filter(|&&h| h < end) {
            // Carry the point at `h` to its run, swapping the displaced point
            // along, until one that belongs at `h` comes back.
            let Some(mut p) = points.get(h).copied() else {
                break;
            };
            loop {
                let t = digit(&p);
                if t == d {
                    break;
                }
                let Some(slot) = heads.get_mut(t) else { break };
                let Some(q) = points.get_mut(*slot) else {
                    break;
                };
                *slot += 1;
                p = core::mem::replace(q, p);
            }
            if let Some(q) = points.get_mut(h) {
                *q = p;
            }
            if let Some(h) = heads.get_mut(d) {
                *h += 1;
            }
        }
    }
    ends
}

/// Writes `"{name}-{i}"` into `buf`, cut to [`MAX_POINT_INPUT`] bytes as
/// twemproxy's `snprintf` cuts it; returns its length.
pub(super) fn point_input(buf: &mut [u8; MAX_POINT_INPUT], name: &[u8], i: u32) -> usize {
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

    /// The continuum as the old build made it: one `md-5` digest per point
    /// input, `sort_unstable` on `Point`.
    fn reference<const B: usize, const P: usize, const N: usize>(
        k: &Ketama<B, P, N>,
    ) -> Vec<Point> {
        let n = k.len() as u32;
        let mut pts = Vec::new();
        let mut input = [0u8; MAX_POINT_INPUT];
        for (index, s) in k.servers.iter().enumerate() {
            let count = ketama_points(s.weight, k.total_weight, n) / POINTS_PER_HASH;
            for i in 0..count {
                let len = point_input(&mut input, &s.name, i);
                let d = md5_digest(&[&input[..len]]);
                for w in d.chunks_exact(4) {
                    pts.push(Point {
                        value: u32::from_le_bytes([w[0], w[1], w[2], w[3]]),
                        server: index as u16,
                    });
                }
            }
        }
        pts.sort_unstable();
        pts
    }

    #[test]
    fn continuum_equals_one_digest_at_a_time() {
        // Short names (the four-lane path), names too long for one MD5 block
        // (the `md-5` path), and weights that leave 1 to 3 digests over.
        let names: Vec<Vec<u8>> = (0..40)
            .map(|i| match i % 4 {
                0 => format!("10.0.{i}.1:11211").into_bytes(),
                1 => format!("server-{i}").into_bytes(),
                2 => vec![b'x'; 44 + i % 13],
                _ => format!("{}-{i}", "n".repeat(60)).into_bytes(),
            })
            .collect();
        let servers: Vec<(&[u8], u32)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_slice(), 1 + (i as u32 * 7) % 5))
            .collect();
        let mut k: Box<Ketama<64, { 160 * 64 * 5 }, 80>> = Box::new(Ketama::new(KeyHash::Md5));
        k.add_many(&servers).unwrap();
        assert_eq!(k.points(), &reference(&k)[..]);
        k.remove(3).unwrap();
        assert_eq!(k.points(), &reference(&k)[..]);
    }

    #[test]
    fn sort_points_equals_sort_unstable() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut pts: Vec<Point> = (0..60_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Some equal positions, to check the tie order.
                let value = if i % 50 == 0 { 0x8000_0000 } else { x as u32 };
                Point {
                    value,
                    server: (x >> 40) as u16 % 300,
                }
            })
            .collect();
        let mut want = pts.clone();
        want.sort_unstable();
        sort_points(&mut pts);
        assert_eq!(pts, want);
        let mut empty: [Point; 0] = [];
        sort_points(&mut empty);
    }
}
