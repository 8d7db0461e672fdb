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
    /// SOA MNAME. Empty means `ns1.<domain>`.
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
        ("nameservers", "apex NS host names; the first is the SOA MNAME (empty: ns1.<domain>)"),
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

    /// Checks what serde cannot (names, records, TTL ranges) by compiling the zone;
    /// the error names the offending key first, e.g. `zone.domain: ...`.
    pub fn validate(&self) -> Result<(), String> {
        crate::zone::Zone::compile(self).map(|_| ())
    }
}

impl Default for ZoneConfig {
    fn default() -> Self {
        Self {
            domain: "auth.certdns.localhost".into(),
            // Derived from `domain` (ns1.<domain>) so that changing the domain alone works.
            nameservers: Vec::new(),
            hostmaster: "hostmaster@certdns.localhost".into(),
            records: Vec::new(),
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

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Far above any real need, below what a process can have open (the semaphore
/// behind it has a ceiling too).
const MAX_TCP_CONNECTIONS: usize = 1_000_000;

/// The DNS listeners of the `dns` role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Addresses to answer on, each over both UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// After how many seconds without the TXT change stream a responder reports
    /// itself degraded (it keeps answering from its replica meanwhile).
    pub degraded_after_secs: u64,
    /// UDP sockets per listen address (SO_REUSEPORT). 0 = one per available core.
    pub udp_sockets: usize,
    /// Threads answering UDP per listen address, spread evenly over its sockets
    /// (at least one per socket). 0 = one per available core.
    pub udp_threads: usize,
    /// Seconds a TCP connection may stay idle before it is closed (no whole
    /// message in that time, or its answers not taken).
    pub tcp_idle_secs: u64,
    /// TCP connections open at once; one more is closed as soon as it is accepted.
    pub tcp_max_connections: usize,
    /// Response-rate limiting of UDP answers per client prefix.
    pub rrl: RrlConfig,
}

impl DnsConfig {
    /// Every key of `[dns]` with a one-line description, for `serve --help`.
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        ("listen", "addresses to answer DNS on, UDP and TCP each"),
        ("degraded_after_secs", "seconds without the TXT change stream before the responder reports degraded"),
        ("udp_sockets", "UDP sockets per listen address (SO_REUSEPORT); 0 = one per core"),
        ("udp_threads", "threads answering UDP per listen address, shared by its sockets; 0 = one per core"),
        ("tcp_idle_secs", "seconds an idle DNS-over-TCP connection is kept open"),
        ("tcp_max_connections", "DNS-over-TCP connections open at once; more are closed on accept"),
        ("rrl", "response-rate limiting of UDP answers per client prefix (table [dns.rrl], keys below)"),
        ("rrl.enabled", "limit UDP answers per client prefix (off by default)"),
        ("rrl.responses_per_second", "sustained UDP answers per second per client prefix"),
        ("rrl.burst", "answers a prefix may get at once above the sustained rate"),
        ("rrl.slip", "every n-th limited answer is sent truncated (TC) so resolvers retry over TCP; 0 = drop all"),
        ("rrl.ipv4_prefix", "IPv4 clients are grouped by this prefix length"),
        ("rrl.ipv6_prefix", "IPv6 clients are grouped by this prefix length"),
    ];

    /// Checks what serde cannot: the error names the offending key first.
    pub fn validate(&self) -> Result<(), String> {
        if self.listen.is_empty() {
            return Err("dns.listen: at least one address is needed".into());
        }
        for (i, a) in self.listen.iter().enumerate() {
            if self.listen[..i].contains(a) {
                return Err(format!("dns.listen: {a} is listed twice"));
            }
        }
        if self.udp_sockets > 256 {
            return Err(format!("dns.udp_sockets: {} is too many (at most 256)", self.udp_sockets));
        }
        if self.udp_threads > 256 {
            return Err(format!("dns.udp_threads: {} is too many (at most 256)", self.udp_threads));
        }
        if self.tcp_idle_secs == 0 {
            return Err("dns.tcp_idle_secs: must be at least 1".into());
        }
        if !(1..=MAX_TCP_CONNECTIONS).contains(&self.tcp_max_connections) {
            return Err(format!(
                "dns.tcp_max_connections: {} is out of range (1 to {MAX_TCP_CONNECTIONS})",
                self.tcp_max_connections
            ));
        }
        self.rrl.validate()
    }

    /// The number of UDP sockets to open per address.
    pub(crate) fn udp_socket_count(&self) -> usize {
        match self.udp_sockets {
            0 => cores(),
            n => n,
        }
    }

    /// The number of threads answering UDP per address: never fewer than sockets.
    pub(crate) fn udp_thread_count(&self) -> usize {
        match self.udp_threads {
            0 => cores(),
            n => n,
        }
        .max(self.udp_socket_count())
    }
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5353))],
            degraded_after_secs: 30,
            // One socket shared by every thread: a query waits for whichever
            // thread is free first, not for the one its source hashed to (see
            // `docs/dns.md`).
            udp_sockets: 1,
            udp_threads: 0,
            tcp_idle_secs: 10,
            tcp_max_connections: 1024,
            rrl: RrlConfig::default(),
        }
    }
}

