//! Seed 001's admin API (`GET /rep`, `POST /add`, `DELETE /rm` on `--admin`)
//! and its control-port lines (`REP`, `ADD`, `RM`) against a running proxy
//! over real daemons: a Redis pool and a memcached pool (the API does not
//! care which), every endpoint and every error path.

mod common;
mod ops_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chring_proxy::state::Control;
use chring_proxy::{admin, control};
use common::*;
use ops_support::{LineClient, http};
use serde_json::{Value, json};

/// The proxy with admin HTTP and the control port beside it.
struct Live {
    run: Running,
    admin: SocketAddr,
    control: SocketAddr,
}

fn live(yaml: &str, token: Option<&str>, probe_ms: u64) -> Live {
    let mut cfg = chring_proxy::ProxyConfig::parse(yaml).expect("the test's YAML parses");
    cfg.limits.probe_interval_ms = probe_ms;
    let run = start_cfg(cfg);
    let ctl: Arc<dyn Control> = run.proxy.clone();
    let token: Option<Arc<str>> = token.map(Into::into);
    let (a, c) = run.rt.block_on(async {
        (
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        )
    });
    let (admin, control) = (a.local_addr().unwrap(), c.local_addr().unwrap());
    run.rt.spawn(admin::serve(a, ctl.clone(), token.clone()));
    run.rt.spawn(control::serve(c, ctl, token));
    Live {
        run,
        admin,
        control,
    }
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

impl Live {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_token(method, path, body, None)
    }

    fn call_token(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let b = body.map(|b| b.to_string());
        let (status, _, text) = http(self.admin, method, path, b.as_deref(), token);
        (status, json_of(&text))
    }

    fn rep(&self, pool: &str) -> Value {
        let (s, v) = self.call("GET", &format!("/rep?pool={pool}"), None);
        assert_eq!(s, 200, "{v}");
        v
    }
}

