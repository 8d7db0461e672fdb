//! certdns-http's integration tests, one binary: a listener under slow and idle
//! clients, over real sockets.

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

mod slow_clients;
