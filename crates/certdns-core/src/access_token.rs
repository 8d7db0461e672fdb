//! Personal access tokens: what automation presents to the account API
//! (`/api/v1` on the portal) as `Authorization: Bearer cdpat_<id>_<secret>`.
//!
//! A token is created in the portal, shown once, and kept as the hash of its
//! secret (the same fast, constant-time [`SecretHash`] as license keys: the
//! secret has 240 bits of entropy). The id half finds the row without a scan;
//! the fixed `cdpat_` prefix lets secret scanners recognise a leaked token.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{AccountId, InvalidId, KeyId, Secret, SecretHash};

/// The prefix of every token.
pub const TOKEN_PREFIX: &str = "cdpat_";

/// A token's id: 16 characters of `[a-z0-9]`, the same shape as a license key id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(KeyId);

impl TokenId {
    pub fn generate() -> Self {
        Self(KeyId::generate())
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl FromStr for TokenId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        s.parse::<KeyId>()
            .map(Self)
            .map_err(|_| InvalidId { kind: "access token id", reason: "expected 16 characters of a-z and 0-9" })
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({})", self.as_str())
    }
}

/// What a token may do: `read` lists and reads (never a credential);
/// `read-write` may also create, change, delete and export credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenScope {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "read-write")]
    ReadWrite,
}

impl TokenScope {
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::ReadWrite => "read-write",
        }
    }

    /// Whether a token of this scope may do what `needed` requires.
    pub fn allows(&self, needed: TokenScope) -> bool {
        *self == TokenScope::ReadWrite || needed == TokenScope::Read
    }
}

impl FromStr for TokenScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(TokenScope::Read),
            "read-write" => Ok(TokenScope::ReadWrite),
            other => Err(format!("unknown token scope {other:?}")),
        }
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored personal access token.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub id: TokenId,
    pub account_id: AccountId,
    pub name: String,
    pub scope: TokenScope,
    pub secret_hash: SecretHash,
    pub created_at: OffsetDateTime,
    /// `None`: never expires.
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

impl AccessToken {
    /// Neither revoked nor expired at `now`.
    pub fn is_usable(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|t| now < t)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// Why a token cannot be made with that name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a token's name is 1 to 80 characters without control characters, saying what uses it")]
pub struct BadTokenName;

/// A new token for `account`, valid for `lifetime` (`None`: until revoked),
/// and its text (`cdpat_…`), which is shown once and never stored.
pub fn issue(
    account: AccountId,
    name: &str,
    scope: TokenScope,
    lifetime: Option<time::Duration>,
    now: OffsetDateTime,
) -> Result<(AccessToken, String), BadTokenName> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 || crate::text::has_control_or_format(name) {
        return Err(BadTokenName);
    }
    let secret = Secret::generate();
    let token = AccessToken {
        id: TokenId::generate(),
        account_id: account,
        name: name.to_owned(),
        scope,
        secret_hash: secret.hash(),
        created_at: now,
        expires_at: lifetime.map(|l| now + l),
        last_used_at: None,
        revoked_at: None,
    };
    let text = token_text(&token.id, secret.expose());
    Ok((token, text))
}

/// The token as the customer holds it: `cdpat_<id>_<secret>`.
pub fn token_text(id: &TokenId, secret: &str) -> String {
    format!("{TOKEN_PREFIX}{id}_{secret}")
}

/// Splits a presented token into its id and secret, checking the shape only
/// (no lookup): 6 + 16 + 1 + 40 characters.
pub fn parse_token(text: &str) -> Option<(TokenId, &str)> {
    let rest = text.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = (rest.get(..KeyId::LEN)?, rest.get(KeyId::LEN..)?);
    let secret = secret.strip_prefix('_')?;
    if !Secret::is_well_formed(secret) {
        return None;
    }
    Some((id.parse().ok()?, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_only_its_shape_parses() {
        let id = TokenId::generate();
        let secret = Secret::generate();
        let text = token_text(&id, secret.expose());
        assert_eq!(text.len(), 6 + 16 + 1 + 40);
        let (parsed, s) = parse_token(&text).unwrap();
        assert_eq!(parsed, id);
        assert_eq!(s, secret.expose());
        for bad in [
            "",
            "cdpat_",
            &text[..text.len() - 1],
            &format!("{text}x"),
            &text.replacen("cdpat_", "cdpak_", 1),
            &text.replacen('_', "-", 2),
            &text.to_uppercase(),
            "cdpat_\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}_x",
        ] {
            assert!(parse_token(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn issued_tokens_verify_and_names_are_checked() {
        let now = crate::now();
        let (t, text) =
            issue(AccountId::generate(), " ci ", TokenScope::Read, Some(time::Duration::days(30)), now).unwrap();
        let (id, secret) = parse_token(&text).unwrap();
        assert_eq!((id, t.name.as_str()), (t.id.clone(), "ci"));
        assert!(t.secret_hash.verify(secret));
        assert_eq!(t.expires_at, Some(now + time::Duration::days(30)));
        for bad in ["", "  ", &"x".repeat(81), "a\u{7}b"] {
            assert_eq!(issue(AccountId::generate(), bad, TokenScope::Read, None, now).unwrap_err(), BadTokenName);
        }
    }

    #[test]
    fn scopes() {
        assert!(TokenScope::ReadWrite.allows(TokenScope::ReadWrite));
        assert!(TokenScope::ReadWrite.allows(TokenScope::Read));
        assert!(TokenScope::Read.allows(TokenScope::Read));
        assert!(!TokenScope::Read.allows(TokenScope::ReadWrite));
        assert_eq!("read-write".parse::<TokenScope>(), Ok(TokenScope::ReadWrite));
        assert!("write".parse::<TokenScope>().is_err());
    }

    #[test]
    fn usable_until_revoked_or_expired() {
        let now = crate::now();
        let mut t = AccessToken {
            id: TokenId::generate(),
            account_id: AccountId::generate(),
            name: "ci".into(),
            scope: TokenScope::Read,
            secret_hash: Secret::generate().hash(),
            created_at: now,
            expires_at: Some(now + time::Duration::days(1)),
            last_used_at: None,
            revoked_at: None,
        };
        assert!(t.is_usable(now));
        assert!(!t.is_usable(now + time::Duration::days(1)));
        t.expires_at = None;
        assert!(t.is_usable(now + time::Duration::days(10_000)));
        t.revoked_at = Some(now);
        assert!(!t.is_usable(now));
        assert!(!format!("{t:?}").contains("sha256"));
    }
}
