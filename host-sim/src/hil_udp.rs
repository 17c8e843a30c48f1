//! `host-sim hil --qemu --udp`: the `udplb` firmware shards live memcached UDP
//! traffic, and every reply is checked against a model of the same fleet.
//!
//! ```text
//! host-sim hil --qemu --udp --scenario b [--servers N] [--placement ketama|ring]
//!
//!  host-sim ──UDP──▶ 127.0.0.1:P ─hostfwd─▶ QEMU mps2-an386, udplb 10.0.2.15:11211
//!     │                                        │ (slirp: 10.0.2.2 = the host's 127.0.0.1)
//!     │                                        ▼
//!     ├──UART0 (unix socket): ADD_SERVER, DOWN, STATS   memcached -U PORTi on 127.0.0.1
//!     └──UDP, directly: seed markers, check placement ──▶ (one per server)
//! ```
//!
//! The run:
//!
//! 1. starts `N` memcached processes (`memcached -U PORT -p 0 -l 127.0.0.1`,
//!    one more when scenario B adds a server) and QEMU with user networking
//!    (the host port forwarded with `hostfwd` bound to 127.0.0.1; no tap
//!    device); every child is killed (by PID) when the run ends;
//! 2. gives the device its fleet over the UART (`ADD_SERVER 10.0.2.2:PORT`),
//!    and checks `ROUTE` for 200 keys against the host's model;
//! 3. writes a marker `m:c<id>:<server>` for every customer straight into
//!    every memcached (not through the device), so that whatever server
//!    answers a get names itself;
//! 4. stores each customer's value `v:c<id>:<server>` through the device
//!    (`set` over UDP), naming the server the model picks, then reads every
//!    memcached directly: the value must be on exactly the model's server;
//! 5. replays the scenario's requests as `get c<id>` through the device
//!    (every 20th as a 3-key get, which the device splits and merges), with
//!    scenario B's fleet change sent over the UART at its time (after the
//!    datagrams in flight are answered); each reply's values must name the
//!    server the model picks for their key;
//! 6. marks one server `DOWN`, replays 1,000 more gets (its keys must come from
//!    the health fallback the model computes), marks it `UP`;
//! 7. prints requests, mismatches, lost and late datagrams, retries,
//!    datagrams per second and the device's `STATS`, and fails on any
//!    mismatch or any request still unanswered after its retries.
//!
//! The model is independent of the firmware's code: chring's
//! `compat::twemproxy::Ketama` (md5) or `Ring` (64 points per weight) over the
//! same server names, with the down-server walk written here.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chring::compat::twemproxy::{DEFAULT_PORT, Ketama, KeyHash};
use chring::{BackendId, Ring, RingConfig};
use clap::ValueEnum;

use crate::hil::{HilArgs, HilScenario, Qemu, Replay, read_reply};
use crate::scenario::ScenarioConfig;
use crate::sim::ChangeKind;

/// How the device places keys (its `STRATEGY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Placement {
    /// twemproxy's ketama with `hash: md5`.
    Ketama,
    /// chring's ring.
    Ring,
}

impl Placement {
    fn name(self) -> &'static str {
        match self {
            Placement::Ketama => "ketama",
            Placement::Ring => "ring",
        }
    }
}

/// The device's fleet capacity.
const MAX_SERVERS: usize = 8;
/// Ring points per unit of weight, as on the device.
const RING_VNODES: u32 = 64;
/// Every `MULTI_EVERY`-th request is a get of 3 keys.
const MULTI_EVERY: usize = 20;
/// Gets replayed with one server down.
const HEALTH_GETS: usize = 1_000;
/// Requests in flight at most.
const WINDOW: usize = 16;
/// A request without its reply after this is sent again, under a new id.
const RETRY_AFTER: Duration = Duration::from_millis(400);
/// Sends of one request, at most.
const TRIES: u32 = 5;

/// The host's model of the device's fleet: the same names in the same slots,
/// and the same placement, written independently of the firmware.
#[derive(Debug)]
pub struct Model {
    slots: [Option<(String, bool)>; MAX_SERVERS],
    ketama: Box<Ketama<MAX_SERVERS, 1280, 32>>,
    ketama_slots: Vec<usize>,
    ring: Box<Ring<MAX_SERVERS, 512, 0>>,
    placement: Placement,
}

