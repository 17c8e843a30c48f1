//! A polled driver for the SMSC/Microchip LAN9118 Ethernet controller (the MAC
//! of the MPS2 boards, which QEMU models on `mps2-an386` at `0x4020_0000`),
//! written against the datasheet's FIFO interface, and smoltcp's
//! [`phy::Device`](smoltcp::phy::Device) over it ([`Lan9118Phy`]).
//!
//! The controller is driven through 32-bit registers (offsets below); no
//! interrupts are used: the firmware polls. Register access goes through
//! [`Registers`] (the same trait as the UART's), so this module has no
//! `unsafe`: the binary implements it with volatile MMIO, the host tests with
//! a mock register file.
//!
//! | offset | register | use here |
//! | --- | --- | --- |
//! | `0x00` | `RX_DATA_FIFO` | a received frame, 4 bytes per read, little-endian, then its CRC |
//! | `0x20` | `TX_DATA_FIFO` | `TX command A`, `TX command B`, then the frame, 4 bytes per write |
//! | `0x40` | `RX_STATUS_FIFO` | one word per received frame: length (with CRC) in bits 29:16, error summary bit 15 |
//! | `0x48` | `TX_STATUS_FIFO` | one word per sent frame (not needed: `TX_CFG.TXSAO` lets it overrun) |
//! | `0x64` | `BYTE_TEST` | reads `0x8765_4321`: the chip is there and the bus order is right |
//! | `0x6C` | `RX_CFG` | 0: no offset, no end padding |
//! | `0x70` | `TX_CFG` | `TX_ON`, `TXSAO` |
//! | `0x74` | `HW_CFG` | `SRST` soft reset, self-clearing |
//! | `0x7C` | `RX_FIFO_INF` | frames waiting (status words used, bits 23:16) |
//! | `0x80` | `TX_FIFO_INF` | free bytes in the TX data FIFO (bits 15:0) |
//! | `0x84` | `PMT_CTRL` | `READY` (bit 0) after reset |
//! | `0xA4`, `0xA8` | `MAC_CSR_CMD`, `MAC_CSR_DATA` | indirect access to the MAC's registers: `MAC_CR` (1), `ADDRH` (2), `ADDRL` (3) |
//!
//! A frame is sent as one buffer: command A = first segment | last segment |
//! buffer size, command B = packet tag (a counter) << 16 | packet length, then
//! `ceil(len / 4)` data words (the last one padded with zeros). A frame is
//! received by popping its status word, then reading `ceil(len / 4)` data
//! words (the last 4 bytes of `len` are the Ethernet CRC, dropped). A frame
//! with the error summary bit, a runt, or one longer than the receive buffer
//! is read out of the FIFO and dropped (counted in [`DriverStats`]), so the
//! FIFO never loses its framing.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

pub use crate::uart::Registers;

/// `RX_DATA_FIFO` offset.
pub const RX_DATA_FIFO: usize = 0x00;
/// `TX_DATA_FIFO` offset.
pub const TX_DATA_FIFO: usize = 0x20;
/// `RX_STATUS_FIFO` offset.
pub const RX_STATUS_FIFO: usize = 0x40;
/// `TX_STATUS_FIFO` offset.
pub const TX_STATUS_FIFO: usize = 0x48;
/// `ID_REV` offset.
pub const ID_REV: usize = 0x50;
/// `BYTE_TEST` offset.
pub const BYTE_TEST: usize = 0x64;
/// `RX_CFG` offset.
pub const RX_CFG: usize = 0x6C;
/// `TX_CFG` offset.
pub const TX_CFG: usize = 0x70;
/// `HW_CFG` offset.
pub const HW_CFG: usize = 0x74;
/// `RX_FIFO_INF` offset.
pub const RX_FIFO_INF: usize = 0x7C;
/// `TX_FIFO_INF` offset.
pub const TX_FIFO_INF: usize = 0x80;
/// `PMT_CTRL` offset.
pub const PMT_CTRL: usize = 0x84;
/// `MAC_CSR_CMD` offset.
pub const MAC_CSR_CMD: usize = 0xA4;
/// `MAC_CSR_DATA` offset.
pub const MAC_CSR_DATA: usize = 0xA8;

