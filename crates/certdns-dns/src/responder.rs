//! The responder: hickory's `RequestHandler` with certdns's answer rules, one
//! question in, one authoritative answer out.
//!
//! Hot path: a hash lookup in the compiled zone or a lock-free replica lookup, the
//! answer records built on the stack of this call, no locks, no I/O but the send.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use certdns_replication::{Replica, TxtLookup};
use hickory_proto::op::{Edns, Header, HeaderCounts, LowerQuery, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinDecoder;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use crate::fast::WireZone;
use crate::metrics::Metrics;
use crate::rrl::{Rrl, Verdict};
use crate::zone::{Owner, Zone};

/// The UDP payload size we advertise and cap answers at (DNS flag day 2020:
/// avoids IP fragmentation on every common path).
pub const EDNS_PAYLOAD: u16 = 1232;
/// Without EDNS a UDP answer may not exceed this (RFC 1035 §4.2.1).
pub(crate) const CLASSIC_UDP_LIMIT: usize = 512;
pub(crate) const HEADER_LEN: usize = 12;
/// An OPT record without options: root name, type, class, TTL, RDLENGTH.
pub(crate) const OPT_LEN: usize = 11;
/// Per answer record besides the owner name and the RDATA: type, class, TTL,
/// RDLENGTH.
pub(crate) const RR_FIXED_LEN: usize = 10;
/// The longest character-string (RFC 1035 §3.3).
const MAX_CHARACTER_STRING: usize = 255;

/// A TXT value as RDATA: one character-string per 255 octets (RFC 1035
/// §3.3.14). A challenge value is one string of 43; a dns-persist-01 record may
/// be longer than one string, and the CA reads the strings concatenated.
pub(crate) fn character_strings(value: &[u8]) -> std::slice::Chunks<'_, u8> {
    value.chunks(MAX_CHARACTER_STRING)
}

/// The RDATA length of `value` written as [`character_strings`]: each string's
/// length octet and its bytes.
pub(crate) fn txt_rdata_len(value: &[u8]) -> usize {
    value.len() + value.len().div_ceil(MAX_CHARACTER_STRING)
}

#[derive(Clone)]
pub(crate) struct Responder {
    zone: Arc<Zone>,
    replica: Arc<Replica>,
    rrl: Option<Arc<Rrl>>,
    metrics: Metrics,
    wire: Arc<WireZone>,
}

/// What to send: rcode, answer records, whether the SOA goes in authority.
struct Reply<'z> {
    rcode: ResponseCode,
    authoritative: bool,
    answers: Cow<'z, [Record]>,
    answers_len: usize,
    negative_soa: bool,
}

impl<'z> Reply<'z> {
    fn bare(rcode: ResponseCode) -> Self {
        Self { rcode, authoritative: false, answers: Cow::Borrowed(&[]), answers_len: 0, negative_soa: false }
    }

    fn negative(rcode: ResponseCode) -> Self {
        Self { authoritative: true, negative_soa: true, ..Self::bare(rcode) }
    }

    fn records(records: Cow<'z, [Record]>, answers_len: usize) -> Self {
        Self { answers: records, answers_len, ..Self::negative(ResponseCode::NoError) }.positive()
    }

    /// A non-empty answer carries no SOA; an empty one is NODATA with the SOA.
    fn positive(mut self) -> Self {
        self.negative_soa = self.answers.is_empty();
        self
    }
}

impl Responder {
    pub(crate) fn new(zone: Arc<Zone>, replica: Arc<Replica>, rrl: Option<Arc<Rrl>>) -> Self {
        let wire = Arc::new(WireZone::new(&zone));
        Self { zone, replica, rrl, metrics: Metrics::register(), wire }
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn wire(&self) -> &WireZone {
        &self.wire
    }

    pub(crate) fn replica(&self) -> &Replica {
        &self.replica
    }

    pub(crate) fn rrl(&self) -> Option<&Rrl> {
        self.rrl.as_deref()
    }

    /// Answers one well-formed question.
    fn answer<'z>(&'z self, query: &LowerQuery) -> Reply<'z> {
        let qtype = query.query_type();
        if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
            return Reply::bare(ResponseCode::Refused);
        }
        let owner = self.zone.classify(query.name());
        if matches!(owner, Owner::Outside) {
            return Reply::bare(ResponseCode::Refused);
        }
        match qtype {
            // Zone transfers are not offered; meta types are not questions.
            RecordType::AXFR | RecordType::IXFR => return Reply::bare(ResponseCode::Refused),
            RecordType::OPT | RecordType::TSIG | RecordType::SIG => return Reply::bare(ResponseCode::FormErr),
            _ => {}
        }
        match owner {
            Owner::Outside => Reply::bare(ResponseCode::Refused),
            Owner::Nothing => Reply::negative(ResponseCode::NXDomain),
            Owner::EmptyNonTerminal => Reply::negative(ResponseCode::NoError),
            Owner::Node(node) => {
                let set = match qtype {
                    RecordType::ANY => node.any(),
                    t => node.get(t).or_else(|| node.get(RecordType::CNAME)),
                };
                match set {
                    Some(set) => Reply::records(Cow::Borrowed(&set.records), set.wire_len),
                    None => Reply::negative(ResponseCode::NoError),
                }
            }
            Owner::Registration(subdomain) => {
                if !matches!(qtype, RecordType::TXT | RecordType::ANY) {
                    return self.replica.lookup(subdomain, |found| match found {
                        TxtLookup::Unknown => Reply::negative(ResponseCode::NXDomain),
                        TxtLookup::NotLoaded => Reply::bare(ResponseCode::ServFail),
                        TxtLookup::Values(_) => Reply::negative(ResponseCode::NoError),
                    });
                }
                let name = query.original().name();
                let ttl = self.zone.txt_ttl;
                self.replica.lookup(subdomain, |found| match found {
                    TxtLookup::Unknown => Reply::negative(ResponseCode::NXDomain),
                    // Starting: say "ask another server" rather than a cached NXDOMAIN.
                    TxtLookup::NotLoaded => Reply::bare(ResponseCode::ServFail),
                    TxtLookup::Values(values) => {
                        // The owner echoes the question's exact case (0x20).
                        let len = values.map(|v| wire_name_len(name) + RR_FIXED_LEN + txt_rdata_len(v)).sum();
                        let records: Vec<Record> = values
                            .map(|v| {
                                let strings = character_strings(v).collect();
                                Record::from_rdata(name.clone(), ttl, RData::TXT(TXT::from_bytes(strings)))
                            })
                            .collect();
                        Reply::records(Cow::Owned(records), len)
                    }
                })
            }
        }
    }
}

