//! The balancers under comparison, started as child processes on free ports of
//! 127.0.0.1: chring-proxy with one `mode: http` pool per run, or Debian's
//! nginx (the reference users run today) with an `upstream` block. Each is
//! killed (by PID) and its temporary directory removed when dropped.

use std::fmt::Write as _;
use std::io::{BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::Algorithm;
use super::http;

/// How long a balancer may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A free port on 127.0.0.1 (bound to 0, then released).
///
/// # Errors
/// No port to bind.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The first `name` on `PATH`, in `/usr/sbin` or `/usr/bin`.
#[must_use]
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A temporary directory, removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> std::io::Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "host-sim-lb-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Relaxed)
        ));
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a run's balancer is configured with besides its algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalancerOptions {
    /// chring-proxy's binary (for chring's algorithms).
    pub proxy: Option<PathBuf>,
    /// nginx's binary (for the nginx rows).
    pub nginx: Option<PathBuf>,
    /// `hedge_after:` of the hedged run (`p95`, or ms).
    pub hedge_after: String,
    /// `check_interval:` of chring's pools, ms.
    pub check_interval_ms: u64,
    /// Backend connect + response timeout, ms.
    pub timeout_ms: u64,
}

/// A running balancer; killed when dropped.
#[derive(Debug)]
pub struct Balancer {
    child: Child,
    /// Where clients connect.
    pub listen: SocketAddr,
    /// chring-proxy's admin HTTP address.
    pub admin: Option<SocketAddr>,
    log: PathBuf,
    dir: TempDir,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        // `Child::kill` signals this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chring-proxy's YAML for one run: a single `mode: http` pool.
#[must_use]
pub fn chring_yaml(
    alg: Algorithm,
    listen: SocketAddr,
    backends: &[(String, SocketAddr)],
    o: &BalancerOptions,
) -> String {
    let mut y = String::new();
    let _ = writeln!(y, "# written by host-sim lb-compare ({})", alg.name());
    let _ = writeln!(y, "lbcompare:");
    let _ = writeln!(y, "  listen: {listen}");
    let _ = writeln!(y, "  mode: http");
    let _ = writeln!(y, "  distribution: {}", alg.distribution());
    if alg.keyed() {
        let _ = writeln!(y, "  hash_key: path");
    }
    if alg == Algorithm::P2cHedge {
        let _ = writeln!(y, "  hedge_after: {}", o.hedge_after);
    }
    let _ = writeln!(y, "  timeout: {}", o.timeout_ms);
    let _ = writeln!(y, "  check_interval: {}", o.check_interval_ms);
    let _ = writeln!(y, "  check_path: /health");
    let _ = writeln!(y, "  servers:");
    for (name, addr) in backends {
        let _ = writeln!(y, "   - {addr}:1 {name}");
    }
    y
}

/// nginx's configuration for one run: one `upstream` with the algorithm's
/// directive, keep-alive both ways, nginx's defaults otherwise
/// (`max_fails=1 fail_timeout=10s`, `proxy_next_upstream error timeout`).
#[must_use]
pub fn nginx_conf(
    alg: Algorithm,
    dir: &Path,
    listen: SocketAddr,
    backends: &[(String, SocketAddr)],
    o: &BalancerOptions,
) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = write!(
        c,
        "# written by host-sim lb-compare ({})\n\
         daemon off;\nmaster_process off;\nworker_processes 1;\n\
         pid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n    access_log off;\n    keepalive_requests 1000000;\n\
         \x20   client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
         \x20   upstream lb {{\n",
        alg.name()
    );
    match alg {
        Algorithm::NginxLeastConn => c.push_str("        least_conn;\n"),
        Algorithm::NginxRandomTwo => c.push_str("        random two least_conn;\n"),
        _ => {}
    }
    for (_, addr) in backends {
        let _ = writeln!(c, "        server {addr};");
    }
    let t = o.timeout_ms;
    let _ = write!(
        c,
        "        keepalive 256;\n    }}\n    server {{\n        listen {listen};\n\
         \x20       location / {{\n            proxy_pass http://lb;\n\
         \x20           proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n\
         \x20           proxy_connect_timeout {t}ms;\n            proxy_read_timeout {t}ms;\n\
         \x20       }}\n    }}\n}}\n"
    );
    c
}

impl Balancer {
    /// Starts the balancer of `alg` over `backends` (name, address) and waits
    /// until it listens.
    ///
    /// # Errors
    /// The binary is not given or not found, the child could not start or
    /// exited, or it did not listen within 15 s (its log's tail in the message).
    pub fn start(
        alg: Algorithm,
        backends: &[(String, SocketAddr)],
        o: &BalancerOptions,
    ) -> anyhow::Result<Self> {
        let dir = TempDir::new(alg.name())?;
        let listen: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
        let log = dir.0.join("output.log");
        let out = std::fs::File::create(&log)?;
        let err = out.try_clone()?;
        let (mut cmd, admin) = if alg.is_nginx() {
            let nginx = o.nginx.clone().or_else(|| find_binary("nginx")).context(
                "nginx not found (Debian: apt-get install nginx-light), or leave out the nginx_* algorithms",
            )?;
            for sub in ["body", "proxy"] {
                std::fs::create_dir_all(dir.0.join(sub))?;
            }
            let conf = dir.0.join("nginx.conf");
            std::fs::write(&conf, nginx_conf(alg, &dir.0, listen, backends, o))?;
            let mut cmd = Command::new(nginx);
            cmd.arg("-p")
                .arg(&dir.0)
                .arg("-e")
                .arg(dir.0.join("error.log"))
                .arg("-c")
                .arg(&conf);
            (cmd, None)
        } else {
            let proxy = o
                .proxy
                .clone()
                .context("chring's algorithms need --proxy PATH (the chring-proxy binary)")?;
            let conf = dir.0.join("chring-proxy.yml");
            std::fs::write(&conf, chring_yaml(alg, listen, backends, o))?;
            let admin: SocketAddr = format!("127.0.0.1:{}", free_port()?).parse()?;
            let mut cmd = Command::new(proxy);
            cmd.arg("-c")
                .arg(&conf)
                .arg("-s")
                .arg(free_port()?.to_string())
                .arg("-a")
                .arg("127.0.0.1")
                .arg("--admin")
                .arg(admin.to_string());
            (cmd, Some(admin))
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start the balancer of {}", alg.name()))?;
        let mut b = Self {
            child,
            listen,
            admin,
            log,
            dir,
        };
        b.wait_listening()?;
        Ok(b)
    }

    /// The last lines of its output and error logs.
    #[must_use]
    pub fn log_tail(&self) -> String {
        let mut text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(self.dir.0.join("error.log")).unwrap_or_default());
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join(" | ")
    }

    fn wait_listening(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        let mut addrs = vec![self.listen];
        addrs.extend(self.admin);
        while start.elapsed() < START_TIMEOUT {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "balancer exited ({status}) before listening: {}",
                    self.log_tail()
                );
            }
            if addrs
                .iter()
                .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok())
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!(
            "balancer did not listen on {} within {START_TIMEOUT:?}: {}",
            self.listen,
            self.log_tail()
        )
    }

