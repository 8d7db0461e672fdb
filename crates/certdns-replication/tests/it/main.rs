//! certdns-replication's integration tests, one binary: the `Distribution`
//! behaviour suite with the follower and replica on top of it, run on the
//! in-process backend and on a real Redis.

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

mod distribution;
