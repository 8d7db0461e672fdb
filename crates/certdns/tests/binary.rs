//! Black-box tests of the built `certdns` binary: start it as an operator would,
//! talk to it over real HTTP and DNS sockets, stop it with SIGTERM.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod support;

use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;
use support::{Certdns, dns_query, run_cli, txt_values};

const ZONE: &str = "auth.certdns.localhost";

fn valid_txt(c: char) -> String {
    c.to_string().repeat(43)
}

async fn register(base_url: &str) -> Value {
    let client = reqwest::Client::new();
    let resp = client.post(format!("{base_url}/register")).send().await.unwrap();
    assert_eq!(resp.status(), 201, "register through the license-keyed base URL");
    resp.json().await.unwrap()
}

async fn update(http: &str, reg: &Value, txt: &str) {
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{http}/update"))
        .header("X-Api-User", reg["username"].as_str().unwrap())
        .header("X-Api-Key", reg["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": reg["subdomain"], "txt": txt }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// The embedded default: no configuration file, SQLite in the working directory,
/// in-process distribution, all roles, first-start credentials printed once.
#[tokio::test]
async fn embedded_default_serves_api_and_dns_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let args =
        ["serve", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--portal-listen", "127.0.0.1:0"];
    let server = Certdns::start(dir.path(), &args, &[]).await;
    assert!(server.banner.contains("serving roles: api, dns, portal"), "{}", server.banner);
    assert!(server.banner.contains("TXT distribution: in-process"), "{}", server.banner);
    assert!(dir.path().join("certdns.sqlite3").exists(), "SQLite file in the working directory");
    let base_url = server.first_start_base_url().expect("first start prints a base URL");
    assert!(base_url.starts_with("http://") && base_url.contains('@'), "{base_url}");

    let http = server.http_url();
    let ready: Value = reqwest::get(format!("{http}/ready")).await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true, "{ready}");
    let metrics = reqwest::get(format!("{http}/metrics")).await.unwrap().text().await.unwrap();
    for series in
        ["certdns_replica_entries", "certdns_replica_stream_up 1", "certdns_replica_snapshot_timestamp_seconds"]
    {
        assert!(metrics.contains(series), "{series} missing from /metrics:\n{metrics}");
    }

    let portal = server.portal_url();
    let login = reqwest::get(format!("{portal}/login")).await.unwrap();
    assert_eq!(login.status(), 200, "the portal serves its login page");

    let soa = dns_query(server.dns_udp(), ZONE, RecordType::SOA).await;
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
    assert!(soa.metadata.authoritative);
    assert_eq!(soa.answers.len(), 1);

    let reg = register(&base_url).await;
    let fulldomain = reg["fulldomain"].as_str().unwrap().to_owned();
    assert!(fulldomain.ends_with(ZONE), "{fulldomain}");
    update(&http, &reg, &valid_txt('a')).await;
    update(&http, &reg, &valid_txt('b')).await;
    let answer = support::wait_for_txt(server.dns_udp(), &fulldomain, 2).await;
    assert_eq!(txt_values(&answer), [valid_txt('b'), valid_txt('a')]);
    let metrics = reqwest::get(format!("{http}/metrics")).await.unwrap().text().await.unwrap();
    for series in ["certdns_api_updates_total 2", "certdns_api_update_batch_writes_bucket{le=\"1\"} 2"] {
        assert!(metrics.contains(series), "{series} missing from /metrics:\n{metrics}");
    }

    server.stop().await;

    // Second start: no new credentials, and the stored values are answered at once.
    let server = Certdns::start(dir.path(), &args, &[]).await;
    assert!(server.first_start_base_url().is_none(), "credentials are printed only once");
    let answer = dns_query(server.dns_udp(), &fulldomain, RecordType::TXT).await;
    let mut values = txt_values(&answer);
    values.sort();
    assert_eq!(values, [valid_txt('a'), valid_txt('b')]);
    server.stop().await;
}

/// Secrets and TXT values never reach the logs, even at trace level, also when
/// authentication fails; `/metrics` counts the API's requests by route and
/// status, their latency, and the failed authentication.
#[tokio::test]
async fn logs_carry_no_secrets_and_metrics_count_api_requests() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("certdns.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let args =
        ["serve", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--portal-listen", "127.0.0.1:0"];
    let server = Certdns::start_with_stderr(dir.path(), &args, &[("RUST_LOG", "trace")], log.into()).await;
    let base_url = server.first_start_base_url().unwrap();
    let key_secret = base_url.split_once("://").unwrap().1.split_once('@').unwrap().0.split_once(':').unwrap().1;
    let http = server.http_url();
    let reg = register(&base_url).await;
    let value = valid_txt('s');
    update(&http, &reg, &value).await;
    let wrong_key = "w".repeat(40);
    let failed = reqwest::Client::new()
        .post(format!("{http}/update"))
        .header("X-Api-User", reg["username"].as_str().unwrap())
        .header("X-Api-Key", &wrong_key)
        .json(&serde_json::json!({ "subdomain": reg["subdomain"], "txt": valid_txt('f') }))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);

    let metrics = reqwest::get(format!("{http}/metrics")).await.unwrap().text().await.unwrap();
    for series in [
        "certdns_api_requests_total{route=\"/update\",status=\"200\"} 1",
        "certdns_api_requests_total{route=\"/update\",status=\"401\"} 1",
        "certdns_api_requests_total{route=\"/register\",status=\"201\"} 1",
        "certdns_api_request_duration_seconds_bucket{route=\"/update\",le=\"5\"} 2",
        "certdns_api_auth_failures_total{",
    ] {
        assert!(metrics.contains(series), "{series} missing from /metrics:\n{metrics}");
    }
    server.stop().await;

    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("TXT updated"), "the API logged at trace level:\n{logs}");
    let password = reg["password"].as_str().unwrap();
    for (what, secret) in [
        ("registration password", password),
        ("license key secret", key_secret),
        ("TXT value", value.as_str()),
        ("rejected key", wrong_key.as_str()),
        ("rejected TXT value", valid_txt('f').as_str()),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
}

/// `/ready` of an api role checks the store and the distribution backend: 200
/// while both answer, 503 naming the distribution when Redis goes away.
#[tokio::test]
async fn api_readiness_follows_the_distribution_backend() {
    let mut redis = certdns_testkit::PrivateRedis::start(certdns_testkit::PrivateRedis::free_port()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let env = [("CERTDNS_REDIS_URL", url.as_str())];
    let api = Certdns::start(dir.path(), &["serve", "--role", "api", "--http-listen", "127.0.0.1:0"], &env).await;
    let ready = reqwest::get(format!("{}/ready", api.http_url())).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!((&body["checks"]["store"], &body["checks"]["distribution"]["status"]), (&"ok".into(), &"ok".into()));

    redis.stop();
    let ready = reqwest::get(format!("{}/ready", api.http_url())).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["checks"]["store"], "ok", "{body}");
    assert_eq!(body["checks"]["distribution"]["status"], "unavailable", "{body}");
    api.stop().await;
}

/// Production shape: Postgres + Redis, one api process and two dns processes; an
/// update through the API is answered by both responders.
#[tokio::test]
async fn split_roles_on_postgres_and_redis_converge() {
    let pg = certdns_testkit::TestPostgres::new().await;
    let redis = certdns_testkit::TestRedis::new().await;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CERTDNS_DATABASE_URL", pg.url()),
        ("CERTDNS_REDIS_URL", redis.url()),
        ("CERTDNS_REDIS_PREFIX", redis.prefix()),
    ];
    let api = Certdns::start(dir.path(), &["serve", "--role", "api", "--http-listen", "127.0.0.1:0"], &env).await;
    let dns_args = ["serve", "--role", "dns", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"];
    let dns1 = Certdns::start(dir.path(), &dns_args, &env).await;
    let dns2 = Certdns::start(dir.path(), &dns_args, &env).await;
    assert!(api.banner.contains("serving roles: api"), "{}", api.banner);
    assert!(dns1.banner.contains("TXT distribution: redis"), "{}", dns1.banner);

    let base_url = api.first_start_base_url().expect("first start on an empty Postgres");
    let reg = register(&base_url).await;
    let fulldomain = reg["fulldomain"].as_str().unwrap().to_owned();
    update(&api.http_url(), &reg, &valid_txt('x')).await;
    for dns in [&dns1, &dns2] {
        let answer = support::wait_for_txt(dns.dns_udp(), &fulldomain, 1).await;
        assert_eq!(txt_values(&answer), [valid_txt('x')]);
        let ready: Value = reqwest::get(format!("{}/ready", dns.http_url())).await.unwrap().json().await.unwrap();
        assert_eq!(ready["checks"]["replica"]["status"], "ok", "{ready}");
    }
    for server in [api, dns1, dns2] {
        server.stop().await;
    }
}

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
    let _ = Duration::ZERO;
}

/// An operator changing only the zone's domain gets a valid configuration: the
/// name server defaults follow the domain.
#[tokio::test]
async fn changing_only_the_zone_domain_is_enough() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("CERTDNS_ZONE__DOMAIN", "auth.example.net")];
    let out = run_cli(dir.path(), &["config"], &env, None);
    assert!(out.success, "{}", out.stderr);
    assert!(out.stdout.contains("domain = \"auth.example.net\""), "{}", out.stdout);

    let args =
        ["serve", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0", "--portal-listen", "127.0.0.1:0"];
    let server = Certdns::start(dir.path(), &args, &env).await;
    let ns = dns_query(server.dns_udp(), "auth.example.net", RecordType::NS).await;
    assert_eq!(ns.metadata.response_code, ResponseCode::NoError);
    let names: Vec<String> = ns.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(names, ["ns1.auth.example.net."]);
    server.stop().await;
}
