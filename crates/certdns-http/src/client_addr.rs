//! The client address a request is judged by (allow-from, rate limits, audit),
//! for the API and the portal alike.
//!
//! Behind a proxy the socket peer is the proxy, and the client's address comes
//! from a header the proxy writes (`X-Forwarded-For`, `X-Real-IP`, `Forwarded`, …).
//! Such a header is a list that every hop appends to, and whatever the client
//! sent is at its left: only the part the trusted proxies wrote, at its right,
//! can be believed. So the walk starts at the right (after joining every header
//! line in order: HAProxy and others add a line of their own instead of
//! appending to the client's) and moves left while the hop is a trusted proxy.
//! The first hop that is not a trusted proxy is the client. A hop that does not
//! parse (`unknown`, an obfuscated `Forwarded` identifier, garbage) ends the walk
//! with no address at all: what lies left of it was never vouched for, and the
//! callers fail closed on an unknown address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A network of trusted proxies in configuration: a CIDR (`10.0.0.0/8`) or a
/// single address (`192.0.2.10`, taken as `/32` or `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet(pub IpNet);

impl ProxyNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl FromStr for ProxyNet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Self(net.trunc()));
        }
        match s.parse::<IpAddr>() {
            Ok(ip) => Ok(Self(IpNet::from(ip.to_canonical()))),
            Err(_) => Err(format!("{s:?} is not a CIDR (10.0.0.0/8) or an address")),
        }
    }
}

impl fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for ProxyNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ProxyNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The name of the header a proxy writes the client address into, in
/// configuration (`X-Forwarded-For`, `X-Real-IP`, `Forwarded`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader(pub HeaderName);

impl FromStr for ProxyHeader {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        HeaderName::from_bytes(s.trim().as_bytes()).map(Self).map_err(|_| format!("{s:?} is not a header name"))
    }
}

impl Serialize for ProxyHeader {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for ProxyHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The loopback addresses: the default `trusted_proxies`.
pub fn loopback() -> Vec<ProxyNet> {
    vec![
        ProxyNet(IpNet::from(IpAddr::from(Ipv4Addr::LOCALHOST))),
        ProxyNet(IpNet::from(IpAddr::from(Ipv6Addr::LOCALHOST))),
    ]
}

/// How a listener finds the client address: from the socket, or from `header`
/// when the socket peer is one of `trusted` proxies.
#[derive(Debug, Clone, Default)]
pub struct ClientAddrRule {
    header: Option<HeaderName>,
    trusted: Vec<ProxyNet>,
}

impl ClientAddrRule {
    pub fn new(header: Option<&ProxyHeader>, trusted: &[ProxyNet]) -> Self {
        Self { header: header.map(|h| h.0.clone()), trusted: trusted.to_vec() }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// The client address of a request from `peer` carrying `headers`; `None`
    /// when it cannot be known (no peer, or a proxy wrote a hop that does not
    /// parse where the client should be).
    pub fn client_addr(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.ip().to_canonical();
        let Some(name) = &self.header else { return Some(peer) };
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        let forwarded = *name == http::header::FORWARDED;
        let mut leftmost = peer;
        // Right to left over every line, and within a line over its hops.
        for line in headers.get_all(name).iter().rev() {
            let Ok(line) = line.to_str() else { return None };
            for hop in line.rsplit(',') {
                let hop = hop.trim();
                if hop.is_empty() {
                    continue;
                }
                let parsed = if forwarded { forwarded_for(hop) } else { parse_hop(hop) };
                let ip = parsed?;
                if !self.is_trusted(ip) {
                    return Some(ip);
                }
                leftmost = ip;
            }
        }
        // Every hop was a trusted proxy: the request started inside them.
        Some(leftmost)
    }
}

/// One hop as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`, optionally in double quotes.
pub fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = hop.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<Ipv6Addr>().ok().map(|ip| IpAddr::V6(ip).to_canonical())
}

/// The `for=` node of one RFC 7239 `Forwarded` element
/// (`for=192.0.2.60;proto=https;by=203.0.113.43`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| parse_hop(value)).flatten()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const PROXY: &str = "10.0.0.5:40000";

    fn rule(header: &str) -> ClientAddrRule {
        let trusted: Vec<ProxyNet> =
            ["127.0.0.1", "::1", "10.0.0.0/8", "2001:db8:ffff::/48"].iter().map(|n| n.parse().unwrap()).collect();
        ClientAddrRule::new(Some(&header.parse().unwrap()), &trusted)
    }

