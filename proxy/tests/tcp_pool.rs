//! TCP pools (`mode: tcp`, issue 15): the configuration, whole connections
//! forwarded to small servers written here (echo servers that first say their
//! name), on 127.0.0.1, every loop bounded in count and time.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use chring_proxy::state::{Control, Health, PoolSnapshot};
use common::{Running, eventually, free_port, start};
use rand_core::Rng;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

#[test]
fn test_conf_accepts_balancer_pools_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "web:\n  listen: 127.0.0.1:0\n  mode: tcp\n  distribution: rendezvous\n  \
         check_interval: 500\n  check_send: \"PING\\r\\n\"\n  check_expect: \"+PONG\"\n  \
         rise: 2\n  fall: 3\n  idle_timeout: 60000\n  retries: 1\n  timeout: 300\n  \
         servers:\n   - 127.0.0.1:6379:1 a\n   - 127.0.0.1:6380:1 b\n\
         api:\n  listen: 127.0.0.1:1\n  mode: http\n  hash_key: cookie:session\n  \
         check_path: /ready\n  hedge_after: p95\n  servers:\n   - 127.0.0.1:8080:1 web1\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "web:\n  listen: 127.0.0.1:0\n  mode: tcp\n  redis: true\n  servers:\n   - 127.0.0.1:1:1\n",
    )
    .unwrap();
    let run = |f: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_chring-proxy"))
            .arg("-t")
            .arg("-c")
            .arg(f)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&good);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("syntax is ok"), "{err}");
    let (code, err) = run(&bad);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("line 4: 'redis:' means nothing in a mode: tcp pool"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Every async part of a test ends within this.
const LIMIT: Duration = Duration::from_secs(60);

/// What a test server does with a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Says `name\n`, echoes every byte, and on the client's EOF says
    /// `EOF <bytes>\n` and closes.
    Echo,
    /// Says `name\n` and closes its half at once, then counts what the client
    /// sends until its EOF.
    SpeakFirst,
}

/// A small server on 127.0.0.1 that says its name; `kill` closes its
/// listener and every connection.
struct Backend {
    name: String,
    port: u16,
    stop: watch::Sender<bool>,
    /// Bytes received from clients.
    received: Arc<AtomicU64>,
    /// Connections open now.
    open: Arc<AtomicU64>,
}

impl Backend {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn kill(&self) {
        let _ = self.stop.send(true);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn backend(name: &str, port: u16, how: Behaviour) -> Backend {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .unwrap();
    let port = l.local_addr().unwrap().port();
    let (stop, rx) = watch::channel(false);
    let received = Arc::new(AtomicU64::new(0));
    let open = Arc::new(AtomicU64::new(0));
    let (n, r, o) = (name.to_string(), received.clone(), open.clone());
    tokio::spawn(async move {
        let mut rx2 = rx.clone();
        loop {
            let sock = tokio::select! {
                a = l.accept() => match a { Ok((s, _)) => s, Err(_) => continue },
                _ = rx2.changed() => return,
            };
            let (n, r, o, mut stop) = (n.clone(), r.clone(), o.clone(), rx.clone());
            o.fetch_add(1, Relaxed);
            tokio::spawn(async move {
                tokio::select! {
                    () = talk(sock, &n, how, &r) => {}
                    _ = stop.changed() => {}
                }
                o.fetch_sub(1, Relaxed);
            });
        }
    });
    Backend {
        name: name.to_string(),
        port,
        stop,
        received,
        open,
    }
}

async fn talk(mut s: TcpStream, name: &str, how: Behaviour, received: &AtomicU64) {
    if s.write_all(format!("{name}\n").as_bytes()).await.is_err() {
        return;
    }
    if how == Behaviour::SpeakFirst {
        let _ = s.shutdown().await;
    }
    let mut buf = vec![0u8; 8192];
    let mut total = 0u64;
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        total += n as u64;
        received.fetch_add(n as u64, Relaxed);
        if how == Behaviour::Echo && s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    if how == Behaviour::Echo {
        let _ = s.write_all(format!("EOF {total}\n").as_bytes()).await;
        let _ = s.shutdown().await;
    }
}

/// Connects to the proxy from `src` (any 127.x.y.z is loopback on Linux).
async fn client_from(src: Ipv4Addr, port: u16) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::from((src, 0))).unwrap();
    sock.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .unwrap()
}

