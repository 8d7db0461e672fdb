//! Every kind of question acme-dns answers (apex SOA/NS, static records, TXT at a
//! registration, unknown names, names outside the zone) as certdns answers it,
//! over real UDP and TCP sockets.

use std::sync::Arc;
use std::time::Duration;

use crate::support::*;
use certdns_core::Subdomain;
use certdns_dns::{DnsConfig, EDNS_PAYLOAD};
use certdns_replication::{Follower, InProcess, Replica};
use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, RecordType};
use tokio_util::sync::CancellationToken;

fn assert_authoritative(m: &Message, rcode: ResponseCode) {
    assert_eq!(m.metadata.message_type, MessageType::Response);
    assert_eq!(m.metadata.response_code, rcode, "{m:?}");
    assert!(m.metadata.authoritative, "AA set");
    assert!(!m.metadata.recursion_available, "RA clear");
}

fn assert_negative_soa(m: &Message) {
    assert!(m.answers.is_empty(), "no answers: {:?}", m.answers);
    assert_eq!(m.authorities.len(), 1);
    let soa = &m.authorities[0];
    assert_eq!(soa.record_type(), RecordType::SOA);
    assert_eq!(soa.ttl, 60, "negative TTL");
    let RData::SOA(data) = &soa.data else { unreachable!() };
    assert_eq!(data.minimum, 60);
    assert_eq!(data.mname, name("ns1.auth.example.org."));
    assert_eq!(data.rname, name("hostmaster.example.org."));
}

/// Both transports, with and without EDNS: each answer must be the same.
async fn ask_all_ways(r: &Running, qname: &str, qtype: RecordType) -> Vec<Message> {
    let mut out = Vec::new();
    for edns in [false, true] {
        let q = if edns { with_edns(query(qname, qtype), 4096, 0) } else { query(qname, qtype) };
        for reply in [udp(r.udp, &q).await, tcp(r.tcp, &q).await] {
            assert_eq!(reply.edns.is_some(), edns, "OPT in the answer exactly when the query had one");
            if let Some(e) = &reply.edns {
                assert_eq!(e.max_payload(), EDNS_PAYLOAD);
                assert_eq!(e.version(), 0);
            }
            assert_eq!(reply.queries, q.queries, "question echoed as sent");
            out.push(reply);
        }
    }
    out
}

#[tokio::test]
async fn apex_answers_soa_ns_and_static_records() {
    let r = Running::default().await;
    for reply in ask_all_ways(&r, "auth.example.org.", RecordType::SOA).await {
        assert_authoritative(&reply, ResponseCode::NoError);
        assert_eq!(reply.answers.len(), 1);
        let RData::SOA(soa) = &reply.answers[0].data else { panic!("SOA expected") };
        assert_eq!(soa.mname, name("ns1.auth.example.org."));
        assert!(reply.authorities.is_empty());
    }
    for reply in ask_all_ways(&r, "auth.example.org.", RecordType::NS).await {
        assert_authoritative(&reply, ResponseCode::NoError);
        let mut ns: Vec<String> = reply.answers.iter().map(|r| r.data.to_string()).collect();
        ns.sort();
        assert_eq!(ns, ["ns1.auth.example.org.", "ns2.auth.example.org."]);
    }
    for reply in ask_all_ways(&r, "Auth.Example.ORG.", RecordType::A).await {
        assert_authoritative(&reply, ResponseCode::NoError);
        assert_eq!(reply.answers[0].data.to_string(), "198.51.100.1");
        assert_eq!(reply.answers[0].ttl, 3600);
    }
    for reply in ask_all_ways(&r, "auth.example.org.", RecordType::CAA).await {
        assert_authoritative(&reply, ResponseCode::NoError);
        assert_eq!(reply.answers.len(), 1);
    }
    for reply in ask_all_ways(&r, "ns2.auth.example.org.", RecordType::A).await {
        assert_eq!(reply.answers[0].data.to_string(), "198.51.100.2");
    }
    // Types with nothing configured: NODATA with the SOA (acme-dns sends no SOA).
    for qtype in [RecordType::AAAA, RecordType::TXT, RecordType::MX] {
        for reply in ask_all_ways(&r, "auth.example.org.", qtype).await {
            assert_authoritative(&reply, ResponseCode::NoError);
            assert_negative_soa(&reply);
        }
    }
    // A static CNAME answers for any type, unchased.
    let reply = udp(r.udp, &query("www.auth.example.org.", RecordType::A)).await;
    assert_eq!(reply.answers[0].record_type(), RecordType::CNAME);
    r.stop().await;
}

