//! Registrations: delete (the DNS stops answering), the CNAME check in every
//! case, CAA records.

use certdns_core::Subdomain;
use certdns_testkit::Backend;
use hickory_proto::rr::RecordType;

use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    registration_delete_publishes_a_removal,
    cname_check_reports_every_case,
    caa_records_are_generated,
);

async fn registration_delete_publishes_a_removal(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "erin@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    let (_, reg) = register(&url, "mail.example.com").await;
    let sub = reg["subdomain"].as_str().unwrap().to_owned();
    let r = reqwest::Client::new()
        .post(format!("{}/update", env.api))
        .header("X-Api-User", reg["username"].as_str().unwrap())
        .header("X-Api-Key", reg["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": sub, "txt": "a".repeat(43) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let subdomain: Subdomain = sub.parse().unwrap();
    let snapshot = env.distribution.snapshot().await.unwrap();
    assert!(snapshot.states.iter().any(|s| s.subdomain == subdomain));

    let (status, page, _) = get(&c, &format!("{}/registrations/{sub}", env.portal)).await;
    assert_eq!(status, 200);
    let t = csrf(&page);
    let (status, _, location) = post(&c, &format!("{}/registrations/{sub}/delete", env.portal), &[("csrf", &t)]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/registrations?notice=deleted")));
    let snapshot = env.distribution.snapshot().await.unwrap();
    assert!(!snapshot.states.iter().any(|s| s.subdomain == subdomain), "DNS stops answering");
    let (_, page, _) = get(&c, &format!("{}/registrations?notice=deleted", env.portal)).await;
    assert!(!page.contains("mail.example.com"));
    assert!(page.contains("Registration deleted"));
    let (status, _, _) = get(&c, &format!("{}/registrations/{sub}", env.portal)).await;
    assert_eq!(status, 404);
}

async fn cname_check_reports_every_case(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "frank@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    let mut subs = Vec::new();
    for subject in [
        "ok.example.com",
        "missing.example.com",
        "wrong.example.com",
        "shadow.example.com",
        "*.wild.example.com",
        "big.example.com",
    ] {
        let (status, reg) = register(&url, subject).await;
        assert_eq!(status, 201, "{reg}");
        subs.push((reg["subdomain"].as_str().unwrap().to_owned(), reg["fulldomain"].as_str().unwrap().to_owned()));
    }
    env.set_dns("_acme-challenge.ok.example.com", RecordType::CNAME, vec![cname(&subs[0].1.to_uppercase())]);
    env.set_dns("_acme-challenge.wrong.example.com", RecordType::CNAME, vec![cname("old.acme-dns.example.net")]);
    env.set_dns("_acme-challenge.shadow.example.com", RecordType::TXT, vec![txt("leftover-token")]);
    env.set_dns("_acme-challenge.wild.example.com", RecordType::CNAME, vec![cname(&subs[4].1)]);
    // Truncated over UDP: only TCP gives the answer.
    env.set_dns("_acme-challenge.big.example.com", RecordType::CNAME, vec![cname(&subs[5].1)]);
    let expect = [
        ("correct", "CNAME present and correct"),
        ("missing", "Create this record in your DNS zone"),
        ("elsewhere", "old.acme-dns.example.net"),
        ("shadowed", "Delete the TXT record"),
        ("correct", "CNAME present and correct"),
        ("correct", "CNAME present and correct"),
    ];
    for ((sub, fulldomain), (code, text)) in subs.iter().zip(expect) {
        let (status, page, _) = get(&c, &format!("{}/registrations/{sub}?check=1", env.portal)).await;
        assert_eq!(status, 200);
        assert!(page.contains(&format!("data-status=\"{code}\"")), "{sub}: expected {code}");
        assert!(page.contains(text), "{sub}: {text}");
        if code == "missing" {
            assert!(page.contains(&format!("CNAME {fulldomain}.")), "the fix names the record");
        }
    }
}

async fn caa_records_are_generated(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "gina@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    let (_, reg) = register(&url, "shop.example.com").await;
    let sub = reg["subdomain"].as_str().unwrap();
    let acct = "https://acme-v02.api.letsencrypt.org/acme/acct/123456789";
    let page = c
        .get(format!("{}/registrations/{sub}", env.portal))
        .query(&[("account_uri", acct)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for tag in ["issue", "issuewild"] {
        let want = format!(
            "shop.example.com. CAA 0 {tag} &quot;letsencrypt.org; accounturi={acct}; validationmethods=dns-01&quot;"
        );
        assert!(page.contains(&want) || page.contains(&want.replace("&quot;", "&#34;")), "{tag} record in page");
    }
    let page = c
        .get(format!("{}/registrations/{sub}", env.portal))
        .query(&[("account_uri", "https://acme.example.org/acct/1")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("We do not know this CA"));
    let page = c
        .get(format!("{}/registrations/{sub}", env.portal))
        .query(&[("account_uri", "https://acme.example.org/acct/1"), ("ca", "example.org")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("CAA 0 issue"));
    let page = c
        .get(format!("{}/registrations/{sub}", env.portal))
        .query(&[("account_uri", "not a url")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Paste your ACME account URL"));
}
