//! The pages for everyone and the operator's pages, in Chromium at both sizes
//! with the layout and axe-core checks of [`shot`]: the landing page, the docs,
//! the API reference and the status page signed out; the operator's search and
//! account page, a suspension with its reason, and the suspended customer's
//! sign-in that shows it.

use certdns_testkit::Backend;
use fantoccini::Locator;

use super::harness::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_pages_signed_out() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = start(Backend::Embedded).await;
    let driver = start_driver().await;
    let c = browser(&driver).await;

    c.goto(&format!("{}/", env.portal)).await.unwrap();
    wait_xpath(&c, "//h2[text()='How delegation works']", "the landing page").await;
    let source = c.source().await.unwrap();
    assert!(source.contains(&format!("{ZONE}.")), "the CNAME picture names this zone");
    shot(&c, "landing").await;

    c.find(Locator::Css("header nav a[href='/docs']")).await.unwrap().click().await.unwrap();
    wait_xpath(&c, "//h1[text()='Documentation']", "the docs index").await;
    shot(&c, "docs").await;
    c.find(Locator::Css("main .docs-body a[href='/docs/troubleshooting']")).await.unwrap().click().await.unwrap();
    wait_css(&c, "h2#the-cas-errors-dns").await;
    let current = c.find(Locator::Css(".docs-nav a[aria-current=page]")).await.unwrap();
    assert_eq!(current.text().await.unwrap(), "Troubleshooting");
    shot(&c, "docs-troubleshooting").await;
    // A page with wide code blocks and tables.
    c.goto(&format!("{}/docs/getting-started", env.portal)).await.unwrap();
    wait_css(&c, "pre#code-1").await;
    c.find(Locator::Css("button[data-copy='#code-1']")).await.unwrap().click().await.unwrap();
    wait_xpath(&c, "//button[@data-copy='#code-1' and text()='Copied']", "a code block's copy button").await;
    shot(&c, "docs-getting-started").await;

    c.goto(&format!("{}/api-reference", env.portal)).await.unwrap();
    wait_css(&c, "#post-update").await;
    shot(&c, "api-reference").await;
    shot_at(&c, "api-reference-operation", Some("#post-update")).await;

    c.goto(&format!("{}/status", env.portal)).await.unwrap();
    wait_xpath(&c, "//h1[text()='Service status']", "the status page").await;
    shot(&c, "status").await;
    let _ = c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_search_account_page_and_suspension_reason() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = start(Backend::Embedded).await;
    let customer = signup(&env, "customer@shop.example").await;
    let (key_id, base_url) = create_key(&env, &customer, "web").await;
    let (status, _) = register(&base_url, "www.shop.example").await;
    assert_eq!(status, 201);
    create_operator(&env, "ops@example.com").await;
    let driver = start_driver().await;
    let c = browser(&driver).await;

    c.goto(&format!("{}/login", env.portal)).await.unwrap();
    fill(&c, "#email", "ops@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    c.find(Locator::Css("form[action='/login'] button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_css(&c, "#key-name").await;
    c.find(Locator::LinkText("Accounts")).await.unwrap().click().await.unwrap();
    fill(&c, "#q", "www.shop").await;
    c.find(Locator::Css("form[role=search] button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_xpath(&c, "//td[contains(text(), 'domain: www.shop.example')]", "the search finds the domain").await;
    shot(&c, "admin-search").await;
    c.find(Locator::LinkText("customer@shop.example")).await.unwrap().click().await.unwrap();
    wait_css(&c, "form#suspend").await;
    let source = c.source().await.unwrap();
    assert!(source.contains(&key_id) && source.contains("www.shop.example"), "keys and registrations shown");
    assert!(source.contains("License key created"), "the audit log shown");
    shot(&c, "admin-account").await;

    fill(&c, "#reason", "Abuse report 2026-05-01: write to abuse@example.com").await;
    c.find(Locator::Css("form#suspend button[type=submit]")).await.unwrap().click().await.unwrap();
    c.accept_alert().await.unwrap();
    wait_xpath(&c, "//*[contains(text(), 'Account suspended')]", "suspension notice").await;
    let status = c.find(Locator::Css("#account-status")).await.unwrap().text().await.unwrap();
    assert!(status.contains("Abuse report 2026-05-01"), "{status}");

    // The customer signing in is told why.
    c.find(Locator::Css("form[action='/logout'] button")).await.unwrap().click().await.unwrap();
    wait_css(&c, "form[action='/login']").await;
    fill(&c, "#email", "customer@shop.example").await;
    fill(&c, "#password", PASSWORD).await;
    c.find(Locator::Css("form[action='/login'] button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_xpath(&c, "//*[contains(text(), 'Reason: Abuse report 2026-05-01')]", "the reason on sign-in").await;
    shot(&c, "login-suspended").await;
    let _ = c.close().await;
}