#[tokio::test]
async fn txt_answers_the_two_newest_values_fed_by_a_follower() {
    let dist = Arc::new(InProcess::new());
    let replica = Replica::new();
    let follower = Follower::new(dist.clone(), replica.clone(), certdns_replication::ResponderId::generate("test"));
    let health = follower.health();
    let stop_follower = CancellationToken::new();
    let following = tokio::spawn(follower.run(stop_follower.clone()));
    let r = Running::start(dns_config(), zone_config(), replica).await;

    let sub = Subdomain::generate();
    use certdns_replication::Distribution;
    dist.publish(&[upsert(sub, 0, &[])]).await.unwrap();
    dist.publish(&[upsert(sub, 1, &["t1"])]).await.unwrap();
    dist.publish(&[upsert(sub, 2, &["t2", "t1"])]).await.unwrap();
    dist.publish(&[upsert(sub, 3, &["t3", "t2"])]).await.unwrap();
    let qname = format!("{sub}.{ZONE}.");
    let expected = vec![value("t2").as_str().to_owned(), value("t3").as_str().to_owned()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while txt_values(&udp(r.udp, &query(&qname, RecordType::TXT)).await) != expected {
        assert!(tokio::time::Instant::now() < deadline, "the third update is answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(health.report(Duration::from_secs(30)).ready);

    // Mixed case (0x20): same values, owner echoes the question's case exactly.
    let mixed: String =
        qname.chars().enumerate().map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c }).collect();
    for reply in ask_all_ways(&r, &mixed, RecordType::TXT).await {
        assert_authoritative(&reply, ResponseCode::NoError);
        assert_eq!(txt_values(&reply), expected);
        for answer in &reply.answers {
            assert!(answer.name.eq_case(&name(&mixed)), "owner {} echoes {mixed}", answer.name);
            assert_eq!(answer.ttl, 1);
            assert_eq!(answer.dns_class, DNSClass::IN);
        }
        assert!(reply.authorities.is_empty());
    }
    // ANY is answered minimally with the TXT set (RFC 8482).
    let reply = tcp(r.tcp, &query(&qname, RecordType::ANY)).await;
    assert_eq!(txt_values(&reply), expected);
    assert_eq!(reply.answers.len(), 2);

    stop_follower.cancel();
    following.await.unwrap();
    r.stop().await;
}

/// A responder that has not loaded its first complete snapshot (starting, or its
/// distribution's state being rebuilt) does not know which names exist: an unknown
/// registration name gets SERVFAIL (ask another server), never an NXDOMAIN a
/// resolver would cache. What it does know it answers: names it already holds,
/// removed names, the static zone.
#[tokio::test]
async fn before_the_first_snapshot_unknown_names_get_servfail() {
    let r = Running::start(dns_config(), zone_config(), Replica::new()).await;
    let held = Subdomain::generate();
    let removed = Subdomain::generate();
    r.replica.apply(&upsert(held, 1, &["held"]));
    r.replica.apply(&certdns_replication::Change::Remove { subdomain: removed, version: 2 });
    let unknown = format!("{}.{ZONE}.", Subdomain::generate());

    for qtype in [RecordType::TXT, RecordType::A] {
        for reply in [udp(r.udp, &query(&unknown, qtype)).await, tcp(r.tcp, &query(&unknown, qtype)).await] {
            assert_eq!(reply.metadata.response_code, ResponseCode::ServFail, "{reply:?}");
            assert!(reply.answers.is_empty() && reply.authorities.is_empty());
        }
    }
    let reply = udp(r.udp, &query(&format!("{held}.{ZONE}."), RecordType::TXT)).await;
    assert_authoritative(&reply, ResponseCode::NoError);
    assert_eq!(txt_values(&reply), vec![value("held").as_str().to_owned()]);
    let reply = udp(r.udp, &query(&format!("{removed}.{ZONE}."), RecordType::TXT)).await;
    assert_authoritative(&reply, ResponseCode::NXDomain);
    let reply = udp(r.udp, &query(&format!("{ZONE}."), RecordType::SOA)).await;
    assert_authoritative(&reply, ResponseCode::NoError);
    let reply = udp(r.udp, &query(&format!("unknown.{ZONE}."), RecordType::TXT)).await;
    assert_authoritative(&reply, ResponseCode::NXDomain);

    // The first complete snapshot: from now on, not held means does not exist.
    r.replica.reset(&[]);
    let reply = udp(r.udp, &query(&unknown, RecordType::TXT)).await;
    assert_authoritative(&reply, ResponseCode::NXDomain);
    assert_negative_soa(&reply);
    r.stop().await;
}

#[tokio::test]
async fn nodata_nxdomain_and_refused() {
    let r = Running::default().await;
    let empty = Subdomain::generate();
    let filled = Subdomain::generate();
    r.replica.apply(&upsert(empty, 0, &[]));
    r.replica.apply(&upsert(filled, 1, &["v"]));

    // Registered but never updated: NODATA + SOA (acme-dns: NXDOMAIN).
    for reply in ask_all_ways(&r, &format!("{empty}.{ZONE}."), RecordType::TXT).await {
        assert_authoritative(&reply, ResponseCode::NoError);
        assert_negative_soa(&reply);
    }
    // Other types on a registered subdomain: NODATA + SOA (acme-dns: NXDOMAIN).
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME, RecordType::SOA, RecordType::NS, RecordType::CAA]
    {
        let reply = udp(r.udp, &query(&format!("{filled}.{ZONE}."), qtype)).await;
        assert_authoritative(&reply, ResponseCode::NoError);
        assert_negative_soa(&reply);
    }
    // Unknown names under the zone: NXDOMAIN + SOA.
    for qname in
        [format!("{}.{ZONE}.", Subdomain::generate()), format!("unknown.{ZONE}."), format!("x.{filled}.{ZONE}.")]
    {
        for reply in ask_all_ways(&r, &qname, RecordType::TXT).await {
            assert_authoritative(&reply, ResponseCode::NXDomain);
            assert_negative_soa(&reply);
        }
    }
    // Outside the zone: REFUSED, not authoritative, nothing else.
    for qname in ["x.other-zone.tld.", "example.org.", "."] {
        for reply in ask_all_ways(&r, qname, RecordType::A).await {
            assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
            assert!(!reply.metadata.authoritative);
            assert!(reply.answers.is_empty() && reply.authorities.is_empty());
        }
    }
    r.stop().await;
}

