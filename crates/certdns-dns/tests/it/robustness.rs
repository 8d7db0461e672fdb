//! Malformed and random packets: the handler never panics, every answer it gives
//! parses, and the server keeps answering after a flood of junk.

use std::time::Duration;

use crate::support::*;
use certdns_core::Subdomain;
use certdns_dns::fuzzing::PacketHarness;
use certdns_dns::{Protocol, RrlConfig};
use certdns_replication::Replica;
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::AsyncWriteExt;

fn seeds(sub: Subdomain) -> Vec<Vec<u8>> {
    let q = |n: &str, t| query(n, t);
    let sub_name = format!("{sub}.{ZONE}.");
    vec![
        q(&sub_name, RecordType::TXT).to_vec().unwrap(),
        with_edns(q(&sub_name, RecordType::TXT), 4096, 0).to_vec().unwrap(),
        with_edns(q("auth.example.org.", RecordType::ANY), 512, 1).to_vec().unwrap(),
        with_opcode(q("auth.example.org.", RecordType::SOA), OpCode::Update).to_vec().unwrap(),
        q("www.auth.example.org.", RecordType::CNAME).to_vec().unwrap(),
        q("x.other.", RecordType::A).to_vec().unwrap(),
    ]
}

/// Thousands of packets: mutated valid queries and pure noise.
fn junk(rng: &mut Rng, seeds: &[Vec<u8>], count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            if i % 4 == 0 {
                let len = rng.below(700);
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let mut p = seeds[rng.below(seeds.len())].clone();
                for _ in 0..1 + rng.below(6) {
                    match rng.below(4) {
                        0 if !p.is_empty() => {
                            let at = rng.below(p.len());
                            p[at] = rng.next() as u8;
                        }
                        1 if !p.is_empty() => p.truncate(rng.below(p.len())),
                        2 => p.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
                        // Header counts are where parsers tend to trip.
                        _ if p.len() >= 12 => {
                            let at = 4 + 2 * rng.below(4);
                            p[at..at + 2].copy_from_slice(&(rng.next() as u16).to_be_bytes());
                        }
                        _ => {}
                    }
                }
                p
            }
        })
        .collect()
}

#[tokio::test]
async fn the_handler_survives_junk_and_its_answers_parse() {
    let replica = Replica::with_states(&[]);
    let sub = Subdomain::generate();
    replica.apply(&upsert(sub, 1, &["a", "b"]));
    let harness = PacketHarness::new(&zone_config(), replica, &RrlConfig::default()).unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let seeds = seeds(sub);
    let mut answered = 0;
    for packet in junk(&mut rng, &seeds, 20_000) {
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            if let Some(answer) = harness.answer(&packet, protocol).await {
                let m = Message::from_vec(&answer).expect("every answer parses");
                if protocol == Protocol::Udp {
                    assert!(answer.len() <= 1232, "UDP answers fit");
                }
                assert_eq!(m.metadata.id, u16::from_be_bytes([packet[0], packet[1]]));
                answered += 1;
            }
        }
    }
    assert!(answered > 1_000, "many mutated packets still got answers: {answered}");
}

#[tokio::test]
async fn the_server_keeps_answering_after_a_flood_of_junk() {
    let r = Running::default().await;
    let sub = Subdomain::generate();
    r.replica.apply(&upsert(sub, 1, &["a"]));
    let mut rng = Rng(0x0bad_cafe_0000_0002);
    let packets = junk(&mut rng, &seeds(sub), 5_000);

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for (i, p) in packets.iter().enumerate() {
        let _ = socket.send_to(p, r.udp).await;
        if i % 500 == 499 {
            // Let the server drain, so the check below is about survival, not a full buffer.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    // Junk over TCP too: a frame of noise per connection, and a lying length prefix.
    for p in packets.iter().take(50) {
        let mut stream = tokio::net::TcpStream::connect(r.tcp).await.unwrap();
        let mut framed = (p.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(p);
        let _ = stream.write_all(&framed).await;
    }
    let mut liar = tokio::net::TcpStream::connect(r.tcp).await.unwrap();
    let _ = liar.write_all(&[0xff, 0xff, 1, 2, 3]).await;

    let reply = udp(r.udp, &query(&format!("{sub}.{ZONE}."), RecordType::TXT)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(txt_values(&reply), [value("a").as_str()]);
    let reply = tcp(r.tcp, &query("auth.example.org.", RecordType::SOA)).await;
    assert_eq!(reply.answers.len(), 1);
    r.stop().await;
}
