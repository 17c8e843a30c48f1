//! Daemon configuration readers shared by `host-sim route --config FILE` and
//! `chring-proxy`: a daemon's own configuration file, read as a user has it,
//! becomes a [`KeyRouter`] that answers "where does this key go?" exactly as the
//! daemon would.
//!
//! Each format module exposes `router(text, pool) -> anyhow::Result<Box<dyn
//! KeyRouter>>`: `pool` picks the upstream / pool / backend by name when the file
//! has several (an error names the choices when it is needed and missing), and a
//! directive that changes routing but is not supported is an error, never ignored.
//!
//! Every reader refuses a text above [`MAX_CONFIG_BYTES`] and more servers than
//! its capacity before any quadratic or large work ([`LimitError`]), so a
//! hostile file costs bounded time and memory.

pub mod haproxy;
pub mod libmemcached;
pub mod nginx;
pub mod twemproxy;

mod stack;
pub use stack::on_big_stack;

use std::io::Read;
use std::path::Path;

use anyhow::Context;

/// The largest configuration file read (1 MiB): every reader refuses a longer
/// text before parsing it, so memory stays bounded whatever the file holds.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// A configuration beyond what the readers accept, whatever its format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The text is longer than [`MAX_CONFIG_BYTES`].
    #[error("{bytes} bytes; configuration files above {max} bytes are refused")]
    TooLarge {
        /// Its length (at least; reading stops past the limit).
        bytes: u64,
        /// [`MAX_CONFIG_BYTES`].
        max: usize,
    },
    /// A YAML node nested deeper than the readers allow.
    #[error("line {line}: YAML nested deeper than {max} levels")]
    TooDeep {
        /// 1-based line of the node that goes too deep.
        line: usize,
        /// The deepest nesting accepted.
        max: usize,
    },
    /// A YAML anchor (`&name`) or alias (`*name`): nutcracker refuses both.
    #[error("line {line}: YAML {what} are not supported (nutcracker refuses them too)")]
    Alias {
        /// 1-based line of the anchor or alias.
        line: usize,
        /// `"anchors"` or `"aliases"`.
        what: &'static str,
    },
    /// More servers in one pool / upstream / backend than supported.
    #[error("{count} servers; at most {max} are supported")]
    TooManyServers {
        /// Servers listed (at least: counting may stop past the limit).
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Refuses a configuration text longer than [`MAX_CONFIG_BYTES`]. *O*(1).
///
/// # Errors
/// [`LimitError::TooLarge`].
pub fn check_size(text: &str) -> Result<(), LimitError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(LimitError::TooLarge {
            bytes: text.len() as u64,
            max: MAX_CONFIG_BYTES,
        });
    }
    Ok(())
}

/// Reads a configuration file of at most [`MAX_CONFIG_BYTES`] (never more
/// than that plus one byte is read, whatever the file's size).
///
/// # Errors
/// I/O errors, text that is not UTF-8, and [`LimitError::TooLarge`].
pub fn read_config(path: &Path) -> anyhow::Result<String> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    if bytes.len() > MAX_CONFIG_BYTES {
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(LimitError::TooLarge {
            bytes: size,
            max: MAX_CONFIG_BYTES,
        })
        .with_context(|| path.display().to_string());
    }
    String::from_utf8(bytes).with_context(|| format!("config {} is not UTF-8", path.display()))
}

/// Which daemon's configuration a file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// nginx.conf: an `upstream` block with `hash $key [consistent];`.
    Nginx,
    /// A nutcracker (twemproxy) YAML pool with `distribution: ketama`.
    Twemproxy,
    /// An HAProxy .cfg `backend` with a hashing `balance`.
    Haproxy,
    /// A libmemcached configuration string (`--SERVER=...`) with a consistent
    /// distribution.
    Libmemcached,
}

