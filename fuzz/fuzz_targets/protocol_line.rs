//! The control protocol on arbitrary bytes: `LineBuffer` framing against a
//! model splitter, and every completed line through a `Controller`.
//!
//! Input: byte 0 picks the flow table's TTL and where the clock starts (near
//! the `u32` wrap or not); the rest is the byte stream of the link. The clock
//! advances by `len % 5` ticks per line, so flows expire and the counter wraps.
//!
//! Checked after every line (DESIGN.md §8, `core/src/protocol.rs` module docs):
//! - framing: the lines `LineBuffer<32>` completes are exactly those of the
//!   model (LF, CR or CR LF end a line; longer than 32 bytes -> `LineTooLong`);
//! - a blank line gets no reply, every other line exactly one, ending in CR LF;
//!   `*n` is followed by exactly n lines, each `+...`;
//! - `-ERR` replies are counted in `Counters::errors` (zeroed by `RESET`);
//! - a successful `ROUTE` names a server of the fleet that is up.
#![no_main]

use chring::protocol::{Command, Controller, LineBuffer, LineTooLong};
use chring::{Duration, Instant};
use libfuzzer_sys::fuzz_target;

const LINE: usize = 32;
type Ctl = Controller<4, 256, 31, 8>;

/// The model: the lines of `bytes` (Ok(line) or Err for an over-long one) and
/// the length of the unterminated tail.
fn model_lines(bytes: &[u8]) -> (Vec<Result<Vec<u8>, LineTooLong>>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    let mut start = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\r' || b == b'\n' {
            let line = &bytes[start..i];
            out.push(if line.len() > LINE {
                Err(LineTooLong)
            } else {
                Ok(line.to_vec())
            });
            // CR LF is one terminator.
            if b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                i += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    (out, bytes.len() - start)
}

fn check_reply(reply: &str, line: &[u8]) {
    assert!(
        reply.ends_with("\r\n"),
        "reply {reply:?} to {line:?} lacks CR LF"
    );
    let lines: Vec<&str> = reply.strip_suffix("\r\n").unwrap().split("\r\n").collect();
    let first = lines[0];
    match first.as_bytes().first() {
        Some(b'+') | Some(b':') => assert_eq!(lines.len(), 1, "{reply:?}"),
        Some(b'-') => {
            assert!(first.starts_with("-ERR "), "{reply:?}");
            assert_eq!(lines.len(), 1, "{reply:?}");
        }
        Some(b'*') => {
            let n: usize = first[1..].parse().expect("array length");
            assert_eq!(lines.len(), n + 1, "array reply {reply:?}");
            assert!(lines[1..].iter().all(|l| l.starts_with('+')), "{reply:?}");
        }
        _ => panic!("reply {reply:?} to {line:?} has no type byte"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, stream)) = data.split_first() else {
        return;
    };
    let ttl = Duration(1 + u32::from(cfg & 0x3f));
    let mut now = if cfg & 0x80 != 0 { u32::MAX - 40 } else { 0 };
    let mut ctl = Ctl::new(16, ttl).expect("valid configuration");
    let mut buf: LineBuffer<LINE> = LineBuffer::new();
    let (expected, tail) = model_lines(stream);
    let mut got = 0usize;
    let mut errors = 0u64;
    let mut out = String::new();
    for &b in stream {
        let Some(line) = buf.push(b) else { continue };
        let owned: Result<Vec<u8>, LineTooLong> = line.map(<[u8]>::to_vec);
        assert_eq!(
            Some(&owned),
            expected.get(got),
            "line {got} differs from the model"
        );
        got += 1;
        now = now.wrapping_add(owned.as_ref().map_or(0, |l| l.len() as u32 % 5));
        out.clear();
        let replied = ctl
            .handle(line, Instant(now), &mut out)
            .expect("String never fails");
        let bytes = owned.as_deref().unwrap_or(&[]);
        let blank = owned.is_ok() && bytes.iter().all(|&c| c == b' ' || c == b'\t');
        assert_eq!(replied, !out.is_empty());
        assert_eq!(replied, !blank, "blank line {bytes:?}: replied {out:?}");
        if !replied {
            continue;
        }
        check_reply(&out, bytes);
        if out.starts_with("-ERR ") {
            errors += 1;
        }
        if out == "+OK reset\r\n" {
            // RESET zeroes the counters (module docs, "Semantics").
            errors = 0;
        }
        if owned.is_err() {
            assert_eq!(out, "-ERR line too long\r\n");
        }
        if let (Ok(Command::Route(_)), Some(name)) = (Command::parse(bytes), out.strip_prefix('+'))
        {
            let name = name.trim_end_matches("\r\n");
            let server = ctl.servers().find(|s| s.name.as_str() == name);
            assert!(
                server.is_some_and(|s| s.up),
                "ROUTE answered {name:?}, not a server that is up"
            );
        }
        assert_eq!(ctl.counters().errors, errors);
    }
    assert_eq!(got, expected.len(), "lines completed");
    // A partial line is held (up to the buffer's size) until its end comes; a
    // stream that ends with a terminator leaves nothing pending.
    if matches!(stream.last(), Some(b'\r' | b'\n')) {
        assert_eq!(buf.pending(), 0);
    } else if !stream.is_empty() {
        assert_eq!(buf.pending(), tail.min(LINE));
    }
});
