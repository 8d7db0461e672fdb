//! A stand-in recursive resolver for tests of the delegation check: answers from
//! a map the test fills, over real UDP and TCP sockets on loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::net::{TcpListener, UdpSocket};

/// Records the fake resolver knows: (lower-case name without trailing dot, type) → data.
pub type Zone = Arc<Mutex<HashMap<(String, RecordType), Vec<RData>>>>;

/// A stand-in recursive resolver on UDP and TCP (same port): answers from
/// `zone`, NXDOMAIN for unknown names. Over UDP, names starting with `big.` get
/// an empty truncated answer, so the client must retry over TCP.
pub async fn spawn_dns(zone: Zone) -> SocketAddr {
    spawn_resolver(zone, None).await
}

/// Like [`spawn_dns`], and it follows a CNAME out of `zone` as a recursive
/// resolver does: a question for another type at a name `zone` holds a CNAME
/// for is asked again at the target, from the authoritative server `upstream`
/// (a certdns responder), and answered with the CNAME and what it said.
pub async fn spawn_dns_following(zone: Zone, upstream: SocketAddr) -> SocketAddr {
    spawn_resolver(zone, Some(upstream)).await
}

async fn spawn_resolver(zone: Zone, upstream: Option<SocketAddr>) -> SocketAddr {
    // A UDP port whose TCP twin is free too.
    let (socket, tcp) = loop {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("binding a loopback UDP port");
        if let Ok(tcp) = TcpListener::bind(socket.local_addr().expect("a bound address")).await {
            break (socket, tcp);
        }
    };
    let addr = socket.local_addr().expect("a bound address");
    let udp_zone = zone.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else { return };
            if let Some(bytes) = answer(&udp_zone, &buf[..n], true, upstream).await {
                let _ = socket.send_to(&bytes, peer).await;
            }
        }
    });
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut stream, _)) = tcp.accept().await else { return };
            let zone = zone.clone();
            tokio::spawn(async move {
                let Ok(len) = stream.read_u16().await else { return };
                let mut buf = vec![0u8; usize::from(len)];
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                if let Some(bytes) = answer(&zone, &buf, false, upstream).await {
                    let Ok(len) = u16::try_from(bytes.len()) else { return };
                    let mut framed = len.to_be_bytes().to_vec();
                    framed.extend_from_slice(&bytes);
                    let _ = stream.write_all(&framed).await;
                }
            });
        }
    });
    addr
}

async fn answer(zone: &Zone, packet: &[u8], udp: bool, upstream: Option<SocketAddr>) -> Option<Vec<u8>> {
    let query = Message::from_vec(packet).ok()?;
    let q = query.queries.first().cloned()?;
    let mut response = Message::new(query.metadata.id, MessageType::Response, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_query(q.clone());
    let name = q.name().to_ascii().trim_end_matches('.').to_lowercase();
    if udp && name.starts_with("_acme-challenge.big.") {
        response.metadata.truncation = true;
        return response.to_vec().ok();
    }
    let (exists, answers, alias) = {
        let zone = zone.lock().unwrap_or_else(|p| p.into_inner());
        let exists = zone.keys().any(|(n, _)| *n == name);
        let answers = zone.get(&(name.clone(), q.query_type())).cloned().unwrap_or_default();
        let alias = zone.get(&(name.clone(), RecordType::CNAME)).and_then(|c| c.first().cloned());
        (exists, answers, alias)
    };
    if !exists {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    for data in answers {
        response.answers.push(Record::from_rdata(q.name().clone(), 60, data));
    }
    if let (Some(upstream), Some(RData::CNAME(target)), true) =
        (upstream, alias, response.answers.is_empty() && q.query_type() != RecordType::CNAME)
    {
        response.answers.push(Record::from_rdata(q.name().clone(), 60, RData::CNAME(target.clone())));
        let found = ask_upstream(upstream, &target.0, q.query_type()).await?;
        response.metadata.response_code = found.metadata.response_code;
        response.answers.extend(found.answers);
    }
    response.to_vec().ok()
}

/// One question to the authoritative server behind the CNAME.
async fn ask_upstream(upstream: SocketAddr, name: &Name, rtype: RecordType) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let mut query = Message::query();
    query.add_query(hickory_proto::op::Query::query(name.clone(), rtype));
    socket.send_to(&query.to_vec().ok()?, upstream).await.ok()?;
    let mut buf = vec![0u8; 4096];
    let (n, _) =
        tokio::time::timeout(std::time::Duration::from_secs(2), socket.recv_from(&mut buf)).await.ok()?.ok()?;
    Message::from_vec(&buf[..n]).ok()
}

pub fn cname(target: &str) -> RData {
    RData::CNAME(CNAME(Name::from_ascii(format!("{}.", target.trim_end_matches('.'))).expect("a valid name")))
}

pub fn txt(value: &str) -> RData {
    RData::TXT(TXT::new(vec![value.to_owned()]))
}