impl Model {
    /// An empty fleet.
    ///
    /// # Panics
    /// Never: the ring configuration is constant and valid.
    #[must_use]
    pub fn new(placement: Placement) -> Self {
        Self {
            slots: Default::default(),
            ketama: Box::new(Ketama::new(KeyHash::Md5)),
            ketama_slots: Vec::new(),
            ring: Box::new(Ring::new(RingConfig::new(RING_VNODES)).expect("valid ring")),
            placement,
        }
    }

    /// Adds a server (`a.b.c.d:port`) in the lowest free slot.
    ///
    /// # Errors
    /// A full fleet or a placement error.
    pub fn add(&mut self, name: &str) -> anyhow::Result<()> {
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .context("the device's fleet is full")?;
        self.ring
            .add(BackendId(slot as u16), name.as_bytes(), 1)
            .map_err(|e| anyhow::anyhow!("ring: {e}"))?;
        let identity = name
            .strip_suffix(&format!(":{DEFAULT_PORT}"))
            .unwrap_or(name);
        self.ketama
            .add(identity.as_bytes(), 1)
            .map_err(|e| anyhow::anyhow!("ketama: {e}"))?;
        self.ketama_slots.push(slot);
        self.slots[slot] = Some((name.to_owned(), true));
        Ok(())
    }

    fn slot_of(&self, name: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|(n, _)| n == name))
    }

    /// Removes a server.
    ///
    /// # Errors
    /// An unknown server.
    pub fn remove(&mut self, name: &str) -> anyhow::Result<()> {
        let slot = self.slot_of(name).context("unknown server")?;
        self.slots[slot] = None;
        let _ = self.ring.remove(BackendId(slot as u16));
        if let Some(i) = self.ketama_slots.iter().position(|&s| s == slot) {
            let _ = self.ketama.remove(i);
            self.ketama_slots.remove(i);
        }
        Ok(())
    }

    /// Marks a server up or down.
    ///
    /// # Errors
    /// An unknown server.
    pub fn set_up(&mut self, name: &str, up: bool) -> anyhow::Result<()> {
        let slot = self.slot_of(name).context("unknown server")?;
        if let Some((_, u)) = &mut self.slots[slot] {
            *u = up;
        }
        let _ = self.ring.set_up(BackendId(slot as u16), up);
        Ok(())
    }

    fn up(&self, slot: usize) -> bool {
        matches!(&self.slots[slot], Some((_, true)))
    }

    /// The server `key` goes to: the pick, or the first server up clockwise
    /// from it. `None` with no server up.
    #[must_use]
    pub fn pick(&self, key: &str) -> Option<&str> {
        let slot = match self.placement {
            Placement::Ring => self
                .ring
                .pick(chring::hash(key.as_bytes()))
                .map(|id| usize::from(id.0)),
            Placement::Ketama => {
                let points = self.ketama.points();
                if self.ketama_slots.len() == 1 {
                    Some(self.ketama_slots[0]).filter(|&s| self.up(s))
                } else if points.is_empty() {
                    None
                } else {
                    let h = KeyHash::Md5.hash(key.as_bytes());
                    let start = points.partition_point(|p| p.value < h);
                    (0..points.len())
                        .map(|j| {
                            self.ketama_slots
                                [usize::from(points[(start + j) % points.len()].server)]
                        })
                        .find(|&s| self.up(s))
                }
            }
        }?;
        self.slots[slot].as_ref().map(|(n, _)| n.as_str())
    }
}

/// A memcached with UDP on, killed (by PID) when dropped.
struct Memcached {
    child: Child,
    port: u16,
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UDP port that was free a moment ago on 127.0.0.1.
fn free_udp_port() -> anyhow::Result<u16> {
    let s = UdpSocket::bind("127.0.0.1:0").context("binding a UDP socket on 127.0.0.1")?;
    Ok(s.local_addr()?.port())
}

impl Memcached {
    fn start() -> anyhow::Result<Self> {
        let port = free_udp_port()?;
        let child = Command::new("memcached")
            // `-u` is only used when running as root (which memcached refuses
            // without it); `-p 0` turns TCP off.
            .args(["-u", "root", "-l", "127.0.0.1", "-p", "0", "-t", "1"])
            .arg("-U")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting memcached (install it with: apt-get install memcached)")?;
        let mut m = Memcached { child, port };
        // Ready when it answers `version` over UDP.
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let t = Instant::now();
        let mut buf = [0u8; 256];
        loop {
            sock.send_to(&frame(1, b"version\r\n"), ("127.0.0.1", port))?;
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && buf[8..n].starts_with(b"VERSION")
            {
                return Ok(m);
            }
            if let Some(status) = m.child.try_wait()? {
                bail!("memcached on UDP port {port} exited ({status})");
            }
            ensure!(
                t.elapsed() < Duration::from_secs(10),
                "memcached on UDP port {port} did not answer within 10 s"
            );
        }
    }
}

/// A datagram: the 8-byte frame header (one datagram) and the payload.
fn frame(id: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&id.to_be_bytes());
    d.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
    d.extend_from_slice(payload);
    d
}

