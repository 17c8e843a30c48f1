use super::rig::*;
use super::*;
use crate::{BackendId, Duration, Instant, Jump, Maglev, Modulo, Rendezvous, Ring, RingConfig};
use proptest::prelude::*;

type Ctl = Controller<4, 512, 1031, 16>;

fn ctl() -> Ctl {
    Controller::new(64, Duration(1_000)).unwrap()
}

/// Feeds `input` through a line buffer into `c` at tick `now`; the replies.
fn run_at(c: &mut Ctl, input: &[u8], now: u32) -> String {
    let mut lb: LineBuffer<64> = LineBuffer::new();
    let mut out = String::new();
    for &b in input {
        if let Some(l) = lb.push(b) {
            c.handle(l, Instant(now), &mut out).unwrap();
        }
    }
    out
}

fn run(c: &mut Ctl, input: &str) -> String {
    run_at(c, input.as_bytes(), 0)
}

fn one(c: &mut Ctl, line: &str) -> String {
    run(c, &format!("{line}\n"))
}

fn fleet3() -> Ctl {
    let mut c = ctl();
    assert_eq!(
        run(&mut c, "ADD_SERVER a\nADD_SERVER b 2\nADD_SERVER c\n"),
        "+OK added a\r\n+OK added b\r\n+OK added c\r\n"
    );
    c
}

#[test]
fn ping_help_reset() {
    let mut c = ctl();
    assert_eq!(one(&mut c, "PING"), "+PONG\r\n");
    assert_eq!(one(&mut c, "  ping  "), "+PONG\r\n");
    let help = one(&mut c, "HELP");
    assert!(help.starts_with("*12\r\n+PING\r\n+HELP\r\n+ADD_SERVER name [weight]\r\n"));
    assert_eq!(help.lines().count(), 13);
    let mut c = fleet3();
    one(&mut c, "STRATEGY jump");
    one(&mut c, "ROUTE k");
    assert_eq!(one(&mut c, "RESET"), "+OK reset\r\n");
    assert_eq!(one(&mut c, "SERVERS"), "*0\r\n");
    assert_eq!(c.strategy(), StrategyKind::Ring);
    assert_eq!(c.counters(), Counters::default());
    assert_eq!(c.flow_stats(), crate::CacheStats::default());
}

#[test]
fn servers_down_up_remove() {
    let mut c = fleet3();
    assert_eq!(
        one(&mut c, "SERVERS"),
        "*3\r\n+a 1 up\r\n+b 2 up\r\n+c 1 up\r\n"
    );
    assert_eq!(one(&mut c, "DOWN b"), "+OK b down\r\n");
    assert_eq!(
        one(&mut c, "SERVERS"),
        "*3\r\n+a 1 up\r\n+b 2 down\r\n+c 1 up\r\n"
    );
    assert_eq!(one(&mut c, "up b"), "+OK b up\r\n");
    assert_eq!(one(&mut c, "REMOVE_SERVER a"), "+OK removed a\r\n");
    assert_eq!(one(&mut c, "SERVERS"), "*2\r\n+b 2 up\r\n+c 1 up\r\n");
    // The freed slot is reused first.
    assert_eq!(one(&mut c, "ADD_SERVER d"), "+OK added d\r\n");
    assert_eq!(
        one(&mut c, "SERVERS"),
        "*3\r\n+d 1 up\r\n+b 2 up\r\n+c 1 up\r\n"
    );
}

#[test]
fn route_pins_flows_until_their_server_leaves() {
    let mut c = fleet3();
    let first = one(&mut c, "ROUTE user:1");
    assert!(["+a\r\n", "+b\r\n", "+c\r\n"].contains(&first.as_str()));
    assert_eq!(one(&mut c, "ROUTE user:1"), first);
    // A new server does not take a pinned key.
    one(&mut c, "ADD_SERVER e 3");
    for _ in 0..3 {
        assert_eq!(one(&mut c, "ROUTE user:1"), first);
    }
    // Its server going down re-pins it; coming back up does not move it back.
    let name = first.trim_start_matches('+').trim_end();
    one(&mut c, &format!("DOWN {name}"));
    let moved = one(&mut c, "ROUTE user:1");
    assert_ne!(moved, first);
    one(&mut c, &format!("UP {name}"));
    assert_eq!(one(&mut c, "ROUTE user:1"), moved);
    let k = c.counters();
    assert_eq!((k.routed, k.flow_misses, k.flow_repinned), (7, 1, 1));
    assert_eq!(k.flow_hits, 5);
}

