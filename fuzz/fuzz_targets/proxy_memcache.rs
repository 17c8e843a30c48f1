//! chring-proxy's memcached ASCII framing on arbitrary bytes
//! (`chring_proxy::memcache`).
//!
//! Checked: nothing panics; a parsed request takes at most the bytes given
//! and its key spans lie inside its first line; a storage command's data
//! block ends in CR LF; a `noreply` span really spells ` noreply`; a measured
//! reply fits the input, and `value_blocks` spans lie inside it.
#![no_main]

use chring_proxy::memcache::{Command, ReplyShape, parse_request, reply_len, value_blocks};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    for _ in 0..64 {
        let Ok(Some(req)) = parse_request(rest, 1 << 16) else {
            break;
        };
        assert!(req.len > 0 && req.len <= rest.len());
        let line_end = rest
            .iter()
            .position(|&b| b == b'\n')
            .expect("a parsed request has a line");
        assert!(req.name.end <= line_end);
        match &req.command {
            Command::Get { keys, .. } => {
                assert!(!keys.is_empty());
                for k in keys {
                    assert!(k.start < k.end && k.end <= line_end);
                }
            }
            Command::Keyed {
                key,
                noreply,
                noreply_span,
            } => {
                assert!(key.start < key.end && key.end <= line_end);
                assert_eq!(*noreply, noreply_span.is_some());
                if let Some(s) = noreply_span {
                    let cut = &rest[s.clone()];
                    assert!(cut.ends_with(b"noreply"), "{cut:?}");
                }
                if req.len > line_end + 1 {
                    assert_eq!(&rest[req.len - 2..req.len], b"\r\n");
                }
            }
            Command::Version | Command::Quit | Command::Refused(_) => {
                assert_eq!(req.len, line_end + 1);
            }
        }
        rest = &rest[req.len..];
    }
    for shape in [ReplyShape::Values, ReplyShape::Line] {
        if let Ok(Some(n)) = reply_len(data, shape) {
            assert!(n <= data.len());
            if shape == ReplyShape::Values {
                let (blocks, _) = value_blocks(&data[..n]);
                for (k, b) in blocks {
                    assert!(k.start >= b.start && k.end <= b.end && b.end <= n);
                }
            }
        }
    }
});
