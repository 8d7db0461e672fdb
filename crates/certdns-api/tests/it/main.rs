//! certdns-api's integration tests, one binary: the router served over real HTTP
//! on both deployments (SQLite + in-process, Postgres + Redis).

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

mod clients;
mod domains;
mod errors;
mod limits;
mod support;
mod tenancy;
mod writes;
