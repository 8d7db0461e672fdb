//! Where a webhook may be sent. A customer names the URL and certdns makes the
//! request, so without care a webhook reaches what only certdns can reach: the
//! database, Redis, a cloud metadata service. So an endpoint must be `https`
//! and every address it is sent to must be public — checked on the addresses
//! actually connected to (the resolver below), so a name that resolves to a
//! public address when saved and to 127.0.0.1 later is still refused.
//! `allow_private` lifts both rules for self-hosting and tests.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadTarget {
    #[error("not a URL: {0}")]
    NotAUrl(String),
    #[error("the URL must start with https://")]
    NotHttps,
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("the URL must not carry a user name or password; put a token in the path or query instead")]
    Credentials,
    #[error("the URL has no host")]
    NoHost,
    #[error("{0} is not a public address")]
    Private(IpAddr),
}

/// Checks a URL a customer gives for an endpoint; the normalised form on success.
pub fn check_url(text: &str, allow_private: bool) -> Result<String, BadTarget> {
    let text = text.trim();
    if text.len() > MAX_URL_LEN {
        return Err(BadTarget::TooLong);
    }
    let url = url::Url::parse(text).map_err(|e| BadTarget::NotAUrl(e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(BadTarget::NotHttps),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BadTarget::Credentials);
    }
    match url.host() {
        None => return Err(BadTarget::NoHost),
        Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), allow_private)?,
        Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), allow_private)?,
        Some(url::Host::Domain(_)) => {}
    }
    Ok(url.to_string())
}

/// `Ok` for an address a webhook may be sent to.
pub fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), BadTarget> {
    if allow_private || is_public(ip) { Ok(()) } else { Err(BadTarget::Private(ip)) }
}

/// Globally routable unicast: not loopback, private, link-local (cloud metadata
/// lives there), shared (CGNAT), documentation, benchmarking, multicast,
/// reserved, unspecified — nor IPv6 forms that embed such an IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking, RFC 2544
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link local
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: may embed anything
        || s[0] == 0x2002 // 6to4: embeds an IPv4 address
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)) // IPv4-compatible
}

/// The client's resolver: the system's, keeping only the addresses a webhook
/// may reach; an error when none is left.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> =
                found.iter().copied().filter(|a| check_address(a.ip(), allow_private).is_ok()).collect();
            if kept.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{} resolves to no public address", name.as_str()),
                ));
            }
            Ok(kept.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_customers_may_give() {
        assert_eq!(check_url(" https://hooks.example.com/x?t=1 ", false).unwrap(), "https://hooks.example.com/x?t=1");
        assert_eq!(check_url("http://hooks.example.com/", false), Err(BadTarget::NotHttps));
        assert_eq!(check_url("ftp://hooks.example.com/", true), Err(BadTarget::NotHttps));
        assert_eq!(check_url("https://u:p@hooks.example.com/", false), Err(BadTarget::Credentials));
        assert!(matches!(check_url("https://169.254.169.254/latest", false), Err(BadTarget::Private(_))));
        assert!(matches!(check_url("https://[::1]:8443/", false), Err(BadTarget::Private(_))));
        assert!(matches!(check_url("not a url", false), Err(BadTarget::NotAUrl(_))));
        assert_eq!(
            check_url(&format!("https://a.example/{}", "x".repeat(MAX_URL_LEN)), false),
            Err(BadTarget::TooLong)
        );
        assert!(check_url("http://127.0.0.1:9000/hook", true).is_ok(), "allowed for self-hosting and tests");
    }
}
