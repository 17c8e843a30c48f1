//! The hardware-in-the-loop firmware for the QEMU board `mps2-an386`
//! (Cortex-M4F): serves chring's control protocol (`chring::protocol`) on UART0,
//! one reply per line, forever.
//!
//! - The link: the CMSDK APB UART0 at `0x4000_4000`, through the firmware's
//!   `embedded-io` driver (`chring_firmware::uart`). Give it its own channel in
//!   QEMU, e.g. `-serial unix:fw.sock,server=on,wait=on` (`host-sim hil --qemu`
//!   does); on a real board, put its UART behind the same traits.
//! - The clock: SysTick interrupts at 1 kHz count milliseconds in an atomic; each
//!   line is handled at that tick, so the flow table's idle timeout is real time.
//! - The log: defmt over semihosting (stdout), as for the `balancer` binary: a
//!   banner with the controller's shape and the memory used, then a line every
//!   10,000 replies with the peak stack so far (requests and replies are on the
//!   UART only).
//!
//! It never exits by itself; QEMU is stopped by whoever started it. A panic or
//! HardFault logs and exits through semihosting with failure.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

use chring::Instant;
use chring::protocol::LineBuffer;
use chring::protocol::rig::{self, HIL_LINE};
use chring_firmware::board::Monotonic;
use chring_firmware::hil;
use chring_firmware::uart::CmsdkUart;
use cortex_m_rt::entry;
use defmt::info;
use defmt_semihosting as _;

use mps2::{BAUD, SYSCLK_HZ, UART0, fail};

/// Log the memory use after this many replies (and its multiples).
const REPORT_EVERY: u64 = 10_000;

/// [`Monotonic`] over the SysTick count.
struct SysTickClock;

impl Monotonic for SysTickClock {
    fn now(&mut self) -> Instant {
        Instant(mps2::now())
    }
}

#[entry]
fn main() -> ! {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        fail("no core peripherals")
    };
    mps2::start_clock(&mut core.SYST);

    let Some(ctl) = mmio::controller() else {
        fail("the controller was already taken")
    };
    let mut line: LineBuffer<HIL_LINE> = LineBuffer::new();
    let mut uart = CmsdkUart::new(mps2::Regs::at(UART0), SYSCLK_HZ / BAUD);
    info!(
        "chring hil: control protocol on UART0, {=u32} baud; 8 servers, ring {=u32} points/weight, {=usize}-byte lines, flow table idle timeout {=u32} ms",
        BAUD,
        rig::HIL_VNODES,
        HIL_LINE,
        rig::HIL_FLOW_TTL.0
    );
    info!(
        "memory: controller {=usize} B, static {=u32} B, peak stack so far {=u32} B",
        core::mem::size_of_val(ctl),
        mps2::statics(),
        mps2::peak_stack()
    );
    let mut clock = SysTickClock;
    loop {
        // A UART never reports end of input, and its errors are `Infallible`:
        // `serve` only returns if a link does.
        let report = |s: &hil::Served| {
            if s.replies % REPORT_EVERY == 0 {
                info!(
                    "served {=u64} replies; RAM: static {=u32} B + peak stack {=u32} B",
                    s.replies,
                    mps2::statics(),
                    mps2::peak_stack()
                );
            }
        };
        match hil::serve_with(&mut uart, ctl, &mut clock, &mut line, report) {
            Ok(served) => info!("link closed after {=u64} replies", served.replies),
            Err(e) => match e {},
        }
    }
}

// Panic and HardFault handlers.
#[path = "shared/rt.rs"]
mod rt;

// SysTick, the register blocks, the RAM measurement.
#[path = "shared/mps2.rs"]
mod mps2;

/// The controller's static: with `mps2`, the only `unsafe`.
#[allow(unsafe_code)]
mod mmio {
    use core::ptr;
    use core::sync::atomic::{AtomicBool, Ordering};

    use chring::protocol::rig::{self, HilController};

    /// The controller (~19 KiB) lives in a static, initialised from a constant:
    /// built on the stack, `Result`s and moves would copy it two or three times,
    /// more than the 32 KiB of RAM.
    static mut CONTROLLER: HilController = rig::hil_controller();
    static TAKEN: AtomicBool = AtomicBool::new(false);

    /// The controller, once (like `cortex_m::singleton!`).
    pub(super) fn controller() -> Option<&'static mut HilController> {
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: `TAKEN` lets this line run once, so this is the only reference
        // to `CONTROLLER` ever made, and nothing else names the static.
        Some(unsafe { &mut *ptr::addr_of_mut!(CONTROLLER) })
    }
}
