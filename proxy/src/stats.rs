//! nutcracker's stats port (`-s`, `-a`, `-i`): a client that connects gets one
//! JSON document and the connection is closed; nothing is read from it.
//!
//! The document is nutcracker's, byte for byte in its layout (its
//! `stats_make_rsp`: `"key":value, ` pairs, nested pool and server objects,
//! a trailing newline): the header fields `service`, `source` (the host
//! name), `version`, `uptime` (s), `timestamp` (Unix s), `total_connections`,
//! `curr_connections`, then one object per pool, in configuration order, with
//! the fields of nutcracker's `STATS_POOL_CODEC` followed by one object per
//! server (keyed by its name) with those of `STATS_SERVER_CODEC`. `service`
//! is `chring-proxy` and `version` chring-proxy's.
//!
//! As in nutcracker, pool and server figures are those of the last
//! aggregation, taken every `-i` ms (default 30,000), so they lag by up to
//! that much; the header is computed on connect. `-i 0` aggregates on every
//! connect. `total_connections` counts client connections accepted since
//! start, `curr_connections` the client and server connections open.

use std::fmt::Write as _;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use crate::state::{Control, Snapshot};

/// nutcracker's pool fields (`STATS_POOL_CODEC`), with their descriptions.
pub const POOL_FIELDS: [(&str, &str); 6] = [
    ("client_eof", "# eof on client connections"),
    ("client_err", "# errors on client connections"),
    ("client_connections", "# active client connections"),
    ("server_ejects", "# times backend server was ejected"),
    ("forward_error", "# times we encountered a forwarding error"),
    (
        "fragments",
        "# fragments created from a multi-vector request",
    ),
];

/// nutcracker's server fields (`STATS_SERVER_CODEC`), with their descriptions.
pub const SERVER_FIELDS: [(&str, &str); 13] = [
    ("server_eof", "# eof on server connections"),
    ("server_err", "# errors on server connections"),
    ("server_timedout", "# timeouts on server connections"),
    ("server_connections", "# active server connections"),
    (
        "server_ejected_at",
        "timestamp when server was ejected in usec since epoch",
    ),
    ("requests", "# requests"),
    ("request_bytes", "total request bytes"),
    ("responses", "# responses"),
    ("response_bytes", "total response bytes"),
    ("in_queue", "# requests in incoming queue"),
    ("in_queue_bytes", "current request bytes in incoming queue"),
    ("out_queue", "# requests in outgoing queue"),
    ("out_queue_bytes", "current request bytes in outgoing queue"),
];

/// What `-D` prints after the version (nutcracker's `stats_describe`).
#[must_use]
pub fn describe() -> String {
    let mut s = String::from("pool stats:\n");
    for (name, desc) in POOL_FIELDS {
        let _ = writeln!(s, "  {name:<20}\"{desc}\"");
    }
    s.push_str("\nserver stats:\n");
    for (name, desc) in SERVER_FIELDS {
        let _ = writeln!(s, "  {name:<20}\"{desc}\"");
    }
    s
}

/// nutcracker's stats buffer: the same appends, the same end-of-object fix-ups.
struct Doc(String);

impl Doc {
    fn key(&mut self, key: &str) {
        // serde_json escapes what nutcracker would copy raw (quotes, controls).
        self.0
            .push_str(&serde_json::to_string(key).unwrap_or_else(|_| "\"\"".into()));
    }
    fn string(&mut self, key: &str, val: &str) {
        self.key(key);
        self.0.push(':');
        self.key(val);
        self.0.push_str(", ");
    }
    fn num(&mut self, key: &str, val: u64) {
        self.key(key);
        let _ = write!(self.0, ":{}, ", val.min(i64::MAX as u64));
    }
    fn begin(&mut self, key: &str) {
        self.key(key);
        self.0.push_str(": {");
    }
    /// `stats_end_nesting`: `", "` becomes `"},"`; `"},"` becomes `"}},"`; an
    /// object left empty (`": {"`) is closed as `{},`.
    fn end(&mut self) {
        if self.0.ends_with(", ") {
            self.0.truncate(self.0.len() - 2);
            self.0.push_str("},");
        } else if self.0.ends_with("},") {
            self.0.pop();
            self.0.push_str("},");
        } else {
            self.0.push_str("},");
        }
    }
    /// `stats_add_footer`: the last byte becomes `}`, then a newline.
    fn footer(mut self) -> String {
        self.0.pop();
        self.0.push_str("}\n");
        self.0
    }
}

