//! Servers added and removed through `Control` while clients keep working:
//! only the moved fraction of the keys misses, and it is the fraction `moves`
//! announced before the change.

mod common;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use chring_proxy::state::{Change, Control, ControlError, Health};
use common::*;

const N: usize = 10_000;

fn store(port: u16, keys: &[String]) {
    let mut c = Resp::new(port);
    for chunk in keys.chunks(500) {
        let mut out = Vec::new();
        for k in chunk {
            out.extend(encode(&[b"SET", k.as_bytes(), b"1"]));
        }
        c.w.write_all(&out).unwrap();
        for _ in chunk {
            assert_eq!(c.read(), V::S("OK".into()));
        }
    }
}

/// The fraction of `keys` that read back as a miss.
fn misses(port: u16, keys: &[String]) -> f64 {
    let mut c = Resp::new(port);
    let mut missed = 0;
    for chunk in keys.chunks(500) {
        let mut out = Vec::new();
        for k in chunk {
            out.extend(encode(&[b"GET", k.as_bytes()]));
        }
        c.w.write_all(&out).unwrap();
        for _ in chunk {
            match c.read() {
                V::B(None) => missed += 1,
                V::B(Some(_)) => {}
                o => panic!("{o:?}"),
            }
        }
    }
    missed as f64 / keys.len() as f64
}

/// GETs in a loop on another thread until `stop` (at most 60 s): counts
/// replies (also into `done`) and errors.
fn load(
    port: u16,
    keys: Vec<String>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let mut c = Resp::new(port);
        let (mut n, mut errors) = (0u64, 0u64);
        let start = Instant::now();
        while !stop.load(Relaxed) && start.elapsed() < Duration::from_secs(60) {
            let k = &keys[(n as usize * 7919) % keys.len()];
            match c.cmd(&["GET", k]) {
                V::B(_) => {}
                o => {
                    eprintln!("load: {o:?}");
                    errors += 1;
                }
            }
            n += 1;
            done.store(n, Relaxed);
        }
        (n, errors)
    })
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn add_and_remove_under_load_move_what_moves_says() {
    let servers: Vec<Daemon> = (0..5).map(|_| redis()).collect();
    for distribution in ["ketama", "ring", "maglev", "rendezvous"] {
        for s in &servers {
            assert_eq!(Resp::new(s.port).cmd(&["FLUSHALL"]), V::S("OK".into()));
        }
        let mut y = format!(
            "r:\n  listen: 127.0.0.1:0\n  redis: true\n  hash: md5\n  distribution: {distribution}\n  \
             timeout: 5000\n  servers:\n"
        );
        for (i, s) in servers[..4].iter().enumerate() {
            y.push_str(&format!("   - 127.0.0.1:{}:1 s{i}\n", s.port));
        }
        let proxy = start(&y);
        let port = proxy.port("r");
        let keys = keys("ctl", N, 7);
        store(port, &keys);
        assert_eq!(misses(port, &keys), 0.0);

        let add = Change::Add {
            name: "s4".into(),
            addr: format!("127.0.0.1:{}", servers[4].port),
            weight: 1,
        };
        let priced = proxy.proxy.moves("r", &add).unwrap();
        assert!(priced > 0.1 && priced < 0.3, "{distribution}: {priced}");
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let loader = load(port, keys.clone(), stop.clone(), done.clone());
        // Under way before the change, and for a while after it.
        assert!(eventually(Duration::from_secs(30), || done.load(Relaxed) >= 50));
        let moved = proxy.proxy.apply("r", add).unwrap();
        let after = done.load(Relaxed) + 50;
        assert!(eventually(Duration::from_secs(30), || done.load(Relaxed) >= after));
        stop.store(true, Relaxed);
        let (n, errors) = loader.join().unwrap();
        assert!(n >= 100, "{n}");
        assert_eq!(errors, 0, "{distribution}: no client saw an error");
        assert_eq!(moved, priced, "{distribution}");
        let missed = misses(port, &keys);
        assert!(
            (missed - moved).abs() < 0.02,
            "{distribution}: {missed} missed, {moved} moved"
        );

        // Remove an original server: its keys miss, and only they.
        store(port, &keys);
        let remove = Change::Remove { name: "s1".into() };
        let priced = proxy.proxy.moves("r", &remove).unwrap();
        let moved = proxy.proxy.apply("r", remove).unwrap();
        assert_eq!(moved, priced);
        let missed = misses(port, &keys);
        assert!(
            (missed - moved).abs() < 0.02,
            "{distribution}: {missed} missed, {moved} moved"
        );
        let names: Vec<String> = proxy.proxy.snapshot().pools[0]
            .servers
            .iter()
            .map(|s| s.name.clone())
            .collect();
        assert_eq!(names, ["s0", "s2", "s3", "s4"]);
        let events = proxy.proxy.snapshot().events;
        assert_eq!(
            events
                .iter()
                .filter(|e| e.kind == "added" || e.kind == "removed")
                .count(),
            2
        );
    }
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn control_errors_down_and_up() {
    let servers: Vec<Daemon> = (0..3).map(|_| redis()).collect();
    let mut y = "r:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n".to_string();
    for (i, s) in servers.iter().enumerate() {
        y.push_str(&format!("   - 127.0.0.1:{}:1 s{i}\n", s.port));
    }
    let proxy = start(&y);
    let p = &proxy.proxy;
    assert_eq!(p.pools(), ["r"]);
    let add = |name: &str, addr: &str, weight| Change::Add {
        name: name.into(),
        addr: addr.into(),
        weight,
    };
    assert_eq!(
        p.apply("x", add("a", "127.0.0.1:1", 1)),
        Err(ControlError::UnknownPool("x".into()))
    );
    assert!(matches!(
        p.apply("r", add("s0", "127.0.0.1:1", 1)),
        Err(ControlError::Duplicate { .. })
    ));
    assert!(matches!(
        p.apply("r", add("n", "nohost", 1)),
        Err(ControlError::Invalid(_))
    ));
    assert!(matches!(
        p.apply("r", add("n", "127.0.0.1:1", 0)),
        Err(ControlError::Invalid(_))
    ));
    assert!(matches!(
        p.moves("r", &Change::Remove { name: "zz".into() }),
        Err(ControlError::UnknownServer { .. })
    ));
    assert!(matches!(
        p.set_up("r", "zz", false),
        Err(ControlError::UnknownServer { .. })
    ));
    assert_eq!(p.snapshot().pools[0].servers.len(), 3, "nothing changed");

    let keys = keys("du", 300, 3);
    let owner_of = |k: &String| p.route("r", k.as_bytes()).unwrap().unwrap();
    let before: Vec<String> = keys.iter().map(owner_of).collect();
    p.set_up("r", "s1", false).unwrap();
    assert_eq!(p.snapshot().pools[0].servers[1].health, Health::Down);
    let mut c = Resp::new(proxy.port("r"));
    for (k, b) in keys.iter().zip(&before) {
        let now = owner_of(k);
        assert_ne!(now, "s1");
        if b != "s1" {
            assert_eq!(&now, b, "only the down server's keys move");
        }
        assert_eq!(c.cmd(&["SET", k, "v"]), V::S("OK".into()));
    }
    assert_eq!(Resp::new(servers[1].port).keys().len(), 0);
    p.set_up("r", "s1", true).unwrap();
    let after: Vec<String> = keys.iter().map(owner_of).collect();
    assert_eq!(after, before);
    let kinds: Vec<String> = p.snapshot().events.iter().map(|e| e.kind.clone()).collect();
    assert_eq!(kinds, ["down", "up"]);
}
