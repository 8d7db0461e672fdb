//! The compiled zone: apex SOA and NS, the static records, and how a query name
//! maps to what exists. Built once from [`ZoneConfig`] at start; immutable after.

use std::collections::{HashMap, HashSet};

use certdns_core::Subdomain;
use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use hickory_proto::serialize::txt::Parser;

use crate::config::ZoneConfig;

/// The first label of a DNS-01 challenge name (RFC 8555 §8.4), lower case.
pub(crate) const ACME_CHALLENGE_LABEL: &[u8] = b"_acme-challenge";

/// Records of one type at one owner name, with their uncompressed wire size
/// (an upper bound used to decide truncation without encoding twice).
#[derive(Debug)]
pub(crate) struct RrSet {
    pub rtype: RecordType,
    pub records: Vec<Record>,
    pub wire_len: usize,
}

/// Everything configured at one owner name.
#[derive(Debug, Default)]
pub(crate) struct Node {
    rrsets: Vec<RrSet>,
}

impl Node {
    pub fn get(&self, rtype: RecordType) -> Option<&RrSet> {
        self.rrsets.iter().find(|s| s.rtype == rtype)
    }

    /// RFC 8482: answer ANY with one RRset rather than everything. The SOA at the
    /// apex, otherwise the first configured set.
    pub fn any(&self) -> Option<&RrSet> {
        self.get(RecordType::SOA).or_else(|| self.rrsets.first())
    }

    fn add(&mut self, record: Record) -> Result<(), String> {
        let rtype = record.record_type();
        let has_cname = self.get(RecordType::CNAME).is_some();
        if (rtype == RecordType::CNAME && !self.rrsets.is_empty() && !has_cname)
            || (rtype != RecordType::CNAME && has_cname)
        {
            return Err(format!("{} has a CNAME and other records; a CNAME must stand alone", record.name));
        }
        let len = wire_len(&record)?;
        match self.rrsets.iter_mut().find(|s| s.rtype == rtype) {
            Some(set) => {
                if !set.records.iter().any(|r| r.data == record.data) {
                    set.records.push(record);
                    set.wire_len += len;
                }
            }
            None => self.rrsets.push(RrSet { rtype, records: vec![record], wire_len: len }),
        }
        Ok(())
    }
}

/// What a (lower-cased) query name is, as far as this zone is concerned.
#[derive(Debug)]
pub(crate) enum Owner<'z> {
    /// Not at or under the apex: REFUSED.
    Outside,
    /// The apex or a static name.
    Node(&'z Node),
    /// An empty non-terminal: a name with nothing of its own but static names
    /// below it. It exists (NODATA, never NXDOMAIN; RFC 8020).
    EmptyNonTerminal,
    /// `<uuid>.<zone>`: look it up in the replica.
    Registration(Subdomain),
    /// Under the zone but nothing there: NXDOMAIN.
    Nothing,
}

#[derive(Debug)]
pub(crate) struct Zone {
    apex: LowerName,
    apex_labels: u8,
    soa: RrSet,
    nodes: HashMap<LowerName, Node>,
    empty_non_terminals: HashSet<LowerName>,
    pub txt_ttl: u32,
    pub serial: u32,
}

