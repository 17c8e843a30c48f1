//! `host-sim route --config`'s nginx reader on arbitrary text: it must return
//! Ok or Err, never panic, and stay within bounded memory (run with
//! `-rss_limit_mb` and `-max_len`, see README.md "Fuzzing"; the dictionary
//! `fuzz/dict/nginx.dict` holds the format's keywords).
//!
//! The text is read as the CLI reads it (`read_to_string`: non-UTF-8 is
//! refused before the reader). Each input is read with no pool and with the
//! pool named by the last word of its first line; a router that was built must answer keys with
//! one of its servers (or `None` where the daemon would not decide by key).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = host_sim::config::detect(text);
    // The pool: the last word of the first line (`alpha:`, `# cache`,
    // `upstream cache {`), without `:` and `{`.
    let first = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == ':' || c == '{'))
        .rfind(|w| !w.is_empty())
        .unwrap_or("");
    for pool in [None, Some(first)] {
        if let Ok(mut router) = host_sim::config::nginx::router(text, pool) {
            for key in [&b"user:1"[..], b"", b"{tag}x", &data[..data.len().min(16)]] {
                if let Some(server) = router.route(key) {
                    assert!(!server.is_empty(), "empty server label");
                }
            }
        }
    }
});
