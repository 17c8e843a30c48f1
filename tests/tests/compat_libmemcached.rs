//! chring's libmemcached mode against the real libmemcached (issue 13).
//!
//! Debian's python3-pylibmc drives Debian's libmemcached11 (1.1.x) exactly as
//! an application shards with it: per case, one python3 process makes a
//! `pylibmc.Client(servers, behaviors=...)`, stores 10,000 keys through it into
//! memcached servers of this test (127.0.0.1, the first on 11211 when that
//! port is free, so libmemcached's "port 11211 is left out of the point text"
//! rule is exercised), then asks each server alone which keys it holds. Every
//! key must sit on exactly one server, the one `host-sim route --config`
//! (chring's `compat::libmemcached`) names for the equivalent libmemcached
//! configuration string. A third of the keys are raw bytes with many >= 0x80,
//! which one-at-a-time reads as signed `char`s.
//!
//! `#[ignore]`d: `scripts/test-all.sh compat_libmemcached` installs memcached
//! and python3-pylibmc and runs it with `CHRING_DAEMON_TESTS=1 ...
//! --include-ignored`. Without them it prints SKIPPED (or fails when
//! `CHRING_DAEMON_TESTS=1` requires them). Every memcached is stopped by its
//! PID when the test ends, pass or fail.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::compat_http::{Daemon, KEYS, TempDir, daemons_required, find_binary, free_ports};

struct Case {
    name: &'static str,
    /// pylibmc's `behaviors=` as a Python dict literal.
    behaviors: &'static str,
    /// The same settings as libmemcached configuration-string options, before
    /// the `--SERVER=` ones.
    options: &'static str,
    weights: &'static [u32],
}

const W: &[u32] = &[1, 1, 2, 1, 3];

const CASES: &[Case] = &[
    Case {
        name: "ketama_equal",
        behaviors: r#"{"ketama": True}"#,
        options: "--DISTRIBUTION=consistent",
        weights: &[1, 1, 1, 1, 1],
    },
    Case {
        name: "ketama_sixth_added",
        behaviors: r#"{"ketama": True}"#,
        options: "--BEHAVIOR-KETAMA",
        weights: &[1, 1, 1, 1, 1, 1],
    },
    Case {
        name: "ketama_md5_keys",
        behaviors: r#"{"ketama": True, "hash": "md5"}"#,
        options: "--HASH=MD5 --DISTRIBUTION=consistent",
        weights: &[1, 1, 1, 1, 1],
    },
    // A weight above 1 under KETAMA: libmemcached switches to the weighted
    // continuum by itself, keys still one-at-a-time.
    Case {
        name: "ketama_with_weights",
        behaviors: r#"{"ketama": True}"#,
        options: "--DISTRIBUTION=consistent",
        weights: W,
    },
    Case {
        name: "weighted_equal",
        behaviors: r#"{"ketama_weighted": True}"#,
        options: "--BEHAVIOR-KETAMA-WEIGHTED",
        weights: &[1, 1, 1, 1, 1],
    },
    Case {
        name: "weighted_weights",
        behaviors: r#"{"ketama_weighted": True}"#,
        options: "--BEHAVIOR-KETAMA-WEIGHTED",
        weights: W,
    },
    Case {
        name: "weighted_sixth_added",
        behaviors: r#"{"ketama_weighted": True}"#,
        options: "--BEHAVIOR-KETAMA-WEIGHTED",
        weights: &[1, 1, 2, 1, 3, 2],
    },
];

/// The client side, run by Debian's python3 with pylibmc. argv: servers
/// (`host:port:weight,...`), behaviors (a dict literal), keys file (one hex
/// key per line). Prints `hex<TAB>server index` per key, and the client's
/// behaviours on stderr.
const CLIENT: &str = r#"
import ast, sys, pylibmc
servers = sys.argv[1].split(",")
behaviors = ast.literal_eval(sys.argv[2])
keys = [bytes.fromhex(l) for l in open(sys.argv[3]).read().split()]
alone = [pylibmc.Client([s.rsplit(":", 1)[0]]) for s in servers]
for a in alone:
    a.flush_all()
c = pylibmc.Client(servers, behaviors=behaviors)
b = c.get_behaviors()
print("behaviors:", {k: b[k] for k in ("distribution", "hash", "ketama", "ketama_weighted")}, file=sys.stderr)
for i in range(0, len(keys), 1000):
    failed = c.set_multi({k: b"1" for k in keys[i:i + 1000]})
    if failed:
        sys.exit("set_multi failed for %d keys" % len(failed))
