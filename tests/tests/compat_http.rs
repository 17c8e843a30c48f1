//! Shared machinery of the nginx and HAProxy daemon tests (issue 6): HTTP
//! backends that say who they are, a keep-alive HTTP client, daemon processes
//! stopped by their own PIDs, and the keys.
//!
//! Everything listens on and connects to 127.0.0.1 only; every loop is bounded
//! (a fixed number of keys, I/O timeouts, a bounded wait for a daemon to listen).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use host_sim::route::KeyRouter;

pub(crate) const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Keys sent through a daemon per case.
pub(crate) const KEYS: usize = 10_000;
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// `CHRING_DAEMON_TESTS=1`: the daemons must be there (the compat step sets it
/// after installing them); otherwise a missing daemon makes the test print
/// SKIPPED and return.
pub(crate) fn daemons_required() -> bool {
    std::env::var("CHRING_DAEMON_TESTS").is_ok_and(|v| v == "1")
}

pub(crate) fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The first line of `binary ARG`'s output (stdout or stderr).
pub(crate) fn version(binary: &PathBuf, arg: &str) -> String {
    Command::new(binary)
        .arg(arg)
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stderr).to_string()
                + &String::from_utf8_lossy(&o.stdout);
            text.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

/// Ports handed out by [`free_ports`] in this process (the nginx and HAProxy
/// tests run in parallel and must not pick the same one).
static TAKEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// `n` distinct free ports on 127.0.0.1, never handed out before in this
/// process. All are held bound while choosing, so the OS cannot repeat one.
pub(crate) fn free_ports(n: usize) -> Vec<u16> {
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n + 1000 {
        if ports.len() == n {
            break;
        }
        let l = TcpListener::bind((LOCALHOST, 0)).expect("a free port on 127.0.0.1");
        let p = l.local_addr().expect("local address").port();
        held.push(l);
        if !taken.contains(&p) {
            taken.push(p);
            ports.push(p);
        }
    }
    assert_eq!(ports.len(), n, "cannot find {n} free ports");
    ports
}

/// `n` distinct ports free on every address, IPv4 and IPv6 (each held bound
/// on the dual-stack wildcard `[::]` while choosing), never handed out before
/// in this process: for a daemon that listens on `:::PORT v4v6`.
pub(crate) fn free_ports_dual(n: usize) -> Vec<u16> {
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n + 1000 {
        if ports.len() == n {
            break;
        }
        let l =
            TcpListener::bind((std::net::Ipv6Addr::UNSPECIFIED, 0)).expect("a free port on [::]");
        let p = l.local_addr().expect("local address").port();
        held.push(l);
        if !taken.contains(&p) {
            taken.push(p);
            ports.push(p);
        }
    }
    assert_eq!(ports.len(), n, "cannot find {n} free ports");
    ports
}

/// A temp dir for one test's configuration and logs, removed on drop (pass or
/// fail).
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(what: &str, subdirs: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("chring-{what}-{}", std::process::id()));
        for sub in [""].iter().chain(subdirs) {
            std::fs::create_dir_all(dir.join(sub)).expect("temp dir");
        }
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon process, killed (SIGKILL via `Child::kill`, i.e. by its own PID)
/// and reaped on drop, pass or fail. Run in the foreground as one process
/// (nginx `master_process off`, haproxy `-db`), so no child outlives it.
pub(crate) struct Daemon {
    what: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub(crate) fn spawn(what: &str, cmd: &mut Command, log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).expect("daemon log file");
        let err = out.try_clone().expect("daemon log file");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        println!("started {what}, pid {}", child.id());
        Self {
            what: what.to_string(),
            child,
            log,
        }
    }

    /// Panics with its log if it has exited.
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("{} exited early ({status}):\n{log}", self.what);
        }
    }

    /// Waits (at most 10 s) until 127.0.0.1:`port` accepts connections.
    pub(crate) fn wait_listening(&mut self, port: u16) {
        let addr = SocketAddr::from((LOCALHOST, port));
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err() {
            self.check_alive();
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} does not listen on 127.0.0.1:{port} after 10 s",
                self.what
            );
            std::thread::sleep(Duration::from_millis(30));
        }
        // Listening on one port does not prove it bound all of them.
        self.check_alive();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = self.child.kill();
        let _ = self.child.wait();
        println!("stopped {} (pid {pid})", self.what);
    }
}

/// `n` HTTP backends on 127.0.0.1; backend `i` answers every request with the
/// body `backend-i`. Stopped on drop.
pub(crate) struct Backends {
    pub(crate) ports: Vec<u16>,
    stop: Arc<AtomicBool>,
}

