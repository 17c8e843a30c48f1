//! Framing: bytes in, lines out ([`LineBuffer`]).

/// A line that did not fit the [`LineBuffer`]; it was dropped up to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LineTooLong;

/// What [`LineBuffer::push`] completed: a line (without its terminator), or the
/// news that an over-long one ended.
pub type LineResult<'a> = Result<&'a [u8], LineTooLong>;

/// Accumulates bytes into lines in a fixed `N`-byte buffer (see the
/// [module docs](super) for the framing rules). *O*(1) per byte.
#[derive(Debug, Clone)]
pub struct LineBuffer<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// The current line outgrew the buffer: drop bytes up to its end.
    overflow: bool,
    /// The last line ended with CR: an LF right after it is not a new line.
    after_cr: bool,
    /// The last push completed a line: the next one starts a new line.
    done: bool,
}

impl<const N: usize> Default for LineBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineBuffer<N> {
    /// An empty buffer.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            overflow: false,
            after_cr: false,
            done: false,
        }
    }

    /// Drops a partial line.
    pub fn clear(&mut self) {
        self.len = 0;
        self.overflow = false;
        self.after_cr = false;
        self.done = false;
    }

    /// Bytes of the current, unfinished line held so far: 0 right after a push
    /// that completed a line (whose slice stays valid until the next push).
    #[must_use]
    pub const fn pending(&self) -> usize {
        if self.done { 0 } else { self.len }
    }

    /// Takes one byte; returns the line it completes, if any. The returned slice
    /// is valid until the next push.
    ///
    /// # Errors
    /// [`LineTooLong`] at the end of a line longer than `N` bytes.
    pub fn push(&mut self, byte: u8) -> Option<LineResult<'_>> {
        if self.done {
            self.len = 0;
            self.overflow = false;
            self.done = false;
        }
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match byte {
            b'\n' if after_cr => None,
            b'\n' | b'\r' => {
                self.after_cr = byte == b'\r';
                self.done = true;
                if self.overflow {
                    Some(Err(LineTooLong))
                } else {
                    Some(Ok(self.buf.get(..self.len).unwrap_or(&[])))
                }
            }
            _ if self.overflow => None,
            _ => {
                match self.buf.get_mut(self.len) {
                    Some(slot) => {
                        *slot = byte;
                        self.len += 1;
                    }
                    None => self.overflow = true,
                }
                None
            }
        }
    }
}
