//! The memcached data path against real memcached processes: multi-get split
//! and merge, noreply, pipelining, local commands and every error path.

mod common;

use common::*;

fn pool_yaml(ports: &[u16]) -> String {
    let mut y = "m:\n  listen: 127.0.0.1:0\n  hash: md5\n  timeout: 3000\n  servers:\n".to_string();
    for p in ports {
        y.push_str(&format!("   - 127.0.0.1:{p}:1\n"));
    }
    y
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn multiget_noreply_and_errors() {
    let servers: Vec<Daemon> = (0..3).map(|_| memcached()).collect();
    let ports: Vec<u16> = servers.iter().map(|d| d.port).collect();
    let proxy = start(&pool_yaml(&ports));
    let mut c = Mc::new(proxy.port("m"));
    let keys: Vec<String> = (0..60).map(|i| format!("mk:{i}")).collect();
    // Pipelined sets with noreply, then one with a reply.
    let mut out = Vec::new();
    for k in &keys {
        out.extend(format!("set {k} 5 0 {}\r\n{k}\r\n", k.len()).bytes());
        out.extend(format!("set {k}:n 0 0 1 noreply\r\nx\r\n").bytes());
    }
    c.raw(&out);
    for _ in &keys {
        assert_eq!(c.line(), "STORED");
    }
    // Spread over every server.
    for &p in &ports {
        let mut d = Mc::new(p);
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let n = d.get(&refs).len();
        assert!(n > 5, "{n}");
    }
    // Multi-get in the client's order, with misses skipped.
    let mut ask: Vec<&str> = keys.iter().rev().map(String::as_str).collect();
    ask.insert(3, "missing");
    let got = c.get(&ask);
    let want: Vec<(String, String)> = keys.iter().rev().map(|k| (k.clone(), k.clone())).collect();
    assert_eq!(got, want);
    assert_eq!(c.get(&["mk:1:n"]), vec![("mk:1:n".into(), "x".into())]);
    // gets carries the CAS.
    c.raw(b"gets mk:1 mk:2\r\n");
    let l = c.line();
    assert!(l.starts_with("VALUE mk:1 5 4 "), "{l}");
    let cas: u64 = l.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(c.line(), "mk:1");
    assert!(c.line().starts_with("VALUE mk:2"));
    c.line();
    assert_eq!(c.line(), "END");
    c.raw(format!("cas mk:1 0 0 1 {cas}\r\nz\r\n").as_bytes());
    assert_eq!(c.line(), "STORED");
    c.raw(b"incr ctr 1\r\n");
    assert_eq!(c.line(), "NOT_FOUND");
    assert_eq!(c.set("ctr", "41"), "STORED");
    c.raw(b"incr ctr 1\r\ndelete mk:3\r\ndelete mk:3 noreply\r\ntouch mk:4 100\r\nversion\r\n");
    assert_eq!(c.line(), "42");
    assert_eq!(c.line(), "DELETED");
    assert_eq!(c.line(), "TOUCHED");
    assert!(c.line().starts_with("VERSION chring-proxy"));
    // Errors that keep the connection.
    for (req, want) in [
        (&b"bogus\r\n"[..], "ERROR"),
        (b"set k x 0 1\r\n", "CLIENT_ERROR bad command line format"),
        (b"get\r\n", "ERROR"),
        (b"flush_all\r\n", "ERROR"),
    ] {
        c.raw(req);
        assert_eq!(c.line(), want, "{req:?}");
        assert_eq!(c.set("ok", "1"), "STORED");
    }
    // A bad data chunk: error, then the connection closes.
    c.raw(b"set k 0 0 2\r\nabcd\r\n");
    assert_eq!(c.line(), "CLIENT_ERROR bad data chunk");
    let mut rest = String::new();
    assert_eq!(
        std::io::Read::read_to_string(&mut c.r, &mut rest).unwrap_or(0),
        0
    );
    // quit closes; the proxy still serves others.
    let mut c = Mc::new(proxy.port("m"));
    c.raw(b"quit\r\n");
    let mut rest = String::new();
    assert_eq!(
        std::io::Read::read_to_string(&mut c.r, &mut rest).unwrap_or(0),
        0
    );
    let mut c = Mc::new(proxy.port("m"));
    assert_eq!(c.get(&["ok"]), vec![("ok".into(), "1".into())]);
}
