//! The client address a request is judged by (allow-from, rate limits, audit).

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// Where the client address comes from: the socket, or a proxy header when the
/// peer is a trusted proxy.
#[derive(Debug, Clone, Default)]
pub struct ClientIpSource {
    pub header: Option<HeaderName>,
    pub trusted: Vec<IpNet>,
}

impl ClientIpSource {
    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The socket peer, unless it is a trusted proxy and the configured header is
    /// present: then the right-most address of the header that is not itself a
    /// trusted proxy (the left part of `X-Forwarded-For` is whatever the client
    /// wrote, so it is never believed).
    pub fn client_ip(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.map(|p| p.ip().to_canonical());
        let (Some(name), Some(peer_ip)) = (&self.header, peer) else { return peer };
        if !self.is_trusted(peer_ip) {
            return Some(peer_ip);
        }
        let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()) else { return Some(peer_ip) };
        let hops: Vec<IpAddr> = value
            .split(',')
            .filter_map(|piece| piece.trim().parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
            .collect();
        hops.iter().rev().find(|ip| !self.is_trusted(**ip)).or(hops.first()).copied().or(Some(peer_ip))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn source() -> ClientIpSource {
        ClientIpSource {
            header: Some(HeaderName::from_static("x-forwarded-for")),
            trusted: vec!["127.0.0.1/32".parse().unwrap(), "10.0.0.0/8".parse().unwrap()],
        }
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn header_only_from_trusted_peers() {
        let s = source();
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let stranger: SocketAddr = "203.0.113.5:5000".parse().unwrap();
        let ip = |v: &str| v.parse::<IpAddr>().ok();
        assert_eq!(s.client_ip(Some(proxy), &xff("192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(s.client_ip(Some(proxy), &xff("6.6.6.6, 192.0.2.1 ,10.1.1.1")), ip("192.0.2.1"));
        assert_eq!(s.client_ip(Some(stranger), &xff("192.0.2.1")), ip("203.0.113.5"));
        assert_eq!(s.client_ip(Some(proxy), &HeaderMap::new()), ip("127.0.0.1"));
        assert_eq!(s.client_ip(Some(proxy), &xff("whatever goes")), ip("127.0.0.1"));
        assert_eq!(ClientIpSource::default().client_ip(Some(proxy), &xff("192.0.2.1")), ip("127.0.0.1"));
        assert_eq!(s.client_ip(None, &xff("192.0.2.1")), None);
        let mapped: SocketAddr = "[::ffff:198.51.100.4]:1".parse().unwrap();
        assert_eq!(ClientIpSource::default().client_ip(Some(mapped), &HeaderMap::new()), ip("198.51.100.4"));
    }
}