/// What `BYTE_TEST` reads on a LAN9118 with the right bus order.
pub const BYTE_TEST_VALUE: u32 = 0x8765_4321;
/// `HW_CFG`: soft reset (self-clearing).
pub const HW_CFG_SRST: u32 = 1 << 0;
/// `PMT_CTRL`: the chip is ready after reset.
pub const PMT_CTRL_READY: u32 = 1 << 0;
/// `TX_CFG`: transmitter on.
pub const TX_CFG_TX_ON: u32 = 1 << 1;
/// `TX_CFG`: the TX status FIFO may overrun (nobody reads it).
pub const TX_CFG_TXSAO: u32 = 1 << 2;
/// `MAC_CSR_CMD`: busy / start.
pub const MAC_CSR_BUSY: u32 = 1 << 31;
/// `MAC_CSR_CMD`: read (else write).
pub const MAC_CSR_READ: u32 = 1 << 30;
/// MAC register index: control.
pub const MAC_CR: u32 = 1;
/// MAC register index: address bytes 4 and 5.
pub const MAC_ADDRH: u32 = 2;
/// MAC register index: address bytes 0 to 3.
pub const MAC_ADDRL: u32 = 3;
/// `MAC_CR`: receiver enabled.
pub const MAC_CR_RXEN: u32 = 1 << 2;
/// `MAC_CR`: transmitter enabled.
pub const MAC_CR_TXEN: u32 = 1 << 3;
/// `MAC_CR`: full duplex.
pub const MAC_CR_FDPX: u32 = 1 << 20;
/// TX command A: first segment of a frame.
pub const TX_CMD_A_FIRST: u32 = 1 << 13;
/// TX command A: last segment of a frame.
pub const TX_CMD_A_LAST: u32 = 1 << 12;
/// RX status: error summary (CRC, runt, too long, collision...).
pub const RX_STS_ERROR: u32 = 1 << 15;
/// RX status: filtering failed (only reported with `MAC_CR.RXALL`).
pub const RX_STS_FILTER_FAIL: u32 = 1 << 30;

/// The longest frame handled: 1514 bytes of Ethernet II (no VLAN tag).
pub const MAX_FRAME: usize = 1514;
/// The Ethernet CRC the controller appends to every received frame.
pub const CRC_LEN: usize = 4;
/// The shortest frame: an Ethernet header.
pub const MIN_FRAME: usize = 14;

/// Polls of a self-clearing bit before giving up.
const POLLS: u32 = 100_000;

/// Why [`Lan9118::new`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum InitError {
    /// `BYTE_TEST` did not read [`BYTE_TEST_VALUE`] (no chip at this address, or
    /// a bus that swaps bytes): what it read.
    NotFound(u32),
    /// `HW_CFG.SRST` or `PMT_CTRL.READY` did not settle after a soft reset.
    ResetTimeout,
    /// A MAC CSR access stayed busy.
    MacBusy,
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::NotFound(v) => write!(f, "no LAN9118: BYTE_TEST reads {v:#010x}"),
            InitError::ResetTimeout => f.write_str("LAN9118 soft reset did not complete"),
            InitError::MacBusy => f.write_str("LAN9118 MAC CSR access stayed busy"),
        }
    }
}

impl core::error::Error for InitError {}

/// Why [`Lan9118::transmit`] did not send a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub enum TxError {
    /// Shorter than an Ethernet header or longer than [`MAX_FRAME`].
    BadLength(usize),
    /// The TX data FIFO has no room for it now.
    NoRoom,
}

/// The driver's counters (saturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct DriverStats {
    /// Frames received and handed up.
    pub rx_frames: u32,
    /// Frames dropped on receive: error status, runts, too long for the buffer.
    pub rx_dropped: u32,
    /// Frames sent.
    pub tx_frames: u32,
    /// Frames not sent: no room in the TX FIFO, or a bad length.
    pub tx_dropped: u32,
}

fn bump(c: &mut u32) {
    *c = c.saturating_add(1);
}

/// A LAN9118, polled.
#[derive(Debug)]
pub struct Lan9118<R> {
    regs: R,
    tag: u16,
    stats: DriverStats,
}

