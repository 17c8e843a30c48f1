//! A pool: its servers, its placement (swapped atomically on every fleet or
//! health change), its counters, and its health task.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::backend::{Server, ServerSpec, Settings};
use crate::config::{Limits, Mode, PoolConfig};
use crate::placement::{LoadGuard, Member, Placement};
use crate::state::{
    Change, ControlError, Event, Health, PoolSnapshot, PoolStats, ServerSnapshot, unix_ms,
};

/// Events kept for snapshots.
const MAX_EVENTS: usize = 256;

/// The proxy's recent events, shared by its pools.
pub type Events = Arc<Mutex<VecDeque<Event>>>;

/// Where keys go now.
#[derive(Debug)]
pub struct Routing {
    /// Every server (configuration order, added ones last).
    pub servers: Vec<Arc<Server>>,
    /// The placement of all of them (MOVES, key shares).
    pub full: Arc<Placement>,
    /// The placement requests use (health applied).
    pub live: Arc<Placement>,
    /// `live` member index -> index in `servers`.
    pub live_map: Vec<usize>,
}

/// One pool.
#[derive(Debug)]
pub struct Pool {
    /// Its configuration.
    pub cfg: PoolConfig,
    /// Limits.
    pub limits: Limits,
    /// Counters.
    pub stats: PoolStats,
    routing: ArcSwap<Routing>,
    settings: Arc<Settings>,
    change: Mutex<()>,
    events: Events,
    /// Woken when a server is ejected.
    pub health_changed: Arc<Notify>,
    rt: tokio::runtime::Handle,
}

/// A server of a pool in `mode`: cache pools' servers get their connection
/// tasks, tcp/http pools' servers none (those modes connect per client).
fn make_server(
    rt: &tokio::runtime::Handle,
    mode: Mode,
    spec: ServerSpec,
    settings: Arc<Settings>,
    health_changed: Arc<Notify>,
    preconnect: bool,
) -> Arc<Server> {
    match mode {
        Mode::Cache => Server::spawn(rt, spec, settings, health_changed, preconnect),
        Mode::Tcp | Mode::Http => Server::detached(spec, settings, health_changed),
    }
}

fn members(servers: &[Arc<Server>]) -> Vec<Member> {
    servers
        .iter()
        .map(|s| Member {
            identity: s.identity.clone(),
            weight: s.weight,
        })
        .collect()
}

impl Pool {
    /// Builds the pool and its servers (connection tasks on `rt`).
    ///
    /// # Errors
    /// The placement refused the servers.
    pub fn new(
        cfg: PoolConfig,
        limits: Limits,
        events: Events,
        rt: tokio::runtime::Handle,
    ) -> anyhow::Result<Arc<Pool>> {
        let settings = Arc::new(Settings {
            redis: cfg.redis,
            auth: cfg.redis_auth.clone(),
            db: cfg.redis_db,
            timeout: cfg.timeout_ms.map(Duration::from_millis),
            connect_timeout: Duration::from_millis(limits.connect_timeout_ms),
            auto_eject: cfg.auto_eject_hosts,
            failure_limit: cfg.server_failure_limit,
            retry_timeout: Duration::from_millis(cfg.server_retry_timeout_ms),
            connections: usize::try_from(cfg.server_connections).unwrap_or(1),
        });
        let health_changed = Arc::new(Notify::new());
        let servers: Vec<Arc<Server>> = cfg
            .servers
            .iter()
            .map(|s| {
                make_server(
                    &rt,
                    cfg.mode,
                    ServerSpec {
                        name: s.label.clone(),
                        addr: s.addr.clone(),
                        weight: s.weight,
                        identity: s.identity.clone(),
                    },
                    settings.clone(),
                    health_changed.clone(),
                    cfg.preconnect,
                )
            })
            .collect();
        let full = Placement::build(cfg.distribution, cfg.hash, cfg.hash_tag, members(&servers))
            .map_err(|e| anyhow::anyhow!("pool '{}': {e}", cfg.name))?;
        let routing = Self::routing(&cfg, servers, Arc::new(full))
            .map_err(|e| anyhow::anyhow!("pool '{}': {e}", cfg.name))?;
        Ok(Arc::new(Pool {
            cfg,
            limits,
            stats: PoolStats::default(),
            routing: ArcSwap::from_pointee(routing),
            settings,
            change: Mutex::new(()),
            events,
            health_changed,
            rt,
        }))
    }

