//! chring's nginx modes against the real nginx (issue 6).
//!
//! One nginx (foreground, one process, 127.0.0.1 only, files in a temp dir)
//! carries one upstream per case, each in front of the same HTTP backends
//! (threads of this test answering `backend-N`). Every case sends 10,000 keys
//! in the `X-Key` header (`hash $http_x_key [consistent];`) over a kept-alive
//! connection and requires the backend that answered to be the one `host-sim
//! route --config` (chring's `compat::nginx`) names for the very same
//! nginx.conf and upstream.
//!
//! `#[ignore]`d: `scripts/test-all.sh compat_http` installs nginx and runs it
//! with `CHRING_DAEMON_TESTS=1 ... --include-ignored`. Without nginx it prints
//! SKIPPED (or fails when `CHRING_DAEMON_TESTS=1` requires it). nginx is
//! stopped by its PID when the test ends, pass or fail.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::time::Instant;

use crate::compat_http::{
    Backends, Daemon, KEYS, Probe, TempDir, daemons_required, find_binary, free_ports,
    free_ports_dual, keys, loopback_sources, run_keys, run_probes, version,
};

struct Case {
    name: &'static str,
    consistent: bool,
    /// Weights of the backends used, in `server` order.
    weights: &'static [u32],
    /// Index of a server marked `down`.
    down: Option<usize>,
}

const fn case(
    name: &'static str,
    consistent: bool,
    weights: &'static [u32],
    down: Option<usize>,
) -> Case {
    Case {
        name,
        consistent,
        weights,
        down,
    }
}

const CASES: &[Case] = &[
    case("consistent_equal", true, &[1, 1, 1, 1, 1], None),
    case("consistent_weighted", true, &[1, 1, 2, 1, 3], None),
    case("consistent_sixth_added", true, &[1, 1, 2, 1, 3, 1], None),
    case("consistent_one_down", true, &[1, 1, 2, 1, 3], Some(2)),
    case("modulo_equal", false, &[1, 1, 1, 1, 1], None),
    case("modulo_weighted", false, &[1, 1, 2, 1, 3], None),
    case("modulo_sixth_added", false, &[1, 1, 2, 1, 3, 1], None),
    case("modulo_one_down", false, &[1, 1, 2, 1, 3], Some(2)),
];

fn address(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn nginx_conf(dir: &std::path::Path, backends: &[u16], fronts: &[u16]) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = write!(
        c,
        "# written by chring's compat_nginx test\n\
         daemon off;\nmaster_process off;\nworker_processes 1;\n\
         pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n    access_log off;\n    keepalive_requests 1000000;\n\
         \x20   client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n"
    );
    for (case, front) in CASES.iter().zip(fronts) {
        let _ = writeln!(c, "    upstream {} {{", case.name);
        let _ = writeln!(
            c,
            "        hash $http_x_key{};",
            if case.consistent { " consistent" } else { "" }
        );
        for (i, w) in case.weights.iter().enumerate() {
            let mut params = String::new();
            if *w != 1 {
                let _ = write!(params, " weight={w}");
            }
            if i == 1 {
                params.push_str(" max_fails=3 fail_timeout=30s");
            }
            if case.down == Some(i) {
                params.push_str(" down");
            }
            let _ = writeln!(c, "        server {}{params};", address(backends[i]));
        }
        let _ = writeln!(c, "        keepalive 8;\n    }}");
        let _ = writeln!(
            c,
            "    server {{\n        listen 127.0.0.1:{front};\n        location / {{\n\
             \x20           proxy_pass http://{};\n            proxy_http_version 1.1;\n\
             \x20           proxy_set_header Connection \"\";\n            proxy_next_upstream off;\n\
             \x20       }}\n    }}",
            case.name
        );
    }
    c.push_str("}\n");
    c
}

