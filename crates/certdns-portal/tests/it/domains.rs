//! A registration's domain on its page: set, change, clear; bad input refused
//! with the reason and nothing changed; a domain another registration holds
//! moves only when the owner confirms; IDNs shown both ways; the wall between
//! accounts.

use certdns_core::{AccountId, AuditKind, Domain, Registration, Subdomain};
use certdns_testkit::Backend;
use hickory_proto::rr::RecordType;

use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    domain_set_change_and_clear,
    bad_domain_input_changes_nothing,
    domain_conflict_moves_only_after_confirmation,
    idn_domain_is_shown_both_ways,
    another_account_cannot_set_or_see_a_domain,
);

/// Registers through the API with no subject, as certbot's hook and lego do.
pub async fn register_bare(base_url: &str) -> serde_json::Value {
    let r = reqwest::Client::new().post(format!("{base_url}/register")).body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    r.json().await.unwrap()
}

pub async fn account_id(env: &Env, email: &str) -> AccountId {
    env.store.core().account_by_email(email).await.unwrap().unwrap().id
}

pub async fn stored(env: &Env, account: AccountId, sub: &str) -> Registration {
    let subdomain: Subdomain = sub.parse().unwrap();
    env.store.core().registration_by_subdomain(account, subdomain).await.unwrap().unwrap()
}

pub async fn events_of(env: &Env, account: AccountId, kind: AuditKind) -> Vec<serde_json::Value> {
    let events = env.store.core().audit_events(account, None, 200).await.unwrap();
    events.into_iter().filter(|e| e.kind == kind).map(|e| e.detail).collect()
}

