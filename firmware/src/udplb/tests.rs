//! The balancer's behaviour, packet by packet.

use super::*;
use chring::protocol::LineBuffer;

const CLIENT: Endpoint = Endpoint {
    addr: [10, 0, 2, 2],
    port: 40_000,
};

fn server(i: u16) -> String {
    format!("10.0.2.2:{}", 11_300 + i)
}

fn ep(name: &str) -> Endpoint {
    Endpoint::parse(name).unwrap()
}

/// A balancer with `n` servers.
fn fleet(n: u16) -> Box<Udplb> {
    let mut lb = Box::new(Udplb::new());
    for i in 0..n {
        lb.add(&server(i), 1).unwrap();
    }
    lb
}

fn dgram(id: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = FrameHeader::single(id).to_bytes().to_vec();
    d.extend_from_slice(payload);
    d
}

/// Runs `on_client` and collects what it sends.
fn client(lb: &mut Udplb, id: u16, payload: &[u8], now: u32) -> Vec<(To, Vec<u8>)> {
    let mut sent = Vec::new();
    lb.on_client(
        CLIENT,
        &dgram(id, payload),
        Instant(now),
        &mut |to, b: &[u8]| sent.push((to, b.to_vec())),
    );
    sent
}

fn reply(lb: &mut Udplb, from: Endpoint, d: &[u8], now: u32) -> Vec<(To, Vec<u8>)> {
    let mut sent = Vec::new();
    lb.on_server(from, d, Instant(now), &mut |to, b: &[u8]| {
        sent.push((to, b.to_vec()))
    });
    sent
}

fn split(d: &[u8]) -> (FrameHeader, &[u8]) {
    FrameHeader::parse(d).unwrap()
}

/// An independent ketama pool with twemproxy's identities for the same servers.
fn model(n: u16) -> Ketama<8, 1280, 32> {
    let mut k = Ketama::new(KeyHash::Md5);
    for i in 0..n {
        k.add(server(i).as_bytes(), 1).unwrap();
    }
    k
}

#[test]
fn endpoints_parse_strictly() {
    assert_eq!(
        Endpoint::parse("10.0.2.2:11211"),
        Some(Endpoint {
            addr: [10, 0, 2, 2],
            port: 11211
        })
    );
    for bad in [
        "10.0.2.2",
        "10.0.2:1",
        "10.0.2.2.2:1",
        "10.0.2.256:1",
        "10.0.2.2:0",
        "10.0.2.2:65536",
        "a.b.c.d:1",
        "10.0.2.2:+1",
        ":1",
        "10.0.2.2:",
    ] {
        assert_eq!(Endpoint::parse(bad), None, "{bad}");
    }
    assert_eq!(ep("1.2.3.4:5").to_string(), "1.2.3.4:5");
}

#[test]
fn ketama_places_keys_as_twemproxy_does() {
    let lb = fleet(5);
    let m = model(5);
    for i in 0..2000 {
        let key = format!("c{i}");
        assert_eq!(
            lb.pick(key.as_bytes()),
            m.server_for(key.as_bytes()),
            "{key}"
        );
    }
    // The default port is left out of the identity, as twemproxy does.
    let mut lb = Udplb::new();
    lb.add("10.0.2.2:11211", 1).unwrap();
    lb.add("10.0.2.2:11212", 1).unwrap();
    let mut k: Ketama<8, 1280, 32> = Ketama::new(KeyHash::Md5);
    k.add(b"10.0.2.2", 1).unwrap();
    k.add(b"10.0.2.2:11212", 1).unwrap();
    for i in 0..500 {
        let key = format!("k{i}");
        assert_eq!(lb.pick(key.as_bytes()), k.server_for(key.as_bytes()));
    }
}

