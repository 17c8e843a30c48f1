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

use core::sync::atomic::{AtomicU32, Ordering};

use chring::Instant;
use chring::protocol::LineBuffer;
use chring::protocol::rig::{self, HIL_LINE};
use chring_firmware::board::Monotonic;
use chring_firmware::hil;
use chring_firmware::uart::CmsdkUart;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::debug;
use defmt::{error, info};
use defmt_semihosting as _;

/// The core clock of mps2-an386 (the FPGA's 25 MHz system clock), which feeds
/// SysTick and the UART.
const SYSCLK_HZ: u32 = 25_000_000;
/// Flow-table ticks per second.
const TICK_HZ: u32 = 1_000;
/// The UART's line rate (QEMU does not pace the bytes; a board does).
const BAUD: u32 = 115_200;
/// UART0 of the MPS2 boards.
const UART0: usize = 0x4000_4000;
/// Log the memory use after this many replies (and its multiples).
const REPORT_EVERY: u64 = 10_000;

/// Milliseconds since SysTick started, wrapping at 2^32.
static TICKS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// [`Monotonic`] over the SysTick count.
struct SysTickClock;

impl Monotonic for SysTickClock {
    fn now(&mut self) -> Instant {
        Instant(TICKS.load(Ordering::Relaxed))
    }
}

#[entry]
fn main() -> ! {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        fail("no core peripherals")
    };
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(SYSCLK_HZ / TICK_HZ - 1);
    core.SYST.clear_current();
    core.SYST.enable_interrupt();
    core.SYST.enable_counter();

    let Some(ctl) = mmio::controller() else {
        fail("the controller was already taken")
    };
    let mut line: LineBuffer<HIL_LINE> = LineBuffer::new();
    let mut uart = CmsdkUart::new(mmio::Uart::at(UART0), SYSCLK_HZ / BAUD);
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
        mmio::statics(),
        mmio::peak_stack()
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
                    mmio::statics(),
                    mmio::peak_stack()
                );
            }
        };
        match hil::serve_with(&mut uart, ctl, &mut clock, &mut line, report) {
            Ok(served) => info!("link closed after {=u64} replies", served.replies),
            Err(e) => match e {},
        }
    }
}

fn fail(msg: &str) -> ! {
    error!("{=str}", msg);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

// Panic and HardFault handlers.
#[path = "shared/rt.rs"]
mod rt;

/// The UART's registers, the controller's static and the linker's memory
/// symbols: the only `unsafe`.
#[allow(unsafe_code)]
mod mmio {
    use core::ptr;
    use core::sync::atomic::{AtomicBool, Ordering};

    use chring::protocol::rig::{self, HilController};
    use chring_firmware::uart::Registers;

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

    /// A CMSDK APB UART's register block at a fixed address.
    pub(super) struct Uart {
        base: usize,
    }

    impl Uart {
        /// The block at `base` (UART0 of mps2-an386: `0x4000_4000`).
        pub(super) const fn at(base: usize) -> Self {
            Self { base }
        }
    }

    impl Registers for Uart {
        fn read(&mut self, offset: usize) -> u32 {
            let reg = ptr::with_exposed_provenance::<u32>(self.base + offset);
            // SAFETY: `base + offset` is a word-aligned register of the UART's
            // memory-mapped block (offsets 0x00..=0x10, see `uart`), always
            // present on this board; only this driver touches it, from thread
            // mode (the SysTick handler does not).
            unsafe { ptr::read_volatile(reg) }
        }

        fn write(&mut self, offset: usize, value: u32) {
            let reg = ptr::with_exposed_provenance_mut::<u32>(self.base + offset);
            // SAFETY: as in `read`.
            unsafe { ptr::write_volatile(reg, value) }
        }
    }

    // Symbols of cortex-m-rt's link.x: only their addresses are used.
    unsafe extern "C" {
        static __sdata: u32;
        static _stack_end: u32;
        static _stack_start: u32;
    }

    fn addr(p: *const u32) -> u32 {
        p as usize as u32
    }

    /// `.data` + `.bss` (+ alignment): RAM below the stack.
    pub(super) fn statics() -> u32 {
        addr(&raw const _stack_end) - addr(&raw const __sdata)
    }

    /// The deepest the stack has been: from its top to the first word that no
    /// longer holds cortex-m-rt's `paint-stack` pattern.
    pub(super) fn peak_stack() -> u32 {
        let (start, end) = (&raw const _stack_start, &raw const _stack_end);
        let mut p = end;
        while p < start {
            // SAFETY: `p` is word-aligned and inside the stack's RAM
            // (`_stack_end.._stack_start`); reading a plain word has no effect.
            if unsafe { ptr::read_volatile(p) } != cortex_m_rt::STACK_PAINT_VALUE {
                break;
            }
            p = p.wrapping_add(1);
        }
        addr(start) - addr(p)
    }
}