#[test]
#[ignore = "starts nginx; run by `scripts/test-all.sh compat_http`"]
fn nginx_hash_matches_the_daemon() {
    let Some(nginx) = find_binary("nginx") else {
        let msg = "nginx is not installed (Debian: apt-get install nginx-light)";
        assert!(
            !daemons_required(),
            "{msg}, but CHRING_DAEMON_TESTS=1 requires it"
        );
        println!("SKIPPED nginx_hash_matches_the_daemon: {msg}");
        return;
    };
    let version = version(&nginx, "-v");
    // Declared before the daemon: dropped after it, pass or fail.
    let tmp = TempDir::new("nginx", &["body", "proxy"]);
    let dir = tmp.0.clone();
    let backends = Backends::start(6);
    let fronts = free_ports(CASES.len());
    let conf = nginx_conf(&dir, &backends.ports, &fronts);
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, &conf).expect("write nginx.conf");

    let mut daemon = Daemon::spawn(
        "nginx",
        Command::new(&nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path),
        dir.join("stderr.log"),
    );
    for &f in &fronts {
        daemon.wait_listening(f);
    }

    let started = Instant::now();
    let ports = backends.ports.clone();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = CASES
            .iter()
            .zip(&fronts)
            .enumerate()
            .map(|(i, (case, &front))| {
                let conf = &conf;
                let ports = &ports;
                s.spawn(move || {
                    let mut router = host_sim::config::nginx::router(conf, Some(case.name))
                        .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
                    let keys = keys(0x6e67_696e_7800 + i as u64);
                    run_keys(
                        front,
                        &keys,
                        router.as_mut(),
                        &|b| address(ports[b]),
                        &|k| format!("/{}", k.len()),
                        &|k| k.to_string(),
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
            "  {:<24} weights {:?}{}: {}/{} agree{}",
            case.name,
            case.weights,
            case.down
                .map_or(String::new(), |d| format!(" (server {d} down)")),
            t.agree,
            t.sent,
            if t.fallback > 0 {
                format!(", {} round-robin fallbacks not compared", t.fallback)
            } else {
                String::new()
            }
        );
        for d in &t.first_diffs {
            println!("    {d}");
        }
        failed |= t.sent != KEYS || t.agree + t.fallback != t.sent;
        failed |= case.down.is_none() && t.fallback > 0;
    }
    assert!(!failed, "chring and nginx disagree (above)");
}

/// Issue 13's `ip_hash` cases: weights, a server `down`, a server added, and
/// (`mapped`) a dual-stack listener, where nginx sees each IPv4 client as
/// `::ffff:127.x.y.z` and hashes all 16 bytes, plus one client on `::1`.
struct IpCase {
    name: &'static str,
    weights: &'static [u32],
    down: Option<usize>,
    mapped: bool,
}

const IP_CASES: &[IpCase] = &[
    IpCase {
        name: "ip_equal",
        weights: &[1, 1, 1, 1, 1],
        down: None,
        mapped: false,
    },
    IpCase {
        name: "ip_weighted",
        weights: &[1, 1, 2, 1, 3],
        down: None,
        mapped: false,
    },
    IpCase {
        name: "ip_sixth_added",
        weights: &[1, 1, 2, 1, 3, 1],
        down: None,
        mapped: false,
    },
    IpCase {
        name: "ip_one_down",
        weights: &[1, 1, 2, 1, 3],
        down: Some(2),
        mapped: false,
    },
    IpCase {
        name: "ip_v6_weighted",
        weights: &[1, 1, 2, 1, 3],
        down: Some(4),
        mapped: true,
    },
];

fn nginx_ip_conf(dir: &std::path::Path, backends: &[u16], fronts: &[u16]) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = write!(
        c,
        "# written by chring's compat_nginx test (issue 13)\n\
         daemon off;\nmaster_process off;\nworker_processes 1;\n\
         pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 512; }}\n\
         http {{\n    access_log off;\n\
         \x20   client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n"
    );
    for (case, front) in IP_CASES.iter().zip(fronts) {
        let _ = writeln!(c, "    upstream {} {{\n        ip_hash;", case.name);
        for (i, w) in case.weights.iter().enumerate() {
            let mut params = String::new();
            if *w != 1 {
                let _ = write!(params, " weight={w}");
            }
            if case.down == Some(i) {
                params.push_str(" down");
            }
            let _ = writeln!(c, "        server {}{params};", address(backends[i]));
        }
        let listen = if case.mapped {
            format!("[::]:{front} ipv6only=off")
        } else {
            format!("127.0.0.1:{front}")
        };
        let _ = writeln!(
            c,
            "    }}\n    server {{\n        listen {listen};\n        location / {{\n\
             \x20           proxy_pass http://{};\n            proxy_next_upstream off;\n\
             \x20       }}\n    }}",
            case.name
        );
    }
    c.push_str("}\n");
    c
}

/// Issue 13: nginx `ip_hash` against the real nginx, 10,000 client addresses
/// per case (one fresh connection each, from its own 127.x.y.z).
#[test]
#[ignore = "starts nginx; run by `scripts/test-all.sh compat_http`"]
fn nginx_ip_hash_matches_the_daemon() {
    let Some(nginx) = find_binary("nginx") else {
        let msg = "nginx is not installed (Debian: apt-get install nginx-light)";
        assert!(
            !daemons_required(),
            "{msg}, but CHRING_DAEMON_TESTS=1 requires it"
        );
        println!("SKIPPED nginx_ip_hash_matches_the_daemon: {msg}");
        return;
    };
    let version = version(&nginx, "-v");
    let tmp = TempDir::new("nginx13", &["body", "proxy"]);
    let dir = tmp.0.clone();
    let backends = Backends::start(6);
    let fronts: Vec<u16> = {
        let mut v4 = free_ports(IP_CASES.len()).into_iter();
        let mut dual = free_ports_dual(1).into_iter();
        IP_CASES
            .iter()
            .map(|c| if c.mapped { dual.next() } else { v4.next() })
            .collect::<Option<Vec<u16>>>()
            .expect("enough ports")
    };
    let conf = nginx_ip_conf(&dir, &backends.ports, &fronts);
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, &conf).expect("write nginx.conf");
    let mut daemon = Daemon::spawn(
        "nginx",
        Command::new(&nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path),
        dir.join("stderr.log"),
    );
    for &f in &fronts {
        daemon.wait_listening(f);
    }
    let started = Instant::now();
    let ports = backends.ports.clone();
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = IP_CASES
            .iter()
            .zip(&fronts)
            .enumerate()
            .map(|(i, (case, &front))| {
                let (conf, ports) = (&conf, &ports);
                s.spawn(move || {
                    let mut router = host_sim::config::nginx::router(conf, Some(case.name))
                        .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
                    let request =
                        "GET / HTTP/1.1\r\nHost: chring.test\r\nConnection: close\r\n\r\n";
                    let mut probes: Vec<Probe> =
                        loopback_sources(0x6970_6861_7368 + i as u64, KEYS)
                            .into_iter()
                            .map(|a| Probe {
                                request: request.into(),
                                route_key: if case.mapped {
                                    format!("::ffff:{a}")
                                } else {
                                    a.to_string()
                                },
                                from: Some(IpAddr::V4(a)),
                            })
                            .collect();
                    if case.mapped {
                        probes.push(Probe {
                            request: request.into(),
                            route_key: "::1".into(),
                            from: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                        });
                    }
                    let to = SocketAddr::from((crate::compat_http::LOCALHOST, front));
                    let t = run_probes(to, &probes, router.as_mut(), &|b| address(ports[b]));
                    (t, probes.len())
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
        "{version}: {} ip_hash cases x {KEYS} client addresses in {elapsed:.1} s",
        IP_CASES.len()
    );
    let mut failed = false;
    for (case, (t, n)) in IP_CASES.iter().zip(&results) {
        println!(
            "  {:<16} {} weights {:?}{}: {}/{} agree",
            case.name,
            if case.mapped {
                "IPv6 (v4-mapped + ::1)"
            } else {
                "IPv4                  "
            },
            case.weights,
            case.down
                .map_or(String::new(), |d| format!(" (server {d} down)")),
            t.agree,
            t.sent,
        );
        for d in &t.first_diffs {
            println!("    {d}");
        }
        failed |= t.sent != *n || t.agree != t.sent || *n < KEYS;
    }
    assert!(!failed, "chring and nginx disagree (above)");
}
