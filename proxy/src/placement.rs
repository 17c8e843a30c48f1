//! Every use of chring's placement API, in one module: building a pool's
//! placement from its servers, routing a key, marking servers down, and pricing
//! a change exactly (the fraction of the key space whose server changes).
//!
//! The rest of the proxy sees only [`Placement`] and server indexes (positions
//! in the member list the placement was built from).
//!
//! Health fallback: `ketama` and `modula` follow nutcracker (the placement is
//! rebuilt from the live servers only, as its `auto_eject_hosts` rebuilds the
//! continuum); chring's strategies keep every server and mark the dead ones down
//! (`set_up`), so only the dead servers' keys move, to chring's fallback
//! (the ring's successor, Maglev's refilled table, jump's retry, the next
//! rendezvous score).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use chring::compat::twemproxy::{Ketama, KeyHash, Modula, hash_tag, server_order};
use chring::{
    BackendId, BoundedLoad, HealthScore, Jump, LeastConn, LoadAware, Maglev, Membership, Outcome,
    PeakEwma, PowerOfTwo, Rendezvous, Ring, RingConfig, RoundRobin, Strategy,
};
use chring_config::twemproxy::Distribution;

/// Most servers in a proxy pool.
pub const MAX_SERVERS: usize = 256;
/// Longest server identity (twemproxy cuts its MD5 input at 272 bytes).
pub const MAX_NAME: usize = 272;
/// Most modula slots (the total weight of a `modula` pool): keeps the exact
/// [`moves`] computation (over `lcm` of the slot counts) bounded.
pub const MAX_MODULA_SLOTS: usize = 4096;
/// chring ring points: 100 per unit of weight (chring's default).
const RING_POINTS: usize = 1 << 17;
/// Maglev table size (prime).
const MAGLEV_M: usize = 65_537;
/// Bounded loads: a server takes at most 1.25 x its fair share of requests in flight.
const BOUNDED_C: f32 = 1.25;

type KetamaP = Ketama<MAX_SERVERS, { 160 * MAX_SERVERS }, MAX_NAME>;
type ModulaP = Modula<MAX_SERVERS, MAX_MODULA_SLOTS, MAX_NAME>;
type RingP = Ring<MAX_SERVERS, RING_POINTS>;
type MaglevP = Maglev<MAX_SERVERS, MAGLEV_M>;
type JumpP = Jump<MAX_SERVERS, MAX_SERVERS>;
type RendezvousP = Rendezvous<MAX_SERVERS>;
type BoundedP = BoundedLoad<MAX_SERVERS, RING_POINTS>;
/// Seed of the load-aware balancers' random streams (two choices, ties).
const LOAD_SEED: u64 = 0x6368_7269_6e67_2d70;

/// The load-aware balancers: they pick per request (or connection) from the
/// feedback of [`LoadGuard`]s.
#[derive(Clone)]
struct Loaded {
    kind: LoadedKind,
    /// Picks so far: with [`LOAD_SEED`], the "key hash" two choices draw from.
    picks: u64,
}

// Boxed once per placement (in `Loaded`): the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum LoadedKind {
    RoundRobin(RoundRobin<MAX_SERVERS>),
    P2c(PowerOfTwo<MAX_SERVERS>),
    LeastConn(LeastConn<MAX_SERVERS>),
    PeakEwma(PeakEwma<MAX_SERVERS>),
    HealthScore(HealthScore<MAX_SERVERS>),
}

impl Loaded {
    fn new(d: Distribution) -> Option<Box<Loaded>> {
        let kind = match d {
            Distribution::RoundRobin => LoadedKind::RoundRobin(RoundRobin::new()),
            Distribution::P2c => LoadedKind::P2c(PowerOfTwo::new()),
            Distribution::LeastConn => LoadedKind::LeastConn(LeastConn::new()),
            Distribution::PeakEwma => LoadedKind::PeakEwma(PeakEwma::new().with_seed(LOAD_SEED)),
            Distribution::HealthScore => {
                LoadedKind::HealthScore(HealthScore::new().with_seed(LOAD_SEED))
            }
            _ => return None,
        };
        Some(Box::new(Loaded { kind, picks: 0 }))
    }

    fn distribution(&self) -> Distribution {
        match self.kind {
            LoadedKind::RoundRobin(_) => Distribution::RoundRobin,
            LoadedKind::P2c(_) => Distribution::P2c,
            LoadedKind::LeastConn(_) => Distribution::LeastConn,
            LoadedKind::PeakEwma(_) => Distribution::PeakEwma,
            LoadedKind::HealthScore(_) => Distribution::HealthScore,
        }
    }

    fn strategy(&mut self) -> &mut dyn Strategy {
        match &mut self.kind {
            LoadedKind::RoundRobin(s) => s,
            LoadedKind::P2c(s) => s,
            LoadedKind::LeastConn(s) => s,
            LoadedKind::PeakEwma(s) => s,
            LoadedKind::HealthScore(s) => s,
        }
    }