/// Uncompressed wire length of a name: a length byte per label plus the root.
fn wire_name_len(name: &hickory_proto::rr::Name) -> usize {
    name.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

#[async_trait]
impl RequestHandler for Responder {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        let started = Instant::now();
        let qtype = request.queries.queries().first().map(LowerQuery::query_type);
        let udp = request.protocol() == Protocol::Udp;

        let mut rrl_slip = false;
        if udp && let Some(rrl) = &self.rrl {
            match rrl.check(request.src().ip()) {
                Verdict::Answer => {}
                Verdict::Slip => rrl_slip = true,
                Verdict::Drop => {
                    self.metrics.rrl(false);
                    return not_sent(&request.metadata);
                }
            }
        }

        let client_edns = request.edns.as_ref();
        // hickory echoes the question section byte for byte; only a single question
        // written out label by label reads the same in the answer (see `echoable`).
        let echo = request.queries.len() == 1 && echoable(request.queries.as_bytes());
        let reply = if request.metadata.op_code != OpCode::Query {
            Reply::bare(ResponseCode::NotImp)
        } else if client_edns.is_some_and(|e| e.version() != 0) {
            Reply::bare(ResponseCode::BADVERS)
        } else if !echo {
            Reply::bare(ResponseCode::FormErr)
        } else if rrl_slip {
            Reply::bare(ResponseCode::NoError)
        } else {
            request.queries.queries().first().map_or(Reply::bare(ResponseCode::FormErr), |q| self.answer(q))
        };

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = reply.authoritative;
        metadata.response_code = reply.rcode;
        let soa = self.zone.negative_soa();

        // Our OPT: version 0, our payload size, the DO bit echoed (RFC 3225 §3).
        let response_edns = client_edns.map(|e| {
            let mut edns = Edns::new();
            edns.set_max_payload(EDNS_PAYLOAD).set_dnssec_ok(e.flags().dnssec_ok);
            edns
        });

        // Truncation is decided here, on an upper bound of the size (names counted
        // uncompressed), so the encoder never cuts an answer in the middle or
        // drops the OPT record.
        let limit = match (udp, client_edns) {
            (false, _) => usize::from(u16::MAX),
            (true, None) => CLASSIC_UDP_LIMIT,
            (true, Some(e)) => usize::from(e.max_payload().clamp(512, EDNS_PAYLOAD)),
        };
        // Not echoable: the answer carries no question (QDCOUNT 0).
        let no_question;
        let queries = if echo {
            &request.queries
        } else {
            no_question = Queries::read(&mut BinDecoder::new(&[]), 0).ok();
            no_question.as_ref().unwrap_or(&request.queries)
        };
        let size = HEADER_LEN
            + queries.as_bytes().len()
            + reply.answers_len
            + if reply.negative_soa { soa.wire_len } else { 0 }
            + if response_edns.is_some() { OPT_LEN } else { 0 };
        let truncate = rrl_slip || size > limit;
        if truncate {
            metadata.truncation = true;
            if !rrl_slip {
                self.metrics.truncated();
            }
        }
        if rrl_slip {
            self.metrics.rrl(true);
        }

        let answers: &[Record] = if truncate { &[] } else { &reply.answers };
        let authority: &[Record] = if reply.negative_soa && !truncate { &soa.records } else { &[] };
        let mut builder = MessageResponseBuilder::new(queries, None);
        if let Some(edns) = &response_edns {
            builder.edns(edns);
        }
        let response = builder.build(metadata, answers.iter(), authority.iter(), [], []);
        let info = match handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, src = %request.src(), "could not send a DNS answer");
                let mut failed = metadata;
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header { metadata: failed, counts: HeaderCounts::default() })
            }
        };
        self.metrics.answered(qtype, reply.rcode, started.elapsed());
        info
    }
}

/// Whether a one-question section can be echoed as sent: its name is written out
/// label by label, without a compression pointer. The question is the first name
/// in a message, so a pointer in it can only point back into the header, whose
/// bytes differ in the answer: echoed, the name would no longer parse.
fn echoable(question: &[u8]) -> bool {
    let mut at = 0;
    loop {
        match question.get(at) {
            Some(0) => return true,
            Some(&len) if len < 0x40 => at += 1 + usize::from(len),
            _ => return false,
        }
    }
}

/// The `ResponseInfo` for a request deliberately left unanswered.
fn not_sent(request: &Metadata) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = ResponseCode::Refused;
    ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
}