#[tokio::test]
async fn lego_and_cert_manager_zone_discovery() {
    let r = Running::default().await;
    let sub = Subdomain::generate();
    r.replica.apply(&upsert(sub, 1, &["a"]));

    // Discovery through a client library: SOA, then NS of the apex.
    let provider = TokioRuntimeProvider::default();
    let stream = UdpClientStream::builder(r.udp, provider.clone()).build();
    let (mut client, bg) = Client::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(bg);
    let soa = client.query(name("auth.example.org."), DNSClass::IN, RecordType::SOA).await.unwrap();
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
    assert_eq!(soa.answers[0].record_type(), RecordType::SOA);
    let ns = client.query(name("auth.example.org."), DNSClass::IN, RecordType::NS).await.unwrap();
    assert_eq!(ns.answers.len(), 2);

    // Then TXT asked directly of the NS with RD=0 and EDNS 4096.
    let q = with_edns(query(&format!("{sub}.{ZONE}."), RecordType::TXT), 4096, 0);
    assert!(!q.metadata.recursion_desired);
    let reply = udp(r.udp, &q).await;
    assert_authoritative(&reply, ResponseCode::NoError);
    assert!(!reply.metadata.recursion_desired, "RD copied");
    assert_eq!(txt_values(&reply), [value("a").as_str()]);

    // The same over TCP through the client library.
    let (connect, handle) = TcpClientStream::new(r.tcp, None, None, provider);
    let (mut client, bg) = Client::<TokioRuntimeProvider>::new(connect.await.unwrap(), handle);
    tokio::spawn(bg);
    let reply = client.query(name(&format!("{sub}.{ZONE}.")), DNSClass::IN, RecordType::TXT).await.unwrap();
    assert_eq!(txt_values(&reply), [value("a").as_str()]);
    r.stop().await;
}

