//! The fast path against the hickory path: for every packet the fast path
//! takes, the same bytes out (or the same silence), over thousands of built and
//! mutated questions, several zones, a replica still loading, and RRL; over UDP
//! and over TCP (no size limit short of 65,535, never rate-limited).

use std::collections::HashSet;
use std::sync::Arc;

use crate::support::*;
use certdns_core::{Subdomain, TxtState};
use certdns_dns::fuzzing::PacketHarness;
use certdns_dns::{Protocol, RrlConfig, ZoneConfig};
use certdns_replication::Replica;

fn zones() -> Vec<ZoneConfig> {
    let mixed = ZoneConfig {
        domain: "Auth.Example.ORG".into(),
        nameservers: vec!["ns.elsewhere.example".into()],
        hostmaster: "first.last@auth.example.org".into(),
        records: vec!["a.b.c.auth.example.org. TXT \"deep\"".into(), "x A 192.0.2.7".into()],
        ..ZoneConfig::default()
    };
    vec![zone_config(), mixed]
}

fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend(label.as_bytes());
    }
    out.push(0);
    out
}

/// Random ASCII case, as a resolver using 0x20 sends it.
fn case_mix(rng: &mut Rng, s: &str) -> String {
    s.chars().map(|c| if rng.next().is_multiple_of(2) { c.to_ascii_uppercase() } else { c }).collect()
}