owner = {}
for n, a in enumerate(alone):
    for i in range(0, len(keys), 1000):
        for k in a.get_multi(keys[i:i + 1000]):
            if k in owner:
                sys.exit("key %s on two servers" % k.hex())
            owner[k] = n
for k in keys:
    print("%s\t%d" % (k.hex(), owner.get(k, -1)))
"#;

/// A Python 3 that imports pylibmc: Debian's first (python3-pylibmc installs
/// there), then the one on PATH.
fn python_with_pylibmc() -> Option<PathBuf> {
    let mut candidates = vec![PathBuf::from("/usr/bin/python3")];
    candidates.extend(find_binary("python3"));
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import pylibmc"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
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

/// `KEYS` distinct memcached keys: ids, UTF-8 words, and raw bytes
/// 0x21..=0xfe (no blank or control byte, which memcached's text protocol
/// forbids), 1 to 60 bytes.
fn make_keys(seed: u64) -> Vec<Vec<u8>> {
    let mut rng = SplitMix(seed);
    let words = ["clé", "ключ", "鍵", "schlüssel", "naïve", "Ωmega"];
    let mut seen = std::collections::HashSet::new();
    let mut keys = Vec::with_capacity(KEYS);
    let mut i = 0u64;
    while keys.len() < KEYS {
        let r = rng.next();
        let k: Vec<u8> = match i % 3 {
            0 => format!("user:{}:{i}", r % 100_000).into_bytes(),
            1 => format!("{}-{i}", words[(r % 6) as usize]).into_bytes(),
            _ => (0..1 + r % 60)
                .map(|_| {
                    let b = (rng.next() % 222) as u8 + 0x21;
                    if b == 0x7f { b'~' } else { b }
                })
                .collect(),
        };
        i += 1;
        if seen.insert(k.clone()) {
            keys.push(k);
        }
    }
    keys
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Whether this process runs as root (memcached then needs `-u root`).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// Runs one case through pylibmc; returns (keys, keys that agree, first
/// disagreements).
fn run_case(
    case: &Case,
    python: &Path,
    dir: &Path,
    ports: &[u16],
    seed: u64,
) -> (usize, usize, Vec<String>) {
    let keys = make_keys(seed);
    let keys_path = dir.join(format!("{}.keys", case.name));
    let mut text = String::new();
    for k in &keys {
        text.push_str(&hex(k));
        text.push('\n');
    }
    std::fs::write(&keys_path, text).expect("write keys");
    let servers: Vec<String> = ports
        .iter()
        .zip(case.weights)
        .map(|(p, w)| format!("127.0.0.1:{p}:{w}"))
        .collect();
    let script = dir.join("client.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(servers.join(","))
        .arg(case.behaviors)
        .arg(&keys_path)
        .output()
        .expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}: pylibmc client failed:\n{stderr}",
        case.name
    );
    println!("  {:<22} pylibmc {}", case.name, stderr.trim());

    // One space between options, each server on a line of its own starting
    // with that space (libmemcached ignores the newlines).
    let mut config = format!(
        "# {}: pylibmc behaviors={}\n {}",
        case.name, case.behaviors, case.options
    );
    for (p, w) in ports.iter().zip(case.weights) {
        let _ = write!(config, "\n --SERVER=127.0.0.1:{p}/?{w}");
    }
    let mut router = host_sim::config::libmemcached::router(&config, None)
        .unwrap_or_else(|e| panic!("{}: {e:#}\n{config}", case.name));
    let owner: HashMap<String, i64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, i)| (k.to_string(), i.parse().unwrap_or(-1)))
        .collect();
    let (mut agree, mut diffs) = (0, Vec::new());
    for k in &keys {
        let got = owner.get(&hex(k)).copied().unwrap_or(-1);
        let got = usize::try_from(got)
            .ok()
            .map(|i| format!("127.0.0.1:{}", ports[i]));
        let want = router.route(k).map(str::to_owned);
        if got.is_some() && got == want {
            agree += 1;
        } else if diffs.len() < 5 {
            diffs.push(format!(
                "key {}: libmemcached {got:?}, chring {want:?}",
                hex(k)
            ));
        }
    }
    (keys.len(), agree, diffs)
}

