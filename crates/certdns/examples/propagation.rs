//! Propagation benchmark: how long after `/update` returns 200 does every DNS
//! responder answer the new value?
//!
//! ```text
//! cargo run --release -p certdns --example propagation -- \
//!     --base-url http://KEYID:SECRET@127.0.0.1:8080 --dns 127.0.0.1:5301 --dns 127.0.0.1:5302 --updates 1000
//! ```
//! It registers once, then for each update polls every responder over UDP until
//! the new value is in the answer, and prints p50/p90/p99/max of the delay until
//! the *last* responder answered. `loadtest/propagation.sh` starts a deployment
//! and runs this. Bounded: at most `--updates` updates, 2 s per update.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

struct Args {
    base_url: String,
    dns: Vec<SocketAddr>,
    updates: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut base_url = None;
    let mut dns = Vec::new();
    let mut updates = 1000;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--base-url" => base_url = Some(value()?),
            "--dns" => dns.push(value()?.parse().map_err(|e| format!("--dns: {e}"))?),
            "--updates" => updates = value()?.parse().map_err(|e| format!("--updates: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let base_url = base_url.ok_or("--base-url is required")?;
    if dns.is_empty() {
        return Err("at least one --dns address is required".into());
    }
    Ok(Args { base_url, dns, updates })
}

/// `http://user:pass@host:port` → `http://host:port` (for /update, which does not need the key).
fn without_credentials(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

async fn txt_contains(socket: &tokio::net::UdpSocket, server: SocketAddr, query: &[u8], want: &[u8]) -> bool {
    let mut buf = [0u8; 2048];
    if socket.send_to(query, server).await.is_err() {
        return false;
    }
    let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await else {
        return false;
    };
    let Ok(msg) = Message::from_vec(&buf[..n]) else { return false };
    msg.answers.iter().any(|r| matches!(&r.data, RData::TXT(t) if t.txt_data.iter().any(|d| &d[..] == want)))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    let http = reqwest::Client::new();
    let reg: serde_json::Value = http
        .post(format!("{}/register", args.base_url))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let field = |k: &str| reg[k].as_str().map(str::to_owned).ok_or(format!("register response lacks {k}: {reg}"));
    let (user, key, sub, fulldomain) =
        (field("username")?, field("password")?, field("subdomain")?, field("fulldomain")?);
    let api = without_credentials(&args.base_url);

    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii(&fulldomain).map_err(|e| e.to_string())?, RecordType::TXT));
    let query = query.to_vec().map_err(|e| e.to_string())?;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;

    let mut delays = Vec::with_capacity(args.updates);
    let (mut timeouts, mut confirmed, mut first_round) = (0, 0, 0);
    for i in 0..args.updates {
        let value = format!("{i:0>43}");
        let resp = http
            .post(format!("{api}/update"))
            .header("X-Api-User", &user)
            .header("X-Api-Key", &key)
            .json(&serde_json::json!({ "subdomain": sub, "txt": value }))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("update {i} answered {}", resp.status()));
        }
        let acknowledged = Instant::now();
        let body = resp.text().await.map_err(|e| e.to_string())?;
        let everywhere = body.ends_with("\"propagationDelaySeconds\": 0}");
        if !everywhere {
            eprintln!("update {i} not confirmed: {body}");
        }
        confirmed += usize::from(everywhere);
        let deadline = acknowledged + Duration::from_secs(2);
        let mut pending = args.dns.clone();
        let mut rounds = 0;
        while !pending.is_empty() && Instant::now() < deadline {
            rounds += 1;
            let mut still = Vec::new();
            for server in pending {
                if !txt_contains(&socket, server, &query, value.as_bytes()).await {
                    still.push(server);
                }
            }
            pending = still;
        }
        if pending.is_empty() {
            delays.push(acknowledged.elapsed());
            first_round += usize::from(rounds == 1);
        } else {
            timeouts += 1;
        }
    }
    delays.sort();
    if delays.is_empty() {
        return Err("no update was answered within 2 s".into());
    }
    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
    println!(
        "/update confirmed by every responder: {confirmed} of {}; every responder answered at the first question: \
         {first_round} of {}",
        args.updates, args.updates
    );
    println!(
        "propagation over {} updates to {} responders: p50 {} p90 {} p99 {} max {} (timeouts: {timeouts})",
        delays.len(),
        args.dns.len(),
        ms(percentile(&delays, 0.5)),
        ms(percentile(&delays, 0.9)),
        ms(percentile(&delays, 0.99)),
        ms(delays[delays.len() - 1]),
    );
    Ok(())
}
