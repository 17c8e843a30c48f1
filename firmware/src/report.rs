//! The firmware's report, line by line.
//!
//! Each [`Line`] renders two ways from templates kept side by side: with
//! `core::fmt` on the host ([`Display`](core::fmt::Display)) and with defmt on the
//! target (`defmt::Format`, compiled only there). The host tests render the
//! host's own [`Report`] and compare it with the target's decoded log
//! (`expected/balancer.out`), so a template edited on one side only fails a test.

use core::fmt;

use crate::golden::GoldenStrategy;
use crate::scenario::{
    self, ADD_AT, BACKENDS, FLOWS, IDLE_TTL, REMOVE_AT, REQUESTS, Report, SEED, UNIVERSE, VNODES,
    ZIPF_S_HUNDREDTHS,
};

/// `num / den` as a percentage with two decimals, rounded half up (`0.00%` when
/// `den` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percent {
    /// Numerator.
    pub num: u64,
    /// Denominator.
    pub den: u64,
}

impl Percent {
    /// Hundredths of a percent.
    #[must_use]
    pub const fn basis_points(self) -> u64 {
        match (self.num.saturating_mul(10_000) + self.den / 2).checked_div(self.den) {
            Some(bp) => bp,
            None => 0,
        }
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bp = self.basis_points();
        write!(f, "{}.{:02}%", bp / 100, bp % 100)
    }
}

#[cfg(target_os = "none")]
impl defmt::Format for Percent {
    fn format(&self, f: defmt::Formatter<'_>) {
        let bp = self.basis_points();
        defmt::write!(f, "{=u64}.{=u64:02}%", bp / 100, bp % 100);
    }
}

/// One line of the report. `&'static str`s are names; numbers are as measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Line {
    /// The banner.
    Start,
    /// One strategy's golden replay passed.
    Golden {
        /// The strategy's name in `golden.csv`.
        strategy: &'static str,
        /// Keys checked.
        keys: u32,
    },
    /// Every golden replay passed.
    GoldenDone {
        /// Keys checked.
        keys: u32,
        /// Strategies replayed.
        strategies: u32,
    },
    /// The balancer's configuration.
    Setup,
    /// The workload.
    Workload,
    /// RAM cost per item (the same on every target; whole-structure sizes
    /// depend on the pointer width and are in the target's `footprint` lines).
    Memory {
        /// Bytes per ring point.
        point: u32,
        /// Bytes per flow-table entry.
        entry: u32,
    },
    /// The removal.
    Removed(scenario::Change),
    /// The addition.
    Added(scenario::Change),
    /// Routing counters.
    Routed {
        /// Requests.
        requests: u64,
        /// Pinned by the flow table.
        pinned: u64,
        /// New flows.
        new: u64,
        /// Re-pinned after their backend left.
        repinned: u64,
    },
    /// Flow-table counters.
    FlowTable {
        /// Hits.
        hits: u64,
        /// Lookups.
        lookups: u64,
        /// LRU evictions.
        evictions: u64,
        /// Idle expirations.
        expirations: u64,
        /// Live flows at the end.
        live: u32,
    },
    /// Requests that stayed on their flow's backend although the ring moved the key.
    Affinity {
        /// Such requests.
        kept: u64,
    },
    /// One backend's share.
    Backend {
        /// Id (bay).
        id: u16,
        /// Name.
        name: &'static str,
        /// Requests served since it joined.
        served: u64,
        /// Requests routed in all.
        total: u64,
    },
    /// The bay pins at the end.
    Pins {
        /// Bit `i` = bay `i` lit.
        lit: u32,
    },
    /// The verdict.
    Pass,
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Line::Start => write!(f, "chring firmware: balancer scenario"),
            Line::Golden { strategy, keys } => write!(
                f,
                "golden {strategy}: {keys} keys on 4 fleets route as in the reference"
            ),
            Line::GoldenDone { keys, strategies } => write!(
                f,
                "golden: all {keys} keys of {strategies} strategies route as in tests/data/golden.csv"
            ),
            Line::Setup => write!(
                f,
                "balancer: {BACKENDS} backends x {VNODES} ring points, {FLOWS}-entry flow table, idle timeout {IDLE_TTL} ticks"
            ),
            Line::Workload => write!(
                f,
                "workload: {REQUESTS} requests, Zipf s={}.{:02} over {UNIVERSE} flows, seed {SEED}; remove at {REMOVE_AT}, add at {ADD_AT}",
                ZIPF_S_HUNDREDTHS / 100,
                ZIPF_S_HUNDREDTHS % 100
            ),
            Line::Memory { point, entry } => write!(
                f,
                "memory: ring {point} B/point, flow table {entry} B/entry (budgets: 8 and 24)"
            ),
            Line::Removed(c) => write!(
                f,
                "change at request {}: removed backend {} {} after {} requests; {}/{} keys moved ({}), all from it; {} live flows were pinned to it",
                c.at,
                c.id.0,
                c.name,
                c.served,
                c.moved,
                c.universe,
                Percent {
                    num: c.moved.into(),
                    den: c.universe.into()
                },
                c.live_flows
            ),
            Line::Added(c) => write!(
                f,
                "change at request {}: added backend {} {}; {}/{} keys moved ({}), all to it; {} live flows keep their backends",
                c.at,
                c.id.0,
                c.name,
                c.moved,
                c.universe,
                Percent {
                    num: c.moved.into(),
                    den: c.universe.into()
                },
                c.live_flows
            ),
            Line::Routed {
                requests,
                pinned,
                new,
                repinned,
            } => write!(
                f,
                "routed {requests} requests: {pinned} pinned by the flow table, {new} new flows, {repinned} re-pinned after their backend left"
            ),
            Line::FlowTable {
                hits,
                lookups,
                evictions,
                expirations,
                live,
            } => write!(
                f,
                "flow table: hit rate {} ({hits}/{lookups}), {evictions} LRU evictions, {expirations} idle expirations, {live} live flows at the end",
                Percent {
                    num: hits,
                    den: lookups
                }
            ),
            Line::Affinity { kept } => write!(
                f,
                "affinity: {kept} requests stayed on their flow's backend after the ring moved the flow"
            ),
            Line::Backend {
                id,
                name,
                served,
                total,
            } => write!(
                f,
                "backend {id} {name}: {served} requests ({})",
                Percent {
                    num: served,
                    den: total
                }
            ),
            Line::Pins { lit } => write!(f, "pins: bays {lit:08b} lit, status low"),
            Line::Pass => write!(f, "PASS"),
        }
    }
}

