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
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::time::Instant;

use crate::compat_http::{
    Backends, Daemon, KEYS, Probe, TempDir, daemons_required, find_binary, free_ports,
    free_ports_dual, keys, loopback_sources, run_keys, run_probes, version,
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

/// What an issue-13 case sends, and so what `route` reads.
#[derive(Clone, Copy)]
enum Sends {
    /// `GET /p?a=1&k=KEY&z=2`: route reads KEY (`balance url_param k`).
    UrlParam,
    /// `GET /KEY/KEY2?q=KEY3` (or an absolute URI `http://hN.example/...` with
    /// `absolute`): route reads the request URI (`balance uri ...`).
    Uri { absolute: bool },
    /// `Host: www.dKEY.com` (KEY's letters and digits): route reads the Host
    /// value (`balance hdr(Host) use_domain_only`).
    Host,
    /// One fresh connection per key from its own 127.x.y.z: route reads the
    /// address (`balance source`). With `mapped`, haproxy listens on `:::PORT
    /// v4v6`, so it sees each client as `::ffff:127.x.y.z` (16 bytes), and one
    /// more request comes from `::1`.
    Source { mapped: bool },
}

struct Case13 {
    name: &'static str,
    /// The whole `hash-type` line, or "" for none (HAProxy's map-based default).
    hash_type: &'static str,
    /// The `balance` line's arguments.
    balance: &'static str,
    weights: &'static [u32],
    ids: &'static [u32],
    sends: Sends,
}

const fn c13(
    name: &'static str,
    hash_type: &'static str,
    balance: &'static str,
    weights: &'static [u32],
    sends: Sends,
) -> Case13 {
    Case13 {
        name,
        hash_type,
        balance,
        weights,
        ids: &[],
        sends,
    }
}

const W6: &[u32] = &[1, 1, 2, 1, 3, 1];
const UP: Sends = Sends::UrlParam;

/// Issue 13's HAProxy cases, each 10,000 keys through the daemon.
const CASES13: &[Case13] = &[
    c13("up_default", "hash-type consistent", "url_param k", W, UP),
    c13("up_sdbm", "hash-type consistent sdbm", "url_param k", W, UP),
    c13(
        "up_sdbm_av",
        "hash-type consistent sdbm avalanche",
        "url_param k",
        W,
        UP,
    ),
    c13("up_djb2", "hash-type consistent djb2", "url_param k", W, UP),
    c13(
        "up_djb2_av",
        "hash-type consistent djb2 avalanche",
        "url_param k",
        W,
        UP,
    ),
    c13("up_wt6", "hash-type consistent wt6", "url_param k", W, UP),
    c13(
        "up_wt6_av",
        "hash-type consistent wt6 avalanche",
        "url_param k",
        W,
        UP,
    ),
    c13(
        "up_crc32",
        "hash-type consistent crc32",
        "url_param k",
        W,
        UP,
    ),
    c13(
        "up_crc32_av",
        "hash-type consistent crc32 avalanche",
        "url_param k",
        W,
        UP,
    ),
    Case13 {
        ids: &[0, 7, 0, 2, 0],
        ..c13("up_ids", "hash-type consistent", "url_param k", W, UP)
    },
    c13("up_added", "hash-type consistent", "url_param k", W6, UP),
    c13(
        "up_check_post",
        "hash-type consistent",
        "url_param k check_post",
        W,
        UP,
    ),
    c13("map_default", "", "url_param k", W, UP),
    c13(
        "map_gcd",
        "hash-type map-based",
        "url_param k",
        &[2, 4, 6, 2, 8],
        UP,
    ),
    c13("map_added", "hash-type map-based", "url_param k", W6, UP),
    c13(
        "map_djb2_av",
        "hash-type map-based djb2 avalanche",
        "url_param k",
        W,
        UP,
    ),
    c13("map_wt6", "hash-type map-based wt6", "url_param k", W, UP),
    c13(
        "map_crc32",
        "hash-type map-based crc32",
        "url_param k",
        W,
        UP,
    ),
    c13(
        "source_chash",
        "hash-type consistent",
        "source",
        W,
        Sends::Source { mapped: false },
    ),
    c13(
        "source_chash_plain",
        "hash-type consistent djb2",
        "source",
        W,
        Sends::Source { mapped: false },
    ),
    c13(
        "source_map",
        "",
        "source",
        W,
        Sends::Source { mapped: false },
    ),
    c13(
        "source_v6_chash",
        "hash-type consistent",
        "source",
        W,
        Sends::Source { mapped: true },
    ),
    c13(
        "source_v6_map",
        "hash-type map-based",
        "source",
        W6,
        Sends::Source { mapped: true },
    ),
    c13(
        "uri_whole",
        "hash-type consistent",
        "uri whole",
        W,
        Sends::Uri { absolute: false },
    ),
    c13(
        "uri_len_depth",
        "hash-type consistent crc32",
        "uri len 12 depth 1",
        W,
        Sends::Uri { absolute: false },
    ),
    c13(
        "uri_len",
        "hash-type consistent",
        "uri len 7",
        W,
        Sends::Uri { absolute: false },
    ),
    c13(
        "uri_depth",
        "hash-type consistent sdbm",
        "uri depth 2 whole",
        W,
        Sends::Uri { absolute: false },
    ),
    c13(
        "uri_path_only",
        "hash-type consistent",
        "uri path-only",
        W,
        Sends::Uri { absolute: true },
    ),
    c13(
        "uri_no_path_only",
        "hash-type consistent",
        "uri",
        W,
        Sends::Uri { absolute: true },
    ),
    c13("uri_map", "", "uri", W, Sends::Uri { absolute: false }),
    c13(
        "hdr_domain",
        "hash-type consistent",
        "hdr(Host) use_domain_only",
        W,
        Sends::Host,
    ),
    c13(
        "hdr_domain_map",
        "",
        "hdr(Host) use_domain_only",
        W,
        Sends::Host,
    ),
];

fn haproxy_cfg13(backends: &[u16], fronts: &[u16]) -> String {
    let mut c = String::from(
        "# written by chring's compat_haproxy test (issue 13)\n\
         global\n    maxconn 512\n\
         defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n\
         \x20   timeout server 30s\n",
    );
    for (case, front) in CASES13.iter().zip(fronts) {
        let bind = match case.sends {
            Sends::Source { mapped: true } => format!(":::{front} v4v6"),
            _ => format!("127.0.0.1:{front}"),
        };
        let _ = write!(
            c,
            "frontend fe_{0}\n    bind {bind}\n    default_backend {0}\n\
             backend {0}\n    balance {1}\n",
            case.name, case.balance
        );
        if !case.hash_type.is_empty() {
            let _ = writeln!(c, "    {}", case.hash_type);
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

/// The probes of one case: 10,000 keys (plus one from ::1 for `mapped`).
fn probes13(case: &Case13, seed: u64) -> Vec<Probe> {
    let keys = keys(seed);
    let req = |target: &str, host: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: chring-test\r\n\r\n")
    };
    match case.sends {
        Sends::UrlParam => keys
            .iter()
            .map(|k| Probe {
                request: req(&format!("/p?a=1&k={k}&z=2"), "chring.test"),
                route_key: k.clone(),
                from: None,
            })
            .collect(),
        Sends::Uri { absolute } => keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let k2 = &keys[(i + 1) % keys.len()];
                let path = format!("/{k}/{k2}?q={k}");
                let host = format!("h{}.example:8080", i % 7);
                let target = if absolute {
                    format!("http://{host}{path}")
                } else {
                    path
                };
                Probe {
                    request: req(&target, &host),
                    route_key: target,
                    from: None,
                }
            })
            .collect(),
        Sends::Host => keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let label: String = k.chars().filter(char::is_ascii_alphanumeric).collect();
                let host = match i % 3 {
                    0 => format!("www.d{label}.com"),
                    1 => format!("d{label}.org"),
                    _ => format!("a.b.d{label}.example"),
                };
                Probe {
                    request: req("/", &host),
                    route_key: host,
                    from: None,
                }
            })
            .collect(),
        Sends::Source { mapped } => {
            let mut v: Vec<Probe> = loopback_sources(seed, KEYS)
                .into_iter()
                .map(|a| Probe {
                    request: req("/", "chring.test"),
                    route_key: if mapped {
                        format!("::ffff:{a}")
                    } else {
                        a.to_string()
                    },
                    from: Some(IpAddr::V4(a)),
                })
                .collect();
            if mapped {
                v.push(Probe {
                    request: req("/", "chring.test"),
                    route_key: "::1".into(),
                    from: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                });
            }
            v
        }
    }
}