#[test]
fn route_matches_the_bare_strategy_for_new_keys() {
    for kind in KINDS {
        let mut c = fleet3();
        assert_eq!(
            one(&mut c, &format!("strategy {}", kind.name().to_uppercase())),
            format!("+OK strategy {kind}\r\n")
        );
        let mut s: Box<dyn crate::Strategy> = match kind {
            StrategyKind::Ring => Box::new(Ring::<4, 512, 0>::new(RingConfig::new(64)).unwrap()),
            StrategyKind::Maglev => Box::new(Maglev::<4, 1031>::new()),
            StrategyKind::Jump => Box::new(Jump::<4, JUMP_BUCKETS>::new()),
            StrategyKind::Rendezvous => Box::new(Rendezvous::<4>::new()),
            StrategyKind::Modulo => Box::new(Modulo::<4>::new()),
            other => panic!("the controller does not hold {other}"),
        };
        for (i, (n, w)) in [("a", 1), ("b", 2), ("c", 1)].into_iter().enumerate() {
            s.add(BackendId(i as u16), n.as_bytes(), w).unwrap();
        }
        for k in 0..12 {
            let key = format!("k{k}");
            let want = ["a", "b", "c"][s.pick(crate::hash(key.as_bytes())).unwrap().0 as usize];
            assert_eq!(one(&mut c, &format!("ROUTE {key}")), format!("+{want}\r\n"));
        }
    }
}

/// Issue 11: one `StrategyKind` for core; the controller holds five and refuses
/// the others, over the line (the reply the protocol always gave) and through
/// `switch`, without changing the active strategy.
#[test]
fn switch_refuses_kinds_the_controller_does_not_hold() {
    let mut c = fleet3();
    one(&mut c, "STRATEGY maglev");
    for kind in [
        StrategyKind::Bounded,
        StrategyKind::P2c,
        StrategyKind::RoundRobin,
    ] {
        assert!(!KINDS.contains(&kind));
        assert_eq!(c.switch(kind), Err(ProtocolError::UnknownStrategy));
        assert_eq!(
            one(&mut c, &format!("STRATEGY {kind}")),
            "-ERR unknown strategy\r\n"
        );
        assert_eq!(c.strategy(), StrategyKind::Maglev);
    }
    assert_eq!(
        one(&mut c, "STRATEGY round-robin"),
        "-ERR unknown strategy\r\n"
    );
    for kind in KINDS {
        assert_eq!(c.switch(kind), Ok(()));
        assert_eq!(c.strategy(), kind);
    }
}

#[test]
fn replicas_are_the_failover_order() {
    let mut c = fleet3();
    let r = one(&mut c, "REPLICAS user:7 2");
    let names: Vec<&str> = r.lines().skip(1).map(|l| &l[1..]).collect();
    assert!(r.starts_with("*2\r\n"));
    assert_eq!(names.len(), 2);
    assert_eq!(one(&mut c, "ROUTE user:7"), format!("+{}\r\n", names[0]));
    assert_eq!(one(&mut c, "REPLICAS user:7 9").lines().count(), 4);
    // The second replica is where the key goes when the first is down.
    let mut d = fleet3();
    one(&mut d, &format!("DOWN {}", names[0]));
    assert_eq!(one(&mut d, "ROUTE user:7"), format!("+{}\r\n", names[1]));
    // Replicas leave health as it was.
    assert_eq!(
        one(&mut c, "SERVERS"),
        "*3\r\n+a 1 up\r\n+b 2 up\r\n+c 1 up\r\n"
    );
    assert_eq!(
        one(&mut c, "REPLICAS x 0"),
        "-ERR replica count must be at least 1\r\n"
    );
    assert_eq!(one(&mut ctl(), "REPLICAS x 2"), "*0\r\n");
}

#[test]
fn stats() {
    let mut c = fleet3();
    one(&mut c, "ROUTE k1");
    one(&mut c, "ROUTE k1");
    one(&mut c, "NOPE");
    let s = one(&mut c, "STATS");
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines[0], "*14");
    assert_eq!(
        &lines[1..12],
        [
            "+strategy ring",
            "+servers 3",
            "+up 3",
            "+routed 2",
            "+flow_hits 1",
            "+flow_misses 1",
            "+flow_repinned 0",
            "+flow_evictions 0",
            "+flow_expirations 0",
            "+flows 1",
            "+errors 1",
        ]
    );
    let per: u64 = lines[12..]
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(per, 2);
    assert!(lines[12].starts_with("+server a routed "));
}

