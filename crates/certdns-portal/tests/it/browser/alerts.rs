//! The Alerts page in Chromium at both sizes (layout and axe-core checks of
//! [`shot`]): add an endpoint, reload without adding it twice, send a test
//! event and see the failed attempt in the log, change the e-mail choices and
//! come back with the back button.

use certdns_testkit::Backend;
use certdns_webhooks::{Deliverer, DeliveryConfig};
use fantoccini::Locator;

use super::harness::*;
use crate::domains::account_id;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_page_endpoints_test_event_and_settings() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = start(Backend::Embedded).await;
    let _ = signup(&env, "ada@example.com").await;
    let ada = account_id(&env, "ada@example.com").await;
    let driver = start_driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/login", env.portal)).await.unwrap();
    fill(&c, "#email", "ada@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    c.find(Locator::Css("form[action='/login'] button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_css(&c, "#key-name").await;

    c.find(Locator::Css("header nav a[href='/alerts']")).await.unwrap().click().await.unwrap();
    wait_xpath(&c, "//h1[text()='Alerts']", "the Alerts page").await;
    let current = c.find(Locator::Css("header nav a[aria-current=page]")).await.unwrap();
    assert_eq!(current.text().await.unwrap(), "Alerts");
    shot(&c, "alerts-empty").await;

    fill(&c, "#webhook-url", "https://hooks.example.com/certdns").await;
    c.find(Locator::XPath("//button[text()='Add endpoint']")).await.unwrap().click().await.unwrap();
    wait_xpath(&c, "//div[@role='status' and starts-with(text(), 'Webhook endpoint added')]", "added").await;
    c.refresh().await.unwrap();
    wait_xpath(&c, "//h1[text()='Alerts']", "the reloaded page").await;
    assert_eq!(env.store.core().alerts().webhooks(ada).await.unwrap().len(), 1, "a reload adds nothing");

    c.find(Locator::XPath("//button[text()='Send test event']")).await.unwrap().click().await.unwrap();
    wait_xpath(&c, "//div[@role='status' and starts-with(text(), 'Test event queued')]", "queued").await;
    // No network here: the attempt fails, is logged, and will be retried.
    let deliverer = Deliverer::new(env.store.core().alerts(), DeliveryConfig::default()).unwrap();
    let round = deliverer.round(certdns_core::now().unix_timestamp()).await.unwrap();
    assert_eq!(round.retrying, 1);
    c.refresh().await.unwrap();
    wait_xpath(&c, "//span[contains(@class, 'tag-warn') and text()='retrying']", "the failed attempt in the log").await;
    c.find(Locator::Css("details summary")).await.unwrap().click().await.unwrap();
    let source = c.source().await.unwrap();
    assert!(source.contains("whsec_"), "the signing secret is shown on request");
    shot(&c, "alerts").await;

    // Turn off the renewal mail; the back button shows the page again, no resend.
    c.find(Locator::Css("input[name=email][value='renewal.overdue']")).await.unwrap().click().await.unwrap();
    c.find(Locator::XPath("//button[text()='Save e-mail settings']")).await.unwrap().click().await.unwrap();
    wait_xpath(&c, "//div[@role='status' and text()='Alert e-mail settings saved.']", "saved").await;
    c.back().await.unwrap();
    wait_xpath(&c, "//h1[text()='Alerts']", "back on the page").await;
    let off = env.store.core().alerts().email_settings(ada).await.unwrap();
    assert_eq!(off, [("renewal.overdue".to_owned(), false)]);
    let _ = c.close().await;
}
