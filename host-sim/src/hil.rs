//! `host-sim hil`: hardware in the loop. Replays a scenario's request stream
//! through the firmware's control protocol ([`chring::protocol`]) over a serial
//! link and checks every reply against the same [`Controller`] run here.
//!
//! ```text
//! host-sim hil --qemu [--elf PATH] --scenario b    # the firmware in QEMU, UART0 on a unix socket
//! host-sim hil --port /dev/ttyACM0 --scenario b    # a board (set the tty raw first), or a socket
//! host-sim hil --qemu --udp --scenario b           # the udplb firmware: live memcached UDP
//! ```
//!
//! `--udp` runs another firmware, `udplb`, which shards memcached UDP traffic
//! over real memcached servers; see [`crate::hil_udp`].
//!
//! The session: `RESET`, `STRATEGY name`, a few probes of the error replies
//! (unknown command, bad number, over-long line, ...), one `ADD_SERVER` per
//! server of the scenario, then one `ROUTE c<customer>` per request, with
//! scenario B's fleet change (`ADD_SERVER` / `REMOVE_SERVER`) before the first
//! request at or after its time, and `SERVERS` and `STATS` at the end. Requests
//! are pipelined: up to `--in-flight` lines are in flight, so the run is bound by
//! the link's bytes per second, not by its latency.
//!
//! Every reply must equal the local controller's, byte for byte. The device
//! stamps its flow table with its own clock and the host with its own; the
//! controller's idle timeout ([`rig::HIL_FLOW_TTL`], 10 minutes) is longer
//! than a run, so no entry expires on either side and the clocks cannot make
//! the replies differ (`STATS` reports `flow_expirations`, which must be 0).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::iter::Take;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chring::protocol::rig::{self, HIL_LINE, HilController};
use chring::protocol::{KINDS, LineBuffer, StrategyKind};
use clap::{Args, ValueEnum};

use crate::args::ScenarioFlags;
use crate::error::UsageError;
use crate::scenario::{Scenario, ScenarioConfig, b::fleet_change};
use crate::sim::{ChangeKind, FleetChange, IdDistribution, RequestStream, server_name};

/// The scenarios `hil` can replay (C has no request stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HilScenario {
    /// A: the workload of scenario A on a fixed fleet.
    A,
    /// B: scenario B's stream with its fleet change.
    B,
    /// D: scenario D's Zipf stream.
    D,
}

/// `host-sim hil`.
#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 when every reply matched the host's, 1 on any \
    mismatch or protocol error, 2 for bad arguments."
)]
pub struct HilArgs {
    /// Start the firmware in QEMU (mps2-an386) with UART0 on a unix socket in a
    /// temporary directory; QEMU is killed on exit.
    #[arg(long, required_unless_present = "port", conflicts_with = "port")]
    pub qemu: bool,
    /// The firmware ELF for --qemu. Default: firmware/target/thumbv7em-none-eabihf/release/hil,
    /// built first with `cargo build --release --bin hil` in firmware/ (after `. ./env.sh`).
    #[arg(long, value_name = "PATH", requires = "qemu")]
    pub elf: Option<PathBuf>,
    /// A running firmware's link: a serial device (set it raw first, e.g.
    /// `stty -F DEV 115200 raw -echo`) or a unix socket.
    #[arg(long, value_name = "PATH")]
    pub port: Option<PathBuf>,
    /// The udplb firmware instead (default ELF: firmware/.../release/udplb):
    /// memcached UDP through the device to N real memcached servers, every
    /// reply checked (see --placement).
    #[arg(long, requires = "qemu")]
    pub udp: bool,
    /// With --udp: how the device places keys (its STRATEGY).
    #[arg(long, value_enum, default_value_t = crate::hil_udp::Placement::Ketama)]
    pub placement: crate::hil_udp::Placement,
    /// The request stream replayed through ROUTE (or, with --udp, as gets).
    #[arg(long, value_enum, default_value_t = HilScenario::B)]
    pub scenario: HilScenario,
    /// The device's strategy: ring, maglev, jump, rendezvous or modulo.
    #[arg(long, value_name = "NAME", default_value = "ring", value_parser = parse_strategy)]
    pub strategy: StrategyKind,
    /// Lines in flight at most (pipelining).
    #[arg(long, default_value_t = 256)]
    pub in_flight: u32,
    /// Replay only the first N requests (default: all).
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Give up when a reply takes longer than this, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 20)]
    pub reply_timeout: u64,
    /// Seed, workload and fleet, as for `host-sim scenario`.
    #[command(flatten)]
    pub flags: ScenarioFlags,
}