/// The document for `snap` (the last aggregation), with the header of
/// `now_unix` (s). *O*(pools × servers).
#[must_use]
pub fn render(snap: &Snapshot, source: &str, now_unix: u64) -> String {
    let mut d = Doc(String::from("{"));
    d.string("service", &snap.service);
    d.string("source", source);
    d.string("version", &snap.version);
    d.num("uptime", now_unix.saturating_sub(snap.started_unix));
    d.num("timestamp", now_unix);
    let total: u64 = snap.pools.iter().map(|p| p.client_accepted).sum();
    let curr: u64 = snap
        .pools
        .iter()
        .map(|p| p.client_connections + p.servers.iter().map(|s| s.server_connections).sum::<u64>())
        .sum();
    d.num("total_connections", total);
    d.num("curr_connections", curr);
    for p in &snap.pools {
        d.begin(&p.name);
        for (name, v) in [
            ("client_eof", p.client_eof),
            ("client_err", p.client_err),
            ("client_connections", p.client_connections),
            ("server_ejects", p.server_ejects),
            ("forward_error", p.forward_error),
            ("fragments", p.fragments),
        ] {
            d.num(name, v);
        }
        for s in &p.servers {
            d.begin(&s.name);
            for (name, v) in [
                ("server_eof", s.server_eof),
                ("server_err", s.server_err),
                ("server_timedout", s.server_timedout),
                ("server_connections", s.server_connections),
                ("server_ejected_at", s.server_ejected_at),
                ("requests", s.requests),
                ("request_bytes", s.request_bytes),
                ("responses", s.responses),
                ("response_bytes", s.response_bytes),
                ("in_queue", s.in_queue),
                ("in_queue_bytes", s.in_queue_bytes),
                ("out_queue", s.out_queue),
                ("out_queue_bytes", s.out_queue_bytes),
            ] {
                d.num(name, v);
            }
            d.end();
        }
        d.end();
    }
    d.footer()
}

/// This machine's host name (nutcracker's `source`), `unknown` if it has none.
#[must_use]
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

fn now_unix() -> u64 {
    crate::state::unix_ms() / 1000
}

