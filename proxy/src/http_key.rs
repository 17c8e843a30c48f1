//! The key of an HTTP request (`hash_key:` of a `mode: http` pool): which
//! bytes of the request the pool's placement hashes.
//!
//! | `hash_key:` | the bytes hashed |
//! | --- | --- |
//! | `uri` (default) | the path with its query, as sent (`/a/b?x=1`); for an absolute-form target (`http://host/a?x=1`) the part from the path on ([`chring::compat::haproxy::path_only`]) |
//! | `path` | the same without the query (cut at the first `?`) |
//! | `header:NAME` | the value of the first `NAME` header (name case-insensitive), surrounding blanks trimmed |
//! | `param:NAME` | the value of query parameter `NAME`, raw (not percent-decoded), HAProxy's `url_param` ([`chring::compat::haproxy::url_param`]) |
//! | `cookie:NAME` | the value of cookie `NAME` in the `Cookie` headers (the first one found) |
//! | `source` | the client's IP address in text (`192.0.2.7`, `2001:db8::1`; an IPv4-mapped IPv6 address as IPv4), port excluded |
//!
//! A request without the part (no such header, parameter or cookie, or an
//! empty header value) has no key: [`Extracted::Missing`]. The data path then
//! does what HAProxy does for `balance hdr`/`url_param`/`rdp-cookie`: it
//! spreads such requests over the servers like round robin (a per-pool
//! counter is hashed in place of the key). An empty parameter or cookie value
//! is a key (the empty string), as in HAProxy's `url_param`.
//!
//! Nothing here allocates: keys borrow from the request, and `source` is
//! written into a fixed buffer. No input panics.

use std::fmt::Write as _;
use std::net::IpAddr;

use chring::compat::haproxy::{path_only, url_param};

pub use chring_config::twemproxy::HashKey;

/// An IP address in text, in a fixed buffer (the longest IPv6 text is 39
/// bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SourceKey {
    buf: [u8; 48],
    len: usize,
}

impl std::fmt::Debug for SourceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SourceKey({})", String::from_utf8_lossy(self.as_bytes()))
    }
}

impl SourceKey {
    /// The key of a client address: its text, an IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.7`, what a dual-stack listener sees) written as the
    /// IPv4 address it is. *O*(1), no allocation.
    #[must_use]
    pub fn new(ip: IpAddr) -> SourceKey {
        struct W<'a>(&'a mut [u8; 48], usize);
        impl std::fmt::Write for W<'_> {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                let end = self.1 + s.len();
                let dst = self.0.get_mut(self.1..end).ok_or(std::fmt::Error)?;
                dst.copy_from_slice(s.as_bytes());
                self.1 = end;
                Ok(())
            }
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let mut buf = [0u8; 48];
        let mut w = W(&mut buf, 0);
        // Cannot fail: an address's text is at most 39 bytes.
        let _ = write!(w, "{ip}");
        let len = w.1;
        SourceKey { buf, len }
    }

    /// The text's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// The key of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extracted<'r> {
    /// Bytes of the request.
    Bytes(&'r [u8]),
    /// The client's address.
    Source(SourceKey),
    /// The request has no such part (header, parameter, cookie) or, for
    /// `source`, no client address is known.
    Missing,
}

impl Extracted<'_> {
    /// The bytes to hash; `None` for [`Extracted::Missing`].
    #[must_use]
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Extracted::Bytes(b) => Some(b),
            Extracted::Source(s) => Some(s.as_bytes()),
            Extracted::Missing => None,
        }
    }
}

/// Blanks (space, tab) trimmed off both ends.
fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or(&[])
}

/// The value of cookie `name` in one `Cookie` header value (`a=1; b=2`),
/// pairs split at `;`, names and values trimmed of blanks, a quoted value
/// (`"v"`) taken without its quotes. *O*(len(value)).
#[must_use]
pub fn cookie_value<'v>(value: &'v [u8], name: &[u8]) -> Option<&'v [u8]> {
    for pair in value.split(|&c| c == b';') {
        let Some(eq) = pair.iter().position(|&c| c == b'=') else {
            continue;
        };
        let (n, v) = (pair.get(..eq)?, pair.get(eq + 1..)?);
        if trim(n) == name {
            let v = trim(v);
            let unquoted = match v {
                [b'"', inner @ .., b'"'] => inner,
                _ => v,
            };
            return Some(unquoted);
        }
    }
    None
}

/// The key of a request, given its target as sent (`target`: the path and
/// query of an origin-form request, or an absolute URI), its headers in
/// order (name, value), and the client's address. *O*(len(target) + headers).
#[must_use]
pub fn extract<'r, H>(
    key: &HashKey,
    target: &'r [u8],
    headers: H,
    client: Option<IpAddr>,
) -> Extracted<'r>
where
    H: IntoIterator<Item = (&'r [u8], &'r [u8])>,
{
    match key {
        HashKey::Uri => Extracted::Bytes(path_only(target)),
        HashKey::Path => {
            let p = path_only(target);
            let end = p.iter().position(|&c| c == b'?').unwrap_or(p.len());
            Extracted::Bytes(p.get(..end).unwrap_or(&[]))
        }
        HashKey::Param(name) => {
            url_param(target, name.as_bytes()).map_or(Extracted::Missing, Extracted::Bytes)
        }
        HashKey::Header(name) => headers
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| trim(v))
            .filter(|v| !v.is_empty())
            .map_or(Extracted::Missing, Extracted::Bytes),
        HashKey::Cookie(name) => headers
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
            .find_map(|(_, v)| cookie_value(v, name.as_bytes()))
            .map_or(Extracted::Missing, Extracted::Bytes),
        HashKey::Source => client.map_or(Extracted::Missing, |ip| {
            Extracted::Source(SourceKey::new(ip))
        }),
    }
}

