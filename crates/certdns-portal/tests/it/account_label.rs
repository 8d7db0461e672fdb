//! dns-account-01 on a registration's page: the ACME account URL saved (bad
//! input refused, nothing changed), the label and the CNAME at
//! `_<label>._acme-challenge.<domain>` shown and checked there, two ACME accounts
//! holding one domain side by side, and the CA's view: a resolver following that
//! CNAME gets the registration's TXT value from a real certdns responder.

use std::net::SocketAddr;

use certdns_core::{AcmeAccountUrl, AuditKind, Domain};
use certdns_replication::{Follower, Replica, ResponderId};
use certdns_testkit::Backend;
use certdns_testkit::resolver::spawn_dns_following;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio_util::sync::CancellationToken;

use crate::domains::{account_id, events_of, register_bare, stored};
use crate::support::*;

certdns_testkit::both_backends!(tokio(flavor = "multi_thread", worker_threads = 2);
    dns_account_01_is_shown_checked_and_answered_at_the_label,
);

const CDN: &str = "https://ca.example/acme/acct/cdn";
const ORIGIN: &str = "https://ca.example/acme/acct/origin";

/// A certdns DNS responder following the test's distribution, as `serve --role dns` runs it.
pub(crate) async fn start_responder(env: &Env, cancel: &CancellationToken) -> SocketAddr {
    let replica = Replica::new();
    let follower = Follower::new(env.distribution.clone(), replica.clone(), ResponderId::generate("test"));
    tokio::spawn(follower.run(cancel.clone()));
    let dns = certdns_dns::DnsConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], ..Default::default() };
    let zone = certdns_dns::ZoneConfig { domain: ZONE.into(), ..Default::default() };
    let bound = certdns_dns::bind(&dns, &zone, replica).await.unwrap();
    let addr = bound.local_addrs().into_iter().find(|(p, _)| *p == certdns_dns::Protocol::Udp).unwrap().1;
    tokio::spawn(bound.run(cancel.clone()));
    addr
}

/// TXT at `name`, asked of `resolver` as a CA would (UDP, recursion desired).
pub(crate) async fn txt_through(resolver: SocketAddr, name: &str) -> Vec<String> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut query = Message::query();
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(Name::from_ascii(format!("{name}.")).unwrap(), RecordType::TXT));
    socket.send_to(&query.to_vec().unwrap(), resolver).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) =
        tokio::time::timeout(std::time::Duration::from_secs(5), socket.recv_from(&mut buf)).await.unwrap().unwrap();
    let answer = Message::from_vec(&buf[..n]).unwrap();
    answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.txt_data.iter().map(|d| String::from_utf8_lossy(d).into_owned()).collect()),
            _ => None,
        })
        .collect()
}

pub(crate) async fn post_form(
    env: &Env,
    c: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let t = token(env, c).await;
    let mut form = vec![("csrf", t.as_str())];
    form.extend_from_slice(fields);
    post(c, &format!("{}{path}", env.portal), &form).await
}

async fn dns_account_01_is_shown_checked_and_answered_at_the_label(backend: Backend) {
    let env = start(backend).await;
    let c = signup(&env, "teams@example.com").await;
    let account = account_id(&env, "teams@example.com").await;
    let (_, url) = create_key(&env, &c, "k").await;
    let (cdn_reg, origin_reg) = (register_bare(&url).await, register_bare(&url).await);
    let (cdn_sub, origin_sub) =
        (cdn_reg["subdomain"].as_str().unwrap().to_owned(), origin_reg["subdomain"].as_str().unwrap().to_owned());
    let label = AcmeAccountUrl::parse(CDN).unwrap().label();
    let name = format!("{label}._acme-challenge.www.example.com");

    // Bad input: refused with the reason, nothing changed.
    let path = format!("/registrations/{cdn_sub}/acme-account");
    let (status, page, _) = post_form(&env, &c, &path, &[("account_url", "http://ca.example/acct/1")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("id=\"acme-account-error\"") && page.contains("https://"), "{page}");
    assert_eq!(stored(&env, account, &cdn_sub).await.acme_account_url, None);

    // Both registrations hold www.example.com, each for its own ACME account.
    for (sub, acme) in [(&cdn_sub, CDN), (&origin_sub, ORIGIN)] {
        let (status, _, _) =
            post_form(&env, &c, &format!("/registrations/{sub}/domain"), &[("domain", "www.example.com")]).await;
        assert_eq!(status, 303);
        let (status, _, location) =
            post_form(&env, &c, &format!("/registrations/{sub}/acme-account"), &[("account_url", acme)]).await;
        assert_eq!((status, location), (303, Some(format!("/registrations/{sub}?notice=acme_account_set"))));
    }
    let reg = stored(&env, account, &cdn_sub).await;
    assert_eq!(reg.domain, Some(Domain::parse("www.example.com").unwrap()));
    assert_eq!(reg.challenge_name().as_deref(), Some(name.as_str()));
    let origin = stored(&env, account, &origin_sub).await;
    assert_eq!(origin.domain, reg.domain, "two ACME accounts hold one domain");

    // The page shows the label and the CNAME at the label name.
    let fulldomain = cdn_reg["fulldomain"].as_str().unwrap();
    let (_, page, _) = get(&c, &format!("{}/registrations/{cdn_sub}", env.portal)).await;
    assert!(page.contains(&format!("id=\"account-label\">{label}</code>")), "{page}");
    assert!(page.contains(&format!("{name}. 3600 IN CNAME {fulldomain}.")), "the zone-file line at the label name");
    assert!(page.contains(&format!(">{label}._acme-challenge.www</code>")), "relative to the zone");

    // The check asks the label name: missing until that CNAME exists.
    let (_, page, _) = get(&c, &format!("{}/registrations/{cdn_sub}?check=1", env.portal)).await;
    assert!(page.contains("data-status=\"missing\""), "{page}");
    env.set_dns(&name, RecordType::CNAME, vec![cname(fulldomain)]);
    let (_, page, _) = get(&c, &format!("{}/registrations/{cdn_sub}?check=1", env.portal)).await;
    assert!(page.contains("data-status=\"correct\""), "checked at the label name");

    // The CA's view: its resolver follows the CNAME to our responder.
    let cancel = CancellationToken::new();
    let responder = start_responder(&env, &cancel).await;
    let resolver = spawn_dns_following(env.dns.clone(), responder).await;
    let value = format!("{:_<43}", "cdn_account_challenge");
    let r = reqwest::Client::new()
        .post(format!("{}/update", env.api))
        .header("X-Api-User", cdn_reg["username"].as_str().unwrap())
        .header("X-Api-Key", cdn_reg["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": cdn_sub, "txt": value }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let values = txt_through(resolver, &name).await;
        if values == [value.clone()] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{name} never answered the value: {values:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    cancel.cancel();

    // Back to dns-01: the plain name again, audited both ways.
    let (status, _, _) = post_form(&env, &c, &path, &[("account_url", "")]).await;
    assert_eq!(status, 303);
    let reg = stored(&env, account, &cdn_sub).await;
    assert_eq!(reg.challenge_name().as_deref(), Some("_acme-challenge.www.example.com"));
    let events = events_of(&env, account, AuditKind::RegistrationDomainSet).await;
    let labels: Vec<_> = events.iter().filter_map(|e| e.get("label")).collect();
    assert!(labels.contains(&&serde_json::json!(label)) && labels.contains(&&serde_json::Value::Null), "{events:?}");
}