async fn client(port: u16) -> TcpStream {
    client_from(Ipv4Addr::LOCALHOST, port).await
}

/// Reads one `\n`-terminated line (without it); `None` on EOF or error first.
async fn line(s: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match s.read(&mut b).await {
            Ok(1) if b[0] == b'\n' => return String::from_utf8(out).ok(),
            Ok(1) => out.push(b[0]),
            _ => return None,
        }
    }
}

/// Sends `payload`, closes the write half, reads to the end (both at once).
async fn exchange(s: TcpStream, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let (mut rd, mut wr) = s.into_split();
    let w = async {
        wr.write_all(payload).await?;
        wr.shutdown().await
    };
    let r = async {
        let mut v = Vec::new();
        rd.read_to_end(&mut v).await.map(|_| v)
    };
    let ((), v) = tokio::try_join!(w, r)?;
    Ok(v)
}

fn payload(seed: u64, i: u64) -> Vec<u8> {
    let mut rng = rand_pcg::Pcg64::new(
        u128::from(seed) << 64 | u128::from(i),
        0xa02b_dbf7_bb3c_0a7a,
    );
    let len = 1 + (rng.next_u32() % (48 * 1024)) as usize;
    let mut v = vec![0u8; len];
    rng.fill_bytes(&mut v);
    v
}

fn yaml(pool: &str, extra: &str, servers: &[(&str, String)]) -> String {
    let mut y = format!(
        // Port 0: the system picks a free port per pool (`Running::port`).
        "{pool}:\n  listen: 127.0.0.1:0\n  mode: tcp\n{extra}  servers:\n"
    );
    for (name, addr) in servers {
        y.push_str(&format!("   - {addr}:1 {name}\n"));
    }
    y
}

/// Echo backends named `names`, on free ports.
fn echo_backends(rt: &tokio::runtime::Runtime, names: &[&str]) -> Vec<Backend> {
    rt.block_on(async {
        let mut v = Vec::new();
        for n in names {
            v.push(backend(n, 0, Behaviour::Echo).await);
        }
        v
    })
}

/// `(name, host:port)` of each backend, as [`yaml`] takes them.
fn server_lines(backends: &[Backend]) -> Vec<(&str, String)> {
    backends
        .iter()
        .map(|b| (b.name.as_str(), b.addr()))
        .collect()
}

