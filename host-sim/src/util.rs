//! Small helpers shared by the simulator and the CLI.

pub(crate) use chring_config::on_big_stack;

/// `num / den`, or 0 when `den` is 0.
#[must_use]
pub(crate) fn ratio(num: f64, den: f64) -> f64 {
    if den == 0.0 { 0.0 } else { num / den }
}
