//! The domain a registration certifies (`www.example.com`), as customers type it
//! and as clients send it: IDNA names are kept as their A-label (`xn--…`), the form
//! DNS and the CA use, and shown with their U-label.

use std::fmt;

use crate::text::has_control_or_format;

/// Longest name DNS carries in presentation form without the final dot.
const MAX_LEN: usize = 253;
/// The label the ACME DNS-01 challenge lives at (RFC 8555 §8.4).
pub const CHALLENGE_LABEL: &str = "_acme-challenge";

/// A domain name being certified: lowercase A-labels, no final dot, at least two
/// labels, no wildcard (`*.example.com` and `example.com` prove control at the same
/// `_acme-challenge.example.com`, so the wildcard binds to `example.com`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("a domain name is required")]
    Empty,
    #[error("the name holds a control or invisible formatting character")]
    Hidden,
    #[error("only a leading \"*.\" may hold a wildcard")]
    Wildcard,
    #[error("not a valid domain name (letters, digits and hyphens per label, 63 characters at most)")]
    Syntax,
    #[error("longer than 253 characters")]
    TooLong,
    #[error("a domain needs at least two labels, such as example.com")]
    SingleLabel,
}

impl Domain {
    /// Parses what a customer or client wrote: surrounding spaces, one final dot
    /// and one leading `*.` are dropped; Unicode names are converted to A-labels.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        if has_control_or_format(input) {
            return Err(DomainError::Hidden);
        }
        let name = input.trim();
        let name = name.strip_suffix('.').unwrap_or(name);
        let name = name.strip_prefix("*.").unwrap_or(name);
        if name.is_empty() {
            return Err(DomainError::Empty);
        }
        if name.contains('*') {
            return Err(DomainError::Wildcard);
        }
        // Before IDNA, whose own length check would word it as a bad label. A
        // U-label name grows as A-labels; that is checked again below.
        if name.len() > MAX_LEN && name.is_ascii() {
            return Err(DomainError::TooLong);
        }
        let ascii = idna::domain_to_ascii_strict(name).map_err(|_| DomainError::Syntax)?;
        if ascii.len() > MAX_LEN {
            return Err(DomainError::TooLong);
        }
        if !ascii.contains('.') {
            return Err(DomainError::SingleLabel);
        }
        // UTS 46 accepts all-digit labels; a certificate name cannot end in one.
        if ascii.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
            return Err(DomainError::Syntax);
        }
        Ok(Self(ascii))
    }

    /// The domain whose challenge name is `fqdn` (`_acme-challenge.www.example.com.`),
    /// or `None` when `fqdn` is not a challenge name.
    pub fn from_challenge_name(fqdn: &str) -> Option<Result<Self, DomainError>> {
        let name = fqdn.trim();
        let name = name.strip_suffix('.').unwrap_or(name);
        let (first, rest) = name.split_once('.')?;
        // A challenge name never holds a wildcard label.
        let parse = |rest: &str| if rest.contains('*') { Err(DomainError::Wildcard) } else { Self::parse(rest) };
        first.eq_ignore_ascii_case(CHALLENGE_LABEL).then(|| parse(rest))
    }

    /// The A-label form, as stored and as DNS carries it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form people read: U-labels where the name has any (`bücher.example`).
    pub fn unicode(&self) -> String {
        let (unicode, result) = idna::domain_to_unicode(&self.0);
        if result.is_ok() { unicode } else { self.0.clone() }
    }

    /// Whether the A-label and U-label forms differ (an internationalised name).
    pub fn is_idn(&self) -> bool {
        self.0.split('.').any(|l| l.starts_with("xn--"))
    }

    /// `_acme-challenge.<domain>`: where the customer's CNAME lives.
    pub fn challenge_name(&self) -> String {
        format!("{CHALLENGE_LABEL}.{}", self.0)
    }

    /// This domain, then each parent with at least two labels
    /// (`a.b.example.com`, `b.example.com`, `example.com`).
    pub fn self_and_parents(&self) -> impl Iterator<Item = &str> {
        let s = self.0.as_str();
        std::iter::once(s).chain(s.match_indices('.').map(move |(i, _)| &s[i + 1..])).filter(|name| name.contains('.'))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        for (input, want) in [
            ("www.example.com", "www.example.com"),
            ("  WWW.Example.COM. ", "www.example.com"),
            ("*.example.com", "example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("例え.jp", "xn--r8jz45g.jp"),
        ] {
            assert_eq!(Domain::parse(input).unwrap().as_str(), want, "{input}");
        }
        let d = Domain::parse("xn--bcher-kva.example").unwrap();
        assert_eq!(d.unicode(), "bücher.example");
        assert!(d.is_idn());
        assert_eq!(d.challenge_name(), "_acme-challenge.xn--bcher-kva.example");
    }

    #[test]
    fn bad_names_are_refused_with_the_reason() {
        let long = format!("{}.com", vec!["a".repeat(63); 4].join("."));
        for (input, want) in [
            ("", DomainError::Empty),
            (".", DomainError::Empty),
            ("a.*.example.com", DomainError::Wildcard),
            ("*.*.example.com", DomainError::Wildcard),
            ("exa\u{200b}mple.com", DomainError::Hidden),
            ("moc.elpmaxe\u{202e}", DomainError::Hidden),
            ("a\nb.com", DomainError::Hidden),
            ("under_score.example.com", DomainError::Syntax),
            ("-lead.example.com", DomainError::Syntax),
            ("a..example.com", DomainError::Syntax),
            ("192.168.0.1", DomainError::Syntax),
            (&format!("{}.com", "a".repeat(64)), DomainError::Syntax),
            ("localhost", DomainError::SingleLabel),
        ] {
            assert_eq!(Domain::parse(input), Err(want), "{input:?}");
        }
        assert_eq!(Domain::parse(&long), Err(DomainError::TooLong));
    }

    #[test]
    fn challenge_names_and_parents() {
        let d = Domain::from_challenge_name("_ACME-challenge.www.example.com.").unwrap().unwrap();
        assert_eq!(d.as_str(), "www.example.com");
        assert!(Domain::from_challenge_name("www.example.com.").is_none());
        assert_eq!(Domain::from_challenge_name("_acme-challenge.*.example.com"), Some(Err(DomainError::Wildcard)));
        assert!(Domain::from_challenge_name("_acme-challenge.").is_none());
        assert!(Domain::from_challenge_name("_acme-challenge.localhost").unwrap().is_err());
        let d = Domain::parse("a.b.example.com").unwrap();
        assert_eq!(d.self_and_parents().collect::<Vec<_>>(), ["a.b.example.com", "b.example.com", "example.com"]);
    }
}