fn pool_snapshot(p: &Running, pool: &str) -> PoolSnapshot {
    p.proxy
        .snapshot()
        .pools
        .into_iter()
        .find(|x| x.name == pool)
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn bytes_intact_both_ways_under_200_concurrent_connections() {
    let rt = rt();
    let backends = echo_backends(&rt, &["a", "b", "c"]);
    let servers = server_lines(&backends);
    let proxy = start(&yaml(
        "t",
        "  distribution: round_robin\n  check_interval: 0\n",
        &servers,
    ));
    let port = proxy.port("t");
    const N: u64 = 200;
    let results = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..N {
            set.spawn(async move {
                let data = payload(7, i);
                let s = client(port).await;
                let got = exchange(s, &data).await.unwrap();
                (data, got)
            });
        }
        tokio::time::timeout(LIMIT, set.join_all())
            .await
            .expect("200 clients in time")
    });
    let mut per_server = std::collections::BTreeMap::new();
    let (mut sent, mut got_total) = (0u64, 0u64);
    for (data, got) in &results {
        let name_end = got.iter().position(|&b| b == b'\n').expect("a greeting");
        let name = String::from_utf8(got[..name_end].to_vec()).unwrap();
        let body = &got[name_end + 1..];
        let trailer = format!("EOF {}\n", data.len());
        assert!(
            body.ends_with(trailer.as_bytes()),
            "{name}: the server saw the client's EOF"
        );
        let echoed = &body[..body.len() - trailer.len()];
        // Checksums (chring's xxh3) and lengths both ways.
        assert_eq!(
            (echoed.len(), chring::hash(echoed)),
            (data.len(), chring::hash(data)),
            "bytes intact through {name}"
        );
        *per_server.entry(name).or_insert(0u64) += 1;
        sent += data.len() as u64;
        got_total += got.len() as u64;
    }
    // round_robin: 200 connections over 3 servers, 66 or 67 each.
    assert_eq!(per_server.len(), 3, "{per_server:?}");
    assert!(
        per_server.values().all(|&n| n == 66 || n == 67),
        "{per_server:?}"
    );
    let received: u64 = backends.iter().map(|b| b.received.load(Relaxed)).sum();
    assert_eq!(received, sent);
    assert!(eventually(Duration::from_secs(10), || pool_snapshot(
        &proxy, "t"
    )
    .client_eof
        == N));
    let p = pool_snapshot(&proxy, "t");
    assert_eq!((p.client_bytes_in, p.client_bytes_out), (sent, got_total));
    assert_eq!(p.client_accepted, N);
    assert_eq!(p.servers.iter().map(|s| s.requests).sum::<u64>(), N);
    assert_eq!(p.servers.iter().map(|s| s.request_bytes).sum::<u64>(), sent);
    assert_eq!(
        p.servers.iter().map(|s| s.response_bytes).sum::<u64>(),
        got_total
    );
    // The admin /metrics text shows the same counters.
    let text = chring_proxy::admin::metrics(&proxy.proxy.snapshot());
    for want in [
        format!("chring_proxy_client_bytes_received_total{{pool=\"t\"}} {sent}"),
        format!("chring_proxy_client_bytes_sent_total{{pool=\"t\"}} {got_total}"),
        format!("chring_proxy_client_connections_total{{pool=\"t\"}} {N}"),
    ] {
        assert!(text.contains(&want), "{want}");
    }
    for s in &p.servers {
        assert_eq!(s.requests, per_server[&s.name], "{}", s.name);
        assert_eq!(s.server_connections, 0);
        assert_eq!(s.latency["connect"].count(), s.requests);
    }
    drop(proxy);
}

#[test]
fn half_close_is_passed_on_both_ways() {
    let rt = rt();
    let echo = rt.block_on(backend("echo", 0, Behaviour::Echo));
    let first = rt.block_on(backend("first", 0, Behaviour::SpeakFirst));
    let y = format!(
        "{}{}",
        yaml("e", "  check_interval: 0\n", &[("echo", echo.addr())]),
        yaml(
            "f",
            "  check_interval: 0\n  timeout: 1000\n",
            &[("first", first.addr())]
        )
    );
    let proxy = start(&y);
    let (pe, pf) = (proxy.port("e"), proxy.port("f"));
    rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            // Client closes first: the server sees EOF and can still answer.
            let mut s = client(pe).await;
            assert_eq!(line(&mut s).await.as_deref(), Some("echo"));
            s.write_all(b"hello").await.unwrap();
            s.shutdown().await.unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, b"helloEOF 5\n");
            // Server closes first: the client reads EOF and can still send.
            let mut s = client(pf).await;
            assert_eq!(line(&mut s).await.as_deref(), Some("first"));
            let mut more = [0u8; 8];
            assert_eq!(
                s.read(&mut more).await.unwrap(),
                0,
                "the server's EOF is passed on"
            );
            s.write_all(&[7u8; 3000]).await.unwrap();
            s.shutdown().await.unwrap();
        })
        .await
        .expect("in time");
    });
    assert!(eventually(Duration::from_secs(10), || first
        .received
        .load(Relaxed)
        == 3000));
    assert!(eventually(Duration::from_secs(10), || {
        let f = pool_snapshot(&proxy, "f");
        f.client_eof == 1 && f.servers[0].server_eof == 1
    }));
    assert_eq!(
        pool_snapshot(&proxy, "e").servers[0].server_eof,
        0,
        "the client closed first"
    );
}

