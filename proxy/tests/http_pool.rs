//! HTTP pools (`mode: http`, issue 15): real sockets, test backends written
//! here that answer with their name (one case with Debian's nginx as the
//! backends, `#[ignore]`d and run by the `proxy` step). Every loop is
//! bounded in count, every read in time.

mod common;
mod http_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use chring_proxy::state::Control;
use http_support::{Backends, Client};

/// A port bound on 127.0.0.1 without listening: connecting to it is refused
/// for as long as the socket is held.
fn dead_port() -> (tokio::net::TcpSocket, u16) {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let p = s.local_addr().unwrap().port();
    (s, p)
}

/// A pool `name` of `mode: http` over `backends`, with `extra` directives.
fn pool_yaml(name: &str, backends: &Backends, extra: &str) -> String {
    format!(
        // Port 0: the system picks a free port per pool (`Running::port`).
        "{name}:\n  listen: 127.0.0.1:0\n  mode: http\n{extra}  servers:\n{}",
        backends.yaml()
    )
}

fn snapshot_pool(run: &common::Running, pool: &str) -> chring_proxy::state::PoolSnapshot {
    run.proxy
        .snapshot()
        .pools
        .into_iter()
        .find(|p| p.name == pool)
        .unwrap()
}

/// Requests for every `hash_key:` go where the control port's ROUTE (over
/// TCP) and, for ketama, `host-sim route --config`'s reader (chring-config's
/// router) send their key; `source` from 200 client addresses of 127/8.
#[test]
fn routing_for_every_hash_key_equals_route() {
    let backends = Backends::start(4);
    let cases: [(&str, &str); 6] = [
        ("uri", "ketama"),
        ("path", "ketama"),
        ("header:X-User", "ketama"),
        ("param:id", "ring"),
        ("cookie:sid", "rendezvous"),
        ("source", "maglev"),
    ];
    let mut yaml = String::new();
    for (i, (key, dist)) in cases.iter().enumerate() {
        yaml.push_str(&pool_yaml(
            &format!("p{i}"),
            &backends,
            &format!("  hash_key: {key}\n  distribution: {dist}\n  check_interval: 0\n"),
        ));
    }
    let run = common::start(&yaml);
    // The control port, over TCP.
    let ctl_l = run
        .rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let ctl_port = ctl_l.local_addr().unwrap().port();
    let ctl: std::sync::Arc<dyn Control> = run.proxy.clone();
    run.rt.spawn(chring_proxy::control::serve(ctl_l, ctl, None));
    let mut control = http_support::Control::new(ctl_port);
    for (i, (key, dist)) in cases.iter().enumerate() {
        let pool = format!("p{i}");
        let mut c = Client::new(run.port(&pool));
        let mut seen = BTreeMap::<String, usize>::new();
        let mut host_sim = (*dist == "ketama")
            .then(|| chring_config::twemproxy::router(&yaml, Some(&pool)).unwrap());
        for k in 0..200 {
            let v = format!("u{k}");
            let src =
                std::net::Ipv4Addr::new(127, (k % 7) as u8, (k / 7) as u8, 1 + (k % 13) as u8);
            let (target, headers, want_key): (String, Vec<(&str, String)>, String) = match *key {
                "uri" => (format!("/x/{v}?q={k}"), vec![], format!("/x/{v}?q={k}")),
                "path" => (format!("/x/{v}?q={k}"), vec![], format!("/x/{v}")),
                "header:X-User" => ("/h".into(), vec![("X-User", v.clone())], v.clone()),
                "param:id" => (format!("/p?a=1&id={v}"), vec![], v.clone()),
                "cookie:sid" => (
                    "/c".into(),
                    vec![("Cookie", format!("a=b; sid={v}"))],
                    v.clone(),
                ),
                _ => ("/s".into(), vec![], src.to_string()),
            };
            let h: Vec<(&str, &str)> = headers.iter().map(|(a, b)| (*a, b.as_str())).collect();
            let r = if *key == "source" {
                Client::from_source(src, run.port(&pool)).get(&target, &h)
            } else {
                c.get(&target, &h)
            };
            assert_eq!(r.status, 200, "{pool} {target}");
            let want = control.route(&pool, &want_key);
            assert_eq!(r.text(), want, "{pool} ({key}, {dist}) {target}");
            if let Some(router) = host_sim.as_mut() {
                assert_eq!(router.route(want_key.as_bytes()), Some(want.as_str()));
            }
            *seen.entry(want).or_default() += 1;
        }
        assert!(seen.len() >= 3, "{pool}: keys spread over {seen:?}");
    }
    // A request without its key is spread like round robin.
    let mut c = Client::new(run.port("p2"));
    let mut seen = BTreeMap::<String, usize>::new();
    for _ in 0..100 {
        *seen.entry(c.get("/no-header", &[]).text()).or_default() += 1;
    }
    assert!(seen.len() >= 3, "keyless requests went to {seen:?}");
    let st = snapshot_pool(&run, "p0");
    let http = st.http.expect("an http pool has http counters");
    assert_eq!(http.hash_key, "uri");
    assert_eq!(http.requests, 200);
    assert_eq!(http.status["2xx"], 200);
}