    /// Sends `GET /k/warm-up` until `n` answers in a row come from a backend
    /// (an `X-Backend` header), so that a balancer that starts its servers
    /// down until their first health checks pass is measured once they are
    /// up. Returns the requests sent.
    ///
    /// # Errors
    /// No run of `n` such answers within `timeout`.
    pub fn warm_up(&mut self, n: u32, timeout: Duration) -> anyhow::Result<u32> {
        let start = Instant::now();
        let (mut sent, mut run) = (0, 0);
        while start.elapsed() < timeout {
            sent += 1;
            let answered = get(self.listen, "/k/warm-up", Duration::from_secs(2))
                .is_ok_and(|(_, head, _)| head.header("x-backend").is_some());
            run = if answered { run + 1 } else { 0 };
            if run >= n {
                return Ok(sent);
            }
            if !answered {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        bail!(
            "no backend answered through the balancer within {timeout:?}: {}",
            self.log_tail()
        )
    }

    /// chring-proxy's `/metrics` text (`None` for nginx or when it fails).
    #[must_use]
    pub fn metrics(&self) -> Option<String> {
        let admin = self.admin?;
        let (status, _, body) = get(admin, "/metrics", Duration::from_secs(5)).ok()?;
        (status == 200).then(|| String::from_utf8_lossy(&body).into_owned())
    }
}

/// One `GET path` on a connection of its own.
fn get(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> std::io::Result<(u16, http::Head, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut r = BufReader::new(s);
    let head = http::read_head(&mut r)?
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no answer"))?;
    let body = head.read_body(&mut r, true)?;
    let status = head.status().unwrap_or(0);
    Ok((status, head, body))
}

/// Sums the samples of every metric in Prometheus `text` whose name passes
/// `pick`; `None` when there is none.
#[must_use]
pub fn sum_metric(text: &str, pick: impl Fn(&str) -> bool) -> Option<u64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap_or("");
        if name.is_empty() || !pick(name) {
            continue;
        }
        if let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0) += v as u64;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends() -> Vec<(String, SocketAddr)> {
        vec![
            ("ok-0".into(), "127.0.0.1:4000".parse().unwrap()),
            ("slow-1".into(), "127.0.0.1:4001".parse().unwrap()),
        ]
    }

    fn opts() -> BalancerOptions {
        BalancerOptions {
            proxy: None,
            nginx: None,
            hedge_after: "p95".into(),
            check_interval_ms: 1000,
            timeout_ms: 5000,
        }
    }

    #[test]
    fn chring_pools_use_the_shared_keys() {
        let listen = "127.0.0.1:3999".parse().unwrap();
        let y = chring_yaml(Algorithm::P2cHedge, listen, &backends(), &opts());
        for line in [
            "lbcompare:",
            "  listen: 127.0.0.1:3999",
            "  mode: http",
            "  distribution: p2c",
            "  hedge_after: p95",
            "  timeout: 5000",
            "  check_interval: 1000",
            "  check_path: /health",
            "   - 127.0.0.1:4001:1 slow-1",
        ] {
            assert!(y.lines().any(|l| l == line), "{line} missing from\n{y}");
        }
        assert!(!y.contains("hash_key"));
        let y = chring_yaml(Algorithm::Ring, listen, &backends(), &opts());
        assert!(
            y.contains("  distribution: ring\n  hash_key: path\n"),
            "{y}"
        );
        assert!(!y.contains("hedge_after"));
    }

    #[test]
    fn nginx_upstreams() {
        let listen = "127.0.0.1:3999".parse().unwrap();
        let dir = Path::new("/tmp/x");
        let c = nginx_conf(Algorithm::NginxRandomTwo, dir, listen, &backends(), &opts());
        assert!(c.contains("random two least_conn;"));
        assert!(c.contains("server 127.0.0.1:4001;"));
        assert!(c.contains("listen 127.0.0.1:3999;"));
        let c = nginx_conf(
            Algorithm::NginxRoundRobin,
            dir,
            listen,
            &backends(),
            &opts(),
        );
        assert!(!c.contains("least_conn"));
    }

    #[test]
    fn sums_metrics() {
        let text = "# HELP x\nchring_proxy_hedges_total{pool=\"a\"} 3\nchring_proxy_hedges_total{pool=\"b\"} 4\nchring_proxy_hedge_wins_total 2\n";
        assert_eq!(
            sum_metric(text, |n| n == "chring_proxy_hedges_total"),
            Some(7)
        );
        assert_eq!(sum_metric(text, |n| n.contains("wins")), Some(2));
        assert_eq!(sum_metric(text, |n| n == "nope"), None);
    }
}
