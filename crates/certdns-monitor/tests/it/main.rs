//! The delegation monitor against a real store (both backends) and a stand-in
//! resolver over real sockets: a CNAME that is correct, breaks, stays broken and
//! is fixed gives exactly one "broken" and one "restored" alert; checks back off
//! while broken, come again after an update and after a domain change; and two
//! monitors on one store never tell twice.

// A failed unwrap is a failed test here.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use certdns_core::{
    Account, AccountId, AccountRole, AccountStatus, AllowFrom, Domain, Email, Registration, RegistrationId, Secret,
    Subdomain, Username, now,
};
use certdns_monitor::{Alert, AlertKind, Monitor, MonitorConfig, Notifier};
use certdns_store::PortalStore;
use certdns_testkit::resolver::{Zone, cname, spawn_dns, txt};
use certdns_testkit::{Backend, TestDatabase};
use hickory_proto::rr::RecordType;

const ZONE: &str = "auth.monitor.test";

certdns_testkit::both_backends!(setup = setup;
    a_break_and_a_fix_are_told_once_each,
    checks_come_again_after_an_update_and_a_domain_change,
    two_monitors_tell_once,
    an_overdue_renewal_is_told_once,
);

#[derive(Default)]
struct Recorder(Mutex<Vec<Alert>>);

#[async_trait]
impl Notifier for Recorder {
    async fn alert(&self, alert: &Alert) {
        self.0.lock().unwrap().push(alert.clone());
    }
}

struct Env {
    store: Arc<dyn PortalStore>,
    zone: Zone,
    monitor: Monitor,
    alerts: Arc<Recorder>,
    config: MonitorConfig,
}

async fn setup(backend: Backend) -> (Env, TestDatabase) {
    let db = TestDatabase::new(backend).await;
    let store = certdns_store::open_portal(db.url()).await.unwrap();
    store.core().migrate().await.unwrap();
    let zone = Zone::default();
    let resolver = spawn_dns(zone.clone()).await;
    let config = MonitorConfig { resolver, zone: ZONE.into(), interval_secs: 3600, checks_per_second: 10 };
    let alerts = Arc::new(Recorder::default());
    let monitor = Monitor::new(store.clone(), config.clone(), alerts.clone());
    (Env { store, zone, monitor, alerts, config }, db)
}

async fn registration(env: &Env, domain: &str) -> Registration {
    let account = Account {
        id: AccountId::generate(),
        email: Email::parse(&format!("{}@example.com", Subdomain::generate())).unwrap(),
        role: AccountRole::Customer,
        status: AccountStatus::Active,
        password_hash: None,
        created_at: now(),
    };
    env.store.core().create_account(&account).await.unwrap();
    let r = Registration {
        id: RegistrationId::generate(),
        account_id: account.id,
        license_key_id: None,
        username: Username::generate(),
        password_hash: Secret::generate().hash(),
        subdomain: Subdomain::generate(),
        allow_from: AllowFrom::default(),
        subject: None,
        domain: Some(Domain::parse(domain).unwrap()),
        password_sealed: None,
        acme_account_url: None,
        kind: certdns_core::RegistrationKind::Challenge,
        created_at: now(),
        last_update_at: None,
    };
    env.store.core().create_registration(&r).await.unwrap();
    r
}

fn set_cname(env: &Env, domain: &str, target: Option<&str>) {
    let name = format!("_acme-challenge.{domain}");
    let mut zone = env.zone.lock().unwrap();
    zone.remove(&(name.clone(), RecordType::CNAME));
    zone.remove(&(name.clone(), RecordType::TXT));
    if let Some(t) = target {
        zone.insert((name, RecordType::CNAME), vec![cname(t)]);
    }
}

fn target(r: &Registration) -> String {
    format!("{}.{ZONE}", r.subdomain)
}