    /// The routing of `servers` given their health now.
    fn routing(
        cfg: &PoolConfig,
        servers: Vec<Arc<Server>>,
        full: Arc<Placement>,
    ) -> Result<Routing, String> {
        let ups: Vec<bool> = servers.iter().map(|s| s.is_live()).collect();
        let (live, live_map) = Self::placement_of(cfg, &servers, &full, &ups)?;
        Ok(Routing {
            servers,
            full,
            live,
            live_map,
        })
    }

    /// The placement of the servers with `ups[i]` (the health fallback of
    /// the distribution applied), and its member index -> server index map.
    fn placement_of(
        cfg: &PoolConfig,
        servers: &[Arc<Server>],
        full: &Arc<Placement>,
        ups: &[bool],
    ) -> Result<(Arc<Placement>, Vec<usize>), String> {
        let live_idx: Vec<usize> = (0..servers.len())
            .filter(|&i| ups.get(i).copied().unwrap_or(false))
            .collect();
        Ok(if live_idx.len() == servers.len() {
            (full.clone(), live_idx)
        } else if Placement::rebuilds_on_failure(cfg.distribution) {
            let live_servers: Vec<Arc<Server>> =
                live_idx.iter().map(|&i| servers[i].clone()).collect();
            let p = Placement::build(
                cfg.distribution,
                cfg.hash,
                cfg.hash_tag,
                members(&live_servers),
            )?;
            (Arc::new(p), live_idx)
        } else {
            (Arc::new(full.with_up(ups)?), (0..servers.len()).collect())
        })
    }

    /// The routing now.
    #[must_use]
    pub fn current(&self) -> Arc<Routing> {
        self.routing.load_full()
    }

    /// The server for `key` (health considered), with bounded loads' guard.
    #[must_use]
    pub fn route(&self, key: &[u8]) -> Option<(Arc<Server>, Option<LoadGuard>)> {
        let r = self.routing.load();
        let (i, guard) = r.live.pick(key)?;
        let s = r.servers.get(*r.live_map.get(i)?)?.clone();
        if s.is_live() {
            return Some((s, guard));
        }
        // Ejected or marked down since the routing was built: rebuild it now
        // rather than wait for the health task.
        drop((guard, r));
        self.refresh();
        let r = self.routing.load();
        let (i, guard) = r.live.pick(key)?;
        let s = r.servers.get(*r.live_map.get(i)?)?.clone();
        Some((s, guard))
    }

    /// The next choice for `key` after the servers of `avoid` failed (tcp
    /// and http pools retry on it); [`Pool::route`] when `avoid` is empty.
    /// Keyed distributions: the placement of the live servers with the
    /// avoided ones down as well (built here: one placement build per call);
    /// the ring and rendezvous (one server avoided) answer from the full
    /// placement without building one ([`Placement::pick_among`]);
    /// unkeyed ones: picks from the pool's live placement (its load
    /// accounting sees the request), skipping avoided servers, then the first
    /// live one not avoided. `None` when no live server is left.
    #[must_use]
    pub fn route_avoiding(
        &self,
        key: &[u8],
        avoid: &[Arc<Server>],
    ) -> Option<(Arc<Server>, Option<LoadGuard>)> {
        if avoid.is_empty() {
            return self.route(key);
        }
        let r = self.routing.load_full();
        let usable = |s: &Arc<Server>| s.is_live() && !avoid.iter().any(|a| Arc::ptr_eq(a, s));
        if !r.live.is_keyed() {
            for _ in 0..r.servers.len().saturating_mul(2).saturating_add(2) {
                let (i, guard) = r.live.pick(key)?;
                let s = r.servers.get(*r.live_map.get(i)?)?;
                if usable(s) {
                    return Some((s.clone(), guard));
                }
            }
            return r
                .servers
                .iter()
                .find(|s| usable(s))
                .map(|s| (s.clone(), None));
        }
        let ups: Vec<bool> = r.servers.iter().map(usable).collect();
        if !ups.contains(&true) {
            return None;
        }
        // The ring and rendezvous answer without building a placement.
        if let Some(i) = r
            .full
            .pick_among(key, |i| ups.get(i).copied().unwrap_or(false))
        {
            return r
                .servers
                .get(i?)
                .filter(|s| usable(s))
                .map(|s| (s.clone(), None));
        }
        let (p, map) = match Self::placement_of(&self.cfg, &r.servers, &r.full, &ups) {
            Ok(x) => x,
            Err(e) => {
                log::error!(
                    "pool '{}': cannot build the retry placement: {e}",
                    self.cfg.name
                );
                return None;
            }
        };
        let (i, guard) = p.pick(key)?;
        let s = r.servers.get(*map.get(i)?)?;
        usable(s).then(|| (s.clone(), guard))
    }

