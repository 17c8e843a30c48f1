//! `host-sim lb-compare`'s HTTP/1.1 reader (host-sim/src/lbcompare/http.rs),
//! which its backends read requests with and its client reads the balancers'
//! answers with, on arbitrary bytes: messages are read one after another, as
//! on a keep-alive connection, until the input ends or is refused.
//!
//! Checked: no panic; every head read has at most `MAX_HEADERS` headers, no
//! line longer than `MAX_LINE`, header names and values trimmed; every body is
//! at most `MAX_BODY` bytes; the reader always consumes input (no message is
//! read from nothing, so the loop ends).
#![no_main]

use host_sim::lbcompare::http::{MAX_BODY, MAX_HEADERS, MAX_LINE, read_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    // Responses (first byte odd) may run their body to the end of the stream.
    let until_close = mode & 1 == 1;
    for _ in 0..64 {
        let before = rest.len();
        let head = match read_head(&mut rest) {
            Ok(Some(h)) => h,
            Ok(None) | Err(_) => return,
        };
        assert!(rest.len() < before, "a head read from nothing");
        assert!(head.headers.len() <= MAX_HEADERS);
        assert!(head.start.len() as u64 <= MAX_LINE);
        for (n, v) in &head.headers {
            assert!(n.len() as u64 + v.len() as u64 <= MAX_LINE);
            assert_eq!(n.trim(), n);
            assert_eq!(v.trim(), v);
        }
        let _ = (
            head.status(),
            head.target(),
            head.closes(),
            head.header("x-backend"),
        );
        match head.read_body(&mut rest, until_close) {
            Ok(body) => assert!(body.len() as u64 <= MAX_BODY),
            Err(_) => return,
        }
    }
});