#[cfg(target_os = "none")]
impl defmt::Format for Line {
    fn format(&self, f: defmt::Formatter<'_>) {
        match *self {
            Line::Start => defmt::write!(f, "chring firmware: balancer scenario"),
            Line::Golden { strategy, keys } => defmt::write!(
                f,
                "golden {=str}: {=u32} keys on 4 fleets route as in the reference",
                strategy,
                keys
            ),
            Line::GoldenDone { keys, strategies } => defmt::write!(
                f,
                "golden: all {=u32} keys of {=u32} strategies route as in tests/data/golden.csv",
                keys,
                strategies
            ),
            Line::Setup => defmt::write!(
                f,
                "balancer: {=usize} backends x {=u32} ring points, {=usize}-entry flow table, idle timeout {=u32} ticks",
                BACKENDS,
                VNODES,
                FLOWS,
                IDLE_TTL
            ),
            Line::Workload => defmt::write!(
                f,
                "workload: {=u32} requests, Zipf s={=u32}.{=u32:02} over {=u64} flows, seed {=u64}; remove at {=u32}, add at {=u32}",
                REQUESTS,
                ZIPF_S_HUNDREDTHS / 100,
                ZIPF_S_HUNDREDTHS % 100,
                UNIVERSE,
                SEED,
                REMOVE_AT,
                ADD_AT
            ),
            Line::Memory { point, entry } => defmt::write!(
                f,
                "memory: ring {=u32} B/point, flow table {=u32} B/entry (budgets: 8 and 24)",
                point,
                entry
            ),
            Line::Removed(c) => defmt::write!(
                f,
                "change at request {=u32}: removed backend {=u16} {=str} after {=u64} requests; {=u32}/{=u32} keys moved ({}), all from it; {=u32} live flows were pinned to it",
                c.at,
                c.id.0,
                c.name,
                c.served,
                c.moved,
                c.universe,
                Percent {
                    num: c.moved.into(),
                    den: c.universe.into()
                },
                c.live_flows
            ),
            Line::Added(c) => defmt::write!(
                f,
                "change at request {=u32}: added backend {=u16} {=str}; {=u32}/{=u32} keys moved ({}), all to it; {=u32} live flows keep their backends",
                c.at,
                c.id.0,
                c.name,
                c.moved,
                c.universe,
                Percent {
                    num: c.moved.into(),
                    den: c.universe.into()
                },
                c.live_flows
            ),
            Line::Routed {
                requests,
                pinned,
                new,
                repinned,
            } => defmt::write!(
                f,
                "routed {=u64} requests: {=u64} pinned by the flow table, {=u64} new flows, {=u64} re-pinned after their backend left",
                requests,
                pinned,
                new,
                repinned
            ),
            Line::FlowTable {
                hits,
                lookups,
                evictions,
                expirations,
                live,
            } => defmt::write!(
                f,
                "flow table: hit rate {} ({=u64}/{=u64}), {=u64} LRU evictions, {=u64} idle expirations, {=u32} live flows at the end",
                Percent {
                    num: hits,
                    den: lookups
                },
                hits,
                lookups,
                evictions,
                expirations,
                live
            ),
            Line::Affinity { kept } => defmt::write!(
                f,
                "affinity: {=u64} requests stayed on their flow's backend after the ring moved the flow",
                kept
            ),
            Line::Backend {
                id,
                name,
                served,
                total,
            } => defmt::write!(
                f,
                "backend {=u16} {=str}: {=u64} requests ({})",
                id,
                name,
                served,
                Percent {
                    num: served,
                    den: total
                }
            ),
            Line::Pins { lit } => defmt::write!(f, "pins: bays {=u32:08b} lit, status low", lit),
            Line::Pass => defmt::write!(f, "PASS"),
        }
    }
}

