//! The Redis data path against real redis-server processes: pipelining,
//! multi-key split and merge, hash tags, AUTH, local and refused commands,
//! KEYS, redis_db, and every error path.

mod common;

use std::io::Write;

use common::*;

fn pool_yaml(ports: &[u16], extra: &str) -> String {
    let mut y = format!(
        "r:\n  listen: 127.0.0.1:0\n  redis: true\n  hash: md5\n  hash_tag: \"{{}}\"\n  timeout: 3000\n{extra}  servers:\n"
    );
    for (i, p) in ports.iter().enumerate() {
        y.push_str(&format!("   - 127.0.0.1:{p}:1 s{i}\n"));
    }
    y
}

/// Which backend holds `key` (asked directly).
fn holder(ports: &[u16], key: &str) -> Option<usize> {
    ports
        .iter()
        .position(|&p| Resp::new(p).cmd(&["EXISTS", key]) == V::I(1))
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn pipelining_multikey_and_hash_tags() {
    let servers: Vec<Daemon> = (0..3).map(|_| redis()).collect();
    let ports: Vec<u16> = servers.iter().map(|d| d.port).collect();
    let proxy = start(&pool_yaml(&ports, ""));
    let mut c = Resp::new(proxy.port("r"));

    // 2,000 pipelined requests, answered in order.
    let mut out = Vec::new();
    for i in 0..1000 {
        let (k, v) = (format!("pipe:{i}"), format!("v{i}"));
        out.extend(encode(&[b"SET", k.as_bytes(), v.as_bytes()]));
        out.extend(encode(&[b"GET", k.as_bytes()]));
    }
    c.w.write_all(&out).unwrap();
    for i in 0..1000 {
        assert_eq!(c.read(), V::S("OK".into()));
        assert_eq!(c.read(), V::bulk(&format!("v{i}")));
    }
    // The keys are spread over every server.
    for &p in &ports {
        let n = Resp::new(p).keys().len();
        assert!(n > 100, "{n}");
    }

    // MSET / MGET across servers, client order kept, misses as nil.
    let keys: Vec<String> = (0..50).map(|i| format!("multi:{i}")).collect();
    let mut mset = vec!["MSET"];
    let vals: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    for (k, v) in keys.iter().zip(&vals) {
        mset.push(k);
        mset.push(v);
    }
    assert_eq!(c.cmd(&mset), V::S("OK".into()));
    let mut mget = vec!["MGET", "nope:1"];
    mget.extend(keys.iter().map(String::as_str));
    let V::A(Some(got)) = c.cmd(&mget) else {
        panic!()
    };
    assert_eq!(got[0], V::B(None));
    for (i, v) in got[1..].iter().enumerate() {
        assert_eq!(*v, V::bulk(&vals[i]));
    }
    let holders: std::collections::HashSet<_> = keys.iter().map(|k| holder(&ports, k)).collect();
    assert_eq!(holders.len(), 3, "the keys span every server");
    let mut exists = vec!["EXISTS"];
    exists.extend(keys[..10].iter().map(String::as_str));
    exists.push("nope:2");
    assert_eq!(c.cmd(&exists), V::I(10));
    let mut touch = vec!["TOUCH"];
    touch.extend(keys[..5].iter().map(String::as_str));
    assert_eq!(c.cmd(&touch), V::I(5));
    let mut del = vec!["DEL"];
    del.extend(keys[..20].iter().map(String::as_str));
    assert_eq!(c.cmd(&del), V::I(20));
    let mut unlink = vec!["UNLINK"];
    unlink.extend(keys[..30].iter().map(String::as_str));
    assert_eq!(c.cmd(&unlink), V::I(10));
    assert_eq!(c.cmd(&["EXISTS", "multi:25"]), V::I(0));
    assert_eq!(c.cmd(&["EXISTS", "multi:35"]), V::I(1));

    // Hash tags: every {user:7} key on one server, the one of "user:7".
    for i in 0..30 {
        assert_eq!(
            c.cmd(&["SET", &format!("{{user:7}}:{i}"), "x"]),
            V::S("OK".into())
        );
    }
    let h = holder(&ports, "{user:7}:0");
    for i in 0..30 {
        assert_eq!(holder(&ports, &format!("{{user:7}}:{i}")), h);
    }
    assert_eq!(c.cmd(&["SET", "user:7", "y"]), V::S("OK".into()));
    assert_eq!(holder(&ports, "user:7"), h);

    // KEYS fans out and merges.
    let V::A(Some(all)) = c.cmd(&["KEYS", "multi:*"]) else {
        panic!()
    };
    assert_eq!(all.len(), 20);

    // Local commands.
    assert_eq!(c.cmd(&["PING"]), V::S("PONG".into()));
    assert_eq!(c.cmd(&["ping", "hi"]), V::bulk("hi"));
    assert_eq!(c.cmd(&["ECHO", "e"]), V::bulk("e"));
    assert_eq!(c.cmd(&["COMMAND"]), V::A(Some(vec![])));
    assert_eq!(c.cmd(&["SELECT", "0"]), V::S("OK".into()));
    assert_eq!(c.cmd(&["QUIT"]), V::S("OK".into()));
    assert_eq!(c.try_read(), None, "QUIT closes");
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn refused_commands_keep_the_connection() {
    let servers: Vec<Daemon> = (0..2).map(|_| redis()).collect();
    let ports: Vec<u16> = servers.iter().map(|d| d.port).collect();
    let proxy = start(&pool_yaml(&ports, ""));
    let mut c = Resp::new(proxy.port("r"));
    for cmd in [
        &["MULTI"][..],
        &["SUBSCRIBE", "ch"],
        &["BLPOP", "l", "0"],
        &["SELECT", "3"],
        &["FLUSHALL"],
        &["EVAL", "return 1", "0"],
        &["GET"],
        &["MSET", "a"],
        &["AUTH", "pw"],
    ] {
        match c.cmd(cmd) {
            V::E(e) => assert!(e.starts_with("ERR"), "{cmd:?}: {e}"),
            other => panic!("{cmd:?}: {other:?}"),
        }
        assert_eq!(
            c.cmd(&["SET", "still", "usable"]),
            V::S("OK".into()),
            "{cmd:?}"
        );
    }
    // A server's own error comes back as is.
    assert_eq!(c.cmd(&["SET", "str", "x"]), V::S("OK".into()));
    let V::E(e) = c.cmd(&["LPUSH", "str", "y"]) else {
        panic!()
    };
    assert!(e.starts_with("WRONGTYPE"), "{e}");
    // Garbage: one error, then the connection closes (framing is lost).
    c.w.write_all(b"*2\r\n$3\r\nGET\r\n:12\r\n").unwrap();
    let V::E(e) = c.read() else { panic!() };
    assert!(e.contains("Protocol error"), "{e}");
    assert_eq!(c.try_read(), None);
    // Inline commands are refused the same way.
    let mut c = Resp::new(proxy.port("r"));
    c.w.write_all(b"GET x\r\n").unwrap();
    assert!(matches!(c.read(), V::E(_)));
    assert_eq!(c.try_read(), None);
    // The proxy still serves.
    let mut c = Resp::new(proxy.port("r"));
    assert_eq!(c.cmd(&["GET", "still"]), V::bulk("usable"));
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn auth_to_clients_and_backends_and_redis_db() {
    let servers: Vec<Daemon> = (0..2).map(|_| redis_on(0, Some("s3cret"))).collect();
    let ports: Vec<u16> = servers.iter().map(|d| d.port).collect();
    let proxy = start(&pool_yaml(&ports, "  redis_auth: s3cret\n  redis_db: 2\n"));
    let mut c = Resp::new(proxy.port("r"));
    let V::E(e) = c.cmd(&["GET", "k"]) else {
        panic!()
    };
    assert!(e.starts_with("NOAUTH"), "{e}");
    let V::E(e) = c.cmd(&["AUTH", "wrong"]) else {
        panic!()
    };
    assert!(e.contains("invalid password"), "{e}");
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), V::S("OK".into()));
    assert_eq!(c.cmd(&["SET", "k", "v"]), V::S("OK".into()));
    assert_eq!(c.cmd(&["GET", "k"]), V::bulk("v"));
    assert_eq!(c.cmd(&["SELECT", "2"]), V::S("OK".into()));
    // The key sits in db 2 of one backend.
    let mut found = 0;
    for &p in &ports {
        let mut d = Resp::new(p);
        assert_eq!(d.cmd(&["AUTH", "s3cret"]), V::S("OK".into()));
        assert_eq!(d.cmd(&["EXISTS", "k"]), V::I(0));
        assert_eq!(d.cmd(&["SELECT", "2"]), V::S("OK".into()));
        if d.cmd(&["EXISTS", "k"]) == V::I(1) {
            found += 1;
        }
    }
    assert_eq!(found, 1);
    // Without redis_auth the backends refuse: the client gets the error.
    let proxy2 = start(&pool_yaml(&ports, ""));
    let mut c = Resp::new(proxy2.port("r"));
    match c.cmd(&["GET", "k"]) {
        V::E(e) => assert!(e.contains("NOAUTH") || e.contains("Authentication"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn dead_server_gives_errors_only_for_its_keys() {
    let alive = redis();
    let dead_port = free_port();
    let ports = [alive.port, dead_port];
    let proxy = start(&pool_yaml(&ports, ""));
    let mut c = Resp::new(proxy.port("r"));
    let (mut ok, mut err) = (0, 0);
    for i in 0..200 {
        let k = format!("k{i}");
        match c.cmd(&["SET", &k, "v"]) {
            V::S(_) => ok += 1,
            V::E(e) => {
                assert!(e.contains("s1"), "{e}");
                err += 1;
            }
            o => panic!("{o:?}"),
        }
    }
    assert!(ok > 50 && err > 50, "{ok} {err}");
    // MGET over both: the dead server's keys are per-key errors.
    let mut mget = vec!["MGET"];
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    mget.extend(keys.iter().map(String::as_str));
    let V::A(Some(vals)) = c.cmd(&mget) else {
        panic!()
    };
    let errors = vals.iter().filter(|v| matches!(v, V::E(_))).count();
    let values = vals.iter().filter(|v| **v == V::bulk("v")).count();
    assert_eq!(errors + values, 20);
    assert!(errors > 0 && values > 0, "{vals:?}");
}
