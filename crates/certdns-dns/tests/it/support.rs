//! Shared test support: a responder on 127.0.0.1:0 and raw DNS over real sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use certdns_core::{Subdomain, TxtState, TxtValue};
use certdns_dns::{DnsConfig, Protocol, ZoneConfig};
use certdns_replication::{Change, Replica};
use hickory_proto::op::{Edns, Message, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ZONE: &str = "auth.example.org";
const TIMEOUT: Duration = Duration::from_secs(3);

pub fn zone_config() -> ZoneConfig {
    ZoneConfig {
        domain: ZONE.into(),
        nameservers: vec!["ns1.auth.example.org".into(), "ns2.auth.example.org".into()],
        hostmaster: "hostmaster@example.org".into(),
        records: vec![
            "ns1.auth.example.org. A 198.51.100.1".into(),
            "ns2.auth.example.org. A 198.51.100.2".into(),
            "auth.example.org. A 198.51.100.1".into(),
            "auth.example.org. CAA 0 issue \"letsencrypt.org\"".into(),
            "www.auth.example.org. CNAME auth.example.org.".into(),
        ],
        ..ZoneConfig::default()
    }
}

pub fn dns_config() -> DnsConfig {
    DnsConfig { listen: vec!["127.0.0.1:0".parse().unwrap()], udp_sockets: 2, ..DnsConfig::default() }
}

pub struct Running {
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    pub replica: Arc<Replica>,
    cancel: CancellationToken,
    task: Option<JoinHandle<Result<(), certdns_dns::DnsError>>>,
}

impl Running {
    pub async fn start(dns: DnsConfig, zone: ZoneConfig, replica: Arc<Replica>) -> Self {
        let bound = certdns_dns::bind(&dns, &zone, replica.clone()).await.expect("bind");
        let addrs = bound.local_addrs();
        let find = |p: Protocol| addrs.iter().find(|(q, _)| *q == p).map(|(_, a)| *a).expect("address");
        let (udp, tcp) = (find(Protocol::Udp), find(Protocol::Tcp));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(bound.run(cancel.clone()));
        Self { udp, tcp, replica, cancel, task: Some(task) }
    }

    pub async fn default() -> Self {
        Self::start(dns_config(), zone_config(), Replica::with_states(&[])).await
    }

    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task).await.expect("stops in time").expect("joins").expect("clean stop");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub fn value(tag: &str) -> TxtValue {
    TxtValue::parse(&format!("{tag:_<43}")).unwrap()
}

pub fn upsert(subdomain: Subdomain, version: u64, values: &[&str]) -> Change {
    Change::Upsert(TxtState::values(subdomain, version, values.iter().map(|t| value(t)).collect()))
}

/// A dns-persist-01 record with a CA prefix of `prefix_len` characters, so a
/// test can make it shorter or longer than one 255-octet character-string.
pub fn persist_record(prefix_len: usize) -> certdns_core::PersistRecord {
    let uri =
        format!("https://ca.example/{}/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw", "p".repeat(prefix_len));
    let uri = certdns_core::HashedAccountUri::parse(&uri).unwrap();
    certdns_core::PersistRecord::new("authority.example", uri, true, Some(1_900_000_000)).unwrap()
}

pub fn upsert_persist(subdomain: Subdomain, version: u64, record: &certdns_core::PersistRecord) -> Change {
    Change::Upsert(TxtState { subdomain, version, values: Vec::new(), persist: Some(record.clone()) })
}

pub fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// A query as a resolver sends it to an authoritative server: RD clear.
pub fn query(qname: &str, qtype: RecordType) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = false;
    m.add_query(Query::query(name(qname), qtype));
    m
}

pub fn with_edns(mut m: Message, payload: u16, version: u8) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(payload).set_version(version);
    m.set_edns(edns);
    m
}

pub fn with_opcode(mut m: Message, op: OpCode) -> Message {
    m.metadata.op_code = op;
    m
}

pub async fn udp_raw(server: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let local = if server.is_ipv6() { "[::1]:0" } else { "127.0.0.1:0" };
    let socket = UdpSocket::bind(local).await.unwrap();
    socket.send_to(packet, server).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub async fn udp(server: SocketAddr, m: &Message) -> Message {
    let raw = udp_raw(server, &m.to_vec().unwrap(), TIMEOUT).await.expect("an answer over UDP");
    let reply = Message::from_vec(&raw).expect("a parsable answer");
    assert_eq!(reply.metadata.id, m.metadata.id);
    reply
}

pub async fn tcp_raw(server: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let mut stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(server)).await.unwrap().unwrap();
    let mut framed = (packet.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.write_all(&framed).await.unwrap();
    let mut len = [0u8; 2];
    tokio::time::timeout(TIMEOUT, stream.read_exact(&mut len)).await.expect("an answer over TCP").unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}

pub async fn tcp(server: SocketAddr, m: &Message) -> Message {
    let reply = Message::from_vec(&tcp_raw(server, &m.to_vec().unwrap()).await).expect("a parsable answer");
    assert_eq!(reply.metadata.id, m.metadata.id);
    reply
}

/// The TXT strings of the answer section, sorted.
pub fn txt_values(m: &Message) -> Vec<String> {
    let mut v: Vec<String> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::TXT(t) => Some(t.txt_data.iter().map(|s| String::from_utf8_lossy(s)).collect()),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// xorshift64*: deterministic, so a failure reproduces.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}