/// Many requests over one client connection; the servers see pooled
/// keep-alive connections, not one per request.
#[test]
fn keep_alive_both_sides_and_forwarding_headers() {
    let backends = Backends::start(2);
    let run = common::start(&pool_yaml("web", &backends, "  check_interval: 0\n"));
    let mut c = Client::new(run.port("web"));
    for k in 0..500 {
        let r = c.get(
            &format!("/k{k}"),
            &[
                ("Connection", "keep-alive, X-Secret"),
                ("X-Secret", "hop"),
                ("X-Forwarded-For", "192.0.2.9"),
            ],
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-got-xff"), Some("192.0.2.9, 127.0.0.1"));
        assert_eq!(r.header("x-got-secret"), Some(""), "hop-by-hop forwarded");
        assert_eq!(r.header("x-got-host"), Some("test.local"));
        // The server's own hop-by-hop header does not reach the client.
        assert_eq!(r.header("x-backend-hop"), None);
    }
    let conns: u64 = backends
        .list
        .iter()
        .map(|b| b.knobs.conns.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert!(conns <= 4, "{conns} backend connections for 500 requests");
    let p = snapshot_pool(&run, "web");
    assert_eq!(p.client_accepted, 1);
    let served: u64 = p.servers.iter().map(|s| s.requests).sum();
    assert_eq!(served, 500);
    assert!(p.client_bytes_out >= 500 * 2, "{}", p.client_bytes_out);
}

/// A server that answers before reading the request body (these backends
/// never read it outside `/echo`) leaves the client's connection usable: the
/// proxy reads the rest of the body and throws it away, as nginx does,
/// rather than closing. The body is sent only after the answer has come back,
/// so it is certainly unread when the server answers.
#[test]
fn a_body_the_server_did_not_read_keeps_the_connection() {
    let backends = Backends::start(1);
    let run = common::start(&pool_yaml("web", &backends, "  check_interval: 0\n"));
    let mut c = Client::new(run.port("web"));
    for k in 0..20 {
        let body = format!("payload-{k}");
        let head = format!(
            "POST /late{k} HTTP/1.1\r\nHost: test.local\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        c.w.write_all(head.as_bytes()).unwrap();
        let r = c.read().expect("the answer, before the body is sent");
        assert_eq!((r.status, r.text().as_str()), (200, "b0"), "request {k}");
        c.w.write_all(body.as_bytes()).unwrap();
        // The same connection serves the next request.
        let r = c.get(&format!("/after{k}"), &[]);
        assert_eq!(r.status, 200, "request {k}: {}", r.text());
    }
    assert_eq!(snapshot_pool(&run, "web").client_accepted, 1);
}

/// Bodies are streamed both ways: the echo of a request body's first chunk
/// comes back before the rest is sent, and a response's first chunk
/// arrives before its server has written the second.
#[test]
fn bodies_stream_both_ways() {
    let backends = Backends::start(1);
    let run = common::start(&pool_yaml("web", &backends, "  check_interval: 0\n"));
    let mut c = Client::new(run.port("web"));
    c.w.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello;\r\n",
    )
    .unwrap();
    let (status, headers) = c.read_head().expect("a head before the body ends");
    assert_eq!(status, 200, "{headers:?}");
    assert_eq!(c.read_chunk().as_deref(), Some(&b"hello;"[..]));
    // Now a large rest, then the end.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut echoed = Vec::new();
    std::thread::scope(|s| {
        let w = c.w.try_clone().unwrap();
        let big = &big;
        s.spawn(move || {
            let mut w = w;
            for part in big.chunks(64 * 1024) {
                w.write_all(format!("{:x}\r\n", part.len()).as_bytes())
                    .unwrap();
                w.write_all(part).unwrap();
                w.write_all(b"\r\n").unwrap();
            }
            w.write_all(b"0\r\n\r\n").unwrap();
        });
        while let Some(chunk) = c.read_chunk() {
            echoed.extend(chunk);
        }
    });
    assert_eq!(echoed.len(), big.len());
    assert!(echoed == big, "the echoed body differs");
    // A streamed response, on the same connection.
    c.send("GET", "/slow-stream", &[], b"");
    let t0 = Instant::now();
    let (status, _) = c.read_head().unwrap();
    assert_eq!(status, 200);
    assert_eq!(c.read_chunk().as_deref(), Some(&b"first;"[..]));
    assert!(
        t0.elapsed() < Duration::from_millis(350),
        "first chunk after {:?}",
        t0.elapsed()
    );
    assert_eq!(c.read_chunk().as_deref(), Some(&b"second"[..]));
    assert_eq!(c.read_chunk(), None);
    let p = snapshot_pool(&run, "web");
    assert!(p.client_bytes_in >= 1_000_006, "{}", p.client_bytes_in);
}

/// 503 with no server up, 502 when none can be connected, 504 past
/// `timeout:`, and retries of a connect failure on the next choice.
#[test]
fn error_answers_and_retries() {
    let backends = Backends::start(2);
    // Dead servers: ports bound but never listening (a connect is refused,
    // and no other socket can take them while the test runs).
    let (_d1, dead1) = dead_port();
    let (_d2, dead2) = dead_port();
    let yaml = format!(
        "web:\n  listen: 127.0.0.1:0\n  mode: http\n  timeout: 300\n  check_interval: 0\n  \
         distribution: ring\n  servers:\n{}\
         dead:\n  listen: 127.0.0.1:0\n  mode: http\n  check_interval: 0\n  retries: 1\n  \
         servers:\n   - 127.0.0.1:{dead1}:1 d1\n   - 127.0.0.1:{dead2}:1 d2\n\
         half:\n  listen: 127.0.0.1:0\n  mode: http\n  check_interval: 0\n  distribution: ring\n  \
         servers:\n   - 127.0.0.1:{dead1}:1 d1\n   - 127.0.0.1:{}:1 live\n",
        backends.yaml(),
        backends.port(0)
    );
    let run = common::start(&yaml);
    // 504: the server answers after the pool's timeout.
    let mut c = Client::new(run.port("web"));
    for b in &backends.list {
        b.knobs
            .delay_ms
            .store(3000, std::sync::atomic::Ordering::Relaxed);
    }
    let t0 = Instant::now();
    let r = c.get("/slow", &[]);
    assert_eq!(r.status, 504, "{}", r.text());
    // timeout 300 ms, the server 3 s (a bound loose enough for a loaded machine).
    assert!(
        t0.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t0.elapsed()
    );
    for b in &backends.list {
        b.knobs
            .delay_ms
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }
    // The connection stays usable.
    assert_eq!(c.get("/fast", &[]).status, 200);
    // A server's own 5xx passes through.
    assert_eq!(c.get("/status?code=500", &[]).status, 500);
    // 503: every server marked down.
    for b in &backends.list {
        run.proxy.set_up("web", &b.name, false).unwrap();
    }
    let r = c.get("/x", &[]);
    assert_eq!(r.status, 503, "{}", r.text());
    for b in &backends.list {
        run.proxy.set_up("web", &b.name, true).unwrap();
    }
    assert_eq!(c.get("/x", &[]).status, 200);
    // 502: neither server of `dead` can be connected (the pick and 1 retry).
    let mut d = Client::new(run.port("dead"));
    let r = d.get("/x", &[]);
    assert_eq!(r.status, 502, "{}", r.text());
    let p = snapshot_pool(&run, "dead").http.unwrap();
    assert_eq!((p.retries, p.bad_gateway), (1, 1));
    // Retries: keys whose pick is the dead server are answered by the live
    // one, bodies included.
    let mut h = Client::new(run.port("half"));
    let mut retried = 0;
    for k in 0..50 {
        let key = format!("/r{k}");
        let picked = run.proxy.route("half", key.as_bytes()).unwrap().unwrap();
        h.send("POST", &key, &[], b"payload");
        let r = h.read().unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "b0"), "{key}");
        retried += usize::from(picked == "d1");
    }
    assert!(retried > 5, "only {retried} keys picked the dead server");
    let p = snapshot_pool(&run, "half");
    assert_eq!(p.http.as_ref().unwrap().retries, retried as u64);
    let web = snapshot_pool(&run, "web").http.unwrap();
    assert_eq!(web.gateway_timeout, 1);
    assert_eq!(web.unavailable, 1);
    assert!(web.status["5xx"] >= 3, "{:?}", web.status);
}