#[test]
fn a_down_server_sends_its_keys_clockwise_and_moves_no_other() {
    for d in [Distribution::Ketama, Distribution::Ring] {
        let mut lb = fleet(5);
        lb.switch(d);
        let before: Vec<_> = (0..3000)
            .map(|i| lb.pick(format!("c{i}").as_bytes()).unwrap())
            .collect();
        lb.set_up(&server(2), false).unwrap();
        let mut moved = 0;
        for (i, &b) in before.iter().enumerate() {
            let now = lb.pick(format!("c{i}").as_bytes()).unwrap();
            if b == 2 {
                assert_ne!(now, 2);
                moved += 1;
            } else {
                assert_eq!(now, b, "{d:?}: key c{i} of a healthy server moved");
            }
        }
        assert!(moved > 300, "{d:?}: {moved}");
        lb.set_up(&server(2), true).unwrap();
        for (i, &b) in before.iter().enumerate() {
            assert_eq!(lb.pick(format!("c{i}").as_bytes()), Some(b));
        }
        for i in 0..5 {
            lb.set_up(&server(i), false).unwrap();
        }
        assert_eq!(lb.pick(b"c1"), None);
    }
}

#[test]
fn the_ketama_fallback_is_the_next_point_clockwise() {
    let mut lb = fleet(4);
    let m = model(4);
    lb.set_up(&server(1), false).unwrap();
    for i in 0..1000 {
        let key = format!("c{i}");
        let h = KeyHash::Md5.hash(key.as_bytes());
        let pts = m.points();
        let start = pts.partition_point(|p| p.value < h);
        let want = (0..pts.len())
            .map(|j| usize::from(pts[(start + j) % pts.len()].server))
            .find(|&s| s != 1);
        assert_eq!(lb.pick(key.as_bytes()), want, "{key}");
    }
}

#[test]
fn a_get_is_forwarded_under_a_fresh_id_and_its_reply_relayed() {
    let mut lb = fleet(3);
    let want = lb.pick(b"c7").unwrap();
    let sent = client(&mut lb, 0xBEEF, b"get c7\r\n", 0);
    assert_eq!(sent.len(), 1);
    let (to, d) = &sent[0];
    assert_eq!(*to, To::Server(ep(&server(want as u16))));
    let (h, p) = split(d);
    assert_eq!(p, b"get c7\r\n");
    assert_eq!((h.sequence, h.total), (0, 1));
    assert_eq!(lb.pending(), 1);

    let mut r = FrameHeader::single(h.request_id).to_bytes().to_vec();
    r.extend_from_slice(b"VALUE c7 0 2\r\nhi\r\nEND\r\n");
    let back = reply(&mut lb, ep(&server(want as u16)), &r, 5);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].0, To::Client(CLIENT));
    let (h2, p2) = split(&back[0].1);
    assert_eq!(h2, FrameHeader::single(0xBEEF));
    assert_eq!(p2, b"VALUE c7 0 2\r\nhi\r\nEND\r\n");
    assert_eq!(lb.pending(), 0);
    // The same reply again is late: nobody waits for it.
    assert!(reply(&mut lb, ep(&server(want as u16)), &r, 6).is_empty());
    let c = lb.counters();
    assert_eq!(
        (c.requests, c.forwarded, c.replies, c.unmatched),
        (1, 1, 1, 1)
    );
}

#[test]
fn a_reply_from_another_address_is_not_relayed() {
    let mut lb = fleet(3);
    let want = lb.pick(b"k").unwrap() as u16;
    let sent = client(&mut lb, 1, b"get k\r\n", 0);
    let (h, _) = split(&sent[0].1);
    let r = dgram(h.request_id, b"END\r\n");
    let other = ep(&server((want + 1) % 3));
    assert!(reply(&mut lb, other, &r, 1).is_empty());
    assert_eq!(lb.counters().unmatched, 1);
    assert_eq!(reply(&mut lb, ep(&server(want)), &r, 2).len(), 1);
}

