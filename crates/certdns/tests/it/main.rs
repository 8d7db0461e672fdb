//! The certdns binary, black-box: started as an operator would, driven over real
//! HTTP and DNS sockets, stopped with SIGTERM.

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

mod alerts;
mod billing;
mod cli;
mod domains;
mod edge;
mod embedded;
mod fault_matrix;
mod faults;
mod fleet;
mod import;
mod monitor;
mod operations;
mod roles;
mod shipped_configs;
mod support;
mod tls;
mod tls_acme;
