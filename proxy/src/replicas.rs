//! Seed 001's replica operations, shared by admin HTTP (`GET /rep`,
//! `POST /add`, `DELETE /rm`) and the control port (`REP`, `ADD`, `RM`).
//!
//! Written against [`Control`] only, so they work for every pool kind. A
//! batch is all-or-nothing: every hostname is parsed and every change checked
//! ([`Control::moves`] fails exactly as [`Control::apply`] would) before the
//! first one is applied, one [`Control::apply`] per hostname; should an apply
//! still fail (a concurrent change between the check and the apply), the
//! changes already made are undone in reverse order before the error is
//! returned.
//!
//! A hostname to add is `name=host:port[:weight]` or `host:port[:weight]`
//! (the name is then the address); weight 1..=65535, default 1; IPv6 as
//! `[::1]:port`. A hostname to remove is a server name as `/rep` lists it.
//!
//! Seed 001's rules and messages: more hostnames than `n` is refused
//! (`Number of hostnames exceeds number of servers to add` / `... to
//! remove`), so is removing more servers than the pool has (`Cannot remove
//! more servers than available`). Where seed 001 invents the rest (`n` larger
//! than the list: it spawns containers with random names, or removes
//! arbitrary servers), chring-proxy refuses with a message saying so: a proxy
//! cannot start servers, and removing unnamed ones is not an operator's intent.

use std::fmt;

use crate::state::{Change, Control, ControlError, Health};

/// Why a replica operation was refused; `Display` is one line for the
/// operator (seed 001's `message`, the control port's `-ERR` text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// Several pools and none named.
    #[error("this proxy has several pools ({}): name one with ?pool=NAME", .0.join(", "))]
    PoolRequired(Vec<String>),
    /// More hostnames than `n` (seed 001's rule and message).
    #[error("Number of hostnames exceeds number of servers to {}", if *.remove { "remove" } else { "add" })]
    TooManyHostnames {
        /// `true` for `/rm`.
        remove: bool,
    },
    /// `n` larger than the hostname list of an add.
    #[error(
        "n is {n} but {given} hostname(s) given: chring-proxy cannot spawn servers (seed 001 \
         starts containers with random names for the rest), so name every server to add as \
         name=host:port[:weight] or host:port[:weight]"
    )]
    AddUnnamed {
        /// `n`.
        n: u64,
        /// Hostnames given.
        given: usize,
    },
    /// `n` larger than the name list of a remove.
    #[error(
        "n is {n} but {given} hostname(s) given: chring-proxy removes only the servers named \
         (seed 001 removes arbitrary ones for the rest)"
    )]
    RemoveUnnamed {
        /// `n`.
        n: u64,
        /// Names given.
        given: usize,
    },
    /// `n` larger than the pool (seed 001's rule and message).
    #[error("Cannot remove more servers than available (n is {n}, pool '{pool}' has {have})")]
    MoreThanAvailable {
        /// The pool.
        pool: String,
        /// `n`.
        n: u64,
        /// Servers in the pool.
        have: usize,
    },
    /// A hostname that is not `name=host:port[:weight]` / `host:port[:weight]`.
    #[error("bad hostname '{hostname}': {reason}")]
    BadHostname {
        /// The hostname as given.
        hostname: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same server named twice in one request.
    #[error("server '{0}' named twice")]
    Repeated(String),
    /// The data path refused a change (unknown pool or server, duplicate,
    /// pool full, placement).
    #[error("{0}")]
    Control(#[from] ControlError),
}

/// A hostname to add, parsed: `name=host:port[:weight]` or
/// `host:port[:weight]`; borrows from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostSpec<'a> {
    /// The server's name (the address when none is given).
    pub name: &'a str,
    /// `host:port`.
    pub addr: &'a str,
    /// The weight, if given.
    pub weight: Option<u32>,
}

