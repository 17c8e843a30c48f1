//! The `chring-proxy` binary: nutcracker's command line (see
//! [`chring_proxy::cli`]), then the pools, the stats port, and the optional
//! control port and admin HTTP, until SIGTERM or SIGINT.
//!
//! Start-up follows nutcracker's `main` / `nc_pre_run`: options, `-V`/`-h`/`-D`
//! (print and exit 0), `-t` (check the file, exit 0 or 1), the logger (`-v`,
//! `-o`), `-d` (double fork, `setsid`, stdio onto /dev/null; the working
//! directory is kept, as nutcracker keeps it), the pid file (`-p`, removed on
//! exit), the event-loop threads (`--threads`, one current-thread tokio
//! runtime each, this thread's first), then the pools. Unlike nutcracker, the
//! configuration file and the bind policy are checked before daemonizing, so
//! their errors reach the terminal.
//!
//! Signals, as nutcracker's `nc_signal.c` handles them: SIGHUP reopens the
//! `-o` file, SIGTTIN / SIGTTOU raise / lower the log level by one, SIGUSR1
//! and SIGUSR2 are logged and do nothing else (nutcracker 0.5.0 has no
//! reload), SIGPIPE is ignored. SIGTERM and SIGINT stop accepting, let what is
//! in flight finish (`Proxy::shutdown`), remove the pid file and exit 0.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chring_proxy::cli::{self, Args};
use chring_proxy::state::Control;
use chring_proxy::{Proxy, ProxyConfig, admin, config, control, stats};

/// The shortest token accepted from `--token-file`, in bytes.
const MIN_TOKEN: usize = 16;

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("chring-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.version {
        eprint!("{}", cli::version_text());
        if args.help {
            eprint!("{}", cli::usage_text());
        }
        if args.describe_stats {
            eprint!("{}", stats::describe());
        }
        return ExitCode::SUCCESS;
    }
    if args.test_conf {
        let path = args.conf_file.display();
        return match config::load(&args.conf_file) {
            Ok(_) => {
                eprintln!("chring-proxy: configuration file '{path}' syntax is ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                let e = format!("{e:#}").replace('\n', " ");
                eprintln!("chring-proxy: configuration file '{path}' syntax is invalid: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match prepare(&args) {
        Ok(code) => code,
        Err(e) => {
            let e = format!("{e:#}").replace('\n', " ");
            eprintln!("chring-proxy: {e}");
            chring_proxy::log::always(format_args!("{e}"));
            ExitCode::FAILURE
        }
    }
}

/// Reads the token: the first line of the file, trimmed; at least
/// [`MIN_TOKEN`] bytes of printable ASCII without spaces.
fn read_token(path: &Path) -> anyhow::Result<Arc<str>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read token file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim();
    anyhow::ensure!(
        token.len() >= MIN_TOKEN && token.bytes().all(|b| b.is_ascii_graphic()),
        "token file {}: the token must be at least {MIN_TOKEN} printable ASCII characters without spaces",
        path.display()
    );
    Ok(token.into())
}

/// Loopback surfaces need no token; any other address does.
fn check_bind(what: &str, addrs: &[SocketAddr], token: bool) -> anyhow::Result<()> {
    if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        anyhow::ensure!(
            token,
            "{what} {a} is not a loopback address: binding it needs a token (--token-file)"
        );
    }
    Ok(())
}

/// Everything before the runtime: checks, logger, daemon, pid file.
fn prepare(args: &Args) -> anyhow::Result<ExitCode> {
    let token = args.token_file.as_deref().map(read_token).transpose()?;
    let has_token = token.is_some();
    let stats_addr = args.stats_addr(has_token);
    let stats_addrs: Vec<SocketAddr> = (stats_addr, args.stats_port)
        .to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("stats address '{stats_addr}': {e}"))?
        .collect();
    anyhow::ensure!(
        !stats_addrs.is_empty(),
        "stats address '{stats_addr}' resolves to nothing"
    );
    check_bind("stats address", &stats_addrs, has_token)?;
    check_bind("--control", args.control.as_slice(), has_token)?;
    check_bind("--admin", args.admin.as_slice(), has_token)?;
    let config = config::load(&args.conf_file)
        .map_err(|e| anyhow::anyhow!("configuration file '{}': {e:#}", args.conf_file.display()))?;

    let logger = chring_proxy::log::init(args.verbosity, args.output.as_deref())?;
    if args.daemonize {
        daemonize()?;
    }
    let pid = std::process::id();
    let pid_file = match &args.pid_file {
        Some(p) => {
            std::fs::write(p, pid.to_string())
                .map_err(|e| anyhow::anyhow!("opening pid file '{}' failed: {e}", p.display()))?;
            Some(PidFile(p.clone()))
        }
        None => None,
    };
    chring_proxy::log::always(format_args!(
        "chring-proxy-{} built for {} {} started on pid {pid}",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    ));
    // One current-thread runtime per event-loop thread (`--threads`): this
    // thread's serves the pools' listeners, health, control, admin and stats,
    // and its share of the clients; each worker thread serves its share with
    // connections of its own to every server.
    let threads = args.threads();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let workers = Workers::start(threads.saturating_sub(1))?;
    let handles = if threads > 1 {
        std::iter::once(rt.handle().clone())
            .chain(workers.handles.iter().cloned())
            .collect()
    } else {
        Vec::new()
    };
    let surfaces = Surfaces {
        stats: stats_addrs,
        stats_interval: Duration::from_millis(args.stats_interval_ms),
        control: args.control,
        admin: args.admin,
        token,
    };
    let code = rt.block_on(run(config, surfaces, logger, handles));
    rt.shutdown_timeout(Duration::from_secs(5));
    drop(workers);
    drop(pid_file);
    chring_proxy::log::always(format_args!("done, rabbit done"));
    Ok(code)
}

/// The worker threads of `--threads N` (N - 1 of them; the main thread is
/// worker 0), each blocked on its current-thread runtime until dropped.
struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    threads: Vec<(
        std::thread::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    )>,
}

