//! The pages for everyone over HTTP: the landing page, every doc rendered from
//! docs/ (links between docs rewritten, raw HTML never passed through, an
//! unknown page a 404), and the API reference listing every operation of the
//! API's own `/openapi.json`.

use certdns_testkit::Backend;

use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    landing_page_for_visitors_keys_for_customers,
    every_doc_renders_and_links_between_docs_work,
    the_api_reference_lists_every_operation_of_openapi_json,
);

/// Every `href="…"` on a page.
fn hrefs(page: &str) -> Vec<String> {
    page.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()).map(str::to_owned).collect()
}

async fn landing_page_for_visitors_keys_for_customers(backend: Backend) {
    let env = start(backend).await;
    let c = client();
    let (status, page, _) = get(&c, &format!("{}/", env.portal)).await;
    assert_eq!(status, 200);
    for text in ["How delegation works", "Safer than a DNS provider", "_acme-challenge.www.example.com.", ZONE] {
        assert!(page.contains(text), "{text}: {page}");
    }
    let links = hrefs(&page);
    for link in [
        "/signup",
        "/login",
        "/docs/getting-started",
        "/docs/clients/certbot",
        "/docs/clients/certify-the-web",
        "/status",
    ] {
        assert!(links.iter().any(|l| l == link), "{link} in {links:?}");
    }
    // Pricing only exists with billing on.
    assert!(!links.iter().any(|l| l == "/pricing"));
    let user = signup(&env, "home@example.com").await;
    let (status, _, location) = get(&user, &format!("{}/", env.portal)).await;
    assert_eq!((status, location.as_deref()), (303, Some("/keys")), "signed in: as before");
}

async fn every_doc_renders_and_links_between_docs_work(backend: Backend) {
    let env = start(backend).await;
    let c = client();
    let (status, index, _) = get(&c, &format!("{}/docs", env.portal)).await;
    assert_eq!(status, 200);
    let mut docs: Vec<String> = hrefs(&index).into_iter().filter(|h| h.starts_with("/docs/")).collect();
    docs.sort();
    docs.dedup();
    // Every Markdown file under docs/ is in the index.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let mut files = 0;
    for dir in [root.clone(), root.join("clients")] {
        files += std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
            .count();
    }
    assert_eq!(docs.len(), files, "one page per doc: {docs:?}");
    for must in ["/docs/getting-started", "/docs/troubleshooting", "/docs/clients", "/docs/clients/win-acme"] {
        assert!(docs.iter().any(|d| d == must), "{must}");
    }
    let mut linked = Vec::new();
    for doc in &docs {
        let (status, page, _) = get(&c, &format!("{}{doc}", env.portal)).await;
        assert_eq!(status, 200, "{doc}");
        assert!(page.contains("<h1 id="), "{doc} has its title");
        assert!(page.contains(&format!("href=\"{doc}\" aria-current=\"page\"")), "{doc} is marked in the navigation");
        for href in hrefs(&page) {
            assert!(!href.ends_with(".md") && !href.contains(".md#"), "{doc}: a link left as a file: {href}");
            if let Some(target) = href.strip_prefix("/docs/") {
                linked.push(format!("/docs/{}", target.split('#').next().unwrap()));
            }
        }
        assert!(!page.contains("<script>") && !page.contains("<uuid>"), "{doc}: raw HTML is shown as text");
    }
    // Links between docs lead to pages that exist.
    linked.sort();
    linked.dedup();
    for target in linked {
        let (status, _, _) = get(&c, &format!("{}{target}", env.portal)).await;
        assert_eq!(status, 200, "a link to {target}");
    }
    // The rewriting, on pages known to link elsewhere in docs/.
    let (_, clients, _) = get(&c, &format!("{}/docs/clients", env.portal)).await;
    assert!(clients.contains("href=\"/docs/clients/lego\"") && clients.contains("href=\"/docs/security\""));
    let (_, acme_sh, _) = get(&c, &format!("{}/docs/clients/acme.sh", env.portal)).await;
    assert!(acme_sh.contains("href=\"/docs/clients/lego#httpreq-provider-the-acmeproxy-dialect\""), "{acme_sh}");
    let (_, lego, _) = get(&c, &format!("{}/docs/clients/lego", env.portal)).await;
    assert!(lego.contains("id=\"httpreq-provider-the-acmeproxy-dialect\""), "the anchor exists");
    // The troubleshooting page explains the errors customers meet.
    let (_, help, _) = get(&c, &format!("{}/docs/troubleshooting", env.portal)).await;
    for text in [
        "NXDOMAIN looking up TXT for _acme-challenge",
        "SERVFAIL",
        "shadowed by a TXT",
        "allow-from",
        "registrations_limit_reached",
        "forbidden",
    ] {
        assert!(help.contains(text), "troubleshooting covers {text}");
    }
    // Code blocks are styled and copyable; `<uuid>` in prose stays text.
    let (_, started, _) = get(&c, &format!("{}/docs/getting-started", env.portal)).await;
    assert!(
        started.contains("<div class=\"copy-block\"><button type=\"button\"")
            && started.contains("class=\"language-sh\"")
    );
    // Unknown pages, and attempts to leave docs/, are the 404 page.
    for path in [
        "/docs/nope",
        "/docs/../Cargo.toml",
        "/docs/%2e%2e/%2e%2e/etc/passwd",
        "/docs/getting-started.md",
        "/docs/clients/nope",
    ] {
        let (status, page, _) = get(&c, &format!("{}{path}", env.portal)).await;
        assert_eq!(status, 404, "{path}");
        assert!(page.contains("no such page in the documentation") || page.contains("Not found"), "{path}: {page}");
    }
}

async fn the_api_reference_lists_every_operation_of_openapi_json(backend: Backend) {
    let env = start(backend).await;
    let document: serde_json::Value =
        reqwest::get(format!("{}/openapi.json", env.api)).await.unwrap().json().await.unwrap();
    let (status, page, _) = get(&client(), &format!("{}/api-reference", env.portal)).await;
    assert_eq!(status, 200);
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            operations += 1;
            let id = op["operationId"].as_str().unwrap();
            let words: Vec<&str> = path.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
            let heading = format!("id=\"{method}-{}\"", words.join("-").to_lowercase());
            assert!(page.contains(&heading), "{method} {path} ({id}) is on the page");
            assert!(page.contains(&format!("<code>{id}</code>")), "{method} {path}: its operation id");
            let title = format!("{}</span> <code>{path}</code></h2>", method.to_uppercase());
            assert!(page.contains(&title), "{method} {path} has its heading");
            // Each documented status appears in the operation's section.
            let section = page.split(&heading).nth(1).unwrap().split("<section").next().unwrap();
            assert_eq!(page.matches(&heading).count(), 1, "{heading} is unique");
            for status in op["responses"].as_object().unwrap().keys() {
                assert!(section.contains(&format!("<code>{status}</code>")), "{method} {path}: {status}");
            }
        }
    }
    assert!(operations >= 20, "both APIs: {operations}");
    // Request bodies, parameters and schemas are spelt out.
    for text in ["Request body", "Parameters", "id=\"schema-ErrorBody\"", "X-Api-User", "access_token"] {
        assert!(page.contains(text), "{text}");
    }
}