impl<'a> HostSpec<'a> {
    /// Parses one hostname. *O*(length), no allocation on success.
    ///
    /// # Errors
    /// [`ReplicaError::BadHostname`] naming the part that is wrong.
    pub fn parse(s: &'a str) -> Result<Self, ReplicaError> {
        let bad = |reason| ReplicaError::BadHostname {
            hostname: s.to_owned(),
            reason,
        };
        let (name, rest) = match s.split_once('=') {
            Some((n, r)) => (Some(n), r),
            None => (None, s),
        };
        let (addr, weight) = if crate::control::address(rest).is_ok() && !rest.starts_with('/') {
            (rest, None)
        } else {
            let (a, w) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("expected name=host:port[:weight] or host:port[:weight]"))?;
            if crate::control::address(a).is_err() || a.starts_with('/') {
                return Err(bad(
                    "bad address: expected host:port (port 1..65535, IPv6 as [::1]:port)",
                ));
            }
            let w = crate::control::weight(w).map_err(|_| bad("bad weight: expected 1..65535"))?;
            (a, Some(w))
        };
        let name = name.unwrap_or(addr);
        if crate::control::name(name).is_err() {
            return Err(bad(
                "bad name: 1..255 bytes, no whitespace or control characters",
            ));
        }
        Ok(HostSpec { name, addr, weight })
    }
}

/// One replica as `/rep` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Replica {
    /// Its name.
    pub name: String,
    /// `host:port`.
    pub addr: String,
    /// Its weight.
    pub weight: u32,
    /// Its health now.
    pub health: Health,
}

/// A pool's replicas (seed 001's `/rep`), and what the operation moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Replicas {
    /// The pool.
    pub pool: String,
    /// Its servers, in configuration order (added ones last).
    pub replicas: Vec<Replica>,
    /// For `/add` and `/rm`: the fraction of the key space each change moved,
    /// in the order of the hostnames (empty for `/rep`).
    pub moved: Vec<f64>,
}

/// The word for a health: `up`, `down` or `ejected`.
#[must_use]
pub fn health_word(h: Health) -> &'static str {
    match h {
        Health::Up => "up",
        Health::Down => "down",
        Health::Ejected { .. } => "ejected",
    }
}

impl Replicas {
    /// Seed 001's answer: `{"message": {"N": n, "replicas": [names], ...},
    /// "status": "successful"}`, with chring-proxy's extra fields in
    /// `message`: `pool`, `health` (name -> `up` | `down` | `ejected`),
    /// `servers` (name, addr, weight, health, in order) and, after `/add` or
    /// `/rm`, `moved` (the fraction of the key space each change moved).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        let names: Vec<&str> = self.replicas.iter().map(|r| r.name.as_str()).collect();
        let health: serde_json::Map<String, serde_json::Value> = self
            .replicas
            .iter()
            .map(|r| (r.name.clone(), health_word(r.health).into()))
            .collect();
        let servers: Vec<serde_json::Value> = self
            .replicas
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name, "addr": r.addr, "weight": r.weight,
                    "health": health_word(r.health),
                })
            })
            .collect();
        let mut message = serde_json::json!({
            "N": self.replicas.len(),
            "replicas": names,
            "pool": self.pool,
            "health": health,
            "servers": servers,
        });
        if !self.moved.is_empty() {
            message["moved"] = self.moved.clone().into();
        }
        serde_json::json!({ "message": message, "status": "successful" })
    }
}

impl fmt::Display for Replicas {
    /// The control port's reply: `*N`, then `+NAME HEALTH` per replica.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "*{}\r\n", self.replicas.len())?;
        for r in &self.replicas {
            write!(f, "+{} {}\r\n", r.name, health_word(r.health))?;
        }
        Ok(())
    }
}

/// The pool an operation is about: `pool` when named, else the only pool.
///
/// # Errors
/// [`ReplicaError::PoolRequired`] with several pools and none named;
/// [`ControlError::UnknownPool`] for a name no pool has.
pub fn pool_name(ctl: &dyn Control, pool: Option<&str>) -> Result<String, ReplicaError> {
    let pools = ctl.pools();
    match pool {
        Some(p) if pools.iter().any(|q| q == p) => Ok(p.to_owned()),
        Some(p) => Err(ControlError::UnknownPool(p.to_owned()).into()),
        None if pools.len() == 1 => Ok(pools.into_iter().next().unwrap_or_default()),
        None => Err(ReplicaError::PoolRequired(pools)),
    }
}