impl<R: Registers> Lan9118<R> {
    /// Checks the chip is there, soft-resets it, sets the MAC address and
    /// enables the transmitter and the receiver (unicast to `mac` and
    /// broadcast; no promiscuous mode).
    ///
    /// # Errors
    /// [`InitError`]: no chip, or it does not come out of reset.
    pub fn new(mut regs: R, mac: [u8; 6]) -> Result<Self, InitError> {
        let test = regs.read(BYTE_TEST);
        if test != BYTE_TEST_VALUE {
            return Err(InitError::NotFound(test));
        }
        regs.write(HW_CFG, HW_CFG_SRST);
        if !poll(&mut regs, HW_CFG, HW_CFG_SRST, 0)
            || !poll(&mut regs, PMT_CTRL, PMT_CTRL_READY, PMT_CTRL_READY)
        {
            return Err(InitError::ResetTimeout);
        }
        let mut nic = Self {
            regs,
            tag: 0,
            stats: DriverStats::default(),
        };
        let [a, b, c, d, e, g] = mac;
        nic.mac_write(MAC_ADDRL, u32::from_le_bytes([a, b, c, d]))?;
        nic.mac_write(MAC_ADDRH, u32::from_le_bytes([e, g, 0, 0]))?;
        nic.regs.write(RX_CFG, 0);
        nic.regs.write(TX_CFG, TX_CFG_TX_ON | TX_CFG_TXSAO);
        nic.mac_write(MAC_CR, MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX)?;
        Ok(nic)
    }

    /// Writes MAC register `index` through `MAC_CSR_CMD` / `MAC_CSR_DATA`.
    ///
    /// # Errors
    /// [`InitError::MacBusy`] if the access does not complete.
    pub fn mac_write(&mut self, index: u32, value: u32) -> Result<(), InitError> {
        self.mac_wait()?;
        self.regs.write(MAC_CSR_DATA, value);
        self.regs.write(MAC_CSR_CMD, MAC_CSR_BUSY | (index & 0xFF));
        self.mac_wait()
    }

    /// Reads MAC register `index`.
    ///
    /// # Errors
    /// [`InitError::MacBusy`] if the access does not complete.
    pub fn mac_read(&mut self, index: u32) -> Result<u32, InitError> {
        self.mac_wait()?;
        self.regs
            .write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | (index & 0xFF));
        self.mac_wait()?;
        Ok(self.regs.read(MAC_CSR_DATA))
    }

    fn mac_wait(&mut self) -> Result<(), InitError> {
        if poll(&mut self.regs, MAC_CSR_CMD, MAC_CSR_BUSY, 0) {
            Ok(())
        } else {
            Err(InitError::MacBusy)
        }
    }

    /// The MAC address the controller filters on (read back from `ADDRL`/`ADDRH`).
    ///
    /// # Errors
    /// [`InitError::MacBusy`].
    pub fn mac_address(&mut self) -> Result<[u8; 6], InitError> {
        let [a, b, c, d] = self.mac_read(MAC_ADDRL)?.to_le_bytes();
        let [e, g, _, _] = self.mac_read(MAC_ADDRH)?.to_le_bytes();
        Ok([a, b, c, d, e, g])
    }

    /// The counters.
    #[must_use]
    pub const fn stats(&self) -> DriverStats {
        self.stats
    }

    /// Whether a received frame is waiting.
    pub fn rx_pending(&mut self) -> bool {
        (self.regs.read(RX_FIFO_INF) >> 16) & 0xFF != 0
    }

    /// Takes the next good frame from the RX FIFO into `buf` (without its
    /// CRC) and returns its length; frames with errors, runts and frames longer
    /// than `buf` are read out and dropped on the way. `None` when no frame is
    /// waiting. *O*(frame length).
    pub fn receive(&mut self, buf: &mut [u8]) -> Option<usize> {
        while self.rx_pending() {
            let status = self.regs.read(RX_STATUS_FIFO);
            let len = ((status >> 16) & 0x3FFF) as usize;
            let words = len.div_ceil(4);
            let frame = len.saturating_sub(CRC_LEN);
            if status & (RX_STS_ERROR | RX_STS_FILTER_FAIL) != 0
                || frame < MIN_FRAME
                || frame > buf.len()
            {
                for _ in 0..words {
                    let _ = self.regs.read(RX_DATA_FIFO);
                }
                bump(&mut self.stats.rx_dropped);
                continue;
            }
            let mut at = 0;
            for _ in 0..words {
                let word = self.regs.read(RX_DATA_FIFO).to_le_bytes();
                for b in word {
                    if at < frame
                        && let Some(slot) = buf.get_mut(at)
                    {
                        *slot = b;
                    }
                    at += 1;
                }
            }
            bump(&mut self.stats.rx_frames);
            return Some(frame);
        }
        None
    }

    /// Free bytes in the TX data FIFO.
    pub fn tx_free(&mut self) -> usize {
        (self.regs.read(TX_FIFO_INF) & 0xFFFF) as usize
    }

    /// Whether a frame of `len` bytes fits the TX data FIFO now (its words
    /// plus the two command words).
    pub fn can_transmit(&mut self, len: usize) -> bool {
        self.tx_free() >= len.div_ceil(4) * 4 + 8
    }

    /// Sends one frame (Ethernet header and payload; the controller adds
    /// padding to 60 bytes and the CRC). *O*(frame length).
    ///
    /// # Errors
    /// [`TxError`]; nothing was written to the FIFO then.
    pub fn transmit(&mut self, frame: &[u8]) -> Result<(), TxError> {
        let len = frame.len();
        if !(MIN_FRAME..=MAX_FRAME).contains(&len) {
            bump(&mut self.stats.tx_dropped);
            return Err(TxError::BadLength(len));
        }
        if !self.can_transmit(len) {
            bump(&mut self.stats.tx_dropped);
            return Err(TxError::NoRoom);
        }
        // `len` <= 1514 fits the 11-bit fields.
        let len32 = len as u32;
        self.regs
            .write(TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | len32);
        self.regs
            .write(TX_DATA_FIFO, (u32::from(self.tag) << 16) | len32);
        self.tag = self.tag.wrapping_add(1);
        for chunk in frame.chunks(4) {
            let mut w = [0u8; 4];
            for (d, s) in w.iter_mut().zip(chunk) {
                *d = *s;
            }
            self.regs.write(TX_DATA_FIFO, u32::from_le_bytes(w));
        }
        bump(&mut self.stats.tx_frames);
        Ok(())
    }

    /// Gives the registers back.
    pub fn release(self) -> R {
        self.regs
    }
}