#[test]
fn a_reply_of_several_datagrams_is_relayed_datagram_by_datagram() {
    let mut lb = fleet(2);
    let s = ep(&server(lb.pick(b"big").unwrap() as u16));
    let sent = client(&mut lb, 9, b"get big\r\n", 0);
    let (h, _) = split(&sent[0].1);
    for seq in [0u16, 1, 2] {
        let mut d = FrameHeader {
            request_id: h.request_id,
            sequence: seq,
            total: 3,
            reserved: 0,
        }
        .to_bytes()
        .to_vec();
        d.extend_from_slice(&[b'x'; 1395]);
        d.extend_from_slice(if seq == 2 { b"END\r\n" } else { b"xxxxx" });
        assert_eq!(lb.pending(), 1);
        let out = reply(&mut lb, s, &d, 1);
        let (oh, op) = split(&out[0].1);
        assert_eq!((oh.request_id, oh.sequence, oh.total), (9, seq, 3));
        assert_eq!(op.len(), 1400);
    }
    assert_eq!(lb.pending(), 0, "done after the third datagram");
}

/// memcached 1.6.18, checked: `get k1 big k2` over UDP is answered with one
/// message per value and the last with `END`, each from sequence 0.
#[test]
fn a_reply_of_several_messages_is_relayed_until_end() {
    let mut lb = fleet(1);
    let s = ep(&server(0));
    let sent = client(&mut lb, 12, b"get k1 k2 k3\r\n", 0);
    let (h, _) = split(&sent[0].1);
    let msgs: [&[u8]; 3] = [
        b"VALUE k1 0 5\r\nhello\r\n",
        b"VALUE k2 0 3\r\nabc\r\n",
        b"END\r\n",
    ];
    for (i, m) in msgs.iter().enumerate() {
        let out = reply(&mut lb, s, &dgram(h.request_id, m), 1);
        assert_eq!(split(&out[0].1), (FrameHeader::single(12), *m));
        assert_eq!(lb.pending(), usize::from(i < 2));
    }
    // A set's reply is one message; an error ends a get.
    let sent = client(&mut lb, 13, b"set k 0 0 1\r\nx\r\n", 0);
    let (h, _) = split(&sent[0].1);
    reply(&mut lb, s, &dgram(h.request_id, b"STORED\r\n"), 1);
    let sent = client(&mut lb, 14, b"get k\r\n", 0);
    let (h2, _) = split(&sent[0].1);
    reply(
        &mut lb,
        s,
        &dgram(h2.request_id, b"SERVER_ERROR out of memory\r\n"),
        1,
    );
    assert_eq!(lb.pending(), 0);
}

#[test]
fn set_and_delete_are_routed_by_their_key_and_noreply_waits_for_nothing() {
    let mut lb = fleet(4);
    let want = To::Server(ep(&server(lb.pick(b"k1").unwrap() as u16)));
    let sent = client(&mut lb, 3, b"set k1 0 0 5\r\nhello\r\n", 0);
    assert_eq!(sent[0].0, want);
    assert_eq!(split(&sent[0].1).1, b"set k1 0 0 5\r\nhello\r\n");
    assert_eq!(lb.pending(), 1);
    let sent = client(&mut lb, 4, b"delete k1 noreply\r\n", 0);
    assert_eq!(sent[0].0, want);
    assert_eq!(lb.pending(), 1, "noreply: nothing to wait for");
}

