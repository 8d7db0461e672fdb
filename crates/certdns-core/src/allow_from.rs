//! A registration's `allowfrom` list: the networks `/update` may come from.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CIDR network: {0:?}")]
pub struct InvalidCidr(pub String);

/// CIDR networks as the client sent them (with `[`/`]` removed) and as parsed.
///
/// acme-dns semantics: an empty list allows every source; host bits are allowed and
/// kept verbatim in the echo (`192.168.100.1/24`); a bare address, an out-of-range
/// prefix or a short form (`1.2/24`) is invalid, and one invalid entry rejects the
/// whole list (fail closed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct AllowFrom {
    entries: Vec<(String, IpNet)>,
}

impl AllowFrom {
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, InvalidCidr> {
        let entries = raw
            .iter()
            .map(|s| {
                let cleaned: String = s.as_ref().chars().filter(|c| *c != '[' && *c != ']').collect();
                match cleaned.parse::<IpNet>() {
                    Ok(net) => Ok((cleaned, net)),
                    Err(_) => Err(InvalidCidr(s.as_ref().to_owned())),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    pub fn is_unrestricted(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a request from `ip` may update. IPv4-mapped IPv6 addresses
    /// (`::ffff:192.0.2.1`, as seen on dual-stack sockets) match IPv4 networks.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.is_unrestricted() {
            return true;
        }
        let ip = ip.to_canonical();
        self.entries.iter().any(|(_, net)| net.contains(&ip))
    }

    /// The entries in request order, as they are echoed to the client.
    pub fn as_strings(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(s, _)| s.as_str())
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.as_strings().collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
    }

    pub fn from_json(s: &str) -> Result<Self, InvalidCidr> {
        let raw: Vec<String> = serde_json::from_str(s).map_err(|_| InvalidCidr(s.to_owned()))?;
        Self::parse(&raw)
    }
}

impl TryFrom<Vec<String>> for AllowFrom {
    type Error = InvalidCidr;
    fn try_from(raw: Vec<String>) -> Result<Self, InvalidCidr> {
        Self::parse(&raw)
    }
}

impl From<AllowFrom> for Vec<String> {
    fn from(a: AllowFrom) -> Vec<String> {
        a.entries.into_iter().map(|(s, _)| s).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn brackets_are_stripped_and_host_bits_kept() {
        let a = AllowFrom::parse(&["123.123.123.123/32", "2001:db8:a0b:12f0::1/32", "[::1]/64"]).unwrap();
        assert_eq!(a.as_strings().collect::<Vec<_>>(), ["123.123.123.123/32", "2001:db8:a0b:12f0::1/32", "::1/64"]);
        assert_eq!(AllowFrom::parse(&["192.168.100.1/24"]).unwrap().to_json(), r#"["192.168.100.1/24"]"#);
    }

    #[test]
    fn any_invalid_entry_rejects_the_list() {
        for bad in [
            "invalid",
            "1.2.3.4/33",
            "1.2/24",
            "1.2.3.4",
            "12345:db8:a0b:12f0::1/32",
            "1234::123::123::1/32",
            "1.2.3.4/",
        ] {
            assert_eq!(AllowFrom::parse(&["10.0.0.0/8", bad]), Err(InvalidCidr(bad.into())), "{bad}");
        }
    }

    #[test]
    fn membership() {
        let a = AllowFrom::parse(&["192.168.1.0/24", "2001:db8::/32"]).unwrap();
        assert!(a.allows(ip("192.168.1.42")));
        assert!(!a.allows(ip("192.168.2.42")));
        assert!(a.allows(ip("2001:db8:aaaa::")));
        assert!(!a.allows(ip("2001:db9:aaaa::")));
        assert!(a.allows(ip("::ffff:192.168.1.7")), "IPv4-mapped IPv6 matches IPv4 networks");
        let host_bits = AllowFrom::parse(&["2002:c0a8::0/32"]).unwrap();
        assert!(host_bits.allows(ip("2002:c0a8:b4dc:0d3::0")));
        assert!(!host_bits.allows(ip("2002:c0a7:0ff::0")));
        assert!(AllowFrom::default().allows(ip("203.0.113.9")));
    }

    #[test]
    fn json_round_trip() {
        let a = AllowFrom::parse(&["10.0.0.0/8", "::1/128"]).unwrap();
        assert_eq!(AllowFrom::from_json(&a.to_json()).unwrap(), a);
        assert!(AllowFrom::from_json("not json").is_err());
    }
}
