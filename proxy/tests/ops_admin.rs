//! Admin HTTP over real sockets on 127.0.0.1, against the in-memory test
//! fleet (tests/ops_support).

mod ops_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use chring_proxy::admin;
use chring_proxy::state::{Control, LATENCY_BOUNDS_US};
use ops_support::{Fleet, http, served};

fn start(fleet: &Arc<Fleet>, token: Option<&str>) -> ops_support::Served {
    let ctl: Arc<dyn Control> = fleet.clone();
    let token: Option<Arc<str>> = token.map(Into::into);
    served(move |l| admin::serve(l, ctl, token))
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn metrics_are_valid_prometheus_text_with_histograms() {
    let fleet = Fleet::new(&[("cache", 2), ("sessions", 1)]);
    fleet.set_clients("cache", 3);
    for us in [40, 40, 300, 9_000, 2_000_000] {
        fleet.record("cache", "s1", "get", us, false);
    }
    fleet.record("cache", "s2", "set", 120, true);
    let srv = start(&fleet, None);
    let (status, head, body) = http(srv.addr, "GET", "/metrics", None, None);
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );

    // Every family: HELP, then TYPE, then samples of that name only; every
    // sample line is `name{labels} value` with a number.
    let mut types: BTreeMap<String, String> = BTreeMap::new();
    let mut current = String::new();
    let mut last_help = String::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            last_help = rest.split(' ').next().unwrap().to_owned();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(name, last_help, "TYPE without HELP before it");
            assert!(["counter", "gauge", "histogram"].contains(&kind));
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "family {name} twice"
            );
            current = name.to_owned();
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            let name = series.split('{').next().unwrap();
            let base = name
                .strip_suffix("_bucket")
                .or_else(|| name.strip_suffix("_sum"))
                .or_else(|| name.strip_suffix("_count"))
                .filter(|b| types.get(*b).is_some_and(|k| k == "histogram"))
                .unwrap_or(name);
            assert_eq!(base, current, "sample outside its family: {line}");
            if name.ends_with("_total") {
                assert_eq!(types[name], "counter");
            }
        }
    }
    for (name, kind) in [
        ("chring_proxy_client_connections", "gauge"),
        ("chring_proxy_server_requests_total", "counter"),
        ("chring_proxy_server_errors_total", "counter"),
        ("chring_proxy_server_ejections_total", "counter"),
        ("chring_proxy_server_request_bytes_total", "counter"),
        ("chring_proxy_server_response_bytes_total", "counter"),
        ("chring_proxy_client_bytes_received_total", "counter"),
        ("chring_proxy_request_duration_seconds", "histogram"),
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
    }
    assert!(body.contains("\nchring_proxy_client_connections{pool=\"cache\"} 3\n"));
    assert!(
        body.contains("\nchring_proxy_server_requests_total{pool=\"cache\",server=\"s1\"} 5\n")
    );
    assert!(body.contains("\nchring_proxy_server_errors_total{pool=\"cache\",server=\"s2\"} 1\n"));
    assert!(
        body.contains("\nchring_proxy_server_requests_total{pool=\"sessions\",server=\"s1\"} 0\n")
    );

    // The histogram of s1 / get: cumulative buckets, +Inf == _count, _sum in s.
    let l = "pool=\"cache\",server=\"s1\",command=\"get\"";
    let buckets: Vec<(String, u64)> = body
        .lines()
        .filter_map(|x| {
            x.strip_prefix(&format!(
                "chring_proxy_request_duration_seconds_bucket{{{l},le=\""
            ))
        })
        .map(|x| {
            let (le, v) = x.split_once("\"} ").unwrap();
            (le.to_owned(), v.parse().unwrap())
        })
        .collect();
    assert_eq!(buckets.len(), LATENCY_BOUNDS_US.len() + 1);
    assert_eq!(buckets[0], ("0.00005".to_owned(), 2));
    assert_eq!(buckets.last().unwrap(), &("+Inf".to_owned(), 5));
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert!(body.contains(&format!(
        "chring_proxy_request_duration_seconds_count{{{l}}} 5\n"
    )));
    assert!(body.contains(&format!(
        "chring_proxy_request_duration_seconds_sum{{{l}}} 2.00938\n"
    )));
}

