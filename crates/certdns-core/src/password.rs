//! Human passwords: argon2id (the argon2 crate's defaults, OWASP's minimum:
//! m=19 MiB, t=2, p=1). Hashing costs tens of milliseconds of CPU on purpose;
//! callers on an async runtime run it in `spawn_blocking`.

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be between {min} and {max} characters", min = MIN_LEN, max = MAX_LEN)]
    BadLength,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

pub const MIN_LEN: usize = 10;
/// Long enough for any passphrase, short enough that hashing cannot be used to burn CPU.
pub const MAX_LEN: usize = 256;

/// Hashes a human password to a PHC string (`$argon2id$v=19$…`).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let len = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return Err(PasswordError::BadLength);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Verifies a password against a stored PHC string. A malformed stored hash never verifies.
pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterz", &h));
        assert!(!verify("correct horse battery", "not a phc string"));
        assert!(matches!(hash("short"), Err(PasswordError::BadLength)));
    }
}