/// Whether a reply is complete: a get's at `END` (or an error), anything
/// else at its first message.
fn complete(get: bool, reply: &[u8]) -> bool {
    !get || reply.ends_with(b"END\r\n")
        || [&b"ERROR"[..], b"CLIENT_ERROR", b"SERVER_ERROR"]
            .iter()
            .any(|e| reply.starts_with(e))
}

/// What a pipelined exchange saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct Traffic {
    /// Requests answered.
    pub answered: u64,
    /// Datagrams sent (retries included) and received.
    pub sent: u64,
    /// Datagrams received.
    pub received: u64,
    /// Requests sent again after [`RETRY_AFTER`] without their reply.
    pub retries: u64,
    /// Requests never answered after [`TRIES`] sends.
    pub lost: u64,
    /// Datagrams for a request already answered or sent again under a new id.
    pub late: u64,
    /// Time spent.
    pub seconds: f64,
}

impl Traffic {
    fn add(&mut self, o: &Traffic) {
        self.answered += o.answered;
        self.sent += o.sent;
        self.received += o.received;
        self.retries += o.retries;
        self.lost += o.lost;
        self.late += o.late;
        self.seconds += o.seconds;
    }
}

/// A UDP client that pipelines memcached requests: up to [`WINDOW`] in flight,
/// each retried under a new request id after [`RETRY_AFTER`].
struct Client {
    sock: UdpSocket,
    next_id: u16,
}

impl Client {
    fn new() -> anyhow::Result<Self> {
        let sock = UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(20)))?;
        Ok(Self { sock, next_id: 1 })
    }

    fn fresh_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        id
    }

    /// Sends every payload to `to` and calls `check(index, reply)` with each
    /// complete reply (the payloads of its datagrams, concatenated).
    fn exchange(
        &mut self,
        to: SocketAddr,
        payloads: &[Vec<u8>],
        mut check: impl FnMut(usize, &[u8]),
    ) -> anyhow::Result<Traffic> {
        struct Flight {
            index: usize,
            sent_at: Instant,
            tries: u32,
            reply: Vec<u8>,
        }
        let started = Instant::now();
        let mut t = Traffic::default();
        let mut flying: HashMap<u16, Flight> = HashMap::new();
        let mut next = 0;
        let mut buf = vec![0u8; 65_536];
        while next < payloads.len() || !flying.is_empty() {
            while next < payloads.len() && flying.len() < WINDOW {
                let id = self.fresh_id();
                self.sock.send_to(&frame(id, &payloads[next]), to)?;
                t.sent += 1;
                flying.insert(
                    id,
                    Flight {
                        index: next,
                        sent_at: Instant::now(),
                        tries: 1,
                        reply: Vec::new(),
                    },
                );
                next += 1;
            }
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    t.received += 1;
                    ensure!(n >= 8, "a reply datagram of {n} bytes (no frame header)");
                    let id = u16::from_be_bytes([buf[0], buf[1]]);
                    let Some(f) = flying.get_mut(&id) else {
                        t.late += 1;
                        continue;
                    };
                    f.reply.extend_from_slice(&buf[8..n]);
                    let get = payloads[f.index].starts_with(b"get");
                    if complete(get, &f.reply) {
                        let f = flying.remove(&id).expect("present");
                        check(f.index, &f.reply);
                        t.answered += 1;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e).context("receiving"),
            }
            // Requests without their reply: again under a new id, or lost.
            let overdue: Vec<u16> = flying
                .iter()
                .filter(|(_, f)| f.sent_at.elapsed() >= RETRY_AFTER)
                .map(|(&id, _)| id)
                .collect();
            for id in overdue {
                let f = flying.remove(&id).expect("present");
                if f.tries >= TRIES {
                    t.lost += 1;
                    continue;
                }
                let id = self.fresh_id();
                self.sock.send_to(&frame(id, &payloads[f.index]), to)?;
                t.sent += 1;
                t.retries += 1;
                flying.insert(
                    id,
                    Flight {
                        index: f.index,
                        sent_at: Instant::now(),
                        tries: f.tries + 1,
                        reply: Vec::new(),
                    },
                );
            }
        }
        t.seconds = started.elapsed().as_secs_f64();
        Ok(t)
    }
}