    /// A pick, with the clock moved to `now_us` first (peak EWMA decays by it).
    /// Two choices draw from a seeded stream (the strategies that do not use
    /// the "key hash" ignore it).
    fn pick(&mut self, now_us: u64) -> Option<BackendId> {
        if let LoadedKind::PeakEwma(p) = &mut self.kind {
            p.set_now(now_us);
        }
        self.picks = self.picks.wrapping_add(1);
        let h = chring::mix(self.picks, LOAD_SEED);
        LoadAware::pick(self.strategy(), h)
    }

    /// What [`pick`](Self::pick) would return, leaving this one untouched.
    fn clone_pick(&self, now_us: u64) -> Option<BackendId> {
        self.clone().pick(now_us)
    }
}

/// Microseconds since the first call in this process (the load-aware
/// balancers' clock).
fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let e = *EPOCH.get_or_init(Instant::now);
    u64::try_from(e.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// One member of a placement: what it hashes and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The identity (ketama hashes it; chring's strategies use it as the name).
    pub identity: Vec<u8>,
    /// Weight, >= 1.
    pub weight: u32,
}

enum Kind {
    Ketama(Box<KetamaP>),
    /// The pool and the member index of each of its servers (nutcracker's
    /// order: sorted by identity).
    Modula(Box<ModulaP>, Vec<usize>),
    Random(AtomicU64),
    Ring(Box<RingP>),
    Maglev(Box<MaglevP>),
    Jump(Box<JumpP>),
    Rendezvous(Box<RendezvousP>),
    Bounded(Mutex<Box<BoundedP>>),
    Loaded(Mutex<Box<Loaded>>),
}

/// A pool's placement over a list of members (indexes are positions in it).
pub struct Placement {
    kind: Kind,
    hash_tag: Option<[u8; 2]>,
    members: Vec<Member>,
    up: Vec<bool>,
}

impl std::fmt::Debug for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placement")
            .field("distribution", &self.distribution().name())
            .field("members", &self.members.len())
            .finish()
    }
}

/// A request's (or connection's) hold on the server a load-aware placement
/// picked: [`finish`](Self::finish) reports how it ended; dropping the guard
/// without it reports a success.
pub struct LoadGuard {
    placement: std::sync::Arc<Placement>,
    id: BackendId,
    started: Instant,
    done: bool,
}

impl std::fmt::Debug for LoadGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoadGuard({})", self.id.0)
    }
}

impl LoadGuard {
    /// Reports the end of the request or connection: `ok` is whether it
    /// succeeded (for HTTP, a status below 500); the latency is the time since
    /// the pick.
    pub fn finish(mut self, ok: bool) {
        self.report(ok);
    }

    fn report(&mut self, ok: bool) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let latency = u32::try_from(self.started.elapsed().as_micros()).unwrap_or(u32::MAX);
        let outcome = Outcome::new(latency, ok, now_us());
        // The server may have left the placement since: nothing to report then.
        match &self.placement.kind {
            Kind::Bounded(m) => {
                let mut b = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = b.finish(self.id, outcome);
            }
            Kind::Loaded(m) => {
                let mut l = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let _ = LoadAware::finish(l.strategy(), self.id, outcome);
            }
            _ => {}
        }
    }
}

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.report(true);
    }
}

fn id(i: usize) -> BackendId {
    BackendId(u16::try_from(i).unwrap_or(u16::MAX))
}

impl Placement {
    /// Builds the placement of `members` (in order) with every member up.
    /// Runs on its own large stack (the tables are built in place).
    ///
    /// # Errors
    /// The strategy's refusal (too many servers, duplicate identity, weight),
    /// as one line naming the member.
    pub fn build(
        distribution: Distribution,
        hash: KeyHash,
        tag: Option<[u8; 2]>,
        members: Vec<Member>,
    ) -> Result<Placement, String> {
        let run = move || Self::build_here(distribution, hash, tag, members);
        chring_config::on_big_stack(run).map_err(|e| format!("cannot build placement: {e}"))?
    }