#[test]
fn backend_killed_mid_stream_fails_only_its_connections() {
    let rt = rt();
    let a = rt.block_on(backend("a", 0, Behaviour::Echo));
    let b = rt.block_on(backend("b", 0, Behaviour::Echo));
    let proxy = start(&yaml(
        "k",
        "  distribution: round_robin\n  check_interval: 0\n",
        &[("a", a.addr()), ("b", b.addr())],
    ));
    let port = proxy.port("k");
    const N: usize = 20;
    rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            // Phase 1: every client has its server and one echo back.
            let mut clients = Vec::new();
            for i in 0..N {
                let mut s = client(port).await;
                let name = line(&mut s).await.unwrap();
                let chunk = payload(11, i as u64);
                s.write_all(&chunk).await.unwrap();
                let mut back = vec![0u8; chunk.len()];
                s.read_exact(&mut back).await.unwrap();
                assert_eq!(back, chunk);
                clients.push((name, s, chunk.len()));
            }
            assert_eq!(clients.iter().filter(|c| c.0 == "a").count(), N / 2);
            // Kill a; wait until its connections are gone.
            a.kill();
            while a.open.load(Relaxed) > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Phase 2: a's clients fail, b's complete.
            let mut set = tokio::task::JoinSet::new();
            for (name, s, first) in clients {
                set.spawn(async move {
                    let chunk = payload(12, first as u64);
                    let r = exchange(s, &chunk).await;
                    let want = [
                        chunk.clone(),
                        format!("EOF {}\n", first + chunk.len()).into_bytes(),
                    ]
                    .concat();
                    (name, r.map(|v| v == want).unwrap_or(false))
                });
            }
            for (name, ok) in set.join_all().await {
                assert_eq!(ok, name == "b", "client of {name}");
            }
            // The proxy keeps serving: round robin's turn on a fails to
            // connect and goes to b (retries).
            for i in 0..4 {
                let s = client(port).await;
                let got = exchange(s, b"x").await.unwrap();
                assert_eq!(got, b"b\nxEOF 1\n", "connection {i}");
            }
        })
        .await
        .expect("in time");
    });
    let p = pool_snapshot(&proxy, "k");
    let (sa, sb) = (&p.servers[0], &p.servers[1]);
    assert!(sa.server_err >= 1, "connects to the dead a counted");
    assert_eq!(sb.requests, (N / 2 + 4) as u64);
}

#[test]
fn connect_failure_goes_to_the_next_choice() {
    let rt = rt();
    // Three servers on free ports, none listening yet.
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let servers: Vec<(&str, String)> = ["s0", "s1", "s2"]
        .iter()
        .zip(&ports)
        .map(|(n, p)| (*n, format!("127.0.0.1:{p}")))
        .collect();
    let y = format!(
        "{}{}",
        yaml(
            "r1",
            "  distribution: ring\n  check_interval: 0\n  retries: 1\n",
            &servers
        ),
        yaml(
            "r0",
            "  distribution: ring\n  check_interval: 0\n  retries: 0\n",
            &servers
        )
    );
    let proxy = start(&y);
    let p = &proxy.proxy;
    let first = p.route("r1", b"127.0.0.1").unwrap().unwrap();
    assert_eq!(p.route("r0", b"127.0.0.1").unwrap().unwrap(), first);
    // The next choice: where the key goes with the first choice down.
    p.set_up("r1", &first, false).unwrap();
    let second = p.route("r1", b"127.0.0.1").unwrap().unwrap();
    p.set_up("r1", &first, true).unwrap();
    assert_ne!(second, first);
    let idx = |n: &str| servers.iter().position(|s| s.0 == n).unwrap();
    let live = rt.block_on(backend(&second, ports[idx(&second)], Behaviour::Echo));
    let (p1, p0) = (proxy.port("r1"), proxy.port("r0"));
    rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            let got = exchange(client(p1).await, b"hi").await.unwrap();
            assert_eq!(got, format!("{second}\nhiEOF 2\n").as_bytes());
            // retries: 0: the first choice's failure closes the client.
            let got = exchange(client(p0).await, b"hi").await;
            assert!(got.map_or(true, |v| v.is_empty()), "nothing from r0");
        })
        .await
        .expect("in time");
    });
    assert!(eventually(Duration::from_secs(5), || pool_snapshot(
        &proxy, "r0"
    )
    .forward_error
        == 1));
    let r1 = pool_snapshot(&proxy, "r1");
    let by = |n: &str| r1.servers.iter().find(|s| s.name == n).unwrap().clone();
    assert_eq!((by(&first).server_err, by(&first).requests), (1, 0));
    assert_eq!((by(&second).server_err, by(&second).requests), (0, 1));
    assert_eq!(r1.forward_error, 0);
    drop(live);
}