#[test]
fn flows_expire_and_evict() {
    let mut c = fleet3();
    for k in 0..20 {
        run_at(&mut c, format!("ROUTE k{k}\n").as_bytes(), k);
    }
    assert_eq!(c.flow_stats().evictions, 4);
    // Everything idles out after the TTL of 1000 ticks.
    let s = run_at(&mut c, b"STATS\n", 5_000);
    assert!(s.contains("+flow_expirations 16\r\n+flows 0\r\n"), "{s}");
    // Less than a TTL (1000 ticks) back is a step back: refused.
    assert_eq!(
        run_at(&mut c, b"ROUTE k1\n", 4_001),
        "-ERR clock went backwards\r\n"
    );
    // A whole TTL or more back reads as a long gap: everything expired, and the
    // table's clock resynchronises (it was 2^31 ticks ahead as far as it knows).
    assert!(run_at(&mut c, b"ROUTE k1\n", 4_000).starts_with('+'));
    assert!(run_at(&mut c, b"ROUTE k2\n", 4_001).starts_with('+'));
    assert_eq!(c.flows.len(), 2);
}

#[test]
fn every_error_reply() {
    let mut c = fleet3();
    let long = format!("ROUTE {}", "x".repeat(100));
    let cases: &[(&str, &str)] = &[
        ("FOO", "unknown command"),
        ("PING x", "wrong number of arguments for 'PING'"),
        ("HELP x", "wrong number of arguments for 'HELP'"),
        ("SERVERS x", "wrong number of arguments for 'SERVERS'"),
        ("STATS x", "wrong number of arguments for 'STATS'"),
        ("RESET x", "wrong number of arguments for 'RESET'"),
        ("ADD_SERVER", "wrong number of arguments for 'ADD_SERVER'"),
        (
            "ADD_SERVER a 1 2",
            "wrong number of arguments for 'ADD_SERVER'",
        ),
        (
            "REMOVE_SERVER",
            "wrong number of arguments for 'REMOVE_SERVER'",
        ),
        ("DOWN", "wrong number of arguments for 'DOWN'"),
        ("UP a b", "wrong number of arguments for 'UP'"),
        ("ROUTE", "wrong number of arguments for 'ROUTE'"),
        ("ROUTE a b", "wrong number of arguments for 'ROUTE'"),
        ("REPLICAS k", "wrong number of arguments for 'REPLICAS'"),
        ("STRATEGY", "wrong number of arguments for 'STRATEGY'"),
        ("ADD_SERVER x -1", "bad number"),
        ("ADD_SERVER x 1x", "bad number"),
        ("ADD_SERVER x 4294967296", "bad number"),
        ("REPLICAS k +2", "bad number"),
        ("ADD_SERVER x 0", "weight must be at least 1"),
        ("ADD_SERVER x 65536", "weight too large"),
        ("ADD_SERVER x 9", "not enough capacity for this weight"),
        ("ADD_SERVER a", "server already exists"),
        (
            "ADD_SERVER 0123456789012345678901234567890123",
            "name too long",
        ),
        ("ADD_SERVER a\u{1b}b", "bad name"),
        ("REMOVE_SERVER zz", "unknown server"),
        ("DOWN zz", "unknown server"),
        ("UP zz", "unknown server"),
        ("STRATEGY p2c", "unknown strategy"),
        ("REPLICAS k 0", "replica count must be at least 1"),
        (&long, "line too long"),
    ];
    for (line, reason) in cases {
        assert_eq!(one(&mut c, line), format!("-ERR {reason}\r\n"), "{line}");
    }
    // Nothing changed.
    assert_eq!(
        one(&mut c, "SERVERS"),
        "*3\r\n+a 1 up\r\n+b 2 up\r\n+c 1 up\r\n"
    );
    assert_eq!(c.counters().errors, cases.len() as u64);
    assert_eq!(run_at(&mut c, b"ROUTE \xff\xfe\n", 0), "-ERR bad utf-8\r\n");
    one(&mut c, "ADD_SERVER d");
    assert_eq!(one(&mut c, "ADD_SERVER e"), "-ERR fleet is full\r\n");
    let mut e = ctl();
    assert_eq!(one(&mut e, "ROUTE k"), "-ERR no server is up\r\n");
    one(&mut e, "ADD_SERVER a");
    one(&mut e, "DOWN a");
    assert_eq!(one(&mut e, "ROUTE k"), "-ERR no server is up\r\n");
    // A server that does not fit every strategy is refused by all of them.
    let mut j = ctl();
    one(&mut j, "STRATEGY modulo");
    one(&mut j, "ADD_SERVER a 4");
    assert_eq!(
        one(&mut j, "ADD_SERVER b 5"),
        "-ERR not enough capacity for this weight\r\n"
    );
    assert_eq!(one(&mut j, "SERVERS"), "*1\r\n+a 4 up\r\n");
    for kind in KINDS {
        one(&mut j, &format!("STRATEGY {kind}"));
        assert_eq!(one(&mut j, "ROUTE k"), "+a\r\n");
    }
}