/// `hedge_budget`: after the burst of ten, a 1% budget hedges nothing more
/// in 25 requests, so they wait for the slow server.
#[test]
fn hedge_budget_stops_hedging_after_its_burst() {
    let backends = Backends::start(3);
    let run = common::start(&pool_yaml(
        "web",
        &backends,
        "  distribution: rendezvous\n  hedge_after: 20\n  hedge_budget: 1\n  timeout: 5000\n  \
         check_interval: 0\n",
    ));
    let mut c = Client::new(run.port("web"));
    let keys: Vec<String> = (0..400)
        .map(|k| format!("/g{k}"))
        .filter(|k| run.proxy.route("web", k.as_bytes()).unwrap().as_deref() == Some("b0"))
        .take(25)
        .collect();
    assert_eq!(keys.len(), 25);
    backends.list[0]
        .knobs
        .delay_ms
        .store(150, std::sync::atomic::Ordering::Relaxed);
    let answered_by: Vec<String> = keys.iter().map(|k| c.get(k, &[]).text()).collect();
    let http = snapshot_pool(&run, "web").http.unwrap();
    assert_eq!(http.hedges, 10, "{answered_by:?}");
    // The ten hedged ones were answered by the runner-up, the rest by b0.
    assert!(
        answered_by[..10].iter().all(|b| b != "b0"),
        "{answered_by:?}"
    );
    assert!(
        answered_by[10..].iter().all(|b| b == "b0"),
        "{answered_by:?}"
    );
}