    fn build_here(
        distribution: Distribution,
        hash: KeyHash,
        tag: Option<[u8; 2]>,
        members: Vec<Member>,
    ) -> Result<Placement, String> {
        if members.len() > MAX_SERVERS {
            return Err(format!("{} servers; at most {MAX_SERVERS}", members.len()));
        }
        let name = |i: usize| {
            members.get(i).map_or_else(String::new, |m| {
                String::from_utf8_lossy(&m.identity).into_owned()
            })
        };
        let named: Vec<(BackendId, &[u8], u32)> = members
            .iter()
            .enumerate()
            .map(|(i, m)| (id(i), &m.identity[..], m.weight))
            .collect();
        let add_all = |s: &mut dyn Strategy| -> Result<(), String> {
            for &(i, n, w) in &named {
                s.add(i, n, w)
                    .map_err(|e| format!("server '{}': {e}", name(usize::from(i.0))))?;
            }
            Ok(())
        };
        let kind = match distribution {
            Distribution::Ketama => {
                let mut k = Box::new(KetamaP::new(hash));
                k.set_hash_tag(tag);
                let list: Vec<(&[u8], u32)> = named.iter().map(|&(_, n, w)| (n, w)).collect();
                k.add_many(&list)
                    .map_err(|e| format!("server '{}': {}", name(e.index), e.error))?;
                Kind::Ketama(k)
            }
            Distribution::Modula => {
                let mut m = Box::new(ModulaP::new(hash));
                m.set_hash_tag(tag);
                let mut order: Vec<usize> = (0..named.len()).collect();
                order.sort_by(|&a, &b| server_order(named[a].1, named[b].1));
                for &i in &order {
                    let (_, n, w) = named[i];
                    m.add(n, w)
                        .map_err(|e| format!("server '{}': {e}", name(i)))?;
                }
                Kind::Modula(m, order)
            }
            Distribution::Random => Kind::Random(AtomicU64::new(0x9e37_79b9_7f4a_7c15)),
            Distribution::Ring => {
                let mut r = Box::new(RingP::new(RingConfig::default()).map_err(|e| e.to_string())?);
                r.add_many(&named)
                    .map_err(|e| format!("server '{}': {}", name(e.index), e.error))?;
                Kind::Ring(r)
            }
            Distribution::Maglev => {
                let mut m = Box::new(MaglevP::new());
                m.add_many(&named)
                    .map_err(|e| format!("server '{}': {}", name(e.index), e.error))?;
                Kind::Maglev(m)
            }
            Distribution::Jump => {
                let mut j = Box::new(JumpP::new());
                add_all(&mut *j)?;
                Kind::Jump(j)
            }
            Distribution::Rendezvous => {
                let mut r = Box::new(RendezvousP::new());
                add_all(&mut *r)?;
                Kind::Rendezvous(r)
            }
            Distribution::Bounded => {
                let mut b = Box::new(
                    BoundedP::new(RingConfig::default(), BOUNDED_C).map_err(|e| e.to_string())?,
                );
                add_all(&mut *b)?;
                Kind::Bounded(Mutex::new(b))
            }
            d => {
                let mut l = Loaded::new(d).ok_or_else(|| format!("distribution {}", d.name()))?;
                add_all(l.strategy())?;
                Kind::Loaded(Mutex::new(l))
            }
        };
        let up = vec![true; members.len()];
        Ok(Placement {
            kind,
            hash_tag: tag,
            members,
            up,
        })
    }

    /// The distribution.
    #[must_use]
    pub fn distribution(&self) -> Distribution {
        match &self.kind {
            Kind::Ketama(_) => Distribution::Ketama,
            Kind::Modula(..) => Distribution::Modula,
            Kind::Random(_) => Distribution::Random,
            Kind::Ring(_) => Distribution::Ring,
            Kind::Maglev(_) => Distribution::Maglev,
            Kind::Jump(_) => Distribution::Jump,
            Kind::Rendezvous(_) => Distribution::Rendezvous,
            Kind::Bounded(_) => Distribution::Bounded,
            Kind::Loaded(l) => l
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .distribution(),
        }
    }

    /// `true` when the health fallback rebuilds the placement from the live
    /// members (nutcracker's distributions) rather than marking them down.
    #[must_use]
    pub fn rebuilds_on_failure(distribution: Distribution) -> bool {
        distribution.is_nutcracker()
    }

    /// The members, in order.
    #[must_use]
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// A copy with member `i` marked down or up (chring's strategies; for
    /// nutcracker's distributions build from the live members instead).
    ///
    /// # Errors
    /// The strategy refused (unknown index).
    pub fn with_up(&self, ups: &[bool]) -> Result<Placement, String> {
        let mut p = Self::build(
            self.distribution(),
            self.key_hash(),
            self.hash_tag,
            self.members.clone(),
        )?;
        for (i, &u) in ups.iter().enumerate() {
            if u {
                continue;
            }
            if let Some(x) = p.up.get_mut(i) {
                *x = false;
            }
            let r = match &mut p.kind {
                Kind::Ring(r) => r.set_up(id(i), false),
                Kind::Maglev(m) => m.set_up(id(i), false),
                Kind::Jump(j) => j.set_up(id(i), false),
                Kind::Rendezvous(r) => r.set_up(id(i), false),
                Kind::Bounded(b) => b
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .set_up(id(i), false),
                Kind::Loaded(l) => l
                    .get_mut()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .strategy()
                    .set_up(id(i), false),
                Kind::Ketama(_) | Kind::Modula(..) | Kind::Random(_) => Ok(()),
            };
            r.map_err(|e| e.to_string())?;
        }
        Ok(p)
    }

