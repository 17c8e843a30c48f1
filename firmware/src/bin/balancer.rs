//! The balancer firmware for the QEMU board `mps2-an386` (Cortex-M4F).
//!
//! 1. Replays the golden vectors of every strategy (`tests/data/golden.csv`).
//! 2. Runs the balancer scenario (`chring_firmware::scenario`): 8 backends,
//!    a 1024-entry flow table, 100,000 Zipf requests, a removal and an addition,
//!    with the SCC's user LEDs as bay pins, FPGA LED0 as the status pin and
//!    SysTick pacing the loop.
//! 3. Reports with defmt over semihosting, then its footprint: flash and static
//!    RAM from the linker's symbols, peak stack from the paint cortex-m-rt's
//!    `paint-stack` feature lays down at reset.
//!
//! Exit status (through semihosting, so QEMU exits with it): 0 when everything
//! matched; 1 on any mismatch, error, panic or fault.
//!
//! `cargo run --release` in `firmware/` builds it and runs it in QEMU; see
//! `firmware/README.md`.

#![no_std]
#![no_main]
#![deny(unsafe_code)]

use chring_firmware::board::{Indicators, RequestClock};
use chring_firmware::golden::{self, GoldenStrategy};
use chring_firmware::report::{self, Line};
use chring_firmware::scenario;
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use defmt::{error, info};
use defmt_semihosting as _;

/// SysTick's clock on mps2-an386 (the FPGA's 25 MHz system clock).
const SYSCLK_HZ: u32 = 25_000_000;
/// The example's budgets (`memory/default.x` enforces them at link time too).
const FLASH_BUDGET: u32 = 64 * 1024;
const RAM_BUDGET: u32 = 32 * 1024;

#[entry]
fn main() -> ! {
    let status = match run() {
        Ok(()) => debug::EXIT_SUCCESS,
        Err(()) => debug::EXIT_FAILURE,
    };
    debug::exit(status);
    // Only reached without a debugger/QEMU to exit to.
    loop {
        cortex_m::asm::bkpt();
    }
}

fn run() -> Result<(), ()> {
    let core = cortex_m::Peripherals::take().ok_or(())?;
    info!("{}", Line::Start);

    let mut results = [(GoldenStrategy::Ring, 0u32); GoldenStrategy::ALL.len()];
    for (slot, strategy) in results.iter_mut().zip(GoldenStrategy::ALL) {
        let keys = golden::replay(strategy).map_err(|e| error!("golden replay failed: {}", e))?;
        *slot = (strategy, keys);
    }
    report::golden_lines(&results, |l| info!("{}", l));
    report::setup_lines(|l| info!("{}", l));

    let mut indicators = Indicators::new(
        core::array::from_fn(|bay| board::LedPin::scc(bay as u8)),
        board::LedPin::fpga(0),
    );
    let mut delay = cortex_m::delay::Delay::new(core.SYST, SYSCLK_HZ);
    let mut clock = RequestClock::new(0, 1);
    // The ring lives in this frame (see `scenario::new_ring`).
    let mut ring = None;
    let ring = scenario::new_ring(&mut ring).map_err(|e| error!("no ring: {}", e))?;
    let report = scenario::run(ring, &mut indicators, &mut delay, &mut clock)
        .map_err(|e| error!("scenario failed: {}", e))?;
    report::report_lines(&report, |l| info!("{}", l));

    // The pins really are the LEDs: read the registers back.
    let (scc, fpga) = (board::scc_leds(), board::fpga_leds());
    if scc & 0xFF != report.lit || fpga & 1 != 0 {
        error!(
            "LED registers disagree with the pins: SCC {=u32:08b}, FPGA {=u32:b}, expected {=u32:08b} and 0",
            scc, fpga, report.lit
        );
        return Err(());
    }

    footprint::report()?;
    info!("{}", Line::Pass);
    Ok(())
}

// Panic and HardFault handlers.
#[path = "shared/rt.rs"]
mod rt;

/// The QEMU board's LEDs as embedded-hal output pins.
#[allow(unsafe_code)]
mod board {
    use core::convert::Infallible;
    use core::ptr;

    use embedded_hal::digital::{ErrorType, OutputPin};

    /// MPS2 SCC `CFG_REG1`: bits 0..8 drive the eight user LEDs.
    const SCC_CFG1: usize = 0x4002_F004;
    /// MPS2 FPGA I/O `LED0`: bits 0..2 drive two more LEDs.
    const FPGAIO_LED0: usize = 0x4002_8000;

    /// One LED: a bit of one of the two registers above.
    #[derive(Debug)]
    pub(super) struct LedPin {
        reg: usize,
        mask: u32,
    }

    impl LedPin {
        /// SCC user LED `bit` (0..8).
        pub(super) const fn scc(bit: u8) -> Self {
            Self {
                reg: SCC_CFG1,
                mask: 1 << (bit & 7),
            }
        }

