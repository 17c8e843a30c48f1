//! The control port over real sockets on 127.0.0.1, against the in-memory
//! test fleet (tests/ops_support).

mod ops_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chring_proxy::control;
use chring_proxy::state::{Change, Control};
use ops_support::{Fleet, LineClient, served};

fn start(fleet: &Arc<Fleet>, token: Option<&str>) -> ops_support::Served {
    let ctl: Arc<dyn Control> = fleet.clone();
    let token: Option<Arc<str>> = token.map(Into::into);
    served(move |l| control::serve(l, ctl, token))
}

#[test]
fn a_session_changes_the_fleet_and_moves_match_the_change() {
    let fleet = Fleet::new(&[("cache", 3), ("other", 1)]);
    let srv = start(&fleet, None);
    let mut c = LineClient::new(srv.addr);
    assert_eq!(c.cmd("PING"), "+PONG");
    assert_eq!(c.array("HELP").len(), control::HELP.len());
    assert_eq!(
        c.array("SERVERS cache"),
        [
            "+s1 127.0.0.1:7001 1 up 0.3333333333333333",
            "+s2 127.0.0.1:7002 1 up 0.3333333333333333",
            "+s3 127.0.0.1:7003 1 up 0.3333333333333333"
        ]
    );
    // ROUTE answers what the fleet answers, for many keys.
    for i in 0..200 {
        let key = format!("user:{i}");
        let want = fleet.route("cache", key.as_bytes()).unwrap().unwrap();
        assert_eq!(c.cmd(&format!("ROUTE cache {key}")), format!("+{want}"));
    }
    // MOVES prices the change exactly; ADD_SERVER then reports the same.
    let priced = c.cmd("MOVES cache ADD s4 127.0.0.1:7004 2");
    let expect = fleet
        .moves(
            "cache",
            &Change::Add {
                name: "s4".into(),
                addr: "127.0.0.1:7004".into(),
                weight: 2,
            },
        )
        .unwrap();
    assert_eq!(priced, format!("+{expect}"));
    assert!(expect > 0.3 && expect < 0.6, "{expect}");
    assert_eq!(
        c.cmd("ADD_SERVER cache s4 127.0.0.1:7004 2"),
        format!("+OK added s4 moved {expect}")
    );
    assert_eq!(c.array("SERVERS cache").len(), 4);
    assert_eq!(
        c.cmd("ADD_SERVER cache s4 127.0.0.1:7004"),
        "-ERR server 's4' is already in pool 'cache'"
    );
    let priced = c.cmd("MOVES cache REMOVE s2");
    assert!(priced.starts_with("+0."), "{priced}");
    assert_eq!(
        c.cmd("REMOVE_SERVER cache s2"),
        format!("+OK removed s2 moved {}", &priced[1..])
    );
    // DOWN: never routed to; UP: back.
    assert_eq!(c.cmd("DOWN cache s1"), "+OK s1 down");
    assert!(
        c.array("SERVERS cache")
            .iter()
            .any(|l| l.starts_with("+s1 ") && l.contains(" down "))
    );
    for i in 0..200 {
        assert_ne!(c.cmd(&format!("ROUTE cache k{i}")), "+s1");
    }
    assert_eq!(c.cmd("UP cache s1"), "+OK s1 up");
    // STATS, whole and per pool.
    let all = c.array("STATS");
    assert_eq!(all[0], "+service chring-proxy");
    assert!(all.contains(&"+pools 2".to_owned()), "{all:?}");
    assert!(
        all.iter()
            .any(|l| l.starts_with("+pool cache servers 3 up 3 ")),
        "{all:?}"
    );
    let one = c.array("STATS cache");
    assert_eq!(one[0], "+pool cache");
    assert!(one.contains(&"+client_eof 0".to_owned()), "{one:?}");
    assert_eq!(one.iter().filter(|l| l.starts_with("+server ")).count(), 3);
    // The pool's name is checked by the data path.
    assert_eq!(c.cmd("SERVERS nope"), "-ERR no pool 'nope'");
    assert_eq!(c.cmd("ROUTE nope k"), "-ERR no pool 'nope'");
    assert_eq!(
        c.cmd("DOWN cache zz"),
        "-ERR no server 'zz' in pool 'cache'"
    );
    assert_eq!(c.cmd("STATS nope"), "-ERR no pool 'nope'");
    assert_eq!(c.cmd("QUIT"), "+OK bye");
    assert_eq!(c.line(), "", "closed after QUIT");
}

