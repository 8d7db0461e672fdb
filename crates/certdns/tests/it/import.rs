//! `certdns import-acme-dns` through the built binary: an acme-dns database as
//! acme-dns writes it (bcrypt cost 10, the hash stored as a BLOB by Go's SQLite
//! driver, two `txt` rows per subdomain) is imported; the original credentials
//! then work at `/update`, the DNS answers the imported values, and the first
//! authentication replaces the bcrypt hash with certdns's own.

use std::path::Path;
use std::time::{Duration, Instant};

use certdns_testkit::{Backend, TestDatabase, TestPostgres, TestRedis};
use hickory_proto::rr::RecordType;
use sqlx::Connection;

use crate::support::*;

certdns_testkit::both_backends!(import_keeps_credentials_values_and_cnames);

const ACCOUNT: &str = "moving@example.com";

/// One acme-dns registration as acme-dns made it.
struct AcmeDnsRecord {
    username: String,
    password: String,
    subdomain: String,
    allow_from: &'static str,
}

impl AcmeDnsRecord {
    fn new(allow_from: &'static str) -> Self {
        Self {
            username: uuid::Uuid::new_v4().to_string(),
            // 40 characters of acme-dns's alphabet.
            password: uuid::Uuid::new_v4().simple().to_string()[..20].repeat(2),
            subdomain: uuid::Uuid::new_v4().to_string(),
            allow_from,
        }
    }

    /// bcrypt at acme-dns's cost, with Go's `$2a$` prefix.
    fn hash(&self) -> Vec<u8> {
        bcrypt::hash(&self.password, 10).unwrap().replacen("$2b$", "$2a$", 1).into_bytes()
    }
}

const ACME_DNS_TABLES: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS acmedns(Name TEXT, Value TEXT)",
    "CREATE TABLE IF NOT EXISTS records(Username TEXT UNIQUE NOT NULL PRIMARY KEY, \
     Password TEXT UNIQUE NOT NULL, Subdomain TEXT UNIQUE NOT NULL, AllowFrom TEXT)",
    "CREATE TABLE IF NOT EXISTS txt(Subdomain TEXT NOT NULL, Value TEXT NOT NULL DEFAULT '', LastUpdate INT)",
];

/// acme-dns's SQLite file with `records` and their `txt` rows (`(subdomain, value, last update)`).
async fn acme_dns_sqlite(path: &Path, records: &[(&AcmeDnsRecord, Vec<u8>)], txt: &[(&str, &str, i64)]) {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for table in ACME_DNS_TABLES {
        sqlx::query(table).execute(&mut conn).await.unwrap();
    }
    sqlx::query("INSERT INTO acmedns (Name, Value) VALUES ('db_version', '1')").execute(&mut conn).await.unwrap();
    for (r, hash) in records {
        sqlx::query("INSERT INTO records (Username, Password, Subdomain, AllowFrom) VALUES (?, ?, ?, ?)")
            .bind(&r.username)
            .bind(hash.as_slice()) // a BLOB, as Go's driver stores []byte
            .bind(&r.subdomain)
            .bind(r.allow_from)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    for (subdomain, value, at) in txt {
        sqlx::query("INSERT INTO txt (Subdomain, Value, LastUpdate) VALUES (?, ?, ?)")
            .bind(*subdomain)
            .bind(*value)
            .bind(*at)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

/// The stored password hash of `username` in certdns's own database.
async fn stored_hash(db_url: &str, username: &str) -> String {
    let id = uuid::Uuid::parse_str(username).unwrap();
    let sql = "SELECT password_hash FROM registrations WHERE username = $1";
    if db_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(db_url).await.unwrap();
        sqlx::query_scalar(sql).bind(id).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
        sqlx::query_scalar(sql).bind(id).fetch_one(&mut conn).await.unwrap()
    }
}

async fn count_registrations(db_url: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM registrations";
    if db_url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(db_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    } else {
        let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }
}

/// `POST /update` with a registration's credentials; the status and how long it took.
async fn update_as(http: &str, r: &AcmeDnsRecord, txt: &str) -> (u16, Duration) {
    let started = Instant::now();
    let resp = reqwest::Client::new()
        .post(format!("{http}/update"))
        .header("X-Api-User", &r.username)
        .header("X-Api-Key", &r.password)
        .json(&serde_json::json!({ "subdomain": r.subdomain, "txt": txt }))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), started.elapsed())
}

fn import(dir: &Path, env: &[(&str, &str)], extra: &[&str]) -> CliOutput {
    let mut args = vec!["import-acme-dns", "--from", "acme-dns.db", "--account", ACCOUNT];
    args.extend_from_slice(extra);
    let out = run_cli(dir, &args, env, None);
    assert!(out.success, "import failed: {}\n{}", out.stdout, out.stderr);
    out
}

