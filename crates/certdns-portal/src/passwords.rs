//! Human passwords: the rules a new one must meet, and argon2id hashing and
//! verification in a small bounded pool.
//!
//! One argon2id run costs ~20 ms of CPU and 19 MiB, so every run goes through
//! [`PasswordHasher`], on the bounded pool the API also uses for imported
//! hashes ([`certdns_http::SlowWork`]). Callers do every cheap check before
//! asking it for work.

use certdns_core::password;
use certdns_http::SlowWork;
pub(crate) use certdns_http::slow_work::{Busy, default_threads};

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

/// Runs argon2id work at most `threads` at a time.
pub(crate) struct PasswordHasher {
    pool: SlowWork,
}

impl PasswordHasher {
    pub fn new(threads: usize) -> Self {
        Self { pool: SlowWork::new(threads) }
    }

    /// The most runs that were ever in progress at once.
    #[cfg(test)]
    fn peak(&self) -> usize {
        self.pool.peak()
    }

    async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let result = self.pool.run(work).await;
        match &result {
            Ok(_) => metrics::counter!("certdns_portal_password_hashes_total", "op" => op).increment(1),
            Err(Busy) => metrics::counter!("certdns_portal_password_busy_total").increment(1),
        }
        result
    }

    /// An argon2id hash of `pw`. `Ok(Err(advice))` when the password is refused.
    pub async fn hash(&self, pw: String) -> Result<Result<String, String>, Busy> {
        let hashed = self.run("hash", move || password::hash(&pw)).await?;
        Ok(match hashed {
            Ok(h) => Ok(h),
            Err(password::PasswordError::BadLength) => Err(length_advice()),
            Err(e) => Err(e.to_string()),
        })
    }

    /// Whether `pw` matches `stored`. Unknown accounts (and accounts without a
    /// password) cost the same as a wrong password: they are verified against a
    /// real hash made once.
    pub async fn verify(&self, pw: String, stored: Option<String>) -> Result<bool, Busy> {
        self.run("verify", move || {
            static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let decoy =
                || DECOY.get_or_init(|| password::hash("certdns decoy password, never valid").unwrap_or_default());
            match stored {
                Some(hash) => password::verify(&pw, &hash),
                None => {
                    let _ = password::verify(&pw, decoy());
                    false
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn rules() {
        assert!(check_rules("short", "a@example.com").is_err());
        assert!(check_rules("aaaaaaaaaaaaaaa", "a@example.com").unwrap_err().contains("too easy"));
        assert!(check_rules("A@Example.COM", "a@example.com").is_err(), "the e-mail itself");
        assert_eq!(check_rules("correct horse battery", "a@example.com"), Ok(()));
        assert!((1..=4).contains(&default_threads()));
    }

    /// Many parallel sign-ins never run more hashes at once than the pool has threads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn parallel_hashes_never_exceed_the_pool() {
        let hasher = Arc::new(PasswordHasher::new(2));
        let stored = hasher.hash("correct horse battery".into()).await.unwrap().unwrap();
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let (hasher, stored) = (hasher.clone(), stored.clone());
                tokio::spawn(async move {
                    let guess = if i % 3 == 0 { "correct horse battery" } else { "wrong guess, again" };
                    hasher.verify(guess.into(), Some(stored)).await.unwrap()
                })
            })
            .collect();
        let mut right = 0;
        for task in tasks {
            right += usize::from(task.await.unwrap());
        }
        assert_eq!(right, 4);
        assert_eq!(hasher.peak(), 2, "two at once, never more");
        assert_eq!(hasher.verify("anything at all".into(), None).await, Ok(false), "no account: the decoy");
    }
}
