//! The fast path (UDP, and TCP frame by frame): the questions that make up nearly all traffic (one question,
//! class IN, no OPT or a plain one) parsed and answered straight from and into
//! bytes, without hickory's message parser and encoder. Their allocations and
//! name handling were most of the cost of an answer (callgrind, before: malloc
//! and free ~23% of a TXT answer's instructions, encoding ~15%).
//!
//! Anything else (another opcode or class, EDNS options or versions, a pointer or
//! `*` in the question, trailing bytes, static names, meta query types) is
//! declined and takes the hickory path as before. What the fast path sends is
//! byte for byte what the hickory path sends for the same packet, name
//! compression included (`tests/it/fast_path.rs` compares the two on thousands of
//! packets): hickory stores the echoed question for compression together with its
//! type and class, so nothing ever points into it; a second TXT answer points at
//! the first one's owner; and the SOA compresses only against itself, so it is
//! encoded once here and only its pointers move with the question's length.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

use certdns_core::Subdomain;
use certdns_replication::TxtLookup;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

use crate::listen::Protocol;
use crate::responder::{
    CLASSIC_UDP_LIMIT, EDNS_PAYLOAD, HEADER_LEN, OPT_LEN, RR_FIXED_LEN, Responder, character_strings, txt_rdata_len,
};
use crate::rrl::Verdict;
use crate::zone::Zone;

const MAX_NAME: usize = 255;
const NO_VALUES: Option<std::iter::Empty<&[u8]>> = None;
const CLASS_IN: u16 = 1;
const TYPE_TXT: u16 = 16;
const TYPE_OPT: u16 = 41;
const DNSSEC_OK: u16 = 0x8000;
/// Types the hickory path answers with REFUSED or FORMERR, and ANY (RFC 8482).
/// (AXFR, IXFR, OPT, TSIG, SIG, ANY.)
const DECLINED_TYPES: [u16; 6] = [252, 251, 41, 250, 24, 255];

/// The zone's names in wire form, for answering from bytes.
#[derive(Debug)]
pub(crate) struct WireZone {
    /// The apex, lower-cased, in wire form.
    apex: Vec<u8>,
    /// Static owner names and empty non-terminals (lower-cased wire form): the
    /// fast path leaves those to the hickory path.
    statics: HashSet<Vec<u8>>,
    /// Wire lengths present in `statics`: most names skip the hash entirely.
    static_lens: [bool; MAX_NAME + 1],
    /// The negative SOA record as encoded right after the question, its
    /// compression pointers relative to its own start.
    soa: Vec<u8>,
    /// Where in `soa` those pointers are.
    soa_pointers: Vec<usize>,
    txt_ttl: u32,
}

impl WireZone {
    pub fn new(zone: &Zone) -> Self {
        let apex = lower_wire(&Name::from(zone.apex().clone()));
        let mut statics = HashSet::new();
        let mut static_lens = [false; MAX_NAME + 1];
        for name in zone.static_names() {
            let wire = lower_wire(&Name::from(name.clone()));
            if let Some(seen) = static_lens.get_mut(wire.len()) {
                *seen = true;
            }
            statics.insert(wire);
        }
        let mut soa = Compressor::default();
        if let Some(record) = zone.negative_soa().records.first()
            && let RData::SOA(data) = &record.data
        {
            soa.name(&record.name);
            soa.out.extend(u16::from(RecordType::SOA).to_be_bytes());
            soa.out.extend(CLASS_IN.to_be_bytes());
            soa.out.extend(record.ttl.to_be_bytes());
            let rdlength_at = soa.out.len();
            soa.out.extend([0, 0]);
            soa.name(&data.mname);
            soa.name(&data.rname);
            for v in [data.serial, data.refresh as u32, data.retry as u32, data.expire as u32, data.minimum] {
                soa.out.extend(v.to_be_bytes());
            }
            let rdlength = u16::try_from(soa.out.len() - rdlength_at - 2).unwrap_or(0);
            soa.out.splice(rdlength_at..rdlength_at + 2, rdlength.to_be_bytes());
        }
        Self { apex, statics, static_lens, soa: soa.out, soa_pointers: soa.pointers, txt_ttl: zone.txt_ttl }
    }

