//! # chring-firmware: chring on a Cortex-M4F, as a balancer would run it
//!
//! The board-independent part of the `balancer` firmware (`src/bin/balancer.rs`)
//! and of the hardware-in-the-loop firmware (`src/bin/hil.rs`),
//! `no_std` and allocation-free, so the same code runs on the target under QEMU
//! and in the host tests:
//!
//! | module | what |
//! | --- | --- |
//! | [`balancer`] | a chring [`Strategy`](chring::Strategy) behind a flow table (chring's [`TtlCache`](chring::TtlCache) in idle mode): live flows keep their backend |
//! | [`board`] | what it needs from a board, as embedded-hal 1.0 traits: bay and status pins, a tick source |
//! | [`golden`] | the replay of the golden vectors of `tests/data/golden.csv` |
//! | [`scenario`] | the balancer scenario: 8 backends, 100,000 Zipf requests, a removal and an addition |
//! | [`report`] | its report, rendered by defmt on the target and by `core::fmt` on the host |
//! | [`uart`] | a polled CMSDK APB UART driver behind `embedded-io` (the `hil` firmware's link) |
//! | [`hil`] | the `hil` firmware's loop: chring's control protocol over any `embedded-io` link |
//! | [`lan9118`] | a polled LAN9118 Ethernet driver (register level) and smoltcp's `phy::Device` over it |
//! | [`memcache`] | memcached's UDP frame header and request line |
//! | [`udplb`] | the `udplb` firmware's balancer: memcached UDP sharded by ketama or the ring, replies relayed, multi-key gets split and merged |
//!
//! The board-specific rest (QEMU's LEDs, SysTick, semihosting, defmt, the stack
//! measurement) is in the binary, which only builds for `target_os = "none"`.
//!
//! Host tests: `cargo test --target x86_64-unknown-linux-gnu` in `firmware/`
//! (the `.cargo/config.toml` default target is the Cortex-M4F).

#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod balancer;
pub mod board;
pub mod golden;
pub mod hil;
pub mod lan9118;
pub mod memcache;
pub mod report;
pub mod scenario;
pub mod uart;
pub mod udplb;

#[cfg(test)]
mod tests;