#[test]
fn source_keyed_routing_equals_route_and_host_sim() {
    let rt = rt();
    let backends = echo_backends(&rt, &["n0", "n1", "n2", "n3"]);
    let servers = server_lines(&backends);
    let dists = ["ketama", "modula", "ring", "maglev", "jump", "rendezvous"];
    let y: String = dists
        .iter()
        .map(|d| {
            yaml(
                d,
                &format!("  distribution: {d}\n  check_interval: 0\n"),
                &servers,
            )
        })
        .collect();
    let proxy = start(&y);
    // The control port, in-process.
    let ctl_l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let ctl_port = ctl_l.local_addr().unwrap().port();
    let ctl: Arc<dyn Control> = proxy.proxy.clone();
    rt.spawn(chring_proxy::control::serve(ctl_l, ctl, None));
    let sources: Vec<Ipv4Addr> = (1..=24)
        .map(|i| Ipv4Addr::new(127, 0, (i * 7) % 5, i))
        .collect();
    let mut spread = std::collections::BTreeSet::new();
    for d in dists {
        let port = proxy.port(d);
        // host-sim route --config reads the same file through chring-config.
        let mut sim = (matches!(d, "ketama" | "modula"))
            .then(|| chring_config::twemproxy::parse(&y, Some(d)).unwrap());
        let (names, routes) = rt.block_on(async {
            tokio::time::timeout(LIMIT, async {
                let mut ctl = TcpStream::connect(("127.0.0.1", ctl_port)).await.unwrap();
                let mut names = Vec::new();
                let mut routes = Vec::new();
                for &src in &sources {
                    let mut s = client_from(src, port).await;
                    names.push(line(&mut s).await.unwrap());
                    ctl.write_all(format!("ROUTE {d} {src}\r\n").as_bytes())
                        .await
                        .unwrap();
                    let mut r = Vec::new();
                    let mut b = [0u8; 1];
                    while ctl.read(&mut b).await.unwrap() == 1 && b[0] != b'\n' {
                        r.push(b[0]);
                    }
                    routes.push(String::from_utf8(r).unwrap().trim_end().to_string());
                }
                (names, routes)
            })
            .await
            .expect("in time")
        });
        for ((src, name), route) in sources.iter().zip(&names).zip(&routes) {
            assert_eq!(route, &format!("+{name}"), "{d} {src}");
            let direct = proxy.proxy.route(d, src.to_string().as_bytes()).unwrap();
            assert_eq!(direct.as_deref(), Some(name.as_str()), "{d} {src}");
            if let Some(sim) = sim.as_mut() {
                use chring_config::KeyRouter;
                assert_eq!(
                    sim.route(src.to_string().as_bytes()),
                    Some(name.as_str()),
                    "{d} {src}"
                );
            }
            spread.insert((d, name.clone()));
        }
    }
    // 24 sources reach more than one server in every pool.
    for d in dists {
        assert!(spread.iter().filter(|(x, _)| *x == d).count() >= 2, "{d}");
    }
}