    fn is_static(&self, lower: &[u8]) -> bool {
        self.static_lens.get(lower.len()).copied().unwrap_or(false) && self.statics.contains(lower)
    }
}

fn lower_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// Name compression the way hickory's encoder does it: each label's uncompressed
/// suffix is remembered where it was written, and a later name whose suffix
/// matches one exactly (bytes, so case too) points there.
#[derive(Default)]
struct Compressor {
    out: Vec<u8>,
    stored: Vec<(usize, Vec<u8>)>,
    pointers: Vec<usize>,
}

impl Compressor {
    fn name(&mut self, name: &Name) {
        let labels: Vec<&[u8]> = name.iter().collect();
        for i in 0..labels.len() {
            let suffix = labels.get(i..).map_or_else(Vec::new, |rest| {
                let mut s: Vec<u8> = rest.iter().flat_map(|l| [&[l.len() as u8][..], l].concat()).collect();
                s.push(0);
                s
            });
            if let Some((at, _)) = self.stored.iter().find(|(_, s)| *s == suffix) {
                self.pointers.push(self.out.len());
                self.out.extend((0xC000 | *at as u16).to_be_bytes());
                return;
            }
            self.stored.push((self.out.len(), suffix));
            if let Some(label) = labels.get(i) {
                self.out.push(label.len() as u8);
                self.out.extend_from_slice(label);
            }
        }
        self.out.push(0);
    }
}

/// A question the fast path takes.
struct Question<'p> {
    header: &'p [u8],
    /// The question section as sent: name, type, class.
    section: &'p [u8],
    lower: [u8; MAX_NAME],
    name_len: usize,
    qtype: u16,
    /// The client's OPT: its payload size and DO bit.
    edns: Option<(u16, bool)>,
}

impl Question<'_> {
    fn lower_name(&self) -> &[u8] {
        self.lower.get(..self.name_len).unwrap_or_default()
    }
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

/// The packet, if it is one the fast path answers exactly as the hickory path.
fn parse(p: &[u8]) -> Option<Question<'_>> {
    let header = p.get(..HEADER_LEN)?;
    // A query (QR 0), opcode QUERY, no Z bit or RCODE set.
    if header.get(2)? & 0xf8 != 0 || header.get(3)? & 0x4f != 0 {
        return None;
    }
    if be16(p, 4)? != 1 || be16(p, 6)? != 0 || be16(p, 8)? != 0 || be16(p, 10)? > 1 {
        return None;
    }
    // Walk the labels to find the name's end; lower-case it in one go after
    // (length bytes are below 64, never touched by ASCII lower-casing).
    let mut at = HEADER_LEN;
    loop {
        let len = usize::from(*p.get(at)?);
        if len == 0 {
            break;
        }
        // A pointer or an extended label type; a wildcard label (hickory does
        // not count it as a label).
        if len > 63 || (len == 1 && p.get(at + 1) == Some(&b'*')) {
            return None;
        }
        at += 1 + len;
    }
    let name_len = at + 1 - HEADER_LEN;
    let mut lower = [0u8; MAX_NAME];
    let dst = lower.get_mut(..name_len)?;
    dst.copy_from_slice(p.get(HEADER_LEN..=at)?);
    dst.make_ascii_lowercase();
    let qtype = be16(p, at + 1)?;
    if be16(p, at + 3)? != CLASS_IN || DECLINED_TYPES.contains(&qtype) {
        return None;
    }
    let section = p.get(HEADER_LEN..at + 5)?;
    let mut end = at + 5;
    let mut edns = None;
    if be16(p, 10)? == 1 {
        let opt = p.get(end..end + OPT_LEN)?;
        // Root owner, type OPT, extended RCODE 0, version 0, no flag but DO, no options.
        let flags = be16(opt, 7)?;
        if opt[0] != 0 || be16(opt, 1)? != TYPE_OPT || opt[5] != 0 || opt[6] != 0 || flags & !DNSSEC_OK != 0 {
            return None;
        }
        if be16(opt, 9)? != 0 {
            return None;
        }
        edns = Some((be16(opt, 3)?, flags & DNSSEC_OK != 0));
        end += OPT_LEN;
    }
    if end != p.len() {
        return None;
    }
    Some(Question { header, section, lower, name_len, qtype, edns })
}

