//! `host-sim route --config FILE`: a daemon's own configuration file, read as a
//! user has it, becomes a [`KeyRouter`] that answers "where does this key go?"
//! exactly as the daemon would.
//!
//! Each format module exposes `router(text, pool) -> anyhow::Result<Box<dyn
//! KeyRouter>>`: `pool` picks the upstream / pool / backend by name when the file
//! has several (an error names the choices when it is needed and missing), and a
//! directive that changes routing but is not supported is an error, never ignored.

pub mod haproxy;
pub mod nginx;
pub mod twemproxy;

use std::path::Path;

use anyhow::Context;

use crate::route::KeyRouter;

/// Which daemon's configuration a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConfigFormat {
    /// nginx.conf: an `upstream` block with `hash $key [consistent];`.
    Nginx,
    /// A nutcracker (twemproxy) YAML pool with `distribution: ketama`.
    Twemproxy,
    /// An HAProxy .cfg `backend` with `hash-type consistent`.
    Haproxy,
}

/// Guesses the format from the text: nginx has `upstream NAME {`, HAProxy a
/// `backend NAME` section, twemproxy a YAML `servers:` list.
#[must_use]
pub fn detect(text: &str) -> Option<ConfigFormat> {
    let lines = || {
        text.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
    };
    if lines().any(|l| l.starts_with("upstream ") && l.ends_with('{')) {
        return Some(ConfigFormat::Nginx);
    }
    if lines().any(|l| l.starts_with("backend ") || l == "backend") {
        return Some(ConfigFormat::Haproxy);
    }
    if lines().any(|l| l.starts_with("servers:")) {
        return Some(ConfigFormat::Twemproxy);
    }
    None
}

/// Reads `path` and builds the router of `format` (detected when `None`) for the
/// upstream / pool / backend named `pool` (needed when the file has several).
///
/// # Errors
/// Unreadable file, undetectable format, or the format's own errors.
pub fn load(
    path: &Path,
    format: Option<ConfigFormat>,
    pool: Option<&str>,
) -> anyhow::Result<Box<dyn KeyRouter>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let format = match format.or_else(|| detect(&text)) {
        Some(f) => f,
        None => anyhow::bail!(
            "{}: cannot tell nginx, twemproxy or HAProxy apart; pass --format",
            path.display()
        ),
    };
    match format {
        ConfigFormat::Nginx => nginx::router(&text, pool),
        ConfigFormat::Twemproxy => twemproxy::router(&text, pool),
        ConfigFormat::Haproxy => haproxy::router(&text, pool),
    }
    .with_context(|| format!("{}", path.display()))
}
