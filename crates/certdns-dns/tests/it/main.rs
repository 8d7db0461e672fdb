//! certdns-dns's integration tests, one binary: the answer table over real
//! sockets, metrics, malformed packets, TCP connections and their limits, and a
//! Redis outage under a responder.

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

mod answers;
mod fast_path;
mod metrics;
mod resilience;
mod robustness;
mod support;
mod tcp;