async fn status(env: &Env, r: &Registration) -> certdns_store::DelegationStatus {
    let all = env.store.delegation_statuses(r.account_id).await.unwrap();
    all.into_iter().find(|s| s.registration_id == r.id).unwrap()
}

async fn a_break_and_a_fix_are_told_once_each(env: Env) {
    let r = registration(&env, "www.example.com").await;
    let t0 = now().unix_timestamp();
    // Never delegated yet: checked, "missing", nobody told (it never worked).
    let round = env.monitor.round(t0).await.unwrap();
    assert_eq!((round.checked, round.alerts), (1, 0));
    assert_eq!(status(&env, &r).await.status, "missing");
    // Checks back off while broken: not due a minute later, due after 5.
    assert_eq!(env.monitor.round(t0 + 60).await.unwrap().checked, 0);
    set_cname(&env, "www.example.com", Some(&target(&r)));
    assert_eq!(
        env.monitor.round(t0 + 301).await.unwrap(),
        certdns_monitor::Round { checked: 1, changed: 1, alerts: 0 }
    );
    let s = status(&env, &r).await;
    assert_eq!((s.status.as_str(), s.notified.as_str(), s.failures), ("correct", "correct", 0));
    assert!(s.next_check_at >= t0 + 301 + 3240 && s.next_check_at <= t0 + 301 + 3960, "the interval, jittered");

    // It breaks: a TXT shadows it. One alert, however many checks see it.
    set_cname(&env, "www.example.com", None);
    env.zone.lock().unwrap().insert(("_acme-challenge.www.example.com".into(), RecordType::TXT), vec![txt("manual")]);
    let mut at = t0 + 301 + 4000;
    assert_eq!(env.monitor.round(at).await.unwrap().alerts, 1);
    for _ in 0..4 {
        at += 3600;
        assert_eq!(env.monitor.round(at).await.unwrap(), certdns_monitor::Round { checked: 1, changed: 0, alerts: 0 });
    }
    // It is fixed: one "restored".
    set_cname(&env, "www.example.com", Some(&target(&r)));
    at += 3600;
    assert_eq!(env.monitor.round(at).await.unwrap().alerts, 1);
    let alerts = env.alerts.0.lock().unwrap().clone();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].kind, AlertKind::Broken { status: "shadowed".into(), detail: "TXT manual".into() });
    assert_eq!(
        (alerts[0].cname_name.as_str(), alerts[0].target.clone()),
        ("_acme-challenge.www.example.com", target(&r))
    );
    assert_eq!((alerts[1].kind.clone(), alerts[1].account), (AlertKind::Restored, r.account_id));
    // The history keeps each change, newest first.
    let history = env.store.delegation_history(r.account_id, r.id).await.unwrap();
    let states: Vec<&str> = history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(states, ["correct", "shadowed", "correct", "missing"]);
    // Another tenant sees none of it.
    let other = AccountId::generate();
    assert!(env.store.delegation_history(other, r.id).await.unwrap().is_empty());
    assert!(env.store.delegation_statuses(other).await.unwrap().is_empty());
}

async fn checks_come_again_after_an_update_and_a_domain_change(env: Env) {
    let r = registration(&env, "a.example.com").await;
    set_cname(&env, "a.example.com", Some(&target(&r)));
    let t0 = now().unix_timestamp();
    assert_eq!(env.monitor.round(t0).await.unwrap().checked, 1);
    assert_eq!(env.monitor.round(t0 + 10).await.unwrap().checked, 0, "correct: not due for an hour");
    // An update: checked at the next round (the renewal may be why it changed).
    let value = certdns_core::TxtValue::parse(&"u".repeat(43)).unwrap();
    env.store.core().put_txt(r.id, &value, 2, now()).await.unwrap();
    assert_eq!(env.monitor.round(t0 + 20).await.unwrap().checked, 1);
    assert_eq!(env.monitor.round(t0 + 30).await.unwrap().checked, 0, "once per update");
    // A new domain: checked at once, and its own story starts (nothing told yet).
    let b = Domain::parse("b.example.com").unwrap();
    env.store.core().set_registration_domain(r.account_id, r.id, Some(&b), false).await.unwrap();
    assert_eq!(env.monitor.round(t0 + 40).await.unwrap(), certdns_monitor::Round { checked: 1, changed: 1, alerts: 0 });
    let s = status(&env, &r).await;
    assert_eq!((s.domain.as_str(), s.status.as_str(), s.notified.as_str()), ("b.example.com", "missing", "none"));
    // Deleting the registration ends its monitoring.
    env.store.core().delete_registration(r.account_id, r.id).await.unwrap();
    assert!(env.store.delegation_statuses(r.account_id).await.unwrap().is_empty());
    assert_eq!(env.monitor.round(t0 + 100_000).await.unwrap().checked, 0);
}