#[tokio::test]
async fn badvers_notimp_formerr() {
    let r = Running::default().await;
    // EDNS version 1: BADVERS (extended rcode 16) with our OPT.
    for reply in [
        udp(r.udp, &with_edns(query("auth.example.org.", RecordType::SOA), 1232, 1)).await,
        tcp(r.tcp, &with_edns(query("auth.example.org.", RecordType::SOA), 1232, 1)).await,
    ] {
        // Extended rcode 16 (hickory decodes 16 as BADSIG, which shares the number).
        assert_eq!(u16::from(reply.metadata.response_code), 16, "BADVERS");
        assert_eq!(reply.edns.as_ref().unwrap().version(), 0);
        assert!(reply.answers.is_empty());
    }
    // Opcode UPDATE (and STATUS): NOTIMP.
    for op in [OpCode::Update, OpCode::Status, OpCode::Notify] {
        let reply = udp(r.udp, &with_opcode(query("auth.example.org.", RecordType::SOA), op)).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NotImp, "{op:?}");
    }
    // Two questions, or none: FORMERR.
    let mut two = query("auth.example.org.", RecordType::SOA);
    two.add_query(hickory_proto::op::Query::query(name("auth.example.org."), RecordType::NS));
    assert_eq!(udp(r.udp, &two).await.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(tcp(r.tcp, &two).await.metadata.response_code, ResponseCode::FormErr);
    let mut none = query("auth.example.org.", RecordType::SOA);
    none.queries.clear();
    assert_eq!(udp(r.udp, &none).await.metadata.response_code, ResponseCode::FormErr);
    // A hand-made packet: header claims one question, body is cut short.
    let mut raw = query("auth.example.org.", RecordType::SOA).to_vec().unwrap();
    raw.truncate(20);
    let reply = udp_raw(r.udp, &raw, Duration::from_secs(2)).await.expect("FORMERR, not silence");
    assert_eq!(Message::from_vec(&reply).unwrap().metadata.response_code, ResponseCode::FormErr);
    // A question whose name is a pointer into the header (offset 2, the flags):
    // echoed, it would not parse in the answer, whose flags differ. FORMERR
    // without the question (found by fuzz/, seed regress-qname-pointer-into-header).
    let raw = [0x10, 0x05, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x02, 0, 16, 0, 1];
    let over_udp = udp_raw(r.udp, &raw, Duration::from_secs(2)).await.expect("an answer");
    for reply in [over_udp, tcp_raw(r.tcp, &raw).await] {
        let reply = Message::from_vec(&reply).expect("the answer parses");
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        assert!(reply.queries.is_empty());
    }
    // A response (QR=1) is never answered: no reflection loops.
    let mut response = query("auth.example.org.", RecordType::SOA);
    response.metadata.message_type = MessageType::Response;
    assert!(udp_raw(r.udp, &response.to_vec().unwrap(), Duration::from_millis(300)).await.is_none());
    // Zone transfers are refused.
    assert_eq!(
        tcp(r.tcp, &query("auth.example.org.", RecordType::AXFR)).await.metadata.response_code,
        ResponseCode::Refused
    );
    // Still answering.
    assert_eq!(udp(r.udp, &query("auth.example.org.", RecordType::SOA)).await.answers.len(), 1);
    r.stop().await;
}