fn names(v: &Value) -> Vec<String> {
    v["message"]["replicas"]
        .as_array()
        .unwrap_or_else(|| panic!("no replicas in {v}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// A failure as seed 001 answers it: the status, `status: failure` and the
/// message.
fn failure(got: (u16, Value), status: u16, message_starts: &str) {
    let (s, v) = got;
    assert_eq!(s, status, "{v}");
    assert_eq!(v["status"], "failure", "{v}");
    let m = v["message"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(
        m.starts_with(message_starts),
        "message {m:?} does not start with {message_starts:?}"
    );
}

fn yaml(redis: &[&Daemon], mc: &[&Daemon]) -> String {
    let mut y = format!(
        "alpha:\n  listen: 127.0.0.1:{}\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n  \
         timeout: 500\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  \
         server_retry_timeout: 60000\n  servers:\n",
        free_port()
    );
    for (i, d) in redis.iter().enumerate() {
        y.push_str(&format!("   - 127.0.0.1:{}:1 r{}\n", d.port, i + 1));
    }
    y.push_str(&format!(
        "beta:\n  listen: 127.0.0.1:{}\n  hash: fnv1a_64\n  distribution: ketama\n  \
         timeout: 500\n  servers:\n",
        free_port()
    ));
    for (i, d) in mc.iter().enumerate() {
        y.push_str(&format!("   - 127.0.0.1:{}:1 m{}\n", d.port, i + 1));
    }
    y
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn rep_add_rm_over_http_route_live_traffic() {
    let (r1, r2, r3) = (redis(), redis(), redis());
    let (m1, m2) = (memcached(), memcached());
    let l = live(&yaml(&[&r1, &r2], &[&m1, &m2]), None, 200);

    // GET /rep: seed 001's shape, health in an extra field.
    let v = l.rep("alpha");
    assert_eq!(v["status"], "successful");
    assert_eq!(v["message"]["N"], 2);
    assert_eq!(names(&v), ["r1", "r2"]);
    assert_eq!(v["message"]["health"], json!({"r1": "up", "r2": "up"}));
    assert_eq!(v["message"]["pool"], "alpha");
    assert_eq!(
        v["message"]["servers"][0]["addr"],
        format!("127.0.0.1:{}", r1.port)
    );
    assert!(v["message"].get("moved").is_none());
    assert_eq!(names(&l.rep("beta")), ["m1", "m2"]);

    // MOVES (control port) prices the add; POST /add then reports the same.
    let mut c = LineClient::new(l.control);
    let priced: f64 = c
        .cmd(&format!("MOVES alpha ADD r3 127.0.0.1:{}", r3.port))
        .strip_prefix('+')
        .unwrap()
        .parse()
        .unwrap();
    let (s, v) = l.call(
        "POST",
        "/add?pool=alpha",
        Some(json!({"n": 1, "hostnames": [format!("r3=127.0.0.1:{}", r3.port)]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "successful");
    assert_eq!(v["message"]["N"], 3);
    assert_eq!(names(&v), ["r1", "r2", "r3"]);
    assert_eq!(v["message"]["moved"], json!([priced]));
    assert!(priced > 0.15 && priced < 0.5, "{priced}");

    // The new server takes its keys: SET through the proxy, read from r3.
    let keys = keys("seed001", 600, 1);
    let mut p = Resp::new(l.run.port("alpha"));
    for k in &keys {
        assert_eq!(p.cmd(&["SET", k, "v"]), V::S("OK".into()));
    }
    let on_r3 = Resp::new(r3.port).keys();
    let routed: Vec<&String> = keys
        .iter()
        .filter(|k| l.run.proxy.route("alpha", k.as_bytes()).unwrap().as_deref() == Some("r3"))
        .collect();
    assert_eq!(on_r3.len(), routed.len());
    assert!(!routed.is_empty());
    assert!(routed.iter().all(|k| on_r3.contains(k)));

    // A hostname without a name is named by its address; a weight is kept.
    let (m3, m4) = (memcached(), memcached());
    let (s, v) = l.call(
        "POST",
        "/add?pool=beta",
        Some(json!({"n": 2, "hostnames": [
            format!("127.0.0.1:{}", m3.port),
            format!("m4=127.0.0.1:{}:3", m4.port),
        ]})),
    );
    assert_eq!(s, 200, "{v}");
    let m3_name = format!("127.0.0.1:{}", m3.port);
    assert_eq!(names(&v), ["m1", "m2", m3_name.as_str(), "m4"]);
    assert_eq!(v["message"]["servers"][3]["weight"], 3);
    assert_eq!(v["message"]["moved"].as_array().unwrap().len(), 2);
    let mut mc = Mc::new(l.run.port("beta"));
    assert_eq!(mc.set("k", "v"), "STORED");
    assert_eq!(mc.get(&["k"]), [("k".to_owned(), "v".to_owned())]);

    // DELETE /rm: the moved fraction is the one MOVES priced.
    let priced: f64 = c
        .cmd("MOVES alpha REMOVE r3")
        .strip_prefix('+')
        .unwrap()
        .parse()
        .unwrap();
    let (s, v) = l.call(
        "DELETE",
        "/rm?pool=alpha",
        Some(json!({"n": 1, "hostnames": ["r3"]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(names(&v), ["r1", "r2"]);
    assert_eq!(v["message"]["moved"], json!([priced]));
    let (s, v) = l.call(
        "DELETE",
        "/rm?pool=beta",
        Some(json!({"n": 2, "hostnames": ["m4", m3_name]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(names(&v), ["m1", "m2"]);
    // Keys still read back through the proxy after the removal.
    assert_eq!(p.cmd(&["SET", "after", "1"]), V::S("OK".into()));
    assert_eq!(p.cmd(&["GET", "after"]), V::bulk("1"));

    // Health shows in /rep: a killed redis-server is ejected.
    let mut r2 = r2;
    r2.kill();
    assert!(
        eventually(
            Duration::from_secs(10),
            || l.rep("alpha")["message"]["health"]["r2"] == "ejected"
        ),
        "{}",
        l.rep("alpha")
    );
    assert_eq!(l.rep("alpha")["message"]["health"]["r1"], "up");
    assert_eq!(l.rep("alpha")["message"]["N"], 2);
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn every_error_is_seed_001s_400_and_changes_nothing() {
    let (r1, r2) = (redis(), redis());
    let m1 = memcached();
    let l = live(&yaml(&[&r1, &r2], &[&m1]), None, 1000);
    let add = |body: Value| l.call("POST", "/add?pool=alpha", Some(body));
    let rm = |body: Value| l.call("DELETE", "/rm?pool=alpha", Some(body));

    // Seed 001's rules, with its messages.
    failure(
        add(json!({"n": 1, "hostnames": ["a=127.0.0.1:1", "b=127.0.0.1:2"]})),
        400,
        "Number of hostnames exceeds number of servers to add",
    );
    failure(
        rm(json!({"n": 1, "hostnames": ["r1", "r2"]})),
        400,
        "Number of hostnames exceeds number of servers to remove",
    );
    failure(
        rm(json!({"n": 3, "hostnames": ["r1", "r2"]})),
        400,
        "Cannot remove more servers than available (n is 3, pool 'alpha' has 2)",
    );
    // Where seed 001 spawns containers with random names.
    failure(
        add(json!({"n": 2, "hostnames": ["a=127.0.0.1:1"]})),
        400,
        "n is 2 but 1 hostname(s) given: chring-proxy cannot spawn servers",
    );
    failure(
        add(json!({"n": 1})),
        400,
        "n is 1 but 0 hostname(s) given: chring-proxy cannot spawn servers",
    );
    failure(
        rm(json!({"n": 2, "hostnames": ["r1"]})),
        400,
        "n is 2 but 1 hostname(s) given: chring-proxy removes only the servers named",
    );
    failure(
        rm(json!({"n": 1, "hostnames": ["nope"]})),
        400,
        "no server 'nope' in pool 'alpha'",
    );
    failure(
        add(json!({"n": 1, "hostnames": ["r1=127.0.0.1:1"]})),
        400,
        "server 'r1' is already in pool 'alpha'",
    );
    failure(
        add(json!({"n": 1, "hostnames": ["nonsense"]})),
        400,
        "bad hostname 'nonsense': expected name=host:port[:weight] or host:port[:weight]",
    );
    failure(
        add(json!({"n": 1, "hostnames": ["a=127.0.0.1:1:0"]})),
        400,
        "bad hostname 'a=127.0.0.1:1:0': bad weight",
    );
    failure(
        add(json!({"n": 2, "hostnames": ["a=127.0.0.1:1", "a=127.0.0.1:2"]})),
        400,
        "server 'a' named twice",
    );
    // All or nothing: the good first hostname is not added either.
    failure(
        add(json!({"n": 2, "hostnames": ["ok=127.0.0.1:1", "r2=127.0.0.1:2"]})),
        400,
        "server 'r2' is already in pool 'alpha'",
    );
    failure(
        rm(json!({"n": 2, "hostnames": ["r1", "nope"]})),
        400,
        "no server 'nope' in pool 'alpha'",
    );

    // Bodies.
    failure(add(json!([1, 2])), 400, "Invalid request: the body must be");
    failure(
        add(json!({"hostnames": []})),
        400,
        "Invalid request: 'n' is missing",
    );
    failure(
        add(json!({"n": -1, "hostnames": []})),
        400,
        "Invalid request: 'n' must be a non-negative integer",
    );
    failure(
        add(json!({"n": 1, "hostnames": "a=127.0.0.1:1"})),
        400,
        "Invalid request: 'hostnames' must be a list of strings",
    );
    failure(
        add(json!({"n": 1, "hostnames": [1]})),
        400,
        "Invalid request: 'hostnames' must be a list of strings",
    );
    failure(
        add(json!({"n": 1, "hostname": ["a=127.0.0.1:1"]})),
        400,
        "Invalid request: unknown field 'hostname'",
    );
    let (s, _, text) = http(l.admin, "POST", "/add?pool=alpha", Some("{\"n\": 1,"), None);
    failure((s, json_of(&text)), 400, "Invalid request: bad JSON");
    let big = format!(
        "{{\"n\": 1, \"hostnames\": [\"{}\"]}}",
        "x".repeat(admin::MAX_BODY)
    );
    let (s, _, text) = http(l.admin, "POST", "/add?pool=alpha", Some(&big), None);
    failure((s, json_of(&text)), 413, "body over 65536 bytes");

    // Pools: required with several, unknown refused.
    failure(
        l.call("GET", "/rep", None),
        400,
        "this proxy has several pools (alpha, beta): name one with ?pool=NAME",
    );
    failure(
        l.call("POST", "/add", Some(json!({"n": 0, "hostnames": []}))),
        400,
        "this proxy has several pools",
    );
    failure(l.call("GET", "/rep?pool=nope", None), 400, "no pool 'nope'");

    // Methods.
    failure(
        l.call("POST", "/rep?pool=alpha", None),
        405,
        "method POST not allowed on /rep (use GET)",
    );
    failure(
        l.call("GET", "/add?pool=alpha", None),
        405,
        "method GET not allowed on /add (use POST)",
    );
    failure(
        l.call("POST", "/rm?pool=alpha", None),
        405,
        "method POST not allowed on /rm (use DELETE)",
    );

    // Nothing changed, and the pool-named API is still there.
    let v = l.rep("alpha");
    assert_eq!(names(&v), ["r1", "r2"]);
    let (s, v) = l.call("GET", "/api/pools/alpha/route?key=x", None);
    assert_eq!(s, 200, "{v}");
    assert!(matches!(v["server"].as_str(), Some("r1" | "r2")), "{v}");
    // n = 0, no hostname: seed 001 answers the replicas as they are.
    let (s, v) = add(json!({"n": 0, "hostnames": []}));
    assert_eq!(s, 200, "{v}");
    assert_eq!(names(&v), ["r1", "r2"]);

    // One pool: ?pool= may be left out.
    let single = live(
        &format!(
            "only:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1 r1\n",
            r1.port
        ),
        None,
        1000,
    );
    let (s, v) = single.call("GET", "/rep", None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(names(&v), ["r1"]);
    let (s, v) = single.call(
        "POST",
        "/add",
        Some(json!({"n": 1, "hostnames": [format!("r2=127.0.0.1:{}", r2.port)]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(names(&v), ["r1", "r2"]);
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn a_token_guards_seed_001s_endpoints() {
    let r1 = redis();
    let token = "seed001-token-0123456789";
    let l = live(
        &format!(
            "only:\n  listen: 127.0.0.1:0\n  redis: true\n  servers:\n   - 127.0.0.1:{}:1 r1\n",
            r1.port
        ),
        Some(token),
        1000,
    );
    for (method, path) in [("GET", "/rep"), ("POST", "/add"), ("DELETE", "/rm")] {
        let body = json!({"n": 1, "hostnames": ["r1"]});
        failure(
            l.call(method, path, Some(body.clone())),
            401,
            "missing or wrong bearer token",
        );
        failure(
            l.call_token(method, path, Some(body), Some("wrong-token-0123456789")),
            401,
            "missing or wrong bearer token",
        );
    }
    assert_eq!(names(&l.rep_with(token)), ["r1"]);
    let (s, v) = l.call_token(
        "DELETE",
        "/rm",
        Some(json!({"n": 1, "hostnames": ["r1"]})),
        Some(token),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["message"]["N"], 0);
}

impl Live {
    fn rep_with(&self, token: &str) -> Value {
        let (s, v) = self.call_token("GET", "/rep", None, Some(token));
        assert_eq!(s, 200, "{v}");
        v
    }
}

#[test]
#[ignore = "real daemons: bash scripts/test-all.sh proxy"]
fn control_port_rep_add_rm_match_the_http_form() {
    let (r1, r2, r3, r4) = (redis(), redis(), redis(), redis());
    let m1 = memcached();
    let l = live(&yaml(&[&r1, &r2], &[&m1]), None, 1000);
    let mut c = LineClient::new(l.control);
    assert_eq!(c.array("REP alpha"), ["+r1 up", "+r2 up"]);
    assert_eq!(c.array("REP beta"), ["+m1 up"]);
    assert_eq!(
        c.array(&format!(
            "ADD alpha 2 r3=127.0.0.1:{} r4=127.0.0.1:{}:2",
            r3.port, r4.port
        )),
        ["+r1 up", "+r2 up", "+r3 up", "+r4 up"]
    );
    let v = l.rep("alpha");
    assert_eq!(names(&v), ["r1", "r2", "r3", "r4"]);
    assert_eq!(v["message"]["servers"][3]["weight"], 2);
    // The keys follow: ROUTE on the control port names the new servers
    // (seeded keys: nutcracker's fnv1a_64 keeps only the low 32 bits, so
    // keys that differ in their last bytes only land close together).
    let routed: std::collections::BTreeSet<String> = keys("route", 200, 7)
        .iter()
        .map(|k| c.cmd(&format!("ROUTE alpha {k}")))
        .collect();
    assert!(
        routed.contains("+r3") && routed.contains("+r4"),
        "{routed:?}"
    );

    // Errors: one -ERR line each, nothing changes.
    assert_eq!(
        c.cmd("ADD alpha 1 a=127.0.0.1:1 b=127.0.0.1:2"),
        "-ERR Number of hostnames exceeds number of servers to add"
    );
    assert!(
        c.cmd("ADD alpha 2 a=127.0.0.1:1")
            .starts_with("-ERR n is 2 but 1 hostname(s) given: chring-proxy cannot spawn servers")
    );
    assert_eq!(
        c.cmd("ADD alpha 2 a=127.0.0.1:1 r1=127.0.0.1:2"),
        "-ERR server 'r1' is already in pool 'alpha'"
    );
    assert_eq!(
        c.cmd("RM alpha 2 r3 nope"),
        "-ERR no server 'nope' in pool 'alpha'"
    );
    assert_eq!(
        c.cmd("RM alpha 9 r3"),
        "-ERR Cannot remove more servers than available (n is 9, pool 'alpha' has 4)"
    );
    assert_eq!(c.cmd("RM alpha x r3"), "-ERR bad number");
    assert_eq!(c.cmd("REP nope"), "-ERR no pool 'nope'");
    assert_eq!(c.cmd("REP"), "-ERR wrong number of arguments for 'REP'");
    assert_eq!(c.array("REP alpha").len(), 4);

    assert_eq!(c.array("RM alpha 2 r4 r3"), ["+r1 up", "+r2 up"]);
    assert_eq!(names(&l.rep("alpha")), ["r1", "r2"]);
    assert_eq!(c.array("HELP").len(), control::HELP.len());
}
