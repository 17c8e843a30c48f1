//! The hardware-in-the-loop firmware's serving loop: chring's line protocol
//! ([`chring::protocol`]) over any byte link with `embedded-io` traits.
//!
//! Bytes go through a [`LineBuffer`] into a [`Controller`]; each line's reply is
//! written back as soon as the line ends, stamped with the tick of a
//! [`Monotonic`] source (SysTick on the board). Nothing here panics on any input:
//! the protocol answers every bad line with `-ERR` and reads on.
//!
//! `src/bin/hil.rs` runs [`serve`] forever on the board's UART
//! ([`crate::uart::CmsdkUart`]); the host tests run it on an in-memory stream.

use core::fmt;

use chring::protocol::{Controller, LineBuffer};
use embedded_io::{Read, Write};

use crate::board::Monotonic;

/// How much a [`serve`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(target_os = "none", derive(defmt::Format))]
pub struct Served {
    /// Bytes read.
    pub bytes: u64,
    /// Lines answered (blank lines get no reply and are not counted).
    pub replies: u64,
}

/// `core::fmt::Write` on an `embedded_io::Write`, keeping the first error.
struct Sink<'a, W: Write> {
    w: &'a mut W,
    error: Option<W::Error>,
}

impl<W: Write> fmt::Write for Sink<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.error.is_some() {
            return Err(fmt::Error);
        }
        self.w.write_all(s.as_bytes()).map_err(|e| {
            self.error = Some(e);
            fmt::Error
        })
    }
}

/// Serves the protocol on `link` until it reports end of input (a read of 0
/// bytes; a UART never does, so on the board this never returns `Ok`).
///
/// # Errors
/// The link's first read or write error (the line being answered then has a
/// partial or no reply; the controller's state is as the command left it).
pub fn serve<
    S,
    M,
    const B: usize,
    const P: usize,
    const MG: usize,
    const N: usize,
    const L: usize,
>(
    link: &mut S,
    ctl: &mut Controller<B, P, MG, N>,
    clock: &mut M,
    line: &mut LineBuffer<L>,
) -> Result<Served, S::Error>
where
    S: Read + Write,
    M: Monotonic,
{
    serve_with(link, ctl, clock, line, |_| {})
}

/// [`serve`], calling `after` with the running totals after each reply (the
/// firmware logs its stack use from there now and then).
///
/// # Errors
/// As [`serve`].
pub fn serve_with<
    S,
    M,
    const B: usize,
    const P: usize,
    const MG: usize,
    const N: usize,
    const L: usize,
>(
    link: &mut S,
    ctl: &mut Controller<B, P, MG, N>,
    clock: &mut M,
    line: &mut LineBuffer<L>,
    mut after: impl FnMut(&Served),
) -> Result<Served, S::Error>
where
    S: Read + Write,
    M: Monotonic,
{
    let mut served = Served::default();
    let mut chunk = [0u8; 64];
    loop {
        let n = link.read(&mut chunk)?;
        if n == 0 {
            return Ok(served);
        }
        served.bytes = served.bytes.saturating_add(n as u64);
        for &byte in chunk.get(..n).unwrap_or(&[]) {
            let Some(l) = line.push(byte) else {
                continue;
            };
            let mut sink = Sink {
                w: &mut *link,
                error: None,
            };
            let replied = ctl.handle(l, clock.now(), &mut sink);
            if let Some(e) = sink.error {
                return Err(e);
            }
            if replied == Ok(true) {
                served.replies = served.replies.saturating_add(1);
                after(&served);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::RequestClock;
    use chring::Instant;
    use chring::protocol::rig::{HIL_LINE, hil_controller};
    use core::convert::Infallible;

    /// A link that hands out `input` at most `step` bytes per read and records
    /// what is written.
    struct Mem<'a> {
        input: &'a [u8],
        step: usize,
        out: Vec<u8>,
    }

    impl embedded_io::ErrorType for Mem<'_> {
        type Error = Infallible;
    }

    impl Read for Mem<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
            let n = self.step.min(buf.len()).min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input = &self.input[n..];
            Ok(n)
        }
    }

    impl Write for Mem<'_> {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
            self.out.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Infallible> {
            Ok(())
        }
    }

    const SCRIPT: &[u8] = b"PING\r\nADD_SERVER server-0\nADD_SERVER server-1 2\nadd_server server-2\n\
        ROUTE customer-1\nROUTE customer-2\nROUTE customer-1\nDOWN server-1\nROUTE customer-2\n\
        REPLICAS customer-9 3\nSTRATEGY maglev\nROUTE customer-77\nSERVERS\nBOGUS\n\xff\n\n\
        ROUTE xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\
        STATS\nREMOVE_SERVER server-0\nSTATS\nRESET\nSERVERS\n";

    /// The replies the same controller gives when driven directly.
    fn expected() -> Vec<u8> {
        let mut ctl = hil_controller();
        let mut line: LineBuffer<HIL_LINE> = LineBuffer::new();
        let mut out = String::new();
        let mut tick = 0;
        for &b in SCRIPT {
            if let Some(l) = line.push(b) {
                ctl.handle(l, Instant(tick), &mut out).unwrap();
                tick += 1;
            }
        }
        out.into_bytes()
    }

    #[test]
    fn serves_the_protocol_over_any_chunking() {
        let want = expected();
        let text = String::from_utf8(want.clone()).unwrap();
        assert!(text.contains("-ERR unknown command\r\n-ERR bad utf-8\r\n-ERR line too long\r\n"));
        assert!(text.ends_with("+OK reset\r\n*0\r\n"));
        for step in [1, 7, 64] {
            let mut link = Mem {
                input: SCRIPT,
                step,
                out: Vec::new(),
            };
            let mut ctl = hil_controller();
            let mut line = LineBuffer::<HIL_LINE>::new();
            let served =
                serve(&mut link, &mut ctl, &mut RequestClock::new(0, 1), &mut line).unwrap();
            assert_eq!(String::from_utf8(link.out).unwrap(), text, "step {step}");
            assert_eq!(served.bytes, SCRIPT.len() as u64);
            assert_eq!(served.replies, 21);
        }
        let mut calls = 0;
        let mut link = Mem {
            input: SCRIPT,
            step: 64,
            out: Vec::new(),
        };
        let (mut ctl, mut line) = (hil_controller(), LineBuffer::<HIL_LINE>::new());
        let mut clock = RequestClock::new(0, 1);
        serve_with(&mut link, &mut ctl, &mut clock, &mut line, |s| {
            calls += 1;
            assert_eq!(s.replies, calls);
        })
        .unwrap();
        assert_eq!(calls, 21);
    }

    #[test]
    fn stops_at_the_first_write_error() {
        struct Broken;
        impl embedded_io::ErrorType for Broken {
            type Error = embedded_io::ErrorKind;
        }
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
                buf[..5].copy_from_slice(b"PING\n");
                Ok(5)
            }
        }
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> Result<usize, Self::Error> {
                Err(embedded_io::ErrorKind::BrokenPipe)
            }
            fn flush(&mut self) -> Result<(), Self::Error> {
                Ok(())
            }
        }
        let mut ctl = hil_controller();
        let mut line = LineBuffer::<HIL_LINE>::new();
        let r = serve(
            &mut Broken,
            &mut ctl,
            &mut RequestClock::new(0, 1),
            &mut line,
        );
        assert_eq!(r, Err(embedded_io::ErrorKind::BrokenPipe));
    }
}
