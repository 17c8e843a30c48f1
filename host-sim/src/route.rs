//! `host-sim route`: where does each key go?
//!
//! Reads a fleet (one `IDENTITY [WEIGHT]` per line) and keys on stdin (one per
//! line), and prints `key,identity` per key, using chring's strategies exactly
//! as a device would: the key's bytes are hashed with [`chring::hash()`], and each
//! backend is added with its identity's bytes as its name.
//!
//! # Backends file
//!
//! One backend per line: its identity (the string hashed as the backend's name,
//! e.g. `10.0.0.7:11211`), then optionally whitespace and an integer weight in
//! `1..=65535` (default 1). Blank lines and lines starting with `#` are ignored,
//! as is anything from a whitespace-preceded `#` on. Backends get ids 0, 1, ...
//! in file order (which matters for jump and modulo, whose slot order is part of
//! the algorithm). Duplicate identities, identities containing a comma (the
//! output is split at its last comma) and more than [`ROUTE_MAX_BACKENDS`]
//! backends are errors, found in one pass that stops at the first of them.
//!
//! # Keys
//!
//! Every line of stdin is one key: its bytes without the final `\n`, and without
//! a `\r` just before it (so files with CRLF line ends give the same keys);
//! any other byte, a lone `\r` included, is part of the key. An empty line is the
//! empty key. The last line needs no newline. Keys are written back unchanged
//! (the identity follows the last comma of the output line).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, bail};
use chring::{BackendId, Jump, Maglev, Modulo, Rendezvous, Ring, RingConfig, Strategy};

use crate::sim::StrategyKind;
use crate::sim::strategy::MAGLEV_TABLE;
use crate::util::on_big_stack;

/// Most backends `route` accepts.
pub const ROUTE_MAX_BACKENDS: usize = 1024;
/// Ring points available to `route` (`vnodes x total weight` must fit).
pub const ROUTE_RING_POINTS: usize = 131_072;
/// Jump buckets available to `route` (total weight must fit).
pub const ROUTE_JUMP_BUCKETS: usize = 65_536;

type RouteRing = Ring<ROUTE_MAX_BACKENDS, ROUTE_RING_POINTS, 32_768>;

pub use crate::error::UsageError;

/// One backend of the fleet file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendLine {
    /// The string hashed as the backend's name.
    pub identity: String,
    /// Its weight, 1..=65535.
    pub weight: u32,
    /// Its line in the file (1-based).
    pub line: usize,
}

/// Parses a backends file (see the [module docs](self)).
///
/// # Errors
/// [`UsageError`] naming the line: bad or zero weight, extra fields, duplicate
/// identity; or an empty fleet.
pub fn parse_backends(text: &str) -> Result<Vec<BackendLine>, UsageError> {
    let mut out: Vec<BackendLine> = Vec::new();
    // Identity -> its line: duplicates in one pass.
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let mut fields = Vec::new();
        for f in raw.split_whitespace() {
            if f.starts_with('#') {
                break;
            }
            fields.push(f);
        }
        let (identity, weight) = match fields.as_slice() {
            [] => continue,
            [id] => (*id, 1),
            [id, w] => {
                let weight = w
                    .parse::<u32>()
                    .ok()
                    .filter(|w| (1..=chring::MAX_WEIGHT).contains(w))
                    .ok_or_else(|| {
                        UsageError(format!(
                            "backends line {line}: bad weight '{w}' for '{id}' (expected an \
                             integer 1..={})",
                            chring::MAX_WEIGHT
                        ))
                    })?;
                (*id, weight)
            }
            [id, _, extra, ..] => {
                return Err(UsageError(format!(
                    "backends line {line}: unexpected '{extra}' after '{id}' (expected \
                     IDENTITY [WEIGHT])"
                )));
            }
        };
        if out.len() == ROUTE_MAX_BACKENDS {
            return Err(UsageError(format!(
                "backends line {line}: more than {ROUTE_MAX_BACKENDS} backends; route supports \
                 at most {ROUTE_MAX_BACKENDS}"
            )));
        }
        if identity.contains(',') {
            return Err(UsageError(format!(
                "backends line {line}: identity '{identity}' contains a comma, which would make \
                 route's `key,backend` output ambiguous"
            )));
        }
        if let Some(first) = seen.insert(identity, line) {
            return Err(UsageError(format!(
                "backends line {line}: duplicate backend '{identity}' (first on line {first})"
            )));
        }
        out.push(BackendLine {
            identity: identity.to_string(),
            weight,
            line,
        });
    }
    if out.is_empty() {
        return Err(UsageError("the backends file lists no backend".into()));
    }
    Ok(out)
}