#[test]
fn state_and_the_pool_api() {
    let fleet = Fleet::new(&[("cache", 3)]);
    let srv = start(&fleet, None);
    let (s, _, body) = http(srv.addr, "GET", "/api/state", None, None);
    assert_eq!(s, 200);
    let v = json(&body);
    assert_eq!(v["service"], "chring-proxy");
    assert_eq!(v["pools"][0]["name"], "cache");
    assert_eq!(v["pools"][0]["servers"].as_array().unwrap().len(), 3);
    assert_eq!(v["pools"][0]["servers"][0]["health"], "up");

    // moves before, then the add reports the same fraction.
    let (s, _, body) = http(
        srv.addr,
        "GET",
        "/api/pools/cache/moves?op=add&name=s4&addr=127.0.0.1%3A7004&weight=2",
        None,
        None,
    );
    assert_eq!(s, 200, "{body}");
    let priced = json(&body)["moved"].as_f64().unwrap();
    let (s, _, body) = http(
        srv.addr,
        "POST",
        "/api/pools/cache/servers",
        Some(r#"{"name":"s4","addr":"127.0.0.1:7004","weight":2}"#),
        None,
    );
    assert_eq!(s, 201, "{body}");
    assert_eq!(json(&body)["moved"].as_f64().unwrap(), priced);
    assert_eq!(json(&body)["server"], "s4");
    assert_eq!(fleet.snapshot().pools[0].servers.len(), 4);

    let (s, _, body) = http(
        srv.addr,
        "GET",
        "/api/pools/cache/moves?op=remove&name=s1",
        None,
        None,
    );
    assert_eq!(s, 200);
    let priced = json(&body)["moved"].as_f64().unwrap();
    let (s, _, body) = http(
        srv.addr,
        "DELETE",
        "/api/pools/cache/servers/s1",
        None,
        None,
    );
    assert_eq!(s, 200, "{body}");
    assert_eq!(json(&body)["moved"].as_f64().unwrap(), priced);

    // down / up, and route follows.
    let (s, _, _) = http(
        srv.addr,
        "POST",
        "/api/pools/cache/servers/s2/down",
        None,
        None,
    );
    assert_eq!(s, 200);
    for i in 0..50 {
        let (s, _, body) = http(
            srv.addr,
            "GET",
            &format!("/api/pools/cache/route?key=user%3A{i}"),
            None,
            None,
        );
        assert_eq!(s, 200);
        let v = json(&body);
        assert_eq!(v["key"], format!("user:{i}"));
        assert_ne!(v["server"], "s2");
        assert_eq!(
            v["server"].as_str(),
            fleet
                .route("cache", format!("user:{i}").as_bytes())
                .unwrap()
                .as_deref()
        );
    }
    let (s, _, body) = http(
        srv.addr,
        "POST",
        "/api/pools/cache/servers/s2/up",
        None,
        None,
    );
    assert_eq!((s, json(&body)["up"].as_bool()), (200, Some(true)));
}

#[test]
fn errors_are_json_with_proper_status_codes() {
    let fleet = Fleet::new(&[("cache", 2)]);
    let srv = start(&fleet, None);
    let cases: [(&str, &str, Option<&str>, u16); 16] = [
        ("GET", "/nope", None, 404),
        ("GET", "/api/pools/nope/route?key=a", None, 404),
        ("DELETE", "/api/pools/cache/servers/zz", None, 404),
        ("POST", "/api/pools/cache/servers/zz/down", None, 404),
        (
            "POST",
            "/api/pools/cache/servers",
            Some(r#"{"name":"s1","addr":"127.0.0.1:1"}"#),
            409,
        ),
        ("POST", "/api/pools/cache/servers", Some("{not json"), 400),
        (
            "POST",
            "/api/pools/cache/servers",
            Some(r#"{"name":"x"}"#),
            400,
        ),
        (
            "POST",
            "/api/pools/cache/servers",
            Some(r#"{"name":"x","addr":"h:1","weight":0}"#),
            400,
        ),
        (
            "POST",
            "/api/pools/cache/servers",
            Some(r#"{"name":"x","addr":"h:1","bogus":1}"#),
            400,
        ),
        ("GET", "/api/pools/cache/route", None, 400),
        ("GET", "/api/pools/cache/route?key=%zz", None, 400),
        ("GET", "/api/pools/cache/moves?op=frob&name=a", None, 400),
        ("GET", "/api/pools/cache/moves?op=add&name=a", None, 400),
        (
            "GET",
            "/api/pools/cache/moves?op=add&name=a&addr=h:1&weight=x",
            None,
            400,
        ),
        ("POST", "/metrics", None, 405),
        ("GET", "/api/pools/cache/servers", None, 405),
    ];
    for (method, path, body, want) in cases {
        let (s, head, b) = http(srv.addr, method, path, body, None);
        assert_eq!(s, want, "{method} {path}: {b}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{head}"
        );
        let e = json(&b)["error"].as_str().unwrap().to_owned();
        assert!(!e.is_empty() && !e.contains('\n'), "{e}");
    }
    // Nothing changed through all of that.
    assert_eq!(fleet.snapshot().pools[0].servers.len(), 2);
    // A body over the limit.
    let big = format!(r#"{{"name":"x","addr":"{}"}}"#, "a".repeat(admin::MAX_BODY));
    let (s, _, _) = http(
        srv.addr,
        "POST",
        "/api/pools/cache/servers",
        Some(&big),
        None,
    );
    assert_eq!(s, 413);
    assert_eq!(fleet.snapshot().pools[0].servers.len(), 2);
}

#[test]
fn a_token_needs_the_bearer_header() {
    let fleet = Fleet::new(&[("cache", 2)]);
    let token = "0123456789abcdef-token";
    let srv = start(&fleet, Some(token));
    let (s, head, _) = http(srv.addr, "GET", "/metrics", None, None);
    assert_eq!(s, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    assert_eq!(
        http(srv.addr, "GET", "/api/state", None, Some("wrong")).0,
        401
    );
    assert_eq!(
        http(
            srv.addr,
            "DELETE",
            "/api/pools/cache/servers/s1",
            None,
            Some("nope")
        )
        .0,
        401
    );
    assert_eq!(fleet.snapshot().pools[0].servers.len(), 2);
    assert_eq!(
        http(srv.addr, "GET", "/api/state", None, Some(token)).0,
        200
    );
    assert_eq!(
        http(
            srv.addr,
            "DELETE",
            "/api/pools/cache/servers/s1",
            None,
            Some(token)
        )
        .0,
        200
    );
}
