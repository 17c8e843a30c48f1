//! The `udplb` firmware's balancer on arbitrary datagrams and control lines:
//! memcached's UDP frame and request parsers, the pending table, the split of
//! multi-key gets and the merge of their replies (`firmware/src/udplb.rs`).
//!
//! Input: a sequence of records `[kind, len, bytes...]`: kind % 4 picks a
//! client datagram, a server datagram (from the server `kind / 4 % 4`), a
//! control line, or a reply to the last request forwarded (the record's bytes
//! after its frame header, under the id the device gave). The clock moves by
//! `kind / 16` ms per record, so requests and merges expire.
//!
//! Checked after every record: no panic; every datagram sent is at most
//! `MAX_DATAGRAM` bytes and has a frame header, one of one datagram when it
//! goes to a server (replies are relayed with the server's); a client only
//! gets datagrams under the request id it used, from the client-facing port;
//! the pending table never holds more than `PENDING`; control replies end in
//! CR LF, and `*n` is followed by n lines.
#![no_main]

use chring::Instant;
use chring_firmware::memcache::{FrameHeader, MAX_DATAGRAM, Request};
use chring_firmware::udplb::{Endpoint, PENDING, To, Udplb};
use libfuzzer_sys::fuzz_target;

const CLIENT: Endpoint = Endpoint {
    addr: [10, 0, 2, 2],
    port: 40_000,
};

fn server(i: u8) -> String {
    format!("10.0.2.2:{}", 11_300 + u16::from(i))
}

fuzz_target!(|data: &[u8]| {
    let mut lb = Box::new(Udplb::new());
    for i in 0..3 {
        lb.add(&server(i), 1).expect("3 servers fit");
    }
    let mut now = 0u32;
    let mut last_forward: Option<(Endpoint, u16)> = None;
    let mut rest = data;
    while let [kind, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(n);
        rest = next;
        now = now.wrapping_add(u32::from(kind / 16));
        // The parsers alone never panic either.
        if let Ok((_, payload)) = FrameHeader::parse(bytes) {
            let _ = Request::parse(payload).map(|r| r.keys().count());
        }
        let mut client_id = None;
        let mut sent: Vec<(To, Vec<u8>)> = Vec::new();
        let mut out = |to: To, b: &[u8]| sent.push((to, b.to_vec()));
        match kind % 4 {
            0 => {
                client_id = FrameHeader::parse(bytes).ok().map(|(h, _)| h.request_id);
                lb.on_client(CLIENT, bytes, Instant(now), &mut out);
            }
            1 => {
                let from = Endpoint::parse(&server(kind / 4 % 4)).expect("valid");
                lb.on_server(from, bytes, Instant(now), &mut out);
            }
            2 => {
                let line: Vec<u8> = bytes
                    .iter()
                    .copied()
                    .filter(|&b| b != b'\n' && b != b'\r')
                    .collect();
                let mut reply = String::new();
                lb.control(Ok(&line), &[("extra", 1)], &mut reply)
                    .expect("a String never fails");
                if !reply.is_empty() {
                    assert!(reply.ends_with("\r\n"), "{reply:?}");
                    let lines: Vec<&str> =
                        reply.strip_suffix("\r\n").unwrap().split("\r\n").collect();
                    if let Some(n) = lines[0].strip_prefix('*') {
                        assert_eq!(n.parse::<usize>().unwrap(), lines.len() - 1, "{reply:?}");
                        assert!(lines[1..].iter().all(|l| l.starts_with('+')), "{reply:?}");
                    } else {
                        assert_eq!(lines.len(), 1, "{reply:?}");
                    }
                }
            }
            _ => {
                if let Some((from, id)) = last_forward {
                    let mut d = FrameHeader::single(id).to_bytes().to_vec();
                    d.extend_from_slice(bytes);
                    lb.on_server(from, &d, Instant(now), &mut out);
                }
            }
        }
        for (to, d) in &sent {
            assert!(d.len() <= MAX_DATAGRAM, "{} bytes", d.len());
            let (h, _) = FrameHeader::parse(d).expect("every datagram has a frame header");
            match *to {
                To::Client(c) => {
                    assert_eq!(c, CLIENT);
                    if let Some(id) = client_id {
                        assert_eq!(h.request_id, id, "an answer under another id");
                    }
                }
                To::Server(s) => {
                    assert_eq!((h.sequence, h.total, h.reserved), (0, 1, 0));
                    last_forward = Some((s, h.request_id));
                }
            }
        }
        assert!(lb.pending() <= PENDING);
    }
});
