//! Configuration of the zone and the DNS listeners (`[zone]` and `[dns]` in
//! certdns.toml). Owned here so the responder and its settings change together.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The zone certdns is authoritative for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZoneConfig {
    /// The zone served, e.g. `auth.example.net`. Registrations answer at
    /// `<subdomain>.<domain>`.
    pub domain: String,
    /// Host names of the zone's name servers (the apex NS set). The first is the
    /// SOA MNAME.
    pub nameservers: Vec<String>,
    /// SOA RNAME: a mailbox, as `hostmaster@example.net` or already in DNS form
    /// (`hostmaster.example.net`).
    pub hostmaster: String,
    /// Static records, one zone-file line each, e.g.
    /// `"ns1.auth.example.net. A 192.0.2.53"` or `"auth.example.net. CAA 0 issue \"letsencrypt.org\""`.
    pub records: Vec<String>,
    /// TTL of TXT answers, in seconds (acme-dns uses 1).
    pub txt_ttl: u32,
    /// TTL of SOA, NS and static records without their own TTL.
    pub static_ttl: u32,
    /// SOA MINIMUM: how long resolvers cache negative answers (RFC 2308). Small,
    /// so a registration is answerable right after it is made.
    pub negative_ttl: u32,
    pub soa_refresh: u32,
    pub soa_retry: u32,
    pub soa_expire: u32,
    /// SOA serial. When unset, derived from the zone configuration, so every
    /// responder of a deployment with the same configuration reports the same one.
    pub serial: Option<u32>,
}

impl ZoneConfig {
    /// Every key of `[zone]` with a one-line description, for `serve --help`.
    /// A test in the binary checks that no key is missing.
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        ("domain", "zone served; registrations answer at <subdomain>.<domain>"),
        ("nameservers", "apex NS host names; the first is the SOA MNAME"),
        ("hostmaster", "SOA RNAME, as hostmaster@example.net or hostmaster.example.net"),
        ("records", "static records, one zone-file line each (\"ns1.auth.example.net. A 192.0.2.53\")"),
        ("txt_ttl", "TTL of TXT answers, seconds"),
        ("static_ttl", "TTL of SOA, NS and static records, seconds"),
        ("negative_ttl", "SOA MINIMUM: negative-caching TTL, seconds"),
        ("soa_refresh", "SOA REFRESH, seconds"),
        ("soa_retry", "SOA RETRY, seconds"),
        ("soa_expire", "SOA EXPIRE, seconds"),
        ("serial", "SOA serial; unset = derived from the zone configuration (same on every responder)"),
    ];
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            domain: "auth.certdns.localhost".into(),
            nameservers: vec!["ns1.auth.certdns.localhost".into()],
            hostmaster: "hostmaster@certdns.localhost".into(),
            records: vec!["ns1.auth.certdns.localhost. A 127.0.0.1".into()],
            txt_ttl: 1,
            static_ttl: 3600,
            negative_ttl: 60,
            soa_refresh: 7200,
            soa_retry: 900,
            soa_expire: 1_209_600,
            serial: None,
        }
    }
}

/// The DNS listeners of the `dns` role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Addresses to answer on, each over both UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// After how many seconds without the TXT change stream a responder reports
    /// itself degraded (it keeps answering from its replica meanwhile).
    pub degraded_after_secs: u64,
}

impl DnsConfig {
    /// Every key of `[dns]` with a one-line description, for `serve --help`.
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        ("listen", "addresses to answer DNS on, UDP and TCP each"),
        ("degraded_after_secs", "seconds without the TXT change stream before the responder reports degraded"),
    ];
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self { listen: vec![SocketAddr::from(([127, 0, 0, 1], 5353))], degraded_after_secs: 30 }
    }
}