impl Zone {
    /// Validates and compiles the configuration. Errors start with the key name.
    pub fn compile(cfg: &ZoneConfig) -> Result<Self, String> {
        let apex = parse_name(&cfg.domain).map_err(|e| format!("zone.domain: {:?} {e}", cfg.domain))?;
        if apex.is_root() {
            return Err("zone.domain: the root zone cannot be served".into());
        }
        for (key, v) in [
            ("zone.txt_ttl", cfg.txt_ttl),
            ("zone.static_ttl", cfg.static_ttl),
            ("zone.negative_ttl", cfg.negative_ttl),
            ("zone.soa_refresh", cfg.soa_refresh),
            ("zone.soa_retry", cfg.soa_retry),
            ("zone.soa_expire", cfg.soa_expire),
        ] {
            // RFC 2181 §8: TTLs (and the SOA timers) are 31-bit.
            if v > i32::MAX as u32 {
                return Err(format!("{key}: {v} is larger than {}", i32::MAX));
            }
        }
        // Unset: one name server inside the zone, so changing only `domain` works.
        let derived = [format!("ns1.{}", cfg.domain.trim_end_matches('.'))];
        let nameservers: &[String] = if cfg.nameservers.is_empty() { &derived } else { &cfg.nameservers };
        let mut ns_names = Vec::with_capacity(nameservers.len());
        for (i, ns) in nameservers.iter().enumerate() {
            let name = parse_name(ns).map_err(|e| format!("zone.nameservers[{i}]: {ns:?} {e}"))?;
            if name.is_root() {
                return Err(format!("zone.nameservers[{i}]: {ns:?} is not a host name"));
            }
            ns_names.push(name);
        }
        let rname = parse_mailbox(&cfg.hostmaster).map_err(|e| format!("zone.hostmaster: {:?} {e}", cfg.hostmaster))?;
        let serial = cfg.serial.unwrap_or_else(|| derived_serial(cfg));

        let soa_record = Record::from_rdata(
            apex.clone(),
            cfg.static_ttl,
            RData::SOA(SOA::new(
                ns_names[0].clone(),
                rname,
                serial,
                // Checked above to fit in 31 bits.
                cfg.soa_refresh as i32,
                cfg.soa_retry as i32,
                cfg.soa_expire as i32,
                cfg.negative_ttl,
            )),
        );
        // RFC 2308 §3: the negative-caching TTL is min(SOA TTL, MINIMUM); the SOA
        // sent in authority carries that, so resolvers do not keep "no" for an hour.
        let mut negative_soa = soa_record.clone();
        negative_soa.ttl = cfg.static_ttl.min(cfg.negative_ttl);
        let soa_len = wire_len(&negative_soa).map_err(|e| format!("zone: cannot build the SOA: {e}"))?;

        let mut nodes: HashMap<LowerName, Node> = HashMap::new();
        let apex_node = nodes.entry(LowerName::new(&apex)).or_default();
        apex_node.add(soa_record).map_err(|e| format!("zone: {e}"))?;
        for (i, ns) in ns_names.into_iter().enumerate() {
            let record = Record::from_rdata(apex.clone(), cfg.static_ttl, RData::NS(NS(ns)));
            apex_node.add(record).map_err(|e| format!("zone.nameservers[{i}]: {e}"))?;
        }

        for (i, line) in cfg.records.iter().enumerate() {
            let key = format!("zone.records[{i}]");
            for record in parse_record_line(line, &apex, cfg.static_ttl).map_err(|e| format!("{key}: {e}"))? {
                if !apex.zone_of(&record.name) {
                    return Err(format!("{key}: {line:?}: owner {} is outside the zone {apex}", record.name));
                }
                if record.record_type() == RecordType::SOA {
                    return Err(format!("{key}: {line:?}: the SOA is built from the [zone] keys, not a record"));
                }
                let owner = LowerName::new(&record.name.to_lowercase());
                let mut record = record;
                record.name = owner.clone().into();
                nodes.entry(owner).or_default().add(record).map_err(|e| format!("{key}: {line:?}: {e}"))?;
            }
        }

        // Every name between a static name and the apex exists too (RFC 8020).
        let mut empty_non_terminals = HashSet::new();
        for owner in nodes.keys() {
            let mut name = owner.base_name();
            while apex.num_labels() < name.num_labels() {
                if !nodes.contains_key(&name) {
                    empty_non_terminals.insert(name.clone());
                }
                name = name.base_name();
            }
        }

        Ok(Self {
            apex_labels: apex.num_labels(),
            apex: LowerName::new(&apex),
            soa: RrSet { rtype: RecordType::SOA, records: vec![negative_soa], wire_len: soa_len },
            nodes,
            empty_non_terminals,
            txt_ttl: cfg.txt_ttl,
            serial,
        })
    }

    pub fn apex(&self) -> &LowerName {
        &self.apex
    }

    /// The SOA for the authority section of negative answers (TTL = negative TTL).
    pub fn negative_soa(&self) -> &RrSet {
        &self.soa
    }

    /// Every name with static records and every empty non-terminal.
    pub fn static_names(&self) -> impl Iterator<Item = &LowerName> {
        self.nodes.keys().chain(&self.empty_non_terminals)
    }

    pub fn classify(&self, name: &LowerName) -> Owner<'_> {
        if !self.apex.zone_of(name) {
            return Owner::Outside;
        }
        if let Some(node) = self.nodes.get(name) {
            return Owner::Node(node);
        }
        if name.num_labels() == self.apex_labels + 1
            && let Some(subdomain) = name.iter().next().and_then(Subdomain::from_label)
        {
            return Owner::Registration(subdomain);
        }
        if let Some(subdomain) = self.acme_challenge(name) {
            return Owner::Registration(subdomain);
        }
        if self.empty_non_terminals.contains(name) {
            return Owner::EmptyNonTerminal;
        }
        Owner::Nothing
    }

    /// `_acme-challenge.<name>` with `<name>` inside the zone: the challenge of
    /// certdns's own certificate (`tls.acme`), answered from the replica under a
    /// subdomain derived from `<name>`, so no responder needs to be told the names.
    fn acme_challenge(&self, name: &LowerName) -> Option<Subdomain> {
        if name.num_labels() < self.apex_labels + 1 || name.iter().next()? != ACME_CHALLENGE_LABEL {
            return None;
        }
        let base = name.base_name().to_string();
        Some(Subdomain::for_acme_challenge(base.trim_end_matches('.')))
    }
}

