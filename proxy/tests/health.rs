//! A backend killed under load: only its keys fail, and only until it is
//! ejected (auto_eject_hosts); the proxy keeps serving; the backend is
//! readmitted by the health probes after it restarts.

mod common;

use std::time::{Duration, Instant};

use chring_proxy::config::ProxyConfig;
use chring_proxy::state::{Control, Health};
use common::*;

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn killed_backend_is_ejected_then_readmitted() {
    let mut servers: Vec<Daemon> = (0..3).map(|_| redis()).collect();
    let mut y = "r:\n  listen: 127.0.0.1:0\n  redis: true\n  hash: md5\n  timeout: 500\n  \
                 auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 1000\n  \
                 servers:\n"
        .to_string();
    for (i, s) in servers.iter().enumerate() {
        y.push_str(&format!("   - 127.0.0.1:{}:1 s{i}\n", s.port));
    }
    let mut cfg = ProxyConfig::parse(&y).unwrap();
    cfg.limits.probe_interval_ms = 200;
    let proxy = start_cfg(cfg);
    let p = &proxy.proxy;
    let keys = keys("h", 600, 11);
    let owner: Vec<String> = keys
        .iter()
        .map(|k| p.route("r", k.as_bytes()).unwrap().unwrap())
        .collect();
    assert!(owner.iter().any(|o| o == "s2"));
    let mut c = Resp::new(proxy.port("r"));
    for k in &keys {
        assert_eq!(c.cmd(&["SET", k, "v"]), V::S("OK".into()));
    }

    let dead_port = servers[2].port;
    servers[2].kill();
    let killed = Instant::now();
    // Load for up to 5 s: every key in turn.
    let mut ejected_at = None;
    let mut errors_after_ejection = 0;
    let mut rounds = 0;
    while killed.elapsed() < Duration::from_secs(5) && rounds < 20 {
        rounds += 1;
        for (k, o) in keys.iter().zip(&owner) {
            // Ejected before the request was sent?
            let ejected = matches!(
                p.snapshot().pools[0].servers[2].health,
                Health::Ejected { .. }
            );
            let r = c.cmd(&["GET", k]);
            if ejected && ejected_at.is_none() {
                ejected_at = Some(killed.elapsed());
            }
            match r {
                V::B(Some(_)) => assert_ne!(o, "s2"),
                V::B(None) => assert_eq!(o, "s2", "{k}: only the dead server's keys move"),
                V::E(e) => {
                    assert_eq!(o, "s2", "{k}: {e}: only the dead server's keys fail");
                    if ejected {
                        errors_after_ejection += 1;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        if ejected_at.is_some() && rounds > 3 {
            break;
        }
    }
    let ejected_at = ejected_at.expect("s2 is ejected");
    assert!(ejected_at < Duration::from_secs(3), "{ejected_at:?}");
    assert_eq!(errors_after_ejection, 0, "no error once its keys moved");
    let snap = p.snapshot();
    assert!(snap.pools[0].servers[2].ejections >= 1);
    assert!(
        snap.events
            .iter()
            .any(|e| e.kind == "ejected" && e.server == "s2")
    );
    // Its keys now live elsewhere (misses, then writable).
    for (k, o) in keys.iter().zip(&owner) {
        if o == "s2" {
            assert_ne!(p.route("r", k.as_bytes()).unwrap().as_deref(), Some("s2"));
            assert_eq!(c.cmd(&["SET", k, "again"]), V::S("OK".into()));
        }
    }

    // Restart it on the same port: readmitted within the retry time and a probe.
    servers[2] = redis_on(dead_port, None);
    let back = eventually(Duration::from_secs(10), || {
        p.snapshot().pools[0].servers[2].health == Health::Up
    });
    assert!(back, "s2 readmitted");
    assert!(p.snapshot().events.iter().any(|e| e.kind == "readmitted"));
    for (k, o) in keys.iter().zip(&owner) {
        assert_eq!(
            p.route("r", k.as_bytes()).unwrap().as_ref(),
            Some(o),
            "{k} returns home"
        );
    }
    let s2_keys: Vec<&String> = keys
        .iter()
        .zip(&owner)
        .filter(|(_, o)| *o == "s2")
        .map(|(k, _)| k)
        .collect();
    for k in &s2_keys {
        assert_eq!(c.cmd(&["SET", k, "home"]), V::S("OK".into()));
    }
    assert_eq!(Resp::new(dead_port).keys().len(), s2_keys.len());
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn memcached_backend_ejected_and_readmitted() {
    let mut servers: Vec<Daemon> = (0..2).map(|_| memcached()).collect();
    let mut y =
        "m:\n  listen: 127.0.0.1:0\n  hash: md5\n  timeout: 500\n  auto_eject_hosts: true\n  \
                 server_failure_limit: 1\n  server_retry_timeout: 500\n  servers:\n"
            .to_string();
    for s in &servers {
        y.push_str(&format!("   - 127.0.0.1:{}:1\n", s.port));
    }
    let mut cfg = ProxyConfig::parse(&y).unwrap();
    cfg.limits.probe_interval_ms = 100;
    let proxy = start_cfg(cfg);
    let p = &proxy.proxy;
    let port = servers[1].port;
    servers[1].kill();
    // The probes alone eject it, without any traffic.
    assert!(eventually(Duration::from_secs(5), || matches!(
        p.snapshot().pools[0].servers[1].health,
        Health::Ejected { .. }
    )));
    let mut c = Mc::new(proxy.port("m"));
    for i in 0..50 {
        assert_eq!(c.set(&format!("k{i}"), "v"), "STORED");
    }
    servers[1] = memcached_on(port);
    assert!(eventually(Duration::from_secs(10), || p.snapshot().pools
        [0]
    .servers[1]
        .health
        == Health::Up));
}