#[test]
fn pipelined_lines_get_replies_in_order_and_blank_lines_none() {
    let fleet = Fleet::new(&[("p", 2)]);
    let srv = start(&fleet, None);
    let mut c = LineClient::new(srv.addr);
    c.send(b"PING\r\n\r\n   \nFROB\rping\nROUTE p\n");
    assert_eq!(c.line(), "+PONG");
    assert_eq!(c.line(), "-ERR unknown command");
    assert_eq!(c.line(), "+PONG");
    assert_eq!(c.line(), "-ERR wrong number of arguments for 'ROUTE'");
    assert_eq!(c.cmd("PING"), "+PONG");
}

#[test]
fn garbage_and_overlong_lines_never_break_the_port() {
    let fleet = Fleet::new(&[("p", 2)]);
    let srv = start(&fleet, None);
    let mut c = LineClient::new(srv.addr);
    // An over-long line is answered once at its end; the next line is read.
    let mut long = vec![b'A'; control::MAX_LINE + 10];
    long.extend_from_slice(b"\nPING\n");
    c.send(&long);
    assert_eq!(c.line(), "-ERR line too long");
    assert_eq!(c.line(), "+PONG");
    // 2,000 lines of seeded random bytes: every non-blank line gets exactly
    // one reply, and the port still answers afterwards.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut sent = Vec::new();
    let mut lines = 0;
    for _ in 0..2000 {
        let len = (x % 60) as usize;
        let mut line = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = (x & 0xff) as u8;
            if b != b'\n' && b != b'\r' {
                line.push(b);
            }
        }
        if line.iter().any(|&b| b != b' ' && b != b'\t') {
            lines += 1;
        }
        sent.extend_from_slice(&line);
        sent.push(b'\n');
        x = x.wrapping_add(1);
    }
    c.send(&sent);
    for _ in 0..lines {
        let l = c.line();
        assert!(
            l.starts_with('+') || l.starts_with("-ERR ") || l.starts_with('*'),
            "{l:?}"
        );
        if let Some(n) = l.strip_prefix('*') {
            for _ in 0..n.parse::<usize>().unwrap() {
                c.line();
            }
        }
    }
    assert_eq!(c.cmd("PING"), "+PONG");
    // Another client was never affected.
    assert_eq!(LineClient::new(srv.addr).cmd("PING"), "+PONG");
}

#[test]
fn many_clients_at_once() {
    let fleet = Fleet::new(&[("p", 4)]);
    let srv = start(&fleet, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    let handles: Vec<_> = (0..64)
        .map(|t| {
            let (addr, fleet) = (srv.addr, fleet.clone());
            std::thread::spawn(move || {
                let mut c = LineClient::new(addr);
                for i in 0..25 {
                    let key = format!("t{t}:{i}");
                    let want = fleet.route("p", key.as_bytes()).unwrap().unwrap();
                    assert_eq!(c.cmd(&format!("ROUTE p {key}")), format!("+{want}"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(Instant::now() < deadline);
}

#[test]
fn a_token_is_required_first_and_a_wrong_one_closes() {
    let fleet = Fleet::new(&[("p", 2)]);
    let token = "0123456789abcdef-token";
    let srv = start(&fleet, Some(token));
    let mut c = LineClient::new(srv.addr);
    assert_eq!(c.cmd("PING"), "+PONG");
    assert_eq!(c.cmd("SERVERS p"), "-ERR NOAUTH authentication required");
    assert_eq!(
        c.cmd("ADD_SERVER p x 127.0.0.1:1"),
        "-ERR NOAUTH authentication required"
    );
    assert_eq!(fleet.pools().len(), 1);
    assert_eq!(
        fleet.snapshot().pools[0].servers.len(),
        2,
        "nothing changed"
    );
    assert_eq!(c.cmd("AUTH wrong-token-0000000"), "-ERR invalid token");
    assert_eq!(c.line(), "", "closed after a wrong token");

    let mut c = LineClient::new(srv.addr);
    assert_eq!(c.cmd(&format!("AUTH {token}")), "+OK");
    assert_eq!(c.array("SERVERS p").len(), 2);

    // Without a configured token, AUTH is an error and nothing needs it.
    let open = start(&fleet, None);
    let mut c = LineClient::new(open.addr);
    assert_eq!(c.cmd("AUTH x"), "-ERR AUTH without a configured token");
    assert_eq!(c.array("SERVERS p").len(), 2);
}