impl Backends {
    pub(crate) fn start(n: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut ports = Vec::new();
        for i in 0..n {
            let listener = TcpListener::bind((LOCALHOST, 0)).expect("bind a backend");
            ports.push(listener.local_addr().expect("backend address").port());
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        std::thread::spawn(move || serve(conn, i));
                    }
                }
            });
        }
        Self { ports, stop }
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for &p in &self.ports {
            // Wakes the accept loop so that it sees the flag.
            let _ = TcpStream::connect((LOCALHOST, p));
        }
    }
}

/// Answers HTTP/1.1 requests on one connection until it closes or idles 30 s.
fn serve(conn: TcpStream, index: usize) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let body = format!("backend-{index}");
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    loop {
        let mut content_length = 0usize;
        let mut line = String::new();
        // Request line and headers.
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" || line == "\n" {
                if first {
                    continue;
                }
                break;
            }
            first = false;
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut skip = vec![0; content_length];
        if reader.read_exact(&mut skip).is_err() || out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A keep-alive HTTP/1.1 client of one daemon port; reconnects when the daemon
/// closes the connection.
pub(crate) struct Client {
    port: u16,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Client {
    pub(crate) fn new(port: u16) -> Self {
        Self { port, conn: None }
    }

    fn connection(&mut self) -> &mut (TcpStream, BufReader<TcpStream>) {
        self.conn.get_or_insert_with(|| {
            let s = TcpStream::connect((LOCALHOST, self.port)).expect("connect to the daemon");
            s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
            s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
            s.set_nodelay(true).expect("nodelay");
            let r = BufReader::new(s.try_clone().expect("clone"));
            (s, r)
        })
    }

    /// Sends `GET path` with `X-Key: key` and returns the response body; one
    /// retry on a fresh connection if the kept-alive one was closed.
    pub(crate) fn get(&mut self, path: &str, key: &str) -> String {
        for attempt in 0..2 {
            match self.try_get(path, key) {
                Ok(body) => return body,
                Err(e) => {
                    self.conn = None;
                    assert!(attempt == 0, "request for key {key:?} failed twice: {e}");
                }
            }
        }
        unreachable!()
    }

    fn try_get(&mut self, path: &str, key: &str) -> std::io::Result<String> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: chring.test\r\nX-Key: {key}\r\n\r\n");
        self.try_raw(&req)
    }

    /// Sends `request` (a whole HTTP/1.1 request) and returns the response
    /// body; one retry on a fresh connection if the kept-alive one was closed.
    pub(crate) fn raw(&mut self, request: &str) -> String {
        for attempt in 0..2 {
            match self.try_raw(request) {
                Ok(body) => return body,
                Err(e) => {
                    self.conn = None;
                    assert!(attempt == 0, "request {request:?} failed twice: {e}");
                }
            }
        }
        unreachable!()
    }

    fn try_raw(&mut self, request: &str) -> std::io::Result<String> {
        let (s, r) = self.connection();
        s.write_all(request.as_bytes())?;
        let (body, close) = read_response(r, request)?;
        if close {
            self.conn = None;
        }
        Ok(body)
    }
}

/// Reads one HTTP/1.1 response (status 200 required, Content-Length framing):
/// its body, and whether the server closes the connection after it.
fn read_response<R: BufRead>(r: &mut R, request: &str) -> std::io::Result<(String, bool)> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    assert!(
        line.starts_with("HTTP/1.1 200"),
        "request {request:?}: status {line:?}"
    );
    let mut len = None;
    let mut close = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                len = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                panic!("unexpected Transfer-Encoding: {value}");
            }
        }
    }
    let len = len.expect("a Content-Length");
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok((String::from_utf8_lossy(&body).into_owned(), close))
}

/// Sends `request` on a fresh connection from `from` (bound to it, any port)
/// to `to`, and returns the response body: how the `source` / `ip_hash` tests
/// give a daemon many client addresses (127.0.0.0/8 is all on `lo`).
pub(crate) fn request_from(from: IpAddr, to: SocketAddr, request: &str) -> String {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(to), Type::STREAM, None).expect("socket");
    // Its TIME_WAIT must not keep a daemon from binding the same port on a
    // wildcard address later (Linux lets a bind over TIME_WAIT only when both
    // sockets set SO_REUSEADDR).
    sock.set_reuse_address(true).expect("SO_REUSEADDR");
    sock.bind(&SocketAddr::new(from, 0).into())
        .unwrap_or_else(|e| panic!("bind {from}: {e}"));
    sock.connect_timeout(&to.into(), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {from} -> {to}: {e}"));
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    s.set_write_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut w = s.try_clone().expect("clone");
    w.write_all(request.as_bytes()).expect("send the request");
    let mut r = BufReader::new(s);
    read_response(&mut r, request)
        .unwrap_or_else(|e| panic!("{from} -> {to}: {e}"))
        .0
}