/// `pool`'s replicas now. *O*(the snapshot).
///
/// # Errors
/// [`ControlError::UnknownPool`].
pub fn rep(ctl: &dyn Control, pool: &str) -> Result<Replicas, ReplicaError> {
    let snap = ctl.snapshot();
    let p = snap
        .pools
        .into_iter()
        .find(|p| p.name == pool)
        .ok_or_else(|| ControlError::UnknownPool(pool.to_owned()))?;
    Ok(Replicas {
        pool: p.name,
        replicas: p
            .servers
            .into_iter()
            .map(|s| Replica {
                name: s.name,
                addr: s.addr,
                weight: s.weight,
                health: s.health,
            })
            .collect(),
        moved: Vec::new(),
    })
}

/// Checks every change with [`Control::moves`], then applies them one by one;
/// undoes the applied ones if a later one fails.
fn apply_all(
    ctl: &dyn Control,
    pool: &str,
    changes: &[Change],
    undo: impl Fn(&Change) -> Option<Change>,
) -> Result<Vec<f64>, ReplicaError> {
    for c in changes {
        ctl.moves(pool, c)?;
    }
    let mut moved = Vec::with_capacity(changes.len());
    for (i, c) in changes.iter().enumerate() {
        match ctl.apply(pool, c.clone()) {
            Ok(m) => moved.push(m),
            Err(e) => {
                for done in changes.get(..i).unwrap_or(&[]).iter().rev() {
                    if let Some(u) = undo(done) {
                        if let Err(ue) = ctl.apply(pool, u) {
                            log::error!("pool '{pool}': undoing {done:?} failed: {ue}");
                        }
                    }
                }
                return Err(e.into());
            }
        }
    }
    Ok(moved)
}

fn no_repeats<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), ReplicaError> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n) {
            return Err(ReplicaError::Repeated(n.to_owned()));
        }
    }
    Ok(())
}

/// Seed 001's `/add`: adds `n` servers, one per hostname, all or none.
/// Returns the replicas after the change, with the fraction each add moved.
/// *O*(n × a placement build).
///
/// # Errors
/// [`ReplicaError`]: seed 001's rules (module docs), a bad or repeated
/// hostname, or the data path's refusal of any change; nothing changes.
pub fn add(
    ctl: &dyn Control,
    pool: &str,
    n: u64,
    hostnames: &[&str],
) -> Result<Replicas, ReplicaError> {
    let given = hostnames.len();
    if u64::try_from(given).map_or(true, |g| g > n) {
        return Err(ReplicaError::TooManyHostnames { remove: false });
    }
    if u64::try_from(given).is_ok_and(|g| g < n) {
        return Err(ReplicaError::AddUnnamed { n, given });
    }
    let specs = hostnames
        .iter()
        .map(|h| HostSpec::parse(h))
        .collect::<Result<Vec<_>, _>>()?;
    no_repeats(specs.iter().map(|s| s.name))?;
    rep(ctl, pool)?;
    let changes: Vec<Change> = specs
        .iter()
        .map(|s| Change::Add {
            name: s.name.to_owned(),
            addr: s.addr.to_owned(),
            weight: s.weight.unwrap_or(1),
        })
        .collect();
    let moved = apply_all(ctl, pool, &changes, |c| match c {
        Change::Add { name, .. } => Some(Change::Remove { name: name.clone() }),
        Change::Remove { .. } => None,
    })?;
    Ok(Replicas {
        moved,
        ..rep(ctl, pool)?
    })
}

/// Seed 001's `/rm`: removes the `n` servers named, all or none. Returns the
/// replicas after the change, with the fraction each removal moved.
/// *O*(n × a placement build).
///
/// # Errors
/// [`ReplicaError`]: seed 001's rules (module docs), a repeated name, an
/// unknown server or the data path's refusal of any change; nothing changes.
pub fn remove(
    ctl: &dyn Control,
    pool: &str,
    n: u64,
    names: &[&str],
) -> Result<Replicas, ReplicaError> {
    let before = rep(ctl, pool)?;
    let have = before.replicas.len();
    if u64::try_from(have).is_ok_and(|h| n > h) {
        return Err(ReplicaError::MoreThanAvailable {
            pool: pool.to_owned(),
            n,
            have,
        });
    }
    let given = names.len();
    if u64::try_from(given).map_or(true, |g| g > n) {
        return Err(ReplicaError::TooManyHostnames { remove: true });
    }
    if u64::try_from(given).is_ok_and(|g| g < n) {
        return Err(ReplicaError::RemoveUnnamed { n, given });
    }
    no_repeats(names.iter().copied())?;
    let changes: Vec<Change> = names
        .iter()
        .map(|n| Change::Remove {
            name: (*n).to_owned(),
        })
        .collect();
    let moved = apply_all(ctl, pool, &changes, |c| match c {
        Change::Remove { name } => {
            before
                .replicas
                .iter()
                .find(|r| r.name == *name)
                .map(|r| Change::Add {
                    name: r.name.clone(),
                    addr: r.addr.clone(),
                    weight: r.weight,
                })
        }
        Change::Add { .. } => None,
    })?;
    Ok(Replicas {
        moved,
        ..rep(ctl, pool)?
    })
}

