//! What the balancer needs from a board, as embedded-hal 1.0 traits.
//!
//! - [`Indicators`]: one [`OutputPin`] per backend bay (high while a backend is in
//!   that bay and up) and a status pin (a heartbeat while routing, low when done).
//!   On the QEMU board they are the MPS2 SCC's eight user LEDs and the FPGA's LED0;
//!   on a real board, any GPIOs.
//! - a [`DelayNs`](embedded_hal::delay::DelayNs) paces the request loop (SysTick on
//!   QEMU).
//! - a [`Monotonic`] tick source stamps flow-table operations.
//!
//! The host tests drive the same code with embedded-hal-mock pins and delays.

use chring::{Backend, Instant};
use embedded_hal::digital::OutputPin;

/// A monotonic tick source for the flow table: a wrapping 32-bit counter that
/// never goes backwards (chring's [`Instant`]).
pub trait Monotonic {
    /// The current tick.
    fn now(&mut self) -> Instant;
}

/// A tick source that advances a fixed step per call: one tick per request
/// routed, so a run is the same on every device and in every emulator (a
/// hardware timer would make hit rates depend on the host's speed under QEMU).
/// Wraps at 2^32, as a hardware counter does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestClock {
    next: u32,
    step: u32,
}

impl RequestClock {
    /// Starts at `start` and advances `step` ticks per [`now`](Monotonic::now).
    #[must_use]
    pub const fn new(start: u32, step: u32) -> Self {
        Self { next: start, step }
    }
}

impl Monotonic for RequestClock {
    fn now(&mut self) -> Instant {
        let t = self.next;
        self.next = t.wrapping_add(self.step);
        Instant(t)
    }
}

/// Backend-bay pins and a status pin.
///
/// Bay `i` is the backend with id `i` (ids `0..B`). Pin errors are returned, not
/// ignored: a board whose GPIO can fail reports it.
#[derive(Debug)]
pub struct Indicators<P, Q, const B: usize> {
    bays: [P; B],
    status: Q,
    status_high: bool,
    lit: u32,
}

impl<P: OutputPin, Q: OutputPin<Error = P::Error>, const B: usize> Indicators<P, Q, B> {
    const CHECK: () = assert!(B <= 32, "Indicators: at most 32 bays (a u32 mask)");

    /// Takes the pins; drives nothing until the first call.
    #[must_use]
    pub const fn new(bays: [P; B], status: Q) -> Self {
        let () = Self::CHECK;
        Self {
            bays,
            status,
            status_high: false,
            lit: 0,
        }
    }

    /// Drives every bay pin: high when a backend with that id is in `fleet` and
    /// up, low otherwise. Returns the mask of lit bays (bit `i` = bay `i`).
    ///
    /// # Errors
    /// The first pin error; later pins are not driven then.
    pub fn show_fleet(&mut self, fleet: &[Backend]) -> Result<u32, P::Error> {
        let mut mask = 0u32;
        for (i, pin) in self.bays.iter_mut().enumerate() {
            let on = fleet.iter().any(|b| usize::from(b.id.0) == i && b.up);
            if on {
                pin.set_high()?;
                mask |= 1 << i;
            } else {
                pin.set_low()?;
            }
        }
        self.lit = mask;
        Ok(mask)
    }

    /// Drives the status pin.
    ///
    /// # Errors
    /// The pin's error.
    pub fn set_status(&mut self, high: bool) -> Result<(), P::Error> {
        if high {
            self.status.set_high()?;
        } else {
            self.status.set_low()?;
        }
        self.status_high = high;
        Ok(())
    }

    /// Inverts the status pin (the heartbeat).
    ///
    /// # Errors
    /// The pin's error.
    pub fn heartbeat(&mut self) -> Result<(), P::Error> {
        self.set_status(!self.status_high)
    }

    /// The mask of bays lit by the last [`show_fleet`](Self::show_fleet).
    #[must_use]
    pub const fn lit(&self) -> u32 {
        self.lit
    }

    /// Whether the status pin was last driven high.
    #[must_use]
    pub const fn status_high(&self) -> bool {
        self.status_high
    }

    /// Gives the pins back.
    pub fn release(self) -> ([P; B], Q) {
        (self.bays, self.status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chring::BackendId;
    use embedded_hal_mock::eh1::digital::{Mock, State, Transaction as T};

    fn backend(id: u16, up: bool) -> Backend {
        Backend {
            id: BackendId(id),
            name_hash: u64::from(id),
            weight: 1,
            up,
            load: 0,
        }
    }

    #[test]
    fn bays_follow_the_fleet_and_status_toggles() {
        let bays = [
            Mock::new(&[T::set(State::High), T::set(State::High)]),
            Mock::new(&[T::set(State::Low), T::set(State::Low)]),
            Mock::new(&[T::set(State::High), T::set(State::Low)]),
        ];
        let status = Mock::new(&[T::set(State::High), T::set(State::Low), T::set(State::High)]);
        let mut ind = Indicators::new(bays, status);
        // Bay 1 is down; id 7 has no bay.
        let fleet = [
            backend(0, true),
            backend(1, false),
            backend(2, true),
            backend(7, true),
        ];
        assert_eq!(ind.show_fleet(&fleet), Ok(0b101));
        assert_eq!(ind.show_fleet(&fleet[..2]), Ok(0b001));
        assert_eq!(ind.lit(), 0b001);
        ind.heartbeat().unwrap();
        assert!(ind.status_high());
        ind.heartbeat().unwrap();
        ind.set_status(true).unwrap();
        let (bays, mut status) = ind.release();
        for mut b in bays {
            b.done();
        }
        status.done();
    }

    #[test]
    fn request_clock_steps_and_wraps() {
        let mut c = RequestClock::new(u32::MAX - 1, 1);
        assert_eq!(
            [c.now(), c.now(), c.now()],
            [Instant(u32::MAX - 1), Instant(u32::MAX), Instant(0)]
        );
    }
}
