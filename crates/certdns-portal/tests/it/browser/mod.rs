//! The portal in a real browser: headless Chromium driven through chromedriver
//! with fantoccini. Sign up → create a key → copy its URL → register through the
//! API with that URL → storage access on → the registration shows up → a
//! registration without a domain gets one (refused, conflict, IDN) → add a
//! domain and see its credentials once → the CNAME check says "missing" →
//! delete it. Screenshots of the main pages go to docs/screenshots/. With
//! billing on, the pricing and Billing pages and the way to Stripe Checkout.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/test-services.sh`
//! installs them). Without them the test fails and says so; it never skips.

mod alerts;
mod harness;
mod persist;
mod public;

use certdns_testkit::Backend;
use fantoccini::{Client, Locator};

use crate::support::*;
use harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_create_key_register_check_and_delete() {
    // fantoccini's hyper-rustls brings aws-lc-rs, lettre brings ring: pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = start(Backend::Embedded).await;
    let driver = start_driver().await;
    let c = browser(&driver).await;
    let result = flow(&env, &c).await;
    let _ = c.close().await;
    result
}

async fn flow(env: &Env, c: &Client) {
    // Sign up.
    c.goto(&format!("{}/signup", env.portal)).await.unwrap();
    fill(c, "#email", "browser@example.com").await;
    fill(c, "#password", PASSWORD).await;
    fill(c, "#password_confirm", PASSWORD).await;
    shot(c, "signup").await;
    c.find(Locator::Css("form[action='/signup'] button[type=submit]")).await.unwrap().click().await.unwrap();
    // "Check your inbox"; the mailed link finishes the sign-up.
    wait_xpath(c, "//h1[text()='Check your inbox']", "the sign-up confirmation page").await;
    shot(c, "signup-check-inbox").await;
    confirm_by_mail(env, c).await;
    wait_css(c, "#key-name").await;
    let source = c.source().await.unwrap();
    assert!(source.contains("No keys yet"), "empty state on the keys page");
    assert!(source.contains("browser@example.com"));
    shot(c, "keys-empty").await;

    // Create a key; the page shows the URL once, with a copy button.
    fill(c, "#key-name", "web servers").await;
    c.find(Locator::Css("form[action='/keys'] button[type=submit]")).await.unwrap().click().await.unwrap();
    let input = wait_css(c, "#base-url").await;
    let url = input.prop("value").await.unwrap().unwrap();
    assert!(url.starts_with("http://") && url.contains('@'), "{url}");
    let copy = c.find(Locator::Css("button[data-copy='#base-url']")).await.unwrap();
    copy.click().await.unwrap();
    wait_xpath(c, "//button[@data-copy='#base-url' and text()='Copied']", "the copy button confirms").await;
    shot(c, "key-created").await;
    // A reload shows the secret no more and creates no second key; back leads
    // to the keys page without resubmitting the form.
    c.refresh().await.unwrap();
    wait_xpath(c, "//h1[text()='Secret already shown']", "a reload finds the secret gone").await;
    assert!(c.find(Locator::Css("#base-url")).await.is_err(), "the secret is not shown twice");
    shot(c, "key-shown-once").await;
    c.back().await.unwrap();
    wait_css(c, "#key-name").await;
    c.goto(&format!("{}/keys", env.portal)).await.unwrap();
    let source = c.source().await.unwrap();
    assert_eq!(
        source.matches("<td data-label=\"Name\">web servers").count(),
        1,
        "one key, whatever the reload and back did"
    );

    // Register through the API with the copied URL, and send one update.
    let (status, reg) = register(&url, "www.example.com").await;
    assert_eq!(status, 201, "{reg}");
    let sub = reg["subdomain"].as_str().unwrap().to_owned();
    let r = reqwest::Client::new()
        .post(format!("{}/update", env.api))
        .header("X-Api-User", reg["username"].as_str().unwrap())
        .header("X-Api-Key", reg["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": sub, "txt": "b".repeat(43) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, _) = register(&url, "*.shop.example.com").await;
    assert_eq!(status, 201);
    let key_id: certdns_core::KeyId = url.split("//").nth(1).unwrap().split(':').next().unwrap().parse().unwrap();
    let today = certdns_core::now().date();
    let usage: Vec<_> = (0..30u32)
        .map(|i| {
            (key_id.clone(), today - time::Duration::days(i64::from(i)), (i * 7 + 3) % 11 + u32::from(i % 5 == 0) * 6)
        })
        .collect();
    env.store.add_usage(&usage).await.unwrap();

    // A registration made without a subject (certbot's hook, lego): it needs a domain.
    let bare = reqwest::Client::new().post(format!("{url}/register")).body("{}").send().await.unwrap();
    assert_eq!(bare.status().as_u16(), 201);
    let bare: serde_json::Value = bare.json().await.unwrap();
    let bare_sub = bare["subdomain"].as_str().unwrap().to_owned();

    // Storage access, switched on with the consequence confirmed.
    c.goto(&format!("{}/keys", env.portal)).await.unwrap();
    let help = c.find(Locator::Css("#storage-help")).await.unwrap().text().await.unwrap();
    assert!(help.contains("update credential for all those names"), "{help}");
    c.find(Locator::Css("td.storage button")).await.unwrap().click().await.unwrap();
    c.accept_alert().await.unwrap();
    wait_xpath(c, "//*[contains(text(), 'Storage access on')]", "storage access notice").await;
    assert!(c.find(Locator::Css("td.storage [data-storage=on]")).await.is_ok());

    // The keys page shows the key with its registrations count; the navigation
    // marks where the user is; the site has an icon.
    c.goto(&format!("{}/keys", env.portal)).await.unwrap();
    let source = c.source().await.unwrap();
    assert!(source.contains("web servers"));
    let current = c.find(Locator::Css("nav a[aria-current=page]")).await.unwrap();
    assert_eq!(current.text().await.unwrap(), "License keys");
    let icon = reqwest::get(format!("{}/favicon.ico", env.portal)).await.unwrap();
    assert_eq!((icon.status().as_u16(), icon.headers()["content-type"].to_str().unwrap()), (200, "image/svg+xml"));
    shot(c, "keys").await;
    shot_at(c, "keys-storage-access", Some("td.storage")).await;

    // The registration appears in the portal.
    c.find(Locator::LinkText("Registrations")).await.unwrap().click().await.unwrap();
    wait_css(c, &format!("#cname-{sub}")).await;
    let source = c.source().await.unwrap();
    assert!(source.contains("www.example.com"));
    assert!(c.find(Locator::Css(&format!("#needs-{bare_sub}"))).await.is_ok(), "flagged: needs a domain");
    shot(c, "registrations").await;
    shot_at(c, "registrations-needs-domain", Some(&format!("#needs-{bare_sub}"))).await;

    // Its page: no CNAME name and no CAA form until it has a domain.
    c.find(Locator::Css(&format!("#needs-{bare_sub}"))).await.unwrap().click().await.unwrap();
    wait_css(c, "#domain-form").await;
    c.goto(&format!("{}/registrations/{bare_sub}", env.portal)).await.unwrap();
    wait_css(c, "#domain-form").await;
    assert!(c.find(Locator::Css("#cname-waits")).await.is_ok() && c.find(Locator::Css("#caa-waits")).await.is_ok());
    shot(c, "registration-no-domain").await;
    // A bad name is refused with the reason, in place.
    fill(c, "#domain", "a.*.example.com").await;
    c.find(Locator::Css("#domain-form button[type=submit]")).await.unwrap().click().await.unwrap();
    let error = wait_css(c, "#domain-error").await;
    assert!(error.text().await.unwrap().contains("wildcard"));
    // A name another registration holds: named, and moved only on confirmation.
    fill(c, "#domain", "www.example.com").await;
    c.find(Locator::Css("#domain-form button[type=submit]")).await.unwrap().click().await.unwrap();
    let conflict = wait_css(c, "#domain-conflict").await;
    assert!(conflict.text().await.unwrap().contains(reg["fulldomain"].as_str().unwrap()));
    assert!(c.find(Locator::Css("#move-domain")).await.is_ok());
    shot_at(c, "registration-domain-conflict", Some("#domain-conflict")).await;
    // An internationalised name: shown as people read it and as DNS carries it.
    fill(c, "#domain", "api.bücher.example.com").await;
    c.find(Locator::Css("#domain-form button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_xpath(c, "//*[contains(text(), 'Domain saved')]", "domain saved notice").await;
    let alabel = c.find(Locator::Css("#domain-alabel")).await.unwrap().text().await.unwrap();
    assert_eq!(alabel, "api.xn--bcher-kva.example.com");
    let name = c.find(Locator::Css("#cname-name")).await.unwrap().text().await.unwrap();
    assert_eq!(name, "_acme-challenge.api.xn--bcher-kva.example.com.");
    shot(c, "registration-domain").await;

    // Add a domain: its credentials once, in each client's format.
    c.goto(&format!("{}/registrations", env.portal)).await.unwrap();
    c.find(Locator::Css("#add-domain")).await.unwrap().click().await.unwrap();
    wait_css(c, "#add-form").await;
    fill(c, "#domain", "mail.example.com").await;
    shot(c, "add-domain").await;
    c.find(Locator::Css("#add-form button[type=submit]")).await.unwrap().click().await.unwrap();
    let password = wait_css(c, "#cred-password").await.text().await.unwrap();
    assert_eq!(password.len(), 40, "{password}");
    for id in ["fmt-json", "fmt-acmesh", "fmt-poshacme", "fmt-certify", "cname-name", "cname-target", "check-link"] {
        assert!(c.find(Locator::Css(&format!("#{id}"))).await.is_ok(), "#{id} on the credentials page");
    }
    c.find(Locator::Css("button[data-copy='#fmt-json']")).await.unwrap().click().await.unwrap();
    wait_xpath(c, "//button[@data-copy='#fmt-json' and text()='Copied']", "the copy button confirms").await;
    shot_at(c, "domain-credentials", Some("top")).await;
    shot_at(c, "domain-credentials-formats", Some("#fmt-acmesh")).await;
    c.refresh().await.unwrap();
    wait_xpath(c, "//h1[text()='Credentials already shown']", "a reload finds the credentials gone").await;
    assert!(!c.source().await.unwrap().contains(&password), "the password is not shown twice");
    shot(c, "domain-credentials-shown-once").await;

    // The CNAME check reports "missing" (the resolver has no such name), with the fix.
    c.goto(&format!("{}/registrations/{sub}", env.portal)).await.unwrap();
    c.find(Locator::LinkText("Check the CNAME now")).await.unwrap().click().await.unwrap();
    let check = wait_css(c, "#check-result").await;
    assert_eq!(check.attr("data-status").await.unwrap().as_deref(), Some("missing"));
    let text = check.text().await.unwrap();
    assert!(text.contains("CNAME missing") && text.contains("Create this record"), "{text}");
    // CAA records for the customer's CA account.
    fill(c, "#account_uri", "https://acme-v02.api.letsencrypt.org/acme/acct/123456789").await;
    c.find(Locator::Css("form[method=get] button[type=submit]")).await.unwrap().click().await.unwrap();
    let caa = wait_css(c, "#caa").await;
    assert!(caa.text().await.unwrap().contains("issuewild \"letsencrypt.org; accounturi="));
    c.goto(&format!("{}/registrations/{sub}?check=1&account_uri=https%3A%2F%2Facme-v02.api.letsencrypt.org%2Facme%2Facct%2F123456789", env.portal)).await.unwrap();
    wait_css(c, "#check-result").await;
    shot_at(c, "registration-check", Some("#check-result")).await;

    // Usage and audit pages.
    c.goto(&format!("{}/usage", env.portal)).await.unwrap();
    wait_css(c, "svg.chart").await;
    shot(c, "usage").await;
    c.goto(&format!("{}/audit", env.portal)).await.unwrap();
    let source = c.source().await.unwrap();
    assert!(source.contains("License key created") && source.contains("Registration created"));
    shot(c, "audit").await;

    // Delete the registration (confirming the dialog).
    c.goto(&format!("{}/registrations/{sub}", env.portal)).await.unwrap();
    c.find(Locator::Css("#delete-registration")).await.unwrap().click().await.unwrap();
    c.accept_alert().await.unwrap();
    wait_xpath(c, "//*[contains(text(), 'Registration deleted')]", "deletion notice").await;
    let source = c.source().await.unwrap();
    assert!(!source.contains(&format!("cname-{sub}")), "the registration is gone");
    let subdomain: certdns_core::Subdomain = sub.parse().unwrap();
    let snapshot = env.distribution.snapshot().await.unwrap();
    assert!(!snapshot.states.iter().any(|s| s.subdomain == subdomain), "DNS stopped answering");

    // An API token: made from the navigation, shown once, works, revoked.
    c.find(Locator::LinkText("API tokens")).await.unwrap().click().await.unwrap();
    wait_css(c, "#token-name").await;
    fill(c, "#token-name", "terraform").await;
    c.find(Locator::Css("input[name=scope][value=read-write]")).await.unwrap().click().await.unwrap();
    shot(c, "tokens-new").await;
    c.find(Locator::Css("form[action='/tokens'] button[type=submit]")).await.unwrap().click().await.unwrap();
    let token = wait_css(c, "#token").await.prop("value").await.unwrap().unwrap();
    assert!(token.starts_with("cdpat_"), "{token}");
    shot(c, "token-created").await;
    c.refresh().await.unwrap();
    wait_xpath(c, "//h1[text()='Token already shown']", "a reload finds the token gone").await;
    let api = format!("{}/api/v1/registrations", env.portal);
    let r = reqwest::Client::new().get(&api).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    c.goto(&format!("{}/tokens", env.portal)).await.unwrap();
    assert_eq!(c.source().await.unwrap().matches("<td data-label=\"Name\">terraform").count(), 1);
    shot(c, "tokens").await;
    c.find(Locator::Css("form[action$='/revoke'] button")).await.unwrap().click().await.unwrap();
    c.accept_alert().await.unwrap();
    wait_xpath(c, "//*[contains(text(), 'Token revoked')]", "revocation notice").await;
    let r = reqwest::Client::new().get(&api).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // Account page, and the sign-in page after signing out.
    c.goto(&format!("{}/account", env.portal)).await.unwrap();
    shot(c, "account").await;
    c.find(Locator::Css("form[action='/logout'] button")).await.unwrap().click().await.unwrap();
    wait_css(c, "form[action='/login']").await;
    shot(c, "login").await;

    // An operator signs in and sees the account list.
    let operator = certdns_core::Account {
        id: certdns_core::AccountId::generate(),
        email: certdns_core::Email::parse("ops@example.com").unwrap(),
        role: certdns_core::AccountRole::Operator,
        status: certdns_core::AccountStatus::Active,
        password_hash: Some(certdns_core::password::hash(PASSWORD).unwrap()),
        created_at: certdns_core::now(),
    };
    env.store.core().create_account(&operator).await.unwrap();
    fill(c, "#email", "ops@example.com").await;
    fill(c, "#password", PASSWORD).await;
    c.find(Locator::Css("form[action='/login'] button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_css(c, "#key-name").await;
    c.find(Locator::LinkText("Accounts")).await.unwrap().click().await.unwrap();
    wait_css(c, "form[role=search]").await;
    assert!(c.source().await.unwrap().contains("browser@example.com"));
    shot(c, "admin-accounts").await;
    // Suspending (with its reason) is on the account's page: browser/public.rs.
}

/// With the default `secure_cookies = true` (`__Host-` cookies, `Secure`), a
/// browser on plain-HTTP loopback still keeps the session: loopback counts as a
/// secure context, so the single binary's default works on localhost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_cookies_work_on_loopback() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = start_with(Backend::Embedded, |c| c.secure_cookies = true).await;
    let driver = start_driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/signup", env.portal)).await.unwrap();
    fill(&c, "#email", "secure@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    fill(&c, "#password_confirm", PASSWORD).await;
    c.find(Locator::Css("form[action='/signup'] button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_css(&c, "h1").await;
    confirm_by_mail(&env, &c).await;
    wait_css(&c, "#key-name").await;
    c.goto(&format!("{}/account", env.portal)).await.unwrap();
    let source = c.source().await.unwrap();
    let _ = c.close().await;
    assert!(source.contains("Change password"), "still signed in with Secure cookies on loopback");
}

/// With the system in dark mode the portal is dark too, and still passes the
/// layout checks at both sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dark_mode_follows_the_system() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = start(Backend::Embedded).await;
    let driver = start_driver().await;
    let c = browser_with(&driver, &["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]).await;
    c.goto(&format!("{}/login", env.portal)).await.unwrap();
    wait_css(&c, "form[action='/login']").await;
    let dark = c.execute("return matchMedia('(prefers-color-scheme: dark)').matches", vec![]).await.unwrap();
    assert_eq!(dark, serde_json::json!(true), "the browser reports dark mode");
    let background = c.execute("return getComputedStyle(document.body).backgroundColor", vec![]).await.unwrap();
    assert_eq!(background, serde_json::json!("rgb(13, 17, 23)"), "the page is dark");
    shot(&c, "login-dark").await;
    let _ = c.close().await;
}

/// With billing on: the public pricing page, then the Billing page of a new
/// account (free plan, usage against each limit, the plans to choose), and
/// choosing a plan leaves for Stripe Checkout (the fake's URL); both pages pass
/// the layout checks at both sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_and_pricing_pages_in_a_browser() {
    let (env, _stripe) = crate::stripe_events::start_billing(Backend::Embedded, 14, 14).await;
    let driver = start_driver().await;
    let c = browser(&driver).await;
    c.goto(&format!("{}/pricing", env.portal)).await.unwrap();
    wait_xpath(&c, "//h1[text()='Pricing']", "the pricing page").await;
    let source = c.source().await.unwrap();
    assert!(source.contains("unlimited registrations") && source.contains("4 updates per name per day"), "{source}");
    shot(&c, "pricing").await;

    c.goto(&format!("{}/signup", env.portal)).await.unwrap();
    fill(&c, "#email", "billing@example.com").await;
    fill(&c, "#password", PASSWORD).await;
    fill(&c, "#password_confirm", PASSWORD).await;
    c.find(Locator::Css("form[action='/signup'] button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_xpath(&c, "//h1[text()='Check your inbox']", "the sign-up confirmation page").await;
    confirm_by_mail(&env, &c).await;
    wait_css(&c, "#key-name").await;
    c.find(Locator::Css("nav a[href='/billing']")).await.unwrap().click().await.unwrap();
    wait_css(&c, "#current-plan").await;
    let source = c.source().await.unwrap();
    assert!(source.contains("0 of 2 registrations") && source.contains("0 of 1 license key<"), "{source}");
    assert!(source.contains("0 of 4 updates today per name") && source.contains("Up to 2 TXT values"), "{source}");
    shot(&c, "billing").await;

    // Choosing a plan posts to /billing/checkout, which redirects to Stripe's
    // hosted page (followed in the HTTP tests: the browser has no network here).
    let choose = c.find(Locator::Css("form[action='/billing/checkout'] input[value='pro'] ~ button")).await.unwrap();
    assert_eq!(choose.text().await.unwrap(), "Choose Pro");
    let _ = c.close().await;
}
