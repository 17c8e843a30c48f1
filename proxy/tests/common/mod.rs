//! Real daemons on 127.0.0.1 (redis-server, memcached, nutcracker) on ports of
//! their own, killed on drop; blocking RESP and memcached clients; the proxy
//! started in-process on its own tokio runtime.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chring_proxy::Proxy;
use chring_proxy::config::ProxyConfig;

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A child process, killed (by its PID) and reaped on drop.
pub struct Daemon {
    pub what: String,
    pub port: u16,
    child: Child,
    _dir: Option<tempdir::Dir>,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Kills it now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: `bash scripts/test-all.sh proxy` installs it (apt)")
        })
}

/// A free port of 127.0.0.1 never handed out before in this process: the
/// tests run in parallel, and a port released after one pick can be picked
/// again (two `listen:`s of one YAML, or a daemon's and a pool's, must
/// differ).
pub fn free_port() -> u16 {
    static TAKEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Held until a fresh one turns up, so that the same one is not offered
    // again meanwhile.
    let mut held = Vec::new();
    for _ in 0..1000 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a free port on 127.0.0.1");
        let p = l.local_addr().expect("its address").port();
        held.push(l);
        if !taken.contains(&p) {
            taken.push(p);
            return p;
        }
    }
    panic!("no fresh free port on 127.0.0.1");
}

fn scratch(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("chring-proxy-{}-{tag}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn spawn(what: &str, port: u16, cmd: &mut Command, dir: Option<PathBuf>) -> Daemon {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut d = Daemon {
        what: what.to_string(),
        port,
        child,
        _dir: dir.map(tempdir::Dir),
    };
    wait_port(port, &mut d);
    d
}

fn wait_port(port: u16, d: &mut Daemon) {
    let start = Instant::now();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
            return;
        }
        if let Ok(Some(s)) = d.child.try_wait() {
            panic!("{} exited early: {s}", d.what);
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} not listening on {port} after 10 s",
            d.what
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A redis-server on `port` (a free one when 0), no persistence.
pub fn redis_on(port: u16, password: Option<&str>) -> Daemon {
    let port = if port == 0 { free_port() } else { port };
    let dir = scratch("redis");
    let mut cmd = Command::new(binary("redis-server"));
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ])
    .arg("--dir")
    .arg(&dir);
    if let Some(p) = password {
        cmd.args(["--requirepass", p]);
    }
    spawn("redis-server", port, &mut cmd, Some(dir))
}

pub fn redis() -> Daemon {
    redis_on(0, None)
}

pub fn memcached() -> Daemon {
    memcached_on(free_port())
}

pub fn memcached_on(port: u16) -> Daemon {
    let mut cmd = Command::new(binary("memcached"));
    cmd.args([
        "-l",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "0",
        "-m",
        "64",
        "-t",
        "1",
    ]);
    if nix_is_root() {
        cmd.args(["-u", "root"]);
    }
    spawn("memcached", port, &mut cmd, None)
}

fn nix_is_root() -> bool {
    std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false)
}

/// nutcracker with `yaml` (its `listen` must be `127.0.0.1:{port}`).
pub fn nutcracker(yaml: &str, port: u16) -> Daemon {
    let dir = scratch("nutcracker");
    let conf = dir.join("nutcracker.yml");
    std::fs::write(&conf, yaml).unwrap();
    let stats = free_port();
    let mut cmd = Command::new(binary("nutcracker"));
    cmd.arg("-c")
        .arg(&conf)
        .args(["-a", "127.0.0.1", "-s", &stats.to_string()])
        .arg("-o")
        .arg(dir.join("nutcracker.log"));
    spawn("nutcracker", port, &mut cmd, Some(dir))
}

/// The proxy on its own runtime (kept alive with it).
pub struct Running {
    pub proxy: Arc<Proxy>,
    pub rt: tokio::runtime::Runtime,
}

impl Running {
    pub fn addr(&self, pool: &str) -> SocketAddr {
        self.proxy
            .local_addrs()
            .into_iter()
            .find(|(p, _)| p == pool)
            .map(|(_, a)| a)
            .unwrap_or_else(|| panic!("no pool {pool}"))
    }

    pub fn port(&self, pool: &str) -> u16 {
        self.addr(pool).port()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let p = self.proxy.clone();
        self.rt.block_on(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), p.shutdown()).await;
        });
    }
}

pub fn start(yaml: &str) -> Running {
    let cfg = ProxyConfig::parse(yaml).expect("the test's YAML parses");
    start_cfg(cfg)
}