/// Issue 13: `balance url_param` (every hash function and avalanche, weights,
/// explicit ids, a server added, `check_post`), `balance source` (IPv4 from
/// 127.x.y.z, IPv6 as v4-mapped addresses plus ::1), `balance uri` with
/// `whole`, `len`, `depth` and `path-only`, `balance hdr(Host)
/// use_domain_only`, each with `hash-type consistent` and map-based (explicit
/// and HAProxy's default), against the real haproxy.
#[test]
#[ignore = "starts haproxy; run by `scripts/test-all.sh compat_http`"]
fn haproxy_issue13_balances_match_the_daemon() {
    let Some(haproxy) = find_binary("haproxy") else {
        let msg = "haproxy is not installed (Debian: apt-get install haproxy)";
        assert!(
            !daemons_required(),
            "{msg}, but CHRING_DAEMON_TESTS=1 requires it"
        );
        println!("SKIPPED haproxy_issue13_balances_match_the_daemon: {msg}");
        return;
    };
    let version = version(&haproxy, "-v");
    let tmp = TempDir::new("haproxy13", &[]);
    let dir = tmp.0.clone();
    let backends = Backends::start(6);
    // Dual-stack fronts need a port free on every address.
    let fronts: Vec<u16> = {
        let mut v4 = free_ports(CASES13.len()).into_iter();
        let mut dual = free_ports_dual(2).into_iter();
        CASES13
            .iter()
            .map(|c| match c.sends {
                Sends::Source { mapped: true } => dual.next(),
                _ => v4.next(),
            })
            .collect::<Option<Vec<u16>>>()
            .expect("enough ports")
    };
    let cfg = haproxy_cfg13(&backends.ports, &fronts);
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
    // Four threads share the cases (keep-alive cases are quick, source cases
    // open one connection per key).
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<(usize, crate::compat_http::Tally, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (cfg, fronts, next) = (&cfg, &fronts, &next);
                s.spawn(move || {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(case) = CASES13.get(i) else { break };
                        let mut router = host_sim::config::haproxy::router(cfg, Some(case.name))
                            .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
                        let probes = probes13(case, 0x6861_7031_3300 + i as u64);
                        let to = SocketAddr::from((crate::compat_http::LOCALHOST, fronts[i]));
                        let t = run_probes(to, &probes, router.as_mut(), &|b| format!("s{b}"));
                        out.push((i, t, probes.len()));
                    }
                    out
                })
            })
            .collect();
        let mut all: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().expect("case thread"))
            .collect();
        all.sort_by_key(|r| r.0);
        all
    });
    let elapsed = started.elapsed().as_secs_f64();
    drop(daemon);
    drop(backends);
    drop(tmp);
    println!(
        "{version}: {} issue-13 cases x {KEYS} keys in {elapsed:.1} s",
        CASES13.len()
    );
    let mut failed = false;
    for (i, t, n) in &results {
        let case = &CASES13[*i];
        println!(
            "  {:<18} {:<38} balance {:<26} weights {:?} ids {:?}: {}/{} agree",
            case.name,
            if case.hash_type.is_empty() {
                "(no hash-type: map-based)"
            } else {
                case.hash_type
            },
            case.balance,
            case.weights,
            case.ids,
            t.agree,
            t.sent
        );
        for d in &t.first_diffs {
            println!("    {d}");
        }
        failed |= t.sent != *n || t.agree != t.sent || *n < KEYS;
    }
    assert_eq!(results.len(), CASES13.len(), "every case ran");
    assert!(!failed, "chring and HAProxy disagree (above)");
}