/// Hedging: the key's server is slow, the runner-up answers; counted.
#[test]
fn hedged_requests_are_answered_by_the_runner_up() {
    let backends = Backends::start(3);
    let run = common::start(&pool_yaml(
        "web",
        &backends,
        "  distribution: rendezvous\n  hedge_after: 50\n  timeout: 5000\n  check_interval: 0\n",
    ));
    let mut c = Client::new(run.port("web"));
    // Keys whose pick is b0, made slow.
    let keys: Vec<String> = (0..200)
        .map(|k| format!("/h{k}"))
        .filter(|k| run.proxy.route("web", k.as_bytes()).unwrap().as_deref() == Some("b0"))
        .take(10)
        .collect();
    assert!(keys.len() >= 5);
    backends.list[0]
        .knobs
        .delay_ms
        .store(2500, std::sync::atomic::Ordering::Relaxed);
    let mut worst = Duration::ZERO;
    for k in &keys {
        let t0 = Instant::now();
        let r = c.get(k, &[]);
        let took = t0.elapsed();
        worst = worst.max(took);
        assert_eq!(r.status, 200);
        let hedges = snapshot_pool(&run, "web").http.unwrap().hedges;
        assert_ne!(
            r.text(),
            "b0",
            "{k}: answered by the slow server ({hedges} hedges, {took:?})"
        );
        // hedge_after 50 ms, the key's server 2.5 s.
        assert!(took < Duration::from_millis(1200), "{k}: {took:?}");
    }
    println!("hedged requests: slowest answer {worst:?} (hedge_after 50 ms, the pick 2.5 s)");
    // A POST is never hedged: it waits for the slow server.
    c.send("POST", &keys[0], &[], b"x");
    let r = c.read().unwrap();
    assert_eq!(r.text(), "b0");
    let p = snapshot_pool(&run, "web");
    let http = p.http.as_ref().unwrap();
    assert_eq!(http.hedges, keys.len() as u64);
    assert_eq!(http.hedge_wins, keys.len() as u64);
    let per_server: u64 = p
        .servers
        .iter()
        .map(|s| s.http.as_ref().unwrap().hedge_wins)
        .sum();
    assert_eq!(per_server, keys.len() as u64);
    let text = chring_proxy::admin::metrics(&run.proxy.snapshot());
    assert!(
        text.contains(&format!(
            "chring_proxy_http_hedges_total{{pool=\"web\"}} {}",
            keys.len()
        )),
        "{text}"
    );
    assert!(text.contains(&format!(
        "chring_proxy_http_hedge_wins_total{{pool=\"web\"}} {}",
        keys.len()
    )));
    let v = serde_json::to_value(run.proxy.snapshot()).unwrap();
    assert_eq!(v["pools"][0]["http"]["hedges"], keys.len());
}

