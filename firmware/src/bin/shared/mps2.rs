//! The mps2-an386 board as the `hil` and `udplb` binaries both use it: the
//! SysTick millisecond clock, a fatal exit, a memory-mapped register block and
//! the RAM measurement from the linker's symbols and the stack paint.
//!
//! Included by `#[path]` into each binary (the lib forbids `unsafe`); the
//! `balancer` binary paces itself with `cortex_m::delay::Delay` and has its own
//! footprint report, so it does not use it.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use cortex_m_semihosting::debug;
use defmt::error;

/// The core clock of mps2-an386 (the FPGA's 25 MHz system clock), which feeds
/// SysTick and the UART.
pub(crate) const SYSCLK_HZ: u32 = 25_000_000;
/// SysTick interrupts per second: the clock is in milliseconds.
const TICK_HZ: u32 = 1_000;
/// The UART's line rate (QEMU does not pace the bytes; a board does).
pub(crate) const BAUD: u32 = 115_200;
/// UART0 of the MPS2 boards.
pub(crate) const UART0: usize = 0x4000_4000;

/// Milliseconds since SysTick started, wrapping at 2^32.
static TICKS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// Starts SysTick on the core clock, interrupting at [`TICK_HZ`].
pub(crate) fn start_clock(syst: &mut SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYSCLK_HZ / TICK_HZ - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Milliseconds since [`start_clock`], wrapping at 2^32.
pub(crate) fn now() -> u32 {
    TICKS.load(Ordering::Relaxed)
}

/// Logs `msg` and ends the QEMU run through semihosting with failure.
pub(crate) fn fail(msg: &str) -> ! {
    error!("{=str}", msg);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

#[allow(unused_imports)] // `udplb` reports it, `hil` does not.
pub(crate) use mmio::ram_size;
pub(crate) use mmio::{Regs, peak_stack, statics};

/// The register blocks and the linker's memory symbols: the only `unsafe`.
#[allow(unsafe_code)]
mod mmio {
    use core::ptr;

    use chring_firmware::uart::Registers;

    /// A peripheral's register block at a fixed address (UART0, the LAN9118).
    pub(crate) struct Regs {
        base: usize,
    }

    impl Regs {
        /// The block at `base` (UART0 of mps2-an386: `0x4000_4000`).
        pub(crate) const fn at(base: usize) -> Self {
            Self { base }
        }
    }

    impl Registers for Regs {
        fn read(&mut self, offset: usize) -> u32 {
            let reg = ptr::with_exposed_provenance::<u32>(self.base + offset);
            // SAFETY: `base + offset` is a word-aligned register of the
            // peripheral's memory-mapped block (UART0: 0x00..=0x10; LAN9118:
            // 0x00..=0xB4), always present on this board; each block has one
            // driver, used from thread mode only (the SysTick handler touches
            // neither).
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
    pub(crate) fn statics() -> u32 {
        addr(&raw const _stack_end) - addr(&raw const __sdata)
    }

    /// The RAM region's size (the budget): from its start to the stack's top.
    #[allow(dead_code)] // `udplb` reports it, `hil` does not.
    pub(crate) fn ram_size() -> u32 {
        addr(&raw const _stack_start) - addr(&raw const __sdata)
    }

    /// The deepest the stack has been: from its top to the first word that no
    /// longer holds cortex-m-rt's `paint-stack` pattern.
    pub(crate) fn peak_stack() -> u32 {
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