#[test]
fn framing() {
    let mut c = fleet3();
    // LF, CR LF, lone CR; blank lines get no reply.
    assert_eq!(
        run(&mut c, "PING\nPING\r\nPING\rPING\r\n\n\r\n   \nPING"),
        "+PONG\r\n".repeat(4)
    );
    // Exactly 64 bytes fit; 65 do not, and the next line is read normally.
    let fits = format!("ROUTE {}", "k".repeat(58));
    assert_eq!(fits.len(), 64);
    assert!(one(&mut c, &fits).starts_with('+'));
    let long = format!("{fits}k\nPING\n");
    assert_eq!(run(&mut c, &long), "-ERR line too long\r\n+PONG\r\n");
    let mut lb: LineBuffer<4> = LineBuffer::new();
    for &b in b"abc" {
        assert_eq!(lb.push(b), None);
    }
    assert_eq!(lb.pending(), 3);
    lb.clear();
    assert_eq!(lb.pending(), 0);
    // A completed line is not pending, though its slice stays valid until the
    // next push (found by the protocol_line fuzz target).
    for &b in b"ab" {
        assert_eq!(lb.push(b), None);
    }
    assert_eq!(lb.push(b'\n'), Some(Ok(&b"ab"[..])));
    assert_eq!(lb.pending(), 0);
    assert_eq!(lb.push(b'c'), None);
    assert_eq!(lb.pending(), 1);
}

fn name() -> impl proptest::strategy::Strategy<Value = String> {
    "[a-zA-Z0-9:._\\-]{1,32}"
}

fn command() -> impl proptest::strategy::Strategy<Value = (u8, String, u32, usize)> {
    (0u8..12, name(), any::<u32>(), 0usize..5)
}

fn build(t: &(u8, String, u32, usize)) -> Command<'_> {
    let (tag, s, n, k) = t;
    match tag {
        0 => Command::Ping,
        1 => Command::Help,
        2 => Command::AddServer {
            name: s,
            weight: (n % 2 == 0).then_some(*n),
        },
        3 => Command::RemoveServer(s),
        4 => Command::Down(s),
        5 => Command::Up(s),
        6 => Command::Servers,
        7 => Command::Route(s),
        8 => Command::Replicas { key: s, n: *n },
        9 => Command::Strategy(KINDS[*k]),
        10 => Command::Stats,
        _ => Command::Reset,
    }
}

