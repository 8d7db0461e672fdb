//! The delegation check: asks a recursive resolver what `_acme-challenge.<domain>`
//! (or dns-account-01's `_<label>._acme-challenge.<domain>`) is, and whether it
//! is the CNAME to the registration's fulldomain. Shared by the
//! portal (the live check on a registration's page) and the API (lego's HTTP
//! storage answers 201 only when the CNAME is in place).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;

/// What the resolver says about `_acme-challenge.<domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CnameStatus {
    /// The CNAME exists and points at the registration's fulldomain.
    Correct,
    /// Neither a CNAME nor a TXT record exists at the name.
    Missing,
    /// A CNAME exists but points somewhere else.
    PointsElsewhere { target: String },
    /// A TXT record sits at the name instead of the CNAME (often a leftover from
    /// manual validation); the CA would read it and never follow our delegation.
    ShadowedByTxt { values: Vec<String> },
    /// The resolver could not be asked or failed (SERVFAIL, timeout).
    Unknown { reason: String },
}

impl CnameStatus {
    pub fn code(&self) -> &'static str {
        match self {
            CnameStatus::Correct => "correct",
            CnameStatus::Missing => "missing",
            CnameStatus::PointsElsewhere { .. } => "elsewhere",
            CnameStatus::ShadowedByTxt { .. } => "shadowed",
            CnameStatus::Unknown { .. } => "unknown",
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(3);

async fn ask(resolver: SocketAddr, name: &Name, rtype: RecordType) -> Result<Message, String> {
    let bind: SocketAddr = if resolver.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(bind).await.map_err(|e| format!("socket: {e}"))?;
    socket.connect(resolver).await.map_err(|e| format!("resolver {resolver}: {e}"))?;
    let id: u16 = rand::random();
    let mut query = Message::new(id, MessageType::Query, OpCode::Query);
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(name.clone(), rtype));
    let bytes = query.to_vec().map_err(|e| format!("encode: {e}"))?;
    let mut buf = vec![0u8; 4096];
    for _attempt in 0..2 {
        socket.send(&bytes).await.map_err(|e| format!("resolver {resolver}: {e}"))?;
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) => return Err(format!("resolver {resolver}: {e}")),
                Ok(Ok(n)) => {
                    let Ok(answer) = Message::from_vec(&buf[..n]) else { continue };
                    if answer.metadata.id == id && answer.metadata.message_type == MessageType::Response {
                        if answer.metadata.truncation {
                            return ask_tcp(resolver, &bytes, id).await;
                        }
                        return Ok(answer);
                    }
                }
            }
        }
    }
    Err(format!("resolver {resolver} did not answer"))
}

/// The same question over TCP, for answers too big for UDP.
async fn ask_tcp(resolver: SocketAddr, query: &[u8], id: u16) -> Result<Message, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(resolver).await?;
        let len = u16::try_from(query.len()).map_err(std::io::Error::other)?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        stream.write_all(&framed).await?;
        let answer_len = stream.read_u16().await?;
        let mut answer = vec![0u8; usize::from(answer_len)];
        stream.read_exact(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let bytes = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| format!("resolver {resolver} did not answer over TCP"))?
        .map_err(|e| format!("resolver {resolver} over TCP: {e}"))?;
    let answer = Message::from_vec(&bytes).map_err(|e| format!("resolver {resolver}: bad answer ({e})"))?;
    if answer.metadata.id != id {
        return Err(format!("resolver {resolver}: mismatched answer"));
    }
    Ok(answer)
}

fn same_name(a: &Name, b: &str) -> bool {
    a.to_ascii().trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// Checks `_acme-challenge.<domain>` (dns-01) against `expected` (the
/// fulldomain) through the resolver at `resolver`.
pub async fn check_cname(resolver: SocketAddr, domain: &str, expected: &str) -> CnameStatus {
    let domain = domain.trim().trim_start_matches("*.").trim_end_matches('.');
    check_challenge_name(resolver, &format!("_acme-challenge.{domain}"), expected).await
}

/// Checks the challenge name `challenge` — `_acme-challenge.<domain>`, or
/// dns-account-01's `_<label>._acme-challenge.<domain>` (see
/// `certdns_core::Registration::challenge_name`) — against `expected`.
pub async fn check_challenge_name(resolver: SocketAddr, challenge: &str, expected: &str) -> CnameStatus {
    let challenge = challenge.trim().trim_end_matches('.');
    let name = match Name::from_ascii(format!("{challenge}.")) {
        Ok(n) => n,
        Err(e) => return CnameStatus::Unknown { reason: format!("{challenge:?} is not a valid domain name ({e})") },
    };
    let cname = match ask(resolver, &name, RecordType::CNAME).await {
        Ok(m) => m,
        Err(reason) => return CnameStatus::Unknown { reason },
    };
    match cname.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        other => return CnameStatus::Unknown { reason: format!("the resolver answered {other}") },
    }
    let target = cname.answers.iter().find_map(|r| match &r.data {
        RData::CNAME(c) if same_name(&r.name, &name.to_ascii()) => Some(c.0.to_ascii()),
        _ => None,
    });
    if let Some(target) = target {
        return if same_name(&Name::from_ascii(&target).unwrap_or_default(), expected) {
            CnameStatus::Correct
        } else {
            CnameStatus::PointsElsewhere { target: target.trim_end_matches('.').to_owned() }
        };
    }
    if cname.metadata.response_code == ResponseCode::NoError {
        // NODATA for CNAME: something else lives at the name. A TXT there shadows the delegation.
        if let Ok(txt) = ask(resolver, &name, RecordType::TXT).await {
            let values: Vec<String> = txt
                .answers
                .iter()
                .filter(|r| same_name(&r.name, &name.to_ascii()))
                .filter_map(|r| match &r.data {
                    RData::TXT(t) => {
                        Some(t.txt_data.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<String>())
                    }
                    _ => None,
                })
                .collect();
            if !values.is_empty() {
                return CnameStatus::ShadowedByTxt { values };
            }
        }
    }
    CnameStatus::Missing
}