    /// Every live server (KEYS fans out to them).
    #[must_use]
    pub fn live_servers(&self) -> Vec<Arc<Server>> {
        let r = self.routing.load();
        r.live_map
            .iter()
            .filter_map(|&i| r.servers.get(i))
            .filter(|s| s.is_live())
            .cloned()
            .collect()
    }

    /// Records an event (`ejected`, `readmitted`, ...) of `server`, as the
    /// control surfaces show them.
    pub fn record_event(&self, server: &str, kind: &str) {
        self.event(server, kind, None);
    }

    /// Rebuilds the live placement after a health change.
    pub fn refresh(&self) {
        let _g = self
            .change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = self.routing.load_full();
        match Self::routing(&self.cfg, r.servers.clone(), r.full.clone()) {
            Ok(n) => self.routing.store(Arc::new(n)),
            Err(e) => log::error!("pool '{}': cannot rebuild routing: {e}", self.cfg.name),
        }
    }

    fn event(&self, server: &str, kind: &str, moved: Option<f64>) {
        let mut ev = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if ev.len() >= MAX_EVENTS {
            ev.pop_front();
        }
        ev.push_back(Event {
            at_unix_ms: unix_ms(),
            pool: self.cfg.name.clone(),
            server: server.to_string(),
            kind: kind.to_string(),
            moved,
        });
    }

    /// The server list after `change`, and the placement of it.
    fn changed(
        &self,
        r: &Routing,
        change: &Change,
    ) -> Result<(Vec<Arc<Server>>, Placement), ControlError> {
        let pool = self.cfg.name.clone();
        let mut servers = r.servers.clone();
        match change {
            Change::Add { name, addr, weight } => {
                self.check_add(r, change)?;
                servers.push(make_server(
                    &self.rt,
                    self.cfg.mode,
                    ServerSpec {
                        name: name.clone(),
                        addr: addr.clone(),
                        weight: *weight,
                        identity: name.as_bytes().to_vec(),
                    },
                    self.settings.clone(),
                    self.health_changed.clone(),
                    self.cfg.preconnect,
                ));
            }
            Change::Remove { name } => {
                let i = servers
                    .iter()
                    .position(|s| s.name == *name)
                    .ok_or_else(|| ControlError::UnknownServer {
                        pool: pool.clone(),
                        server: name.clone(),
                    })?;
                r.full.check_removal(i).map_err(ControlError::Placement)?;
                servers.remove(i);
            }
        }
        let p = Placement::build(
            self.cfg.distribution,
            self.cfg.hash,
            self.cfg.hash_tag,
            members(&servers),
        )
        .map_err(ControlError::Placement)?;
        Ok((servers, p))
    }

    /// [`Control::moves`](crate::state::Control::moves) for this pool.
    ///
    /// # Errors
    /// As [`Pool::apply`].
    pub fn moves(&self, change: &Change) -> Result<f64, ControlError> {
        let r = self.routing.load_full();
        // Price an add without starting its connections.
        let p = match change {
            Change::Add { name, weight, .. } => {
                let mut m = members(&r.servers);
                self.check_add(&r, change)?;
                m.push(Member {
                    identity: name.as_bytes().to_vec(),
                    weight: *weight,
                });
                Placement::build(self.cfg.distribution, self.cfg.hash, self.cfg.hash_tag, m)
                    .map_err(ControlError::Placement)?
            }
            Change::Remove { .. } => self.changed(&r, change)?.1,
        };
        Ok(crate::placement::moves(&r.full, &p))
    }