/// The golden replay's lines, in order: one per strategy, then a summary.
/// `results` holds the keys each strategy checked.
pub fn golden_lines(results: &[(GoldenStrategy, u32)], mut emit: impl FnMut(Line)) {
    let mut keys = 0;
    for &(s, n) in results {
        emit(Line::Golden {
            strategy: s.name(),
            keys: n,
        });
        keys += n;
    }
    emit(Line::GoldenDone {
        keys,
        strategies: results.len() as u32,
    });
}

/// The configuration lines (before the run).
pub fn setup_lines(mut emit: impl FnMut(Line)) {
    let m = scenario::memory();
    emit(Line::Setup);
    emit(Line::Workload);
    emit(Line::Memory {
        point: m.point as u32,
        entry: m.entry as u32,
    });
}

/// The scenario's result lines.
pub fn report_lines(r: &Report, mut emit: impl FnMut(Line)) {
    emit(Line::Removed(r.changes[0]));
    emit(Line::Added(r.changes[1]));
    emit(Line::Routed {
        requests: r.stats.routed,
        pinned: r.stats.pinned,
        new: r.stats.new,
        repinned: r.stats.repinned,
    });
    emit(Line::FlowTable {
        hits: r.flows.hits,
        lookups: r.flows.hits + r.flows.misses,
        evictions: r.flows.evictions,
        expirations: r.flows.expirations,
        live: r.live_flows,
    });
    emit(Line::Affinity {
        kept: r.stats.kept_off_strategy,
    });
    for &(id, name, served) in r.served.iter().take(r.backends) {
        emit(Line::Backend {
            id: id.0,
            name,
            served,
            total: r.stats.routed,
        });
    }
    emit(Line::Pins { lit: r.lit });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rounds_half_up() {
        let p = |num, den| Percent { num, den }.to_string();
        assert_eq!(p(1, 3), "33.33%");
        assert_eq!(p(2, 3), "66.67%");
        assert_eq!(p(1, 8), "12.50%");
        assert_eq!(p(5, 5), "100.00%");
        assert_eq!(p(1, 20_000), "0.01%");
        assert_eq!(p(0, 0), "0.00%");
    }
}
