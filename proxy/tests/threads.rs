//! `--threads N`: the binary with one current-thread runtime per thread
//! (`--threads 1`: one runtime in all) against real redis-servers. Every
//! client's pipelined replies come back in order whichever thread serves it,
//! multi-key commands still split and merge, every worker thread keeps its own
//! `server_connections` connections to each server (the stats port counts
//! them), and SIGTERM still ends the process with 0.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::{Resp, V, eventually, free_port, keys, redis};

/// The proxy process, killed on drop if a test failed before SIGTERM.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `server_connections` of every server of pool `pool`, from the stats port.
fn server_connections(stats: u16, pool: &str) -> Vec<u64> {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", stats)) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut text = String::new();
    if s.read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    let Some(p) = doc.get(pool).and_then(|p| p.as_object()) else {
        return Vec::new();
    };
    p.values()
        .filter_map(|v| v.get("server_connections")?.as_u64())
        .collect()
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(st)) = child.try_wait() {
            return st.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn run_with_threads(threads: usize) {
    let r1 = redis();
    let r2 = redis();
    let port = free_port();
    let stats = free_port();
    let dir = std::env::temp_dir().join(format!(
        "chring-proxy-threads-{}-{threads}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("proxy.yml");
    std::fs::write(
        &conf,
        format!(
            "pool:\n  listen: 127.0.0.1:{port}\n  hash: fnv1a_64\n  distribution: ketama\n  \
             redis: true\n  preconnect: true\n  servers:\n   - 127.0.0.1:{}:1 a\n   - 127.0.0.1:{}:1 b\n",
            r1.port, r2.port
        ),
    )
    .unwrap();
    let child = Command::cargo_bin("chring-proxy")
        .unwrap()
        .args(["-c", conf.to_str().unwrap(), "-s", &stats.to_string()])
        .args(["--threads", &threads.to_string()])
        .arg("-o")
        .arg(dir.join("proxy.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut proc = Proc(child);
    assert!(
        eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "chring-proxy --threads {threads} not listening"
    );

    // preconnect: each worker opens its own connection to each server.
    assert!(
        eventually(Duration::from_secs(10), || {
            server_connections(stats, "pool") == vec![threads as u64; 2]
        }),
        "--threads {threads}: server_connections {:?}, want {threads} per server",
        server_connections(stats, "pool")
    );

    // More clients than threads, so that every worker serves some; each
    // pipelines its SETs and GETs and reads the replies in order.
    let clients: Vec<_> = (0..3 * threads + 2)
        .map(|c| {
            std::thread::spawn(move || {
                let ks = keys(&format!("t{threads}:c{c}"), 40, 12 + c as u64);
                let mut r = Resp::new(port);
                for k in &ks {
                    r.send(&["SET", k, &format!("v-{k}")]);
                }
                for k in &ks {
                    r.send(&["GET", k]);
                }
                for k in &ks {
                    assert_eq!(r.read(), V::S("OK".into()), "SET {k}");
                }
                for k in &ks {
                    assert_eq!(r.read(), V::bulk(&format!("v-{k}")), "GET {k}");
                }
                let mut mget = vec!["MGET"];
                mget.extend(ks.iter().map(String::as_str));
                mget.push("no-such-key");
                let mut want: Vec<V> = ks.iter().map(|k| V::bulk(&format!("v-{k}"))).collect();
                want.push(V::B(None));
                assert_eq!(r.cmd(&mget), V::A(Some(want)), "MGET");
                let mut del = vec!["DEL"];
                del.extend(ks.iter().map(String::as_str));
                assert_eq!(r.cmd(&del), V::I(ks.len() as i64), "DEL");
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client's replies were wrong");
    }

    let pid = nix::unistd::Pid::from_raw(i32::try_from(proc.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(
        wait_exit(&mut proc.0, Duration::from_secs(15)),
        Some(0),
        "--threads {threads}: SIGTERM must end the proxy with 0"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn one_thread_serves_in_order() {
    run_with_threads(1);
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn three_threads_serve_in_order_with_their_own_server_connections() {
    run_with_threads(3);
}