fn parse_strategy(s: &str) -> Result<StrategyKind, String> {
    match StrategyKind::parse(s) {
        Ok(kind) if KINDS.contains(&kind) => Ok(kind),
        _ => Err(format!(
            "unknown strategy '{s}'; use ring, maglev, jump, rendezvous or modulo"
        )),
    }
}

/// One line to send, and what it is for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The line, without its newline.
    pub line: String,
    /// Counted as a ROUTE of the stream.
    pub route: bool,
}

/// What the serial ([`session`]) and the UDP ([`plan`](crate::hil_udp::plan))
/// replays of a scenario share: its configuration, scenario B's fleet change
/// and the most servers live at once.
pub(crate) struct Replay {
    /// The configuration the requests are drawn from (scenario D draws Zipf
    /// ids).
    pub(crate) cfg: ScenarioConfig,
    /// The simulator's scenario.
    scenario: Scenario,
    /// Scenario B's change and the server it adds or removes; `None` for the
    /// others.
    pub(crate) change: Option<(FleetChange, usize)>,
    /// Servers live at once, at the most: the initial fleet, plus the one
    /// scenario B may add.
    pub(crate) peak: usize,
}

impl Replay {
    /// The replay of `scenario` over `cfg`.
    pub(crate) fn new(cfg: &ScenarioConfig, scenario: HilScenario) -> Self {
        let mut cfg = cfg.clone();
        let sc = match scenario {
            HilScenario::A => Scenario::A,
            HilScenario::B => Scenario::B,
            HilScenario::D => {
                cfg.workload.distribution = IdDistribution::Zipf;
                Scenario::D
            }
        };
        let change = (scenario == HilScenario::B).then(|| fleet_change(&cfg));
        let peak =
            cfg.servers + usize::from(matches!(change, Some((c, _)) if c.kind == ChangeKind::Add));
        Self {
            cfg,
            scenario: sc,
            change,
            peak,
        }
    }

    /// The scenario's requests, the first `limit` (all without one).
    ///
    /// # Errors
    /// A bad workload.
    pub(crate) fn requests(&self, limit: Option<u64>) -> anyhow::Result<Take<RequestStream>> {
        let stream = self
            .cfg
            .request_stream(self.scenario)
            .map_err(|e| anyhow::anyhow!("workload: {e}"))?;
        Ok(stream.take(usize::try_from(limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX)))
    }
}

