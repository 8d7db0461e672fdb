//! The responder's metrics, through the `metrics` facade (the binary installs the
//! Prometheus recorder).
//!
//! Handles are registered once, when the responder is bound, for a fixed set of
//! query types and response codes: an increment on the hot path is then one atomic
//! add, with no label hashing or registry lookup. Install the recorder before
//! calling [`bind`](crate::bind), or these handles go nowhere.

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use metrics::{Counter, Histogram};

pub const QUERIES: &str = "certdns_dns_queries_total";
pub const ANSWER_SECONDS: &str = "certdns_dns_answer_seconds";
pub const TRUNCATED: &str = "certdns_dns_truncated_total";
pub const RRL: &str = "certdns_dns_rrl_limited_total";
pub const TCP_REFUSED: &str = "certdns_dns_tcp_connections_refused_total";

/// Query types with a label of their own; everything else is `other`.
const QTYPES: &[(RecordType, &str)] = &[
    (RecordType::TXT, "TXT"),
    (RecordType::A, "A"),
    (RecordType::AAAA, "AAAA"),
    (RecordType::NS, "NS"),
    (RecordType::SOA, "SOA"),
    (RecordType::CNAME, "CNAME"),
    (RecordType::CAA, "CAA"),
    (RecordType::MX, "MX"),
    (RecordType::HTTPS, "HTTPS"),
    (RecordType::ANY, "ANY"),
];
const OTHER: &str = "other";

const RCODES: &[(ResponseCode, &str)] = &[
    (ResponseCode::NoError, "NOERROR"),
    (ResponseCode::NXDomain, "NXDOMAIN"),
    (ResponseCode::Refused, "REFUSED"),
    (ResponseCode::FormErr, "FORMERR"),
    (ResponseCode::NotImp, "NOTIMP"),
    (ResponseCode::BADVERS, "BADVERS"),
    (ResponseCode::ServFail, "SERVFAIL"),
];

#[derive(Clone)]
pub(crate) struct Metrics {
    /// `[qtype][rcode]`, the last row and column being `other`.
    queries: Vec<Vec<Counter>>,
    latency: Histogram,
    truncated: Counter,
    rrl_dropped: Counter,
    rrl_slipped: Counter,
    tcp_refused: Counter,
}

impl Metrics {
    pub fn register() -> Self {
        let qtypes = QTYPES.iter().map(|(_, n)| *n).chain([OTHER]);
        let queries = qtypes
            .map(|qtype| {
                RCODES
                    .iter()
                    .map(|(_, n)| *n)
                    .chain([OTHER])
                    .map(|rcode| metrics::counter!(QUERIES, "qtype" => qtype, "rcode" => rcode))
                    .collect()
            })
            .collect();
        metrics::describe_counter!(QUERIES, "DNS queries answered (or dropped), by query type and response code");
        metrics::describe_histogram!(ANSWER_SECONDS, metrics::Unit::Seconds, "time from request to answer sent");
        metrics::describe_counter!(TRUNCATED, "UDP answers sent truncated (TC) because they did not fit");
        metrics::describe_counter!(RRL, "UDP answers withheld by response-rate limiting (dropped, or slipped as TC)");
        metrics::describe_counter!(
            TCP_REFUSED,
            "TCP connections closed at once because dns.tcp_max_connections were open"
        );
        Self {
            queries,
            latency: metrics::histogram!(ANSWER_SECONDS),
            truncated: metrics::counter!(TRUNCATED),
            rrl_dropped: metrics::counter!(RRL, "action" => "dropped"),
            rrl_slipped: metrics::counter!(RRL, "action" => "slipped"),
            tcp_refused: metrics::counter!(TCP_REFUSED),
        }
    }

    pub fn answered(&self, qtype: Option<RecordType>, rcode: ResponseCode, took: Duration) {
        let q = qtype.and_then(|t| QTYPES.iter().position(|(k, _)| *k == t)).unwrap_or(QTYPES.len());
        let r = RCODES.iter().position(|(k, _)| *k == rcode).unwrap_or(RCODES.len());
        if let Some(counter) = self.queries.get(q).and_then(|row| row.get(r)) {
            counter.increment(1);
        }
        self.latency.record(took.as_secs_f64());
    }

    pub fn truncated(&self) {
        self.truncated.increment(1);
    }

    pub fn tcp_refused(&self) {
        self.tcp_refused.increment(1);
    }

    pub fn rrl(&self, slipped: bool) {
        if slipped { self.rrl_slipped.increment(1) } else { self.rrl_dropped.increment(1) }
    }
}