    fn check_add(&self, r: &Routing, change: &Change) -> Result<(), ControlError> {
        let Change::Add { name, addr, weight } = change else {
            return Ok(());
        };
        let pool = self.cfg.name.clone();
        if name.is_empty()
            || name.len() > crate::placement::MAX_NAME
            || name.contains(char::is_whitespace)
        {
            return Err(ControlError::Invalid(format!("bad server name '{name}'")));
        }
        if *weight == 0 {
            return Err(ControlError::Invalid("weight must be at least 1".into()));
        }
        if addr
            .rsplit_once(':')
            .and_then(|(h, p)| (!h.is_empty()).then(|| p.parse::<u16>().ok()).flatten())
            .is_none()
        {
            return Err(ControlError::Invalid(format!(
                "bad address '{addr}' (host:port)"
            )));
        }
        if r.servers
            .iter()
            .any(|s| s.name == *name || s.identity == name.as_bytes())
        {
            return Err(ControlError::Duplicate {
                pool,
                server: name.clone(),
            });
        }
        if r.servers.len() >= crate::placement::MAX_SERVERS {
            return Err(ControlError::Full {
                pool,
                max: crate::placement::MAX_SERVERS,
            });
        }
        Ok(())
    }

    /// [`Control::apply`](crate::state::Control::apply) for this pool.
    ///
    /// # Errors
    /// [`ControlError`]; nothing changes on error.
    pub fn apply(&self, change: Change) -> Result<f64, ControlError> {
        let _g = self
            .change
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let r = self.routing.load_full();
        let (servers, p) = self.changed(&r, &change)?;
        let moved = crate::placement::moves(&r.full, &p);
        let n = Self::routing(&self.cfg, servers, Arc::new(p)).map_err(ControlError::Placement)?;
        self.routing.store(Arc::new(n));
        let (server, kind) = match &change {
            Change::Add { name, .. } => (name.clone(), "added"),
            Change::Remove { name } => (name.clone(), "removed"),
        };
        log::info!(
            "pool '{}': {kind} {server}, {:.4} of the keys moved",
            self.cfg.name,
            moved
        );
        self.event(&server, kind, Some(moved));
        Ok(moved)
    }

    /// [`Control::set_up`](crate::state::Control::set_up) for this pool.
    ///
    /// # Errors
    /// [`ControlError::UnknownServer`].
    pub fn set_up(&self, server: &str, up: bool) -> Result<(), ControlError> {
        let r = self.routing.load_full();
        let s = r.servers.iter().find(|s| s.name == server).ok_or_else(|| {
            ControlError::UnknownServer {
                pool: self.cfg.name.clone(),
                server: server.to_string(),
            }
        })?;
        if s.set_down(!up) {
            self.refresh();
            self.event(server, if up { "up" } else { "down" }, None);
        }
        Ok(())
    }

    /// The name of the server `key` routes to now.
    #[must_use]
    pub fn route_name(&self, key: &[u8]) -> Option<String> {
        let r = self.routing.load();
        let i = r.live.lookup(key)?;
        r.servers.get(*r.live_map.get(i)?).map(|s| s.name.clone())
    }

