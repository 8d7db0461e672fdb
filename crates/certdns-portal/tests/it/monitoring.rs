//! What the delegation monitor found, as the portal shows and tells it: a badge
//! per registration in the list, the last check and the recent changes on the
//! registration's page and in the account API, and one mail to the owner when
//! a working CNAME breaks.

use std::sync::Arc;

use certdns_core::AuditKind;
use certdns_monitor::{Monitor, MonitorConfig};
use certdns_testkit::Backend;
use hickory_proto::rr::RecordType;

use crate::domains::{account_id, events_of};
use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    the_monitor_s_findings_are_shown_and_mailed,
    first_steps_fill_themselves_in_from_what_happened,
);

/// The steps of the checklist on the home page: (title, done), or none.
async fn steps(env: &Env, c: &reqwest::Client) -> Vec<(String, bool)> {
    let (_, page, _) = get(c, &format!("{}/keys", env.portal)).await;
    let Some(start) = page.find("id=\"onboarding\"") else { return Vec::new() };
    let section = &page[start..start + page[start..].find("</section>").unwrap()];
    section
        .split("data-step-done=\"")
        .skip(1)
        .map(|s| {
            let done = s.starts_with("true");
            let title = s.split("<strong>").nth(1).unwrap().split("</strong>").next().unwrap().to_owned();
            (title, done)
        })
        .collect()
}

async fn first_steps_fill_themselves_in_from_what_happened(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "ada@example.com").await;
    let done = |s: &[(String, bool)]| s.iter().filter(|(_, d)| *d).count();
    let s = steps(&env, &c).await;
    assert_eq!((s.len(), done(&s)), (4, 0), "{s:?}");
    let (_, base_url) = create_key(&env, &c, "web").await;
    assert_eq!(done(&steps(&env, &c).await), 1);
    let (_, reg) = register(&base_url, "www.example.com").await;
    assert_eq!(done(&steps(&env, &c).await), 2);
    // Only the monitor finding the CNAME correct ticks the third step.
    let fulldomain = reg["fulldomain"].as_str().unwrap();
    env.set_dns("_acme-challenge.www.example.com", RecordType::CNAME, vec![cname(fulldomain)]);
    let config = MonitorConfig { resolver: env.resolver, zone: ZONE.into(), interval_secs: 3600, checks_per_second: 5 };
    let notifier = certdns_portal::alert_notifier(&Default::default(), env.store.core(), env.data_dir.path()).unwrap();
    Monitor::new(env.store.clone(), config, notifier).round(certdns_core::now().unix_timestamp()).await.unwrap();
    assert_eq!(done(&steps(&env, &c).await), 3);
    // The first TXT update: every step done, the checklist goes away.
    let r = reqwest::Client::new()
        .post(format!("{}/update", env.api))
        .header("X-Api-User", reg["username"].as_str().unwrap())
        .header("X-Api-Key", reg["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": reg["subdomain"], "txt": "d".repeat(43) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(steps(&env, &c).await.is_empty(), "all done: no checklist");
}

async fn the_monitor_s_findings_are_shown_and_mailed(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "ada@example.com").await;
    let account = account_id(&env, "ada@example.com").await;
    let (_, base_url) = create_key(&env, &c, "web").await;
    let (status, reg) = register(&base_url, "www.example.com").await;
    assert_eq!(status, 201);
    let sub = reg["subdomain"].as_str().unwrap().to_owned();
    let fulldomain = reg["fulldomain"].as_str().unwrap().to_owned();
    let (_, list, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(list.contains(&format!("id=\"delegation-{sub}\"")) && list.contains("CNAME not checked yet"), "{list}");

    let config = certdns_portal::PortalConfig {
        public_url: Some(env.portal.clone()),
        resolver: env.resolver,
        ..Default::default()
    };
    let notifier = certdns_portal::alert_notifier(&config, env.store.core(), env.data_dir.path()).unwrap();
    let monitor_config =
        MonitorConfig { resolver: env.resolver, zone: ZONE.into(), interval_secs: 3600, checks_per_second: 5 };
    let monitor = Monitor::new(env.store.clone(), monitor_config, Arc::clone(&notifier));
    env.set_dns("_acme-challenge.www.example.com", RecordType::CNAME, vec![cname(&fulldomain)]);
    let t0 = certdns_core::now().unix_timestamp();
    assert_eq!(monitor.round(t0).await.unwrap().checked, 1);
    let (_, list, _) = get(&c, &format!("{}/registrations", env.portal)).await;
    assert!(list.contains("data-delegation=\"correct\"") && list.contains("checked 20"), "{list}");

    // It breaks: the page says so, with the history; the owner gets one mail.
    env.set_dns("_acme-challenge.www.example.com", RecordType::CNAME, vec![]);
    assert_eq!(monitor.round(t0 + 4000).await.unwrap().alerts, 1);
    let (_, page, _) = get(&c, &format!("{}/registrations/{sub}", env.portal)).await;
    assert!(page.contains("id=\"monitoring\"") && page.contains("data-delegation=\"missing\""), "{page}");
    let history = &page[page.find("id=\"delegation-history\"").expect("the history")..];
    let (missing, correct) = (history.find("CNAME missing").unwrap(), history.find("CNAME correct").unwrap());
    assert!(missing < correct, "newest first");
    let mail = env.outbox();
    assert!(mail.contains("To: ada@example.com") && mail.contains("the CNAME for www.example.com is broken"), "{mail}");
    assert!(mail.contains(&format!("{}/registrations/{sub}", env.portal)), "the mail links the registration");
    let events = events_of(&env, account, AuditKind::DelegationBroken).await;
    assert_eq!((events.len(), events[0]["domain"].as_str()), (1, Some("www.example.com")));

    // The account API says the same.
    let now = certdns_core::now();
    let (token, text) =
        certdns_core::access_token::issue(account, "t", certdns_core::TokenScope::Read, None, now).unwrap();
    env.store.create_access_token(&token).await.unwrap();
    let view: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/registrations/{sub}", env.portal))
        .bearer_auth(&text)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["delegation"]["status"], "missing", "{view}");
    assert!(view["delegation"]["checked_at"].as_str().is_some_and(|t| t.starts_with("20")), "{view}");
}
