//! The whole scenario on the host, with embedded-hal-mock pins and delay, and its
//! report compared line by line with what the target printed under QEMU
//! (`expected/balancer.out`, decoded defmt).

use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as Delay};
use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as Pin};

use crate::board::{Indicators, RequestClock};
use crate::golden::{self, GoldenStrategy};
use crate::report::{self, Line};
use crate::scenario::{self, ADDED, BACKENDS, BATCH, PACE_NS, REMOVED, REQUESTS, Report};

/// The committed decoded log of the target, relative to the crate.
const EXPECTED: &str = "expected/balancer.out";

/// Lines the host cannot reproduce: measured on the target only.
fn target_only(line: &str) -> bool {
    line.starts_with("footprint")
}

/// The pin and delay traffic the scenario must produce, as mock expectations.
fn run_with_mocks() -> Report {
    // Bays: all on; at the removal the removed bay off; at the addition (the
    // new machine takes the same bay) all on again.
    assert_eq!(REMOVED, ADDED);
    let bays: [Mock; BACKENDS] = core::array::from_fn(|i| {
        let mid = if i == usize::from(REMOVED.0) {
            State::Low
        } else {
            State::High
        };
        Mock::new(&[Pin::set(State::High), Pin::set(mid), Pin::set(State::High)])
    });
    // Status: high, one toggle per batch, low at the end.
    let mut status = vec![Pin::set(State::High)];
    let batches = REQUESTS / BATCH;
    for b in 0..batches {
        status.push(Pin::set(if b % 2 == 0 { State::Low } else { State::High }));
    }
    status.push(Pin::set(State::Low));
    let status = Mock::new(&status);
    let mut delay = CheckedDelay::new(
        &(0..batches)
            .map(|_| Delay::delay_ns(PACE_NS))
            .collect::<Vec<_>>(),
    );
    let mut ind = Indicators::new(bays, status);
    let mut ring = None;
    let ring = scenario::new_ring(&mut ring).expect("a ring");
    let report = scenario::run(ring, &mut ind, &mut delay, &mut RequestClock::new(0, 1))
        .expect("the scenario runs");
    let (bays, mut status) = ind.release();
    for mut b in bays {
        b.done();
    }
    status.done();
    delay.done();
    report
}

/// Renders what the firmware logs, except the target-only lines.
fn host_lines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    let mut emit = |l: Line| lines.push(l.to_string());
    emit(Line::Start);
    let results: Vec<(GoldenStrategy, u32)> = GoldenStrategy::ALL
        .iter()
        .map(|&s| (s, golden::replay(s).expect("golden replay")))
        .collect();
    report::golden_lines(&results, &mut emit);
    report::setup_lines(&mut emit);
    report::report_lines(report, &mut emit);
    emit(Line::Pass);
    lines
}

#[test]
fn scenario_drives_pins_and_delay_and_adds_up() {
    let r = run_with_mocks();
    assert_eq!(r.stats.routed, u64::from(REQUESTS));
    assert_eq!(r.backends, BACKENDS);
    assert_eq!(r.lit, 0xFF);
    let [removal, addition] = r.changes;
    assert!(removal.removal && !addition.removal);
    // About 1/8 of the keys move each time, and only those of the changed bay.
    for c in [removal, addition] {
        assert!((300..800).contains(&c.moved), "{c:?}");
    }
    // Flows pinned to the removed backend were placed again; nothing else was.
    assert!(r.stats.repinned > 0 && r.stats.repinned <= u64::from(removal.live_flows));
    assert!(r.stats.kept_off_strategy > 0);
    assert!(r.flows.evictions > 0 && r.flows.expirations > 0);
    let served: u64 = r.served.iter().map(|s| s.2).sum::<u64>() + removal.served;
    assert_eq!(served, r.stats.routed);
}

#[test]
fn host_report_matches_the_targets_log() {
    let report = run_with_mocks();
    let host = host_lines(&report);
    let path = format!("{}/{EXPECTED}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{path}: {e}\nhost report:\n{}\n(bless the target's log with \
             `FIRMWARE_BLESS=1 bash scripts/test-all.sh firmware`)",
            host.join("\n")
        )
    });
    // `LEVEL message`: drop the level, and the lines only the target can know.
    let target: Vec<&str> = text
        .lines()
        .map(|l| l.split_once(' ').map_or(l, |(_, msg)| msg).trim_start())
        .filter(|l| !target_only(l))
        .collect();
    assert_eq!(
        target,
        host,
        "the target's log ({path}) and the host's report differ:\n--- target\n{}\n--- host\n{}",
        target.join("\n"),
        host.join("\n")
    );
}

#[test]
fn flow_tuples_are_distinct_and_keys_use_the_low_half() {
    let mut seen = std::collections::HashSet::new();
    for f in 0..scenario::UNIVERSE {
        assert!(seen.insert(scenario::flow_tuple(f)));
    }
    let h = scenario::flow_hash(7);
    assert_eq!(scenario::flow_key(h), h as u32);
    assert_eq!(scenario::flow_tuple(0x0102)[..4], [10, 2, 1, 2]);
}

#[test]
fn memory_is_within_the_per_item_budgets() {
    let m = scenario::memory();
    println!("{m:?}");
    assert!(m.point <= 8 && m.entry <= 24);
    assert!(m.balancer >= m.ring + m.table);
}
