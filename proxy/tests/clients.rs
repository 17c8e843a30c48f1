//! Many clients, and clients that misbehave: 1,000 at once, garbage, a
//! request stalled half-way, a disconnect mid-pipeline, the client limit and
//! the request size limit. None of them disturbs the others.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use chring_proxy::config::ProxyConfig;
use chring_proxy::state::Control;
use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn yaml(ports: &[u16], extra: &str) -> String {
    let mut y = format!(
        "r:\n  listen: 127.0.0.1:0\n  redis: true\n  hash: md5\n  timeout: 5000\n{extra}  servers:\n"
    );
    for p in ports {
        y.push_str(&format!("   - 127.0.0.1:{p}:1\n"));
    }
    y
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn a_thousand_concurrent_clients() {
    let servers: Vec<Daemon> = (0..2).map(|_| redis()).collect();
    let ports: Vec<u16> = servers.iter().map(|d| d.port).collect();
    let proxy = start(&yaml(&ports, "  server_connections: 2\n"));
    let port = proxy.port("r");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ok = rt.block_on(async move {
        let mut tasks = Vec::new();
        for c in 0..1000 {
            tasks.push(tokio::spawn(async move {
                let sock = tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap();
                let (rd, mut wr) = sock.into_split();
                let mut rd = BufReader::new(rd);
                let mut line = String::new();
                for i in 0..5 {
                    let k = format!("c{c}:{i}");
                    let v = format!("v{c}.{i}");
                    let req = encode(&[b"SET", k.as_bytes(), v.as_bytes()]);
                    wr.write_all(&req).await.unwrap();
                    wr.write_all(&encode(&[b"GET", k.as_bytes()]))
                        .await
                        .unwrap();
                    line.clear();
                    rd.read_line(&mut line).await.unwrap();
                    assert_eq!(line, "+OK\r\n");
                    line.clear();
                    rd.read_line(&mut line).await.unwrap();
                    assert_eq!(line, format!("${}\r\n", v.len()));
                    line.clear();
                    rd.read_line(&mut line).await.unwrap();
                    assert_eq!(line.trim_end(), v);
                }
                true
            }));
        }
        let mut ok = 0;
        for t in tasks {
            if tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .map(|r| r.unwrap_or(false))
                .unwrap_or(false)
            {
                ok += 1;
            }
        }
        ok
    });
    assert_eq!(ok, 1000);
    let s = proxy.proxy.snapshot();
    assert!(s.pools[0].client_accepted >= 1000);
    assert!(eventually(Duration::from_secs(5), || proxy
        .proxy
        .snapshot()
        .pools[0]
        .client_connections
        == 0));
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn misbehaving_clients_disturb_no_one() {
    let servers: Vec<Daemon> = (0..2).map(|_| redis()).collect();
    let ports: Vec<u16> = servers.iter().map(|d| d.port).collect();
    let mut cfg = ProxyConfig::parse(&yaml(&ports, "  client_connections: 20\n")).unwrap();
    cfg.limits.max_request_bytes = 4096;
    let proxy = start_cfg(cfg);
    let port = proxy.port("r");
    let mut good = Resp::new(port);
    assert_eq!(good.cmd(&["SET", "k", "v"]), V::S("OK".into()));

    // Garbage: an error, then closed.
    let mut g = connect(port);
    let mut state = 0x1234_5678_u64;
    let junk: Vec<u8> = (0..4096)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect();
    g.write_all(b"$").unwrap();
    g.write_all(&junk).unwrap();
    let mut reply = Vec::new();
    let _ = g.read_to_end(&mut reply);
    assert!(
        reply.starts_with(b"-ERR Protocol error"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );

    // Stalled half-way through a request: others are served meanwhile.
    let mut stalled = connect(port);
    stalled
        .write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc")
        .unwrap();
    let t = Instant::now();
    for _ in 0..100 {
        assert_eq!(good.cmd(&["GET", "k"]), V::bulk("v"));
    }
    assert!(t.elapsed() < Duration::from_secs(5));

    // Disconnect mid-pipeline: 2,000 requests sent, the socket closed at once.
    let before = proxy.proxy.snapshot().pools[0].client_eof;
    {
        let mut d = connect(port);
        let mut out = Vec::new();
        for i in 0..2000 {
            out.extend(encode(&[b"SET", format!("p{i}").as_bytes(), b"x"]));
        }
        d.write_all(&out).unwrap();
    }
    assert!(eventually(Duration::from_secs(5), || proxy
        .proxy
        .snapshot()
        .pools[0]
        .client_eof
        > before));
    assert_eq!(good.cmd(&["GET", "k"]), V::bulk("v"));

    // Request size limit: an error, then closed.
    let mut big = Resp::new(port);
    let value = "x".repeat(5000);
    big.send(&["SET", "big", &value]);
    let V::E(e) = big.read() else { panic!() };
    assert!(e.contains("larger than 4096"), "{e}");
    assert_eq!(big.try_read(), None);

    // Client limit (20): the connections beyond it are closed at once.
    drop(stalled);
    drop(g);
    assert!(eventually(Duration::from_secs(5), || {
        proxy.proxy.snapshot().pools[0].client_connections <= 1
    }));
    let mut held: Vec<Resp> = (0..19).map(|_| Resp::new(port)).collect();
    for h in &mut held {
        assert_eq!(h.cmd(&["PING"]), V::S("PONG".into()));
    }
    let mut refused = Resp::new(port);
    refused.send(&["PING"]);
    assert_eq!(refused.try_read(), None);
    drop(held);
    assert_eq!(good.cmd(&["GET", "k"]), V::bulk("v"));
    let pool = &proxy.proxy.snapshot().pools[0];
    assert!(pool.client_err >= 3, "{}", pool.client_err);
}