    /// A snapshot of the pool.
    #[must_use]
    pub fn snapshot(&self) -> PoolSnapshot {
        let r = self.routing.load_full();
        let shares = r.full.shares();
        let ring = r.full.sectors(crate::state::RING_SECTORS);
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
        let servers = r
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let st = &s.stats;
                let health = if s.is_down() {
                    Health::Down
                } else if let Some(t) = s.ejected_until() {
                    Health::Ejected {
                        retry_at_unix_ms: t,
                    }
                } else {
                    Health::Up
                };
                let latency = st
                    .latency
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .iter()
                    .map(|(k, h)| (k.clone(), h.snapshot()))
                    .collect();
                ServerSnapshot {
                    name: s.name.clone(),
                    addr: s.addr.clone(),
                    weight: s.weight,
                    health,
                    key_share: shares.get(i).copied().unwrap_or(0.0),
                    requests: g(&st.requests),
                    request_bytes: g(&st.request_bytes),
                    responses: g(&st.responses),
                    response_bytes: g(&st.response_bytes),
                    server_eof: g(&st.server_eof),
                    server_err: g(&st.server_err),
                    server_timedout: g(&st.server_timedout),
                    server_connections: g(&st.server_connections),
                    server_ejected_at: g(&st.server_ejected_at),
                    ejections: g(&st.ejections),
                    in_queue: g(&st.in_queue),
                    in_queue_bytes: g(&st.in_queue_bytes),
                    out_queue: g(&st.out_queue),
                    out_queue_bytes: g(&st.out_queue_bytes),
                    latency,
                    http: self.is_http().then(|| st.http.snapshot()),
                }
            })
            .collect();
        let p = &self.stats;
        PoolSnapshot {
            name: self.cfg.name.clone(),
            listen: self.cfg.listen.clone(),
            protocol: self.cfg.protocol().to_string(),
            distribution: self.cfg.distribution.name().to_string(),
            hash: self.cfg.hash.to_string(),
            servers,
            ring,
            client_eof: g(&p.client_eof),
            client_err: g(&p.client_err),
            client_connections: g(&p.client_connections),
            client_accepted: g(&p.client_accepted),
            server_ejects: r.servers.iter().map(|s| g(&s.stats.ejections)).sum(),
            forward_error: g(&p.forward_error),
            fragments: g(&p.fragments),
            client_bytes_in: g(&p.client_bytes_in),
            client_bytes_out: g(&p.client_bytes_out),
            http: self
                .is_http()
                .then(|| p.http.snapshot(self.cfg.hash_key.to_string())),
        }
    }

    /// `true` for a `mode: http` pool.
    #[must_use]
    pub fn is_http(&self) -> bool {
        self.cfg.mode == chring_config::twemproxy::Mode::Http
    }

    /// The health task: on every ejection and every probe interval, probes
    /// every server (ejected ones once their retry time has come), readmits
    /// the ones that answer, counts failures for the ones that do not, and
    /// rebuilds the routing when the live set changed. Ends when `stop` fires.
    pub async fn health_task(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let every = Duration::from_millis(self.limits.probe_interval_ms.max(10));
        let mut live: Vec<bool> = self.current().servers.iter().map(|s| s.is_live()).collect();
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = self.health_changed.notified() => {}
                _ = stop.changed() => return,
            }
            self.sync_live(&mut live);
            let r = self.current();
            let now = unix_ms();
            let mut probes = Vec::new();
            for s in &r.servers {
                let due = match s.ejected_until() {
                    Some(t) => now >= t,
                    None => !s.is_down(),
                };
                if due {
                    let s = s.clone();
                    probes.push(async move {
                        let ok = s.probe().await;
                        (s, ok)
                    });
                }
            }
            for (s, ok) in futures_join(probes).await {
                match (s.ejected_until().is_some(), ok) {
                    (true, true) => {
                        s.readmit();
                        log::info!("server {} ({}) readmitted", s.name, s.addr);
                        self.event(&s.name, "readmitted", None);
                    }
                    (true, false) => s.extend_ejection(),
                    (false, false) => s.failure(),
                    (false, true) => s.success(),
                }
            }
            self.sync_live(&mut live);
        }
    }

    /// Rebuilds the routing when the live set differs from `live` (ejections
    /// are logged as events), and updates `live`.
    fn sync_live(&self, live: &mut Vec<bool>) {
        let r = self.current();
        let now_live: Vec<bool> = r.servers.iter().map(|s| s.is_live()).collect();
        if now_live != *live {
            if now_live.len() == live.len() {
                for (s, (&was, &is)) in r.servers.iter().zip(live.iter().zip(&now_live)) {
                    if was && !is && s.ejected_until().is_some() {
                        self.event(&s.name, "ejected", None);
                        self.stats.server_ejects.fetch_add(1, Relaxed);
                    }
                }
            }
            self.refresh();
        }
        *live = self.current().servers.iter().map(|s| s.is_live()).collect();
    }
}