impl Workers {
    /// Starts `n` worker threads, numbered 1..=n for
    /// [`chring_proxy::backend::set_worker`].
    fn start(n: usize) -> anyhow::Result<Workers> {
        let mut w = Workers {
            handles: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
        };
        for i in 1..=n {
            let (htx, hrx) = std::sync::mpsc::sync_channel(1);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let t = std::thread::Builder::new()
                .name(format!("chring-proxy-{i}"))
                .spawn(move || {
                    chring_proxy::backend::set_worker(i);
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => {
                            let _ = htx.send(Ok(rt.handle().clone()));
                            rt.block_on(async {
                                let _ = stopped.await;
                            });
                            rt.shutdown_timeout(Duration::from_secs(1));
                        }
                        Err(e) => {
                            let _ = htx.send(Err(e));
                        }
                    }
                })
                .map_err(|e| anyhow::anyhow!("starting worker thread {i}: {e}"))?;
            let h = hrx
                .recv()
                .map_err(|_| anyhow::anyhow!("worker thread {i} ended at start"))?
                .map_err(|e| anyhow::anyhow!("worker thread {i}: runtime: {e}"))?;
            w.handles.push(h);
            w.threads.push((t, stop));
        }
        Ok(w)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (t, stop) in self.threads.drain(..) {
            let _ = stop.send(());
            let _ = t.join();
        }
    }
}

/// The pid file, removed when dropped (nutcracker's `nc_remove_pidfile`).
struct PidFile(PathBuf);

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            log::error!(
                "unlink of pid file '{}' failed, ignored: {e}",
                self.0.display()
            );
        }
    }
}

