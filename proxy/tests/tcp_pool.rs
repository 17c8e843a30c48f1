//! TCP pools (`mode: tcp`, issue 15): the configuration, whole connections
//! forwarded to small servers written here (echo servers that first say their
//! name), on 127.0.0.1, every loop bounded in count and time.

use std::process::Command;

#[test]
fn test_conf_accepts_balancer_pools_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "web:\n  listen: 127.0.0.1:0\n  mode: tcp\n  distribution: rendezvous\n  \
         check_interval: 500\n  check_send: \"PING\\r\\n\"\n  check_expect: \"+PONG\"\n  \
         rise: 2\n  fall: 3\n  idle_timeout: 60000\n  retries: 1\n  timeout: 300\n  \
         servers:\n   - 127.0.0.1:6379:1 a\n   - 127.0.0.1:6380:1 b\n\
         api:\n  listen: 127.0.0.1:1\n  mode: http\n  hash_key: cookie:session\n  \
         check_path: /ready\n  hedge_after: p95\n  servers:\n   - 127.0.0.1:8080:1 web1\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "web:\n  listen: 127.0.0.1:0\n  mode: tcp\n  redis: true\n  servers:\n   - 127.0.0.1:1:1\n",
    )
    .unwrap();
    let run = |f: &std::path::Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_chring-proxy"))
            .arg("-t")
            .arg("-c")
            .arg(f)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&good);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("syntax is ok"), "{err}");
    let (code, err) = run(&bad);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("line 4: 'redis:' means nothing in a mode: tcp pool"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
