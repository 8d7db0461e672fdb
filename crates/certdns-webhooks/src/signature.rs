//! The signature on every delivery, in the shape Stripe made familiar:
//! `Certdns-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//! The timestamp is inside the MAC, so a receiver that checks it against its
//! clock (see [`verify`]) refuses a captured delivery replayed later.

use ring::hmac;

/// The header carrying the signature.
pub const HEADER: &str = "certdns-signature";
/// The scheme's version tag; a future scheme adds `v2=` beside it.
const VERSION: &str = "v1";
/// What a secret starts with, so a customer can tell it from other secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// A fresh signing secret: 256 random bits.
pub fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn key(secret: &str) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes())
}

fn signed_text(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut text = format!("{timestamp}.").into_bytes();
    text.extend_from_slice(body);
    text
}

/// The header value for `body` sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = hmac::sign(&key(secret), &signed_text(timestamp, body));
    format!("t={timestamp},{VERSION}={}", hex::encode(tag.as_ref()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the signature header is not `t=<seconds>,v1=<hex>`")]
    Malformed,
    #[error("the timestamp is {0} s away from now, more than the tolerance")]
    Stale(i64),
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// What a receiver does (and what the tests and docs show): the header parses,
/// the timestamp is within `tolerance` seconds of `now`, and one `v1` signature
/// matches (compared in constant time by ring).
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: i64) -> Result<(), VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t.parse::<i64>().map_err(|_| VerifyError::Malformed)?),
            Some((VERSION, sig)) => signatures.push(hex::decode(sig).map_err(|_| VerifyError::Malformed)?),
            Some(_) => {}
            None => return Err(VerifyError::Malformed),
        }
    }
    let timestamp = timestamp.ok_or(VerifyError::Malformed)?;
    if signatures.is_empty() {
        return Err(VerifyError::Malformed);
    }
    let skew = now.saturating_sub(timestamp);
    if skew.abs() > tolerance {
        return Err(VerifyError::Stale(skew));
    }
    let text = signed_text(timestamp, body);
    let key = key(secret);
    if signatures.iter().any(|sig| hmac::verify(&key, &text, sig).is_ok()) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let secret = new_secret();
        assert!(secret.starts_with(SECRET_PREFIX) && secret.len() > 40, "{secret}");
        let header = sign(&secret, 1_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1000,v1="), "{header}");
        assert_eq!(verify(&secret, &header, b"{\"a\":1}", 1_010, 300), Ok(()));
        // A known vector, so receivers in other languages can check their code.
        assert_eq!(
            sign("whsec_test", 1_700_000_000, b"{}"),
            format!("t=1700000000,v1={}", hex::encode(hmac::sign(&key("whsec_test"), b"1700000000.{}").as_ref()))
        );
    }

    #[test]
    fn refuses_what_a_receiver_must_refuse() {
        let header = sign("s", 1_000, b"body");
        assert_eq!(verify("s", &header, b"b0dy", 1_000, 300), Err(VerifyError::Mismatch));
        assert_eq!(verify("other", &header, b"body", 1_000, 300), Err(VerifyError::Mismatch));
        assert_eq!(verify("s", &header, b"body", 1_301, 300), Err(VerifyError::Stale(301)));
        let moved = header.replace("t=1000", "t=1200");
        assert_eq!(verify("s", &moved, b"body", 1_200, 300), Err(VerifyError::Mismatch), "the time is signed");
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "garbage"] {
            assert_eq!(verify("s", bad, b"body", 1, 300), Err(VerifyError::Malformed), "{bad}");
        }
        // An unknown scheme beside v1 is ignored, as a future v2 would be.
        let with_v2 = format!("{header},v2=abcd");
        assert_eq!(verify("s", &with_v2, b"body", 1_000, 300), Ok(()));
    }
}