/// The values of a `get` reply: `(key, value)` per `VALUE` block, or `None` if
/// it does not parse or does not end with `END`.
#[must_use]
pub fn parse_values(reply: &[u8]) -> Option<Vec<(String, String)>> {
    let mut rest = reply;
    let mut out = Vec::new();
    loop {
        if rest == b"END\r\n" {
            return Some(out);
        }
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&rest[..eol]).ok()?;
        let mut f = line.split(' ');
        if f.next()? != "VALUE" {
            return None;
        }
        let key = f.next()?.to_owned();
        let _flags = f.next()?;
        let len: usize = f.next()?.parse().ok()?;
        let data = rest.get(eol + 2..eol + 2 + len)?;
        if rest.get(eol + 2 + len..eol + 4 + len)? != b"\r\n" {
            return None;
        }
        out.push((key, String::from_utf8(data.to_vec()).ok()?));
        rest = &rest[eol + 4 + len..];
    }
}

/// One request of the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `get` of these customers (one, or three).
    Get(Vec<u64>),
    /// Scenario B's fleet change: add (`true`) or remove server `index`.
    Change(bool, usize),
}

/// A run's requests and fleet.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The requests, with scenario B's change at its time (if the run gets
    /// that far).
    pub ops: Vec<Op>,
    /// Servers at the start (`0..initial`).
    pub initial: usize,
    /// memcached servers to start: `initial`, plus the one B adds.
    pub servers: usize,
}

/// The replay of a scenario: its requests as gets, every [`MULTI_EVERY`]-th
/// of three customers, and scenario B's change at its time.
///
/// # Errors
/// A bad workload, or a fleet the device cannot hold.
pub fn plan(
    cfg: &ScenarioConfig,
    scenario: HilScenario,
    limit: Option<u64>,
) -> anyhow::Result<Plan> {
    let replay = Replay::new(cfg, scenario);
    let (cfg, needed) = (&replay.cfg, replay.peak);
    ensure!(
        (1..=MAX_SERVERS).contains(&needed),
        "the udplb firmware holds {MAX_SERVERS} servers; this run needs {needed}"
    );
    let customers = cfg.workload.customers;
    let mut pending = replay.change;
    let mut ops = Vec::new();
    for (i, r) in replay.requests(limit)?.enumerate() {
        if let Some((c, idx)) = pending
            && r.at_us >= c.at_us
        {
            ops.push(match c.kind {
                ChangeKind::Add => Op::Change(true, idx),
                ChangeKind::Remove(s) => Op::Change(false, s),
            });
            pending = None;
        }
        ops.push(Op::Get(
            if i % MULTI_EVERY == MULTI_EVERY - 1 && customers >= 3 {
                (0..3).map(|k| (r.customer + k * 7) % customers).collect()
            } else {
                vec![r.customer]
            },
        ));
    }
    let added = ops.iter().any(|o| matches!(o, Op::Change(true, _)));
    Ok(Plan {
        ops,
        initial: cfg.servers,
        servers: cfg.servers + usize::from(added),
    })
}

fn key(c: u64) -> String {
    format!("c{c}")
}

/// The server index a value names (`m:c1:3` or `v:c1:3` -> 3), and whether it
/// is the customer's value (`v`) rather than a marker.
fn named_server(value: &str) -> Option<(usize, bool)> {
    let (kind, rest) = value.split_once(':')?;
    let (_, server) = rest.rsplit_once(':')?;
    Some((server.parse().ok()?, kind == "v"))
}

/// The device's UART link.
struct Uart {
    reader: BufReader<std::os::unix::net::UnixStream>,
    writer: std::os::unix::net::UnixStream,
}

impl Uart {
    fn cmd(&mut self, line: &str) -> anyhow::Result<String> {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .context("writing to the UART")?;
        read_reply(&mut self.reader).with_context(|| format!("the reply to {line:?}"))
    }

    fn expect(&mut self, line: &str, want: &str) -> anyhow::Result<()> {
        let got = self.cmd(line)?;
        ensure!(got == want, "{line}: expected {want:?}, got {got:?}");
        Ok(())
    }
}

/// What a run found.
#[derive(Debug, Default)]
struct Report {
    requests: u64,
    multi: u64,
    mismatches: u64,
    examples: Vec<String>,
    traffic: Traffic,
}

impl Report {
    fn mismatch(&mut self, what: String) {
        self.mismatches += 1;
        if self.examples.len() < 10 {
            self.examples.push(what);
        }
    }
}