/// The page as the browser shows its text: askama's entities decoded.
pub fn unescaped(html: &str) -> String {
    html.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

async fn set_domain(
    env: &Env,
    c: &reqwest::Client,
    sub: &str,
    fields: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let t = token(env, c).await;
    let mut form = vec![("csrf", t.as_str())];
    form.extend_from_slice(fields);
    post(c, &format!("{}/registrations/{sub}/domain", env.portal), &form).await
}

async fn domain_set_change_and_clear(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "dora@example.com").await;
    let account = account_id(&env, "dora@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    let reg = register_bare(&url).await;
    let sub = reg["subdomain"].as_str().unwrap().to_owned();
    let fulldomain = reg["fulldomain"].as_str().unwrap().to_owned();

    // Without a domain: flagged, no placeholder CNAME name, the CAA form waits.
    let (_, list, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(list.contains("(no domain)") && list.contains(&format!("id=\"needs-{sub}\"")), "{list}");
    assert!(!list.contains("_acme-challenge"), "no placeholder name in the list");
    let (status, page, _) = get(&c, &format!("{}/registrations/{sub}?check=1", env.portal)).await;
    assert_eq!(status, 200);
    assert!(page.contains("needs a domain") && page.contains("id=\"cname-waits\""));
    assert!(!page.contains("id=\"cname-name\"") && !page.contains("IN CNAME"), "no placeholder record");
    assert!(!page.contains("&lt;your domain&gt;") && !page.contains("_acme-challenge.&lt;"), "no placeholder name");
    assert!(page.contains("id=\"caa-waits\"") && !page.contains("id=\"account_uri\""), "the CAA form waits");
    assert!(page.contains("No domain to check"));
    let q = "account_uri=https%3A%2F%2Facme-v02.api.letsencrypt.org%2Facme%2Facct%2F1";
    let (_, page, _) = get(&c, &format!("{}/registrations/{sub}?{q}", env.portal)).await;
    assert!(!page.contains("CAA 0 issue"), "no CAA records for a placeholder domain");

    // Set it.
    let (status, body, location) = set_domain(&env, &c, &sub, &[("domain", "WWW.Example.com.")]).await;
    let want = format!("/registrations/{sub}?notice=domain_set");
    assert_eq!((status, location.as_deref()), (303, Some(want.as_str())), "{body}");
    assert_eq!(stored(&env, account, &sub).await.domain.unwrap().as_str(), "www.example.com");
    let (_, page, _) = get(&c, &format!("{}{want}", env.portal)).await;
    assert!(page.contains("Domain saved"));
    assert!(page.contains("<h1>www.example.com</h1>"));
    assert!(page.contains(">_acme-challenge.www.example.com.</code>"), "the CNAME name from the domain");
    assert!(page.contains(">_acme-challenge.www</code>") && page.contains("relative to the zone example.com"));
    assert!(page.contains(&format!("_acme-challenge.www.example.com. 3600 IN CNAME {fulldomain}.")));
    let (_, list, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(list.contains(">www.example.com</a>") && !list.contains(&format!("id=\"needs-{sub}\"")));

    // Change it: the check and the CAA records follow.
    let (status, _, _) = set_domain(&env, &c, &sub, &[("domain", "shop.example.com")]).await;
    assert_eq!(status, 303);
    assert_eq!(stored(&env, account, &sub).await.domain.unwrap().as_str(), "shop.example.com");
    env.set_dns("_acme-challenge.shop.example.com", RecordType::CNAME, vec![cname(&fulldomain)]);
    let (_, page, _) = get(&c, &format!("{}/registrations/{sub}?check=1&{q}", env.portal)).await;
    assert!(page.contains("data-status=\"correct\""), "checked at the new domain");
    assert!(unescaped(&page).contains("shop.example.com. CAA 0 issue \"letsencrypt.org;"), "CAA for the domain");

    // Clear it.
    let (status, _, location) = set_domain(&env, &c, &sub, &[("action", "clear")]).await;
    let want = format!("/registrations/{sub}?notice=domain_cleared");
    assert_eq!((status, location.as_deref()), (303, Some(want.as_str())));
    assert_eq!(stored(&env, account, &sub).await.domain, None);
    let (_, page, _) = get(&c, &format!("{}{want}", env.portal)).await;
    assert!(page.contains("Domain removed") && page.contains("id=\"cname-waits\""));

    let events = events_of(&env, account, AuditKind::RegistrationDomainSet).await;
    assert_eq!(events.len(), 3, "{events:?}");
    let domains: Vec<_> = events.iter().map(|e| e["domain"].clone()).collect();
    assert!(domains.contains(&serde_json::json!("www.example.com")));
    assert!(domains.contains(&serde_json::json!("shop.example.com")));
    assert!(domains.contains(&serde_json::Value::Null));
    assert!(events.iter().all(|e| e["subdomain"] == sub.as_str() && e["via"] == "portal"));
}

async fn bad_domain_input_changes_nothing(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "bart@example.com").await;
    let account = account_id(&env, "bart@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    let (_, reg) = register(&url, "keep.example.com").await;
    let sub = reg["subdomain"].as_str().unwrap().to_owned();
    let before = events_of(&env, account, AuditKind::RegistrationDomainSet).await.len();
    let too_long = format!("{}.com", vec!["a".repeat(50); 5].join("."));
    for (input, reason) in [
        ("a.*.example.com", "may hold a wildcard"),
        ("www.exa\u{200b}mple.com", "invisible formatting character"),
        ("www.\u{7}example.com", "control or invisible"),
        ("evil\u{202e}moc.example.com", "control or invisible"),
        // UTS 46 may refuse the length itself ("not a valid domain name").
        (too_long.as_str(), "valid domain name|longer than 253 characters"),
        ("localhost", "at least two labels"),
        ("under_score.example.com", "not a valid domain name"),
        ("   ", "a domain name is required"),
    ] {
        let (status, page, _) = set_domain(&env, &c, &sub, &[("domain", input)]).await;
        assert_eq!(status, 422, "{input:?}");
        assert!(page.contains("id=\"domain-error\""), "{input:?}");
        assert!(reason.split('|').any(|r| page.contains(r)), "{input:?}: {reason}");
        assert!(page.contains("aria-invalid=\"true\""));
        assert_eq!(stored(&env, account, &sub).await.domain.unwrap().as_str(), "keep.example.com", "{input:?}");
    }
    // `*.example.com` is not refused: it binds to example.com.
    let (status, _, _) = set_domain(&env, &c, &sub, &[("domain", "*.keep.example.com")]).await;
    assert_eq!(status, 303);
    assert_eq!(stored(&env, account, &sub).await.domain.unwrap().as_str(), "keep.example.com");
    assert_eq!(events_of(&env, account, AuditKind::RegistrationDomainSet).await.len(), before, "nothing audited");
    // A confirmed move of a bad domain is refused the same way.
    let (status, _, _) = set_domain(&env, &c, &sub, &[("action", "move"), ("domain", "a.*.b.com")]).await;
    assert_eq!(status, 422);
    assert!(stored(&env, account, &sub).await.domain.is_some());
}

async fn domain_conflict_moves_only_after_confirmation(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "mo@example.com").await;
    let account = account_id(&env, "mo@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    // The API binds the subject to the first registration.
    let (_, first) = register(&url, "www.example.com").await;
    let first_sub = first["subdomain"].as_str().unwrap().to_owned();
    let second = register_bare(&url).await;
    let second_sub = second["subdomain"].as_str().unwrap().to_owned();
    assert_eq!(stored(&env, account, &first_sub).await.domain.unwrap().as_str(), "www.example.com");

    let (status, page, _) = set_domain(&env, &c, &second_sub, &[("domain", "www.example.com")]).await;
    assert_eq!(status, 409);
    assert!(page.contains("id=\"domain-conflict\"") && page.contains("is the domain of another registration"));
    assert!(page.contains(&format!("href=\"/registrations/{first_sub}\"")), "names the holder");
    assert!(page.contains(first["fulldomain"].as_str().unwrap()));
    assert!(page.contains("Move it here") && page.contains("Nothing was changed"));
    assert_eq!(stored(&env, account, &first_sub).await.domain.unwrap().as_str(), "www.example.com");
    assert_eq!(stored(&env, account, &second_sub).await.domain, None);
    assert!(events_of(&env, account, AuditKind::RegistrationDomainSet).await.is_empty());

    // The confirmation moves it, in one step.
    let (status, _, location) =
        set_domain(&env, &c, &second_sub, &[("action", "move"), ("domain", "www.example.com")]).await;
    let want = format!("/registrations/{second_sub}?notice=domain_moved");
    assert_eq!((status, location.as_deref()), (303, Some(want.as_str())));
    assert_eq!(stored(&env, account, &second_sub).await.domain.unwrap().as_str(), "www.example.com");
    assert_eq!(stored(&env, account, &first_sub).await.domain, None);
    let (_, page, _) = get(&c, &format!("{}{want}", env.portal)).await;
    assert!(page.contains("Domain moved here"));
    let events = events_of(&env, account, AuditKind::RegistrationDomainSet).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["moved_from"], first_sub.as_str());
    assert_eq!(events[0]["subdomain"], second_sub.as_str());
    let (_, list, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(list.contains(&format!("id=\"needs-{first_sub}\"")), "the old holder needs a domain now");
}

async fn idn_domain_is_shown_both_ways(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "ida@example.com").await;
    let account = account_id(&env, "ida@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    let sub = register_bare(&url).await["subdomain"].as_str().unwrap().to_owned();
    let (status, _, _) = set_domain(&env, &c, &sub, &[("domain", "www.Bücher.de")]).await;
    assert_eq!(status, 303);
    let domain = stored(&env, account, &sub).await.domain.unwrap();
    assert_eq!(domain, Domain::parse("www.xn--bcher-kva.de").unwrap());
    let (_, page, _) = get(&c, &format!("{}/registrations/{sub}", env.portal)).await;
    assert!(page.contains("<h1>www.bücher.de</h1>"), "the U-label as the title");
    assert!(page.contains("<code id=\"domain-alabel\">www.xn--bcher-kva.de</code>"), "and the A-label");
    assert!(page.contains(">_acme-challenge.www.xn--bcher-kva.de.</code>"), "DNS names use the A-label");
    assert!(page.contains("relative to the zone xn--bcher-kva.de"));
    assert!(page.contains("value=\"www.bücher.de\""), "the form shows what people read");
    let (_, list, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(list.contains(">www.bücher.de</a>") && list.contains("www.xn--bcher-kva.de"));
    // Typing the A-label is the same domain: nothing to change.
    let (status, _, location) = set_domain(&env, &c, &sub, &[("domain", "www.xn--bcher-kva.de")]).await;
    assert_eq!((status, location), (303, Some(format!("/registrations/{sub}?notice=domain_set"))));
    assert_eq!(events_of(&env, account, AuditKind::RegistrationDomainSet).await.len(), 1);
}

async fn another_account_cannot_set_or_see_a_domain(backend: Backend) {
    let env = start(backend).await;
    let a = signup(&env, "ann@example.com").await;
    let b = signup(&env, "ben@example.com").await;
    let account_a = account_id(&env, "ann@example.com").await;
    let (key_a, url_a) = create_key(&env, &a, "ann-key").await;
    let (_, reg) = register(&url_a, "private.example.com").await;
    let sub = reg["subdomain"].as_str().unwrap().to_owned();

    let tb = token(&env, &b).await;
    let (status, page, _) = get(&b, &format!("{}/registrations/{sub}", env.portal)).await;
    assert_eq!(status, 404);
    assert!(!page.contains("private.example.com"));
    for fields in [
        vec![("csrf", tb.as_str()), ("domain", "mine.example.com")],
        vec![("csrf", tb.as_str()), ("action", "move"), ("domain", "mine.example.com")],
        vec![("csrf", tb.as_str()), ("action", "clear")],
    ] {
        let (status, page, _) = post(&b, &format!("{}/registrations/{sub}/domain", env.portal), &fields).await;
        assert_eq!(status, 404, "{fields:?}");
        assert!(!page.contains("private.example.com"));
    }
    assert_eq!(stored(&env, account_a, &sub).await.domain.unwrap().as_str(), "private.example.com");
    let (status, _, _) =
        post(&b, &format!("{}/keys/{key_a}/storage", env.portal), &[("csrf", &tb), ("to", "on")]).await;
    assert_eq!(status, 404, "another account's key");
    assert!(!env.store.core().license_key(&key_a.parse().unwrap()).await.unwrap().unwrap().storage_access);

    // Domains are unique per account: B may bind the same name to its own
    // registration, and learns nothing about A's.
    let (_, url_b) = create_key(&env, &b, "ben-key").await;
    let sub_b = register_bare(&url_b).await["subdomain"].as_str().unwrap().to_owned();
    let (status, page, _) = set_domain(&env, &b, &sub_b, &[("domain", "private.example.com")]).await;
    assert_eq!(status, 303, "{page}");
    // A's own page: B's registration is nowhere.
    let (_, page, _) = get(&a, &format!("{}/registrations", env.portal)).await;
    assert!(!page.contains(&sub_b));
    // Adding a domain with A's key from B's account is refused, nothing made.
    let tb = token(&env, &b).await;
    let form = [("csrf", tb.as_str()), ("key", key_a.as_str()), ("domain", "other.example.com")];
    let (status, page, _) = post(&b, &format!("{}/registrations/new", env.portal), &form).await;
    assert_eq!(status, 422);
    assert!(page.contains("Choose one of your active license keys") && !page.contains("ann-key"));
    assert_eq!(env.store.core().list_registrations(account_a).await.unwrap().len(), 1);
}