    fn headers(name: &str, lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
        for line in lines {
            h.append(name.clone(), HeaderValue::from_str(line).unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    /// Each row: what a proxy (behind trusted peers) put on the wire, and the
    /// client address that must come out.
    #[test]
    fn every_proxy_format() {
        let xff = rule("X-Forwarded-For");
        let peer = Some(PROXY.parse().unwrap());
        let table: &[(&str, &[&str], Option<&str>)] = &[
            // nginx `$proxy_add_x_forwarded_for`, Envoy, Traefik, Caddy, AWS ALB: append.
            ("nginx, no client header", &["203.0.113.7"], Some("203.0.113.7")),
            ("nginx, client wrote a hop", &["10.1.2.3, 203.0.113.7"], Some("203.0.113.7")),
            ("two trusted proxies", &["198.51.100.1, 203.0.113.7, 10.0.0.9"], Some("203.0.113.7")),
            // HAProxy `option forwardfor`: a line of its own after the client's.
            ("haproxy second line", &["10.1.2.3", "203.0.113.7"], Some("203.0.113.7")),
            ("haproxy second line, client wrote two", &["6.6.6.6, 10.1.2.3", "203.0.113.7"], Some("203.0.113.7")),
            // Azure Application Gateway, IIS ARR: ip:port.
            ("ip:port", &["10.1.2.3, 203.0.113.7:51234"], Some("203.0.113.7")),
            ("[v6]:port", &["10.1.2.3, [2001:db8::7]:51234"], Some("2001:db8::7")),
            ("[v6]", &["[2001:db8::7]"], Some("2001:db8::7")),
            ("bare v6", &["2001:db8::7"], Some("2001:db8::7")),
            ("v4-mapped v6", &["::ffff:203.0.113.7"], Some("203.0.113.7")),
            ("quoted", &["\"203.0.113.7\""], Some("203.0.113.7")),
            // A hop the proxy could not name stops the walk: unknown client.
            ("unknown", &["10.1.2.3, unknown"], None),
            ("garbage right of a trusted hop", &["10.1.2.3, junk, 10.0.0.9"], None),
            ("empty pieces are skipped", &["203.0.113.7, , "], Some("203.0.113.7")),
            // Only trusted hops: the request started inside the trusted network.
            ("all trusted", &["10.1.2.3, 10.0.0.9"], Some("10.1.2.3")),
            ("no header", &[], Some("10.0.0.5")),
            ("empty header", &[""], Some("10.0.0.5")),
        ];
        for (what, lines, want) in table {
            assert_eq!(xff.client_addr(peer, &headers("x-forwarded-for", lines)), want.and_then(ip), "{what}");
        }
    }

    #[test]
    fn rfc_7239_forwarded() {
        let fwd = rule("Forwarded");
        let peer = Some(PROXY.parse().unwrap());
        let table: &[(&[&str], Option<&str>)] = &[
            (&["for=203.0.113.7;proto=https;by=10.0.0.5"], Some("203.0.113.7")),
            (&["for=10.1.2.3, for=\"[2001:db8::7]:4711\""], Some("2001:db8::7")),
            (&["for=10.1.2.3", "For=203.0.113.7"], Some("203.0.113.7")),
            (&["for=203.0.113.7, for=unknown"], None),
            (&["for=203.0.113.7, for=_hidden"], None),
            (&["proto=https"], None),
        ];
        for (lines, want) in table {
            assert_eq!(fwd.client_addr(peer, &headers("forwarded", lines)), want.and_then(ip), "{lines:?}");
        }
    }

    #[test]
    fn headers_count_only_from_trusted_peers() {
        let xff = rule("X-Forwarded-For");
        let h = headers("x-forwarded-for", &["10.1.2.3"]);
        assert_eq!(xff.client_addr(Some("203.0.113.9:1".parse().unwrap()), &h), ip("203.0.113.9"));
        assert_eq!(ClientAddrRule::default().client_addr(Some(PROXY.parse().unwrap()), &h), ip("10.0.0.5"));
        assert_eq!(xff.client_addr(None, &h), None);
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:1".parse().unwrap();
        assert_eq!(xff.client_addr(Some(mapped), &h), ip("10.1.2.3"), "a v4-mapped peer is still the trusted proxy");
        let mut bad = HeaderMap::new();
        bad.append("x-forwarded-for", HeaderValue::from_bytes(b"203.0.113.7\xff").unwrap());
        assert_eq!(xff.client_addr(Some(PROXY.parse().unwrap()), &bad), None, "a line that is not text");
    }

    #[test]
    fn configuration_values() {
        assert_eq!("10.0.0.1".parse::<ProxyNet>().unwrap().to_string(), "10.0.0.1/32");
        assert_eq!("::1".parse::<ProxyNet>().unwrap().to_string(), "::1/128");
        assert_eq!("10.1.2.3/8".parse::<ProxyNet>().unwrap().to_string(), "10.0.0.0/8");
        assert!("10.0.0.0/33".parse::<ProxyNet>().is_err());
        assert!("nope".parse::<ProxyNet>().unwrap_err().contains("not a CIDR"));
        assert!("bad header".parse::<ProxyHeader>().is_err());
        let parsed: Vec<ProxyNet> = serde_json::from_str(r#"["192.0.2.0/24", "2001:db8::1"]"#).unwrap();
        assert_eq!(serde_json::to_string(&parsed).unwrap(), r#"["192.0.2.0/24","2001:db8::1/128"]"#);
        assert!(serde_json::from_str::<Vec<ProxyNet>>(r#"["x"]"#).is_err());
        let h: ProxyHeader = serde_json::from_str(r#""X-Forwarded-For""#).unwrap();
        assert_eq!(serde_json::to_string(&h).unwrap(), r#""x-forwarded-for""#);
        assert_eq!(loopback().iter().map(ToString::to_string).collect::<Vec<_>>(), ["127.0.0.1/32", "::1/128"]);
    }
}