/// `hedge_after: p90`: no hedge before enough responses; then a request
/// slower than the pool's p90 is hedged.
#[test]
fn percentile_hedging_waits_for_samples() {
    let backends = Backends::start(2);
    let run = common::start(&pool_yaml(
        "web",
        &backends,
        "  distribution: ring\n  hedge_after: p90\n  check_interval: 0\n",
    ));
    let mut c = Client::new(run.port("web"));
    let slow = (0..100)
        .map(|k| format!("/s{k}"))
        .find(|k| run.proxy.route("web", k.as_bytes()).unwrap().as_deref() == Some("b1"))
        .unwrap();
    let delay = |ms| {
        backends.list[1]
            .knobs
            .delay_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed)
    };
    // Too few responses yet: no percentile, no hedge.
    delay(300);
    assert_eq!(c.get(&slow, &[]).text(), "b1");
    assert_eq!(snapshot_pool(&run, "web").http.unwrap().hedges, 0);
    delay(0);
    for k in 0..40 {
        assert_eq!(c.get(&format!("/w{k}"), &[]).status, 200);
    }
    let before = snapshot_pool(&run, "web").http.unwrap();
    delay(2500);
    let t0 = Instant::now();
    let r = c.get(&slow, &[]);
    assert_eq!(r.text(), "b0");
    assert!(
        t0.elapsed() < Duration::from_millis(1200),
        "{:?}",
        t0.elapsed()
    );
    let h = snapshot_pool(&run, "web").http.unwrap();
    assert_eq!(h.hedges, before.hedges + 1);
    assert_eq!(h.hedge_wins, before.hedge_wins + 1);
}

/// `idle_timeout:` closes an idle client connection; `client_connections:`
/// refuses one too many.
#[test]
fn idle_timeout_and_client_limit() {
    let backends = Backends::start(1);
    let run = common::start(&pool_yaml(
        "web",
        &backends,
        "  idle_timeout: 200\n  client_connections: 2\n  check_interval: 0\n",
    ));
    let mut a = Client::new(run.port("web"));
    assert_eq!(a.get("/", &[]).status, 200);
    assert!(
        a.closed_within(Duration::from_secs(3)),
        "not closed when idle"
    );
    let mut x = Client::new(run.port("web"));
    let mut y = Client::new(run.port("web"));
    assert_eq!(x.get("/", &[]).status, 200);
    assert_eq!(y.get("/", &[]).status, 200);
    let mut z = Client::new(run.port("web"));
    z.send("GET", "/", &[], b"");
    assert!(z.read().is_none(), "a third client was served");
}