/// The session's lines for a scenario (see the [module docs](self)).
///
/// # Errors
/// A fleet the device cannot hold, or a bad workload.
pub fn session(
    cfg: &ScenarioConfig,
    scenario: HilScenario,
    strategy: StrategyKind,
    limit: Option<u64>,
) -> anyhow::Result<Vec<Step>> {
    let replay = Replay::new(cfg, scenario);
    let (cfg, peak) = (&replay.cfg, replay.peak);
    ensure!(
        (1..=8).contains(&peak),
        "the HIL firmware holds 8 servers of weight 1 or a total weight of 12 (ring of 768 \
         points at {} per weight); this scenario needs {peak}",
        rig::HIL_VNODES
    );
    let step = |line: String| Step { line, route: false };
    let mut steps = vec![
        step("RESET".into()),
        step("PING".into()),
        step(format!("STRATEGY {strategy}")),
        // Error replies: the link must stay usable after each.
        step("NO_SUCH_COMMAND".into()),
        step("ADD_SERVER probe 0".into()),
        step("ADD_SERVER probe x".into()),
        step("REMOVE_SERVER probe".into()),
        step("ROUTE".into()),
        step(format!("ROUTE {}", "k".repeat(HIL_LINE + 10))),
        step("REPLICAS key 0".into()),
        step("HELP".into()),
    ];
    for i in 0..cfg.servers {
        steps.push(step(format!("ADD_SERVER {}", server_name(i))));
    }
    let mut pending = replay.change;
    for r in replay.requests(limit)? {
        if let Some((c, idx)) = pending
            && r.at_us >= c.at_us
        {
            steps.push(step(match c.kind {
                ChangeKind::Add => format!("ADD_SERVER {}", server_name(idx)),
                ChangeKind::Remove(i) => format!("REMOVE_SERVER {}", server_name(i)),
            }));
            pending = None;
        }
        steps.push(Step {
            line: format!("ROUTE c{}", r.customer),
            route: true,
        });
    }
    steps.push(step("SERVERS".into()));
    steps.push(step("REPLICAS c0 3".into()));
    steps.push(step("STATS".into()));
    Ok(steps)
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Lines sent.
    pub sent: u64,
    /// Of those, ROUTEs of the request stream.
    pub routes: u64,
    /// Replies that differ from the host's.
    pub mismatches: u64,
    /// The first few mismatches: (line, expected, got).
    pub examples: Vec<(String, String, String)>,
    /// Seconds from the first line sent to the last reply read.
    pub seconds: f64,
    /// The device's last STATS reply.
    pub device_stats: String,
    /// The host's.
    pub host_stats: String,
}

/// Reads one reply (a line, or `*n` and its `n` lines) from `r`.
pub(crate) fn read_reply(r: &mut impl BufRead) -> anyhow::Result<String> {
    let mut reply = String::new();
    let mut raw = Vec::new();
    let mut left = 1u64;
    while left > 0 {
        raw.clear();
        let n = r.read_until(b'\n', &mut raw).context("reading a reply")?;
        ensure!(n > 0, "the link closed in the middle of the session");
        let line = std::str::from_utf8(&raw)
            .map_err(|_| anyhow::anyhow!("protocol error: a reply that is not UTF-8: {raw:?}"))?;
        ensure!(
            line.ends_with("\r\n"),
            "protocol error: a reply line without CR LF: {line:?}"
        );
        let body = &line[..line.len() - 2];
        left -= 1;
        match body.as_bytes().first() {
            Some(b'*') => {
                let k: u64 = body[1..]
                    .parse()
                    .with_context(|| format!("protocol error: bad array header {body:?}"))?;
                left += k;
            }
            Some(b'+' | b'-' | b':') => {}
            _ => bail!("protocol error: unexpected reply line {body:?}"),
        }
        reply.push_str(line);
    }
    Ok(reply)
}

/// Runs `steps` over a link (`reader` and `writer` are its two directions),
/// checking each reply against a local [`HilController`].
///
/// # Errors
/// Link errors and protocol errors (a reply that does not parse); mismatches
/// are counted, not errors.
pub fn drive(
    steps: &[Step],
    reader: impl Read,
    mut writer: impl Write,
    window: usize,
) -> anyhow::Result<Outcome> {
    let mut host: HilController = rig::hil_controller();
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let started = Instant::now();
    let mut out = Outcome::default();
    let mut expected: std::collections::VecDeque<(usize, String)> = Default::default();
    let mut next = 0usize;
    let mut batch = Vec::with_capacity(window * 16);
    let mut lb: LineBuffer<HIL_LINE> = LineBuffer::new();
    let window = window.max(1);
    while next < steps.len() || !expected.is_empty() {
        // Top the window up (by at least half of it, to send in batches).
        if next < steps.len() && expected.len() <= window / 2 {
            batch.clear();
            while next < steps.len() && expected.len() < window {
                let s = &steps[next];
                batch.extend_from_slice(s.line.as_bytes());
                batch.push(b'\n');
                let now = chring::Instant(started.elapsed().as_millis() as u32);
                let mut reply = String::new();
                for &b in s.line.as_bytes().iter().chain(b"\n") {
                    if let Some(l) = lb.push(b) {
                        host.handle(l, now, &mut reply)?;
                    }
                }
                out.sent += 1;
                out.routes += u64::from(s.route);
                expected.push_back((next, reply));
                next += 1;
            }
            writer.write_all(&batch).context("writing to the link")?;
            writer.flush().context("writing to the link")?;
        }
        let Some((i, want)) = expected.pop_front() else {
            continue;
        };
        let got = read_reply(&mut reader)?;
        if steps[i].line == "STATS" {
            out.device_stats.clone_from(&got);
            out.host_stats.clone_from(&want);
        }
        if got != want {
            out.mismatches += 1;
            if out.examples.len() < 10 {
                out.examples.push((steps[i].line.clone(), want, got));
            }
        }
    }
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// QEMU running the firmware; killed (by PID) when dropped.
pub(crate) struct Qemu {
    pub(crate) child: Child,
    dir: PathBuf,
    elf: PathBuf,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        // `Child::kill` signals this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.join("fw.sock"));
    }
}

