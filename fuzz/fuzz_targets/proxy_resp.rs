//! chring-proxy's RESP2 framing on arbitrary bytes (`chring_proxy::resp`).
//!
//! Checked: nothing panics; a parsed request takes at most the bytes given,
//! its argument spans lie inside it in order, each followed by CR LF; every
//! strict prefix of a complete request is "incomplete" or the same error
//! class (never a different request); a measured reply fits the input and
//! an array's elements tile it.
#![no_main]

use chring_proxy::resp::{FrameError, array_elements, parse_request, reply_len};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let max = 1 << 16;
    let mut args = Vec::new();
    let mut rest = data;
    // Every request in the input, as the proxy reads them.
    for _ in 0..64 {
        match parse_request(rest, max, &mut args) {
            Ok(Some(n)) => {
                assert!(n > 0 && n <= rest.len());
                let mut prev = 0;
                for a in &args {
                    assert!(a.start >= prev && a.end <= n && a.start <= a.end);
                    assert_eq!(rest.get(a.end..a.end + 2), Some(&b"\r\n"[..]));
                    prev = a.end;
                }
                // A strict prefix is never a complete request.
                let mut scratch = Vec::new();
                for cut in [n / 2, n.saturating_sub(1)] {
                    if cut < n {
                        let r = parse_request(&rest[..cut], max, &mut scratch);
                        assert!(
                            matches!(r, Ok(None) | Err(FrameError::Protocol(_))) || cut == 0,
                            "{r:?}"
                        );
                        assert!(!matches!(r, Ok(Some(_))));
                    }
                }
                rest = &rest[n..];
            }
            Ok(None) | Err(_) => break,
        }
    }
    if let Ok(Some(n)) = reply_len(data) {
        assert!(n <= data.len());
        if let Some(elems) = array_elements(&data[..n]) {
            let mut at = elems.first().map_or(n, |e| e.start);
            for e in &elems {
                assert_eq!(e.start, at);
                at = e.end;
            }
            assert_eq!(at, n);
        }
    }
});
