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

/// Issue 10, part 5: a key the daemon would not hash (nginx: the empty key)
/// is reported on its own line and the stream goes on; the exit status says
/// some keys were not routed.
#[test]
fn route_reports_unrouted_keys_and_goes_on() {
    let dir = scratch("unrouted");
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        "http {\n upstream u {\n  hash $k consistent;\n  server a:1;\n  server b:1;\n }\n}\n",
    )
    .unwrap();
    let out = host_sim()
        .args(["route", "--config"])
        .arg(&conf)
        .write_stdin("k1\n\nk3\n")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("k1,") && lines[0].len() > 3,
        "{stdout}"
    );
    assert_eq!(lines[1], ",");
    assert!(
        lines[2].starts_with("k3,") && lines[2].len() > 3,
        "{stdout}"
    );
    let errs: Vec<&str> = stderr.lines().collect();
    assert_eq!(errs.len(), 2, "{stderr}");
    assert!(
        errs[0].contains("key on line 2") && errs[0].contains("round robin"),
        "{stderr}"
    );
    assert!(
        errs[1].starts_with("error: ") && errs[1].contains("1 of 3 keys"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10, part 5: a server printed with a comma would break "the backend
/// follows the last comma": refused before any key is read.
#[test]
fn route_refuses_backends_with_commas() {
    let dir = scratch("commas");
    let yaml = dir.join("nutcracker.yml");
    std::fs::write(
        &yaml,
        "p:\n  servers:\n   - 127.0.0.1:6379:1 a,b\n   - 127.0.0.1:6380:1 c\n",
    )
    .unwrap();
    let fleet = dir.join("fleet.txt");
    std::fs::write(&fleet, "a\nb,c\n").unwrap();
    for args in [
        vec!["--config".to_string(), yaml.to_string_lossy().into_owned()],
        vec![
            "--strategy".to_string(),
            "ring".to_string(),
            "--backends".to_string(),
            fleet.to_string_lossy().into_owned(),
        ],
    ] {
        let out = host_sim()
            .arg("route")
            .args(&args)
            .write_stdin("k\n")
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
        assert!(err.contains("comma") && err.lines().count() == 1, "{err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10, part 5: workloads beyond the simulator's limits fail at once with
/// one line and status 2, before anything is allocated or simulated.
#[test]
fn scenario_limits_fail_fast() {
    let dir = scratch("limits");
    for args in [
        &["c", "--c-keys", "18446744073709551615"][..],
        &["c", "--c-keys", "10000001"],
        &["c", "--c-trials", "4294967295"],
        &["c", "--c-backends", "18446744073709551615"],
        &["a", "--rate", "1e9"],
        &["a", "--rate", "inf"],
        &["a", "--duration", "1e7"],
        &["a", "--processing-ms", "3000000"],
        &["a", "--datastore-ms", "1e10"],
        &["a", "--cache-read-ms", "-1"],
        &[
            "a",
            "--processing-ms",
            "1000000",
            "--datastore-ms",
            "1200000",
        ],
        &["a", "--servers", "18446744073709551615"],
        &["b", "--servers", "18446744073709551615"],
        &["a", "--cache-capacity", "18446744073709551615"],
        &["a", "--window", "0.000001"],
        &["a", "--customers", "0"],
        &["a", "--vnodes", "4294967295"],
    ] {
        let t = std::time::Instant::now();
        let out = host_sim()
            .arg("scenario")
            .args(args)
            .arg("--out")
            .arg(&dir)
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(t.elapsed().as_secs() < 10, "{args:?}: {:?}", t.elapsed());
    }
    // Nothing was written for a refused run.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    let help = host_sim().args(["scenario", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for limit in ["10000000", "2147483.647", "100000000"] {
        assert!(help.contains(limit), "--help does not state {limit}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10, part 5: a rerun into a directory of earlier results leaves
/// exactly this run's files (no stale CSV or chart of another scenario) and
/// keeps files host-sim does not write.
#[test]
fn scenario_rerun_replaces_its_own_files_only() {
    let dir = scratch("rerun");
    for stale in [
        "a_hit_rate.csv",
        "a_hit_rate.svg",
        "d_zipf_load.png",
        "results.json",
    ] {
        std::fs::write(dir.join(stale), "stale").unwrap();
    }
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
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
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "c_cov_vs_vnodes.csv",
            "c_cov_vs_vnodes.svg",
            "c_distribution.csv",
            "c_distribution.svg",
            "notes.txt",
            "results.json",
        ]
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );
    assert!(
        std::fs::read_to_string(dir.join("results.json"))
            .unwrap()
            .contains("\"c\"")
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Issue 10, part 5: hostile configuration files end in one line and status
/// 2 (a bad input file), quickly: an alias bomb, 20,000-deep nesting, and a
/// file above 1 MiB.
#[test]
fn route_hostile_configs_fail_fast() {
    let dir = scratch("hostile");
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        bomb.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
    }
    let mut big = String::from("upstream u {\n hash $k consistent;\n");
    for i in 0..100_000 {
        big.push_str(&format!(" server a{i};\n"));
    }
    big.push_str("}\n");
    for (name, format, text, needle) in [
        ("bomb.yml", "twemproxy", bomb, "anchors"),
        (
            "deep.yml",
            "twemproxy",
            format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)),
            "line 1",
        ),
        // 40 KB of `- ` overflowed the stack (SIGABRT) before the fix.
        (
            "deep-block.yml",
            "twemproxy",
            format!("{}x\n", "- ".repeat(20_000)),
            "deeper than 16",
        ),
        ("big.conf", "nginx", big, "1048576 bytes"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = host_sim()
            .args(["route", "--format", format, "--config"])
            .arg(&path)
            .write_stdin("k\n")
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(needle), "{name}: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `hil --udp` refuses what it cannot run before starting anything.
#[test]
fn hil_udp_refuses_bad_arguments() {
    // --udp needs --qemu: a clap usage error.
    host_sim()
        .args(["hil", "--udp", "--port", "/nonexistent"])
        .assert()
        .code(2);
    // Scenario B adds a server: 8 + 1 do not fit the device's 8.
    let out = host_sim()
        .args([
            "hil",
            "--qemu",
            "--udp",
            "--elf",
            "/nonexistent",
            "--scenario",
            "b",
            "--servers",
            "8",
        ])
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(err.contains("holds 8 servers"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn lb_compare_refuses_bad_arguments_and_dead_balancers() {
    let dir = scratch("lb-compare");
    let out = dir.join("out");
    for (args, status, want) in [
        (&["--requests", "0"][..], 2, "--requests"),
        (&["--algorithms", "alpha1"], 2, "unknown algorithm 'alpha1'"),
        (&["--backends", "2"], 2, "--backends"),
        (&["--algorithms", "p2c"], 2, "need --proxy PATH"),
        (
            &["--proxy", "x", "--fail-share", "1.5"],
            2,
            "failure share 1.5",
        ),
        (
            &["--proxy", "x", "--hedge-after", "soon"],
            2,
            "--hedge-after",
        ),
        (
            &[
                "--proxy",
                "/nonexistent/chring-proxy",
                "--algorithms",
                "ring",
            ],
            1,
            "cannot start the balancer of ring",
        ),
        // A "balancer" that exits at once: reported, not waited for.
        (
            &["--proxy", "/bin/false", "--algorithms", "p2c"],
            1,
            "balancer exited",
        ),
    ] {
        let o = host_sim()
            .arg("lb-compare")
            .args(args)
            .arg("--out")
            .arg(&out)
            .arg("--format")
            .arg("svg")
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(status), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        let last = err.lines().last().unwrap_or("");
        assert!(last.starts_with("error: "), "{args:?}: {err}");
    }
    // Nothing was written for a run that did not complete.
    assert!(!out.join("results.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
