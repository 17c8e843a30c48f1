//! Errors shared across host-sim's commands.

/// A usage error: bad arguments or bad input files (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);
