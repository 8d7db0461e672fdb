//! The command line: admin commands, configuration errors, `--help`.

use crate::support::*;

#[tokio::test]
async fn admin_commands_manage_accounts_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    // The test suite's own CERTDNS_TEST_* variables are not configuration keys.
    let out = run_cli(dir.path(), &["migrate"], &[("CERTDNS_TEST_POSTGRES_URL", "postgres://elsewhere")], None);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("migrations applied (sqlite"), "{}", out.stdout);

    let out = run_cli(dir.path(), &["admin", "account", "create", "--email", "Ops@Example.com"], &[], None);
    assert!(out.success, "{}", out.stderr);
    let out = run_cli(dir.path(), &["admin", "account", "create", "--email", "ops@example.com"], &[], None);
    assert!(!out.success);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    let out = run_cli(
        dir.path(),
        &["admin", "account", "create", "--email", "root@example.com", "--operator", "--password-stdin"],
        &[],
        Some("a long enough password\n"),
    );
    assert!(out.success, "{}", out.stderr);

    let out = run_cli(
        dir.path(),
        &["admin", "key", "create", "--account", "ops@example.com", "--name", "web-1"],
        &[("CERTDNS_PUBLIC_API_URL", "https://api.example.net")],
        None,
    );
    assert!(out.success, "{}", out.stderr);
    let url = out.stdout.lines().find(|l| l.starts_with("https://")).expect("base URL printed");
    let (key_id, rest) = url.trim_start_matches("https://").split_once(':').unwrap();
    let (secret, host) = rest.split_once('@').unwrap();
    assert_eq!((key_id.len(), secret.len(), host), (16, 40, "api.example.net"), "{url}");

    let out = run_cli(dir.path(), &["admin", "key", "list"], &[], None);
    assert!(out.stdout.contains(key_id) && out.stdout.contains("active") && out.stdout.contains("web-1"));
    assert!(out.stdout.contains(" off "), "storage access is off by default: {}", out.stdout);
    let out = run_cli(
        dir.path(),
        &["admin", "key", "create", "--account", "ops@example.com", "--name", "lego", "--storage-access"],
        &[],
        None,
    );
    assert!(out.success && out.stdout.contains("storage access: on"), "{}", out.stderr);
    let out = run_cli(dir.path(), &["admin", "key", "list"], &[], None);
    assert!(out.stdout.lines().any(|l| l.contains("lego") && l.contains(" on ")), "{}", out.stdout);
    assert!(!out.stdout.contains(secret), "secrets are never shown again");
    let out = run_cli(dir.path(), &["admin", "key", "revoke", key_id], &[], None);
    assert!(out.success, "{}", out.stderr);
    let out = run_cli(dir.path(), &["admin", "key", "list", "--account", "ops@example.com"], &[], None);
    assert!(out.stdout.contains("revoked"), "{}", out.stdout);
    let out = run_cli(dir.path(), &["admin", "key", "revoke", key_id], &[], None);
    assert!(!out.success && out.stderr.contains("already revoked"), "{}", out.stderr);

    let out = run_cli(dir.path(), &["admin", "account", "suspend", "ops@example.com"], &[], None);
    assert!(out.success, "{}", out.stderr);
    let out = run_cli(dir.path(), &["admin", "account", "list"], &[], None);
    assert!(out.stdout.contains("suspended") && out.stdout.contains("operator"), "{}", out.stdout);
    let out = run_cli(dir.path(), &["admin", "key", "create", "--account", "nobody@example.com"], &[], None);
    assert!(!out.success && out.stderr.contains("no account"), "{}", out.stderr);
}

/// Bad configuration stops start-up with one line naming the problem.
#[tokio::test]
async fn bad_configuration_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("certdns.toml");
    type Env<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(Vec<&str>, Env, &str, &str)> = vec![
        (vec!["serve", "--config", "certdns.toml"], vec![], "[zone]\ndomian = \"x\"\n", "domian"),
        (vec!["serve", "--config", "missing.toml"], vec![], "", "missing.toml"),
        (vec!["serve"], vec![("CERTDNS_HTTP__LISTEN", "not-an-address")], "", "listen"),
        (vec!["serve"], vec![("CERTDNS_BOGUS", "1")], "", "bogus"),
        (vec!["serve", "--role", "dns"], vec![], "", "redis_url"),
        (
            vec!["serve", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"],
            vec![("CERTDNS_DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing")],
            "",
            "database_url",
        ),
        (vec!["serve"], vec![("CERTDNS_PUBLIC_API_URL", "https://api.example.net/acme")], "", "public_api_url"),
        (vec!["serve"], vec![("CERTDNS_TLS__CERT_FILE", "cert.pem")], "", "tls.key_file"),
        (
            vec!["serve"],
            vec![
                ("CERTDNS_TLS__ACME__DIRECTORY_URL", "http://ca.example/dir"),
                ("CERTDNS_TLS__ACME__NAMES", "[\"a.example\"]"),
            ],
            "",
            "tls.acme.directory_url",
        ),
        (
            vec!["serve"],
            vec![("CERTDNS_TLS__ACME__DIRECTORY_URL", "https://ca.example/dir")],
            "",
            "tls.acme: missing field `names`",
        ),
        (
            vec!["serve"],
            vec![
                ("CERTDNS_TLS__ACME__DIRECTORY_URL", "https://ca.example/dir"),
                ("CERTDNS_TLS__ACME__NAMES", "[\"a.example\"]"),
                ("CERTDNS_TLS__CERT_FILE", "cert.pem"),
                ("CERTDNS_TLS__KEY_FILE", "key.pem"),
            ],
            "",
            "tls.acme: set either",
        ),
        (
            serve_on_loopback(&[]),
            vec![("CERTDNS_TLS__CERT_FILE", "missing.pem"), ("CERTDNS_TLS__KEY_FILE", "missing.key")],
            "",
            "tls.cert_file: cannot read missing.pem",
        ),
        (
            serve_on_loopback(&[]),
            vec![("CERTDNS_TLS__CERT_FILE", "certdns.toml"), ("CERTDNS_TLS__KEY_FILE", "certdns.toml")],
            "",
            "tls.cert_file certdns.toml / tls.key_file certdns.toml: the certificate chain holds no pem certificate",
        ),
    ];
    for (args, env, contents, needle) in cases {
        std::fs::write(&file, contents).unwrap();
        let out = run_cli(dir.path(), &args, &env, None);
        assert!(!out.success, "{args:?} {env:?} must fail");
        let stderr = out.stderr.trim();
        assert_eq!(stderr.lines().count(), 1, "one line, no backtrace: {stderr}");
        assert!(stderr.starts_with("certdns: error: "), "{stderr}");
        assert!(stderr.to_lowercase().contains(needle), "{args:?} {env:?}: {stderr:?} should name {needle:?}");
    }
}