impl Qemu {
    /// Starts QEMU on `elf` with UART0 on a unix socket and `extra` arguments
    /// (`-nic ...`); returns once the socket is connected.
    pub(crate) fn start(
        elf: &Path,
        extra: &[&str],
    ) -> anyhow::Result<(Self, std::os::unix::net::UnixStream)> {
        let dir = std::env::temp_dir().join(format!("host-sim-hil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let sock = dir.join("fw.sock");
        let _ = std::fs::remove_file(&sock);
        let log = std::fs::File::create(dir.join("defmt.bin"))?;
        let err = std::fs::File::create(dir.join("qemu.err"))?;
        let child = Command::new("qemu-system-arm")
            .args(["-cpu", "cortex-m4", "-machine", "mps2-an386", "-nographic"])
            .args([
                "-semihosting-config",
                "enable=on,target=native",
                "-monitor",
                "none",
            ])
            .arg("-kernel")
            .arg(elf)
            .arg("-serial")
            .arg(format!("unix:{},server=on,wait=on", sock.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .context(
                "starting qemu-system-arm (install it with: apt-get install qemu-system-arm)",
            )?;
        let mut q = Qemu {
            child,
            dir,
            elf: elf.to_path_buf(),
        };
        let t = Instant::now();
        loop {
            if let Ok(s) = std::os::unix::net::UnixStream::connect(&sock) {
                return Ok((q, s));
            }
            if let Some(status) = q.child.try_wait()? {
                bail!(
                    "QEMU exited ({status}) before the firmware's UART socket appeared: {}",
                    std::fs::read_to_string(q.dir.join("qemu.err")).unwrap_or_default()
                );
            }
            ensure!(
                t.elapsed() < Duration::from_secs(20),
                "QEMU's socket {} did not appear within 20 s",
                sock.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The firmware's defmt log so far, decoded with `defmt-print` when it is
    /// installed.
    pub(crate) fn log(&self) -> Option<String> {
        let raw = std::fs::read(self.dir.join("defmt.bin")).ok()?;
        let mut p = Command::new("defmt-print")
            .arg("-e")
            .arg(&self.elf)
            .args(["--log-format", "{L} {s}", "stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        p.stdin.take()?.write_all(&raw).ok()?;
        let out = p.wait_with_output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware")
}

fn build_elf() -> anyhow::Result<PathBuf> {
    let fw = firmware_dir();
    eprintln!("hil: building the firmware (cargo build --release --bin hil in firmware/)");
    let status = Command::new("bash")
        .arg("-c")
        .arg(". ./env.sh && cargo build --release --bin hil")
        .current_dir(&fw)
        .status()
        .context("running cargo build in firmware/")?;
    ensure!(
        status.success(),
        "building the hil firmware failed ({status})"
    );
    Ok(fw.join("target/thumbv7em-none-eabihf/release/hil"))
}

fn stats_table(device: &str, host: &str) -> String {
    let rows = |s: &str| -> Vec<String> {
        s.lines()
            .filter_map(|l| l.strip_prefix('+'))
            .map(str::to_owned)
            .collect()
    };
    let (d, h) = (rows(device), rows(host));
    let split = |r: &str| match r.rsplit_once(' ') {
        Some((k, v)) => (k.to_owned(), v.to_owned()),
        None => (r.to_owned(), String::new()),
    };
    let mut t = format!("{:<28} {:>12} {:>12}\n", "STATS", "firmware", "host");
    for i in 0..d.len().max(h.len()) {
        let (k, dv) = d.get(i).map(|r| split(r)).unwrap_or_default();
        let (hk, hv) = h.get(i).map(|r| split(r)).unwrap_or_default();
        let key = if k.is_empty() { hk } else { k };
        let mark = if dv == hv { "" } else { "  <- differs" };
        let _ = writeln!(t, "{key:<28} {dv:>12} {hv:>12}{mark}");
    }
    t
}

/// Runs `host-sim hil`.
///
/// # Errors
/// Usage errors, link or protocol errors, and any mismatch.
pub fn run(args: &HilArgs) -> anyhow::Result<()> {
    let which = match args.scenario {
        HilScenario::A => Scenario::A,
        HilScenario::B => Scenario::B,
        HilScenario::D => Scenario::D,
    };
    let cfg = args.flags.config(&[which])?;
    if args.udp {
        return crate::hil_udp::run(args, &cfg);
    }
    let steps = session(&cfg, args.scenario, args.strategy, args.limit)
        .map_err(|e| UsageError(format!("{e:#}")))?;
    if !(1..=4096).contains(&args.in_flight) {
        return Err(UsageError(format!(
            "--in-flight must be in 1..=4096, got {}",
            args.in_flight
        ))
        .into());
    }
    let window = args.in_flight as usize;
    let timeout = Some(Duration::from_secs(args.reply_timeout.max(1)));

    let mut qemu = None;
    let (outcome, link) = if args.qemu {
        let elf = match &args.elf {
            Some(p) => p.clone(),
            None => build_elf()?,
        };
        ensure!(elf.is_file(), "no firmware ELF at {}", elf.display());
        let (q, stream) = Qemu::start(&elf, &[])?;
        let link = format!(
            "QEMU mps2-an386 (pid {}), UART0 on {}",
            q.child.id(),
            q.dir.join("fw.sock").display()
        );
        qemu = Some(q);
        stream.set_read_timeout(timeout)?;
        (drive(&steps, stream.try_clone()?, stream, window), link)
    } else {
        let port = args
            .port
            .as_deref()
            .context("--port or --qemu is required")?;
        let link = format!("{}", port.display());
        use std::os::unix::fs::FileTypeExt;
        let meta =
            std::fs::metadata(port).with_context(|| format!("opening {}", port.display()))?;
        if meta.file_type().is_socket() {
            let stream = std::os::unix::net::UnixStream::connect(port)
                .with_context(|| format!("connecting to {}", port.display()))?;
            stream.set_read_timeout(timeout)?;
            (drive(&steps, stream.try_clone()?, stream, window), link)
        } else {
            let dev = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(port)
                .with_context(|| format!("opening {}", port.display()))?;
            (drive(&steps, dev.try_clone()?, dev, window), link)
        }
    };
    if let Some(q) = &qemu
        && let Some(log) = q.log()
    {
        for l in log.lines() {
            println!("firmware: {l}");
        }
    }
    let o = outcome?;
    drop(qemu);

    let mut r = String::new();
    let _ = writeln!(
        r,
        "hil: scenario {:?}, strategy {}, over {link}",
        args.scenario, args.strategy
    );
    let _ = writeln!(
        r,
        "commands sent: {} ({} ROUTE of the request stream, {} others)",
        o.sent,
        o.routes,
        o.sent - o.routes
    );
    let _ = writeln!(r, "mismatches: {}", o.mismatches);
    let _ = writeln!(
        r,
        "round trips: {} in {:.2} s = {:.0}/s (window {window})",
        o.sent,
        o.seconds,
        o.sent as f64 / o.seconds.max(1e-9)
    );
    r.push_str(&stats_table(&o.device_stats, &o.host_stats));
    print!("{r}");
    for (line, want, got) in &o.examples {
        eprintln!("mismatch: {line:?}: expected {want:?}, got {got:?}");
    }
    if o.mismatches > 0 {
        bail!(
            "{} of {} replies differ from the host's",
            o.mismatches,
            o.sent
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A device simulated in memory: the same controller behind a byte stream.
    fn device_replies(steps: &[Step], corrupt: Option<usize>) -> Vec<u8> {
        let mut ctl = rig::hil_controller();
        let mut lb: LineBuffer<HIL_LINE> = LineBuffer::new();
        let mut out = String::new();
        for (i, s) in steps.iter().enumerate() {
            let mut reply = String::new();
            for &b in s.line.as_bytes().iter().chain(b"\n") {
                if let Some(l) = lb.push(b) {
                    ctl.handle(l, chring::Instant(0), &mut reply).unwrap();
                }
            }
            if corrupt == Some(i) {
                reply = "+server-9\r\n".into();
            }
            out.push_str(&reply);
        }
        out.into_bytes()
    }

    fn scenario_b(limit: u64) -> Vec<Step> {
        let cfg = ScenarioConfig::default();
        session(&cfg, HilScenario::B, StrategyKind::Ring, Some(limit)).unwrap()
    }

    #[test]
    fn session_has_the_fleet_change_and_every_request() {
        let steps = session(
            &ScenarioConfig::default(),
            HilScenario::B,
            StrategyKind::Ring,
            None,
        )
        .unwrap();
        let routes = steps.iter().filter(|s| s.route).count();
        assert!(routes > 29_000, "{routes}");
        let add = steps
            .iter()
            .position(|s| s.line == "ADD_SERVER server-5")
            .unwrap();
        assert!(add > steps.len() / 3 && add < 2 * steps.len() / 3);
        assert_eq!(steps.last().unwrap().line, "STATS");
    }

    #[test]
    fn drive_matches_an_honest_device_and_catches_a_liar() {
        let steps = scenario_b(2_000);
        let replies = device_replies(&steps, None);
        let o = drive(&steps, Cursor::new(replies), std::io::sink(), 64).unwrap();
        assert_eq!(o.mismatches, 0, "{:?}", o.examples);
        assert_eq!(o.sent, steps.len() as u64);
        assert_eq!(o.routes, 2_000);
        assert_eq!(o.device_stats, o.host_stats);
        assert!(o.host_stats.contains("+routed 2000\r\n"));
        let table = stats_table(&o.device_stats, &o.host_stats);
        assert!(!table.contains("differs"), "{table}");

        let bad = steps.iter().position(|s| s.route).unwrap() + 5;
        let replies = device_replies(&steps, Some(bad));
        let o = drive(&steps, Cursor::new(replies), std::io::sink(), 7).unwrap();
        assert_eq!(o.mismatches, 1);
        assert_eq!(o.examples[0].0, steps[bad].line);
    }

    #[test]
    fn protocol_errors_are_errors() {
        let steps = scenario_b(10);
        for junk in [&b"+OK\n"[..], b"garbage\r\n", b"*x\r\n", b""] {
            let e = drive(&steps, Cursor::new(junk.to_vec()), std::io::sink(), 4).unwrap_err();
            assert!(
                format!("{e:#}").contains("protocol error") || format!("{e:#}").contains("closed")
            );
        }
    }

    #[test]
    fn too_big_a_fleet_is_refused() {
        let cfg = ScenarioConfig {
            servers: 8,
            ..ScenarioConfig::default()
        };
        assert!(session(&cfg, HilScenario::B, StrategyKind::Ring, Some(1)).is_err());
        assert!(session(&cfg, HilScenario::A, StrategyKind::Ring, Some(1)).is_ok());
    }
}