/// One request of a case: its text, the key `route` reads for it, and the
/// client address it comes from (`None`: the kept-alive connection from
/// 127.0.0.1).
pub(crate) struct Probe {
    pub(crate) request: String,
    pub(crate) route_key: String,
    pub(crate) from: Option<IpAddr>,
}

/// Sends every probe through the daemon listening on `to` and compares the
/// backend that answered (`server_of` maps its index to the server's
/// configured name) with what chring's `router` says for the probe's key.
pub(crate) fn run_probes(
    to: SocketAddr,
    probes: &[Probe],
    router: &mut dyn KeyRouter,
    server_of: &dyn Fn(usize) -> String,
) -> Tally {
    let mut client = Client::new(to.port());
    let mut t = Tally::default();
    for p in probes {
        let body = match p.from {
            // An IPv6 client reaches a dual-stack daemon on [::1].
            Some(from @ IpAddr::V6(_)) => request_from(
                from,
                SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), to.port()),
                &p.request,
            ),
            Some(from) => request_from(from, to, &p.request),
            None => client.raw(&p.request),
        };
        let index: usize = body
            .strip_prefix("backend-")
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("unexpected body {body:?}"));
        let got = server_of(index);
        t.sent += 1;
        match router.route(p.route_key.as_bytes()) {
            Some(want) if want == got => t.agree += 1,
            Some(want) => {
                if t.first_diffs.len() < 5 {
                    t.first_diffs.push(format!(
                        "key {:?}: daemon {got}, chring {want}",
                        p.route_key
                    ));
                }
            }
            None => {
                t.fallback += 1;
                if t.first_diffs.len() < 5 {
                    t.first_diffs.push(format!(
                        "key {:?}: daemon {got}, chring: {}",
                        p.route_key,
                        router.unrouted(p.route_key.as_bytes())
                    ));
                }
            }
        }
    }
    t
}

/// `n` distinct client addresses in 127.0.0.0/8 (never .0 or .255 in the
/// last octet), from a seed.
pub(crate) fn loopback_sources(seed: u64, n: usize) -> Vec<Ipv4Addr> {
    let mut rng = SplitMix(seed);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let r = rng.next();
        let a = Ipv4Addr::new(127, (r >> 8) as u8, (r >> 16) as u8, 1 + (r % 254) as u8);
        if seen.insert(a) {
            out.push(a);
        }
    }
    out
}

/// A deterministic generator (SplitMix64) for the keys.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `KEYS` distinct keys of 1 to 40 characters, from the characters a header
/// value or URI path carries unchanged through both daemons (no blank, no
/// comma: HAProxy's `hdr()` hashes only the first comma-separated element).
pub(crate) fn keys(seed: u64) -> Vec<String> {
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~:@!$*+=";
    let mut rng = SplitMix(seed);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(KEYS);
    while out.len() < KEYS {
        let r = rng.next();
        let k = match out.len() % 4 {
            // Shapes a cache tier sees: ids, paths, and random strings.
            0 => format!("user:{}", r % 1_000_000_007),
            1 => format!("obj-{:x}", r),
            _ => {
                let len = 1 + (r % 40) as usize;
                (0..len)
                    .map(|_| ALPHABET[(rng.next() % ALPHABET.len() as u64) as usize] as char)
                    .collect()
            }
        };
        if seen.insert(k.clone()) {
            out.push(k);
        }
    }
    out
}

/// Result of one case: keys sent, keys where chring named the same server,
/// keys where the daemon falls back to round robin (not compared), and the
/// first disagreements.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) sent: usize,
    pub(crate) agree: usize,
    pub(crate) fallback: usize,
    pub(crate) first_diffs: Vec<String>,
}

/// Sends every key through the daemon on `port` (`path_of` makes the request
/// path, the key also goes in `X-Key`) and compares the backend that answered
/// (`server_of` maps its index to the server's configured name) with what
/// chring's `router` says.
pub(crate) fn run_keys(
    port: u16,
    keys: &[String],
    router: &mut dyn KeyRouter,
    server_of: &dyn Fn(usize) -> String,
    path_of: &dyn Fn(&str) -> String,
    route_key: &dyn Fn(&str) -> String,
) -> Tally {
    let mut client = Client::new(port);
    let mut t = Tally::default();
    for k in keys {
        let body = client.get(&path_of(k), k);
        let index: usize = body
            .strip_prefix("backend-")
            .and_then(|i| i.parse().ok())
            .unwrap_or_else(|| panic!("unexpected body {body:?}"));
        let got = server_of(index);
        t.sent += 1;
        match router.route(route_key(k).as_bytes()) {
            Some(want) if want == got => t.agree += 1,
            Some(want) => {
                if t.first_diffs.len() < 5 {
                    t.first_diffs
                        .push(format!("key {k:?}: daemon {got}, chring {want}"));
                }
            }
            None => t.fallback += 1,
        }
    }
    t
}
