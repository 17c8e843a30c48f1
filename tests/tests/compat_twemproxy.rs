//! chring's twemproxy mode against the real nutcracker (issue 6).
//!
//! Starts memcached backends and nutcracker on 127.0.0.1, stores at least
//! 10,000 keys through nutcracker per case, asks every backend directly which
//! keys it holds, and requires every key to sit exactly where `host-sim route
//! --config` (chring's `compat::twemproxy`) says, for the same YAML file.
//!
//! `#[ignore]`d: the `compat` step of `scripts/test-all.sh` installs the daemons
//! and runs it with `CHRING_DAEMON_TESTS=1 ... --include-ignored`. Without the
//! daemons it prints SKIPPED (or fails when `CHRING_DAEMON_TESTS=1` asks for it).
//! Every process is stopped by its own PID when the test ends, pass or fail.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use host_sim::config::twemproxy::parse;
use host_sim::route::KeyRouter;

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Keys stored per case.
const KEYS: usize = 10_000;
/// Keys per pipelined batch and per multi-get.
const BATCH: usize = 500;
const GET_KEYS: usize = 20;
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// Child processes, killed (SIGKILL through `Child::kill`, i.e. by PID) and
/// reaped on drop, pass or fail.
#[derive(Default)]
struct Daemons(Vec<(String, Child)>);

impl Daemons {
    fn spawn(&mut self, what: &str, cmd: &mut Command) -> u32 {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        let pid = child.id();
        self.0.push((what.to_string(), child));
        pid
    }