#[test]
fn stopped_backend_goes_down_after_fall_checks_and_returns_after_rise() {
    let rt = rt();
    let a = rt.block_on(backend("a", 0, Behaviour::Echo));
    let b = rt.block_on(backend("b", 0, Behaviour::Echo));
    let (interval, fall, rise) = (200u64, 3u64, 2u64);
    let proxy = start(&yaml(
        "h",
        &format!(
            "  distribution: rendezvous\n  check_interval: {interval}\n  check_timeout: 100\n  fall: {fall}\n  rise: {rise}\n"
        ),
        &[("a", a.addr()), ("b", b.addr())],
    ));
    let p = proxy.proxy.clone();
    // A source whose server is a.
    let key = (1..=255)
        .map(|i| format!("127.0.0.{i}"))
        .find(|k| p.route("h", k.as_bytes()).unwrap().as_deref() == Some("a"))
        .unwrap();
    let health = |n: &str| {
        pool_snapshot(&proxy, "h")
            .servers
            .into_iter()
            .find(|s| s.name == n)
            .unwrap()
            .health
    };
    // Let a few checks pass, then stop a.
    std::thread::sleep(Duration::from_millis(interval * 2));
    assert_eq!(health("a"), Health::Up);
    let port = a.port;
    drop(a);
    let stopped = std::time::Instant::now();
    assert!(eventually(Duration::from_secs(10), || matches!(
        health("a"),
        Health::Ejected { .. }
    )));
    let down_after = stopped.elapsed();
    // fall failed checks: at least (fall - 1) intervals after the first failed
    // one, at most fall intervals (+ one check timeout and slack for a busy machine).
    assert!(
        down_after >= Duration::from_millis((fall - 1) * interval),
        "{down_after:?}"
    );
    assert!(
        down_after <= Duration::from_millis(fall * interval + 100 + 1500),
        "{down_after:?}"
    );
    // The routing is rebuilt right after the state changes.
    assert!(eventually(Duration::from_secs(1), || {
        p.route("h", key.as_bytes()).unwrap().as_deref() == Some("b")
    }));
    let snap = p.snapshot();
    assert!(
        snap.events
            .iter()
            .any(|e| e.server == "a" && e.kind == "ejected")
    );
    let sa = pool_snapshot(&proxy, "h")
        .servers
        .into_iter()
        .find(|s| s.name == "a")
        .unwrap();
    assert_eq!(sa.ejections, 1);
    assert!(sa.server_ejected_at > 0);
    // The source's connections go to b meanwhile.
    rt.block_on(async {
        let mut s = client_from(key.parse().unwrap(), proxy.port("h")).await;
        assert_eq!(line(&mut s).await.as_deref(), Some("b"));
    });
    // Restart a on its port: back after rise passed checks.
    let a = rt.block_on(backend("a", port, Behaviour::Echo));
    let restarted = std::time::Instant::now();
    assert!(eventually(Duration::from_secs(10), || health("a") == Health::Up));
    let up_after = restarted.elapsed();
    eprintln!(
        "interval {interval} ms, fall {fall}, rise {rise}: down after {down_after:?}, back after {up_after:?}"
    );
    assert!(
        up_after >= Duration::from_millis((rise - 1) * interval),
        "{up_after:?}"
    );
    assert!(
        up_after <= Duration::from_millis(rise * interval + 100 + 1500),
        "{up_after:?}"
    );
    assert!(eventually(Duration::from_secs(1), || {
        p.route("h", key.as_bytes()).unwrap().as_deref() == Some("a")
    }));
    assert!(
        p.snapshot()
            .events
            .iter()
            .any(|e| e.server == "a" && e.kind == "readmitted")
    );
    drop((a, b));
}

#[test]
fn least_conn_sends_new_connections_away_from_a_busy_server() {
    let rt = rt();
    let backends = echo_backends(&rt, &["x", "y", "z"]);
    let servers = server_lines(&backends);
    let proxy = start(&yaml(
        "l",
        "  distribution: least_conn\n  check_interval: 0\n",
        &servers,
    ));
    let port = proxy.port("l");
    let counts = rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            // One long connection holds a server.
            let mut held = client(port).await;
            let busy = line(&mut held).await.unwrap();
            let mut counts = std::collections::BTreeMap::new();
            for _ in 0..10 {
                let got = exchange(client(port).await, b"").await.unwrap();
                let name = String::from_utf8(got)
                    .unwrap()
                    .lines()
                    .next()
                    .unwrap()
                    .to_string();
                *counts.entry(name).or_insert(0) += 1;
                // Wait until the proxy has seen the end (the guard finished).
                for _ in 0..200 {
                    let s = pool_snapshot(&proxy, "l");
                    if s.servers.iter().map(|s| s.server_connections).sum::<u64>() == 1 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            drop(held);
            (busy, counts)
        })
        .await
        .expect("in time")
    });
    let (busy, counts) = counts;
    assert_eq!(counts.get(&busy), None, "{busy} is busy: {counts:?}");
    let v: Vec<i32> = counts.values().copied().collect();
    assert_eq!(v.len(), 2, "{counts:?}");
    assert!(
        (v[0] - v[1]).abs() <= 1,
        "the idle two take turns: {counts:?}"
    );
}

