//! The authoritative DNS responder of certdns.
//!
//! [`bind`] validates the `[zone]` and `[dns]` configuration, compiles the zone and
//! binds every socket; [`BoundDns::run`] serves until cancelled. Answers come from
//! the compiled zone (SOA, NS, static records) and from a
//! [`Replica`](certdns_replication::Replica) of every registration's TXT values,
//! which a `Follower` owned by the caller keeps current. See `docs/dns.md`.

mod batch;
pub mod config;
mod fast;
#[doc(hidden)]
pub mod fuzzing;
mod general;
mod listen;
mod metrics;
mod responder;
mod rrl;
mod tcp;
mod udp;
mod zone;

pub use config::{DnsConfig, RrlConfig, ZoneConfig};
pub use listen::{BoundDns, DnsError, Protocol, bind};
pub use metrics::{ANSWER_SECONDS, QUERIES, RRL as RRL_LIMITED, TCP_REFUSED, TRUNCATED};
pub use responder::EDNS_PAYLOAD;
