//! The dns-persist-01 pages in Chromium at both sizes (layout and axe-core
//! checks of [`shot`]): the empty list with its trade-off, the list with a
//! record, and the record's page with its exact TXT and the CNAME to create.

use certdns_testkit::Backend;
use fantoccini::Locator;

use super::harness::*;
use crate::persist::{ACCOUNT_URL, PREFIX, THUMBPRINT};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_pages_at_both_sizes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = start(Backend::Embedded).await;
    let http = signup(&env, "ada@example.com").await;
    let driver = start_driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", env.portal)).await.unwrap();
    fill(&c, "#email", "ada@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    c.find(Locator::Css("form[action='/login'] button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_css(&c, "#key-name").await;

    c.find(Locator::Css("header nav a[href='/persist']")).await.unwrap().click().await.unwrap();
    wait_css(&c, "#tradeoff").await;
    wait_css(&c, "#no-records").await;
    shot(&c, "persist-empty").await;

    // A record made from the values a CA shares (draft §4.5), as the form sends them.
    let (_, page, _) = get(&http, &format!("{}/persist", env.portal)).await;
    let t = csrf(&page);
    let fields = [
        ("csrf", t.as_str()),
        ("domain", "example.com"),
        ("issuer", "letsencrypt.org"),
        ("account_mode", "compute"),
        ("account_url", ACCOUNT_URL),
        ("jwk_thumbprint", THUMBPRINT),
        ("account_hash_prefix", PREFIX),
    ];
    let (status, page, location) = post(&http, &format!("{}/persist", env.portal), &fields).await;
    assert_eq!(status, 303, "{page}");
    let location = location.unwrap();

    c.refresh().await.unwrap();
    wait_css(&c, "#persist-records").await;
    shot(&c, "persist").await;
    c.goto(&format!("{}{location}", env.portal)).await.unwrap();
    wait_css(&c, "#txt").await;
    let source = c.source().await.unwrap();
    assert!(source.contains("_validation-persist"), "the CNAME to create is shown");
    shot(&c, "persist-record").await;
    let _ = c.close().await;
}