async fn two_monitors_tell_once(env: Env) {
    let regs = [registration(&env, "x.example.com").await, registration(&env, "y.example.com").await];
    for r in &regs {
        set_cname(&env, r.domain.as_ref().unwrap().as_str(), Some(&target(r)));
    }
    let second = Monitor::new(env.store.clone(), env.config.clone(), env.alerts.clone());
    let t0 = now().unix_timestamp();
    env.monitor.round(t0).await.unwrap();
    for r in &regs {
        set_cname(&env, r.domain.as_ref().unwrap().as_str(), None);
    }
    let at = t0 + 5000;
    let (a, b) = tokio::join!(env.monitor.round(at), second.round(at));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.checked + b.checked, 2, "each due check claimed once: {a:?} {b:?}");
    assert_eq!(env.alerts.0.lock().unwrap().len(), 2, "one alert per broken delegation");
}

async fn an_overdue_renewal_is_told_once(env: Env) {
    const DAY: i64 = 86_400;
    let r = registration(&env, "renew.example.com").await;
    set_cname(&env, "renew.example.com", Some(&target(&r)));
    let t0 = now().unix_timestamp() - 400 * DAY;
    let value = certdns_core::TxtValue::parse(&"r".repeat(43)).unwrap();
    let at = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).unwrap();
    // Renewals every 60 days (each a burst of two updates a minute apart).
    for n in 0..3 {
        let t = t0 + n * 60 * DAY;
        env.store.core().put_txt(r.id, &value, 2, at(t)).await.unwrap();
        env.monitor.round(t + 1).await.unwrap();
        env.store.core().put_txt(r.id, &value, 2, at(t + 60)).await.unwrap();
        env.monitor.round(t + 61).await.unwrap();
    }
    let s = status(&env, &r).await;
    assert_eq!(s.renewals, [t0, t0 + 60 * DAY, t0 + 120 * DAY], "one entry per burst");
    // Expected by 120 + 60 + 15 + 1 days: not overdue the day before, told once after.
    assert_eq!(env.monitor.round(t0 + 195 * DAY).await.unwrap().alerts, 0);
    assert_eq!(env.monitor.round(t0 + 197 * DAY).await.unwrap().alerts, 1);
    assert_eq!(env.monitor.round(t0 + 198 * DAY).await.unwrap().alerts, 0, "told once");
    let alerts = env.alerts.0.lock().unwrap().clone();
    assert_eq!(
        alerts.last().unwrap().kind,
        AlertKind::RenewalOverdue { last_renewal: t0 + 120 * DAY, expected_by: t0 + 196 * DAY }
    );
    // The renewal comes after all: the notice is reset, nothing more is said.
    env.store.core().put_txt(r.id, &value, 2, at(t0 + 199 * DAY)).await.unwrap();
    assert_eq!(env.monitor.round(t0 + 199 * DAY + 1).await.unwrap().alerts, 0);
    let s = status(&env, &r).await;
    assert!(!s.overdue_notified && s.renewals.last() == Some(&(t0 + 199 * DAY)), "{s:?}");
}