/// Awaits every future, concurrently.
async fn futures_join<T: Send + 'static>(
    futs: Vec<impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProxyConfig;

    fn pool(text: &str) -> Arc<Pool> {
        let cfg = ProxyConfig::parse(text).unwrap();
        let p = cfg.pools.into_iter().next().unwrap();
        Pool::new(
            p,
            Limits::default(),
            Events::default(),
            tokio::runtime::Handle::current(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn route_avoiding_gives_the_next_choice() {
        let servers =
            "  servers:\n   - 127.0.0.1:1:1 a\n   - 127.0.0.1:2:1 b\n   - 127.0.0.1:3:1 c\n";
        for d in [
            "ketama",
            "modula",
            "ring",
            "maglev",
            "jump",
            "rendezvous",
            "bounded",
        ] {
            let p = pool(&format!(
                "w:\n  listen: 127.0.0.1:0\n  mode: tcp\n  distribution: {d}\n{servers}"
            ));
            for k in 0..8 {
                let key = format!("10.0.0.{k}");
                let key = key.as_bytes();
                let (first, _) = p.route_avoiding(key, &[]).unwrap();
                // The next choice is where the key goes with the first one down.
                p.set_up(&first.name, false).unwrap();
                let want = p.route_name(key).unwrap();
                p.set_up(&first.name, true).unwrap();
                let (second, _) = p.route_avoiding(key, std::slice::from_ref(&first)).unwrap();
                assert_eq!(second.name, want, "{d} {k}");
                let (third, _) = p
                    .route_avoiding(key, &[first.clone(), second.clone()])
                    .unwrap();
                assert!(third.name != first.name && third.name != second.name, "{d}");
                let all = [first.clone(), second.clone(), third];
                assert!(p.route_avoiding(key, &all).is_none(), "{d}");
            }
        }
        for d in [
            "random",
            "round_robin",
            "p2c",
            "least_conn",
            "peak_ewma",
            "health_score",
        ] {
            let p = pool(&format!(
                "w:\n  listen: 127.0.0.1:0\n  mode: tcp\n  distribution: {d}\n{servers}"
            ));
            let a = p.current().servers[0].clone();
            let b = p.current().servers[1].clone();
            for _ in 0..20 {
                let (s, _) = p.route_avoiding(b"k", &[a.clone(), b.clone()]).unwrap();
                assert_eq!(s.name, "c", "{d}");
                let (s, _) = p.route_avoiding(b"k", std::slice::from_ref(&a)).unwrap();
                assert_ne!(s.name, "a", "{d}");
            }
        }
    }

    #[tokio::test]
    async fn balancer_pools_route_and_control_like_cache_pools() {
        for mode in ["tcp", "http"] {
            let p = pool(&format!(
                "w:\n  listen: 127.0.0.1:0\n  mode: {mode}\n  distribution: ring\n  servers:\n   \
                 - 127.0.0.1:1:1 a\n   - 127.0.0.1:2:1 b\n   - 127.0.0.1:3:1 c\n"
            ));
            let snap = p.snapshot();
            assert_eq!(snap.protocol, mode);
            assert_eq!(snap.servers.len(), 3);
            let share: f64 = snap.servers.iter().map(|s| s.key_share).sum();
            assert!((share - 1.0).abs() < 1e-9, "{share}");
            let key = b"10.1.2.3";
            let first = p.route_name(key).unwrap();
            // No connection tasks: a cache request to such a server fails at once.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (s, _) = p.route(key).unwrap();
            s.send(crate::backend::Job {
                bytes: bytes::Bytes::from_static(b"x"),
                expect: crate::backend::Expect::Resp,
                reply: tx,
                command: "x".into(),
                guard: None,
                hint: 0,
            })
            .await;
            assert!(rx.await.unwrap().is_err());
            // DOWN / UP, ADD / REMOVE and MOVES as for cache pools.
            p.set_up(&first, false).unwrap();
            let other = p.route_name(key).unwrap();
            assert_ne!(other, first);
            p.set_up(&first, true).unwrap();
            assert_eq!(p.route_name(key).unwrap(), first);
            let add = Change::Add {
                name: "d".into(),
                addr: "127.0.0.1:4".into(),
                weight: 1,
            };
            let priced = p.moves(&add).unwrap();
            assert!((priced - p.apply(add).unwrap()).abs() < 1e-12);
            assert_eq!(p.snapshot().servers.len(), 4);
            p.apply(Change::Remove { name: "d".into() }).unwrap();
            assert_eq!(p.route_name(key).unwrap(), first);
            // An ejection by the active checks takes it out of the routing.
            let s = p
                .current()
                .servers
                .iter()
                .find(|s| s.name == first)
                .cloned()
                .unwrap();
            assert!(s.eject_by_check(unix_ms() + 1000));
            assert!(!s.eject_by_check(unix_ms() + 1000));
            p.refresh();
            assert_ne!(p.route_name(key).unwrap(), first);
            assert!(matches!(
                p.snapshot()
                    .servers
                    .iter()
                    .find(|x| x.name == first)
                    .unwrap()
                    .health,
                Health::Ejected { .. }
            ));
            s.readmit();
            p.refresh();
            assert_eq!(p.route_name(key).unwrap(), first);
        }
    }
}