fn build_elf() -> anyhow::Result<PathBuf> {
    let fw = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware");
    eprintln!("hil --udp: building the firmware (cargo build --release --bin udplb in firmware/)");
    let status = Command::new("bash")
        .arg("-c")
        .arg(". ./env.sh && cargo build --release --bin udplb")
        .current_dir(&fw)
        .status()
        .context("running cargo build in firmware/")?;
    ensure!(
        status.success(),
        "building the udplb firmware failed ({status})"
    );
    Ok(fw.join("target/thumbv7em-none-eabihf/release/udplb"))
}

/// Checks one get's reply: every value must name the server the model picks
/// for its key, and a customer's value must be on the server it was stored on.
fn check_get(
    model: &Model,
    names: &[String],
    stored_on: &[usize],
    customers: &[u64],
    reply: &[u8],
    report: &mut Report,
) {
    let Some(values) = parse_values(reply) else {
        report.mismatch(format!(
            "get {customers:?}: not a get reply: {:?}",
            String::from_utf8_lossy(reply)
        ));
        return;
    };
    let mut want: Vec<&u64> = customers.iter().collect();
    want.dedup();
    if values.len() != want.len() {
        report.mismatch(format!(
            "get {customers:?}: {} values: {values:?}",
            values.len()
        ));
        return;
    }
    for (k, v) in &values {
        let Some(c) = customers.iter().find(|&&c| key(c) == *k) else {
            report.mismatch(format!("get {customers:?}: a value for {k}"));
            continue;
        };
        let expected = model
            .pick(k)
            .and_then(|n| names.iter().position(|x| x == n));
        match named_server(v) {
            Some((s, is_value)) if Some(s) == expected => {
                if is_value && stored_on.get(*c as usize) != Some(&s) {
                    report.mismatch(format!("{k}: value {v} was not stored on server {s}"));
                }
            }
            _ => report.mismatch(format!(
                "{k}: got {v:?}, the model picks server {expected:?} ({:?})",
                model.pick(k)
            )),
        }
    }
}

