//! The `chring-proxy` command line: nutcracker's options and output, one-line
//! errors, the bind policy; the last two run the whole daemon (every surface,
//! signals, daemonizing and the pid file).

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use common::free_port;

fn proxy() -> Command {
    Command::cargo_bin("chring-proxy").unwrap()
}

/// (exit code, stdout, stderr) of `chring-proxy ARGS`.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = proxy().args(args).stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const GOOD: &str = "\
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
   - 127.0.0.1:6379:1 s1
   - 127.0.0.1:6380:1 s2
";

fn nutcracker() -> Option<&'static str> {
    ["/usr/sbin/nutcracker", "/usr/bin/nutcracker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

#[test]
fn version_help_and_describe_print_what_nutcracker_prints() {
    let (code, out, err) = run(&["--version"]);
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(
        err,
        format!(
            "This is chring-proxy-{}\nasync event backend: tokio\n\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(run(&["-V"]).2, err);

    let (code, _, help) = run(&["-h"]);
    assert_eq!(code, 0);
    assert!(help.starts_with(&err));
    for opt in [
        "-h, --help",
        "-V, --version",
        "-t, --test-conf",
        "-d, --daemonize",
        "-D, --describe-stats",
        "-v, --verbose=N",
        "-o, --output=S",
        "-c, --conf-file=S",
        "-s, --stats-port=N",
        "-a, --stats-addr=S",
        "-i, --stats-interval=N",
        "-p, --pid-file=S",
        "-m, --mbuf-size=N",
        "--control=S",
        "--admin=S",
        "--token-file=S",
    ] {
        assert!(help.contains(opt), "{opt} missing from -h");
    }
    assert!(help.contains("(default: 22222)") && help.contains("(default: 30000 msec)"));

    let (code, _, d) = run(&["-D"]);
    assert_eq!(code, 0);
    let d = d.strip_prefix(err.as_str()).unwrap();
    assert_eq!(d, chring_proxy::stats::describe());
    if let Some(nc) = nutcracker() {
        // The same field list, byte for byte, after the version lines.
        let real = Command::new(nc).arg("-D").output().unwrap();
        let real = String::from_utf8(real.stderr).unwrap();
        let real = real.split_once("\n\n").unwrap().1;
        assert_eq!(d, real);
    } else {
        eprintln!("SKIPPED the comparison with nutcracker -D: nutcracker is not installed");
    }
}

#[test]
fn bad_options_are_one_line_and_exit_1() {
    for (args, msg) in [
        (&["-x"][..], "chring-proxy: invalid option -- 'x'"),
        (&["--bogus"], "chring-proxy: unrecognized option '--bogus'"),
        (&["-s", "x"], "chring-proxy: option -s requires a number"),
        (
            &["-s", "65536"],
            "chring-proxy: option -s value 65536 is not a valid port",
        ),
        (&["-v"], "chring-proxy: option -v requires a number"),
        (&["-c"], "chring-proxy: option -c requires a file name"),
        (
            &["-m", "1"],
            "chring-proxy: mbuf chunk size must be between 512 and 16777216 bytes",
        ),
        (
            &["--admin", "x"],
            "chring-proxy: option --admin requires an address (host:port)",
        ),
        (&["extra"], "chring-proxy: unexpected argument 'extra'"),
    ] {
        let (code, out, err) = run(args);
        assert_eq!(code, 1, "{args:?}");
        assert_eq!(out, "");
        assert_eq!(err, format!("{msg}\n"), "{args:?}");
    }
}

#[test]
fn test_conf_says_ok_or_invalid_like_nutcracker() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    let bad = dir.path().join("bad.yml");
    let missing = dir.path().join("missing.yml");
    std::fs::write(&good, GOOD).unwrap();
    std::fs::write(&bad, "alpha:\n  listen: 127.0.0.1:22121\n  distribution: nope\n  servers:\n   - 127.0.0.1:6379:1\n").unwrap();
    let g = good.to_str().unwrap();
    let (code, _, err) = run(&["-t", "-c", g]);
    assert_eq!(
        (code, err),
        (
            0,
            format!("chring-proxy: configuration file '{g}' syntax is ok\n")
        )
    );
    for f in [&bad, &missing] {
        let f = f.to_str().unwrap();
        let (code, _, err) = run(&["--test-conf", "--conf-file", f]);
        assert_eq!(code, 1);
        assert!(
            err.starts_with(&format!(
                "chring-proxy: configuration file '{f}' syntax is invalid: "
            )),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    if let Some(nc) = nutcracker() {
        for (f, want) in [(&good, 0), (&bad, 1), (&missing, 1)] {
            let st = Command::new(nc)
                .arg("-t")
                .arg("-c")
                .arg(f)
                .output()
                .unwrap()
                .status;
            assert_eq!(st.code(), Some(want), "nutcracker -t {}", f.display());
        }
    } else {
        eprintln!("SKIPPED the comparison with nutcracker -t: nutcracker is not installed");
    }
}

#[test]
fn non_loopback_surfaces_need_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("n.yml");
    std::fs::write(&conf, GOOD).unwrap();
    let c = conf.to_str().unwrap();
    for (args, what) in [
        (&["--control", "0.0.0.0:7000"][..], "--control 0.0.0.0:7000"),
        (&["--admin", "0.0.0.0:7001"], "--admin 0.0.0.0:7001"),
        (&["-a", "0.0.0.0"], "stats address 0.0.0.0:22222"),
    ] {
        let (code, _, err) = run(&[&["-c", c][..], args].concat());
        assert_eq!(code, 1);
        assert_eq!(
            err,
            format!(
                "chring-proxy: {what} is not a loopback address: binding it needs a token (--token-file)\n"
            )
        );
    }
    let short = dir.path().join("short");
    std::fs::write(&short, "abc\n").unwrap();
    let (code, _, err) = run(&["-c", c, "--token-file", short.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("the token must be at least 16 printable ASCII characters"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    let (code, _, err) = run(&[
        "-c",
        c,
        "--token-file",
        dir.path().join("none").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("chring-proxy: cannot read token file "),
        "{err}"
    );
}

// ------------------------------------------------------------ the whole daemon

/// Kills the child on drop (a failed assertion never leaks a daemon).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_port(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            return s;
        }
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()), sig).unwrap();
}

fn config_with_dead_backend(dir: &Path) -> std::path::PathBuf {
    let conf = dir.join("p.yml");
    std::fs::write(
        &conf,
        format!(
            "alpha:\n  listen: 127.0.0.1:{}\n  hash: fnv1a_64\n  distribution: ketama\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1 s1\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    conf
}

#[test]
fn runs_serves_every_surface_handles_signals_and_exits_0_on_sigterm() {
    use nix::sys::signal::Signal;
    let dir = tempfile::tempdir().unwrap();
    let conf = config_with_dead_backend(dir.path());
    let (stats, control, admin) = (free_port(), free_port(), free_port());
    let pid_file = dir.path().join("p.pid");
    let log = dir.path().join("p.log");
    let child = proxy()
        .args([
            "-c",
            conf.to_str().unwrap(),
            "-s",
            &stats.to_string(),
            "-i",
            "100",
        ])
        .args(["--control", &format!("127.0.0.1:{control}")])
        .args(["--admin", &format!("127.0.0.1:{admin}")])
        .args([
            "-p",
            pid_file.to_str().unwrap(),
            "-o",
            log.to_str().unwrap(),
            "-v",
            "5",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut d = Daemon(child);
    let pid = d.0.id();
    let mut s = wait_port(([127, 0, 0, 1], stats).into());
    let mut doc = String::new();
    s.read_to_string(&mut doc).unwrap();
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert!(v["alpha"]["s1"]["requests"].is_u64(), "{doc}");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    let mut c = wait_port(([127, 0, 0, 1], control).into());
    std::io::Write::write_all(&mut c, b"ROUTE alpha k\r\nQUIT\r\n").unwrap();
    let mut replies = String::new();
    c.read_to_string(&mut replies).unwrap();
    assert_eq!(replies, "+s1\r\n+OK bye\r\n");
    let mut a = wait_port(([127, 0, 0, 1], admin).into());
    std::io::Write::write_all(
        &mut a,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut m = String::new();
    a.read_to_string(&mut m).unwrap();
    assert!(m.starts_with("HTTP/1.1 200"), "{m}");

    // SIGTTIN / SIGTTOU / SIGUSR1 are logged; SIGHUP reopens a rotated log.
    signal(pid, Signal::SIGTTIN);
    wait_for("the level-up line", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("up log level to 6")
    });
    signal(pid, Signal::SIGTTOU);
    signal(pid, Signal::SIGUSR1);
    wait_for("the SIGUSR1 line", || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("signal 10 (SIGUSR1) received")
    });
    std::fs::rename(&log, dir.path().join("p.log.1")).unwrap();
    signal(pid, Signal::SIGHUP);
    wait_for("a new log file", || log.exists());
    let first = std::fs::read_to_string(dir.path().join("p.log.1")).unwrap();
    assert!(first.contains("started on pid"), "{first}");
    assert!(first.contains("down log level to 5"), "{first}");
    // Lines look like nutcracker's: [YYYY-MM-DD HH:MM:SS.mmm] file:line text
    let l = first.lines().next().unwrap();
    assert!(
        l.starts_with('[') && l.as_bytes()[24] == b']' && l[26..].contains(".rs:"),
        "{l}"
    );

    signal(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = d.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert!(!pid_file.exists(), "pid file removed on exit");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("signal 15 (SIGTERM) received, exiting")
    );
}

#[test]
fn daemonizes_writes_the_pid_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let conf = config_with_dead_backend(dir.path());
    let stats = free_port();
    let pid_file = dir.path().join("d.pid");
    let out = proxy()
        .args(["-d", "-c", conf.to_str().unwrap(), "-s", &stats.to_string()])
        .args([
            "-p",
            pid_file.to_str().unwrap(),
            "-o",
            dir.path().join("d.log").to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "the parent exits 0 at once");
    wait_for("the pid file", || pid_file.exists());
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(self.0).unwrap_or(0)),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let _guard = Kill(pid);
    let mut s = wait_port(([127, 0, 0, 1], stats).into());
    let mut doc = String::new();
    s.read_to_string(&mut doc).unwrap();
    assert!(doc.contains("\"alpha\": {"), "{doc}");
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    wait_for("the pid file to go", || !pid_file.exists());
}
