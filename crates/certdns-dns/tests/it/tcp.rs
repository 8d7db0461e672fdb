//! DNS over TCP: many questions per connection (pipelined, split across
//! segments, mixed with junk) answered in order and byte for byte as the
//! hickory path answers each; the idle timeout, a client that does not read,
//! and the connection cap.

use std::time::{Duration, Instant};

use crate::support::*;
use certdns_core::Subdomain;
use certdns_dns::fuzzing::PacketHarness;
use certdns_dns::{DnsConfig, Protocol, RrlConfig};
use certdns_replication::Replica;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);

fn framed(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        out.extend((p.len() as u16).to_be_bytes());
        out.extend(p);
    }
    out
}

async fn read_answer(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    tokio::time::timeout(WAIT, stream.read_exact(&mut len)).await.ok()?.ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf)).await.ok()?.ok()?;
    Some(buf)
}

/// Whether the server closes the connection within `within` (EOF or reset),
/// reading and discarding whatever it still sends.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let end = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(end, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

fn questions(sub: Subdomain) -> Vec<Vec<u8>> {
    let q = |name: &str, t| query(name, t).to_vec().unwrap();
    let mut two = query(&format!("{sub}.{ZONE}."), RecordType::TXT);
    two.add_query(two.queries[0].clone());
    vec![
        q(&format!("{sub}.{ZONE}."), RecordType::TXT),
        q(&format!("{}.{ZONE}.", sub.to_string().to_uppercase()), RecordType::TXT),
        with_edns(query(&format!("{sub}.{ZONE}."), RecordType::TXT), 1232, 0).to_vec().unwrap(),
        q(&format!("{}.{ZONE}.", Subdomain::generate()), RecordType::TXT),
        q(&format!("random.{ZONE}."), RecordType::A),
        q("example.com.", RecordType::TXT),
        // The general path: apex, a static name, an EDNS version we do not speak.
        q(&format!("{ZONE}."), RecordType::SOA),
        q(&format!("ns1.{ZONE}."), RecordType::A),
        with_edns(query(&format!("{ZONE}."), RecordType::NS), 1232, 1).to_vec().unwrap(),
        two.to_vec().unwrap(),
        // Junk with a readable header (FORMERR), too short for one (no answer).
        vec![0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff],
        vec![1, 2, 3],
        q(&format!("{sub}.{ZONE}."), RecordType::TXT),
    ]
}

