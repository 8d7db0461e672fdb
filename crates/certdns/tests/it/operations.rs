//! What an operator reads: logs without secrets, metrics.

use crate::support::*;

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
    // Mails with live links: a sign-up's confirmation, the operator's reset.
    let portal = server.portal_url();
    let signup = [
        ("email", "newcomer@example.com"),
        ("password", "a long new password"),
        ("password_confirm", "a long new password"),
    ];
    assert_eq!(submit_portal_form(&portal, "/signup", &signup).await, 303);
    let operator = format!("operator@{ZONE}");
    assert_eq!(submit_portal_form(&portal, "/forgot-password", &[("email", &operator)]).await, 303);

    let metrics = reqwest::get(format!("{}/metrics", server.ops_url())).await.unwrap().text().await.unwrap();
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
    assert!(logs.contains("mail written to the outbox"), "the mails were logged as written");
    let outbox = std::fs::read_to_string(dir.path().join("outbox.eml")).unwrap();
    let token_after = |marker: &str| -> String {
        let rest = outbox.split(marker).nth(1).unwrap_or_else(|| panic!("{marker} in the outbox"));
        rest.split(|c: char| c.is_whitespace()).next().unwrap().to_owned()
    };
    let (reset, verify) = (token_after("/reset-password?token="), token_after("/verify-email?token="));
    let first_start = std::fs::read_to_string(server_dir_file(dir.path())).unwrap();
    let operator_password =
        first_start.lines().find_map(|l| l.trim().strip_prefix("operator password")).unwrap().trim().to_owned();
    let password = reg["password"].as_str().unwrap();
    for (what, secret) in [
        ("reset token", reset.as_str()),
        ("verification token", verify.as_str()),
        ("operator password", operator_password.as_str()),
        ("new user's password", "a long new password"),
        ("registration password", password),
        ("license key secret", key_secret),
        ("TXT value", value.as_str()),
        ("rejected key", wrong_key.as_str()),
        ("rejected TXT value", valid_txt('f').as_str()),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
}

/// The first-start file in a data directory.
fn server_dir_file(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join("first-start.txt")
}