#[tokio::test]
async fn big_answers_truncate_over_udp_and_arrive_whole_over_tcp() {
    let r = Running::default().await;
    let sub = Subdomain::generate();
    let tags: Vec<String> = (0..30).map(|i| format!("v{i}")).collect();
    let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    r.replica.apply(&upsert(sub, 1, &tag_refs));
    let qname = format!("{sub}.{ZONE}.");

    // 30 values do not fit 1232 bytes: TC, nothing partial, OPT kept.
    let q = with_edns(query(&qname, RecordType::TXT), 4096, 0);
    let reply = udp(r.udp, &q).await;
    assert!(reply.metadata.truncation);
    assert!(reply.answers.is_empty());
    assert!(reply.edns.is_some());
    let reply = tcp(r.tcp, &q).await;
    assert!(!reply.metadata.truncation);
    assert_eq!(reply.answers.len(), 30);

    // Without EDNS 512 bytes is the limit; a small EDNS size is honoured too.
    let few = Subdomain::generate();
    r.replica.apply(&upsert(few, 1, &tag_refs[..8]));
    let qname = format!("{few}.{ZONE}.");
    assert!(udp(r.udp, &query(&qname, RecordType::TXT)).await.metadata.truncation);
    assert!(udp(r.udp, &with_edns(query(&qname, RecordType::TXT), 600, 0)).await.metadata.truncation);
    let fits = udp(r.udp, &with_edns(query(&qname, RecordType::TXT), 1232, 0)).await;
    assert!(!fits.metadata.truncation);
    assert_eq!(fits.answers.len(), 8);
    assert_eq!(tcp(r.tcp, &query(&qname, RecordType::TXT)).await.answers.len(), 8);
    r.stop().await;
}

/// A dns-persist-01 record is one TXT record with the record's exact text: one
/// character-string when short, 255-octet strings when longer (the CA reads
/// them concatenated), over UDP with EDNS and over TCP; without EDNS a long one
/// truncates and comes whole over TCP.
#[tokio::test]
async fn persist_records_are_served_whole_in_character_strings() {
    let r = Running::default().await;
    for issuer_len in [20, 600] {
        let sub = Subdomain::generate();
        let record = persist_record(issuer_len);
        let text = record.to_txt();
        r.replica.apply(&upsert_persist(sub, 1, &record));
        let qname = format!("{sub}.{ZONE}.");
        let q = with_edns(query(&qname, RecordType::TXT), 1232, 0);
        for reply in [udp(r.udp, &q).await, tcp(r.tcp, &q).await] {
            assert_authoritative(&reply, ResponseCode::NoError);
            assert!(!reply.metadata.truncation);
            assert_eq!(reply.answers.len(), 1, "one record, not one per string");
            let RData::TXT(txt) = &reply.answers[0].data else { panic!("a TXT answer") };
            let strings: Vec<&[u8]> = txt.txt_data.iter().map(|s| &s[..]).collect();
            assert_eq!(strings.len(), text.len().div_ceil(255));
            assert!(strings.iter().all(|s| s.len() <= 255) && strings[0].len() == text.len().min(255));
            assert_eq!(strings.concat(), text.as_bytes());
        }
        if text.len() > 255 {
            assert!(udp(r.udp, &query(&qname, RecordType::TXT)).await.metadata.truncation);
            assert_eq!(tcp(r.tcp, &query(&qname, RecordType::TXT)).await.answers.len(), 1);
        }
        // Removed: the name is gone.
        r.replica.apply(&certdns_replication::Change::Remove { subdomain: sub, version: 2 });
        assert_authoritative(&udp(r.udp, &q).await, ResponseCode::NXDomain);
    }
    r.stop().await;
}

#[tokio::test]
async fn rate_limiting_drops_and_slips_when_enabled() {
    let mut dns = dns_config();
    dns.rrl.enabled = true;
    dns.rrl.responses_per_second = 1;
    dns.rrl.burst = 5;
    dns.rrl.slip = 2;
    let r = Running::start(dns, zone_config(), Replica::with_states(&[])).await;
    let q = query("auth.example.org.", RecordType::SOA).to_vec().unwrap();
    let (mut answered, mut slipped, mut dropped) = (0, 0, 0);
    for _ in 0..20 {
        match udp_raw(r.udp, &q, Duration::from_millis(150)).await {
            Some(raw) => {
                let m = Message::from_vec(&raw).unwrap();
                if m.metadata.truncation {
                    assert!(m.answers.is_empty());
                    slipped += 1;
                } else {
                    answered += 1;
                }
            }
            None => dropped += 1,
        }
    }
    assert!((5..=9).contains(&answered), "burst then about one a second: {answered}");
    assert!(slipped >= 4 && dropped >= 4, "slipped {slipped}, dropped {dropped}");
    // TCP is never limited.
    let reply = tcp(r.tcp, &query("auth.example.org.", RecordType::SOA)).await;
    assert_eq!(reply.answers.len(), 1);
    r.stop().await;
}

