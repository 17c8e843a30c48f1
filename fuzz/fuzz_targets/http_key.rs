//! chring-proxy's HTTP request keys (`chring_proxy::http_key`) on arbitrary
//! request heads: the input is a `hash_key:` value (read by chring-config's
//! `HashKey::parse`, as the pool YAML is), a newline, an optional client
//! address line, and a request head parsed by httparse (hyper's parser).
//!
//! Checked: nothing panics; a key taken from the request is a sub-slice of
//! it (`uri` a suffix of the target, `path` a prefix of that without `?`,
//! `param` the value `url_param` finds, `header` the trimmed, non-empty value
//! of the first header of that name, `cookie` inside a `Cookie` header);
//! `source` is the client address' text exactly when one is given; a
//! missing key is reported only where the part is absent.
#![no_main]

use std::net::IpAddr;

use chring_config::twemproxy::HashKey;
use chring_proxy::http_key::{Extracted, extract};
use libfuzzer_sys::fuzz_target;

/// `true` when `inner` lies inside `outer` (an empty slice always does).
fn inside(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fuzz_target!(|data: &[u8]| {
    let Some(nl) = data.iter().position(|&c| c == b'\n') else {
        return;
    };
    let Ok(spec) = std::str::from_utf8(&data[..nl]) else {
        return;
    };
    let Ok(key) = HashKey::parse(spec) else {
        return;
    };
    let mut rest = &data[nl + 1..];
    let mut client: Option<IpAddr> = None;
    if let Some(line) = rest.strip_prefix(b"@") {
        let end = line.iter().position(|&c| c == b'\n').unwrap_or(line.len());
        client = std::str::from_utf8(&line[..end])
            .ok()
            .and_then(|s| s.parse().ok());
        rest = line.get(end + 1..).unwrap_or(&[]);
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    if req.parse(rest).is_err() {
        return;
    }
    let Some(target) = req.path else {
        return;
    };
    let target = target.as_bytes();
    let list: Vec<(&[u8], &[u8])> = req
        .headers
        .iter()
        .map(|h| (h.name.as_bytes(), h.value))
        .collect();
    let got = extract(&key, target, list.iter().copied(), client);
    match (&key, got) {
        (HashKey::Uri, Extracted::Bytes(b)) => {
            assert!(target.ends_with(b) && inside(target, b));
        }
        (HashKey::Path, Extracted::Bytes(b)) => {
            let Extracted::Bytes(uri) = extract(&HashKey::Uri, target, [], None) else {
                panic!("uri is never missing");
            };
            assert!(uri.starts_with(b) && !b.contains(&b'?'));
            assert!(b.len() == uri.len() || uri[b.len()] == b'?');
        }
        (HashKey::Param(n), Extracted::Bytes(b)) => {
            assert_eq!(
                chring::compat::haproxy::url_param(target, n.as_bytes()),
                Some(b)
            );
        }
        (HashKey::Param(n), Extracted::Missing) => {
            assert_eq!(
                chring::compat::haproxy::url_param(target, n.as_bytes()),
                None
            );
        }
        (HashKey::Header(n), Extracted::Bytes(b)) => {
            let first = list
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n.as_bytes()))
                .expect("a header of that name");
            assert!(!b.is_empty() && inside(first.1, b));
            assert!(!b.starts_with(b" ") && !b.ends_with(b" "));
        }
        (HashKey::Header(n), Extracted::Missing) => {
            let first = list
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n.as_bytes()));
            assert!(first.is_none_or(|(_, v)| v.iter().all(|&c| c == b' ' || c == b'\t')));
        }
        (HashKey::Cookie(_), Extracted::Bytes(b)) => {
            assert!(
                list.iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case(b"cookie") && inside(v, b))
            );
        }
        (HashKey::Cookie(_), Extracted::Missing) => {}
        (HashKey::Source, Extracted::Source(s)) => {
            let ip = client.expect("a source key needs an address");
            let text = match ip {
                IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
                v4 => v4.to_string(),
            };
            assert_eq!(s.as_bytes(), text.as_bytes());
        }
        (HashKey::Source, Extracted::Missing) => assert!(client.is_none()),
        (k, e) => panic!("{k:?} gave {e:?}"),
    }
});