/// Reads and parses a backends file.
///
/// # Errors
/// [`UsageError`] if it cannot be read or parsed.
pub fn read_backends(path: &Path) -> Result<Vec<BackendLine>, UsageError> {
    let bytes = std::fs::read(path)
        .map_err(|e| UsageError(format!("cannot read backends file {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        UsageError(format!(
            "backends file {} is not valid UTF-8",
            path.display()
        ))
    })?;
    parse_backends(&text)
}

/// Checks that a strategy name routes by key.
///
/// # Errors
/// A message for unknown strategies and for those that are not key-affine.
pub fn parse_route_strategy(name: &str) -> Result<StrategyKind, String> {
    const OK: &str = "ring, maglev, jump, rendezvous, modulo";
    match name.parse::<StrategyKind>() {
        Ok(k) if k.is_key_affine() => Ok(k),
        Ok(k) => Err(format!(
            "strategy '{k}' is not key-affine (it picks by request order or load, not by key), \
             so it cannot route keys; use one of {OK}"
        )),
        Err(_) => Err(format!("unknown strategy '{name}'; use one of {OK}")),
    }
}

pub use chring_config::KeyRouter;

/// Refuses backend names that would make `key,backend` lines ambiguous: a
/// comma (the backend follows the key's last comma), a line break, or an
/// empty name (an empty backend field marks an unrouted key). *O*(total length).
///
/// # Errors
/// [`UsageError`] naming the first such backend.
pub fn check_backend_names(router: &dyn KeyRouter) -> Result<(), UsageError> {
    for name in router.backends() {
        let why = if name.is_empty() {
            "is empty"
        } else if name.contains(',') {
            "contains a comma"
        } else if name.contains(['\n', '\r']) {
            "contains a line break"
        } else {
            continue;
        };
        return Err(UsageError(format!(
            "backend '{}' {why}: route prints `key,backend` lines, split at the last comma",
            name.escape_debug()
        )));
    }
    Ok(())
}

/// What [`route_lines`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RouteSummary {
    /// Keys read (lines of input).
    pub keys: u64,
    /// Keys not routed (each printed as `key,` and reported).
    pub unrouted: u64,
    /// Input line of the first key not routed.
    pub first_unrouted: Option<u64>,
}

/// Some keys were not routed ([`route_lines`] reported each one); `host-sim
/// route` exits with status 3 after printing every line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{unrouted} of {keys} keys not routed (first on line {first_line})")]
pub struct UnroutedKeys {
    /// Keys not routed.
    pub unrouted: u64,
    /// Keys read.
    pub keys: u64,
    /// Input line of the first one.
    pub first_line: u64,
}

impl RouteSummary {
    /// `Err` when some key was not routed.
    ///
    /// # Errors
    /// [`UnroutedKeys`].
    pub fn check(&self) -> Result<(), UnroutedKeys> {
        match self.first_unrouted {
            Some(first_line) if self.unrouted > 0 => Err(UnroutedKeys {
                unrouted: self.unrouted,
                keys: self.keys,
                first_line,
            }),
            _ => Ok(()),
        }
    }
}

/// A chring strategy with the identities of its backends (by id).
pub struct StrategyRouter {
    strategy: Box<dyn Strategy + Send>,
    identities: Vec<String>,
}