fn packet(rng: &mut Rng, names: &[String]) -> Vec<u8> {
    let picked = rng.pick(names).clone();
    let name = case_mix(rng, &picked);
    let qtype: u16 = *rng.pick(&[16, 16, 16, 1, 28, 6, 2, 5, 15, 255, 252, 251, 41, 250, 24, 0, 65535, 99]);
    let qclass: u16 = *rng.pick(&[1, 1, 1, 1, 3, 255, 254]);
    let flags_hi: u8 = *rng.pick(&[0x00, 0x01, 0x01, 0x04, 0x02, 0x80, 0x28]);
    let flags_lo: u8 = *rng.pick(&[0x00, 0x00, 0x10, 0x20, 0x40, 0x01]);
    let edns = rng.below(3) > 0;
    let mut p = vec![rng.next() as u8, rng.next() as u8, flags_hi, flags_lo, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    p.extend(wire_name(&name));
    p.extend(qtype.to_be_bytes());
    p.extend(qclass.to_be_bytes());
    if edns {
        let payload: u16 = *rng.pick(&[0, 100, 512, 1232, 1232, 4096, 65535]);
        let version: u8 = *rng.pick(&[0, 0, 0, 1]);
        let flags: u16 = *rng.pick(&[0, 0, 0x8000, 0x8000, 0x4000]);
        p.push(0);
        p.extend(41u16.to_be_bytes());
        p.extend(payload.to_be_bytes());
        p.extend([*rng.pick(&[0, 0, 0, 1]), version]);
        p.extend(flags.to_be_bytes());
        if rng.below(5) == 0 {
            // A cookie option.
            p.extend(12u16.to_be_bytes());
            p.extend([0, 10, 0, 8]);
            p.extend((0..8).map(|_| rng.next() as u8));
        } else {
            p.extend(0u16.to_be_bytes());
        }
    }
    if rng.below(10) == 0 {
        mutate(rng, &mut p);
    }
    p
}

fn mutate(rng: &mut Rng, p: &mut Vec<u8>) {
    match rng.below(4) {
        0 => {
            let at = rng.below(p.len());
            p[at] = rng.next() as u8;
        }
        1 => p.truncate(rng.below(p.len())),
        2 => p.extend((0..1 + rng.below(8)).map(|_| rng.next() as u8)),
        _ => {
            let at = 4 + 2 * rng.below(4);
            p[at..at + 2].copy_from_slice(&(rng.below(3) as u16).to_be_bytes());
        }
    }
}

fn names(zone: &str, subs: &[Subdomain]) -> Vec<String> {
    let long_label = "l".repeat(63);
    let mut names: Vec<String> = subs.iter().map(|s| format!("{s}.{zone}")).collect();
    names.extend([
        format!("{}.{zone}", Subdomain::generate()),
        format!("x.{}.{zone}", subs[0]),
        format!("random-{}.{zone}", 12345),
        zone.to_string(),
        format!("ns1.{zone}"),
        format!("www.{zone}"),
        format!("c.{zone}"),
        format!("b.c.{zone}"),
        format!("a.b.c.{zone}"),
        format!("x.{zone}"),
        format!("*.{zone}"),
        format!("a.*.{zone}"),
        format!("{long_label}.{long_label}.{long_label}.{long_label}.{zone}"),
        format!("{long_label}.{long_label}.{long_label}.{zone}"),
        "example.org".into(),
        "other.test".into(),
        format!("{zone}.evil"),
        String::new(),
    ]);
    names
}

/// Compares both paths on `packets`; returns the kinds of answer the fast path
/// gave: (RCODE, TC, with answers).
async fn compare(harnesses: (&PacketHarness, &PacketHarness), packets: &[Vec<u8>]) -> HashSet<(u8, bool, bool)> {
    compare_over(Protocol::Udp, harnesses, packets).await
}

async fn compare_over(
    protocol: Protocol,
    harnesses: (&PacketHarness, &PacketHarness),
    packets: &[Vec<u8>],
) -> HashSet<(u8, bool, bool)> {
    let mut fast = HashSet::new();
    for p in packets {
        let a = match harnesses.0.answer_fast(p, protocol) {
            Some(answer) => {
                let kind = answer.as_ref().map_or((99, false, false), |a| (a[3] & 0xf, a[2] & 2 != 0, a[7] > 0));
                fast.insert(kind);
                answer
            }
            None => harnesses.0.answer_hickory(p, protocol).await,
        };
        let b = harnesses.1.answer_hickory(p, protocol).await;
        assert_eq!(a, b, "fast path and hickory differ over {protocol} for packet {p:02x?}");
    }
    fast
}

fn replica(subs: &[Subdomain], loaded: bool) -> Arc<Replica> {
    let values = |n: usize| (0..n).map(|i| value(&format!("v{i}"))).collect();
    let mut states: Vec<TxtState> =
        subs.iter().zip([2, 1, 0, 12, 30]).map(|(s, n)| TxtState::values(*s, 1, values(n))).collect();
    // dns-persist-01 records: one character-string, and several (over 255 octets).
    for (s, len) in subs.iter().skip(5).zip([20, 600]) {
        let record = persist_record(len);
        states.push(TxtState { subdomain: *s, version: 1, values: Vec::new(), persist: Some(record) });
    }
    if loaded {
        Replica::with_states(&states)
    } else {
        let r = Replica::new();
        for s in states.into_iter().skip(1) {
            r.apply(&certdns_replication::Change::Upsert(s));
        }
        r
    }
}

#[tokio::test]
async fn the_fast_path_sends_what_hickory_sends() {
    let subs: Vec<Subdomain> = (0..7).map(|_| Subdomain::generate()).collect();
    let mut rng = Rng(0xfa57_0000_0000_0001);
    let mut kinds = HashSet::new();
    for zone in zones() {
        for loaded in [true, false] {
            let r = replica(&subs, loaded);
            let fast = PacketHarness::new(&zone, r.clone(), &RrlConfig::default()).unwrap();
            let slow = PacketHarness::new(&zone, r, &RrlConfig::default()).unwrap();
            let names = names(&zone.domain, &subs);
            let packets: Vec<Vec<u8>> = (0..10_000).map(|_| packet(&mut rng, &names)).collect();
            kinds.extend(compare((&fast, &slow), &packets).await);
        }
    }
    // TXT answers, NXDOMAIN, NODATA, REFUSED, SERVFAIL, truncated TXT answers.
    for kind in
        [(0, false, true), (3, false, false), (0, false, false), (5, false, false), (2, false, false), (0, true, false)]
    {
        assert!(kinds.contains(&kind), "the fast path never answered {kind:?}: {kinds:?}");
    }
}

#[tokio::test]
async fn over_tcp_the_fast_path_sends_what_hickory_sends() {
    let subs: Vec<Subdomain> = (0..5).map(|_| Subdomain::generate()).collect();
    let mut rng = Rng(0xfa57_0000_0000_0004);
    // RRL on: TCP is never limited, on either path.
    let rrl = RrlConfig { enabled: true, responses_per_second: 1, burst: 1, slip: 2, ..RrlConfig::default() };
    let mut kinds = HashSet::new();
    for zone in zones() {
        for loaded in [true, false] {
            let r = replica(&subs, loaded);
            let fast = PacketHarness::new(&zone, r.clone(), &rrl).unwrap();
            let slow = PacketHarness::new(&zone, r, &rrl).unwrap();
            let names = names(&zone.domain, &subs);
            let packets: Vec<Vec<u8>> = (0..5_000).map(|_| packet(&mut rng, &names)).collect();
            kinds.extend(compare_over(Protocol::Tcp, (&fast, &slow), &packets).await);
        }
    }
    // TXT answers (30 values too: never truncated over TCP), NXDOMAIN, NODATA,
    // REFUSED, SERVFAIL; never TC, never silent.
    for kind in [(0, false, true), (3, false, false), (0, false, false), (5, false, false), (2, false, false)] {
        assert!(kinds.contains(&kind), "the fast path never answered {kind:?}: {kinds:?}");
    }
    assert!(kinds.iter().all(|(rcode, tc, _)| !tc && *rcode != 99), "{kinds:?}");
}

#[tokio::test]
async fn any_byte_in_a_label_matches_too() {
    let subs: Vec<Subdomain> = (0..7).map(|_| Subdomain::generate()).collect();
    let zone = zone_config();
    let r = replica(&subs, true);
    let fast = PacketHarness::new(&zone, r.clone(), &RrlConfig::default()).unwrap();
    let slow = PacketHarness::new(&zone, r, &RrlConfig::default()).unwrap();
    let mut rng = Rng(0xfa57_0000_0000_0003);
    let names = names(ZONE, &subs);
    let packets: Vec<Vec<u8>> = (0..10_000)
        .map(|_| {
            let mut p = packet(&mut rng, &names);
            // Any byte value inside a label (never a length byte): binary labels,
            // dots, non-ASCII, upper case outside ASCII.
            let mut labels = Vec::new();
            let mut at = 12;
            while let Some(&len) = p.get(at).filter(|l| (1..64).contains(*l)) {
                labels.push(at + 1..at + 1 + usize::from(len));
                at += 1 + usize::from(len);
            }
            if !labels.is_empty() {
                let label = rng.pick(&labels).clone();
                let i = label.start + rng.below(label.len());
                if i < p.len() {
                    p[i] = rng.next() as u8;
                }
            }
            p
        })
        .collect();
    let kinds = compare((&fast, &slow), &packets).await;
    assert!(kinds.contains(&(3, false, false)) && kinds.contains(&(5, false, false)), "{kinds:?}");
}

#[tokio::test]
async fn rate_limited_answers_match_too() {
    let subs: Vec<Subdomain> = (0..7).map(|_| Subdomain::generate()).collect();
    let rrl = RrlConfig { enabled: true, responses_per_second: 1, burst: 5, slip: 2, ..RrlConfig::default() };
    let zone = zone_config();
    let r = replica(&subs, true);
    let fast = PacketHarness::new(&zone, r.clone(), &rrl).unwrap();
    let slow = PacketHarness::new(&zone, r, &rrl).unwrap();
    let mut rng = Rng(0xfa57_0000_0000_0002);
    let names = names(ZONE, &subs);
    let packets: Vec<Vec<u8>> = (0..600).map(|_| packet(&mut rng, &names)).collect();
    // Each packet goes to both harnesses back to back, so both limiters see
    // the same sequence at (nearly) the same time.
    let kinds = compare((&fast, &slow), &packets).await;
    assert!(kinds.contains(&(99, false, false)), "some answers dropped: {kinds:?}");
    assert!(kinds.contains(&(0, true, false)), "some answers slipped: {kinds:?}");
}