async fn import_keeps_credentials_values_and_cnames(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(backend).await;
    let redis = TestRedis::new().await;
    let db_url = db.url().to_owned();
    let mut env = vec![("CERTDNS_DATABASE_URL", db.url())];
    if backend == Backend::Fleet {
        env.extend([("CERTDNS_REDIS_URL", redis.url()), ("CERTDNS_REDIS_PREFIX", redis.prefix())]);
    }

    let (with_values, one_value, restricted) =
        (AcmeDnsRecord::new("[]"), AcmeDnsRecord::new("[]"), AcmeDnsRecord::new(r#"["127.0.0.1/32"]"#));
    let mut plaintext = AcmeDnsRecord::new("[]");
    plaintext.username = uuid::Uuid::new_v4().to_string();
    let bad_allow = AcmeDnsRecord::new(r#"["not a network"]"#);
    let (a, b, c) = (valid_txt('a'), valid_txt('b'), valid_txt('c'));
    let records = [
        (&with_values, with_values.hash()),
        (&one_value, one_value.hash()),
        (&restricted, restricted.hash()),
        (&plaintext, plaintext.password.clone().into_bytes()),
        (&bad_allow, bad_allow.hash()),
    ];
    let txt = [
        (with_values.subdomain.as_str(), a.as_str(), 1_700_000_000),
        (with_values.subdomain.as_str(), b.as_str(), 1_700_000_100),
        (one_value.subdomain.as_str(), c.as_str(), 1_700_000_000),
        (one_value.subdomain.as_str(), "", 0),
        (restricted.subdomain.as_str(), "", 0),
        (restricted.subdomain.as_str(), "", 0),
    ];
    acme_dns_sqlite(&dir.path().join("acme-dns.db"), &records, &txt).await;
    // lego's storage file: the domain of the first registration.
    let storage = serde_json::json!({ "shop.example.com": {
        "username": with_values.username, "password": with_values.password,
        "fulldomain": format!("{}.{ZONE}", with_values.subdomain), "subdomain": with_values.subdomain, "allowfrom": [],
    }});
    std::fs::write(dir.path().join("lego-acme-dns.json"), storage.to_string()).unwrap();

    let out = run_cli(dir.path(), &["admin", "account", "create", "--email", ACCOUNT], &env, None);
    assert!(out.success, "{}", out.stderr);
    // The fleet's server runs during the import (its responders follow Redis);
    // the embedded one starts after it (it loads the store when it starts).
    let mut server = None;
    if backend == Backend::Fleet {
        server = Some(Certdns::start(dir.path(), &serve_on_loopback(&[]), &env).await);
    }

    let dry = import(dir.path(), &env, &["--dry-run", "--storage-file", "lego-acme-dns.json"]);
    assert!(dry.stdout.contains("Would import 3 registrations"), "{}", dry.stdout);
    assert!(dry.stdout.contains("Would bind 1 domains"), "{}", dry.stdout);
    assert_eq!(count_registrations(&db_url).await, 0, "a dry run writes nothing");

    let out = import(dir.path(), &env, &["--storage-file", "lego-acme-dns.json"]);
    assert!(out.stdout.contains("Imported 3 registrations"), "{}", out.stdout);
    assert!(out.stdout.contains("Skipped (malformed in the source): 2"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("{}: Password is not a bcrypt hash", plaintext.username)), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("{}: AllowFrom is not a JSON list", bad_allow.username)), "{}", out.stdout);
    assert!(out.stdout.contains("Bound 1 domains"), "{}", out.stdout);
    assert!(!out.stdout.contains(&with_values.password) && !out.stderr.contains("$2a$"), "no secret printed");
    assert_eq!(count_registrations(&db_url).await, 3, "the malformed rows are not imported, not even in part");

    let again = import(dir.path(), &env, &["--storage-file", "lego-acme-dns.json"]);
    assert!(again.stdout.contains("Imported 0 registrations"), "{}", again.stdout);
    assert!(again.stdout.contains("Already here, unchanged: 3"), "{}", again.stdout);
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);
    assert!(again.stdout.contains("Bound 0 domains from storage files; 1 bound already"), "{}", again.stdout);

    let server = match server {
        Some(server) => server,
        None => Certdns::start(dir.path(), &serve_on_loopback(&[]), &env).await,
    };
    let (dns, http) = (server.dns_udp(), server.http_url());

    // The imported values are answered, newest first, with no update sent.
    let answer = wait_for_txt(dns, &format!("{}.{ZONE}", with_values.subdomain), 2).await;
    assert_eq!(txt_values(&answer), [b, a]);
    let answer = wait_for_txt(dns, &format!("{}.{ZONE}", one_value.subdomain), 1).await;
    assert_eq!(txt_values(&answer), [c]);

    // The storage file's password matched, so that hash is certdns's already.
    assert!(stored_hash(&db_url, &with_values.username).await.starts_with("sha256:"));
    let before = stored_hash(&db_url, &one_value.username).await;
    assert!(before.starts_with("$2a$10$"), "kept as acme-dns wrote it until first use: {before}");

    // A wrong password is refused and changes nothing.
    let mut wrong = AcmeDnsRecord::new("[]");
    (wrong.username, wrong.subdomain) = (one_value.username.clone(), one_value.subdomain.clone());
    assert_eq!(update_as(&http, &wrong, &valid_txt('x')).await.0, 401);
    assert_eq!(stored_hash(&db_url, &one_value.username).await, before);

    // The original credentials work; bcrypt runs once, then the fast check.
    let (status, first) = update_as(&http, &one_value, &valid_txt('d')).await;
    assert_eq!(status, 200);
    let after = stored_hash(&db_url, &one_value.username).await;
    assert!(after.starts_with("sha256:"), "replaced by certdns's hash on first use: {after}");
    let (status, second) = update_as(&http, &one_value, &valid_txt('e')).await;
    assert_eq!(status, 200);
    eprintln!("first /update of an imported registration {first:?} (bcrypt cost 10), the next {second:?}");
    let answer = wait_for_txt(dns, &format!("{}.{ZONE}", one_value.subdomain), 2).await;
    assert_eq!(txt_values(&answer), [valid_txt('e'), valid_txt('d')]);

    // The allow-from list came along: loopback may update.
    assert_eq!(update_as(&http, &restricted, &valid_txt('f')).await.0, 200);
    server.stop().await;
}

/// An acme-dns server on Postgres (its `txt` table has a `rowid SERIAL`):
/// imported straight from its URL.
#[tokio::test]
async fn imports_from_an_acme_dns_postgres_database() {
    let source = TestPostgres::new().await;
    let mut conn = sqlx::PgConnection::connect(source.url()).await.unwrap();
    sqlx::query(ACME_DNS_TABLES[1]).execute(&mut conn).await.unwrap();
    sqlx::query(
        "CREATE TABLE txt(rowid SERIAL, Subdomain TEXT NOT NULL, Value TEXT NOT NULL DEFAULT '', LastUpdate INT)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let r = AcmeDnsRecord::new(r#"["127.0.0.0/8"]"#);
    let hash = String::from_utf8(r.hash()).unwrap();
    sqlx::query("INSERT INTO records (Username, Password, Subdomain, AllowFrom) VALUES ($1, $2, $3, $4)")
        .bind(&r.username)
        .bind(&hash)
        .bind(&r.subdomain)
        .bind(r.allow_from)
        .execute(&mut conn)
        .await
        .unwrap();
    for (value, at) in [(valid_txt('p'), 10), (String::new(), 0)] {
        sqlx::query("INSERT INTO txt (Subdomain, Value, LastUpdate) VALUES ($1, $2, $3)")
            .bind(&r.subdomain)
            .bind(value)
            .bind(at)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(dir.path(), &["admin", "account", "create", "--email", ACCOUNT], &[], None);
    assert!(out.success, "{}", out.stderr);
    // Filed under a license key of the account (as if registered with it).
    let out = run_cli(dir.path(), &["admin", "key", "create", "--account", ACCOUNT, "--name", "moved"], &[], None);
    assert!(out.success, "{}", out.stderr);
    let key_id = out.stdout.split("created license key ").nth(1).unwrap().split(' ').next().unwrap().to_owned();
    let bad = run_cli(
        dir.path(),
        &["import-acme-dns", "--from", source.url(), "--account", ACCOUNT, "--key", "nokey"],
        &[],
        None,
    );
    assert!(!bad.success && bad.stderr.contains("--key"), "{}", bad.stderr);
    let args = ["import-acme-dns", "--from", source.url(), "--account", ACCOUNT, "--key", &key_id];
    let out = run_cli(dir.path(), &args, &[], None);
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("Imported 1 registrations"), "{}", out.stdout);
    let out = run_cli(dir.path(), &["admin", "key", "revoke", &key_id], &[], None);
    assert!(out.success, "{}", out.stderr);

    let server = Certdns::start(dir.path(), &serve_on_loopback(&[]), &[]).await;
    let answer = dns_query(server.dns_udp(), &format!("{}.{ZONE}", r.subdomain), RecordType::TXT).await;
    assert_eq!(txt_values(&answer), [valid_txt('p')], "answered from the first query on");
    // Revoking the key retires what was filed under it, as for any registration made with it.
    assert_eq!(update_as(&server.http_url(), &r, &valid_txt('q')).await.0, 403);
    server.stop().await;
}

#[test]
fn a_missing_source_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(dir.path(), &["admin", "account", "create", "--email", ACCOUNT], &[], None);
    assert!(out.success, "{}", out.stderr);
    let out = run_cli(dir.path(), &["import-acme-dns", "--from", "nowhere.db", "--account", ACCOUNT], &[], None);
    assert!(!out.success);
    assert!(out.stderr.contains("--from nowhere.db") && out.stderr.contains("no such file"), "{}", out.stderr);
    let out = run_cli(dir.path(), &["import-acme-dns", "--from", "x.db", "--account", "nobody@example.com"], &[], None);
    assert!(!out.success && out.stderr.contains("--account: no account"), "{}", out.stderr);
}