/// Polls `reg` until `reg & mask == want`, at most [`POLLS`] times.
fn poll<R: Registers>(regs: &mut R, reg: usize, mask: u32, want: u32) -> bool {
    for _ in 0..POLLS {
        if regs.read(reg) & mask == want {
            return true;
        }
        regs.idle();
    }
    false
}

/// smoltcp's view of a [`Lan9118`]: one receive and one transmit buffer of a
/// full frame each (3 KiB in all), no heap.
#[derive(Debug)]
pub struct Lan9118Phy<R> {
    nic: Lan9118<R>,
    rx: [u8; MAX_FRAME],
    tx: [u8; MAX_FRAME],
}

impl<R: Registers> Lan9118Phy<R> {
    /// Wraps an initialised controller.
    pub const fn new(nic: Lan9118<R>) -> Self {
        Self {
            nic,
            rx: [0; MAX_FRAME],
            tx: [0; MAX_FRAME],
        }
    }

    /// The controller (its counters, its MAC address).
    pub fn nic(&mut self) -> &mut Lan9118<R> {
        &mut self.nic
    }
}

/// A received frame, lent to smoltcp.
#[derive(Debug)]
pub struct RxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&[u8]) -> T,
    {
        f(self.frame)
    }
}

/// Room for one frame to send.
#[derive(Debug)]
pub struct TxToken<'a, R> {
    nic: &'a mut Lan9118<R>,
    buf: &'a mut [u8; MAX_FRAME],
}

impl<R: Registers> phy::TxToken for TxToken<'_, R> {
    fn consume<T, F>(self, len: usize, f: F) -> T
    where
        F: FnOnce(&mut [u8]) -> T,
    {
        let len = len.min(MAX_FRAME);
        let frame = self.buf.get_mut(..len).unwrap_or(&mut []);
        let out = f(frame);
        // A frame the FIFO cannot take is dropped (and counted), as a wire
        // drops it; smoltcp's sockets retransmit or the peer retries.
        let _ = self.nic.transmit(frame);
        out
    }
}

impl<R: Registers> phy::Device for Lan9118Phy<R> {
    type RxToken<'a>
        = RxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = TxToken<'a, R>
    where
        Self: 'a;

    fn receive(&mut self, _: Instant) -> Option<(RxToken<'_>, TxToken<'_, R>)> {
        let n = self.nic.receive(&mut self.rx)?;
        Some((
            RxToken {
                frame: self.rx.get(..n).unwrap_or(&[]),
            },
            TxToken {
                nic: &mut self.nic,
                buf: &mut self.tx,
            },
        ))
    }