    fn key_hash(&self) -> KeyHash {
        match &self.kind {
            Kind::Ketama(k) => k.key_hash(),
            Kind::Modula(m, _) => m.key_hash(),
            _ => KeyHash::default(),
        }
    }

    fn chring_hash(&self, key: &[u8]) -> u64 {
        let key = match self.hash_tag {
            Some(t) => hash_tag(key, t),
            None => key,
        };
        chring::hash(key)
    }

    /// The member `key` goes to (health considered: down members are skipped
    /// by chring's strategies; nutcracker's are built from live members only).
    /// `None` when no member can take it. Pure: no load is recorded.
    #[must_use]
    pub fn lookup(&self, key: &[u8]) -> Option<usize> {
        let i = match &self.kind {
            Kind::Ketama(k) => return k.server_for(key),
            Kind::Modula(m, order) => return order.get(m.server_for(key)?).copied(),
            Kind::Random(seed) => {
                let n = self.members.len() as u64;
                if n == 0 {
                    return None;
                }
                let x = chring::mix(seed.fetch_add(1, Relaxed), 0x5bd1_e995);
                return usize::try_from(x % n).ok();
            }
            Kind::Ring(r) => r.pick(self.chring_hash(key)),
            Kind::Maglev(m) => m.pick(self.chring_hash(key)),
            Kind::Jump(j) => j.pick(self.chring_hash(key)),
            Kind::Rendezvous(r) => r.pick(self.chring_hash(key)),
            Kind::Bounded(b) => {
                let b = b.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                b.ring().pick(self.chring_hash(key))
            }
            // What the next request would get; no load is recorded.
            Kind::Loaded(l) => l
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone_pick(now_us()),
        }?;
        Some(usize::from(i.0))
    }

    /// [`lookup`](Self::lookup) for a request: bounded loads pick the first
    /// server under its capacity and count the request until the guard drops.
    #[must_use]
    pub fn pick(self: &std::sync::Arc<Self>, key: &[u8]) -> Option<(usize, Option<LoadGuard>)> {
        if let Kind::Bounded(b) = &self.kind {
            let h = self.chring_hash(key);
            let mut b = b.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let i = b.pick(h)?;
            b.start(i).ok()?;
            let guard = LoadGuard {
                placement: self.clone(),
                id: i,
                started: Instant::now(),
                done: false,
            };
            return Some((usize::from(i.0), Some(guard)));
        }
        if let Kind::Loaded(l) = &self.kind {
            let mut l = l.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let i = l.pick(now_us())?;
            l.strategy().start(i).ok()?;
            let guard = LoadGuard {
                placement: self.clone(),
                id: i,
                started: Instant::now(),
                done: false,
            };
            return Some((usize::from(i.0), Some(guard)));
        }
        self.lookup(key).map(|i| (i, None))
    }

    /// The pick for `key` among the members `usable` accepts, without
    /// building a placement, where the distribution allows it: the ring's
    /// first usable member clockwise from the key (what the ring with the
    /// others marked down picks), rendezvous' best-scoring usable member when
    /// at most one member is unusable (its two best scores). `None` when it
    /// cannot tell cheaply (build the placement with the others down then);
    /// `Some(None)` when no member is usable. *O*(points walked) for the ring,
    /// *O*(n) for rendezvous; no allocation.
    #[must_use]
    pub fn pick_among(&self, key: &[u8], usable: impl Fn(usize) -> bool) -> Option<Option<usize>> {
        let n = self.members.len();
        match &self.kind {
            Kind::Ring(r) => Some(
                r.replicas(self.chring_hash(key), n)
                    .map(|b| usize::from(b.0))
                    .find(|&i| usable(i)),
            ),
            Kind::Rendezvous(r) if (0..n).filter(|&i| !usable(i)).count() <= 1 => {
                let (a, b) = r.pick_two(self.chring_hash(key))?;
                Some(
                    [Some(a), b]
                        .into_iter()
                        .flatten()
                        .map(|x| usize::from(x.0))
                        .find(|&i| usable(i)),
                )
            }
            _ => None,
        }
    }

