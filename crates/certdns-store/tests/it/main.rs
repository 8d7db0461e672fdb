//! certdns-store's integration tests, one binary: the `Store` behaviour suite
//! ([`store`]) and the `PortalStore` one ([`portal_store`]), each case on SQLite
//! and on Postgres with a database of its own.

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

mod access_tokens;
mod acme_state;
mod alerts;
mod billing;
mod billing_usage;
mod domains;
mod fast_writes;
mod moved_and_labelled;
mod operator;
mod persist;
mod portal_store;
mod store;