impl std::fmt::Debug for StrategyRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrategyRouter")
            .field("strategy", &self.strategy.name())
            .field("backends", &self.identities.len())
            .finish()
    }
}

impl StrategyRouter {
    /// The strategy `kind` (key-affine only) over `backends`, with `vnodes` ring
    /// points per unit of weight; backend `i` of the list gets id `i`.
    ///
    /// # Errors
    /// [`UsageError`] for a strategy that is not key-affine or a fleet beyond the
    /// capacities ([`ROUTE_MAX_BACKENDS`], [`ROUTE_RING_POINTS`],
    /// [`ROUTE_JUMP_BUCKETS`]); a chring error otherwise.
    pub fn new(kind: StrategyKind, vnodes: u32, backends: &[BackendLine]) -> anyhow::Result<Self> {
        parse_route_strategy(kind.name()).map_err(UsageError)?;
        if backends.len() > ROUTE_MAX_BACKENDS {
            bail!(UsageError(format!(
                "route supports at most {ROUTE_MAX_BACKENDS} backends"
            )));
        }
        let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
        match kind {
            StrategyKind::Ring => {
                if vnodes == 0 {
                    bail!(UsageError("--vnodes must be at least 1".into()));
                }
                let points = total * u64::from(vnodes);
                if points > ROUTE_RING_POINTS as u64 {
                    bail!(UsageError(format!(
                        "the ring would need {vnodes} vnodes x total weight {total} = {points} \
                         points, above its capacity of {ROUTE_RING_POINTS}; lower --vnodes or \
                         the weights"
                    )));
                }
            }
            StrategyKind::Jump if total > ROUTE_JUMP_BUCKETS as u64 => {
                bail!(UsageError(format!(
                    "jump needs one bucket per unit of weight: total weight {total} is above its \
                     capacity of {ROUTE_JUMP_BUCKETS}"
                )));
            }
            _ => {}
        }
        // Maglev rebuilds its whole table per `add`: load it in one `add_many`.
        let batch: Vec<(u16, String, u32, usize)> = if kind == StrategyKind::Maglev {
            let ids = (0..=u16::MAX).zip(backends);
            ids.map(|(i, b)| (i, b.identity.clone(), b.weight, b.line))
                .collect()
        } else {
            Vec::new()
        };
        let mut strategy: Box<dyn Strategy + Send> = on_big_stack(move || {
            let s: Box<dyn Strategy + Send> = match kind {
                StrategyKind::Ring => Box::new(
                    RouteRing::new(RingConfig::new(vnodes)).map_err(|e| anyhow::anyhow!("{e}"))?,
                ),
                StrategyKind::Maglev => {
                    let mut m = Box::new(Maglev::<ROUTE_MAX_BACKENDS, MAGLEV_TABLE>::new());
                    let list: Vec<(BackendId, &[u8], u32)> = batch
                        .iter()
                        .map(|(i, name, w, _)| (BackendId(*i), name.as_bytes(), *w))
                        .collect();
                    if let Err(e) = m.add_many(&list) {
                        let (_, name, _, line) = &batch[e.index];
                        return Err(anyhow::Error::new(e.error)
                            .context(format!("backends line {line}: cannot add '{name}'")));
                    }
                    m
                }
                StrategyKind::Jump => {
                    Box::new(Jump::<ROUTE_MAX_BACKENDS, ROUTE_JUMP_BUCKETS>::new())
                }
                StrategyKind::Rendezvous => Box::new(Rendezvous::<ROUTE_MAX_BACKENDS>::new()),
                StrategyKind::Modulo => Box::new(Modulo::<ROUTE_MAX_BACKENDS>::new()),
                other => anyhow::bail!("{other} is not key-affine"),
            };
            Ok(s)
        })??;
        // Maglev's backends were added above, in one batch.
        let one_by_one = if kind == StrategyKind::Maglev {
            &[][..]
        } else {
            backends
        };
        for (i, b) in one_by_one.iter().enumerate() {
            strategy
                .add(BackendId(i as u16), b.identity.as_bytes(), b.weight)
                .with_context(|| {
                    format!("backends line {}: cannot add '{}'", b.line, b.identity)
                })?;
        }
        Ok(Self {
            strategy,
            identities: backends.iter().map(|b| b.identity.clone()).collect(),
        })
    }
}

