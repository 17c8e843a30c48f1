//! The logger behind the `log` facade: nutcracker's levels (`-v 0..=11`),
//! nutcracker's line format, stderr or the `-o` file, and the run-time knobs
//! nutcracker's signals turn (`SIGTTIN` level up, `SIGTTOU` level down,
//! `SIGHUP` reopen the file).
//!
//! A line is `[YYYY-MM-DD HH:MM:SS.mmm] file.rs:LINE message` in local time,
//! as nutcracker's `_log` writes it. Levels map onto the `log` crate as:
//!
//! | nutcracker | `-v` | `log` records shown |
//! | --- | --- | --- |
//! | EMERG, ALERT, CRIT | 0..=2 | none (only [`always`] lines) |
//! | ERR | 3 | `error!` |
//! | WARN | 4 | and `warn!` |
//! | NOTICE (default), INFO | 5, 6 | and `info!` |
//! | DEBUG | 7 | and `debug!` |
//! | VERB .. PVERB | 8..=11 | and `trace!` |
//!
//! Lines logged with [`always`] (nutcracker's `loga`: start, stop, signals)
//! are written at every level.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock, PoisonError};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// nutcracker's lowest level (`LOG_EMERG`).
pub const LEVEL_MIN: u8 = 0;
/// nutcracker's default level (`LOG_NOTICE`).
pub const LEVEL_DEFAULT: u8 = 5;
/// nutcracker's highest level (`LOG_PVERB`).
pub const LEVEL_MAX: u8 = 11;

/// Where lines go.
#[derive(Debug)]
enum Sink {
    Stderr,
    /// The `-o` file; `None` after a reopen failed (lines are then dropped,
    /// as nutcracker drops them with its fd at -1).
    File {
        path: PathBuf,
        file: Option<File>,
    },
}

/// The process' logger (one per process: see [`init`]).
#[derive(Debug)]
pub struct Logger {
    level: AtomicU8,
    sink: Mutex<Sink>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// The `log` filter of a nutcracker level (table in the module docs).
#[must_use]
pub fn filter_of(level: u8) -> LevelFilter {
    match level {
        0..=2 => LevelFilter::Off,
        3 => LevelFilter::Error,
        4 => LevelFilter::Warn,
        5 | 6 => LevelFilter::Info,
        7 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// The nutcracker level at which a `log` record is shown.
#[must_use]
pub fn level_of(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 5,
        Level::Debug => 7,
        Level::Trace => 8,
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Installs the logger: `level` (clamped to 0..=11, as nutcracker clamps it),
/// lines to `output` (appended, created if missing) or to stderr.
///
/// # Errors
/// The file cannot be opened, or a logger is already installed.
pub fn init(level: u8, output: Option<&Path>) -> io::Result<&'static Logger> {
    let sink = match output {
        Some(p) => Sink::File {
            path: p.to_owned(),
            file: Some(open_append(p).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("opening log file '{}' failed: {e}", p.display()),
                )
            })?),
        },
        None => Sink::Stderr,
    };
    let level = level.min(LEVEL_MAX);
    let logger = LOGGER.get_or_init(|| Logger {
        level: AtomicU8::new(level),
        sink: Mutex::new(Sink::Stderr),
    });
    *logger.sink.lock().unwrap_or_else(PoisonError::into_inner) = sink;
    logger.level.store(level, Relaxed);
    log::set_logger(logger).map_err(|e| io::Error::other(e.to_string()))?;
    log::set_max_level(filter_of(level));
    Ok(logger)
}

/// The installed logger, if any.
#[must_use]
pub fn logger() -> Option<&'static Logger> {
    LOGGER.get()
}

/// Writes one line whatever the level (nutcracker's `loga`), naming the
/// caller's file and line; a no-op before [`init`].
#[track_caller]
pub fn always(args: std::fmt::Arguments<'_>) {
    if let Some(l) = logger() {
        let at = std::panic::Location::caller();
        l.write_line(at.file(), at.line(), args);
    }
}

impl Logger {
    /// The current nutcracker level.
    #[must_use]
    pub fn level(&self) -> u8 {
        self.level.load(Relaxed)
    }

    /// Sets the level (clamped to 0..=11).
    pub fn set_level(&self, level: u8) {
        let level = level.min(LEVEL_MAX);
        self.level.store(level, Relaxed);
        log::set_max_level(filter_of(level));
    }

    /// `SIGTTIN`: one level up (up to 11), logged as nutcracker logs it.
    pub fn level_up(&self) {
        let l = self.level();
        if l < LEVEL_MAX {
            self.set_level(l + 1);
            always(format_args!("up log level to {}", l + 1));
        }
    }

    /// `SIGTTOU`: one level down (down to 0), logged as nutcracker logs it.
    pub fn level_down(&self) {
        let l = self.level();
        if l > LEVEL_MIN {
            self.set_level(l - 1);
            always(format_args!("down log level to {}", l - 1));
        }
    }

    /// `SIGHUP`: closes and reopens the `-o` file (after a rotation); nothing
    /// when logging to stderr. A failure is reported on stderr and ignored.
    pub fn reopen(&self) {
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        if let Sink::File { path, file } = &mut *sink {
            *file = None;
            match open_append(path) {
                Ok(f) => *file = Some(f),
                Err(e) => eprintln!(
                    "[.......................] reopening log file '{}' failed, ignored: {e}",
                    path.display()
                ),
            }
        }
    }

    fn write_line(&self, file: &str, line: u32, args: std::fmt::Arguments<'_>) {
        let now = chrono::Local::now();
        let file = file.rsplit('/').next().unwrap_or(file);
        let text = format!(
            "[{}] {file}:{line} {args}\n",
            now.format("%Y-%m-%d %H:%M:%S%.3f")
        );
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        // A failed write is dropped, as nutcracker counts and drops it.
        let _ = match &mut *sink {
            Sink::Stderr => io::stderr().write_all(text.as_bytes()),
            Sink::File { file: Some(f), .. } => f.write_all(text.as_bytes()),
            Sink::File { file: None, .. } => Ok(()),
        };
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_of(metadata.level()) <= self.level()
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            self.write_line(
                record.file().unwrap_or(record.target()),
                record.line().unwrap_or(0),
                *record.args(),
            );
        }
    }

    fn flush(&self) {
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = match &mut *sink {
            Sink::Stderr => io::stderr().flush(),
            Sink::File { file: Some(f), .. } => f.flush(),
            Sink::File { file: None, .. } => Ok(()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_like_nutcracker() {
        assert_eq!(filter_of(0), LevelFilter::Off);
        assert_eq!(filter_of(3), LevelFilter::Error);
        assert_eq!(filter_of(LEVEL_DEFAULT), LevelFilter::Info);
        assert_eq!(filter_of(7), LevelFilter::Debug);
        assert_eq!(filter_of(LEVEL_MAX), LevelFilter::Trace);
        assert!(level_of(Level::Info) <= LEVEL_DEFAULT);
        assert!(level_of(Level::Debug) > LEVEL_DEFAULT);
    }
}