pub fn start_cfg(cfg: ProxyConfig) -> Running {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let proxy = rt.block_on(Proxy::start(cfg)).expect("the proxy starts");
    Running { proxy, rt }
}

pub fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// A RESP2 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum V {
    S(String),
    E(String),
    I(i64),
    B(Option<Vec<u8>>),
    A(Option<Vec<V>>),
}

impl V {
    pub fn bulk(s: &str) -> V {
        V::B(Some(s.as_bytes().to_vec()))
    }
}

/// A blocking RESP client.
pub struct Resp {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n", a.len()).bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Resp {
    pub fn new(port: u16) -> Resp {
        let w = connect(port);
        Resp {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    pub fn send(&mut self, args: &[&str]) {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.w.write_all(&encode(&a)).unwrap();
    }

    pub fn cmd(&mut self, args: &[&str]) -> V {
        self.send(args);
        self.read()
    }

    pub fn read(&mut self) -> V {
        self.try_read().expect("a reply")
    }

    pub fn try_read(&mut self) -> Option<V> {
        let mut line = Vec::new();
        if self.r.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        assert!(
            line.ends_with(b"\r\n"),
            "bad line {:?}",
            String::from_utf8_lossy(&line)
        );
        let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        Some(match line[0] {
            b'+' => V::S(body),
            b'-' => V::E(body),
            b':' => V::I(body.parse().unwrap()),
            b'$' => {
                let n: i64 = body.parse().unwrap();
                if n < 0 {
                    V::B(None)
                } else {
                    let mut data = vec![0; n as usize + 2];
                    self.r.read_exact(&mut data).ok()?;
                    data.truncate(n as usize);
                    V::B(Some(data))
                }
            }
            b'*' => {
                let n: i64 = body.parse().unwrap();
                if n < 0 {
                    V::A(None)
                } else {
                    V::A(Some((0..n).map(|_| self.read()).collect()))
                }
            }
            other => panic!("unknown reply type {other}"),
        })
    }

    /// Every key the server holds (KEYS *).
    pub fn keys(&mut self) -> Vec<String> {
        match self.cmd(&["KEYS", "*"]) {
            V::A(Some(v)) => v
                .into_iter()
                .map(|x| match x {
                    V::B(Some(b)) => String::from_utf8(b).unwrap(),
                    o => panic!("{o:?}"),
                })
                .collect(),
            o => panic!("{o:?}"),
        }
    }
}

/// A blocking memcached client.
pub struct Mc {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl Mc {
    pub fn new(port: u16) -> Mc {
        let w = connect(port);
        Mc {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        }
    }

    pub fn line(&mut self) -> String {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        assert!(
            line.ends_with(b"\r\n"),
            "bad line {:?}",
            String::from_utf8_lossy(&line)
        );
        line.truncate(line.len() - 2);
        String::from_utf8(line).unwrap()
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }

    pub fn set(&mut self, key: &str, value: &str) -> String {
        self.raw(format!("set {key} 0 0 {}\r\n{value}\r\n", value.len()).as_bytes());
        self.line()
    }

    /// `get` of `keys`: the (key, value) pairs returned, in order.
    pub fn get(&mut self, keys: &[&str]) -> Vec<(String, String)> {
        self.raw(format!("get {}\r\n", keys.join(" ")).as_bytes());
        self.values()
    }

    pub fn values(&mut self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l == "END" {
                return out;
            }
            let t: Vec<&str> = l.split(' ').collect();
            assert_eq!(t[0], "VALUE", "{l}");
            let n: usize = t[3].parse().unwrap();
            let mut data = vec![0; n + 2];
            self.r.read_exact(&mut data).unwrap();
            data.truncate(n);
            out.push((t[1].to_string(), String::from_utf8(data).unwrap()));
        }
    }
}

/// Keys `prefix:{i}` for `i` in `0..n`, in a seeded (PCG) order of lengths.
pub fn keys(prefix: &str, n: usize, seed: u64) -> Vec<String> {
    use rand_core::Rng;
    let mut rng = rand_pcg::Pcg64::new(u128::from(seed), 0x0a02_bdbf_7bb3_c0a7_ac28_fa16_a64a_bf96);
    (0..n)
        .map(|i| {
            let salt = rng.next_u32() % 100_000;
            format!("{prefix}:{salt}:{i}")
        })
        .collect()
}

/// Runs `f` until it returns true or `limit` passes.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}