    /// Whether `members` (after a removal) keeps every remaining member's
    /// position as this placement needs: jump's buckets are positions, so only
    /// the last server can be removed (mark others down instead).
    ///
    /// # Errors
    /// The reason, as one line.
    pub fn check_removal(&self, index: usize) -> Result<(), String> {
        if matches!(self.kind, Kind::Jump(_)) && index + 1 != self.members.len() {
            return Err(
                "distribution jump: only the last server can be removed (buckets are \
                        positions); mark it DOWN instead"
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether member `i` is routed to (false past the end).
    #[must_use]
    pub fn is_up(&self, i: usize) -> bool {
        self.up.get(i).copied().unwrap_or(false)
    }

    /// `true` for a keyed distribution (all but `random` and the load-aware
    /// balancers).
    #[must_use]
    pub fn is_keyed(&self) -> bool {
        !matches!(self.kind, Kind::Random(_) | Kind::Loaded(_))
    }

    /// Arcs of the 32-bit key-hash circle: `(end, member)` sorted by end, a key
    /// whose position is in `(previous end, end]` going to the member, wrapping.
    /// `None` when the distribution has no such structure.
    fn arcs(&self) -> Option<Vec<(u32, usize)>> {
        match &self.kind {
            Kind::Ketama(k) if k.len() >= 2 => Some(
                k.points()
                    .iter()
                    .map(|p| (p.value, usize::from(p.server)))
                    .collect(),
            ),
            Kind::Ring(r) => Some(ring_arcs(r)),
            Kind::Bounded(b) => {
                let b = b.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                Some(ring_arcs(b.ring()))
            }
            _ => None,
        }
    }

    /// The owner of `n` evenly spaced positions of the 32-bit key-hash circle
    /// (the middle of each of `n` equal sectors), health ignored, for drawing
    /// the placement. Empty when the distribution has no circle (modula, jump,
    /// rendezvous, random) or with no `n`.
    #[must_use]
    pub fn sectors(&self, n: usize) -> Vec<Option<usize>> {
        if n == 0 {
            return Vec::new();
        }
        let mid = |k: usize| -> u32 {
            let start = ((k as u64) << 32) / n as u64;
            let end = ((k as u64 + 1) << 32) / n as u64;
            u32::try_from(start + (end - start) / 2).unwrap_or(u32::MAX)
        };
        if let Some(arcs) = self.arcs() {
            return (0..n).map(|k| arc_owner(&arcs, mid(k))).collect();
        }
        if let Kind::Maglev(m) = &self.kind {
            return (0..n)
                .map(|k| m.lookup(u64::from(mid(k)) << 32).map(|b| usize::from(b.0)))
                .collect();
        }
        Vec::new()
    }

    /// Share of the key space each member owns (0..=1; all 0 for `random`).
    #[must_use]
    pub fn shares(&self) -> Vec<f64> {
        let n = self.members.len();
        let mut out = vec![0.0; n];
        let full = (1u64 << 32) as f64;
        match &self.kind {
            Kind::Random(_) | Kind::Loaded(_) => {}
            _ if n == 1 => out[0] = 1.0,
            Kind::Modula(m, order) => {
                let s = m.slots();
                for &i in s {
                    let member = order.get(usize::from(i)).copied();
                    if let Some(x) = member.and_then(|i| out.get_mut(i)) {
                        *x += 1.0 / s.len() as f64;
                    }
                }
            }
            Kind::Maglev(_) => {
                for (e, owner) in self.maglev_entries().into_iter().enumerate() {
                    if let Some(x) = owner.and_then(|o| out.get_mut(o)) {
                        *x += entry_width(e) as f64 / full;
                    }
                }
            }
            Kind::Jump(_) | Kind::Rendezvous(_) => {
                let live: Vec<usize> = (0..n).filter(|&i| self.up[i]).collect();
                let total: f64 = if matches!(self.kind, Kind::Jump(_)) {
                    live.len() as f64
                } else {
                    live.iter()
                        .map(|&i| f64::from(self.members[i].weight))
                        .sum()
                };
                for &i in &live {
                    out[i] = if matches!(self.kind, Kind::Jump(_)) {
                        1.0 / total
                    } else {
                        f64::from(self.members[i].weight) / total
                    };
                }
            }
            _ => {
                if let Some(arcs) = self.arcs() {
                    for (len, owner) in arc_lengths(&arcs) {
                        if let Some(x) = out.get_mut(owner) {
                            *x += len as f64 / full;
                        }
                    }
                }
            }
        }
        out
    }

    /// The owner of every Maglev table entry (probed through the public
    /// lookup with the first key position of each entry).
    fn maglev_entries(&self) -> Vec<Option<usize>> {
        let Kind::Maglev(m) = &self.kind else {
            return Vec::new();
        };
        (0..MAGLEV_M)
            .map(|e| {
                let pos = entry_start(e);
                m.pick(pos << 32).map(|b| usize::from(b.0))
            })
            .collect()
    }
}

/// First 32-bit position of Maglev entry `e` (`reduce32(pos, M) == e`).
fn entry_start(e: usize) -> u64 {
    ((e as u64) << 32).div_ceil(MAGLEV_M as u64)
}

fn entry_width(e: usize) -> u64 {
    entry_start(e + 1) - entry_start(e)
}

fn ring_arcs(r: &RingP) -> Vec<(u32, usize)> {
    r.points().map(|(p, b)| (p, usize::from(b.0))).collect()
}

/// `(length, owner)` of every arc: `(prev, end]`, the first from 0 and the
/// wrap after the last point both belonging to the first point's owner.
fn arc_lengths(arcs: &[(u32, usize)]) -> Vec<(u64, usize)> {
    let Some(&(first, first_owner)) = arcs.first() else {
        return Vec::new();
    };
    let mut out = vec![(u64::from(first) + 1, first_owner)];
    for w in arcs.windows(2) {
        out.push((u64::from(w[1].0 - w[0].0), w[1].1));
    }
    let last = arcs.last().map_or(0, |a| a.0);
    out.push(((1u64 << 32) - 1 - u64::from(last), first_owner));
    out
}

/// The owner of 32-bit position `h` in sorted `arcs`: the first end >= `h`,
/// wrapping.
fn arc_owner(arcs: &[(u32, usize)], h: u32) -> Option<usize> {
    let i = arcs.partition_point(|a| a.0 < h);
    arcs.get(i).or_else(|| arcs.first()).map(|a| a.1)
}

/// The exact fraction of the key space whose server changes from `before` to
/// `after` (servers matched by identity). Ketama and chring's ring: every arc
/// of the 32-bit circle between consecutive points of either placement,
/// compared; modula: every residue modulo the lcm of the slot counts, weighted
/// by how many 32-bit hashes have it; Maglev: every table entry, weighted by
/// its width; jump and rendezvous move exactly the added or removed server's
/// share (by construction), computed from the weights. *O*(points) or *O*(M).
#[must_use]
pub fn moves(before: &Placement, after: &Placement) -> f64 {
    let ident = |p: &Placement, i: Option<usize>| -> Option<Vec<u8>> {
        i.and_then(|i| p.members.get(i)).map(|m| m.identity.clone())
    };
    let full = (1u64 << 32) as f64;
    let single = |p: &Placement| p.members.len() == 1 && p.is_keyed();
    match (&before.kind, &after.kind) {
        (Kind::Random(_) | Kind::Loaded(_), _) | (_, Kind::Random(_) | Kind::Loaded(_)) => 0.0,
        (Kind::Modula(a, oa_), Kind::Modula(b, ob_)) if !single(before) && !single(after) => {
            let (sa, sb) = (a.slots(), b.slots());
            let (na, nb) = (sa.len() as u64, sb.len() as u64);
            if na == 0 || nb == 0 {
                return if na == nb { 0.0 } else { 1.0 };
            }
            let l = na / gcd(na, nb) * nb;
            let mut moved = 0u64;
            for r in 0..l {
                let slot_a = sa.get((r % na) as usize).map(|&x| usize::from(x));
                let slot_b = sb.get((r % nb) as usize).map(|&x| usize::from(x));
                let oa = ident(before, slot_a.and_then(|x| oa_.get(x).copied()));
                let ob = ident(after, slot_b.and_then(|x| ob_.get(x).copied()));
                if oa != ob && r < (1 << 32) {
                    moved += ((1u64 << 32) - 1 - r) / l + 1;
                }
            }
            moved as f64 / full
        }
        (Kind::Maglev(_), Kind::Maglev(_)) => {
            let (ea, eb) = (before.maglev_entries(), after.maglev_entries());
            let mut moved = 0u64;
            for (e, (a, b)) in ea.iter().zip(&eb).enumerate() {
                if ident(before, *a) != ident(after, *b) {
                    moved += entry_width(e);
                }
            }
            moved as f64 / full
        }
        (Kind::Jump(_), Kind::Jump(_)) | (Kind::Rendezvous(_), Kind::Rendezvous(_)) => {
            // Minimal disruption: only the keys of the server that left (or
            // that the newcomer takes) move.
            let sa = before.shares();
            let sb = after.shares();
            let share_of = |p: &Placement, s: &[f64], id: &[u8]| {
                p.members
                    .iter()
                    .position(|m| m.identity == id)
                    .and_then(|i| s.get(i).copied())
                    .unwrap_or(0.0)
            };
            let mut moved = 0.0;
            for m in &before.members {
                if !after.members.iter().any(|x| x.identity == m.identity) {
                    moved += share_of(before, &sa, &m.identity);
                }
            }
            for m in &after.members {
                if !before.members.iter().any(|x| x.identity == m.identity) {
                    moved += share_of(after, &sb, &m.identity);
                }
            }
            moved.min(1.0)
        }
        _ => {
            // Arcs (ketama, ring, bounded); a one-server ketama pool takes
            // every key, so it is one arc.
            let arcs_of = |p: &Placement| -> Vec<(u32, usize)> {
                if single(p) {
                    vec![(u32::MAX, 0)]
                } else {
                    p.arcs().unwrap_or_default()
                }
            };
            let (a, b) = (arcs_of(before), arcs_of(after));
            if a.is_empty() || b.is_empty() {
                return if a.is_empty() && b.is_empty() {
                    0.0
                } else {
                    1.0
                };
            }
            let mut ends: Vec<u32> = a.iter().chain(&b).map(|x| x.0).collect();
            ends.sort_unstable();
            ends.dedup();
            let mut moved = 0u64;
            let mut prev: Option<u32> = None;
            for &e in &ends {
                let len = match prev {
                    None => u64::from(e) + 1,
                    Some(p) => u64::from(e - p),
                };
                if ident(before, arc_owner(&a, e)) != ident(after, arc_owner(&b, e)) {
                    moved += len;
                }
                prev = Some(e);
            }
            let last = ends.last().copied().unwrap_or(0);
            let wrap = (1u64 << 32) - 1 - u64::from(last);
            if wrap > 0 && ident(before, arc_owner(&a, 0)) != ident(after, arc_owner(&b, 0)) {
                moved += wrap;
            }
            moved as f64 / full
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(names: &[&str]) -> Vec<Member> {
        names
            .iter()
            .map(|n| Member {
                identity: n.as_bytes().to_vec(),
                weight: 1,
            })
            .collect()
    }

    /// The fraction of 50,000 keys whose server changes (MD5 key hashes for
    /// ketama and modula, uniform like the exact figure assumes; a check of the
    /// exact figure, never the figure itself).
    fn sampled(a: &Placement, b: &Placement) -> f64 {
        let n = 50_000;
        let moved = (0..n)
            .filter(|k| {
                let key = format!("key:{k}");
                let x = a.lookup(key.as_bytes()).map(|i| &a.members[i].identity);
                let y = b.lookup(key.as_bytes()).map(|i| &b.members[i].identity);
                x != y
            })
            .count();
        moved as f64 / f64::from(n)
    }

    #[test]
    fn moves_is_exact_and_matches_keys() {
        for d in [
            Distribution::Ketama,
            Distribution::Modula,
            Distribution::Ring,
            Distribution::Maglev,
            Distribution::Jump,
            Distribution::Rendezvous,
            Distribution::Bounded,
        ] {
            let four = members(&["a", "b", "c", "d"]);
            let five = members(&["a", "b", "c", "d", "e"]);
            // Jump's buckets are positions: only the last server can leave.
            let three = if d == Distribution::Jump {
                members(&["a", "b", "c"])
            } else {
                members(&["a", "c", "d"])
            };
            let p4 = Placement::build(d, KeyHash::Md5, None, four).unwrap();
            let p5 = Placement::build(d, KeyHash::Md5, None, five).unwrap();
            let p3 = Placement::build(d, KeyHash::Md5, None, three).unwrap();
            assert_eq!(moves(&p4, &p4), 0.0, "{d:?}");
            for (x, y) in [(&p4, &p5), (&p4, &p3)] {
                let exact = moves(x, y);
                let seen = sampled(x, y);
                assert!(
                    (exact - seen).abs() < 0.01,
                    "{d:?}: exact {exact} sampled {seen}"
                );
                assert!(exact > 0.05, "{d:?}: {exact}");
            }
            let shares = p4.shares();
            assert!(
                (shares.iter().sum::<f64>() - 1.0).abs() < 1e-9,
                "{d:?} {shares:?}"
            );
        }
    }

    #[test]
    fn sectors_draw_the_circle_in_proportion_to_the_shares() {
        for d in [
            Distribution::Ketama,
            Distribution::Ring,
            Distribution::Maglev,
            Distribution::Bounded,
        ] {
            let p =
                Placement::build(d, KeyHash::Md5, None, members(&["a", "b", "c", "d"])).unwrap();
            let n = 36_000;
            let sectors = p.sectors(n);
            assert_eq!(sectors.len(), n, "{d:?}");
            let shares = p.shares();
            for (i, share) in shares.iter().enumerate() {
                let drawn = sectors.iter().filter(|&&o| o == Some(i)).count() as f64 / n as f64;
                assert!(
                    (drawn - share).abs() < 0.01,
                    "{d:?} member {i}: drawn {drawn}, share {share}"
                );
            }
            assert!(p.sectors(0).is_empty());
        }
        for d in [
            Distribution::Modula,
            Distribution::Jump,
            Distribution::Rendezvous,
        ] {
            let p = Placement::build(d, KeyHash::Md5, None, members(&["a", "b"])).unwrap();
            assert!(p.sectors(360).is_empty(), "{d:?}");
        }
    }

    #[test]
    fn pick_among_equals_the_placement_with_the_others_down() {
        let m = members(&["a", "b", "c", "d", "e"]);
        for d in [Distribution::Ring, Distribution::Rendezvous] {
            let p = Placement::build(d, KeyHash::Fnv1a64, None, m.clone()).unwrap();
            let patterns: &[[bool; 5]] = if d == Distribution::Ring {
                &[
                    [true; 5],
                    [false, true, true, true, true],
                    [true, false, false, true, true],
                    [false, false, false, false, true],
                    [false; 5],
                ]
            } else {
                &[
                    [true; 5],
                    [false, true, true, true, true],
                    [true, true, true, true, false],
                ]
            };
            for ups in patterns {
                let q = p.with_up(ups).unwrap();
                for k in 0..2000 {
                    let key = format!("k{k}");
                    let fast = p.pick_among(key.as_bytes(), |i| ups[i]);
                    assert_eq!(fast, Some(q.lookup(key.as_bytes())), "{d:?} {ups:?} {key}");
                }
            }
            // Rendezvous with two down: not answered cheaply.
            if d == Distribution::Rendezvous {
                assert_eq!(p.pick_among(b"k", |i| i > 1), None);
            }
        }
        for d in [
            Distribution::Ketama,
            Distribution::Maglev,
            Distribution::Jump,
        ] {
            let p = Placement::build(d, KeyHash::Fnv1a64, None, m.clone()).unwrap();
            assert_eq!(p.pick_among(b"k", |i| i > 0), None, "{d:?}");
        }
    }

    #[test]
    fn down_members_lose_only_their_keys() {
        let m = members(&["a", "b", "c", "d"]);
        for d in [
            Distribution::Ring,
            Distribution::Maglev,
            Distribution::Jump,
            Distribution::Rendezvous,
        ] {
            let p = Placement::build(d, KeyHash::Fnv1a64, None, m.clone()).unwrap();
            let q = p.with_up(&[true, false, true, true]).unwrap();
            for k in 0..2000 {
                let key = format!("k{k}");
                let (x, y) = (
                    p.lookup(key.as_bytes()).unwrap(),
                    q.lookup(key.as_bytes()).unwrap(),
                );
                assert_ne!(y, 1, "{d:?}");
                if x != 1 && d != Distribution::Maglev {
                    assert_eq!(x, y, "{d:?} {key}");
                }
            }
        }
    }

    fn loaded(d: Distribution, names: &[&str]) -> std::sync::Arc<Placement> {
        std::sync::Arc::new(Placement::build(d, KeyHash::default(), None, members(names)).unwrap())
    }

    #[test]
    fn load_aware_distributions_are_unkeyed_and_build() {
        for d in [
            Distribution::RoundRobin,
            Distribution::P2c,
            Distribution::LeastConn,
            Distribution::PeakEwma,
            Distribution::HealthScore,
        ] {
            let p = loaded(d, &["a", "b", "c"]);
            assert_eq!(p.distribution(), d);
            assert!(!p.is_keyed() && !d.is_keyed(), "{}", d.name());
            assert_eq!(p.shares(), vec![0.0; 3]);
            // Every pick lands on a member; a guard dropped reports a success.
            for _ in 0..30 {
                let (i, g) = p.pick(b"k").unwrap();
                assert!(i < 3 && g.is_some());
            }
            // Down members are never picked.
            let q = std::sync::Arc::new(p.with_up(&[true, false, true]).unwrap());
            for _ in 0..30 {
                assert_ne!(q.pick(b"k").unwrap().0, 1, "{}", d.name());
            }
        }
    }

    #[test]
    fn round_robin_takes_turns_and_lookup_records_nothing() {
        let p = loaded(Distribution::RoundRobin, &["a", "b", "c"]);
        let next = p.lookup(b"x").unwrap();
        assert_eq!(p.lookup(b"y"), Some(next), "lookup is pure");
        let seq: Vec<usize> = (0..6).map(|_| p.pick(b"").unwrap().0).collect();
        assert_eq!(seq[0], next);
        assert_eq!(&seq[..3], &seq[3..]);
        let mut first = seq[..3].to_vec();
        first.sort_unstable();
        assert_eq!(first, [0, 1, 2]);
    }

    #[test]
    fn least_conn_avoids_the_busy_member_until_it_finishes() {
        let p = loaded(Distribution::LeastConn, &["a", "b"]);
        let (busy, g) = p.pick(b"").unwrap();
        let g = g.unwrap();
        for _ in 0..5 {
            let (i, h) = p.pick(b"").unwrap();
            assert_ne!(i, busy);
            h.unwrap().finish(true);
        }
        g.finish(true);
        let (a, ga) = p.pick(b"").unwrap();
        let (b, _gb) = p.pick(b"").unwrap();
        assert_ne!(a, b, "both idle again: they take turns");
        drop(ga);
    }

    #[test]
    fn health_score_moves_traffic_off_a_failing_member() {
        let p = loaded(Distribution::HealthScore, &["a", "b", "c"]);
        let mut to_bad = 0;
        for n in 0..3000 {
            let (i, g) = p.pick(b"").unwrap();
            // Member 0 fails every request it gets.
            g.unwrap().finish(i != 0);
            if n >= 1000 && i == 0 {
                to_bad += 1;
            }
        }
        // Fair would be a third (667 of the last 2000).
        assert!(to_bad < 200, "failing member still got {to_bad} of 2000");
    }
}