/// Parses a host name as written in configuration: absolute, trailing dot optional,
/// letters, digits, `-` and `_` only.
fn parse_name(s: &str) -> Result<Name, String> {
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    if trimmed.is_empty() {
        return Err("is empty".into());
    }
    if trimmed.len() > 253 {
        return Err("is longer than 253 characters".into());
    }
    for label in trimmed.split('.') {
        let ok_chars = label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if label.is_empty() || label.len() > 63 || !ok_chars {
            return Err("is not a valid domain name".into());
        }
    }
    let mut name = Name::from_ascii(trimmed).map_err(|e| format!("is not a valid domain name ({e})"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// `hostmaster@example.net` or `hostmaster.example.net` as a SOA RNAME. A dotted
/// local part stays one label (`first.last@x` → `first\.last.x`, RFC 1035 §8).
fn parse_mailbox(s: &str) -> Result<Name, String> {
    let Some((local, domain)) = s.split_once('@') else {
        return parse_name(s);
    };
    let ok_local = !local.is_empty()
        && local.len() <= 63
        && local.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b));
    if !ok_local {
        return Err("has an invalid mailbox part before '@'".into());
    }
    let domain = parse_name(domain)?;
    let local = Name::from_labels([local.as_bytes()]).map_err(|e| format!("is not a valid mailbox ({e})"))?;
    local.append_domain(&domain).map_err(|e| format!("is not a valid mailbox ({e})"))
}

/// One zone-file line (relative names are relative to the zone apex; default TTL
/// `static_ttl`). `$` directives are refused: a line is one record.
fn parse_record_line(line: &str, apex: &Name, static_ttl: u32) -> Result<Vec<Record>, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Err("empty record".into());
    }
    if trimmed.starts_with('$') || trimmed.contains(['\n', '\r']) {
        return Err(format!("{line:?}: expected one record (owner [ttl] [class] type data), not a directive"));
    }
    let text = format!("$TTL {static_ttl}\n{trimmed}\n");
    let (_, sets) = Parser::new(text, None, Some(apex.clone()))
        .parse()
        .map_err(|e| format!("{line:?} is not a valid zone-file record: {e}"))?;
    let records: Vec<Record> = sets.values().flat_map(|set| set.records_without_rrsigs().cloned()).collect();
    if records.is_empty() {
        return Err(format!("{line:?} holds no record"));
    }
    Ok(records)
}

/// Uncompressed encoded size of a record.
fn wire_len(record: &Record) -> Result<usize, String> {
    let mut buf = Vec::with_capacity(128);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    record.emit(&mut encoder).map_err(|e| format!("{} cannot be encoded: {e}", record.name))?;
    Ok(buf.len())
}

