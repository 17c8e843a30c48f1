//! Failure exits shared by every binary: a panic or a HardFault logs over defmt
//! and ends the QEMU run through semihosting with failure.

use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::debug;
use defmt::error;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => error!("panic at {=str}:{=u32}", l.file(), l.line()),
        None => error!("panic"),
    }
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}

// cortex-m-rt requires the HardFault handler to be an `unsafe fn`; it only logs
// and exits.
#[allow(unsafe_code)]
#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    error!("HardFault at pc {=u32:#010x}", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::bkpt();
    }
}