#[test]
fn help_documents_every_key_with_its_environment_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(dir.path(), &["serve", "--help"], &[], None);
    assert!(out.success);
    for needle in ["CERTDNS_DATABASE_URL", "CERTDNS_ZONE__DOMAIN", "CERTDNS_DNS__LISTEN", "--role", "--dns-listen"] {
        assert!(out.stdout.contains(needle), "serve --help lacks {needle}");
    }
    let out = run_cli(dir.path(), &["--help"], &[], None);
    assert!(out.stdout.contains("serve") && out.stdout.contains("admin") && out.stdout.contains("migrate"));
}

/// Secrets never show in `certdns config` or in errors, and each can come from a
/// file (`CERTDNS_<KEY>_FILE`), as container platforms hand secrets out.
#[test]
fn secrets_stay_hidden_and_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let db_file = dir.path().join("db-url");
    std::fs::write(&db_file, "postgres://certdns:db-secret-1@db.internal/certdns?password=db-secret-2\n").unwrap();
    let db_var = db_file.display().to_string();
    let stripe_file = dir.path().join("stripe-key");
    std::fs::write(&stripe_file, "sk_live_stripe-secret\n").unwrap();
    let stripe_var = stripe_file.display().to_string();
    let env = [
        ("CERTDNS_DATABASE_URL_FILE", db_var.as_str()),
        ("CERTDNS_REDIS_URL", "redis://:redis-secret@redis.internal:6379"),
        ("CERTDNS_PORTAL__SESSION_SECRET", "session-secret-of-at-least-32-characters"),
        ("CERTDNS_PORTAL__SMTP", "{ url = \"smtps://mailer:smtp-secret@smtp.internal:465\" }"),
        ("CERTDNS_TLS__ACME__DIRECTORY_URL", "https://ca.example/dir"),
        ("CERTDNS_TLS__ACME__NAMES", "[\"api.example.net\"]"),
        ("CERTDNS_TLS__ACME__EAB_KID", "kid"),
        ("CERTDNS_TLS__ACME__EAB_HMAC_KEY_FILE", "eab.key"),
        ("CERTDNS_BILLING__STRIPE__SECRET_KEY_FILE", stripe_var.as_str()),
        ("CERTDNS_BILLING__STRIPE__WEBHOOK_SECRET", "whsec_webhook-secret"),
    ];
    std::fs::write(dir.path().join("eab.key"), "eab-hmac-secret\n").unwrap();
    let out = run_cli(dir.path(), &["config"], &env, None);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("secret_key = \"***\"") && out.stdout.contains("webhook_secret = \"***\""));
    for secret in [
        "db-secret-1",
        "db-secret-2",
        "redis-secret",
        "session-secret-of",
        "smtp-secret",
        "eab-hmac-secret",
        "stripe-secret",
        "webhook-secret",
    ] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "{secret} shown:\n{}", out.stdout);
    }
    assert!(out.stdout.contains("database_url = \"postgres://certdns:***@db.internal/certdns?password=***\""));
    assert!(out.stdout.contains("session_secret = \"***\""), "{}", out.stdout);
    assert!(out.stdout.contains("eab_hmac_key = \"***\""), "{}", out.stdout);

    // A bad value is named, without the secret.
    let out = run_cli(dir.path(), &["config"], &[("CERTDNS_REDIS_URL", "http://:redis-secret@x")], None);
    assert!(!out.success && out.stderr.contains("redis_url") && !out.stderr.contains("redis-secret"), "{}", out.stderr);
    // Both ways at once, or an unreadable file: one clear line.
    let both = [("CERTDNS_DATABASE_URL_FILE", db_var.as_str()), ("CERTDNS_DATABASE_URL", "sqlite://x")];
    let out = run_cli(dir.path(), &["config"], &both, None);
    assert!(!out.success && out.stderr.contains("both CERTDNS_DATABASE_URL and CERTDNS_DATABASE_URL_FILE"));
    let out = run_cli(dir.path(), &["config"], &[("CERTDNS_PORTAL__SESSION_SECRET_FILE", "/nonexistent/x")], None);
    assert!(!out.success && out.stderr.contains("CERTDNS_PORTAL__SESSION_SECRET_FILE: cannot read"), "{}", out.stderr);
    // Half a Stripe configuration is refused, naming the keys and not the secret.
    let half = [("CERTDNS_BILLING__STRIPE__SECRET_KEY_FILE", stripe_var.as_str())];
    let out = run_cli(dir.path(), &["config"], &half, None);
    assert!(!out.success && out.stderr.contains("billing.stripe: set both"), "{}", out.stderr);
    assert!(!out.stderr.contains("stripe-secret"));
}