proptest! {
    #[test]
    fn format_parse_round_trip(t in command()) {
        let cmd = build(&t);
        let line = cmd.to_string();
        prop_assert_eq!(Command::parse(line.as_bytes()), Ok(cmd));
        // Verbs (and strategy names) are case-insensitive.
        let (verb, rest) = line.split_at(line.find(' ').unwrap_or(line.len()));
        let lower = format!("{}{rest}", verb.to_lowercase());
        prop_assert_eq!(Command::parse(lower.as_bytes()), Ok(cmd));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_resynchronise(
        junk in proptest::collection::vec(any::<u8>(), 0..400),
        now in any::<u32>(),
    ) {
        let mut c = fleet3();
        let mut lb: LineBuffer<64> = LineBuffer::new();
        let mut out = String::new();
        for &b in &junk {
            if let Some(l) = lb.push(b) {
                c.handle(l, Instant(now), &mut out).unwrap();
            }
        }
        // Whatever came before, after a newline the link answers again.
        let mut tail = String::new();
        for &b in b"\nPING\n" {
            if let Some(l) = lb.push(b) {
                c.handle(l, Instant(now), &mut tail).unwrap();
            }
        }
        prop_assert!(tail.ends_with("+PONG\r\n"), "{:?}", tail);
        prop_assert!(out.split("\r\n").all(|l| l.is_empty()
            || l.starts_with(['+', '-', '*', ':'])), "{:?}", out);
    }

    #[test]
    fn random_command_lines_never_panic(
        words in proptest::collection::vec(
            prop_oneof![
                Just("ADD_SERVER".to_string()), Just("REMOVE_SERVER".to_string()),
                Just("DOWN".to_string()), Just("UP".to_string()), Just("ROUTE".to_string()),
                Just("REPLICAS".to_string()), Just("STRATEGY".to_string()),
                Just("STATS".to_string()), Just("RESET".to_string()), Just("jump".to_string()),
                Just("maglev".to_string()), Just("\n".to_string()), "[a-e]", "[0-9]{1,3}",
            ], 0..200),
    ) {
        let mut c = ctl();
        let input = words.join(" ");
        let out = run(&mut c, &input);
        prop_assert!(out.split("\r\n").all(|l| l.is_empty()
            || l.starts_with(['+', '-', '*', ':'])), "{:?}", out);
        prop_assert_eq!(run(&mut c, "\nPING\n"), "+PONG\r\n");
    }
}

#[test]
fn const_controller_is_like_new() {
    static_assertions_like();
    let mut a = hil_controller();
    let mut b: HilController = Controller::new(HIL_VNODES, HIL_FLOW_TTL).unwrap();
    let script = "ADD_SERVER a\nADD_SERVER b 3\nROUTE x\nROUTE y\nREPLICAS z 2\nSTATS\n";
    let mut lb: LineBuffer<HIL_LINE> = LineBuffer::new();
    let (mut oa, mut ob) = (String::new(), String::new());
    for &byte in script.as_bytes() {
        if let Some(l) = lb.push(byte) {
            a.handle(l, Instant(0), &mut oa).unwrap();
        }
    }
    for &byte in script.as_bytes() {
        if let Some(l) = lb.push(byte) {
            b.handle(l, Instant(0), &mut ob).unwrap();
        }
    }
    assert_eq!(oa, ob);
    assert!(oa.contains("+servers 2\r\n"));
}

fn static_assertions_like() {
    // A controller fits a static: the firmware keeps it there.
    static _C: HilController = hil_controller();
    // 19,304 B on the Cortex-M4 target (the hil step prints it), 19,328 B on
    // x86-64, since Maglev keeps two tables (issue 11).
    assert!(core::mem::size_of::<HilController>() < 20 * 1024);
}

/// Issue 10, part 4: `RESET` is "the state after boot", so it forgets the flow
/// table's clock too: a `ROUTE` at an earlier tick is fine afterwards.
#[test]
fn reset_forgets_the_flow_clock() {
    let mut c = fleet3();
    assert!(run_at(&mut c, b"ROUTE k\n", 50_000).starts_with('+'));
    assert_eq!(run_at(&mut c, b"RESET\n", 50_000), "+OK reset\r\n");
    assert_eq!(run_at(&mut c, b"ADD_SERVER a\n", 7), "+OK added a\r\n");
    assert_eq!(run_at(&mut c, b"ROUTE k\n", 49_999), "+a\r\n");
    assert_eq!(run_at(&mut c, b"ROUTE j\n", 49_999), "+a\r\n");
    assert_eq!(c.counters().errors, 0);
    // As after boot: any first tick is accepted, then time runs from there.
    let mut fresh = ctl();
    run_at(&mut fresh, b"ADD_SERVER a\n", 0);
    assert_eq!(
        run_at(&mut fresh, b"ROUTE k\nROUTE j\n", 49_999),
        "+a\r\n+a\r\n"
    );
    assert_eq!(c.flow_stats(), fresh.flow_stats());
    assert_eq!(
        run_at(&mut c, b"ROUTE k\n", 49_998),
        "-ERR clock went backwards\r\n"
    );
}

/// Issue 10, part 4: a failed `ROUTE` changes nothing: not the flow table's
/// counters, not its clock, not its contents (no purge either).
#[test]
fn failed_route_changes_nothing() {
    let mut c = fleet3();
    for k in 0..5 {
        assert!(run_at(&mut c, format!("ROUTE k{k}\n").as_bytes(), 100).starts_with('+'));
    }
    for s in ["a", "b", "c"] {
        one(&mut c, &format!("DOWN {s}"));
    }
    let flows = c.flow_stats();
    let counters = c.counters();
    let len = c.flows.len();
    let clock = c.flows.now();
    // Far enough ahead that every flow would be purged, and a key that is pinned.
    assert_eq!(
        run_at(&mut c, b"ROUTE k1\n", 100_000),
        "-ERR no server is up\r\n"
    );
    assert_eq!(
        run_at(&mut c, b"ROUTE new\n", 1_100),
        "-ERR no server is up\r\n"
    );
    assert_eq!(c.flow_stats(), flows);
    assert_eq!(c.flows.len(), len);
    assert_eq!(c.flows.now(), clock);
    assert_eq!(c.counters().routed, counters.routed);
    assert_eq!(c.counters().errors, counters.errors + 2);
    // The clock did not move: a tick just after the last successful ROUTE works,
    // and the pinned flow is still there.
    one(&mut c, "UP a");
    one(&mut c, "UP b");
    one(&mut c, "UP c");
    let pinned = c.flows.peek(&crate::hash(b"k1")).copied();
    assert!(pinned.is_some());
    let reply = run_at(&mut c, b"ROUTE k1\n", 101);
    assert_eq!(
        c.by_id(pinned.unwrap()).map(|s| format!("+{}\r\n", s.name)),
        Some(reply)
    );
    assert_eq!(c.flow_stats().hits, flows.hits + 1);
    assert_eq!(c.flow_stats().expirations, 0);
}

/// Issue 10, part 4: names are "without whitespace", Unicode whitespace included
/// (and the invisible no-break / zero-width spaces U+FEFF, U+200B and U+2060).
#[test]
fn names_reject_unicode_whitespace() {
    let mut c = ctl();
    for ws in [
        '\u{a0}', '\u{1680}', '\u{2000}', '\u{2009}', '\u{200b}', '\u{2028}', '\u{2029}',
        '\u{202f}', '\u{205f}', '\u{2060}', '\u{3000}', '\u{feff}', '\u{85}', '\u{b}', '\u{c}',
    ] {
        for name in [
            format!("a{ws}b"),
            format!("{ws}a"),
            format!("a{ws}"),
            ws.to_string(),
        ] {
            for verb in ["ADD_SERVER", "REMOVE_SERVER", "DOWN", "UP"] {
                assert_eq!(
                    one(&mut c, &format!("{verb} {name}")),
                    "-ERR bad name\r\n",
                    "{verb} {name:?}"
                );
            }
            assert_eq!(c.add(&name, 1), Err(ProtocolError::BadName), "{name:?}");
        }
    }
    // The API refuses ASCII blanks and the empty name too (the parser splits on them).
    for name in ["a b", "a\tb", " a", ""] {
        assert_eq!(c.add(name, 1), Err(ProtocolError::BadName), "{name:?}");
    }
    assert_eq!(one(&mut c, "SERVERS"), "*0\r\n");
    // Other non-ASCII names are fine.
    assert_eq!(one(&mut c, "ADD_SERVER caché-ß"), "+OK added caché-ß\r\n");
    assert_eq!(one(&mut c, "ADD_SERVER 東京"), "+OK added 東京\r\n");
}

#[test]
fn the_word_rules_are_public_and_match_the_parser() {
    use crate::MAX_WEIGHT;
    assert_eq!(parse_weight("1"), Ok(1));
    assert_eq!(parse_weight(&MAX_WEIGHT.to_string()), Ok(MAX_WEIGHT));
    assert_eq!(parse_weight("0"), Err(ProtocolError::ZeroWeight));
    assert_eq!(
        parse_weight(&(u64::from(MAX_WEIGHT) + 1).to_string()),
        Err(ProtocolError::WeightTooLarge)
    );
    for bad in ["", "-1", "+1", "1.5", "x", "99999999999"] {
        assert_eq!(parse_weight(bad), Err(ProtocolError::BadNumber), "{bad:?}");
    }
    assert_eq!(check_weight(0), Err(ProtocolError::ZeroWeight));
    assert_eq!(parse_name("東京"), Ok("東京"));
    assert_eq!(parse_name(""), Err(ProtocolError::BadName));
    assert_eq!(
        parse_name(&"a".repeat(MAX_NAME + 1)),
        Err(ProtocolError::NameTooLong)
    );
    assert!(forbidden_in_name('\u{200b}') && forbidden_in_name(' ') && !forbidden_in_name('ß'));
    // The controller applies the same weight rule.
    let mut c = ctl();
    assert_eq!(c.add("a", 0), Err(ProtocolError::ZeroWeight));
    assert_eq!(
        c.add("a", MAX_WEIGHT + 1),
        Err(ProtocolError::WeightTooLarge)
    );
    assert_eq!(c.add("a", 2), Ok(()));
}