/// A small in-memory fleet for the unit tests of this module and the
/// control port: pools of (name, addr, weight), at most `cap` servers each,
/// and every `apply` counted.
#[cfg(test)]
pub(crate) mod test_fleet {
    use std::sync::Mutex;

    use crate::state::{
        Change, Control, ControlError, Health, PoolSnapshot, ServerSnapshot, Snapshot,
    };

    type Servers = Vec<(String, String, u32)>;

    pub(crate) struct Fleet {
        pub(crate) pools: Mutex<Vec<(String, Servers)>>,
        pub(crate) cap: usize,
        pub(crate) applied: Mutex<u64>,
    }

    impl Fleet {
        pub(crate) fn new(pools: &[(&str, usize)], cap: usize) -> Fleet {
            Fleet {
                pools: Mutex::new(
                    pools
                        .iter()
                        .map(|&(p, n)| {
                            let s = (1..=n)
                                .map(|i| (format!("s{i}"), format!("127.0.0.1:{}", 7000 + i), 1))
                                .collect();
                            (p.to_owned(), s)
                        })
                        .collect(),
                ),
                cap,
                applied: Mutex::new(0),
            }
        }

        pub(crate) fn names(&self, pool: &str) -> Vec<String> {
            let pools = self.pools.lock().unwrap();
            let (_, s) = pools.iter().find(|(n, _)| n == pool).unwrap();
            s.iter().map(|(n, _, _)| n.clone()).collect()
        }

        /// `check` only: as `apply` would fail.
        fn change(&self, pool: &str, c: &Change, apply: bool) -> Result<f64, ControlError> {
            let mut pools = self.pools.lock().unwrap();
            let (_, s) = pools
                .iter_mut()
                .find(|(n, _)| n == pool)
                .ok_or_else(|| ControlError::UnknownPool(pool.into()))?;
            let moved = 1.0 / (s.len() + 1) as f64;
            match c {
                Change::Add { name, addr, weight } => {
                    if s.iter().any(|(n, _, _)| n == name) {
                        return Err(ControlError::Duplicate {
                            pool: pool.into(),
                            server: name.clone(),
                        });
                    }
                    if s.len() >= self.cap {
                        return Err(ControlError::Full {
                            pool: pool.into(),
                            max: self.cap,
                        });
                    }
                    if apply {
                        s.push((name.clone(), addr.clone(), *weight));
                    }
                }
                Change::Remove { name } => {
                    let i = s.iter().position(|(n, _, _)| n == name).ok_or_else(|| {
                        ControlError::UnknownServer {
                            pool: pool.into(),
                            server: name.clone(),
                        }
                    })?;
                    if apply {
                        s.remove(i);
                    }
                }
            }
            if apply {
                *self.applied.lock().unwrap() += 1;
            }
            Ok(moved)
        }
    }

