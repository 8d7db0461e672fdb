//! certdns-sync's integration tests, one binary: every operation that changes
//! what the DNS answers, on both deployments (SQLite + in-process, Postgres +
//! Redis), including publishes that fail and are repaired.

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

mod operations;