/// Serves the stats port on `listener` until the future is dropped:
/// aggregates every `interval` (0: on every connect) and answers each
/// connection with [`render`]. A client that does not read is given 5 s,
/// then dropped; it never delays the others.
pub async fn serve(
    listener: TcpListener,
    ctl: Arc<dyn Control>,
    interval: Duration,
    source: String,
) {
    let last = Arc::new(RwLock::new(ctl.snapshot()));
    let source: Arc<str> = source.into();
    let aggregator = (!interval.is_zero()).then(|| {
        let (ctl, last) = (ctl.clone(), last.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let snap = ctl.snapshot();
                *last
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = snap;
            }
        })
    });
    // Stops the aggregator when `serve` is dropped.
    struct AbortOnDrop(Option<tokio::task::JoinHandle<()>>);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            if let Some(h) = &self.0 {
                h.abort();
            }
        }
    }
    let _guard = AbortOnDrop(aggregator);
    loop {
        let (mut sock, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                log::warn!("accept on stats port failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let doc = if interval.is_zero() {
            render(&ctl.snapshot(), &source, now_unix())
        } else {
            let snap = last
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            render(&snap, &source, now_unix())
        };
        log::debug!("send stats to {peer}: {} bytes", doc.len());
        tokio::spawn(async move {
            let send = async {
                sock.write_all(doc.as_bytes()).await?;
                sock.shutdown().await
            };
            if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(5), send).await {
                log::debug!("send stats to {peer} failed: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Health, PoolSnapshot, ServerSnapshot};

    fn server(name: &str, requests: u64) -> ServerSnapshot {
        ServerSnapshot {
            name: name.into(),
            addr: "127.0.0.1:1".into(),
            weight: 1,
            health: Health::Up,
            key_share: 0.5,
            requests,
            server_connections: 1,
            ..Default::default()
        }
    }

    fn pool(name: &str, servers: Vec<ServerSnapshot>) -> PoolSnapshot {
        PoolSnapshot {
            name: name.into(),
            listen: "127.0.0.1:0".into(),
            protocol: "redis".into(),
            distribution: "ketama".into(),
            hash: "fnv1a_64".into(),
            servers,
            client_connections: 2,
            client_accepted: 7,
            ..Default::default()
        }
    }

    /// The exact bytes nutcracker 0.5.0 writes for the same figures (taken
    /// from the real daemon, with its service, version and numbers replaced).
    #[test]
    fn layout_is_nutcrackers_byte_for_byte() {
        let snap = Snapshot {
            service: "nutcracker".into(),
            version: "0.5.0".into(),
            started_unix: 1_796_126_513,
            now_unix_ms: 0,
            pools: vec![pool("beta", vec![server("127.0.0.1:23460", 0)])],
            events: vec![],
        };
        let doc = render(&snap, "vm", 1_796_126_514);
        let server0 = r#"{"server_eof":0, "server_err":0, "server_timedout":0, "server_connections":1, "server_ejected_at":0, "requests":0, "request_bytes":0, "responses":0, "response_bytes":0, "in_queue":0, "in_queue_bytes":0, "out_queue":0, "out_queue_bytes":0}"#;
        let want = format!(
            "{{\"service\":\"nutcracker\", \"source\":\"vm\", \"version\":\"0.5.0\", \"uptime\":1, \"timestamp\":1796126514, \"total_connections\":7, \"curr_connections\":3, \"beta\": {{\"client_eof\":0, \"client_err\":0, \"client_connections\":2, \"server_ejects\":0, \"forward_error\":0, \"fragments\":0, \"127.0.0.1:23460\": {server0}}}}}\n"
        );
        assert_eq!(doc, want);
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["beta"]["127.0.0.1:23460"]["server_connections"], 1);
    }

    #[test]
    fn many_pools_and_an_empty_one_stay_valid_json() {
        let snap = Snapshot {
            service: "chring-proxy".into(),
            version: "0.1.0".into(),
            started_unix: 10,
            now_unix_ms: 0,
            pools: vec![
                pool("a", vec![server("s1", 3), server("s\"2", 4)]),
                pool("empty", vec![]),
            ],
            events: vec![],
        };
        let doc = render(&snap, "host", 15);
        assert!(doc.ends_with("}}\n"), "{doc}");
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v["uptime"], 5);
        assert_eq!(v["a"]["s1"]["requests"], 3);
        assert_eq!(v["a"]["s\"2"]["requests"], 4);
        assert_eq!(v["empty"]["client_connections"], 2);
        assert_eq!(v["total_connections"], 14);
    }

    #[test]
    fn describe_lists_every_field_in_nutcrackers_format() {
        let d = describe();
        assert!(
            d.starts_with("pool stats:\n  client_eof          \"# eof on client connections\"\n")
        );
        assert!(d.contains(
            "\n\nserver stats:\n  server_eof          \"# eof on server connections\"\n"
        ));
        assert!(d.ends_with("  out_queue_bytes     \"current request bytes in outgoing queue\"\n"));
        assert_eq!(
            d.lines().count(),
            2 + 1 + POOL_FIELDS.len() + SERVER_FIELDS.len()
        );
    }
}
