//! The hardware-in-the-loop rig's configuration, shared by the firmware
//! (`firmware/src/bin/hil.rs`, `firmware/src/hil.rs`) and `host-sim hil`.
//!
//! The HIL test replays the same controller on both sides of the UART and
//! compares every reply, so both must build it from these definitions: the
//! controller's capacities, its vnodes, its flow TTL and the line buffer size.
//! They are not a recommendation for other deployments (pick your own
//! [`Controller`] parameters); they live here, behind the `protocol` feature,
//! because core is the one crate both sides already depend on.

use super::Controller;
use crate::Duration;

/// The controller of the hardware-in-the-loop firmware (`firmware/src/bin/hil.rs`),
/// which `host-sim hil` also runs locally to check every reply: 8 servers, a ring
/// of up to 768 points ([`HIL_VNODES`] per unit of weight, so a total weight of
/// 12), Maglev with 1031 entries, a 256-entry flow table. About 19 KiB.
pub type HilController = Controller<8, 768, 1031, 256>;

/// Ring points per unit of weight of [`HilController`].
pub const HIL_VNODES: u32 = 64;

/// Idle timeout of [`HilController`]'s flow table, in ticks: 10 minutes of the
/// firmware's 1 kHz SysTick, longer than a test run, so that replies never depend
/// on how fast the host talks to the device.
pub const HIL_FLOW_TTL: Duration = Duration(600_000);

/// Line buffer size of the HIL firmware: a longer line gets `-ERR line too long`.
pub const HIL_LINE: usize = 128;

/// A fresh [`HilController`]. `const`, so it can initialise a `static` (the
/// firmware keeps it there: built on the stack it would be copied).
#[must_use]
pub const fn hil_controller() -> HilController {
    Controller::new_const::<HIL_VNODES, { HIL_FLOW_TTL.0 }>()
}
