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
// host-sim: the specification's key assertions, determinism, charts.
mod host_sim;