#[tokio::test]
async fn bind_reports_a_taken_address_and_bad_config_in_one_line() {
    let r = Running::default().await;
    let mut dns = dns_config();
    dns.listen = vec![r.tcp];
    let err = certdns_dns::bind(&dns, &zone_config(), Replica::with_states(&[])).await.err().expect("address in use");
    let msg = err.to_string();
    assert!(msg.contains(&r.tcp.to_string()) && !msg.contains('\n'), "{msg}");

    let mut zone = zone_config();
    zone.domain = "a..b".into();
    let err = certdns_dns::bind(&dns_config(), &zone, Replica::with_states(&[])).await.err().expect("invalid zone");
    assert_eq!(err.to_string(), "zone.domain: \"a..b\" is not a valid domain name");
    let mut zone = zone_config();
    zone.records.push("bad.auth.example.org. A 999.1.1.1".into());
    let err = certdns_dns::bind(&dns_config(), &zone, Replica::with_states(&[])).await.err().expect("invalid record");
    assert!(err.to_string().starts_with("zone.records[5]: \"bad.auth.example.org. A 999.1.1.1\""), "{err}");
    let mut dns = dns_config();
    dns.listen.clear();
    let err = certdns_dns::bind(&dns, &zone_config(), Replica::with_states(&[])).await.err().expect("no address");
    assert!(err.to_string().starts_with("dns.listen:"), "{err}");
    r.stop().await;
}

#[tokio::test]
async fn serves_ipv4_and_ipv6_addresses_together() {
    let mut dns = dns_config();
    dns.listen = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
    let bound = certdns_dns::bind(&dns, &zone_config(), Replica::with_states(&[])).await.expect("bind v4 and v6");
    let addrs = bound.local_addrs();
    assert_eq!(addrs.len(), 4, "UDP and TCP per address: {addrs:?}");
    let cancel = CancellationToken::new();
    let task = tokio::spawn(bound.run(cancel.clone()));
    for (protocol, addr) in addrs {
        let q = query("auth.example.org.", RecordType::SOA);
        let reply = match protocol {
            certdns_dns::Protocol::Udp => udp(addr, &q).await,
            certdns_dns::Protocol::Tcp => tcp(addr, &q).await,
        };
        assert_eq!(reply.answers.len(), 1, "{protocol} {addr}");
    }
    cancel.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn threads_sharing_one_socket_and_sockets_sharing_a_port_answer_everything() {
    let sub = Subdomain::generate();
    // The default (one socket, a thread per core), more threads than sockets,
    // and the earlier layout (a socket per thread).
    for (sockets, threads) in [(1, 0), (1, 3), (2, 2), (3, 1)] {
        let dns = DnsConfig { udp_sockets: sockets, udp_threads: threads, ..dns_config() };
        let replica = Replica::with_states(&[]);
        replica.apply(&upsert(sub, 1, &["a"]));
        let r = Running::start(dns, zone_config(), replica).await;
        let q = query(&format!("{sub}.{ZONE}."), RecordType::TXT);
        // Many clients at once (each its own source port, so every socket of
        // the reuse-port group gets some), every one answered.
        let asks = (0..64).map(|_| {
            let q = q.clone();
            let at = r.udp;
            tokio::spawn(async move { udp(at, &q).await })
        });
        for reply in futures_util::future::join_all(asks).await {
            assert_eq!(txt_values(&reply.unwrap()), [value("a").as_str()], "{sockets} sockets, {threads} threads");
        }
        r.stop().await;
    }
}
