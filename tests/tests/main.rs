//! chring's workspace-level integration tests: one test binary (see Cargo.toml).

// Shared fleets and builders.
mod common;
// The placement contract: chring against the independent Python reference.
mod golden;
// Minimal disruption on fleet changes, per strategy.
mod disruption;
// Balance: coefficient of variation against vnodes, and weights.
mod balance;
// Bad input: errors, never panics.
mod errors;
// Load-aware and stateful strategies.
mod behaviour;
// Property tests: the ring against a naive model built from the contract.
mod model;
// The strategy traits as a proxy and a device use them (issue 11).
mod traits;
// host-sim: the specification's key assertions, determinism, charts.
mod host_sim;
// The README's hand-typed scenario figures against docs/results/results.json.
mod readme_results;
// twemproxy (nutcracker) ketama against the real daemon (ignored: the compat step runs it).
mod compat_twemproxy;
// nginx and HAProxy daemon tests: shared HTTP backends, client and process guard.
mod compat_http;
// nginx `hash ... consistent` and plain `hash` against the real nginx (ignored: the compat_http step runs it).
mod compat_nginx;
// HAProxy 2.6 `hash-type consistent` against the real haproxy (ignored: the compat_http step runs it).
mod compat_haproxy;
// libmemcached KETAMA / KETAMA_WEIGHTED against the real library via pylibmc (ignored: the compat_libmemcached step runs it).
mod compat_libmemcached;
