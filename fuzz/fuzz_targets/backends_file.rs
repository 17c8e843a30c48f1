//! `host-sim route --backends FILE`: the backends-file reader on arbitrary
//! text (as `read_backends` reads it: UTF-8 only), then, for small fleets and a
//! first byte below 40, the router of one key-affine strategy over it.
//!
//! Checked (host-sim/src/route.rs module docs): a parsed fleet is 1 to
//! `ROUTE_MAX_BACKENDS` backends with distinct identities free of whitespace
//! and not starting with `#`, weights in `1..=65535`, line numbers increasing;
//! every key routes to one of the identities.
#![no_main]

use host_sim::route::{KeyRouter, ROUTE_MAX_BACKENDS, StrategyRouter, parse_backends};
use host_sim::sim::StrategyKind;
use libfuzzer_sys::fuzz_target;

const KINDS: [StrategyKind; 3] = [
    StrategyKind::Jump,
    StrategyKind::Rendezvous,
    StrategyKind::Modulo,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let Ok(fleet) = parse_backends(text) else {
        return;
    };
    assert!(!fleet.is_empty() && fleet.len() <= ROUTE_MAX_BACKENDS);
    for (i, b) in fleet.iter().enumerate() {
        assert!(!b.identity.is_empty());
        assert!(
            !b.identity.chars().any(char::is_whitespace),
            "{:?}",
            b.identity
        );
        assert!(!b.identity.starts_with('#'), "{:?}", b.identity);
        assert!((1..=chring::MAX_WEIGHT).contains(&b.weight));
        assert!(
            fleet[..i]
                .iter()
                .all(|o| o.identity != b.identity && o.line < b.line)
        );
    }
    // Building a router costs a thread and up to a few MiB of fixed-capacity
    // tables: small fleets only, and only when the first byte is below 40, so
    // the reader itself runs at full speed. Maglev (one 65,537-entry table
    // rebuild per backend, milliseconds) only for a first byte of 0.
    if fleet.len() > 8 || sel >= 40 {
        return;
    }
    let kind = if sel == 0 {
        StrategyKind::Maglev
    } else {
        KINDS[usize::from(sel) % KINDS.len()]
    };
    let vnodes = 1 + u32::from(sel / 4);
    let Ok(mut router) = StrategyRouter::new(kind, vnodes, &fleet) else {
        return;
    };
    for key in [&b"customer-1"[..], b"", rest] {
        let got = router
            .route(key)
            .expect("a fleet of at least one")
            .to_string();
        assert!(fleet.iter().any(|b| b.identity == got), "routed to {got:?}");
    }
});