        /// FPGA LED `bit` (0..2).
        pub(super) const fn fpga(bit: u8) -> Self {
            Self {
                reg: FPGAIO_LED0,
                mask: 1 << (bit & 1),
            }
        }

        fn write(&mut self, on: bool) {
            let reg = ptr::with_exposed_provenance_mut::<u32>(self.reg);
            // SAFETY: `reg` is SCC_CFG1 or FPGAIO_LED0, memory-mapped 32-bit
            // registers of mps2-an386 (word-aligned, always present, no side
            // effect but the LEDs). The program is single-threaded and no
            // interrupt handler touches them, so the read-modify-write cannot race.
            unsafe {
                let v = ptr::read_volatile(reg);
                ptr::write_volatile(reg, if on { v | self.mask } else { v & !self.mask });
            }
        }
    }

    impl ErrorType for LedPin {
        type Error = Infallible;
    }

    impl OutputPin for LedPin {
        fn set_low(&mut self) -> Result<(), Infallible> {
            self.write(false);
            Ok(())
        }

        fn set_high(&mut self) -> Result<(), Infallible> {
            self.write(true);
            Ok(())
        }
    }

    fn read(reg: usize) -> u32 {
        // SAFETY: as in `LedPin::write`; a read has no side effect.
        unsafe { ptr::read_volatile(ptr::with_exposed_provenance::<u32>(reg)) }
    }

    /// The SCC LED register.
    pub(super) fn scc_leds() -> u32 {
        read(SCC_CFG1)
    }

    /// The FPGA LED register.
    pub(super) fn fpga_leds() -> u32 {
        read(FPGAIO_LED0)
    }
}

/// Flash, static RAM and peak stack, from the linker's symbols and the stack paint.
#[allow(unsafe_code)]
mod footprint {
    use core::ptr;

    use defmt::{error, info};

    use super::{FLASH_BUDGET, RAM_BUDGET};

    // Symbols of cortex-m-rt's link.x: only their addresses are used.
    unsafe extern "C" {
        static __sdata: u32;
        static __edata: u32;
        static __sidata: u32;
        static __sbss: u32;
        static __ebss: u32;
        static _stack_end: u32;
        static _stack_start: u32;
    }

    /// What cortex-m-rt's `paint-stack` writes over the whole stack at reset.
    const PAINT: u32 = cortex_m_rt::STACK_PAINT_VALUE;

    fn addr(p: *const u32) -> u32 {
        p as usize as u32
    }

    /// The lowest address the stack reached: the first word above `_stack_end`
    /// that no longer holds the paint. `_stack_end` itself if even that is gone
    /// (the stack may have overflowed into the statics).
    fn high_water() -> u32 {
        let (start, end) = (&raw const _stack_start, &raw const _stack_end);
        let mut p = end;
        while p < start {
            // SAFETY: `p` is word-aligned and in `_stack_end.._stack_start`, the
            // RAM reserved for the stack; nothing else writes there concurrently
            // (single thread, no interrupts), and a volatile read of a plain word
            // has no side effect.
            if unsafe { ptr::read_volatile(p) } != PAINT {
                break;
            }
            p = p.wrapping_add(1);
        }
        addr(p)
    }

    pub(super) fn report() -> Result<(), ()> {
        let data = addr(&raw const __edata) - addr(&raw const __sdata);
        let bss = addr(&raw const __ebss) - addr(&raw const __sbss);
        let statics = addr(&raw const _stack_end) - addr(&raw const __sdata);
        // The vector table, .text and .rodata end where the image of .data
        // starts; .data's initial values follow them in flash.
        let code = addr(&raw const __sidata);
        let flash = code + data;
        let top = addr(&raw const _stack_start);
        let low = high_water();
        let stack = top - low;
        info!(
            "footprint: flash {=u32} B of {=u32} (vectors+text+rodata {=u32} B, .data image {=u32} B)",
            flash, FLASH_BUDGET, code, data
        );
        let m = chring_firmware::scenario::memory();
        info!(
            "footprint: balancer {=usize} B = ring {=usize} B + flow table {=usize} B + counters",
            m.balancer, m.ring, m.table
        );
        info!(
            "footprint: RAM {=u32} B of {=u32}: static {=u32} B (.data {=u32} B, .bss {=u32} B) + peak stack {=u32} B",
            statics + stack,
            RAM_BUDGET,
            statics,
            data,
            bss,
            stack
        );
        if low <= addr(&raw const _stack_end) {
            error!("the stack reached the end of RAM's stack area: it may have overflowed");
            return Err(());
        }
        if flash > FLASH_BUDGET || statics + stack > RAM_BUDGET {
            error!("over budget");
            return Err(());
        }
        Ok(())
    }
}