#[test]
fn a_multi_key_get_is_split_per_server_and_merged_with_one_end() {
    let mut lb = fleet(3);
    let keys: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
    let line = format!("get {}\r\n", keys.join(" "));
    let sent = client(&mut lb, 77, line.as_bytes(), 0);
    let servers: std::collections::BTreeSet<_> = keys
        .iter()
        .map(|k| lb.pick(k.as_bytes()).unwrap())
        .collect();
    assert!(servers.len() > 1);
    assert_eq!(sent.len(), servers.len());
    assert_eq!(lb.counters().split, 1);
    let mut replies = Vec::new();
    for (to, d) in &sent {
        let To::Server(s) = *to else { panic!() };
        let (h, p) = split(d);
        let p = std::str::from_utf8(p).unwrap();
        let part: Vec<&str> = p.trim_end().split(' ').skip(1).collect();
        assert!(p.starts_with("get ") && p.ends_with("\r\n"));
        for k in &part {
            assert_eq!(ep(&server(lb.pick(k.as_bytes()).unwrap() as u16)), s);
        }
        // The server has every key but c3, and answers as memcached 1.6 does:
        // a message per value, then `END`.
        let mut r = Vec::new();
        for k in part.iter().filter(|&&k| k != "c3") {
            let v = format!(
                "VALUE {k} 0 4\r\nv-{}\r\n",
                &k[1..].parse::<u8>().unwrap() % 10
            );
            r.push(dgram(h.request_id, v.as_bytes()));
        }
        r.push(dgram(h.request_id, b"END\r\n"));
        replies.push((s, r));
    }
    let mut out = Vec::new();
    // The parts' messages interleave.
    let most = replies.iter().map(|r| r.1.len()).max().unwrap();
    let total: usize = replies.iter().map(|r| r.1.len()).sum();
    let mut n = 0;
    for i in 0..most {
        for (s, r) in &replies {
            if let Some(d) = r.get(i) {
                out = reply(&mut lb, *s, d, 1);
                n += 1;
                assert_eq!(out.is_empty(), n < total, "one reply, after the last part");
            }
        }
    }
    let (h, p) = split(&out[0].1);
    assert_eq!(out[0].0, To::Client(CLIENT));
    assert_eq!(h, FrameHeader::single(77));
    let p = std::str::from_utf8(p).unwrap();
    assert_eq!(p.matches("END\r\n").count(), 1);
    assert!(p.ends_with("END\r\n"));
    assert_eq!(p.matches("VALUE ").count(), 11);
    assert!(!p.contains("VALUE c3 "));
    let c = lb.counters();
    assert_eq!((c.merged, c.replies, lb.pending()), (1, 1, 0));
}

#[test]
fn a_failed_part_turns_the_merge_into_an_error() {
    let mut lb = fleet(3);
    let sent = client(&mut lb, 5, b"get c0 c1 c2 c3 c4 c5 c6 c7\r\n", 0);
    assert!(sent.len() > 1);
    let mut last = Vec::new();
    for (i, (to, d)) in sent.iter().enumerate() {
        let To::Server(s) = *to else { panic!() };
        let (h, _) = split(d);
        let body: &[u8] = if i == 0 {
            b"SERVER_ERROR out of memory\r\n"
        } else {
            b"END\r\n"
        };
        last = reply(&mut lb, s, &dgram(h.request_id, body), 1);
    }
    assert_eq!(
        split(&last[0].1).1,
        b"SERVER_ERROR multi-get reply too large\r\n"
    );
}

#[test]
fn merges_are_bounded_and_expire() {
    let mut lb = fleet(3);
    let line = b"get c0 c1 c2 c3 c4 c5 c6 c7\r\n";
    for i in 0..MERGE_SLOTS as u16 {
        assert!(client(&mut lb, i, line, 0).len() > 1);
    }
    let busy = client(&mut lb, 99, line, 1);
    assert_eq!(busy.len(), 1);
    assert_eq!(busy[0].0, To::Client(CLIENT));
    assert_eq!(
        split(&busy[0].1),
        (FrameHeader::single(99), &b"SERVER_ERROR busy\r\n"[..])
    );
    // No reply ever comes: after the TTL the parts expire and the slots free up.
    assert!(client(&mut lb, 100, line, PENDING_TTL_MS + 10).len() > 1);
    assert!(lb.counters().expired >= 2 * MERGE_SLOTS as u64);
}