    fn transmit(&mut self, _: Instant) -> Option<TxToken<'_, R>> {
        self.nic.can_transmit(MAX_FRAME).then_some(TxToken {
            nic: &mut self.nic,
            buf: &mut self.tx,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps.max_burst_size = Some(1);
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A LAN9118 register file: the FIFOs as queues, MAC CSRs behind the
    /// indirect interface, every data-FIFO write recorded.
    #[derive(Debug, Default)]
    struct Mock {
        rx_status: VecDeque<u32>,
        rx_data: VecDeque<u32>,
        tx_words: Vec<u32>,
        mac: [u32; 16],
        mac_data: u32,
        mac_cmd: u32,
        tx_cfg: u32,
        rx_cfg: u32,
        tx_free: u32,
        /// HW_CFG reads that still show SRST after a reset.
        reset_polls: u32,
        byte_test: u32,
        rx_data_reads: usize,
    }

    impl Mock {
        fn new() -> Self {
            Self {
                byte_test: BYTE_TEST_VALUE,
                tx_free: 4608,
                reset_polls: 3,
                ..Self::default()
            }
        }

        /// Queues a frame as the controller stores it: status word, then the
        /// bytes and a CRC packed little-endian into words.
        fn push_frame(&mut self, frame: &[u8], status_bits: u32) {
            let mut bytes = frame.to_vec();
            bytes.extend_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);
            self.rx_status
                .push_back(((bytes.len() as u32) << 16) | status_bits);
            for c in bytes.chunks(4) {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                self.rx_data.push_back(u32::from_le_bytes(w));
            }
        }
    }

    impl Registers for &mut Mock {
        fn read(&mut self, offset: usize) -> u32 {
            match offset {
                RX_DATA_FIFO => {
                    self.rx_data_reads += 1;
                    self.rx_data.pop_front().unwrap_or(0)
                }
                RX_STATUS_FIFO => self.rx_status.pop_front().unwrap_or(0),
                BYTE_TEST => self.byte_test,
                HW_CFG if self.reset_polls > 0 => {
                    self.reset_polls -= 1;
                    HW_CFG_SRST
                }
                HW_CFG => 0,
                PMT_CTRL => PMT_CTRL_READY,
                RX_FIFO_INF => (self.rx_status.len() as u32) << 16,
                TX_FIFO_INF => self.tx_free,
                MAC_CSR_CMD => self.mac_cmd & !MAC_CSR_BUSY,
                MAC_CSR_DATA => self.mac_data,
                TX_CFG => self.tx_cfg,
                _ => 0,
            }
        }

        fn write(&mut self, offset: usize, value: u32) {
            match offset {
                TX_DATA_FIFO => self.tx_words.push(value),
                MAC_CSR_DATA => self.mac_data = value,
                MAC_CSR_CMD => {
                    self.mac_cmd = value;
                    let i = (value & 0xF) as usize;
                    if value & MAC_CSR_READ != 0 {
                        self.mac_data = self.mac[i];
                    } else {
                        self.mac[i] = self.mac_data;
                    }
                }
                TX_CFG => self.tx_cfg = value,
                RX_CFG => self.rx_cfg = value,
                _ => {}
            }
        }
    }

    const MAC: [u8; 6] = [0x02, 0x00, 0xC0, 0xFF, 0xEE, 0x01];

    #[test]
    fn init_sets_the_mac_and_enables_both_directions() {
        let mut m = Mock::new();
        let mut nic = Lan9118::new(&mut m, MAC).unwrap();
        assert_eq!(nic.mac_address().unwrap(), MAC);
        let m = nic.release();
        assert_eq!(m.mac[MAC_ADDRL as usize], 0xFFC0_0002);
        assert_eq!(m.mac[MAC_ADDRH as usize], 0x01EE);
        assert_eq!(
            m.mac[MAC_CR as usize],
            MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX
        );
        assert_eq!(m.tx_cfg, TX_CFG_TX_ON | TX_CFG_TXSAO);
        assert_eq!(m.reset_polls, 0, "waited for SRST to clear");
    }

    #[test]
    fn init_refuses_a_missing_chip_and_a_stuck_reset() {
        let mut m = Mock::new();
        m.byte_test = 0x4321_8765;
        assert_eq!(
            Lan9118::new(&mut m, MAC).unwrap_err(),
            InitError::NotFound(0x4321_8765)
        );
        let mut m = Mock::new();
        m.reset_polls = u32::MAX;
        assert_eq!(
            Lan9118::new(&mut m, MAC).unwrap_err(),
            InitError::ResetTimeout
        );
    }

    #[test]
    fn transmit_writes_command_words_and_padded_data() {
        let mut m = Mock::new();
        let mut nic = Lan9118::new(&mut m, MAC).unwrap();
        let frame: Vec<u8> = (0u8..17).collect();
        nic.transmit(&frame).unwrap();
        nic.transmit(&frame[..16]).unwrap();
        assert_eq!(nic.stats().tx_frames, 2);
        let m = nic.release();
        assert_eq!(
            m.tx_words[..7],
            [
                TX_CMD_A_FIRST | TX_CMD_A_LAST | 17,
                17, // tag 0, length 17
                u32::from_le_bytes([0, 1, 2, 3]),
                u32::from_le_bytes([4, 5, 6, 7]),
                u32::from_le_bytes([8, 9, 10, 11]),
                u32::from_le_bytes([12, 13, 14, 15]),
                u32::from_le_bytes([16, 0, 0, 0]), // padded to a word
            ]
        );
        assert_eq!(m.tx_words[7], TX_CMD_A_FIRST | TX_CMD_A_LAST | 16);
        assert_eq!(m.tx_words[8], (1 << 16) | 16, "the tag counts frames");
        assert_eq!(m.tx_words.len(), 7 + 2 + 4);
    }

    #[test]
    fn transmit_refuses_bad_lengths_and_a_full_fifo() {
        let mut m = Mock::new();
        let mut nic = Lan9118::new(&mut m, MAC).unwrap();
        assert_eq!(nic.transmit(&[0; 13]), Err(TxError::BadLength(13)));
        assert_eq!(
            nic.transmit(&[0; MAX_FRAME + 1]),
            Err(TxError::BadLength(MAX_FRAME + 1))
        );
        assert_eq!(nic.release().tx_words.len(), 0);
        let mut m2 = Mock::new();
        m2.tx_free = 100;
        let mut nic = Lan9118::new(&mut m2, MAC).unwrap();
        assert_eq!(nic.transmit(&[0; 93]), Err(TxError::NoRoom));
        assert!(nic.transmit(&[0; 92]).is_ok());
        assert_eq!(nic.stats().tx_dropped, 1);
        assert_eq!(nic.release().tx_words.len(), 2 + 23);
    }

    #[test]
    fn receive_decodes_status_strips_the_crc_and_drops_bad_frames() {
        let mut m = Mock::new();
        let good: Vec<u8> = (0..61u8).collect();
        let other: Vec<u8> = (100..164u8).collect();
        m.push_frame(&[0xAA; 70], RX_STS_ERROR); // CRC error: dropped
        m.push_frame(&good, 0);
        m.push_frame(&[1; 10], 0); // runt: dropped
        m.push_frame(&[2; 300], 0); // longer than the buffer below: dropped
        m.push_frame(&other, 0);
        let mut nic = Lan9118::new(&mut m, MAC).unwrap();
        let mut buf = [0u8; 200];
        assert_eq!(nic.receive(&mut buf), Some(61));
        assert_eq!(&buf[..61], &good[..]);
        assert_eq!(nic.receive(&mut buf), Some(64));
        assert_eq!(&buf[..64], &other[..]);
        assert_eq!(nic.receive(&mut buf), None);
        let s = nic.stats();
        assert_eq!((s.rx_frames, s.rx_dropped), (2, 3));
        let m = nic.release();
        assert!(m.rx_data.is_empty(), "every word of every frame was read");
        // ceil((len + CRC) / 4) words each: 74, 65, 14, 304 and 68 bytes.
        assert_eq!(m.rx_data_reads, 19 + 17 + 4 + 76 + 17);
    }

    #[test]
    fn the_smoltcp_device_moves_frames_both_ways() {
        use smoltcp::phy::{Device, RxToken as _, TxToken as _};
        let mut m = Mock::new();
        let frame: Vec<u8> = (0..42u8).collect();
        m.push_frame(&frame, 0);
        let nic = Lan9118::new(&mut m, MAC).unwrap();
        let mut dev = Lan9118Phy::new(nic);
        assert_eq!(dev.capabilities().max_transmission_unit, MAX_FRAME);
        let (rx, tx) = dev.receive(Instant::from_millis(0)).unwrap();
        assert_eq!(rx.consume(|b| b.to_vec()), frame);
        tx.consume(20, |b| b.copy_from_slice(&[7; 20]));
        assert!(dev.receive(Instant::from_millis(1)).is_none());
        let tx = dev.transmit(Instant::from_millis(2)).unwrap();
        tx.consume(14, |b| b.fill(9));
        let stats = dev.nic().stats();
        assert_eq!((stats.rx_frames, stats.tx_frames), (1, 2));
    }
}