/// nutcracker's `nc_daemonize(1)`: fork (the parent exits 0), `setsid`,
/// ignore SIGHUP, fork again, `umask(0)`, stdin/stdout/stderr onto
/// /dev/null; the working directory is kept.
fn daemonize() -> anyhow::Result<()> {
    use nix::sys::signal::{SigHandler, Signal, signal};
    use nix::unistd::{ForkResult, dup2, fork, setsid};
    use std::os::fd::AsRawFd;

    // SAFETY: no thread has been started yet (the runtime is built after
    // this), so the child is a complete copy of a single-threaded process.
    if let ForkResult::Parent { .. } = unsafe { fork() }? {
        std::process::exit(0);
    }
    setsid()?;
    // SAFETY: SIG_IGN installs no handler code that could run unsafely.
    unsafe { signal(Signal::SIGHUP, SigHandler::SigIgn) }?;
    // SAFETY: still single-threaded, as above.
    if let ForkResult::Parent { .. } = unsafe { fork() }? {
        std::process::exit(0);
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..=2 {
        dup2(null.as_raw_fd(), fd)?;
    }
    Ok(())
}

/// What to serve besides the pools.
struct Surfaces {
    stats: Vec<SocketAddr>,
    stats_interval: Duration,
    control: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    token: Option<Arc<str>>,
}

/// Aborts the tasks it holds when dropped.
struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

async fn bind(what: &str, addrs: &[SocketAddr]) -> anyhow::Result<tokio::net::TcpListener> {
    let l = tokio::net::TcpListener::bind(addrs)
        .await
        .map_err(|e| anyhow::anyhow!("binding {what} on {addrs:?} failed: {e}"))?;
    if let Ok(a) = l.local_addr() {
        chring_proxy::log::always(format_args!("{what} listening on {a}"));
    }
    Ok(l)
}

async fn start_surfaces(ctl: Arc<dyn Control>, s: &Surfaces) -> anyhow::Result<Tasks> {
    let mut tasks = Tasks(Vec::new());
    let l = bind("stats port", &s.stats).await?;
    tasks.0.push(tokio::spawn(stats::serve(
        l,
        ctl.clone(),
        s.stats_interval,
        stats::hostname(),
    )));
    if let Some(a) = s.control {
        let l = bind("control port", &[a]).await?;
        tasks.0.push(tokio::spawn(control::serve(
            l,
            ctl.clone(),
            s.token.clone(),
        )));
    }
    if let Some(a) = s.admin {
        let l = bind("admin http", &[a]).await?;
        tasks
            .0
            .push(tokio::spawn(admin::serve(l, ctl, s.token.clone())));
    }
    Ok(tasks)
}

/// The seam to the data path: start the pools, serve the surfaces, wait for
/// a signal, shut down.
async fn run(
    config: ProxyConfig,
    surfaces: Surfaces,
    logger: &'static chring_proxy::log::Logger,
    workers: Vec<tokio::runtime::Handle>,
) -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
        (
            SignalKind::from_raw(nix::sys::signal::Signal::SIGTTIN as i32),
            "SIGTTIN",
        ),
        (
            SignalKind::from_raw(nix::sys::signal::Signal::SIGTTOU as i32),
            "SIGTTOU",
        ),
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
    ];
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(i32, &'static str)>();
    for (kind, name) in kinds {
        match signal(kind) {
            Ok(mut s) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        if tx.send((kind.as_raw_value(), name)).is_err() {
                            return;
                        }
                    }
                });
            }
            Err(e) => {
                log::error!("cannot handle {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    drop(tx);

    let pools = config.pool_names();
    let proxy = match Proxy::start_on(config, workers).await {
        Ok(p) => p,
        Err(e) => {
            let e = format!("{e:#}").replace('\n', " ");
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    chring_proxy::log::always(format_args!(
        "pools {pools:?} listening on {:?}",
        proxy.local_addrs()
    ));
    let ctl: Arc<dyn Control> = proxy.clone();
    let tasks = match start_surfaces(ctl, &surfaces).await {
        Ok(t) => t,
        Err(e) => {
            log::error!("{e:#}");
            proxy.shutdown().await;
            return ExitCode::FAILURE;
        }
    };
    while let Some((no, name)) = rx.recv().await {
        match name {
            "SIGHUP" => {
                chring_proxy::log::always(format_args!(
                    "signal {no} ({name}) received, reopening log file"
                ));
                logger.reopen();
            }
            "SIGTTIN" => {
                chring_proxy::log::always(format_args!(
                    "signal {no} ({name}) received, up logging level"
                ));
                logger.level_up();
            }
            "SIGTTOU" => {
                chring_proxy::log::always(format_args!(
                    "signal {no} ({name}) received, down logging level"
                ));
                logger.level_down();
            }
            "SIGINT" | "SIGTERM" => {
                chring_proxy::log::always(format_args!("signal {no} ({name}) received, exiting"));
                break;
            }
            _ => chring_proxy::log::always(format_args!("signal {no} ({name}) received")),
        }
    }
    drop(tasks);
    proxy.shutdown().await;
    ExitCode::SUCCESS
}