/// Debian's nginx as the backends: two nginx servers (one process) that
/// answer with their name; routing equals ROUTE.
#[test]
#[ignore = "starts nginx; run by `scripts/test-all.sh proxy`"]
fn nginx_backends() {
    let nginx = common::binary("nginx");
    let dir = std::env::temp_dir().join(format!("chring-http-nginx-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("body")).unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let ports = [
        common::free_port(),
        common::free_port(),
        common::free_port(),
    ];
    let d = dir.display();
    let mut conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\nhttp {{\n\
         \x20 access_log off;\n  client_body_temp_path {d}/body;\n"
    );
    for (i, p) in ports.iter().enumerate() {
        conf.push_str(&format!(
            "  server {{ listen 127.0.0.1:{p}; location / {{ return 200 \"nginx{i}\"; }} }}\n"
        ));
    }
    conf.push_str("}\n");
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = std::process::Command::new(nginx)
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start nginx");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _nginx = Kill(child);
    for p in ports {
        assert!(
            common::eventually(Duration::from_secs(10), || {
                std::net::TcpStream::connect(("127.0.0.1", p)).is_ok()
            }),
            "nginx does not listen on {p}"
        );
    }
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("   - 127.0.0.1:{p}:1 nginx{i}\n"))
        .collect();
    let yaml = format!(
        "web:\n  listen: 127.0.0.1:0\n  mode: http\n  distribution: ring\n  check_interval: 0\n  \
         servers:\n{servers}"
    );
    let run = common::start(&yaml);
    let mut c = Client::new(run.port("web"));
    let mut seen = BTreeMap::<String, usize>::new();
    for k in 0..300 {
        let target = format!("/n/{k}");
        let r = c.get(&target, &[]);
        assert_eq!(r.status, 200);
        let want = run.proxy.route("web", target.as_bytes()).unwrap().unwrap();
        assert_eq!(r.text(), want, "{target}");
        *seen.entry(want).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "{seen:?}");
}

/// Health (check.rs's `GET check_path` with rise/fall): a stopped backend
/// is taken out within `fall × check_interval` (plus one round and
/// scheduling slack) and its keys go elsewhere; a backend whose check
/// fails is taken out too; both come back after `rise` passed checks.
#[test]
fn failing_backend_is_rerouted_within_fall_times_interval_and_comes_back() {
    let mut backends = Backends::start(3);
    let (interval, fall, rise) = (300u64, 3u64, 2u64);
    let run = common::start(&pool_yaml(
        "web",
        &backends,
        &format!(
            "  distribution: ring\n  check_interval: {interval}\n  check_timeout: 200\n  \
             fall: {fall}\n  rise: {rise}\n"
        ),
    ));
    let route = |k: &str| run.proxy.route("web", k.as_bytes()).unwrap().unwrap();
    let keys: Vec<String> = (0..300)
        .map(|k| format!("/k{k}"))
        .filter(|k| route(k) == "b1")
        .take(20)
        .collect();
    assert!(keys.len() >= 10);
    let others: Vec<String> = (0..300)
        .map(|k| format!("/o{k}"))
        .filter(|k| route(k) != "b1")
        .take(20)
        .collect();
    let before: Vec<String> = others.iter().map(|k| route(k)).collect();
    // One more round (a check in flight when it stopped) and 1 s of
    // scheduling slack for a loaded machine.
    let slack = Duration::from_millis(interval + 1000);
    let bound = Duration::from_millis(fall * interval) + slack;
    // Stopped: no connection at all.
    let t0 = Instant::now();
    backends.stop(1);
    assert!(
        common::eventually(bound, || route(&keys[0]) != "b1"),
        "b1 still routed to after {:?}",
        t0.elapsed()
    );
    let took = t0.elapsed();
    assert!(took <= bound, "taken out after {took:?}");
    println!(
        "stopped backend taken out after {took:?} (fall {fall} x check_interval {interval} ms)"
    );
    let mut c = Client::new(run.port("web"));
    for k in &keys {
        let r = c.get(k, &[]);
        assert_eq!(r.status, 200);
        assert_ne!(r.text(), "b1");
        assert_eq!(r.text(), route(k), "{k}");
    }
    // Only b1's keys moved (the ring's health fallback).
    let after: Vec<String> = others.iter().map(|k| route(k)).collect();
    assert_eq!(before, after);
    let state = serde_json::to_value(run.proxy.snapshot()).unwrap();
    assert_ne!(state["pools"][0]["servers"][1]["health"], "up", "{state}");
    // Back: `rise` passed checks.
    let t1 = Instant::now();
    backends.restart(1);
    let back = Duration::from_millis(rise * interval) + slack;
    assert!(
        common::eventually(back, || route(&keys[0]) == "b1"),
        "b1 not back after {:?}",
        t1.elapsed()
    );
    assert!(t1.elapsed() <= back, "back after {:?}", t1.elapsed());
    println!(
        "restarted backend back after {:?} (rise {rise} x check_interval {interval} ms)",
        t1.elapsed()
    );
    for k in &keys {
        assert_eq!(c.get(k, &[]).text(), "b1", "{k}");
    }
    // A server that answers requests but fails its check (503 on /health).
    backends.list[2]
        .knobs
        .unhealthy
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let t2 = Instant::now();
    let k2 = (0..300)
        .map(|k| format!("/z{k}"))
        .find(|k| route(k) == "b2")
        .unwrap();
    assert!(common::eventually(bound, || route(&k2) != "b2"));
    assert!(t2.elapsed() <= bound, "{:?}", t2.elapsed());
    assert_ne!(c.get(&k2, &[]).text(), "b2");
    backends.list[2]
        .knobs
        .unhealthy
        .store(false, std::sync::atomic::Ordering::Relaxed);
    assert!(common::eventually(back, || route(&k2) == "b2"));
    assert!(
        backends.list[2]
            .knobs
            .checks
            .load(std::sync::atomic::Ordering::Relaxed)
            >= fall
    );
}