    impl Control for Fleet {
        fn apply(&self, pool: &str, change: Change) -> Result<f64, ControlError> {
            self.change(pool, &change, true)
        }
        fn moves(&self, pool: &str, change: &Change) -> Result<f64, ControlError> {
            self.change(pool, change, false)
        }
        fn set_up(&self, _: &str, _: &str, _: bool) -> Result<(), ControlError> {
            Ok(())
        }
        fn route(&self, _: &str, _: &[u8]) -> Result<Option<String>, ControlError> {
            Ok(None)
        }
        fn pools(&self) -> Vec<String> {
            self.pools
                .lock()
                .unwrap()
                .iter()
                .map(|(n, _)| n.clone())
                .collect()
        }
        fn snapshot(&self) -> Snapshot {
            let pools = self.pools.lock().unwrap();
            Snapshot {
                service: "test".into(),
                version: "0".into(),
                started_unix: 0,
                now_unix_ms: 0,
                pools: pools
                    .iter()
                    .map(|(p, s)| PoolSnapshot {
                        name: p.clone(),
                        listen: String::new(),
                        protocol: "redis".into(),
                        distribution: "ketama".into(),
                        hash: "fnv1a_64".into(),
                        servers: s
                            .iter()
                            .map(|(n, a, w)| ServerSnapshot {
                                name: n.clone(),
                                addr: a.clone(),
                                weight: *w,
                                health: if n == "s2" { Health::Down } else { Health::Up },
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                events: Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_fleet::Fleet;
    use super::*;

    #[test]
    fn rep_is_seed_001s_answer_with_health() {
        let f = Fleet::new(&[("cache", 3)], 8);
        let r = rep(&f, "cache").unwrap();
        assert_eq!(
            r.to_json(),
            serde_json::json!({
                "message": {
                    "N": 3,
                    "replicas": ["s1", "s2", "s3"],
                    "pool": "cache",
                    "health": {"s1": "up", "s2": "down", "s3": "up"},
                    "servers": [
                        {"name": "s1", "addr": "127.0.0.1:7001", "weight": 1, "health": "up"},
                        {"name": "s2", "addr": "127.0.0.1:7002", "weight": 1, "health": "down"},
                        {"name": "s3", "addr": "127.0.0.1:7003", "weight": 1, "health": "up"},
                    ],
                },
                "status": "successful",
            })
        );
        assert_eq!(r.to_string(), "*3\r\n+s1 up\r\n+s2 down\r\n+s3 up\r\n");
    }

    #[test]
    fn pools_are_named_when_there_are_several() {
        let one = Fleet::new(&[("cache", 1)], 8);
        assert_eq!(pool_name(&one, None).unwrap(), "cache");
        let two = Fleet::new(&[("cache", 1), ("web", 1)], 8);
        assert_eq!(pool_name(&two, Some("web")).unwrap(), "web");
        assert_eq!(
            pool_name(&two, None).unwrap_err().to_string(),
            "this proxy has several pools (cache, web): name one with ?pool=NAME"
        );
        assert_eq!(
            pool_name(&two, Some("nope")).unwrap_err().to_string(),
            "no pool 'nope'"
        );
    }

    #[test]
    fn add_and_remove_apply_one_change_per_hostname() {
        let f = Fleet::new(&[("cache", 2)], 8);
        let r = add(&f, "cache", 2, &["s3=127.0.0.1:7003:2", "127.0.0.1:7004"]).unwrap();
        assert_eq!(f.names("cache"), ["s1", "s2", "s3", "127.0.0.1:7004"]);
        assert_eq!(r.replicas.len(), 4);
        assert_eq!(r.replicas[2].weight, 2);
        assert_eq!(r.moved, [1.0 / 3.0, 1.0 / 4.0]);
        assert_eq!(*f.applied.lock().unwrap(), 2);
        let r = remove(&f, "cache", 2, &["s1", "127.0.0.1:7004"]).unwrap();
        assert_eq!(f.names("cache"), ["s2", "s3"]);
        assert_eq!(r.moved.len(), 2);
        // n = 0 and no hostname: nothing to do, the replicas as they are.
        assert_eq!(add(&f, "cache", 0, &[]).unwrap().replicas.len(), 2);
    }

    #[test]
    fn seed_001s_rules_and_messages() {
        let f = Fleet::new(&[("cache", 3)], 8);
        let e = |r: Result<Replicas, ReplicaError>| r.unwrap_err().to_string();
        assert_eq!(
            e(add(&f, "cache", 1, &["a=h:1", "b=h:2"])),
            "Number of hostnames exceeds number of servers to add"
        );
        assert_eq!(
            e(remove(&f, "cache", 1, &["s1", "s2"])),
            "Number of hostnames exceeds number of servers to remove"
        );
        assert!(
            e(add(&f, "cache", 3, &["a=h:1"]))
                .starts_with("n is 3 but 1 hostname(s) given: chring-proxy cannot spawn servers")
        );
        assert!(
            e(remove(&f, "cache", 2, &["s1"]))
                .starts_with("n is 2 but 1 hostname(s) given: chring-proxy removes only")
        );
        assert_eq!(
            e(remove(&f, "cache", 4, &["s1"])),
            "Cannot remove more servers than available (n is 4, pool 'cache' has 3)"
        );
        assert_eq!(
            e(remove(&f, "cache", 1, &["nope"])),
            "no server 'nope' in pool 'cache'"
        );
        assert_eq!(
            e(add(&f, "cache", 2, &["a=h:1", "a=h:2"])),
            "server 'a' named twice"
        );
        assert_eq!(
            e(remove(&f, "cache", 2, &["s1", "s1"])),
            "server 's1' named twice"
        );
        assert_eq!(
            e(add(&f, "cache", 1, &["s1=h:1"])),
            "server 's1' is already in pool 'cache'"
        );
        assert_eq!(e(add(&f, "nope", 1, &["a=h:1"])), "no pool 'nope'");
        assert_eq!(f.names("cache"), ["s1", "s2", "s3"]);
        assert_eq!(*f.applied.lock().unwrap(), 0);
    }

    #[test]
    fn a_batch_is_all_or_nothing() {
        // Checked first: the bad one is the last, nothing is applied.
        let f = Fleet::new(&[("cache", 2)], 8);
        assert!(add(&f, "cache", 3, &["a=h:1", "b=h:2", "s2=h:3"]).is_err());
        assert!(remove(&f, "cache", 2, &["s1", "nope"]).is_err());
        assert_eq!(*f.applied.lock().unwrap(), 0);
        // A failure only the apply sees (the pool fills up on the way): the
        // adds already made are undone.
        let f = Fleet::new(&[("cache", 2)], 3);
        let e = add(&f, "cache", 2, &["a=h:1", "b=h:2"]).unwrap_err();
        assert_eq!(e.to_string(), "pool 'cache' is full (3 servers)");
        assert_eq!(f.names("cache"), ["s1", "s2"]);
        assert_eq!(*f.applied.lock().unwrap(), 2, "one add, one undo");
    }

    fn spec(s: &str) -> Result<(String, String, Option<u32>), String> {
        HostSpec::parse(s)
            .map(|h| (h.name.to_owned(), h.addr.to_owned(), h.weight))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn hostnames_parse_with_and_without_name_and_weight() {
        let t = |n: &str, a: &str, w| Ok((n.to_owned(), a.to_owned(), w));
        assert_eq!(
            spec("127.0.0.1:6379"),
            t("127.0.0.1:6379", "127.0.0.1:6379", None)
        );
        assert_eq!(
            spec("127.0.0.1:6379:3"),
            t("127.0.0.1:6379", "127.0.0.1:6379", Some(3))
        );
        assert_eq!(spec("s4=10.0.0.4:11211"), t("s4", "10.0.0.4:11211", None));
        assert_eq!(
            spec("server4=cache-4.local:11211:2"),
            t("server4", "cache-4.local:11211", Some(2))
        );
        assert_eq!(spec("v6=[::1]:6379:7"), t("v6", "[::1]:6379", Some(7)));
        assert_eq!(spec("[::1]:6379"), t("[::1]:6379", "[::1]:6379", None));
    }

    #[test]
    fn bad_hostnames_say_what_is_wrong() {
        for (h, why) in [
            ("server4", "expected name=host:port"),
            ("s=server4", "expected name=host:port"),
            ("s=h:0", "bad address"),
            ("s=h:70000", "bad address"),
            ("s=h:1:0", "bad weight"),
            ("s=h:1:65536", "bad weight"),
            ("s=h:1:x", "bad weight"),
            ("s=:1", "bad address"),
            ("=h:1", "bad name"),
            ("a\u{1}b=h:1", "bad name"),
            ("s=/tmp/sock", "expected name=host:port"),
            ("", "expected name=host:port"),
        ] {
            let e = spec(h).unwrap_err();
            assert!(
                e.starts_with(&format!("bad hostname '{h}': {why}")),
                "{h:?}: {e}"
            );
        }
    }
}
