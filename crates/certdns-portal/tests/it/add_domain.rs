//! "Add a domain": a registration made in the portal whose credentials are
//! shown once, in each client's format, and work at the API; duplicates and bad
//! input refused. A key's storage access: switched, audited, and what the API
//! then allows.

use certdns_core::{AuditKind, Subdomain};
use certdns_testkit::Backend;

use crate::domains::{account_id, events_of, stored, unescaped};
use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    added_domain_shows_credentials_once_and_they_work,
    add_domain_refuses_duplicates_and_bad_input,
    storage_access_switch_is_audited_and_enforced,
);

/// The text of the element with `id` on `page` (`<code id="…">text</code>`).
fn text_of(page: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no #{id} on the page")) + marker.len();
    let end = page[start..].find('<').unwrap() + start;
    page[start..end].to_owned()
}

async fn add(env: &Env, c: &reqwest::Client, key: &str, domain: &str) -> (u16, String, Option<String>) {
    let (status, page, _) = get(c, &format!("{}/registrations/new", env.portal)).await;
    assert_eq!(status, 200);
    let t = csrf(&page);
    post(c, &format!("{}/registrations/new", env.portal), &[("csrf", &t), ("key", key), ("domain", domain)]).await
}

async fn added_domain_shows_credentials_once_and_they_work(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "ada@example.com").await;
    let account = account_id(&env, "ada@example.com").await;
    let (key, _) = create_key(&env, &c, "web servers").await;
    let (_, list, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(list.contains("href=\"/registrations/new\""), "the list links to Add a domain");
    let (_, form, _) = get(&c, &format!("{}/registrations/new", env.portal)).await;
    assert!(form.contains(&format!("<option value=\"{key}\" selected>web servers ({key})</option>")), "{form}");

    let (status, body, location) = add(&env, &c, &key, "*.www.Example.com").await;
    assert_eq!((status, location.as_deref()), (303, Some("/registrations/created")), "{body}");
    let (status, page, _) = get(&c, &format!("{}/registrations/created", env.portal)).await;
    assert_eq!(status, 200);
    let username = text_of(&page, "cred-username");
    let password = text_of(&page, "cred-password");
    let sub = text_of(&page, "cred-subdomain");
    let fulldomain = format!("{sub}.{ZONE}");
    let text = unescaped(&page);
    // The acme-dns storage file, exactly as clients read it.
    let start = text.find("<pre tabindex=\"0\" id=\"fmt-json\"><code>").unwrap()
        + "<pre tabindex=\"0\" id=\"fmt-json\"><code>".len();
    let json: serde_json::Value = serde_json::from_str(&text[start..start + text[start..].find("</code>").unwrap()])
        .expect("the storage file is JSON");
    let block = &text[start..start + text[start..].find("</code>").unwrap()];
    let at = |field: &str| block.find(&format!("\"{field}\"")).unwrap();
    assert!(at("username") < at("password") && at("password") < at("fulldomain"), "acme-dns's field order");
    assert!(at("fulldomain") < at("subdomain") && at("subdomain") < at("allowfrom"), "acme-dns's field order");
    assert_eq!(
        json,
        serde_json::json!({ "www.example.com": {
            "username": username, "password": password, "fulldomain": fulldomain, "subdomain": sub, "allowfrom": [],
        }})
    );
    for want in [
        format!("export ACMEDNS_BASE_URL=\"{}\"", env.api),
        format!("export ACMEDNS_USERNAME=\"{username}\""),
        format!("export ACMEDNS_PASSWORD=\"{password}\""),
        format!("export ACMEDNS_SUBDOMAIN=\"{sub}\""),
        format!("ACMEServer = '{}'", env.api.trim_start_matches("http://")),
        "HTTP = $true".to_owned(),
        format!(
            "'_acme-challenge.www.example.com' = @(\n            '{sub}',\n            '{username}',\n            \
             '{password}',\n            '{fulldomain}'\n        )"
        ),
        format!("<dt>API URL</dt><dd><code>{}</code></dd>", env.api),
        format!("<dt>Subdomain</dt><dd><code>{sub}</code></dd>"),
        // The CNAME as separate fields, and the check.
        "<code id=\"cname-name\">_acme-challenge.www.example.com.</code>".to_owned(),
        format!("<code id=\"cname-target\">{fulldomain}.</code>"),
        "<dt>Type</dt><dd><code>CNAME</code></dd>".to_owned(),
        format!("href=\"/registrations/{sub}?check=1\""),
        "/storage/www.example.com\" \\".to_owned(),
    ] {
        assert!(text.contains(&want), "{want}");
    }
    // Once: a reload shows it no more.
    let (status, again, _) = get(&c, &format!("{}/registrations/created", env.portal)).await;
    assert_eq!(status, 200);
    assert!(again.contains("Credentials already shown") && !again.contains(&password), "shown once");

    // Stored like an API registration, bound to the domain, audited.
    let reg = stored(&env, account, &sub).await;
    assert_eq!(reg.domain.as_ref().map(|d| d.as_str()), Some("www.example.com"));
    assert_eq!(reg.subject.as_deref(), Some("www.example.com"));
    assert_eq!(reg.license_key_id.as_ref().map(|k| k.as_str()), Some(key.as_str()));
    assert!(reg.allow_from.as_strings().next().is_none());
    assert!(reg.password_sealed.is_none());
    let created = events_of(&env, account, AuditKind::RegistrationCreated).await;
    assert_eq!(created.len(), 1);
    assert_eq!((created[0]["via"].as_str(), created[0]["domain"].as_str()), (Some("portal"), Some("www.example.com")));

    // The shown credentials work at the API; the TXT reaches the distribution.
    let txt = "c".repeat(43);
    let r = reqwest::Client::new()
        .post(format!("{}/update", env.api))
        .header("X-Api-User", &username)
        .header("X-Api-Key", &password)
        .json(&serde_json::json!({ "subdomain": sub, "txt": txt }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let subdomain: Subdomain = sub.parse().unwrap();
    let snapshot = env.distribution.snapshot().await.unwrap();
    let state = snapshot.states.iter().find(|s| s.subdomain == subdomain).expect("published");
    assert!(state.values.iter().any(|v| v.as_str() == txt), "the TXT is served");
    let (_, list, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(list.contains(">www.example.com</a>") && !list.contains(&format!("id=\"needs-{sub}\"")));
}

async fn add_domain_refuses_duplicates_and_bad_input(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "dup@example.com").await;
    let account = account_id(&env, "dup@example.com").await;
    // No key yet: the page says to create one first.
    let (_, page, _) = get(&c, &format!("{}/registrations/new", env.portal)).await;
    assert!(page.contains("id=\"no-keys\""));
    let (_, list, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(list.contains("id=\"add-domain\""), "the list links to Add a domain, which explains");
    let (key, url) = create_key(&env, &c, "k").await;
    let (_, existing) = register(&url, "www.example.com").await;
    let existing_sub = existing["subdomain"].as_str().unwrap();

    let (status, page, _) = add(&env, &c, &key, "WWW.example.com").await;
    assert_eq!(status, 409);
    assert!(page.contains("id=\"add-conflict\"") && page.contains("Nothing was created"));
    assert!(page.contains(&format!("href=\"/registrations/{existing_sub}\"")), "names the existing registration");
    assert!(page.contains(existing["fulldomain"].as_str().unwrap()));
    assert!(page.contains("value=\"WWW.example.com\""), "the form keeps what was typed");
    for (input, reason) in [
        ("a.*.example.com", "may hold a wildcard"),
        ("x\u{200b}y.example.com", "invisible"),
        ("localhost", "two labels"),
    ] {
        let (status, page, _) = add(&env, &c, &key, input).await;
        assert_eq!(status, 422, "{input:?}");
        assert!(page.contains("id=\"add-error\"") && page.contains(reason), "{input:?}");
    }
    let (status, page, _) = add(&env, &c, "not-a-key", "new.example.com").await;
    assert_eq!(status, 422);
    assert!(page.contains("Choose one of your active license keys"));
    // A revoked key is no choice either.
    let t = token(&env, &c).await;
    let (status, _, _) = post(&c, &format!("{}/keys/{key}/revoke", env.portal), &[("csrf", &t)]).await;
    assert_eq!(status, 303);
    let form = [("csrf", t.as_str()), ("key", key.as_str()), ("domain", "new.example.com")];
    let (status, _, _) = post(&c, &format!("{}/registrations/new", env.portal), &form).await;
    assert_eq!(status, 422);
    assert_eq!(env.store.core().list_registrations(account).await.unwrap().len(), 1, "nothing was created");
    // Nothing to reveal after a refusal.
    let (_, page, _) = get(&c, &format!("{}/registrations/created", env.portal)).await;
    assert!(page.contains("Credentials already shown"));
}

async fn storage_access_switch_is_audited_and_enforced(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "sam@example.com").await;
    let account = account_id(&env, "sam@example.com").await;
    let (key, url) = create_key(&env, &c, "lego hosts").await;
    let (_, page, _) = get(&c, &format!("{}/keys", env.portal)).await;
    assert!(page.contains("data-storage=\"off\"") && page.contains("id=\"storage-help\""));
    assert!(page.contains("update credential for all those names"), "the consequence is spelled out");
    let storage = |url: &str| {
        let url = format!("{url}/storage");
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(storage(&url).await, 403, "off by default");

    let t = token(&env, &c).await;
    let (status, _, location) =
        post(&c, &format!("{}/keys/{key}/storage", env.portal), &[("csrf", &t), ("to", "on")]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys?notice=storage_on")));
    assert!(env.store.core().license_key(&key.parse().unwrap()).await.unwrap().unwrap().storage_access);
    let (_, page, _) = get(&c, &format!("{}/keys?notice=storage_on", env.portal)).await;
    assert!(page.contains("data-storage=\"on\"") && page.contains("Can read the passwords of its 0 registration"));
    assert!(page.contains("Storage access on"));
    tokio::time::sleep(certdns_api::KEY_CACHE_TTL + std::time::Duration::from_millis(200)).await;
    assert_eq!(storage(&url).await, 200, "the API lets the key use the storage");

    // A domain added under a key with storage access: lego's HTTP storage gives
    // its credentials back at once (the portal sealed them with the API's key).
    let (status, _, _) = add(&env, &c, &key, "lego.example.com").await;
    assert_eq!(status, 303);
    let (_, page, _) = get(&c, &format!("{}/registrations/created", env.portal)).await;
    assert!(page.contains("id=\"storage-kept\""), "the page says lego finds it");
    let password = text_of(&page, "cred-password");
    let account_json: serde_json::Value =
        reqwest::get(format!("{url}/storage/lego.example.com")).await.unwrap().json().await.unwrap();
    assert_eq!(account_json["password"], password.as_str());

    let (status, _, location) =
        post(&c, &format!("{}/keys/{key}/storage", env.portal), &[("csrf", &t), ("to", "off")]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys?notice=storage_off")));
    assert!(!env.store.core().license_key(&key.parse().unwrap()).await.unwrap().unwrap().storage_access);
    // Anything else is no switch; without the CSRF token nothing happens.
    let (status, _, _) =
        post(&c, &format!("{}/keys/{key}/storage", env.portal), &[("csrf", &t), ("to", "maybe")]).await;
    assert_eq!(status, 404);
    let (status, _, _) = post(&c, &format!("{}/keys/{key}/storage", env.portal), &[("to", "on")]).await;
    assert_eq!(status, 403);
    assert!(!env.store.core().license_key(&key.parse().unwrap()).await.unwrap().unwrap().storage_access);

    let events = events_of(&env, account, AuditKind::LicenseKeyStorageAccess).await;
    let mut seen: Vec<_> = events.iter().map(|e| (e["key_id"].as_str().unwrap().to_owned(), e["on"].clone())).collect();
    seen.sort_by_key(|(_, on)| on.to_string());
    assert_eq!(seen, [(key.clone(), serde_json::json!(false)), (key.clone(), serde_json::json!(true))]);
}
