//! The balancer scenario the `balancer` firmware runs: 8 backends on a ring of 64
//! points each, a 1024-entry flow table, 100,000 requests of a seeded Zipf
//! workload, one backend removed mid-run and a new one added later.
//!
//! Every number it reports is a function of the constants below and of chring's
//! placement contract, so the target and the host compute the same [`Report`] (the
//! host tests check it against the firmware's committed output).

use chring::workload::{KeyStream, WorkloadError, Zipf};
use chring::{BackendId, CacheStats, Error, Ring, RingConfig, hash, mix};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;

use crate::balancer::{Balancer, BalancerError, Borrowed, FlowKey, FlowTable, RouteStats};
use crate::board::{Indicators, Monotonic};

/// Backend bays (and the fleet's capacity): ids `0..BACKENDS`.
pub const BACKENDS: usize = 8;
/// Ring points per backend (weight 1).
pub const VNODES: u32 = 64;
/// Ring capacity: a full fleet.
pub const POINTS: usize = BACKENDS * VNODES as usize;
/// Prefix-index entries: none. A lookup is then a binary search over 512 points
/// (9 compares) instead of a jump to one of `I` arcs, which saves `4 × I` bytes of
/// RAM and, because the golden replay's ring64 uses the same type, one more copy
/// of the ring's code in flash.
pub const INDEX: usize = 0;
/// Flow-table entries.
pub const FLOWS: usize = 1024;
/// A flow is forgotten after this many ticks (requests) without traffic. With
/// the workload below, 3000 makes both idle expiry and LRU eviction happen.
pub const IDLE_TTL: u32 = 3000;
/// Distinct flows in the workload.
pub const UNIVERSE: u64 = 4096;
/// Zipf exponent of flow popularity, in hundredths.
pub const ZIPF_S_HUNDREDTHS: u32 = 100;
/// Workload seed.
pub const SEED: u64 = 42;
/// Requests routed.
pub const REQUESTS: u32 = 100_000;
/// Requests between two pacing delays (and heartbeats).
pub const BATCH: u32 = 1_000;
/// The pacing delay after each batch.
pub const PACE_NS: u32 = 20_000;
/// Backend names, by id.
pub const NAMES: [&str; BACKENDS] = [
    "10.1.0.1:443",
    "10.1.0.2:443",
    "10.1.0.3:443",
    "10.1.0.4:443",
    "10.1.0.5:443",
    "10.1.0.6:443",
    "10.1.0.7:443",
    "10.1.0.8:443",
];
/// At this request, backend [`REMOVED`] leaves.
pub const REMOVE_AT: u32 = 40_000;
/// The backend that leaves.
pub const REMOVED: BackendId = BackendId(3);
/// At this request, a new machine takes the free bay.
pub const ADD_AT: u32 = 70_000;
/// The bay (id) of the new machine.
pub const ADDED: BackendId = BackendId(3);
/// Its name.
pub const ADDED_NAME: &str = "10.1.0.9:443";

/// The ring the balancer uses.
pub type LbRing = Ring<BACKENDS, POINTS, INDEX>;
/// The balancer, over a ring that lives outside it (see [`new_ring`]).
pub type Lb<'r> = Balancer<Borrowed<'r, LbRing>, FLOWS, BACKENDS>;

/// Builds the balancer's empty ring into `slot`.
///
/// Call it before [`run`], from the frame that will own the ring: building a
/// ring returns it inside a `Result`, and moving 4 KiB out of it costs stack
/// copies, which here stay in this function's frame and are gone before
/// [`run`]'s frame (23 KiB, the flow table) is pushed.
///
/// # Errors
/// [`ScenarioError::Chring`] if the ring's configuration is refused.
#[inline(never)]
pub fn new_ring(slot: &mut Option<LbRing>) -> Result<&mut LbRing, ScenarioError> {
    let ring = LbRing::new(RingConfig::new(VNODES)).map_err(Error::from)?;
    Ok(slot.insert(ring))
}

/// The 13-byte 5-tuple of workload flow `f`: client `10.2.x.y:port` to the
/// virtual IP `203.0.113.10:443`, TCP. Source address, destination address,
/// source port, destination port (big-endian, as on the wire), protocol.
#[must_use]
pub fn flow_tuple(f: u64) -> [u8; 13] {
    let f = f as u32;
    let [_, _, hi, lo] = f.to_be_bytes();
    let port = (10_000 + (f.wrapping_mul(7919) % 50_000)) as u16;
    let [p0, p1] = port.to_be_bytes();
    let [d0, d1] = 443u16.to_be_bytes();
    [10, 2, hi, lo, 203, 0, 113, 10, p0, p1, d0, d1, 6]
}

/// The placement hash of flow `f`: XXH3 of its 5-tuple.
#[must_use]
pub fn flow_hash(f: u64) -> u64 {
    hash(&flow_tuple(f))
}

/// The flow-table key of a flow with placement hash `h`: its low 32 bits (the
/// ring uses the high 32 as the position).
#[must_use]
pub const fn flow_key(h: u64) -> FlowKey {
    h as u32
}