/// What the zone says about a name under it.
enum Owner {
    Registration(Subdomain),
    Nothing,
}

/// The shape of an answer before it is written.
struct Shape {
    rcode: ResponseCode,
    authoritative: bool,
    soa: bool,
    /// An RRL slip: an empty TC answer whatever the size.
    slip: bool,
}

impl Responder {
    /// Answers `packet` into `out` if it is a question the fast path takes;
    /// `false` means "declined, use the hickory path". An empty `out` after
    /// `true` means nothing is to be sent (rate-limited). Over TCP, as on the
    /// hickory path, there is no rate limiting and the size limit is 65,535.
    pub(crate) fn answer_fast(&self, packet: &[u8], src: SocketAddr, protocol: Protocol, out: &mut Vec<u8>) -> bool {
        out.clear();
        let started = Instant::now();
        let Some(q) = parse(packet) else { return false };
        let limit = match (protocol, q.edns) {
            (Protocol::Tcp, _) => usize::from(u16::MAX),
            (Protocol::Udp, None) => CLASSIC_UDP_LIMIT,
            (Protocol::Udp, Some((payload, _))) => usize::from(payload.clamp(512, EDNS_PAYLOAD)),
        };
        let wire = self.wire();
        let lower = q.lower_name();
        // Under the apex: its labels end the name, on a label boundary.
        let cut = lower.len().checked_sub(wire.apex.len()).filter(|&c| lower.get(c..) == Some(&wire.apex[..]));
        let mut labels_above = 0;
        let inside = cut.is_some_and(|cut| {
            let mut at = 0;
            while at < cut {
                at += 1 + usize::from(lower.get(at).copied().unwrap_or(0));
                labels_above += 1;
            }
            at == cut
        });
        let owner = if !inside {
            None
        } else if wire.is_static(lower) {
            return false;
        } else {
            let first = lower.get(1..).and_then(|l| l.get(..usize::from(*lower.first()?)));
            if first == Some(crate::zone::ACME_CHALLENGE_LABEL) {
                // certdns's own certificate challenges (rare): the hickory path.
                return false;
            }
            match first.and_then(Subdomain::from_label) {
                Some(s) if labels_above == 1 => Some(Owner::Registration(s)),
                _ => Some(Owner::Nothing),
            }
        };

        let mut slip = false;
        if protocol == Protocol::Udp
            && let Some(rrl) = self.rrl()
        {
            match rrl.check(src.ip()) {
                Verdict::Answer => {}
                Verdict::Slip => slip = true,
                Verdict::Drop => {
                    self.metrics().rrl(false);
                    return true;
                }
            }
        }
        let bare = |rcode| Shape { rcode, authoritative: false, soa: false, slip: false };
        let negative = |rcode| Shape { rcode, authoritative: true, soa: true, slip: false };
        let rcode = match (slip, owner) {
            (true, _) => self.write(&q, limit, out, Shape { slip: true, ..bare(ResponseCode::NoError) }, NO_VALUES),
            (false, None) => self.write(&q, limit, out, bare(ResponseCode::Refused), NO_VALUES),
            (false, Some(Owner::Nothing)) => self.write(&q, limit, out, negative(ResponseCode::NXDomain), NO_VALUES),
            (false, Some(Owner::Registration(s))) => self.replica().lookup(s, |found| match found {
                TxtLookup::Unknown => self.write(&q, limit, out, negative(ResponseCode::NXDomain), NO_VALUES),
                // Starting: "ask another server" rather than a cached NXDOMAIN.
                TxtLookup::NotLoaded => self.write(&q, limit, out, bare(ResponseCode::ServFail), NO_VALUES),
                TxtLookup::Values(values) if q.qtype == TYPE_TXT && values.count() > 0 => {
                    let shape = Shape { soa: false, ..negative(ResponseCode::NoError) };
                    self.write(&q, limit, out, shape, Some(values))
                }
                TxtLookup::Values(_) => self.write(&q, limit, out, negative(ResponseCode::NoError), NO_VALUES),
            }),
        };
        if slip {
            self.metrics().rrl(true);
        }
        self.metrics().answered(Some(RecordType::from(q.qtype)), rcode, started.elapsed());
        true
    }

