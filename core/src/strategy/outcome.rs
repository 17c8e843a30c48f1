//! What a finished request reports back to a load-aware strategy.

/// The result of one request, reported with `finish(id, outcome)` to the
/// load-aware strategies ([`LeastConn`](crate::LeastConn),
/// [`PeakEwma`](crate::PeakEwma), [`HealthScore`](crate::HealthScore)).
///
/// `at_us` is the caller's monotonic clock in microseconds when the request
/// finished (any origin: boot, epoch, a test counter). Every value is accepted: a
/// clock that goes backwards or wraps around `u64` is never an error and never
/// panics; each strategy documents what it does with it (at worst, one
/// observation without decay).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Outcome {
    /// Measured latency of the request, in microseconds (saturate longer ones
    /// at `u32::MAX`, about 71 minutes).
    pub latency_us: u32,
    /// `false` for a failed request (connect error, timeout, error reply):
    /// what [`HealthScore`](crate::HealthScore) counts.
    pub ok: bool,
    /// The caller's clock when the request finished, in microseconds.
    pub at_us: u64,
}