/// [`extract`] for a hyper request head.
#[must_use]
pub fn of_request<'r, B>(
    key: &HashKey,
    req: &'r hyper::Request<B>,
    client: Option<IpAddr>,
) -> Extracted<'r> {
    // hyper keeps the path and query of an origin-form target, and splits an
    // absolute-form one into its parts: either way the path and query is what
    // `path_only` leaves of the target.
    let target: &[u8] = req
        .uri()
        .path_and_query()
        .map_or(&b""[..], |pq| pq.as_str().as_bytes());
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()));
    extract(key, target, headers, client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn hk(s: &str) -> HashKey {
        HashKey::parse(s).unwrap()
    }

    const HEADERS: [(&[u8], &[u8]); 4] = [
        (b"Host", b"example.com"),
        (b"X-User", b"  alice \t"),
        (b"Cookie", b"theme=dark; sid=\"abc123\"; empty="),
        (b"cookie", b"late=1; sid=ignored"),
    ];

    fn ex(key: &str, target: &[u8]) -> Option<Vec<u8>> {
        let ip = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
        extract(&hk(key), target, HEADERS, ip)
            .bytes()
            .map(<[u8]>::to_vec)
    }

    #[test]
    fn uri_and_path() {
        assert_eq!(ex("uri", b"/a/b?x=1&y=2"), Some(b"/a/b?x=1&y=2".to_vec()));
        assert_eq!(ex("path", b"/a/b?x=1&y=2"), Some(b"/a/b".to_vec()));
        assert_eq!(ex("path", b"/a/b"), Some(b"/a/b".to_vec()));
        // Absolute form: from the path on.
        assert_eq!(
            ex("uri", b"http://example.com:8080/p?q=1"),
            Some(b"/p?q=1".to_vec())
        );
        assert_eq!(ex("path", b"http://example.com/p?q"), Some(b"/p".to_vec()));
        // Asterisk form (OPTIONS *): the empty key, never a miss.
        assert_eq!(ex("uri", b"*"), Some(Vec::new()));
    }

    #[test]
    fn header_first_match_case_insensitive_trimmed() {
        assert_eq!(ex("header:x-user", b"/"), Some(b"alice".to_vec()));
        assert_eq!(ex("header:HOST", b"/"), Some(b"example.com".to_vec()));
        assert_eq!(ex("header:x-missing", b"/"), None);
        let blank: [(&[u8], &[u8]); 1] = [(b"x-k", b" \t ")];
        assert_eq!(
            extract(&hk("header:x-k"), b"/", blank, None),
            Extracted::Missing
        );
    }

    #[test]
    fn param_is_haproxys_url_param() {
        assert_eq!(ex("param:id", b"/p?a=1&id=42&id=7"), Some(b"42".to_vec()));
        assert_eq!(ex("param:id", b"/p?id="), Some(Vec::new()));
        assert_eq!(ex("param:id", b"/p?a=1"), None);
        assert_eq!(ex("param:id", b"/p"), None);
        // Raw: no percent-decoding.
        assert_eq!(ex("param:q", b"/s?q=a%20b"), Some(b"a%20b".to_vec()));
        // A parameter named like the tail of another does not match.
        assert_eq!(ex("param:d", b"/p?id=1"), None);
    }

    #[test]
    fn cookie_first_found_unquoted() {
        assert_eq!(ex("cookie:sid", b"/"), Some(b"abc123".to_vec()));
        assert_eq!(ex("cookie:theme", b"/"), Some(b"dark".to_vec()));
        assert_eq!(ex("cookie:empty", b"/"), Some(Vec::new()));
        assert_eq!(ex("cookie:late", b"/"), Some(b"1".to_vec()));
        assert_eq!(ex("cookie:nope", b"/"), None);
        assert_eq!(cookie_value(b"a=1;b", b"b"), None);
        assert_eq!(cookie_value(b"=x; a =2", b"a"), Some(&b"2"[..]));
        assert_eq!(cookie_value(b"a=\"", b"a"), Some(&b"\""[..]));
    }

    #[test]
    fn source_is_the_address_text_without_port() {
        assert_eq!(ex("source", b"/"), Some(b"192.0.2.7".to_vec()));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped());
        assert_eq!(SourceKey::new(mapped).as_bytes(), b"10.1.2.3");
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(SourceKey::new(v6).as_bytes(), b"2001:db8::1");
        let longest = IpAddr::V6(Ipv6Addr::new(
            0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xfffe,
        ));
        assert_eq!(SourceKey::new(longest).as_bytes().len(), 39);
        assert_eq!(
            extract(&HashKey::Source, b"/", HEADERS, None),
            Extracted::Missing
        );
    }

    #[test]
    fn of_request_reads_hyper_heads() {
        let req = hyper::Request::builder()
            .uri("http://example.com/x/y?id=9")
            .header("X-User", "bob")
            .header("Cookie", "sid=s1")
            .body(())
            .unwrap();
        let k = |s: &str| of_request(&hk(s), &req, None).bytes().map(<[u8]>::to_vec);
        assert_eq!(k("uri"), Some(b"/x/y?id=9".to_vec()));
        assert_eq!(k("path"), Some(b"/x/y".to_vec()));
        assert_eq!(k("param:id"), Some(b"9".to_vec()));
        assert_eq!(k("header:x-user"), Some(b"bob".to_vec()));
        assert_eq!(k("cookie:sid"), Some(b"s1".to_vec()));
        assert_eq!(k("source"), None);
        let origin = hyper::Request::builder().uri("/o?k=v").body(()).unwrap();
        assert_eq!(
            of_request(&HashKey::Uri, &origin, None).bytes(),
            Some(&b"/o?k=v"[..])
        );
    }
}
