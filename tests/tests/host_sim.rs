//! host-sim against the specification (`shared/seeds/000_*`): its key assertions
//! at the default configuration, fleet-change minimality, determinism and the
//! charts, through the host-sim library.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use host_sim::export::{self, CHARTS};
use host_sim::fonts::png_font_path;
use host_sim::plot::Format;
use host_sim::scenario::{self, ChangeArg, Report, Scenario, ScenarioConfig};

/// Every scenario at the specification's defaults, run once for all tests.
/// Only scenario A's capacity sweep is cut to the two points around the 80%
/// mark (a debug build simulates about 300k requests per second).
fn defaults() -> &'static Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    REPORT.get_or_init(|| {
        let mut cfg = ScenarioConfig::default();
        cfg.a.sweep_capacities = vec![150, 200];
        scenario::run(&Scenario::ALL, &cfg, &mut |_| {}).expect("default scenarios")
    })
}

/// A configuration small enough for many runs in a debug build.
fn short(seed: u64) -> ScenarioConfig {
    let mut cfg = ScenarioConfig::default();
    cfg.seed = seed;
    cfg.workload.duration_us = 12_000_000;
    cfg.b.change_at_us = 6_000_000;
    cfg.b.baseline_us = 4_000_000;
    cfg.a.sweep_capacities = vec![100, 250];
    cfg.c.trials = 2;
    cfg.c.vnodes = vec![1, 10, 100];
    cfg
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chring-host-sim-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Scenario A: the ring's hit rate is more than 3x round robin's.
#[test]
fn a_ring_beats_round_robin_threefold() {
    let a = defaults().a.as_ref().unwrap();
    let ring = a.strategies["ring"].hit_rate;
    let rr = a.strategies["round_robin"].hit_rate;
    assert!(ring > 3.0 * rr, "ring {ring} vs round robin {rr}");
    assert!(a.strategies["ring"].datastore_reads < a.strategies["round_robin"].datastore_reads);
    // The sweep explains the spec's 80–90%: reached once a cache holds its share.
    assert_eq!(a.sweep.ring_capacity_for_80, Some(200), "{:?}", a.sweep);
    assert!(
        a.sweep
            .explanation
            .contains("500 entries for 1000 customers")
    );
}

/// Scenario B: the ring moves less than 0.3x the keys modulo moves, between
/// 0.5/N and 2/N of them, and only to the new server.
#[test]
fn b_ring_moves_few_keys_and_only_to_the_new_server() {
    let b = defaults().b.as_ref().unwrap();
    let ring = &b.strategies["ring"];
    let modulo = &b.strategies["modulo"];
    let (r, m) = (
        ring.keys_moved_fraction.unwrap(),
        modulo.keys_moved_fraction.unwrap(),
    );
    assert!(r < 0.3 * m, "ring {r} vs modulo {m}");
    let n = b.change.servers_after as f64;
    assert!(
        r > 0.5 / n && r < 2.0 / n,
        "ring moved {r} with {n} servers"
    );
    assert_eq!(ring.moved_only_to_new_server, Some(true));
    assert_eq!(modulo.moved_only_to_new_server, Some(false));
    // The change hurts modulo more.
    assert!(modulo.min_hit_rate_after_change < ring.min_hit_rate_after_change);
    assert!(modulo.datastore_read_spike > ring.datastore_read_spike);
}

/// Scenario B with a removal: only the removed server's keys move.
#[test]
fn b_removal_moves_only_the_removed_servers_keys() {
    let mut cfg = short(3);
    cfg.b.change = ChangeArg::Remove;
    let report = scenario::run(&[Scenario::B], &cfg, &mut |_| {}).unwrap();
    let b = report.b.unwrap();
    assert_eq!(b.change.server, "server-4");
    let ring = &b.strategies["ring"];
    let r = ring.keys_moved_fraction.unwrap();
    assert!(r > 0.5 / 5.0 && r < 2.0 / 5.0, "{r}");
    assert_eq!(ring.moved_only_from_removed_server, Some(true));
    assert!(b.strategies["modulo"].keys_moved_fraction.unwrap() > 0.5);
}

/// Scenario C: cov(100 vnodes) < 0.2 x cov(1), and the means are near the
/// Dirichlet model (about 0.8 at 1 vnode, 0.09 at 100).
#[test]
fn c_vnodes_even_out_the_keys() {
    let c = defaults().c.as_ref().unwrap();
    let row = |v: u32| c.rows.iter().find(|r| r.vnodes == v).unwrap();
    assert!(
        row(100).cov < 0.2 * row(1).cov,
        "{:?} {:?}",
        row(100),
        row(1)
    );
    assert!((0.6..1.0).contains(&row(1).cov), "{:?}", row(1));
    assert!(row(100).cov < 0.13, "{:?}", row(100));
    assert!(row(100).max_min.unwrap() < 1.5);
    // The plain server-0..4 fleet is reported beside the means.
    assert!(row(100).server_fleet_cov < 0.2 * row(1).server_fleet_cov);
}

/// Scenario D: under Zipf the busiest server carries more than twice the load
/// of the idlest; under uniform ids it does not.
#[test]
fn d_zipf_skews_the_load() {
    let d = defaults().d.as_ref().unwrap();
    let zipf = d.distributions["zipf"].max_min_load.unwrap();
    let uniform = d.distributions["uniform"].max_min_load.unwrap();
    assert!(zipf > 2.0, "zipf max/min {zipf}");
    assert!(uniform < 2.0, "uniform max/min {uniform}");
    assert!(d.distributions["zipf"].hit_rate > d.distributions["uniform"].hit_rate);
}

/// `meta.requests_simulated` counts every run: A's strategies and sweep, B's
/// change and control runs, D's two runs.
#[test]
fn requests_simulated_counts_every_run() {
    let r = defaults();
    let a = r.a.as_ref().unwrap();
    let b = r.b.as_ref().unwrap();
    let d = r.d.as_ref().unwrap();
    // Every run of a scenario replays that scenario's stream.
    let a1 = a.strategies["ring"].requests;
    assert_eq!(a.strategies["round_robin"].requests, a1);
    let b1 = b.strategies["ring"].totals.requests;
    assert_eq!(b.strategies["modulo"].totals.requests, b1);
    let d1 = d.distributions["zipf"].totals.requests;
    assert_eq!(d.distributions["uniform"].totals.requests, d1);
    let a_runs = 2 * (1 + a.sweep.capacities.len()) as u64;
    let b_runs = 2 * 2; // change and control, per strategy
    assert_eq!(
        r.meta.requests_simulated,
        a_runs * a1 + b_runs * b1 + 2 * d1
    );
}

/// The same seed gives byte-identical output; another seed does not.
#[test]
fn same_seed_same_bytes() {
    let (d1, d2, d3) = (scratch("seed-a"), scratch("seed-b"), scratch("seed-c"));
    for (dir, seed) in [(&d1, 5), (&d2, 5), (&d3, 6)] {
        let r = scenario::run(&Scenario::ALL, &short(seed), &mut |_| {}).unwrap();
        export::write_all(&r, dir, Format::Svg, true).unwrap();
    }
    let read = |d: &PathBuf, f: &str| std::fs::read(d.join(f)).unwrap();
    let mut files = vec!["results.json".to_string()];
    for (_, base) in CHARTS {
        files.push(format!("{base}.csv"));
        files.push(format!("{base}.svg"));
    }
    for f in &files {
        assert!(read(&d1, f) == read(&d2, f), "{f} differs between two runs");
    }
    assert!(read(&d1, "results.json") != read(&d3, "results.json"));
    let json: serde_json::Value = serde_json::from_slice(&read(&d1, "results.json")).unwrap();
    assert_eq!(json["meta"]["seed"], 5);
    for key in [
        "/a/strategies/ring/hit_rate",
        "/a/strategies/round_robin/datastore_reads",
        "/b/strategies/ring/keys_moved_fraction",
        "/b/strategies/modulo/min_hit_rate_after_change",
        "/b/strategies/modulo/recovery_s",
        "/c/rows/0/vnodes",
        "/c/rows/0/cov",
        "/c/rows/0/max_min",
        "/d/distributions/zipf/max_min_load",
        "/d/distributions/uniform/requests_per_server/0",
        "/d/distributions/zipf/hit_rate",
        "/meta/requests_simulated",
    ] {
        assert!(json.pointer(key).is_some(), "results.json lacks {key}");
    }
    for d in [d1, d2, d3] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// Only the scenarios run appear in results.json (plus meta).
#[test]
fn results_hold_only_the_scenarios_run() {
    let r = scenario::run(&[Scenario::C], &short(1), &mut |_| {}).unwrap();
    let json: serde_json::Value = serde_json::from_str(&export::results_json(&r).unwrap()).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["c", "meta"]);
    assert_eq!(json["meta"]["requests_simulated"], 0);
}

/// Every chart is written and non-empty: SVG always, PNG when a font exists.
#[test]
fn every_chart_is_written() {
    let report = scenario::run(&Scenario::ALL, &short(2), &mut |_| {}).unwrap();
    let mut formats = vec![Format::Svg];
    match png_font_path() {
        Some(_) => formats.push(Format::Png),
        // Written straight to stderr, past the harness' capture: never silent.
        None => {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: PNG charts not tested: no TrueType font found (install \
                 fonts-dejavu-core or set HOST_SIM_FONT)"
            );
        }
    }
    for format in formats {
        let dir = scratch(format.extension());
        let written = export::write_all(&report, &dir, format, true).unwrap();
        assert_eq!(written.len(), 1 + 2 * CHARTS.len());
        for (_, base) in CHARTS {
            for ext in ["csv", format.extension()] {
                let path = dir.join(format!("{base}.{ext}"));
                let len = std::fs::metadata(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                    .len();
                assert!(len > 200, "{} is {len} bytes", path.display());
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// `docs/results/` (the charts and figures the README shows) is exactly what
/// `host-sim scenario all` writes at the defaults today. Regenerate with
/// `cargo run --release -p host-sim -- scenario all --out docs/results`.
#[test]
fn committed_results_are_current() {
    let docs = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/results"));
    let report = scenario::run(&Scenario::ALL, &ScenarioConfig::default(), &mut |_| {}).unwrap();
    let dir = scratch("docs");
    let written = export::write_all(&report, &dir, Format::Svg, true).unwrap();
    let mut committed: Vec<_> = std::fs::read_dir(&docs)
        .unwrap_or_else(|e| panic!("{}: {e}", docs.display()))
        .map(|e| e.unwrap().file_name())
        .collect();
    committed.sort();
    let mut fresh: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    fresh.sort();
    assert_eq!(
        committed, fresh,
        "docs/results holds other files than a fresh run"
    );
    assert_eq!(fresh.len(), written.len());
    for name in fresh {
        let want = std::fs::read(dir.join(&name)).unwrap();
        let have = std::fs::read(docs.join(&name)).unwrap();
        assert!(
            want == have,
            "docs/results/{} is stale: regenerate with `cargo run --release -p host-sim -- \
             scenario all --out docs/results`",
            name.to_string_lossy()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
