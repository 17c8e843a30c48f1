//! A polled driver for Arm's CMSDK APB UART (the UARTs of the MPS2 boards, and
//! QEMU's `mps2-an386`), behind the `embedded-io` traits.
//!
//! The register block (`../shared/EMBEDDED.md`, checked under QEMU):
//!
//! | offset | register | bits used |
//! | --- | --- | --- |
//! | `0x00` | `DATA` | one byte in or out |
//! | `0x04` | `STATE` | bit 0 TX buffer full, bit 1 RX buffer full |
//! | `0x08` | `CTRL` | bit 0 TX enable, bit 1 RX enable |
//! | `0x10` | `BAUDDIV` | system clock / baud rate, at least 16 |
//!
//! The register accesses themselves go through [`Registers`], so this module
//! has no `unsafe`: the binary implements it with volatile MMIO at the UART's
//! base address, the host tests with an array. A board with another UART only
//! needs its own [`embedded_io::Read`] + [`embedded_io::Write`]; the serving
//! loop ([`crate::hil`]) is written against those traits.

use core::convert::Infallible;

use embedded_io::{ErrorType, Read, ReadReady, Write, WriteReady};

/// `DATA` register offset.
pub const DATA: usize = 0x00;
/// `STATE` register offset.
pub const STATE: usize = 0x04;
/// `CTRL` register offset.
pub const CTRL: usize = 0x08;
/// `BAUDDIV` register offset.
pub const BAUDDIV: usize = 0x10;
/// `STATE`: the transmit buffer is full.
pub const STATE_TX_FULL: u32 = 1 << 0;
/// `STATE`: the receive buffer holds a byte.
pub const STATE_RX_FULL: u32 = 1 << 1;
/// `CTRL`: transmitter enabled.
pub const CTRL_TX_EN: u32 = 1 << 0;
/// `CTRL`: receiver enabled.
pub const CTRL_RX_EN: u32 = 1 << 1;
/// The smallest `BAUDDIV` the UART accepts.
pub const MIN_BAUDDIV: u32 = 16;

/// 32-bit register access at byte offsets from the UART's base.
pub trait Registers {
    /// Reads the register at `offset`.
    fn read(&mut self, offset: usize) -> u32;
    /// Writes the register at `offset`.
    fn write(&mut self, offset: usize, value: u32);
    /// Called between two polls of `STATE` that found nothing to do. The
    /// default does nothing (a busy wait); a board may sleep here (`wfi` with the
    /// UART's interrupt enabled). Under QEMU it makes no difference: there the
    /// link runs at ~15 KB/s either way, one byte per emulator main-loop turn.
    fn idle(&mut self) {}
}

/// A CMSDK APB UART, polled (no interrupts, no FIFO beyond the one-byte buffers).
#[derive(Debug)]
pub struct CmsdkUart<R> {
    regs: R,
}

impl<R: Registers> CmsdkUart<R> {
    /// Sets the baud divisor (`sysclk / baud`, raised to [`MIN_BAUDDIV`]) and
    /// enables the transmitter and receiver.
    pub fn new(mut regs: R, bauddiv: u32) -> Self {
        regs.write(BAUDDIV, bauddiv.max(MIN_BAUDDIV));
        regs.write(CTRL, CTRL_TX_EN | CTRL_RX_EN);
        Self { regs }
    }

    fn rx_full(&mut self) -> bool {
        self.regs.read(STATE) & STATE_RX_FULL != 0
    }

    fn tx_full(&mut self) -> bool {
        self.regs.read(STATE) & STATE_TX_FULL != 0
    }

    /// Gives the registers back.
    pub fn release(self) -> R {
        self.regs
    }
}

impl<R> ErrorType for CmsdkUart<R> {
    type Error = Infallible;
}

impl<R: Registers> Read for CmsdkUart<R> {
    /// Waits for a byte, then takes every byte that is ready, up to `buf.len()`.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        while !self.rx_full() {
            self.regs.idle();
        }
        let mut n = 0;
        for slot in buf.iter_mut() {
            if !self.rx_full() {
                break;
            }
            *slot = self.regs.read(DATA) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl<R: Registers> ReadReady for CmsdkUart<R> {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(self.rx_full())
    }
}

impl<R: Registers> Write for CmsdkUart<R> {
    /// Sends every byte, each as soon as the transmit buffer has room.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &b in buf {
            while self.tx_full() {
                self.regs.idle();
            }
            self.regs.write(DATA, u32::from(b));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while self.tx_full() {
            self.regs.idle();
        }
        Ok(())
    }
}

impl<R: Registers> WriteReady for CmsdkUart<R> {
    fn write_ready(&mut self) -> Result<bool, Infallible> {
        Ok(!self.tx_full())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A register block: bytes to receive, bytes sent, and the config writes.
    #[derive(Default)]
    struct Fake {
        rx: VecDeque<u8>,
        tx: Vec<u8>,
        ctrl: u32,
        bauddiv: u32,
        /// STATE reads that report TX full before a byte may be sent.
        busy: u32,
    }

    impl Registers for &mut Fake {
        fn read(&mut self, offset: usize) -> u32 {
            match offset {
                DATA => u32::from(self.rx.pop_front().unwrap_or(0)),
                STATE => {
                    let tx = if self.busy > 0 {
                        self.busy -= 1;
                        STATE_TX_FULL
                    } else {
                        0
                    };
                    tx | if self.rx.is_empty() { 0 } else { STATE_RX_FULL }
                }
                _ => 0,
            }
        }
        fn write(&mut self, offset: usize, value: u32) {
            match offset {
                DATA => self.tx.push(value as u8),
                CTRL => self.ctrl = value,
                BAUDDIV => self.bauddiv = value,
                _ => {}
            }
        }
    }

    #[test]
    fn configures_reads_and_writes() {
        let mut fake = Fake {
            rx: b"PING\n".iter().copied().collect(),
            busy: 3,
            ..Fake::default()
        };
        let mut uart = CmsdkUart::new(&mut fake, 4);
        assert_eq!(uart.read_ready(), Ok(true));
        let mut buf = [0u8; 3];
        assert_eq!(uart.read(&mut buf), Ok(3));
        assert_eq!(&buf, b"PIN");
        assert_eq!(uart.read(&mut buf), Ok(2));
        assert_eq!(&buf[..2], b"G\n");
        assert_eq!(uart.read_ready(), Ok(false));
        assert_eq!(uart.read(&mut []), Ok(0));
        uart.write_all(b"+PONG\r\n").unwrap();
        uart.flush().unwrap();
        assert_eq!(uart.write_ready(), Ok(true));
        let fake = uart.release();
        assert_eq!(fake.tx, b"+PONG\r\n");
        assert_eq!(
            (fake.ctrl, fake.bauddiv),
            (CTRL_TX_EN | CTRL_RX_EN, MIN_BAUDDIV)
        );
    }
}