#[tokio::test]
async fn pipelined_questions_are_answered_in_order_as_the_hickory_path_answers_each() {
    let sub = Subdomain::generate();
    let replica = Replica::with_states(&[]);
    replica.apply(&upsert(sub, 1, &["a", "b"]));
    let r = Running::start(dns_config(), zone_config(), replica.clone()).await;
    let harness = PacketHarness::new(&zone_config(), replica, &RrlConfig::default()).unwrap();
    let packets = questions(sub);
    let mut expected = Vec::new();
    for p in &packets {
        if let Some(answer) = harness.answer_hickory(p, Protocol::Tcp).await {
            expected.push(answer);
        }
    }
    assert_eq!(expected.len(), packets.len() - 1, "all but the 3-byte message are answered");

    // All at once, 50 times over on one connection.
    let mut stream = TcpStream::connect(r.tcp).await.unwrap();
    let rounds = 50;
    let bytes: Vec<u8> = (0..rounds).flat_map(|_| framed(&packets)).collect();
    stream.write_all(&bytes).await.unwrap();
    for _ in 0..rounds {
        for want in &expected {
            assert_eq!(read_answer(&mut stream).await.as_ref(), Some(want));
        }
    }

    // One byte at a time on another: messages split anywhere still arrive whole.
    let mut slow = TcpStream::connect(r.tcp).await.unwrap();
    slow.set_nodelay(true).unwrap();
    for b in framed(&packets) {
        slow.write_all(&[b]).await.unwrap();
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    for want in &expected {
        assert_eq!(read_answer(&mut slow).await.as_ref(), Some(want));
    }

    // A long message (well over the usual read buffer) between short ones.
    let mut long = query(&format!("{sub}.{ZONE}."), RecordType::TXT);
    for _ in 0..400 {
        long.add_query(long.queries[0].clone());
    }
    let long = long.to_vec().unwrap();
    assert!(long.len() > 16_000);
    let want_long = harness.answer_hickory(&long, Protocol::Tcp).await.unwrap();
    stream.write_all(&framed(&[packets[0].clone(), long, packets[0].clone()])).await.unwrap();
    assert_eq!(read_answer(&mut stream).await.as_ref(), Some(&expected[0]));
    assert_eq!(read_answer(&mut stream).await, Some(want_long));
    assert_eq!(read_answer(&mut stream).await.as_ref(), Some(&expected[0]));

    // An empty message ends the connection, as with hickory's server.
    stream.write_all(&[0, 0]).await.unwrap();
    assert!(closed_within(&mut stream, WAIT).await);
    r.stop().await;
}

#[tokio::test]
async fn idle_and_trickling_connections_are_closed_after_tcp_idle_secs() {
    let dns = DnsConfig { tcp_idle_secs: 1, ..dns_config() };
    let r = Running::start(dns, zone_config(), Replica::with_states(&[])).await;
    let soa = query(&format!("{ZONE}."), RecordType::SOA).to_vec().unwrap();

    // Silent from the start.
    let started = Instant::now();
    let mut idle = TcpStream::connect(r.tcp).await.unwrap();
    assert!(closed_within(&mut idle, WAIT).await, "an idle connection is closed");
    assert!(started.elapsed() >= Duration::from_millis(900), "not before tcp_idle_secs: {:?}", started.elapsed());

    // Answered, then silent: the clock starts again at each whole message.
    let mut quiet = TcpStream::connect(r.tcp).await.unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        quiet.write_all(&framed(std::slice::from_ref(&soa))).await.unwrap();
        assert!(read_answer(&mut quiet).await.is_some(), "answered while it keeps asking");
    }
    assert!(closed_within(&mut quiet, WAIT).await);

    // A message trickled a byte every 300 ms never completes in time: closed
    // although bytes keep coming.
    let started = Instant::now();
    let mut trickle = TcpStream::connect(r.tcp).await.unwrap();
    trickle.set_nodelay(true).unwrap();
    let bytes = framed(&[soa]);
    let mut closed = false;
    for b in bytes.iter().take(bytes.len() - 1) {
        if trickle.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(300), trickle.read(&mut probe)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickling client is closed");
    assert!(started.elapsed() < Duration::from_secs(3), "within about tcp_idle_secs: {:?}", started.elapsed());
    r.stop().await;
}

#[tokio::test]
async fn a_client_that_does_not_read_its_answers_is_closed() {
    let dns = DnsConfig { tcp_idle_secs: 1, ..dns_config() };
    let sub = Subdomain::generate();
    let replica = Replica::with_states(&[]);
    let values: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    replica.apply(&upsert(sub, 1, &values.iter().map(String::as_str).collect::<Vec<_>>()));
    let r = Running::start(dns, zone_config(), replica).await;
    let q = query(&format!("{sub}.{ZONE}."), RecordType::TXT).to_vec().unwrap();
    let mut stream = TcpStream::connect(r.tcp).await.unwrap();
    // ~60 bytes asked, ~600 answered: the answers fill both socket buffers long
    // before the questions do. Bounded in count and time.
    let batch = framed(&vec![q; 1000]);
    let started = Instant::now();
    let mut refused = false;
    for _ in 0..2000 {
        match tokio::time::timeout(Duration::from_secs(2), stream.write_all(&batch)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                refused = true;
                break;
            }
            // Our side is full too: the server is not reading any more.
            Err(_) => break,
        }
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    // Whatever was written, the server gives up on the connection once its
    // answers have not been taken for tcp_idle_secs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(refused || closed_within(&mut stream, WAIT).await, "the connection is closed");
    // And it still answers everyone else.
    let reply = tcp(r.tcp, &query(&format!("{ZONE}."), RecordType::SOA)).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    r.stop().await;
}

#[tokio::test]
async fn connections_over_tcp_max_connections_are_closed_at_once() {
    let dns = DnsConfig { tcp_max_connections: 2, ..dns_config() };
    let r = Running::start(dns, zone_config(), Replica::with_states(&[])).await;
    let soa = framed(&[query(&format!("{ZONE}."), RecordType::SOA).to_vec().unwrap()]);
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(r.tcp).await.unwrap();
        s.write_all(&soa).await.unwrap();
        assert!(read_answer(&mut s).await.is_some());
        held.push(s);
    }
    let mut third = TcpStream::connect(r.tcp).await.unwrap();
    let _ = third.write_all(&soa).await;
    assert!(closed_within(&mut third, WAIT).await, "over the cap: closed");
    // One gone, room for another.
    drop(held.pop());
    let reply = tokio::time::timeout(WAIT, async {
        loop {
            let mut s = TcpStream::connect(r.tcp).await.unwrap();
            s.write_all(&soa).await.unwrap();
            if let Some(answer) = read_answer(&mut s).await {
                return answer;
            }
            // The server may not have seen the close yet.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a free slot again");
    assert_eq!(reply[3] & 0x0f, 0, "NOERROR");
    r.stop().await;
}
