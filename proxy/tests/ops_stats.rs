//! nutcracker's stats port over real sockets on 127.0.0.1, against the
//! in-memory test fleet (tests/ops_support).

mod ops_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chring_proxy::state::Control;
use chring_proxy::stats;
use ops_support::{Fleet, connect, read_to_close, served};

fn start(fleet: &Arc<Fleet>, interval: Duration) -> ops_support::Served {
    let ctl: Arc<dyn Control> = fleet.clone();
    served(move |l| stats::serve(l, ctl, interval, "testhost".into()))
}

fn fetch(addr: std::net::SocketAddr) -> (String, serde_json::Value) {
    let doc = read_to_close(&mut connect(addr));
    let v = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
    (doc, v)
}

#[test]
fn connect_gets_nutcrackers_document_and_close() {
    let fleet = Fleet::new(&[("alpha", 2), ("beta", 1)]);
    fleet.set_clients("alpha", 4);
    fleet.record("alpha", "s2", "get", 100, false);
    let srv = start(&fleet, Duration::ZERO);
    let (doc, v) = fetch(srv.addr);
    assert!(doc.ends_with("}\n"));
    // The header fields, in nutcracker's order.
    let order = [
        "service",
        "source",
        "version",
        "uptime",
        "timestamp",
        "total_connections",
        "curr_connections",
        "alpha",
        "beta",
    ];
    let at: Vec<usize> = order
        .iter()
        .map(|k| doc.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{doc}");
    assert_eq!(v["service"], "chring-proxy");
    assert_eq!(v["source"], "testhost");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(v["uptime"].as_u64().unwrap() < 60);
    assert_eq!(v["total_connections"], 4);
    assert_eq!(
        v["curr_connections"],
        4 + 3,
        "4 clients and one connection per server"
    );
    // Each pool: nutcracker's pool fields then one object per server with
    // nutcracker's server fields, in nutcracker's order, nothing else.
    for (pool, servers) in [("alpha", 2), ("beta", 1)] {
        let p = v[pool].as_object().unwrap();
        assert_eq!(p.len(), stats::POOL_FIELDS.len() + servers);
        for (f, _) in stats::POOL_FIELDS {
            assert!(p[f].is_u64(), "{pool}.{f}");
        }
        for i in 1..=servers {
            let s = p[&format!("s{i}")].as_object().unwrap();
            assert_eq!(s.len(), stats::SERVER_FIELDS.len());
            for (f, _) in stats::SERVER_FIELDS {
                assert!(s[f].is_u64(), "{pool}.s{i}.{f}");
            }
        }
    }
    assert_eq!(v["alpha"]["client_connections"], 4);
    assert_eq!(v["alpha"]["s2"]["requests"], 1);
    let s1 = doc.find("\"s1\": {\"server_eof\":0, \"server_err\":0, \"server_timedout\":0, \"server_connections\":1, \"server_ejected_at\":0, \"requests\":0,");
    assert!(s1.is_some(), "{doc}");
}

#[test]
fn figures_are_those_of_the_last_aggregation() {
    let fleet = Fleet::new(&[("alpha", 1)]);
    // nutcracker aggregates at start, then every interval.
    let slow = start(&fleet, Duration::from_secs(600));
    let fast = start(&fleet, Duration::from_millis(200));
    let live = start(&fleet, Duration::ZERO);
    std::thread::sleep(Duration::from_millis(100));
    for srv in [&slow, &fast, &live] {
        assert_eq!(fetch(srv.addr).1["alpha"]["s1"]["requests"], 0);
    }
    fleet.record("alpha", "s1", "get", 100, false);
    // -i 0: at once; -i 600000: not before the next aggregation.
    assert_eq!(fetch(live.addr).1["alpha"]["s1"]["requests"], 1);
    assert_eq!(fetch(slow.addr).1["alpha"]["s1"]["requests"], 0);
    // -i 200: within an interval or two (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(5);
    while fetch(fast.addr).1["alpha"]["s1"]["requests"] != 1 {
        assert!(Instant::now() < deadline, "never aggregated");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fetch(slow.addr).1["alpha"]["s1"]["requests"], 0);
}

#[test]
fn many_clients_each_get_a_whole_document() {
    let fleet = Fleet::new(&[("alpha", 3)]);
    let srv = start(&fleet, Duration::from_millis(50));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let addr = srv.addr;
            std::thread::spawn(move || fetch(addr).1["alpha"]["s3"]["server_connections"].as_u64())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Some(1));
    }
}