impl KeyRouter for StrategyRouter {
    fn route(&mut self, key: &[u8]) -> Option<&str> {
        let id = self.strategy.pick(chring::hash(key))?;
        self.identities.get(usize::from(id.0)).map(String::as_str)
    }

    fn backends(&self) -> &[String] {
        &self.identities
    }
}

/// Routes every line of `input` (see the [module docs](self) for how lines
/// become keys) and writes one `key,identity` line per key to `output`, in
/// input order. A key the router does not route is written as `key,` (an empty
/// backend: no identity is empty) and reported on `errors` as
/// `host-sim: key on line N not routed: REASON`; the stream goes on.
/// *O*(keys) time, memory bounded by the longest line.
///
/// # Errors
/// An I/O error. Unrouted keys are not errors here: see
/// [`RouteSummary::check`].
pub fn route_lines(
    router: &mut dyn KeyRouter,
    mut input: impl BufRead,
    mut output: impl Write,
    mut errors: impl Write,
) -> anyhow::Result<RouteSummary> {
    let mut line = Vec::with_capacity(256);
    let mut sum = RouteSummary::default();
    loop {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .context("reading keys from stdin")?
            == 0
        {
            break;
        }
        sum.keys += 1;
        let mut key = line.as_slice();
        if let Some(k) = key.strip_suffix(b"\n") {
            key = k.strip_suffix(b"\r").unwrap_or(k);
        }
        output.write_all(key)?;
        output.write_all(b",")?;
        match router.route(key) {
            Some(backend) => output.write_all(backend.as_bytes())?,
            None => {
                sum.unrouted += 1;
                sum.first_unrouted.get_or_insert(sum.keys);
                let why = router.unrouted(key);
                writeln!(
                    errors,
                    "host-sim: key on line {} not routed: {}",
                    sum.keys,
                    why.replace(['\n', '\r'], " ")
                )?;
            }
        }
        output.write_all(b"\n")?;
    }
    output.flush()?;
    errors.flush()?;
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_file_syntax() {
        let b = parse_backends("# fleet\n\n10.0.0.1:11211\n  10.0.0.2:11211 3 # big\n").unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[1].identity.as_str(), b[1].weight, b[1].line),
            ("10.0.0.2:11211", 3, 4)
        );
        for bad in ["a 0", "a x", "a 65536", "a 1 2", "a\na", "# only\n", ""] {
            let e = parse_backends(bad).unwrap_err().0;
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(parse_backends("a 1 2").unwrap_err().0.contains("line 1"));
        assert!(parse_backends("a\nb\na").unwrap_err().0.contains("line 3"));
    }

    /// Issue 10, part 5: the cap stops the parse at the 1025th backend, and
    /// duplicates are found in one pass.
    #[test]
    fn many_backends_fail_fast() {
        let text: String = (0..1_000_000).map(|i| format!("b{i}\n")).collect();
        let t = std::time::Instant::now();
        let e = parse_backends(&text).unwrap_err().0;
        assert!(e.contains("line 1025") && e.contains("at most 1024"), "{e}");
        assert!(t.elapsed().as_secs() < 5, "{:?}", t.elapsed());
        let mut text: String = (0..1023).map(|i| format!("b{i}\n")).collect();
        text.push_str("b3\n");
        let e = parse_backends(&text).unwrap_err().0;
        assert!(
            e.contains("line 1024") && e.contains("first on line 4"),
            "{e}"
        );
        assert_eq!(parse_backends(&text[..text.len() - 3]).unwrap().len(), 1023);
    }

    /// Issue 10, part 5: `key,identity` is split at the last comma, so an
    /// identity must not hold one.
    #[test]
    fn identities_with_commas_are_refused() {
        let e = parse_backends("a\n10.0.0.1:1,x 2\n").unwrap_err().0;
        assert!(e.contains("line 2") && e.contains("comma"), "{e}");
    }

    #[test]
    fn strategy_names() {
        assert_eq!(parse_route_strategy("ring"), Ok(StrategyKind::Ring));
        assert!(
            parse_route_strategy("round_robin")
                .unwrap_err()
                .contains("not key-affine")
        );
        assert!(
            parse_route_strategy("p2c")
                .unwrap_err()
                .contains("not key-affine")
        );
        assert!(
            parse_route_strategy("bounded")
                .unwrap_err()
                .contains("not key-affine")
        );
        assert!(
            parse_route_strategy("nope")
                .unwrap_err()
                .contains("unknown")
        );
    }

    #[test]
    fn lines_become_keys() {
        let fleet = parse_backends("a\nb\nc").unwrap();
        let mut r = StrategyRouter::new(StrategyKind::Rendezvous, 100, &fleet).unwrap();
        let mut out = Vec::new();
        let n = route_lines(&mut r, &b"k1\r\nk2\n\nk\r3"[..], &mut out, std::io::sink()).unwrap();
        assert_eq!(n.keys, 4);
        assert_eq!(n.check(), Ok(()));
        let text = String::from_utf8(out).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .map(|l| l.rsplit_once(',').unwrap().0)
            .collect();
        assert_eq!(keys, ["k1", "k2", "", "k\r3"]);
        let expect = |k: &[u8]| {
            let mut s = Rendezvous::<4>::new();
            for (i, n) in ["a", "b", "c"].iter().enumerate() {
                s.add(BackendId(i as u16), n.as_bytes(), 1).unwrap();
            }
            ["a", "b", "c"][usize::from(s.pick(chring::hash(k)).unwrap().0)]
        };
        assert!(text.starts_with(&format!("k1,{}\n", expect(b"k1"))));
    }

    /// A router that routes nothing but keys starting with `k`.
    struct OnlyK(Vec<String>);

    impl KeyRouter for OnlyK {
        fn route(&mut self, key: &[u8]) -> Option<&str> {
            key.starts_with(b"k").then_some(self.0[0].as_str())
        }
        fn backends(&self) -> &[String] {
            &self.0
        }
        fn unrouted(&self, key: &[u8]) -> String {
            format!("'{}' does not start with k", String::from_utf8_lossy(key))
        }
    }

    /// Issue 10, part 5: a key not routed is reported in line and the stream
    /// goes on.
    #[test]
    fn unrouted_keys_are_reported_per_key() {
        let mut r = OnlyK(vec!["b1".into()]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let sum = route_lines(&mut r, &b"k1\nx\n\nk4"[..], &mut out, &mut err).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "k1,b1\nx,\n,\nk4,b1\n");
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "host-sim: key on line 2 not routed: 'x' does not start with k\n\
             host-sim: key on line 3 not routed: '' does not start with k\n"
        );
        let e = sum.check().unwrap_err();
        assert_eq!((e.unrouted, e.keys, e.first_line), (2, 4, 2));
        assert_eq!(e.to_string(), "2 of 4 keys not routed (first on line 2)");
        for bad in ["a,b", "a\nb", ""] {
            let e = check_backend_names(&OnlyK(vec!["ok".into(), bad.into()])).unwrap_err();
            assert!(e.0.contains("route prints"), "{e}");
        }
        assert!(check_backend_names(&r).is_ok());
    }

    #[test]
    fn capacity_errors_are_usage_errors() {
        let fleet = parse_backends("a 65535\nb 65535").unwrap();
        let e = StrategyRouter::new(StrategyKind::Ring, 100, &fleet).unwrap_err();
        assert!(e.downcast_ref::<UsageError>().is_some());
        let e = StrategyRouter::new(StrategyKind::Jump, 100, &fleet).unwrap_err();
        assert!(e.to_string().contains("jump"));
    }
}