/// What a fleet change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The request number it happened before.
    pub at: u32,
    /// `true` for a removal, `false` for an addition.
    pub removal: bool,
    /// The backend.
    pub id: BackendId,
    /// Its name.
    pub name: &'static str,
    /// Flows of the universe whose backend (the strategy's pick) changed.
    pub moved: u32,
    /// Flows in the universe.
    pub universe: u32,
    /// Removal: requests it served. Addition: 0.
    pub served: u64,
    /// Removal: live flows pinned to it. Addition: live flows in the table.
    pub live_flows: u32,
}

/// Everything the scenario measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Routing counters.
    pub stats: RouteStats,
    /// Flow-table counters.
    pub flows: CacheStats,
    /// Flows in the table at the end.
    pub live_flows: u32,
    /// The removal, then the addition.
    pub changes: [Change; 2],
    /// Requests served since they joined (`(id, name, requests)`), for the
    /// backends in the fleet at the end, in id order: the first
    /// [`backends`](Self::backends) entries.
    pub served: [(BackendId, &'static str, u64); BACKENDS],
    /// Backends in the fleet at the end.
    pub backends: usize,
    /// The bays lit at the end (bit `i` = bay `i`).
    pub lit: u32,
}

/// Why the scenario stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
#[non_exhaustive]
pub enum ScenarioError {
    /// From chring while setting up.
    Chring(Error),
    /// From the balancer.
    Balancer(BalancerError),
    /// The workload's parameters.
    Workload(WorkloadError),
    /// A pin could not be driven.
    Pin,
    /// A fleet change moved a key it should not have: flow `flow`, at `at`.
    NotMinimal {
        /// The request number of the change.
        at: u32,
        /// The flow.
        flow: u32,
    },
    /// The fleet without the changed backend does not route like the changed
    /// backend marked down (at request `at`).
    Fingerprint {
        /// The request number of the change.
        at: u32,
    },
    /// A cross-check of the counters failed.
    Inconsistent(&'static str),
}

impl From<Error> for ScenarioError {
    fn from(e: Error) -> Self {
        ScenarioError::Chring(e)
    }
}

impl From<BalancerError> for ScenarioError {
    fn from(e: BalancerError) -> Self {
        ScenarioError::Balancer(e)
    }
}

impl From<WorkloadError> for ScenarioError {
    fn from(e: WorkloadError) -> Self {
        ScenarioError::Workload(e)
    }
}

/// Seed of [`fingerprint`]'s fold.
const FOLD_SEED: u64 = 0x6669_6e67_6572_7072; // "fingerpr"

/// Where every flow of the universe goes now, folded into 64 bits (XXH3 over
/// `(flow, backend)` pairs, in flow order).
fn fingerprint(lb: &mut Lb<'_>) -> u64 {
    (0..UNIVERSE).fold(0, |acc, f| fold(acc, f, lb.pick(flow_hash(f))))
}

fn fold(acc: u64, f: u64, owner: Option<BackendId>) -> u64 {
    mix(
        acc ^ (f << 32 | owner.map_or(0xFFFF, |b| u64::from(b.0))),
        FOLD_SEED,
    )
}

/// For each flow of the universe, its pick with `changed` up (as now) and down:
/// a down backend's keys walk on to the next backend clockwise, exactly where a
/// removal sends them, so "down" is the fleet without `changed`. Returns the
/// number of flows whose pick differs and the fingerprint with `changed` down,
/// and checks that every flow that differs is one of `changed`'s. Needs no
/// memory per flow, where a before/after table of the universe would cost 2 KiB
/// of a stack that is 30 KiB all told.
fn with_and_without(
    lb: &mut Lb<'_>,
    changed: BackendId,
    at: u32,
) -> Result<(u32, u64), ScenarioError> {
    let (mut moved, mut down_fp) = (0, 0);
    for f in 0..UNIVERSE {
        let h = flow_hash(f);
        let up = lb.pick(h);
        lb.set_up(changed, false)?;
        let down = lb.pick(h);
        lb.set_up(changed, true)?;
        if up != down {
            if up != Some(changed) {
                return Err(ScenarioError::NotMinimal { at, flow: f as u32 });
            }
            moved += 1;
        }
        down_fp = fold(down_fp, f, down);
    }
    Ok((moved, down_fp))
}

/// Runs the scenario on `ring` (empty, from [`new_ring`]): sets up the fleet,
/// routes [`REQUESTS`] requests paced by `delay` and stamped by `clock`, applies
/// the two fleet changes, and drives the bay pins (the fleet) and the status pin
/// (a heartbeat per batch, low at the end).
///
/// Stack: the flow table (22 KiB) lives in this frame; the ring (4 KiB) in the
/// caller's.
///
/// # Errors
/// [`ScenarioError`]: a chring or pin error, a change that moved a key it should
/// not have, or counters that do not add up.
#[inline(never)]
pub fn run<P, Q, D, C>(
    ring: &mut LbRing,
    ind: &mut Indicators<P, Q, BACKENDS>,
    delay: &mut D,
    clock: &mut C,
) -> Result<Report, ScenarioError>
where
    P: OutputPin,
    Q: OutputPin<Error = P::Error>,
    D: DelayNs,
    C: Monotonic,
{
    let mut lb: Lb<'_> = Balancer::new_const::<IDLE_TTL>(Borrowed(ring));
    for (id, name) in (0u16..).zip(NAMES) {
        lb.add_backend(BackendId(id), name.as_bytes(), 1)?;
    }
    ind.show_fleet(lb.backends())
        .map_err(|_| ScenarioError::Pin)?;
    ind.set_status(true).map_err(|_| ScenarioError::Pin)?;

    let zipf = Zipf::new(UNIVERSE, f64::from(ZIPF_S_HUNDREDTHS) / 100.0)?;
    let mut flows = KeyStream::new(zipf, SEED);
    let mut changes = [Change {
        at: 0,
        removal: true,
        id: REMOVED,
        name: NAMES[REMOVED.0 as usize],
        moved: 0,
        universe: UNIVERSE as u32,
        served: 0,
        live_flows: 0,
    }; 2];

    for r in 0..REQUESTS {
        if r == REMOVE_AT || r == ADD_AT {
            let removal = r == REMOVE_AT;
            let now = clock.now();
            let change = &mut changes[usize::from(!removal)];
            change.at = r;
            change.removal = removal;
            // Keys moved: the picks of every flow before and after, compared
            // through the `changed`-down view (see `with_and_without`), and that
            // view checked against the real fleet through fingerprints.
            if removal {
                change.live_flows = lb.flows_on(REMOVED, now)? as u32;
                let (moved, without) = with_and_without(&mut lb, REMOVED, r)?;
                change.moved = moved;
                change.served = lb.remove_backend(REMOVED)?;
                if fingerprint(&mut lb) != without {
                    return Err(ScenarioError::Fingerprint { at: r });
                }
            } else {
                change.id = ADDED;
                change.name = ADDED_NAME;
                lb.flows_on(ADDED, now)?; // purge expired flows before counting
                change.live_flows = lb.flows_len() as u32;
                let before = fingerprint(&mut lb);
                lb.add_backend(ADDED, ADDED_NAME.as_bytes(), 1)?;
                let (moved, without) = with_and_without(&mut lb, ADDED, r)?;
                change.moved = moved;
                if without != before {
                    return Err(ScenarioError::Fingerprint { at: r });
                }
            }
            ind.show_fleet(lb.backends())
                .map_err(|_| ScenarioError::Pin)?;
        }
        let h = flow_hash(flows.next_id());
        lb.route(flow_key(h), h, clock.now())?;
        if (r + 1) % BATCH == 0 {
            ind.heartbeat().map_err(|_| ScenarioError::Pin)?;
            delay.delay_ns(PACE_NS);
        }
    }
    ind.set_status(false).map_err(|_| ScenarioError::Pin)?;

    let mut served = [(BackendId(0), "", 0u64); BACKENDS];
    let mut total = changes[0].served;
    let backends = lb.backends().len();
    for (slot, b) in served.iter_mut().zip(lb.backends()) {
        let name = if b.id == ADDED {
            ADDED_NAME
        } else {
            NAMES.get(usize::from(b.id.0)).copied().unwrap_or("")
        };
        *slot = (b.id, name, lb.served(b.id));
        total += slot.2;
    }
    if let Some(fleet) = served.get_mut(..backends) {
        fleet.sort_unstable_by_key(|s| s.0);
    }
    let stats = lb.stats();
    let flow_stats = lb.flow_stats();
    if total != stats.routed || stats.routed != u64::from(REQUESTS) {
        return Err(ScenarioError::Inconsistent(
            "per-backend counts do not add up",
        ));
    }
    if stats.pinned + stats.new + stats.repinned != stats.routed
        || flow_stats.hits + flow_stats.misses != stats.routed
        || flow_stats.hits != stats.pinned + stats.repinned
    {
        return Err(ScenarioError::Inconsistent(
            "route and flow-table counts disagree",
        ));
    }
    Ok(Report {
        stats,
        flows: flow_stats,
        live_flows: lb.flows_len() as u32,
        changes,
        served,
        backends,
        lit: ind.lit(),
    })
}

/// RAM of the balancer's parts, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Per ring point ([`Ring::bytes_per_point`]).
    pub point: usize,
    /// The ring ([`LbRing`]).
    pub ring: usize,
    /// Per flow-table entry ([`FlowTable::bytes_per_entry`]).
    pub entry: usize,
    /// The flow table.
    pub table: usize,
    /// The balancer: ring, flow table and counters.
    pub balancer: usize,
}

/// The balancer's RAM, for this target.
#[must_use]
pub const fn memory() -> Memory {
    Memory {
        point: LbRing::bytes_per_point(),
        ring: LbRing::size_bytes(),
        entry: FlowTable::<FLOWS>::bytes_per_entry(),
        table: core::mem::size_of::<FlowTable<FLOWS>>(),
        balancer: core::mem::size_of::<Lb<'_>>() + LbRing::size_bytes(),
    }
}