/// Runs `host-sim hil --qemu --udp`.
///
/// # Errors
/// Usage errors, a daemon or QEMU that does not start, link errors, and any
/// mismatch or lost request.
pub fn run(args: &HilArgs, cfg: &ScenarioConfig) -> anyhow::Result<()> {
    let usage = |m: String| anyhow::Error::from(crate::error::UsageError(m));
    if !args.qemu {
        return Err(usage(
            "--udp needs --qemu (a board needs its own network)".into(),
        ));
    }
    let Plan {
        ops,
        initial,
        servers: needed,
    } = plan(cfg, args.scenario, args.limit)
        .map_err(|e| crate::error::UsageError(format!("{e:#}")))?;
    let customers = cfg.workload.customers;
    if customers > 100_000 {
        return Err(usage(format!(
            "--udp stores every customer on the device: at most 100000, got {customers}"
        )));
    }
    let elf = match &args.elf {
        Some(p) => p.clone(),
        None => build_elf()?,
    };
    ensure!(elf.is_file(), "no firmware ELF at {}", elf.display());

    let servers: Vec<Memcached> = (0..needed)
        .map(|_| Memcached::start())
        .collect::<anyhow::Result<_>>()?;
    let names: Vec<String> = servers
        .iter()
        .map(|m| format!("10.0.2.2:{}", m.port))
        .collect();
    let fwd = free_udp_port()?;
    let nic =
        format!("user,model=lan9118,net=10.0.2.0/24,hostfwd=udp:127.0.0.1:{fwd}-10.0.2.15:11211");
    let (qemu, stream) = Qemu::start(&elf, &["-nic", &nic])?;
    stream.set_read_timeout(Some(Duration::from_secs(args.reply_timeout.max(1))))?;
    let mut uart = Uart {
        reader: BufReader::new(stream.try_clone()?),
        writer: stream,
    };
    let device: SocketAddr = ([127, 0, 0, 1], fwd).into();
    let result = drive(
        args, customers, &ops, initial, &servers, &names, &mut uart, device,
    );
    if let Some(log) = qemu.log() {
        for l in log.lines() {
            println!("firmware: {l}");
        }
    }
    let (report, stats) = result?;
    drop(qemu);
    drop(servers);

    let mut r = String::new();
    let _ = writeln!(
        r,
        "hil --udp: scenario {:?}, placement {}, {initial} memcached servers{}, \
         QEMU mps2-an386 udplb at 127.0.0.1:{fwd} (hostfwd to 10.0.2.15:11211)",
        args.scenario,
        args.placement.name(),
        if needed > initial {
            " (+1 added mid-run)"
        } else {
            ""
        },
    );
    let t = &report.traffic;
    let _ = writeln!(
        r,
        "requests: {} ({} multi-key gets of 3, {HEALTH_GETS} with a server down; {customers} sets before them)",
        report.requests, report.multi
    );
    let _ = writeln!(r, "mismatches: {}", report.mismatches);
    let _ = writeln!(
        r,
        "lost: {}, late: {}, retries: {}",
        t.lost, t.late, t.retries
    );
    let _ = writeln!(
        r,
        "datagrams: {} sent, {} received in {:.2} s = {:.0} datagrams/s ({:.0} requests/s, window {WINDOW})",
        t.sent,
        t.received,
        t.seconds,
        (t.sent + t.received) as f64 / t.seconds.max(1e-9),
        t.answered as f64 / t.seconds.max(1e-9),
    );
    r.push_str("device STATS:\n");
    for l in stats.lines() {
        if let Some(f) = l.strip_prefix('+') {
            let _ = writeln!(r, "  {f}");
        }
    }
    print!("{r}");
    for e in &report.examples {
        eprintln!("mismatch: {e}");
    }
    if report.mismatches > 0 || t.lost > 0 {
        bail!(
            "{} mismatches, {} requests lost after {TRIES} tries",
            report.mismatches,
            t.lost
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn drive(
    args: &HilArgs,
    customers: u64,
    ops: &[Op],
    initial: usize,
    servers: &[Memcached],
    names: &[String],
    uart: &mut Uart,
    device: SocketAddr,
) -> anyhow::Result<(Report, String)> {
    let mut report = Report::default();
    let mut model = Model::new(args.placement);
    let initial: Vec<usize> = (0..initial).collect();

    // The fleet, over the UART.
    uart.expect("RESET", "+OK reset\r\n")?;
    uart.expect("PING", "+PONG\r\n")?;
    let d = args.placement.name();
    uart.expect(&format!("STRATEGY {d}"), &format!("+OK strategy {d}\r\n"))?;
    for &i in &initial {
        uart.expect(
            &format!("ADD_SERVER {}", names[i]),
            &format!("+OK added {}\r\n", names[i]),
        )?;
        model.add(&names[i])?;
    }
    for c in 0..customers.min(200) {
        let want = format!("+{}\r\n", model.pick(&key(c)).unwrap_or("?"));
        let got = uart.cmd(&format!("ROUTE {}", key(c)))?;
        if got != want {
            report.mismatch(format!("ROUTE {}: expected {want:?}, got {got:?}", key(c)));
        }
    }

    // Markers on every server, written directly.
    let mut client = Client::new()?;
    for (i, m) in servers.iter().enumerate() {
        let sets: Vec<Vec<u8>> = (0..customers)
            .map(|c| {
                let v = format!("m:{}:{i}", key(c));
                format!("set {} 0 0 {}\r\n{v}\r\n", key(c), v.len()).into_bytes()
            })
            .collect();
        let to: SocketAddr = ([127, 0, 0, 1], m.port).into();
        let t = client.exchange(to, &sets, |_, r| {
            if r != b"STORED\r\n" {
                report.mismatch(format!(
                    "marker on server {i}: {:?}",
                    String::from_utf8_lossy(r)
                ));
            }
        })?;
        ensure!(t.lost == 0, "memcached {i} lost {} marker sets", t.lost);
    }

    // Each customer's value, through the device.
    let mut stored_on = vec![usize::MAX; customers as usize];
    let sets: Vec<Vec<u8>> = (0..customers)
        .map(|c| {
            let s = model
                .pick(&key(c))
                .and_then(|n| names.iter().position(|x| x == n))
                .unwrap_or(usize::MAX);
            stored_on[c as usize] = s;
            let v = format!("v:{}:{s}", key(c));
            format!("set {} 0 0 {}\r\n{v}\r\n", key(c), v.len()).into_bytes()
        })
        .collect();
    let t = client.exchange(device, &sets, |c, r| {
        if r != b"STORED\r\n" {
            report.mismatch(format!(
                "set {} through the device: {:?}",
                key(c as u64),
                String::from_utf8_lossy(r)
            ));
        }
    })?;
    report.traffic.add(&t);
    // Where did each value land? Read every memcached directly.
    for (i, m) in servers.iter().enumerate() {
        let gets: Vec<Vec<u8>> = (0..customers)
            .map(|c| format!("get {}\r\n", key(c)).into_bytes())
            .collect();
        let to: SocketAddr = ([127, 0, 0, 1], m.port).into();
        let t = client.exchange(to, &gets, |c, r| {
            let want_value = stored_on[c] == i;
            let ok = parse_values(r)
                .is_some_and(|v| v.len() == 1 && named_server(&v[0].1) == Some((i, want_value)));
            if !ok {
                report.mismatch(format!(
                    "server {i} directly, {}: {:?} (the value should be on server {})",
                    key(c as u64),
                    String::from_utf8_lossy(r),
                    stored_on[c]
                ));
            }
        })?;
        ensure!(t.lost == 0, "memcached {i} lost {} direct gets", t.lost);
    }

    // The scenario's requests, segment by segment between fleet changes.
    let run_gets = |model: &Model,
                    report: &mut Report,
                    client: &mut Client,
                    gets: &[Vec<u64>]|
     -> anyhow::Result<()> {
        let payloads: Vec<Vec<u8>> = gets
            .iter()
            .map(|cs| {
                let keys: Vec<String> = cs.iter().map(|&c| key(c)).collect();
                format!("get {}\r\n", keys.join(" ")).into_bytes()
            })
            .collect();
        let mut found = Report::default();
        let t = client.exchange(device, &payloads, |i, r| {
            check_get(model, names, &stored_on, &gets[i], r, &mut found);
        })?;
        report.traffic.add(&t);
        report.requests += gets.len() as u64;
        report.multi += gets.iter().filter(|g| g.len() > 1).count() as u64;
        report.mismatches += found.mismatches;
        for e in found.examples {
            if report.examples.len() < 10 {
                report.examples.push(e);
            }
        }
        Ok(())
    };
    let mut segment: Vec<Vec<u64>> = Vec::new();
    for op in ops {
        match op {
            Op::Get(cs) => segment.push(cs.clone()),
            Op::Change(add, i) => {
                run_gets(&model, &mut report, &mut client, &segment)?;
                segment.clear();
                let name = &names[*i];
                if *add {
                    uart.expect(
                        &format!("ADD_SERVER {name}"),
                        &format!("+OK added {name}\r\n"),
                    )?;
                    model.add(name)?;
                } else {
                    uart.expect(
                        &format!("REMOVE_SERVER {name}"),
                        &format!("+OK removed {name}\r\n"),
                    )?;
                    model.remove(name)?;
                }
            }
        }
    }
    run_gets(&model, &mut report, &mut client, &segment)?;

    // Health: one server down, its keys to the fallback, then up again.
    let down = &names[initial[0]];
    uart.expect(&format!("DOWN {down}"), &format!("+OK {down} down\r\n"))?;
    model.set_up(down, false)?;
    let health: Vec<Vec<u64>> = (0..HEALTH_GETS as u64)
        .map(|i| vec![(i * 13) % customers])
        .collect();
    run_gets(&model, &mut report, &mut client, &health)?;
    uart.expect(&format!("UP {down}"), &format!("+OK {down} up\r\n"))?;
    model.set_up(down, true)?;

    let stats = uart.cmd("STATS")?;
    // The firmware logs its footprint after answering STATS and before it
    // reads the next line: once PING is answered, the log has it.
    uart.expect("PING", "+PONG\r\n")?;
    Ok((report, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_name_their_server() {
        let r = b"VALUE c1 0 6\r\nv:c1:3\r\nVALUE c22 0 7\r\nm:c22:0\r\nEND\r\n";
        let v = parse_values(r).unwrap();
        assert_eq!(
            v,
            [
                ("c1".into(), "v:c1:3".into()),
                ("c22".into(), "m:c22:0".into())
            ]
        );
        assert_eq!(named_server(&v[0].1), Some((3, true)));
        assert_eq!(named_server(&v[1].1), Some((0, false)));
        assert_eq!(parse_values(b"END\r\n"), Some(vec![]));
        for bad in [
            &b"VALUE c1 0 6\r\nv:c1:3\r\n"[..],
            b"VALUE c1 0 9\r\nv:c1:3\r\nEND\r\n",
            b"ERROR\r\n",
            b"",
        ] {
            assert_eq!(parse_values(bad), None);
        }
    }

    #[test]
    fn the_model_walks_past_down_servers_and_matches_twemproxys_ketama() {
        let names: Vec<String> = (0..5).map(|i| format!("10.0.2.2:{}", 11300 + i)).collect();
        let mut m = Model::new(Placement::Ketama);
        let mut k: Ketama<8, 1280, 32> = Ketama::new(KeyHash::Md5);
        for n in &names {
            m.add(n).unwrap();
            k.add(n.as_bytes(), 1).unwrap();
        }
        for c in 0..500 {
            let want = k.server_for(key(c).as_bytes()).map(|i| names[i].as_str());
            assert_eq!(m.pick(&key(c)), want);
        }
        for d in [Placement::Ketama, Placement::Ring] {
            let mut m = Model::new(d);
            for n in &names {
                m.add(n).unwrap();
            }
            let before: Vec<String> = (0..500)
                .map(|c| m.pick(&key(c)).unwrap().to_owned())
                .collect();
            m.set_up(&names[1], false).unwrap();
            for c in 0..500 {
                let now = m.pick(&key(c)).unwrap();
                if before[c as usize] == names[1] {
                    assert_ne!(now, names[1]);
                } else {
                    assert_eq!(now, before[c as usize]);
                }
            }
        }
    }

    #[test]
    fn check_get_catches_a_wrong_server_a_lost_value_and_a_bad_reply() {
        let names: Vec<String> = (0..3).map(|i| format!("10.0.2.2:{}", 11300 + i)).collect();
        let mut m = Model::new(Placement::Ketama);
        for n in &names {
            m.add(n).unwrap();
        }
        let s = |c: u64| {
            names
                .iter()
                .position(|n| Some(n.as_str()) == m.pick(&key(c)))
                .unwrap()
        };
        let stored: Vec<usize> = (0..10).map(s).collect();
        let check = |cs: &[u64], reply: String| {
            let mut r = Report::default();
            check_get(&m, &names, &stored, cs, reply.as_bytes(), &mut r);
            r.mismatches
        };
        let value = |c: u64, kind: &str, server: usize| {
            let v = format!("{kind}:{}:{server}", key(c));
            format!("VALUE {} 0 {}\r\n{v}\r\n", key(c), v.len())
        };
        // Right: the value from its server, or that server's marker.
        assert_eq!(check(&[1], format!("{}END\r\n", value(1, "v", s(1)))), 0);
        assert_eq!(check(&[2], format!("{}END\r\n", value(2, "m", s(2)))), 0);
        assert_eq!(
            check(
                &[1, 2],
                format!("{}{}END\r\n", value(2, "m", s(2)), value(1, "v", s(1)))
            ),
            0
        );
        // Wrong: another server's marker, a value never stored there, a
        // missing value, garbage.
        let other = |c: u64| (s(c) + 1) % 3;
        assert_eq!(
            check(&[1], format!("{}END\r\n", value(1, "m", other(1)))),
            1
        );
        assert_eq!(
            check(&[1], format!("{}END\r\n", value(1, "v", other(1)))),
            1
        );
        assert_eq!(check(&[1, 2], format!("{}END\r\n", value(1, "v", s(1)))), 1);
        assert_eq!(check(&[1], "SERVER_ERROR busy\r\n".into()), 1);
    }

    #[test]
    fn the_plan_has_the_change_multi_gets_and_a_bounded_fleet() {
        let cfg = ScenarioConfig::default();
        let Plan {
            ops,
            initial,
            servers,
        } = plan(&cfg, HilScenario::B, Some(5_000)).unwrap();
        // 5,000 requests end before the change at 30 s.
        assert_eq!((initial, servers), (cfg.servers, cfg.servers));
        let gets = ops.iter().filter(|o| matches!(o, Op::Get(_))).count();
        assert_eq!(gets, 5_000);
        let multi = ops
            .iter()
            .filter(|o| matches!(o, Op::Get(c) if c.len() == 3))
            .count();
        assert_eq!(multi, 5_000 / MULTI_EVERY);
        let full = plan(&cfg, HilScenario::B, None).unwrap();
        assert_eq!(full.servers, cfg.servers + 1);
        let full = full.ops;
        let change = full
            .iter()
            .position(|o| matches!(o, Op::Change(true, 5)))
            .unwrap();
        assert!(change > full.len() / 3 && change < 2 * full.len() / 3);
        let a = plan(&cfg, HilScenario::A, Some(10)).unwrap();
        assert_eq!((a.ops.len(), a.servers), (10, cfg.servers));
        let big = ScenarioConfig {
            servers: 8,
            ..ScenarioConfig::default()
        };
        assert!(plan(&big, HilScenario::B, Some(1)).is_err());
        assert!(plan(&big, HilScenario::A, Some(1)).is_ok());
    }
}