#[test]
fn requests_without_replies_expire() {
    let mut lb = fleet(2);
    for i in 0..10 {
        client(&mut lb, i, format!("get k{i}\r\n").as_bytes(), 0);
    }
    assert_eq!(lb.pending(), 10);
    client(&mut lb, 11, b"get x\r\n", PENDING_TTL_MS + 1);
    assert_eq!(lb.pending(), 1);
    assert_eq!(lb.counters().expired, 10);
}

#[test]
fn bad_requests_are_answered_in_memcacheds_words() {
    let mut lb = fleet(2);
    let cases: &[(&[u8], &[u8])] = &[
        (b"incr a 1\r\n", b"ERROR\r\n"),
        (b"get\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (b"get a", b"CLIENT_ERROR bad command line format\r\n"),
    ];
    for &(req, want) in cases {
        let out = client(&mut lb, 42, req, 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, To::Client(CLIENT));
        assert_eq!(split(&out[0].1), (FrameHeader::single(42), want));
    }
    // A datagram of several packets.
    let mut d = FrameHeader {
        request_id: 8,
        sequence: 1,
        total: 2,
        reserved: 0,
    }
    .to_bytes()
    .to_vec();
    d.extend_from_slice(b"get a\r\n");
    let mut out = Vec::new();
    lb.on_client(CLIENT, &d, Instant(0), &mut |to, b: &[u8]| {
        out.push((to, b.to_vec()))
    });
    assert_eq!(
        split(&out[0].1).1,
        b"SERVER_ERROR multi-packet request not supported\r\n"
    );
    // Too short to answer.
    lb.on_client(CLIENT, &[1, 2, 3], Instant(0), &mut |_, _| {
        panic!("no reply possible")
    });
    assert_eq!(lb.counters().dropped, 1);
    // No server up.
    let mut empty = Udplb::new();
    let out = client(&mut empty, 1, b"get a\r\n", 0);
    assert_eq!(split(&out[0].1).1, b"SERVER_ERROR no server is up\r\n");
    assert_eq!(lb.counters().errors, 4);
}

/// Feeds control lines through a line buffer, as the UART does.
fn control(lb: &mut Udplb, script: &str) -> String {
    let mut line: LineBuffer<64> = LineBuffer::new();
    let mut out = String::new();
    for &b in script.as_bytes() {
        if let Some(l) = line.push(b) {
            lb.control(l, &[], &mut out).unwrap();
        }
    }
    out
}

#[test]
fn the_control_port_manages_the_fleet() {
    let mut lb = Udplb::new();
    let out = control(
        &mut lb,
        "PING\nADD_SERVER 10.0.2.2:11300\nADD_SERVER 10.0.2.2:11301 2\nADD_SERVER bogus\n\
         ADD_SERVER 10.0.2.2:11300\nSTRATEGY ring\nSTRATEGY maglev\nSTRATEGY\nDOWN 10.0.2.2:11301\n\
         SERVERS\nROUTE c1\nREPLICAS c1 2\nUP 10.0.2.2:11301\nREMOVE_SERVER 10.0.2.2:11300\n\
         REMOVE_SERVER 10.0.2.2:11300\n\nSTRATEGY ketama\nSERVERS\n",
    );
    assert_eq!(
        out,
        "+PONG\r\n+OK added 10.0.2.2:11300\r\n+OK added 10.0.2.2:11301\r\n\
         -ERR bad address (expected a.b.c.d:port)\r\n-ERR server already exists\r\n\
         +OK strategy ring\r\n-ERR unknown strategy (ketama or ring)\r\n\
         -ERR wrong number of arguments for 'STRATEGY'\r\n+OK 10.0.2.2:11301 down\r\n\
         *2\r\n+10.0.2.2:11300 1 up\r\n+10.0.2.2:11301 2 down\r\n+10.0.2.2:11300\r\n\
         -ERR unsupported command\r\n+OK 10.0.2.2:11301 up\r\n+OK removed 10.0.2.2:11300\r\n\
         -ERR unknown server\r\n+OK strategy ketama\r\n*1\r\n+10.0.2.2:11301 2 up\r\n"
    );
    // The ring holds a total weight of 8: 2 + 6 more, then no room.
    let mut script: String = (1..=7)
        .map(|p| format!("ADD_SERVER 10.0.2.2:{p}\n"))
        .collect();
    let out = control(&mut lb, &script);
    assert!(
        out.ends_with("+OK added 10.0.2.2:6\r\n-ERR not enough capacity for this weight\r\n"),
        "{out}"
    );
    assert_eq!(lb.servers().count(), 7);
    assert_eq!(control(&mut lb, "RESET\nSERVERS\n"), "+OK reset\r\n*0\r\n");
    script.push_str("ADD_SERVER 10.0.2.2:8\nADD_SERVER 10.0.2.2:9\n");
    let out = control(&mut lb, &script);
    assert!(
        out.ends_with("+OK added 10.0.2.2:8\r\n-ERR fleet is full\r\n"),
        "{out}"
    );
    assert_eq!(lb.servers().count(), 8);
    assert_eq!(control(&mut lb, "RESET\nSERVERS\n"), "+OK reset\r\n*0\r\n");
}

#[test]
fn a_refused_add_leaves_both_distributions_as_they_were() {
    let mut lb = fleet(2);
    // The ring holds a total weight of 8 (512 points at 64 per weight).
    assert_eq!(
        lb.add(&server(5), 7),
        Err(ControlError::Protocol(ProtocolError::NoRoom))
    );
    assert_eq!(lb.servers().count(), 2);
    let m = model(2);
    for i in 0..300 {
        let k = format!("c{i}");
        assert_eq!(lb.pick(k.as_bytes()), m.server_for(k.as_bytes()));
    }
}

#[test]
fn stats_lists_counters_then_servers() {
    let mut lb = fleet(2);
    client(&mut lb, 1, b"get a\r\n", 0);
    let mut s = String::new();
    lb.write_stats(&mut s, &[("rx_frames", 3)]).unwrap();
    let lines: Vec<&str> = s.split("\r\n").collect();
    assert_eq!(lines[0], "*17");
    assert_eq!(lines[1], "+distribution ketama");
    assert!(s.contains("+requests 1\r\n+forwarded 1\r\n"));
    assert!(s.contains("+pending 1\r\n+rx_frames 3\r\n+server 10.0.2.2:11300 forwarded "));
    assert_eq!(lines.len(), 17 + 2);
    assert_eq!(control(&mut lb, "STATS\n"), {
        let mut t = String::new();
        lb.write_stats(&mut t, &[]).unwrap();
        t
    });
}

#[test]
fn nothing_panics_on_random_datagrams_and_lines() {
    use rand_core::{Rng, SeedableRng};
    let mut rng = rand_pcg::Pcg32::seed_from_u64(7);
    let mut lb = fleet(4);
    let words: [&[u8]; 8] = [
        b"get ", b"gets ", b"set ", b"delete ", b"c1 ", b"\r\n", b"0 ", b"noreply",
    ];
    for n in 0..20_000u32 {
        let mut d = vec![0u8; (rng.next_u32() % 40) as usize];
        rng.fill_bytes(&mut d);
        if n % 2 == 0 {
            d.truncate(8.min(d.len()));
            for _ in 0..rng.next_u32() % 8 {
                d.extend_from_slice(words[(rng.next_u32() % 8) as usize]);
            }
        }
        let from = ep(&server((rng.next_u32() % 5) as u16));
        lb.on_client(CLIENT, &d, Instant(n), &mut |_, b: &[u8]| {
            assert!(b.len() <= MAX_DATAGRAM)
        });
        lb.on_server(from, &d, Instant(n), &mut |_, b: &[u8]| {
            assert!(b.len() <= MAX_DATAGRAM)
        });
        let mut out = String::new();
        let text = String::from_utf8_lossy(&d).replace(['\r', '\n'], " ");
        lb.control(Ok(text.as_bytes()), &[], &mut out).unwrap();
    }
}