#[test]
#[ignore = "starts memcached and pylibmc; run by `scripts/test-all.sh compat_libmemcached`"]
fn libmemcached_ketama_matches_the_library() {
    let (Some(memcached), Some(python)) = (find_binary("memcached"), python_with_pylibmc()) else {
        let msg = "memcached or python3-pylibmc is not installed (Debian: apt-get install \
                   memcached python3-pylibmc)";
        assert!(
            !daemons_required(),
            "{msg}, but CHRING_DAEMON_TESTS=1 requires them"
        );
        println!("SKIPPED libmemcached_ketama_matches_the_library: {msg}");
        return;
    };
    let version = Command::new(&python)
        .args([
            "-c",
            "import pylibmc; print('pylibmc', pylibmc.__version__)",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let libversion = Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "libmemcached11"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let tmp = TempDir::new("libmemcached", &[]);
    let dir = tmp.0.clone();
    std::fs::write(dir.join("client.py"), CLIENT).expect("write client.py");

    let mut ports = Vec::new();
    if port_is_free(11211) {
        ports.push(11211);
    } else {
        println!("note: 127.0.0.1:11211 is taken; the port-11211 rule is not exercised live");
    }
    for p in free_ports(6) {
        if ports.len() < 6 {
            ports.push(p);
        }
    }
    let root = running_as_root();
    let mut daemons = Vec::new();
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
        ]);
        if root {
            // memcached refuses to run as root without -u.
            cmd.args(["-u", "root"]);
        }
        let mut d = Daemon::spawn(
            "memcached",
            &mut cmd,
            dir.join(format!("memcached-{p}.log")),
        );
        d.wait_listening(p);
        daemons.push(d);
    }
    let started = Instant::now();
    println!("{version}, libmemcached11 {libversion}:");
    let mut report = Vec::new();
    let mut failed = false;
    for (i, case) in CASES.iter().enumerate() {
        let n = case.weights.len();
        let (total, agree, diffs) = run_case(
            case,
            &python,
            &dir,
            &ports[..n],
            0x6c69_626d_0000 + i as u64,
        );
        failed |= agree != total || total != KEYS;
        report.push((case, total, agree, diffs));
    }
    let elapsed = started.elapsed().as_secs_f64();
    drop(daemons);
    drop(tmp);
    println!("{} cases x {KEYS} keys in {elapsed:.1} s", CASES.len());
    for (case, total, agree, diffs) in report {
        println!(
            "  {:<22} {:<40} weights {:?}: {agree}/{total} agree",
            case.name, case.behaviors, case.weights
        );
        for d in diffs {
            println!("    {d}");
        }
    }
    assert!(!failed, "chring and libmemcached disagree (above)");
}

/// The parser side, run by python3 through ctypes on Debian's
/// libmemcached.so.11: argv: a configuration string, a keys file (one hex key
/// per line). `memcached(string)` builds the client exactly as an application
/// passing that string would, and `memcached_generate_hash` names the server
/// index of each key (no server is contacted). Prints one index per line.
const PARSER: &str = r#"
import ctypes, sys
lib = ctypes.CDLL("libmemcached.so.11")
lib.memcached.restype = ctypes.c_void_p
lib.memcached.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
lib.memcached_generate_hash.restype = ctypes.c_uint32
lib.memcached_generate_hash.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
lib.memcached_free.argtypes = [ctypes.c_void_p]
conf = sys.argv[1].encode()
m = lib.memcached(conf, len(conf))
if not m:
    sys.exit("libmemcached refused the configuration string")
for l in open(sys.argv[2]).read().split():
    k = bytes.fromhex(l)
    print(lib.memcached_generate_hash(m, k, len(k)))
lib.memcached_free(m)
"#;

/// Configuration strings in libmemcached's own syntax, with the ordering
/// rules `route` models: a weight above 1 under a consistent distribution
/// makes the continuum weighted, the same servers before `--DISTRIBUTION`
/// keep it unweighted, a `--HASH` after the servers changes the key hash but
/// not the points; host names, the default port 11211 left out, and
/// `consistent,MD5` (a distribution hash the continuum does not use).
const STRINGS: &[(&str, &str)] = &[
    (
        "default_port_and_names",
        "--SERVER=10.0.0.1 --SERVER=10.0.0.2:11212 --SERVER=cache-c.example:22122 \
         --SERVER=10.0.0.4:11211 --DISTRIBUTION=consistent",
    ),
    (
        "weights_after_distribution",
        "--DISTRIBUTION=consistent --SERVER=10.0.0.1/?3 --SERVER=10.0.0.2:11300 \
         --SERVER=10.0.0.3:11211/?2 --SERVER=cache-d.example:1",
    ),
    (
        "weights_before_distribution",
        "--SERVER=10.0.0.1/?3 --SERVER=10.0.0.2:11300 --SERVER=10.0.0.3:11211/?2 \
         --DISTRIBUTION=consistent",
    ),
    (
        "hash_after_servers",
        "--DISTRIBUTION=consistent --SERVER=a-1.example --SERVER=b-2.example:11300 \
         --SERVER=c-3.example:11400 --HASH=MD5",
    ),
    (
        "hash_first_and_neutral_options",
        "# comment lines and newlines are ignored\n --HASH=MD5 --TCP-NODELAY --BINARY-PROTOCOL \n\
         --CONNECT-TIMEOUT=500 --DISTRIBUTION=consistent,MD5\n --SERVER=10.1.0.1:1 \
         --SERVER=10.1.0.2:2 --SERVER=10.1.0.3:3",
    ),
];

