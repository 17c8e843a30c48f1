//! The real `host-sim` binary: `route` against chring itself, bad input, and a
//! scenario smoke run.

use std::path::PathBuf;

use assert_cmd::Command;
use chring::{BackendId, Jump, Maglev, Modulo, Rendezvous, Ring, RingConfig, Strategy};

fn host_sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_host-sim"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("host-sim-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const FLEET: &str = "\
# cache tier
10.0.0.1:11211
10.0.0.2:11211 1

10.0.0.3:11211\t2   # twice the share
10.0.0.4:11211 1
10.0.0.5:11211 3
";
const IDS: [&str; 5] = [
    "10.0.0.1:11211",
    "10.0.0.2:11211",
    "10.0.0.3:11211",
    "10.0.0.4:11211",
    "10.0.0.5:11211",
];
const WEIGHTS: [u32; 5] = [1, 1, 2, 1, 3];

/// chring itself, with the file's fleet added in file order.
fn reference(name: &str) -> Box<dyn Strategy> {
    let mut s: Box<dyn Strategy> = match name {
        "ring" => Box::new(Ring::<8, 4096, 1024>::new(RingConfig::new(100)).unwrap()),
        "maglev" => Box::new(Maglev::<8, 65_537>::new()),
        "jump" => Box::new(Jump::<8, 64>::new()),
        "rendezvous" => Box::new(Rendezvous::<8>::new()),
        "modulo" => Box::new(Modulo::<8>::new()),
        _ => unreachable!(),
    };
    for (i, (id, w)) in IDS.iter().zip(WEIGHTS).enumerate() {
        s.add(BackendId(i as u16), id.as_bytes(), w).unwrap();
    }
    s
}

#[test]
fn route_agrees_with_chring() {
    let dir = scratch("route");
    let fleet = dir.join("fleet.txt");
    std::fs::write(&fleet, FLEET).unwrap();
    let keys: Vec<String> = (0..2000).map(|i| format!("customer-{i:05}")).collect();
    // CRLF line ends and a last line without one give the same keys.
    let mut input = keys[..1000].join("\r\n");
    input.push_str("\r\n");
    input.push_str(&keys[1000..].join("\n"));
    for name in ["ring", "maglev", "jump", "rendezvous", "modulo"] {
        let out = host_sim()
            .args(["route", "--strategy", name, "--backends"])
            .arg(&fleet)
            .write_stdin(input.clone())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stderr.is_empty());
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), keys.len(), "{name}");
        let mut s = reference(name);
        let mut used = std::collections::BTreeSet::new();
        for (line, key) in lines.iter().zip(&keys) {
            let id = s.pick(chring::hash(key.as_bytes())).unwrap();
            let want = format!("{key},{}", IDS[usize::from(id.0)]);
            assert_eq!(*line, want, "{name}");
            used.insert(id);
        }
        assert_eq!(used.len(), IDS.len(), "{name} used every backend");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10: `route --strategy maglev` follows the weights of the backends file,
/// whatever their scale: weights 1 and 3 and weights 21845 and 65535 (the same
/// ratio; before the fix the second split 33% / 67%) route every key the same
/// way, and about 25% / 75% of 10,000 keys.
#[test]
fn route_maglev_follows_weights_at_any_scale() {
    let dir = scratch("maglev-weights");
    let keys: String = (0..10_000).map(|i| format!("key-{i}\n")).collect();
    let mut outputs = Vec::new();
    for (file, text) in [
        ("small", "cache-a 1\ncache-b 3\n"),
        ("large", "cache-a 21845\ncache-b 65535\n"),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        let out = host_sim()
            .args(["route", "--strategy", "maglev", "--backends"])
            .arg(&path)
            .write_stdin(keys.clone())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines = text.lines().count();
        let a = text.lines().filter(|l| l.ends_with(",cache-a")).count();
        let b = text.lines().filter(|l| l.ends_with(",cache-b")).count();
        assert_eq!((lines, a + b), (10_000, 10_000), "{file}");
        let share = a as f64 / 10_000.0;
        assert!((share - 0.25).abs() < 0.015, "{file}: cache-a has {share}");
        outputs.push(text);
    }
    assert_eq!(outputs[0], outputs[1], "same ratio, same routing");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn route_bad_input_is_one_line_and_non_zero() {
    let dir = scratch("bad");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let good = write("good", "a\nb\n");
    let empty = write("empty", "# nothing here\n\n");
    let weight = write("weight", "a 1\nb heavy\n");
    let zero = write("zero", "a 0\n");
    let dup = write("dup", "a\nb\na 2\n");
    let big = write("big", "a 65535\nb 65535\n");
    let missing = dir.join("missing").to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--strategy", "nope", "--backends", &good],
            "unknown strategy",
        ),
        (
            vec!["--strategy", "round_robin", "--backends", &good],
            "not key-affine",
        ),
        (
            vec!["--strategy", "p2c", "--backends", &good],
            "not key-affine",
        ),
        (
            vec!["--strategy", "bounded", "--backends", &good],
            "not key-affine",
        ),
        (
            vec!["--strategy", "ring", "--backends", &empty],
            "no backend",
        ),
        (vec!["--strategy", "ring", "--backends", &weight], "line 2"),
        (
            vec!["--strategy", "ring", "--backends", &zero],
            "bad weight",
        ),
        (vec!["--strategy", "ring", "--backends", &dup], "duplicate"),
        (
            vec!["--strategy", "ring", "--backends", &missing],
            "cannot read",
        ),
        (vec!["--strategy", "ring", "--backends", &big], "capacity"),
        (vec!["--strategy", "ring"], "--backends"),
    ];
    for (args, needle) in cases {
        let out = host_sim()
            .arg("route")
            .args(&args)
            .write_stdin("k\n")
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err:?}");
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn scenario_smoke_and_help() {
    let dir = scratch("scenario");
    let out = host_sim()
        .args(["scenario", "c", "--c-trials", "2", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not a terminal: no progress bar, nothing on stderr.
    assert!(out.stderr.is_empty());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Scenario C"), "{stdout}");
    for f in ["results.json", "c_cov_vs_vnodes.svg", "c_distribution.csv"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let help = host_sim().args(["scenario", "--help"]).output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--rate",
        "--customers",
        "--duration",
        "--servers",
        "--cache-capacity",
        "--ttl",
        "--arrival",
        "--distribution",
        "--zipf-s",
        "--vnodes",
        "--processing-ms",
        "--cache-read-ms",
        "--datastore-ms",
        "--change",
        "--change-at",
        "--sweep-capacities",
        "--c-trials",
        "--c-keys",
        "--seed",
        "--format",
        "--out",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let bad = host_sim()
        .args(["scenario", "a", "--ttl", "0"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(String::from_utf8(bad.stderr).unwrap().lines().count(), 1);
    let _ = std::fs::remove_dir_all(dir);
}
