//! Code the fuzz targets share.

use host_sim::route::KeyRouter;

/// One of `host-sim route --config`'s readers on arbitrary bytes, as the
/// `config_*` targets check it: it must return Ok or Err and never panic. The
/// text is read as the CLI reads it (non-UTF-8 is refused before the reader);
/// each input is read with no pool and with the pool named by the last word of
/// its first line (`alpha:`, `# cache`, `upstream cache {`), and a router that
/// was built must answer keys with one of its servers (or `None` where the
/// daemon would not decide by key).
pub fn check_config_reader<E>(
    data: &[u8],
    read: impl Fn(&str, Option<&str>) -> Result<Box<dyn KeyRouter>, E>,
) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = host_sim::config::detect(text);
    let first = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == ':' || c == '{'))
        .rfind(|w| !w.is_empty())
        .unwrap_or("");
    for pool in [None, Some(first)] {
        if let Ok(mut router) = read(text, pool) {
            // Client addresses too, for `balance source` and `ip_hash`.
            for key in [
                &b"user:1"[..],
                b"",
                b"{tag}x",
                b"10.1.2.3",
                b"[::1]",
                &data[..data.len().min(16)],
            ] {
                if let Some(server) = router.route(key) {
                    assert!(!server.is_empty(), "empty server label");
                }
            }
        }
    }
}