impl ConfigFormat {
    /// Every format, in the order of [`ConfigFormat::NAMES`].
    pub const ALL: [ConfigFormat; 4] = [
        Self::Nginx,
        Self::Twemproxy,
        Self::Haproxy,
        Self::Libmemcached,
    ];
    /// The names [`FromStr`](std::str::FromStr) accepts, as on the command line.
    pub const NAMES: [&'static str; 4] = ["nginx", "twemproxy", "haproxy", "libmemcached"];

    /// Its command-line name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Twemproxy => "twemproxy",
            Self::Haproxy => "haproxy",
            Self::Libmemcached => "libmemcached",
        }
    }
}

impl std::fmt::Display for ConfigFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ConfigFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown format '{s}' (one of: {})", Self::NAMES.join(", ")))
    }
}

/// Guesses the format from the text: nginx has `upstream NAME {`, HAProxy a
/// `backend NAME` section, twemproxy a YAML `servers:` list, a libmemcached
/// configuration string a `--SERVER=` option (any case) at the start of a word.
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
    if lines().any(|l| {
        l.split_ascii_whitespace().any(|w| {
            w.get(..9)
                .is_some_and(|p| p.eq_ignore_ascii_case("--SERVER="))
        })
    }) {
        return Some(ConfigFormat::Libmemcached);
    }
    None
}

/// Reads `path` and builds the router of `format` (detected when `None`) for the
/// upstream / pool / backend named `pool` (needed when the file has several).
///
/// # Errors
/// Unreadable file, a file above [`MAX_CONFIG_BYTES`], undetectable format,
/// or the format's own errors.
pub fn load(
    path: &Path,
    format: Option<ConfigFormat>,
    pool: Option<&str>,
) -> anyhow::Result<Box<dyn KeyRouter>> {
    let text = read_config(path)?;
    let format = match format.or_else(|| detect(&text)) {
        Some(f) => f,
        None => anyhow::bail!(
            "{}: cannot tell nginx, twemproxy, HAProxy or libmemcached apart; pass --format",
            path.display()
        ),
    };
    match format {
        ConfigFormat::Nginx => nginx::router(&text, pool),
        ConfigFormat::Twemproxy => twemproxy::router(&text, pool),
        ConfigFormat::Haproxy => haproxy::router(&text, pool),
        ConfigFormat::Libmemcached => libmemcached::router(&text, pool),
    }
    .with_context(|| format!("{}", path.display()))
}

/// Where keys go, as a daemon (or a chring strategy) would send them.
pub trait KeyRouter {
    /// The identity of the backend for `key`; `None` when the router does not
    /// pick by key for it (an empty fleet, or a key the daemon would balance by
    /// round robin instead, such as nginx's empty key).
    fn route(&mut self, key: &[u8]) -> Option<&str>;

    /// Every name [`route`](Self::route) can return, in backend order.
    fn backends(&self) -> &[String];

    /// Why [`route`](Self::route) returned `None` for `key`, as one line.
    fn unrouted(&self, key: &[u8]) -> String {
        let _ = key;
        "no backend to route to".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: the libmemcached format by name and by detection.
    #[test]
    fn libmemcached_format_named_and_detected() {
        assert_eq!("libmemcached".parse(), Ok(ConfigFormat::Libmemcached));
        assert_eq!(ConfigFormat::Libmemcached.to_string(), "libmemcached");
        assert!(
            "memcache"
                .parse::<ConfigFormat>()
                .unwrap_err()
                .contains("libmemcached")
        );
        for text in [
            "--SERVER=10.0.0.1 --DISTRIBUTION=consistent",
            "# shards\n  --server=a.example:11212/?2\n",
        ] {
            assert_eq!(detect(text), Some(ConfigFormat::Libmemcached), "{text}");
        }
        assert_eq!(
            detect("upstream u {\n server a;\n}\n"),
            Some(ConfigFormat::Nginx)
        );
        assert_eq!(detect("# --SERVER=x\n"), None);
    }
}