#[test]
fn idle_timeout_closes_silent_connections_only() {
    let rt = rt();
    let e = rt.block_on(backend("e", 0, Behaviour::Echo));
    let proxy = start(&yaml(
        "i",
        "  idle_timeout: 300\n  check_interval: 0\n",
        &[("e", e.addr())],
    ));
    let port = proxy.port("i");
    rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            let mut quiet = client(port).await;
            let mut busy = client(port).await;
            assert_eq!(line(&mut quiet).await.as_deref(), Some("e"));
            assert_eq!(line(&mut busy).await.as_deref(), Some("e"));
            // busy talks every 50 ms for 900 ms; quiet says nothing.
            for _ in 0..18 {
                busy.write_all(b".").await.unwrap();
                let mut b = [0u8; 1];
                busy.read_exact(&mut b).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let mut rest = Vec::new();
            quiet.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty(), "closed by the proxy without more bytes");
            let got = exchange(busy, b"!").await.unwrap();
            assert_eq!(got, b"!EOF 19\n");
        })
        .await
        .expect("in time");
    });
    assert!(eventually(Duration::from_secs(5), || pool_snapshot(
        &proxy, "i"
    )
    .client_err
        == 1));
}

#[test]
fn client_connections_limit_and_drain_on_shutdown() {
    let rt = rt();
    let e = rt.block_on(backend("e", 0, Behaviour::Echo));
    let proxy = start(&yaml(
        "d",
        "  client_connections: 2\n  timeout: 3000\n  check_interval: 0\n",
        &[("e", e.addr())],
    ));
    let port = proxy.port("d");
    let p = proxy.proxy.clone();
    rt.block_on(async {
        tokio::time::timeout(LIMIT, async {
            let mut one = client(port).await;
            let mut two = client(port).await;
            assert_eq!(line(&mut one).await.as_deref(), Some("e"));
            assert_eq!(line(&mut two).await.as_deref(), Some("e"));
            // A third is refused (closed) while two are open.
            let mut three = client(port).await;
            assert_eq!(line(&mut three).await, None);
            drop(two);
            // Shutdown: the open connection keeps flowing within the grace.
            let stopping = tokio::spawn(async move { p.shutdown().await });
            tokio::time::sleep(Duration::from_millis(100)).await;
            let got = exchange(one, b"still here").await.unwrap();
            assert_eq!(got, b"still hereEOF 10\n");
            stopping.await.unwrap();
            // No longer accepting.
            assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
        })
        .await
        .expect("in time");
    });
    let d = pool_snapshot(&proxy, "d");
    assert_eq!((d.client_accepted, d.client_err >= 1), (2, true));
}

#[test]
fn send_expect_check_ejects_a_server_that_accepts_but_answers_wrong() {
    let rt = rt();
    let a = rt.block_on(backend("a", 0, Behaviour::Echo));
    let b = rt.block_on(backend("b", 0, Behaviour::SpeakFirst));
    // The echo server answers "a\nhello\r\n": it passes; b says "b\n" and
    // closes its half: it accepts connections but never answers "hello".
    let proxy = start(&yaml(
        "x",
        "  distribution: ring\n  check_interval: 100\n  check_timeout: 200\n  fall: 2\n  \
         rise: 1\n  check_send: 'hello\\r\\n'\n  check_expect: 'hello\\r\\n'\n",
        &[("a", a.addr()), ("b", b.addr())],
    ));
    let health = |n: &str| {
        pool_snapshot(&proxy, "x")
            .servers
            .into_iter()
            .find(|s| s.name == n)
            .unwrap()
            .health
    };
    assert!(eventually(Duration::from_secs(10), || matches!(
        health("b"),
        Health::Ejected { .. }
    )));
    // a keeps passing, for several more rounds.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(health("a"), Health::Up);
    // Every source now reaches a.
    let port = proxy.port("x");
    rt.block_on(async {
        for i in 1..=8 {
            let mut s = client_from(Ipv4Addr::new(127, 0, 1, i), port).await;
            assert_eq!(line(&mut s).await.as_deref(), Some("a"));
        }
    });
}