    /// Writes the answer, truncated (TC, no records) if it would not fit, the
    /// way the hickory path decides it. Returns its RCODE.
    fn write<'v, V: Iterator<Item = &'v [u8]> + Clone>(
        &self,
        q: &Question<'_>,
        limit: usize,
        out: &mut Vec<u8>,
        shape: Shape,
        values: Option<V>,
    ) -> ResponseCode {
        let wire = self.wire();
        let answers = values.clone().map_or(0, Iterator::count);
        let rdata: usize = values.clone().map_or(0, |v| v.map(txt_rdata_len).sum());
        let size = HEADER_LEN
            + q.section.len()
            + answers * (q.name_len + RR_FIXED_LEN)
            + rdata
            + if shape.soa { wire.soa.len() } else { 0 }
            + if q.edns.is_some() { OPT_LEN } else { 0 };
        let truncated = shape.slip || size > limit;
        if truncated && !shape.slip {
            self.metrics().truncated();
        }
        let (answers, soa) = if truncated { (0, false) } else { (answers, shape.soa) };

        let h = q.header;
        let aa = if shape.authoritative { 0x04 } else { 0 };
        let tc = if truncated { 0x02 } else { 0 };
        out.extend_from_slice(&h[..2]);
        // QR, AA and TC ours; RD and CD copied from the question.
        out.push(0x80 | aa | tc | (h[2] & 0x01));
        out.push((h[3] & 0x10) | (u16::from(shape.rcode) as u8 & 0x0f));
        for count in [1, answers, usize::from(soa), usize::from(q.edns.is_some())] {
            out.extend((count as u16).to_be_bytes());
        }
        out.extend_from_slice(q.section);
        if let Some(values) = values.filter(|_| answers > 0) {
            let owner_at = out.len();
            for (i, value) in values.enumerate() {
                match q.section.get(..q.name_len) {
                    // The first owner is the name as asked (0x20 case echo) ...
                    Some(name) if i == 0 => out.extend_from_slice(name),
                    // ... the next ones point at it.
                    _ => out.extend((0xc000 | owner_at as u16).to_be_bytes()),
                }
                out.extend(TYPE_TXT.to_be_bytes());
                out.extend(CLASS_IN.to_be_bytes());
                out.extend(wire.txt_ttl.to_be_bytes());
                // At most `PersistRecord::MAX_LEN` plus its length octets: fits the u16.
                out.extend((txt_rdata_len(value) as u16).to_be_bytes());
                for string in character_strings(value) {
                    out.push(string.len() as u8);
                    out.extend_from_slice(string);
                }
            }
        }
        if soa {
            let base = out.len();
            out.extend_from_slice(&wire.soa);
            for &at in &wire.soa_pointers {
                if let Some(pointer) = out.get_mut(base + at..base + at + 2) {
                    let moved = (u16::from_be_bytes([pointer[0], pointer[1]]) + base as u16).to_be_bytes();
                    pointer.copy_from_slice(&moved);
                }
            }
        }
        if let Some((_, dnssec_ok)) = q.edns {
            // Our OPT: version 0, our payload size, the DO bit echoed.
            out.extend([0, 0, TYPE_OPT as u8]);
            out.extend(EDNS_PAYLOAD.to_be_bytes());
            out.extend([0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
        }
        shape.rcode
    }
}