#[test]
#[ignore = "loads libmemcached.so.11; run by `scripts/test-all.sh compat_libmemcached`"]
fn libmemcached_config_strings_match_the_parser() {
    let Some(python) = python_with_pylibmc() else {
        let msg = "python3-pylibmc (and with it libmemcached11) is not installed (Debian: \
                   apt-get install python3-pylibmc)";
        assert!(
            !daemons_required(),
            "{msg}, but CHRING_DAEMON_TESTS=1 requires it"
        );
        println!("SKIPPED libmemcached_config_strings_match_the_parser: {msg}");
        return;
    };
    let tmp = TempDir::new("libmemcached-parser", &[]);
    let dir = tmp.0.clone();
    let script = dir.join("parser.py");
    std::fs::write(&script, PARSER).expect("write parser.py");
    let mut failed = false;
    for (i, (name, text)) in STRINGS.iter().enumerate() {
        let keys = make_keys(0x7061_7273_0000 + i as u64);
        let keys_path = dir.join(format!("{name}.keys"));
        let hexes: Vec<String> = keys.iter().map(|k| hex(k)).collect();
        std::fs::write(&keys_path, hexes.join("\n")).expect("write keys");
        let out = Command::new(&python)
            .arg(&script)
            .arg(text)
            .arg(&keys_path)
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Vec<usize> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().parse().expect("an index"))
            .collect();
        assert_eq!(got.len(), keys.len(), "{name}: one index per key");
        let mut router = host_sim::config::libmemcached::router(text, None)
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        let names = router.backends().to_vec();
        let mut agree = 0;
        let mut diffs = Vec::new();
        for (k, &g) in keys.iter().zip(&got) {
            let want = router.route(k).map(str::to_owned);
            if want.as_deref() == names.get(g).map(String::as_str) {
                agree += 1;
            } else if diffs.len() < 5 {
                diffs.push(format!(
                    "key {}: libmemcached #{g}, chring {want:?}",
                    hex(k)
                ));
            }
        }
        println!("  {name:<32} {agree}/{} agree", keys.len());
        for d in &diffs {
            println!("    {d}");
        }
        failed |= agree != keys.len() || keys.len() != KEYS;
    }
    // Strings libmemcached's parser refuses (separators, comments): chring
    // refuses them too, with the options this reader otherwise accepts.
    let check = dir.join("check.py");
    std::fs::write(
        &check,
        "import ctypes, sys\n\
         lib = ctypes.CDLL('libmemcached.so.11')\n\
         lib.libmemcached_check_configuration.argtypes = [ctypes.c_char_p, ctypes.c_size_t, \
         ctypes.c_char_p, ctypes.c_size_t]\n\
         buf = ctypes.create_string_buffer(1024)\n\
         for conf in sys.argv[1:]:\n\
         \x20   c = conf.encode()\n\
         \x20   print(lib.libmemcached_check_configuration(c, len(c), buf, 1024))\n",
    )
    .expect("write check.py");
    let refused = [
        "--SERVER=aaa.example\n--SERVER=bbb.example --DISTRIBUTION=consistent",
        "--SERVER=aaa.example\t--SERVER=bbb.example --DISTRIBUTION=consistent",
        "--SERVER=aaa.example  --SERVER=bbb.example --DISTRIBUTION=consistent",
        " --SERVER=aaa.example --DISTRIBUTION=consistent",
        "--SERVER=aaa.example --DISTRIBUTION=consistent ",
        "# comment\n--SERVER=aaa.example --DISTRIBUTION=consistent",
        "--SERVER=aaa.example # comment --DISTRIBUTION=consistent",
    ];
    let out = Command::new(&python)
        .arg(&check)
        .args(refused)
        .output()
        .expect("run python3");
    let codes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        codes.len(),
        refused.len(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (text, code) in refused.iter().zip(&codes) {
        let ours = host_sim::config::libmemcached::router(text, None).err();
        println!(
            "  refused: {text:?}: libmemcached rc {code}, chring: {}",
            ours.as_ref()
                .map_or("accepted".into(), |e| format!("{e:#}"))
        );
        failed |= code == "0" || ours.is_none();
    }
    drop(tmp);
    assert!(!failed, "chring and libmemcached's parser disagree (above)");
}
