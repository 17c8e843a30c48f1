//! 10,000 keys written through chring-proxy and through the real nutcracker
//! land on the same backend (read back from each server directly), for
//! ketama pools of both protocols with several hashes, and for modula.

mod common;

use std::collections::HashMap;
use std::io::Write;

use common::*;

const N: usize = 10_000;
const BATCH: usize = 500;

struct Case {
    hash: &'static str,
    distribution: &'static str,
    weights: [u32; 4],
    named: bool,
    hash_tag: bool,
}

const CASES: &[Case] = &[
    Case {
        hash: "fnv1a_64",
        distribution: "ketama",
        weights: [1, 1, 1, 1],
        named: false,
        hash_tag: false,
    },
    Case {
        hash: "murmur",
        distribution: "ketama",
        weights: [1, 2, 1, 3],
        named: true,
        hash_tag: false,
    },
    Case {
        hash: "md5",
        distribution: "ketama",
        weights: [2, 1, 1, 1],
        named: false,
        hash_tag: true,
    },
    Case {
        hash: "crc32a",
        distribution: "ketama",
        weights: [1, 1, 2, 1],
        named: true,
        hash_tag: false,
    },
    Case {
        hash: "fnv1a_64",
        distribution: "modula",
        weights: [1, 1, 1, 1],
        named: false,
        hash_tag: false,
    },
    Case {
        hash: "hsieh",
        distribution: "modula",
        weights: [1, 3, 2, 1],
        named: true,
        hash_tag: true,
    },
];

fn yaml(case: &Case, redis: bool, ports: &[u16], listen: u16) -> String {
    let mut y = format!(
        "pool:\n  listen: 127.0.0.1:{listen}\n  hash: {}\n  distribution: {}\n  redis: {redis}\n  \
         auto_eject_hosts: false\n  timeout: 5000\n",
        case.hash, case.distribution
    );
    if case.hash_tag {
        y.push_str("  hash_tag: \"{}\"\n");
    }
    y.push_str("  servers:\n");
    for (i, (p, w)) in ports.iter().zip(case.weights).enumerate() {
        y.push_str(&format!("   - 127.0.0.1:{p}:{w}"));
        if case.named {
            y.push_str(&format!(" server-{i}"));
        }
        y.push('\n');
    }
    y
}

fn case_keys(case: &Case, seed: u64) -> Vec<String> {
    let mut k = keys("parity", N, seed);
    if case.hash_tag {
        for (i, key) in k.iter_mut().enumerate() {
            if i % 3 == 0 {
                *key = format!("x{{tag{}}}{key}", i % 97);
            }
        }
    }
    k
}

fn redis_store(port: u16, keys: &[String]) {
    let mut c = Resp::new(port);
    for chunk in keys.chunks(BATCH) {
        let mut out = Vec::new();
        for k in chunk {
            out.extend(encode(&[b"SET", k.as_bytes(), k.as_bytes()]));
        }
        c.w.write_all(&out).unwrap();
        for k in chunk {
            assert_eq!(c.read(), V::S("OK".into()), "SET {k}");
        }
    }
}

fn redis_locations(backends: &[u16]) -> HashMap<String, usize> {
    let mut at = HashMap::new();
    for (i, &p) in backends.iter().enumerate() {
        let mut c = Resp::new(p);
        for k in c.keys() {
            assert!(at.insert(k.clone(), i).is_none(), "{k} on two servers");
        }
        assert_eq!(c.cmd(&["FLUSHALL"]), V::S("OK".into()));
    }
    at
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn redis_pools_route_like_nutcracker() {
    let servers: Vec<Daemon> = (0..4).map(|_| redis()).collect();
    let ports: Vec<u16> = servers.iter().map(|d| d.port).collect();
    for (n, case) in CASES.iter().enumerate() {
        let keys = case_keys(case, n as u64);
        let nc_port = free_port();
        let nc = nutcracker(&yaml(case, true, &ports, nc_port), nc_port);
        redis_store(nc_port, &keys);
        drop(nc);
        let want = redis_locations(&ports);
        assert_eq!(want.len(), N, "{}", case.hash);

        let proxy = start(&yaml(case, true, &ports, 0));
        redis_store(proxy.port("pool"), &keys);
        let got = redis_locations(&ports);
        drop(proxy);
        assert_eq!(got.len(), N);
        let differ = keys.iter().filter(|k| want.get(*k) != got.get(*k)).count();
        let count = |m: &HashMap<String, usize>| {
            (0..4)
                .map(|i| m.values().filter(|&&s| s == i).count())
                .collect::<Vec<_>>()
        };
        eprintln!(
            "{} {}: nutcracker {:?} proxy {:?}",
            case.distribution,
            case.hash,
            count(&want),
            count(&got)
        );
        assert_eq!(
            differ, 0,
            "{} {}: {differ} of {N} keys on another server",
            case.distribution, case.hash
        );
        // Every server got some keys (the comparison is not vacuous).
        for i in 0..4 {
            assert!(
                got.values().any(|&s| s == i),
                "{} {}: server {i} empty",
                case.distribution,
                case.hash
            );
        }
    }
}

fn mc_store(port: u16, keys: &[String]) {
    let mut c = Mc::new(port);
    for chunk in keys.chunks(BATCH) {
        let mut out = Vec::new();
        for k in chunk {
            out.extend(format!("set {k} 0 0 {}\r\n{k}\r\n", k.len()).bytes());
        }
        c.raw(&out);
        for k in chunk {
            assert_eq!(c.line(), "STORED", "set {k}");
        }
    }
}

fn mc_locations(backends: &[u16], keys: &[String]) -> HashMap<String, usize> {
    let mut at = HashMap::new();
    for (i, &p) in backends.iter().enumerate() {
        let mut c = Mc::new(p);
        for chunk in keys.chunks(100) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            for (k, v) in c.get(&refs) {
                assert_eq!(k, v);
                assert!(at.insert(k.clone(), i).is_none(), "{k} on two servers");
            }
        }
        c.raw(b"flush_all\r\n");
        assert_eq!(c.line(), "OK");
    }
    at
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn memcache_pools_route_like_nutcracker() {
    let servers: Vec<Daemon> = (0..4).map(|_| memcached()).collect();
    let ports: Vec<u16> = servers.iter().map(|d| d.port).collect();
    for (n, case) in CASES.iter().enumerate() {
        let keys = case_keys(case, 100 + n as u64);
        let nc_port = free_port();
        let nc = nutcracker(&yaml(case, false, &ports, nc_port), nc_port);
        mc_store(nc_port, &keys);
        drop(nc);
        let want = mc_locations(&ports, &keys);
        assert_eq!(want.len(), N, "{}", case.hash);

        let proxy = start(&yaml(case, false, &ports, 0));
        mc_store(proxy.port("pool"), &keys);
        let got = mc_locations(&ports, &keys);
        drop(proxy);
        assert_eq!(got.len(), N);
        let differ = keys.iter().filter(|k| want.get(*k) != got.get(*k)).count();
        assert_eq!(
            differ, 0,
            "{} {}: {differ} of {N} keys on another server",
            case.distribution, case.hash
        );
        for i in 0..4 {
            assert!(
                got.values().any(|&s| s == i),
                "{} {}: server {i} empty",
                case.distribution,
                case.hash
            );
        }
    }
}