/// Response-rate limiting (`[dns.rrl]`): caps how many UDP answers one client
/// network gets per second, so the responder is useless as a reflection
/// amplifier. TCP is never limited (a spoofed source cannot complete a handshake).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RrlConfig {
    pub enabled: bool,
    /// Sustained answers per second per client prefix.
    pub responses_per_second: u32,
    /// Answers a prefix may get in a burst above the sustained rate.
    pub burst: u32,
    /// Every `slip`-th limited answer is sent as an empty truncated (TC) reply, so a
    /// real resolver behind a limited prefix retries over TCP; 0 = drop them all.
    pub slip: u32,
    /// IPv4 clients are grouped by this prefix length.
    pub ipv4_prefix: u8,
    /// IPv6 clients are grouped by this prefix length.
    pub ipv6_prefix: u8,
}

impl RrlConfig {
    /// Every key of `[dns.rrl]` with a one-line description.
    pub const DOCS: &'static [(&'static str, &'static str)] = &[
        ("enabled", "limit UDP answers per client prefix (off by default)"),
        ("responses_per_second", "sustained UDP answers per second per client prefix"),
        ("burst", "answers a prefix may get at once above the sustained rate"),
        ("slip", "every n-th limited answer is sent truncated (TC) so resolvers retry over TCP; 0 = drop all"),
        ("ipv4_prefix", "IPv4 clients are grouped by this prefix length"),
        ("ipv6_prefix", "IPv6 clients are grouped by this prefix length"),
    ];

    pub fn validate(&self) -> Result<(), String> {
        if self.responses_per_second == 0 {
            return Err("dns.rrl.responses_per_second: must be at least 1".into());
        }
        if self.burst == 0 {
            return Err("dns.rrl.burst: must be at least 1".into());
        }
        if self.ipv4_prefix == 0 || self.ipv4_prefix > 32 {
            return Err(format!("dns.rrl.ipv4_prefix: {} is not a prefix length between 1 and 32", self.ipv4_prefix));
        }
        if self.ipv6_prefix == 0 || self.ipv6_prefix > 128 {
            return Err(format!("dns.rrl.ipv6_prefix: {} is not a prefix length between 1 and 128", self.ipv6_prefix));
        }
        Ok(())
    }
}

impl Default for RrlConfig {
    fn default() -> Self {
        Self { enabled: false, responses_per_second: 20, burst: 40, slip: 2, ipv4_prefix: 24, ipv6_prefix: 56 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_rrl_keys_are_documented_in_dns_docs() {
        for (key, help) in RrlConfig::DOCS {
            let nested = format!("rrl.{key}");
            assert!(DnsConfig::DOCS.iter().any(|(k, h)| *k == nested && h == help), "{nested}");
        }
    }

    #[test]
    fn dns_validation_names_the_key() {
        DnsConfig::default().validate().unwrap();
        let mut c = DnsConfig::default();
        c.listen.push(c.listen[0]);
        assert!(c.validate().unwrap_err().starts_with("dns.listen:"));
        let mut c = DnsConfig::default();
        c.rrl.ipv4_prefix = 33;
        assert!(c.validate().unwrap_err().starts_with("dns.rrl.ipv4_prefix:"));
        let c = DnsConfig { tcp_idle_secs: 0, ..DnsConfig::default() };
        assert!(c.validate().unwrap_err().starts_with("dns.tcp_idle_secs:"));
        let c = DnsConfig { udp_threads: 257, ..DnsConfig::default() };
        assert!(c.validate().unwrap_err().starts_with("dns.udp_threads:"));
        let c = DnsConfig { udp_sockets: 4, udp_threads: 2, ..DnsConfig::default() };
        assert_eq!(c.udp_thread_count(), 4, "at least a thread per socket");
        let c = DnsConfig { udp_sockets: 1, udp_threads: 3, ..DnsConfig::default() };
        assert_eq!((c.udp_socket_count(), c.udp_thread_count()), (1, 3));
        for bad in [0, 1_000_001] {
            let c = DnsConfig { tcp_max_connections: bad, ..DnsConfig::default() };
            assert!(c.validate().unwrap_err().starts_with("dns.tcp_max_connections:"));
        }
    }

    #[test]
    fn dns_config_reads_from_toml_with_defaults() {
        let c: DnsConfig = toml::from_str("listen = [\"[::1]:53\"]\n[rrl]\nenabled = true\n").unwrap();
        assert!(c.rrl.enabled);
        assert_eq!(c.rrl.burst, RrlConfig::default().burst);
        assert!(toml::from_str::<DnsConfig>("nope = 1").is_err(), "unknown keys are refused");
    }
}
