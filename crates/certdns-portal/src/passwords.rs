//! Human passwords: the rules a new one must meet, and argon2id hashing and
//! verification off the async threads.

use certdns_core::password;

/// Why a new password is refused, in words for the form.
fn length_advice() -> String {
    format!(
        "Choose a password of {} to {} characters. A few unrelated words make a good one.",
        password::MIN_LEN,
        password::MAX_LEN
    )
}

/// The rules a new password must meet (length, not the e-mail, not one repeated
/// character); checked before anything is hashed.
pub(crate) fn check_rules(pw: &str, email: &str) -> Result<(), String> {
    let len = pw.chars().count();
    if !(password::MIN_LEN..=password::MAX_LEN).contains(&len) {
        return Err(length_advice());
    }
    if pw.eq_ignore_ascii_case(email) || pw.chars().all(|c| pw.starts_with(c)) {
        return Err("That password is too easy to guess. Pick something you do not use elsewhere.".into());
    }
    Ok(())
}

/// An argon2id hash of `pw`, computed on a blocking thread.
pub(crate) async fn hash(pw: String) -> Result<String, String> {
    match tokio::task::spawn_blocking(move || password::hash(&pw)).await {
        Ok(Ok(h)) => Ok(h),
        Ok(Err(password::PasswordError::BadLength)) => Err(length_advice()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether `pw` matches `stored`. Unknown accounts (and accounts without a
/// password) cost the same as a wrong password: they are verified against a
/// real hash made once.
pub(crate) async fn verify(pw: String, stored: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let decoy = || DECOY.get_or_init(|| password::hash("certdns decoy password, never valid").unwrap_or_default());
        match stored {
            Some(hash) => password::verify(&pw, &hash),
            None => {
                let _ = password::verify(&pw, decoy());
                false
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check_rules("short", "a@example.com").is_err());
        assert!(check_rules("aaaaaaaaaaaaaaa", "a@example.com").unwrap_err().contains("too easy"));
        assert!(check_rules("A@Example.COM", "a@example.com").is_err(), "the e-mail itself");
        assert_eq!(check_rules("correct horse battery", "a@example.com"), Ok(()));
    }
}