/// A serial every responder with the same zone configuration agrees on: FNV-1a of
/// the fields that make up the zone's content, so it changes when they do.
fn derived_serial(cfg: &ZoneConfig) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes.iter().chain([&0xff]) {
            h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
        }
    };
    feed(cfg.domain.to_ascii_lowercase().as_bytes());
    for ns in &cfg.nameservers {
        feed(ns.to_ascii_lowercase().as_bytes());
    }
    feed(cfg.hostmaster.as_bytes());
    for r in &cfg.records {
        feed(r.as_bytes());
    }
    for v in [cfg.txt_ttl, cfg.static_ttl, cfg.negative_ttl, cfg.soa_refresh, cfg.soa_retry, cfg.soa_expire] {
        feed(&v.to_be_bytes());
    }
    // Avoid 0, which some tools treat as "unset".
    h.max(1)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn cfg() -> ZoneConfig {
        ZoneConfig {
            domain: "auth.example.org".into(),
            nameservers: vec!["ns1.auth.example.org".into(), "ns2.example.net.".into()],
            hostmaster: "host.master@example.org".into(),
            records: vec![
                "ns1.auth.example.org. A 198.51.100.1".into(),
                "auth.example.org. CAA 0 issue \"letsencrypt.org\"".into(),
                "www 300 CNAME example.org.".into(),
                "a.b.c IN TXT \"deep\"".into(),
            ],
            ..ZoneConfig::default()
        }
    }

    fn lower(s: &str) -> LowerName {
        LowerName::from_str(s).unwrap()
    }

    #[test]
    fn classifies_names() {
        let z = Zone::compile(&cfg()).unwrap();
        assert!(matches!(z.classify(&lower("auth.example.org.")), Owner::Node(n) if n.get(RecordType::SOA).is_some()));
        assert!(matches!(z.classify(&lower("AUTH.Example.ORG.")), Owner::Node(_)));
        assert!(
            matches!(z.classify(&lower("www.auth.example.org.")), Owner::Node(n) if n.get(RecordType::CNAME).is_some())
        );
        assert!(matches!(z.classify(&lower("b.c.auth.example.org.")), Owner::EmptyNonTerminal));
        assert!(matches!(z.classify(&lower("c.auth.example.org.")), Owner::EmptyNonTerminal));
        assert!(matches!(z.classify(&lower("x.auth.example.org.")), Owner::Nothing));
        assert!(matches!(z.classify(&lower("example.org.")), Owner::Outside));
        assert!(matches!(z.classify(&lower("auth.example.org.evil.")), Owner::Outside));
        let s = Subdomain::generate();
        assert!(matches!(z.classify(&lower(&format!("{s}.auth.example.org."))), Owner::Registration(x) if x == s));
        assert!(matches!(z.classify(&lower(&format!("x.{s}.auth.example.org."))), Owner::Nothing));
        // certdns's own certificate: the challenge of a name in the zone (or of
        // the apex) answers under the subdomain derived from that name.
        for (asked, name) in [
            ("_acme-challenge.api.auth.example.org.", "api.auth.example.org"),
            ("_ACME-Challenge.a.b.Auth.example.org.", "a.b.auth.example.org"),
            ("_acme-challenge.auth.example.org.", "auth.example.org"),
        ] {
            let derived = Subdomain::for_acme_challenge(name);
            assert!(matches!(z.classify(&lower(asked)), Owner::Registration(x) if x == derived), "{asked}");
        }
        assert!(matches!(z.classify(&lower("_acme-challenge.example.org.")), Owner::Outside));
        assert!(matches!(z.classify(&lower("x._acme-challenge.auth.example.org.")), Owner::Nothing));
    }

    #[test]
    fn soa_uses_configured_names_and_small_negative_ttl() {
        let z = Zone::compile(&cfg()).unwrap();
        let soa = &z.negative_soa().records[0];
        assert_eq!(soa.ttl, 60);
        let RData::SOA(soa) = &soa.data else { panic!("not a SOA") };
        assert_eq!(soa.mname.to_string(), "ns1.auth.example.org.");
        assert_eq!(soa.rname.to_string(), "host\\.master.example.org.");
        assert_eq!(soa.minimum, 60);
        assert_eq!(soa.serial, Zone::compile(&cfg()).unwrap().serial, "serial is stable");
        let mut other = cfg();
        other.records.pop();
        assert_ne!(Zone::compile(&other).unwrap().serial, z.serial, "serial follows the content");
        other.serial = Some(7);
        assert_eq!(Zone::compile(&other).unwrap().serial, 7);
    }

    #[test]
    fn errors_name_the_key() {
        let bad = |f: &dyn Fn(&mut ZoneConfig)| {
            let mut c = cfg();
            f(&mut c);
            Zone::compile(&c).unwrap_err()
        };
        assert_eq!(bad(&|c| c.domain = "a..b".into()), "zone.domain: \"a..b\" is not a valid domain name");
        assert!(bad(&|c| c.domain = String::new()).starts_with("zone.domain:"));
        let mut unset = cfg();
        unset.nameservers.clear();
        assert!(Zone::compile(&unset).is_ok(), "no name servers: ns1.<domain> is derived");
        assert!(bad(&|c| c.nameservers[1] = "bad name".into()).starts_with("zone.nameservers[1]:"));
        assert!(bad(&|c| c.hostmaster = "@x".into()).starts_with("zone.hostmaster:"));
        let e = bad(&|c| c.records.push("foo.auth.example.org. A not-an-ip".into()));
        assert!(e.starts_with("zone.records[4]: \"foo.auth.example.org. A not-an-ip\""), "{e}");
        let e = bad(&|c| c.records.push("other.example. A 192.0.2.1".into()));
        assert!(e.starts_with("zone.records[4]:") && e.contains("outside the zone"), "{e}");
        let e = bad(&|c| c.records.push("www A 192.0.2.1".into()));
        assert!(e.contains("CNAME"), "{e}");
        assert!(bad(&|c| c.records.push("$INCLUDE /etc/passwd".into())).starts_with("zone.records[4]:"));
        assert!(bad(&|c| c.records.push("@ SOA a b 1 2 3 4 5".into())).starts_with("zone.records[4]:"));
        assert!(bad(&|c| c.txt_ttl = u32::MAX).starts_with("zone.txt_ttl:"));
    }

    #[test]
    fn default_config_compiles() {
        ZoneConfig::default().validate().unwrap();
    }
}
