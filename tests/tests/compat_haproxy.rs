//! chring's HAProxy mode against the real HAProxy 2.6 (issue 6).
//!
//! One haproxy (`-db`: foreground, one process; 127.0.0.1 only; config in a temp
//! dir) carries one frontend + backend per case, all in front of the same HTTP
//! backends (threads of this test answering `backend-N`). Every case sends
//! 10,000 keys over a kept-alive connection, in the `X-Key` header (`balance
//! hdr(X-Key)`) or as the request path (`balance uri`), and requires the server
//! that answered to be the one `host-sim route --config` (chring's
//! `compat::haproxy`) names for the very same .cfg and backend.
//!
//! `#[ignore]`d: `scripts/test-all.sh compat_http` installs haproxy and runs it
//! with `CHRING_DAEMON_TESTS=1 ... --include-ignored`. Without haproxy it prints
//! SKIPPED (or fails when `CHRING_DAEMON_TESTS=1` requires it). haproxy is
//! stopped by its PID when the test ends, pass or fail.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use crate::compat_http::{
    Backends, Daemon, KEYS, TempDir, daemons_required, find_binary, free_ports, keys, run_keys,
    version,
};

struct Case {
    name: &'static str,
    /// The `hash-type` line's arguments after `consistent`.
    hash: &'static str,
    /// `balance uri` instead of `balance hdr(X-Key)`.
    uri: bool,
    weights: &'static [u32],
    /// Explicit `id`s (0: automatic), or empty for all automatic.
    ids: &'static [u32],
}

const fn case(
    name: &'static str,
    hash: &'static str,
    uri: bool,
    weights: &'static [u32],
    ids: &'static [u32],
) -> Case {
    Case {
        name,
        hash,
        uri,
        weights,
        ids,
    }
}

const W: &[u32] = &[1, 1, 2, 1, 3];

const CASES: &[Case] = &[
    case("default_equal", "", false, &[1, 1, 1, 1, 1], &[]),
    case("default_weighted", "", false, W, &[]),
    case("default_sixth_added", "", false, &[1, 1, 2, 1, 3, 1], &[]),
    case("explicit_ids", "", false, W, &[0, 7, 0, 2, 0]),
    case("sdbm", "sdbm", false, W, &[]),
    case("sdbm_avalanche", "sdbm avalanche", false, W, &[]),
    case("djb2", "djb2", false, W, &[]),
    case("djb2_avalanche", "djb2 avalanche", false, W, &[]),
    case("wt6", "wt6", false, W, &[]),
    case("wt6_avalanche", "wt6 avalanche", false, W, &[]),
    case("crc32", "crc32", false, W, &[]),
    case("crc32_avalanche", "crc32 avalanche", false, W, &[]),
    case("uri_crc32", "crc32", true, &[1, 1, 2, 1, 3, 1], &[]),
];

fn haproxy_cfg(backends: &[u16], fronts: &[u16]) -> String {
    let mut c = String::from(
        "# written by chring's compat_haproxy test\n\
         global\n    maxconn 512\n\
         defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n\
         \x20   timeout server 30s\n    balance hdr(X-Key)\n",
    );
    for (case, front) in CASES.iter().zip(fronts) {
        let _ = write!(
            c,
            "frontend fe_{0}\n    bind 127.0.0.1:{front}\n    default_backend {0}\n\
             backend {0}\n    hash-type consistent{1}{2}\n",
            case.name,
            if case.hash.is_empty() { "" } else { " " },
            case.hash
        );
        if case.uri {
            c.push_str("    balance uri\n");
        }
        for (i, w) in case.weights.iter().enumerate() {
            let mut params = String::new();
            if *w != 1 {
                let _ = write!(params, " weight {w}");
            }
            if let Some(&id) = case.ids.get(i).filter(|&&id| id != 0) {
                let _ = write!(params, " id {id}");
            }
            let _ = writeln!(c, "    server s{i} 127.0.0.1:{}{params}", backends[i]);
        }
    }
    c
}

#[test]
#[ignore = "starts haproxy; run by `scripts/test-all.sh compat_http`"]
fn haproxy_consistent_matches_the_daemon() {
    let Some(haproxy) = find_binary("haproxy") else {
        let msg = "haproxy is not installed (Debian: apt-get install haproxy)";
        assert!(
            !daemons_required(),
            "{msg}, but CHRING_DAEMON_TESTS=1 requires it"
        );
        println!("SKIPPED haproxy_consistent_matches_the_daemon: {msg}");
        return;
    };
    let version = version(&haproxy, "-v");
    // Declared before the daemon: dropped after it, pass or fail.
    let tmp = TempDir::new("haproxy", &[]);
    let dir = tmp.0.clone();
    let backends = Backends::start(6);
    let fronts = free_ports(CASES.len());
    let cfg = haproxy_cfg(&backends.ports, &fronts);
    let cfg_path = dir.join("haproxy.cfg");
    std::fs::write(&cfg_path, &cfg).expect("write haproxy.cfg");

    let mut daemon = Daemon::spawn(
        "haproxy",
        Command::new(&haproxy).arg("-db").arg("-f").arg(&cfg_path),
        dir.join("haproxy.log"),
    );
    for &f in &fronts {
        daemon.wait_listening(f);
    }

    let started = Instant::now();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = CASES
            .iter()
            .zip(&fronts)
            .enumerate()
            .map(|(i, (case, &front))| {
                let cfg = &cfg;
                s.spawn(move || {
                    let mut router = host_sim::config::haproxy::router(cfg, Some(case.name))
                        .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
                    let keys = keys(0x6861_7072_6f78 + i as u64);
                    let path = |k: &str| {
                        if case.uri {
                            format!("/{k}")
                        } else {
                            "/".to_string()
                        }
                    };
                    run_keys(
                        front,
                        &keys,
                        router.as_mut(),
                        &|b| format!("s{b}"),
                        &path,
                        &path_or_key(case.uri),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("case thread"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    drop(daemon);
    drop(backends);
    drop(tmp);

    println!(
        "{version}: {} cases x {KEYS} keys in {elapsed:.1} s",
        CASES.len()
    );
    let mut failed = false;
    for (case, t) in CASES.iter().zip(&results) {
        println!(
            "  {:<20} hash-type consistent {:<16} {} weights {:?} ids {:?}: {}/{} agree",
            case.name,
            case.hash,
            if case.uri { "uri     " } else { "hdr(X-Key)" },
            case.weights,
            case.ids,
            t.agree,
            t.sent
        );
        for d in &t.first_diffs {
            println!("    {d}");
        }
        failed |= t.sent != KEYS || t.agree != t.sent;
    }
    assert!(!failed, "chring and HAProxy disagree (above)");
}

/// What `route` reads for a key: the header value, or the request URI.
fn path_or_key(uri: bool) -> impl Fn(&str) -> String {
    move |k: &str| if uri { format!("/{k}") } else { k.to_string() }
}