    fn stop(&mut self, pid: u32) {
        if let Some(i) = self.0.iter().position(|(_, c)| c.id() == pid) {
            let (_, mut c) = self.0.remove(i);
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Panics if a daemon has exited (its log says why).
    fn check_alive(&mut self) {
        for (what, c) in &mut self.0 {
            if let Ok(Some(status)) = c.try_wait() {
                panic!("{what} exited early: {status}");
            }
        }
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A free port of 127.0.0.1 never handed out before in this process (a
/// nutcracker's listen and stats ports must differ): compat_http's picker.
fn free_port() -> u16 {
    crate::compat_http::free_ports(1)[0]
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((LOCALHOST, port)).is_ok()
}

/// Connects to 127.0.0.1:port, retrying for up to 10 s while the daemon starts.
fn connect(port: u16, daemons: &mut Daemons) -> TcpStream {
    let addr = SocketAddr::from((LOCALHOST, port));
    let start = Instant::now();
    loop {
        if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
            return s;
        }
        daemons.check_alive();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing listens on 127.0.0.1:{port} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read_line(r: &mut impl BufRead) -> Vec<u8> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).expect("read a reply line");
    assert!(line.ends_with(b"\r\n"), "truncated reply {line:?}");
    line.truncate(line.len() - 2);
    line
}

/// Stores every key through the proxy (pipelined, `STORED` expected for each).
fn store_all(proxy: &mut TcpStream, keys: &[Vec<u8>]) {
    let mut reader = BufReader::new(proxy.try_clone().unwrap());
    for batch in keys.chunks(BATCH) {
        let mut req = Vec::new();
        for k in batch {
            req.extend_from_slice(b"set ");
            req.extend_from_slice(k);
            req.extend_from_slice(b" 0 0 1\r\nx\r\n");
        }
        proxy.write_all(&req).unwrap();
        for k in batch {
            let reply = read_line(&mut reader);
            assert_eq!(
                reply,
                b"STORED",
                "set {:?} through nutcracker: {}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(&reply)
            );
        }
    }
}

/// Which of `keys` a memcached backend holds.
fn held_keys(backend: &mut TcpStream, keys: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut reader = BufReader::new(backend.try_clone().unwrap());
    let mut held = Vec::new();
    for batch in keys.chunks(BATCH) {
        let mut req = Vec::new();
        for group in batch.chunks(GET_KEYS) {
            req.extend_from_slice(b"get");
            for k in group {
                req.push(b' ');
                req.extend_from_slice(k);
            }
            req.extend_from_slice(b"\r\n");
        }
        backend.write_all(&req).unwrap();
        let mut ends = batch.chunks(GET_KEYS).count();
        while ends > 0 {
            let line = read_line(&mut reader);
            if line == b"END" {
                ends -= 1;
            } else if let Some(rest) = line.strip_prefix(b"VALUE ") {
                // VALUE <key> <flags> <bytes>
                let mut parts = rest.rsplitn(3, |&b| b == b' ');
                let len: usize = std::str::from_utf8(parts.next().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                let _flags = parts.next();
                held.push(parts.next().unwrap().to_vec());
                let mut data = vec![0; len + 2];
                reader.read_exact(&mut data).unwrap();
            } else {
                panic!("unexpected reply {}", String::from_utf8_lossy(&line));
            }
        }
    }
    held
}

fn flush(backend: &mut TcpStream) {
    backend.write_all(b"flush_all\r\n").unwrap();
    let mut reader = BufReader::new(backend.try_clone().unwrap());
    assert_eq!(read_line(&mut reader), b"OK");
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

/// `KEYS` distinct memcached keys: a third ASCII, a third UTF-8 text, a third
/// raw bytes with many ≥ 0x80 (no space or control bytes, which memcached's
/// text protocol forbids), lengths 1..=60.
fn make_keys(seed: u64, tagged: bool) -> Vec<Vec<u8>> {
    let mut rng = SplitMix(seed);
    let words = [
        "clé",
        "κλειδί",
        "ключ",
        "鍵",
        "schlüssel",
        "😀",
        "naïve",
        "Ωmega",
    ];
    let mut seen = std::collections::HashSet::new();
    let mut keys = Vec::with_capacity(KEYS);
    let mut i = 0u64;
    while keys.len() < KEYS {
        let r = rng.next();
        let mut k: Vec<u8> = match i % 3 {
            0 => format!("user:{}:{}", r % 100_000, i).into_bytes(),
            1 => format!(
                "{}-{}-{}",
                words[(r % 8) as usize],
                i,
                words[((r >> 8) % 8) as usize]
            )
            .into_bytes(),
            _ => {
                let len = 1 + (r % 60) as usize;
                (0..len)
                    .map(|_| {
                        let b = (rng.next() % 222) as u8 + 0x21; // 0x21..=0xfe
                        if b == 0x7f { b'~' } else { b }
                    })
                    .collect()
            }
        };
        if tagged && i % 2 == 0 {
            let tag = format!("{{t{}}}", r % 50);
            k.extend_from_slice(tag.as_bytes());
        }
        i += 1;
        if k.len() <= 250 && seen.insert(k.clone()) {
            keys.push(k);
        }
    }
    keys
}

struct Case {
    name: &'static str,
    hash: &'static str,
    weights: &'static [u32],
    /// Give servers names (`host:port:weight name`).
    named: bool,
    hash_tag: bool,
}

const fn case(name: &'static str, hash: &'static str, weights: &'static [u32]) -> Case {
    Case {
        name,
        hash,
        weights,
        named: false,
        hash_tag: false,
    }
}

const EQUAL: &[u32] = &[1, 1, 1, 1, 1];
const UNEQUAL: &[u32] = &[1, 1, 2, 1, 3];
const SIX: &[u32] = &[1, 1, 1, 1, 1, 1];
const SIX_UNEQUAL: &[u32] = &[1, 1, 2, 1, 3, 2];

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for h in chring::compat::twemproxy::KeyHash::ALL {
        v.push(case("equal weights", h.name(), EQUAL));
    }
    v.push(case("unequal weights 1,1,2,1,3", "md5", UNEQUAL));
    v.push(case("unequal weights 1,1,2,1,3", "fnv1a_64", UNEQUAL));
    v.push(case("unequal weights 1,1,2,1,3", "murmur", UNEQUAL));
    v.push(case("6th server added", "md5", SIX));
    v.push(case("6th server added", "one_at_a_time", SIX));
    v.push(case("6th server added to 1,1,2,1,3", "hsieh", SIX_UNEQUAL));
    v.push(Case {
        named: true,
        ..case("named servers, unequal", "jenkins", UNEQUAL)
    });
    v.push(Case {
        hash_tag: true,
        ..case("hash_tag \"{}\"", "crc32a", EQUAL)
    });
    v
}

fn nutcracker_yaml(case: &Case, ports: &[u16], proxy: u16) -> String {
    let mut y = format!(
        "chring_test:\n  listen: 127.0.0.1:{proxy}\n  hash: {}\n  distribution: ketama\n  \
         auto_eject_hosts: false\n  timeout: 10000\n",
        case.hash
    );
    if case.hash_tag {
        y.push_str("  hash_tag: \"{}\"\n");
    }
    y.push_str("  servers:\n");
    for (i, (&w, port)) in case.weights.iter().zip(ports).enumerate() {
        y.push_str(&format!("   - 127.0.0.1:{port}:{w}"));
        if case.named {
            y.push_str(&format!(" cache-{i}"));
        }
        y.push('\n');
    }
    y
}

/// Runs one case; returns (keys, keys where nutcracker and chring agree).
fn run_case(
    case: &Case,
    nutcracker: &Path,
    dir: &Path,
    ports: &[u16],
    backends: &mut [TcpStream],
    daemons: &mut Daemons,
    seed: u64,
) -> (usize, usize) {
    let n = case.weights.len();
    let proxy = free_port();
    let stats = free_port();
    let yaml = nutcracker_yaml(case, ports, proxy);
    let conf = dir.join(format!("nutcracker-{seed}.yml"));
    std::fs::write(&conf, &yaml).unwrap();

    let check = Command::new(nutcracker)
        .arg("-t")
        .arg("-c")
        .arg(&conf)
        .output()
        .expect("nutcracker -t");
    assert!(
        check.status.success(),
        "nutcracker rejects the configuration:\n{yaml}\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let pid = daemons.spawn(
        "nutcracker",
        Command::new(nutcracker)
            .arg("-c")
            .arg(&conf)
            .args(["-a", "127.0.0.1", "-s", &stats.to_string()])
            .arg("-p")
            .arg(dir.join(format!("nutcracker-{seed}.pid")))
            .arg("-o")
            .arg(dir.join(format!("nutcracker-{seed}.log"))),
    );

    for b in backends.iter_mut().take(n) {
        flush(b);
    }
    let keys = make_keys(seed, case.hash_tag);
    let mut proxy_conn = connect(proxy, daemons);
    store_all(&mut proxy_conn, &keys);
    drop(proxy_conn);
    daemons.stop(pid);

    // Where every key actually is.
    let mut actual: HashMap<&[u8], Vec<usize>> = HashMap::new();
    let index: HashMap<Vec<u8>, usize> = keys.iter().cloned().zip(0..).collect();
    for (b, conn) in backends.iter_mut().enumerate().take(n) {
        for k in held_keys(conn, &keys) {
            let i = index[&k];
            actual.entry(&keys[i]).or_default().push(b);
        }
    }

    // Where host-sim route --config (chring) says it goes.
    let mut router = parse(&yaml, None).expect("host-sim parses the same YAML");
    let labels: Vec<String> = (0..n)
        .map(|i| {
            if case.named {
                format!("cache-{i}")
            } else {
                format!("127.0.0.1:{}", ports[i])
            }
        })
        .collect();
    let mut agree = 0;
    let mut shown = 0;
    for k in &keys {
        let want = router.route(k).expect("a server");
        let want = labels
            .iter()
            .position(|l| l == want)
            .expect("a known label");
        let got = actual.get(k.as_slice()).cloned().unwrap_or_default();
        if got == [want] {
            agree += 1;
        } else if shown < 5 {
            shown += 1;
            eprintln!(
                "  {} / {}: key {:?} is on backends {got:?}, chring says {want}",
                case.name,
                case.hash,
                String::from_utf8_lossy(k)
            );
        }
    }
    (keys.len(), agree)
}

#[test]
#[ignore = "starts nutcracker and memcached; run by `scripts/test-all.sh compat`"]
fn twemproxy_ketama_matches_nutcracker() {
    let required = std::env::var("CHRING_DAEMON_TESTS").is_ok_and(|v| v == "1");
    let (Some(nutcracker), Some(memcached)) = (find_binary("nutcracker"), find_binary("memcached"))
    else {
        let msg = "nutcracker or memcached is not installed (Debian: apt-get install nutcracker \
                   memcached)";
        assert!(!required, "{msg}, but CHRING_DAEMON_TESTS=1 requires them");
        println!("SKIPPED twemproxy_ketama_matches_nutcracker: {msg}");
        return;
    };
    let version = Command::new(&nutcracker)
        .arg("-V")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr)
        })
        .unwrap_or_default();
    let version = version.lines().next().unwrap_or("nutcracker").to_string();

    let dir = std::env::temp_dir().join(format!("chring-twemproxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut daemons = Daemons::default();

    // Six memcached backends; the first on 11211 when it is free, so that the
    // "port 11211 is left out of the identity" rule is exercised.
    let mut ports = Vec::new();
    if port_is_free(11211) {
        ports.push(11211);
    } else {
        println!("note: 127.0.0.1:11211 is taken; the port-11211 identity rule is not exercised");
    }
    while ports.len() < 6 {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    let root = running_as_root();
    for &p in &ports {
        let mut cmd = Command::new(&memcached);
        cmd.args([
            "-l",
            "127.0.0.1",
            "-p",
            &p.to_string(),
            "-U",
            "0",
            "-m",
            "64",
            "-t",
            "1",
        ])
        .arg("-P")
        .arg(dir.join(format!("memcached-{p}.pid")));
        if root {
            // memcached refuses to run as root without -u.
            cmd.args(["-u", "root"]);
        }
        daemons.spawn("memcached", &mut cmd);
    }
    let mut backends: Vec<TcpStream> = ports.iter().map(|&p| connect(p, &mut daemons)).collect();

    let started = Instant::now();
    let mut report = Vec::new();
    let mut failed = false;
    for (i, case) in cases().iter().enumerate() {
        let n = case.weights.len();
        let (total, agree) = run_case(
            case,
            &nutcracker,
            &dir,
            &ports[..n],
            &mut backends[..n],
            &mut daemons,
            1000 + i as u64,
        );
        failed |= agree != total;
        report.push(format!(
            "{:<34} hash {:<14} {agree:>6}/{total} agree",
            case.name, case.hash
        ));
    }
    println!(
        "{version}: {} cases in {:.1} s",
        report.len(),
        started.elapsed().as_secs_f64()
    );
    for r in &report {
        println!("  {r}");
    }
    drop(backends);
    drop(daemons);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!failed, "chring and nutcracker disagree (above)");
}

/// Whether this process runs as root (memcached then needs `-u root`).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}
