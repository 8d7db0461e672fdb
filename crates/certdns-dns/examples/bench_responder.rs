//! Benchmark driver for the responder (used by `loadtest/dns/run.sh`; not a
//! product binary).
//!
//! * `serve --names N --port P [--udp-sockets K] [--udp-threads T] [--zone-file F] [--query-file F]`:
//!   loads N synthetic registrations (two values each) into a replica, writes the
//!   same names as a Knot zone file and a dnsperf query file, and answers on
//!   127.0.0.1:P until SIGINT/SIGTERM. `--one-by-one` fills the replica change by
//!   change instead of from one snapshot vector.
//! * `redis-load --names N --redis URL --prefix P [--fill]`: optionally publishes
//!   N registrations to Redis, then loads them through the real `Follower`, and
//!   prints the snapshot load time and the resident size of the process holding
//!   them while it answers DNS.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a tool: failing loudly is the point

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certdns_core::{Subdomain, TxtState, TxtValue};
use certdns_dns::{DnsConfig, Protocol, ZoneConfig};
use certdns_replication::{Change, Distribution, Follower, RedisDistribution, Replica};
use tokio_util::sync::CancellationToken;

const ZONE: &str = "auth.bench.test";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn num(args: &[String], name: &str, default: usize) -> usize {
    arg(args, name).map_or(default, |v| v.parse().expect(name))
}

/// splitmix64: the same names on every run, and for Knot and certdns alike.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn subdomain(i: u64) -> Subdomain {
    Subdomain::from_u128(u128::from(mix(i)) << 64 | u128::from(mix(i ^ 0xdead_beef)))
}

fn value(i: u64, slot: u64) -> TxtValue {
    TxtValue::parse(&format!("{:0>43}", format!("{:x}{slot}", mix(i.wrapping_mul(7) + slot)))).unwrap()
}

fn state(i: u64) -> TxtState {
    TxtState::values(subdomain(i), 1, vec![value(i, 1), value(i, 2)])
}

fn zone_config() -> ZoneConfig {
    ZoneConfig {
        domain: ZONE.into(),
        nameservers: vec![format!("ns1.{ZONE}")],
        records: vec![format!("ns1.{ZONE}. A 127.0.0.1")],
        hostmaster: "hostmaster@bench.test".into(),
        ..ZoneConfig::default()
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// The Knot zone: the same SOA/NS and the same two TXT values per name.
fn knot_zone(n: u64) -> String {
    let mut z = format!(
        "$ORIGIN {ZONE}.\n$TTL 3600\n@ SOA ns1 hostmaster.bench.test. 1 7200 900 1209600 60\n@ NS ns1\nns1 A 127.0.0.1\n"
    );
    for i in 0..n {
        let s = state(i);
        for v in &s.values {
            writeln!(z, "{} 1 TXT \"{}\"", s.subdomain, v.as_str()).unwrap();
        }
    }
    z
}

/// A mixed query stream: mostly TXT of registered names in random order, some
/// unknown names (NXDOMAIN) and some apex SOA/NS, as a CA's resolvers would send.
fn queries(n: u64, count: u64) -> String {
    let mut q = String::new();
    for k in 0..count {
        let r = mix(k ^ 0x5151);
        match r % 100 {
            0..=89 => writeln!(q, "{}.{ZONE} TXT", subdomain(r % n)).unwrap(),
            90..=94 => writeln!(q, "{}.{ZONE} TXT", subdomain(n + r % 1_000_000)).unwrap(),
            95..=97 => writeln!(q, "{ZONE} SOA").unwrap(),
            _ => writeln!(q, "{ZONE} NS").unwrap(),
        }
    }
    q
}

async fn serve(args: &[String]) {
    let n = num(args, "--names", 1_000) as u64;
    let port = num(args, "--port", 15353) as u16;
    if let Some(path) = arg(args, "--zone-file") {
        std::fs::write(&path, knot_zone(n)).unwrap();
    }
    if let Some(path) = arg(args, "--query-file") {
        std::fs::write(&path, queries(n, 200_000)).unwrap();
    }
    let replica = Replica::new();
    if args.iter().any(|a| a == "--one-by-one") {
        // No snapshot vector: what the replica itself costs, without the
        // fragmentation a materialised snapshot leaves behind.
        for i in 0..n {
            replica.apply(&Change::Upsert(state(i)));
        }
    } else if args.iter().any(|a| a == "--consume-snapshot") {
        // A whole snapshot vector, but each state freed as soon as it is in the
        // replica: what a `reset` taking the snapshot by value would cost.
        let states: Vec<TxtState> = (0..n).map(state).collect();
        for s in states {
            replica.apply(&Change::Upsert(s));
        }
    } else {
        let states: Vec<TxtState> = (0..n).map(state).collect();
        replica.reset(&states);
        drop(states);
    }
    let dns = DnsConfig {
        listen: vec![([127, 0, 0, 1], port).into()],
        udp_sockets: num(args, "--udp-sockets", DnsConfig::default().udp_sockets),
        udp_threads: num(args, "--udp-threads", 0),
        ..DnsConfig::default()
    };
    let bound = certdns_dns::bind(&dns, &zone_config(), replica).await.expect("bind");
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stopper.cancel();
    });
    eprintln!("bench_responder: {n} names on {:?}, rss {:.1} MiB", bound.local_addrs(), rss_mib());
    bound.run(cancel).await.expect("serve");
}

async fn redis_load(args: &[String]) {
    let n = num(args, "--names", 1_000_000) as u64;
    let url = arg(args, "--redis").unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let prefix = arg(args, "--prefix").expect("--prefix (a private key prefix)");
    let dist = Arc::new(RedisDistribution::connect(&url, &prefix).await.expect("Redis"));
    if args.iter().any(|a| a == "--fill") {
        let started = Instant::now();
        // As a writer does: claim a generation, publish everything, mark it
        // complete; a follower only loads a complete generation's snapshot.
        let generation = dist.begin_generation().await.expect("generation");
        let batch = 5_000;
        let mut i = 0;
        while i < n {
            let changes: Vec<Change> = (i..(i + batch).min(n)).map(|k| Change::Upsert(state(k))).collect();
            dist.publish(&changes).await.expect("publish");
            i += batch;
        }
        let id = generation.id().expect("a claimed generation").to_owned();
        assert!(dist.complete_generation(&id).await.expect("complete"), "generation {id} taken over");
        eprintln!("filled {n} registrations in {:.1} s", started.elapsed().as_secs_f64());
    }
    let rss_before = rss_mib();
    let replica = Replica::new();
    let follower = Follower::new(dist, replica.clone(), certdns_replication::ResponderId::generate("bench"));
    let health = follower.health();
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let following = tokio::spawn(follower.run(cancel.clone()));
    while !health.is_loaded() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let load_secs = started.elapsed().as_secs_f64();

    // A responder holding it, answering a query, as in production.
    let dns = DnsConfig { listen: vec![([127, 0, 0, 1], 0).into()], udp_sockets: 2, ..DnsConfig::default() };
    let bound = certdns_dns::bind(&dns, &zone_config(), replica.clone()).await.expect("bind");
    let udp = bound.local_addrs().into_iter().find(|(p, _)| *p == Protocol::Udp).expect("udp").1;
    let serving = tokio::spawn(bound.run(cancel.clone()));
    let answered = answers_txt(udp, subdomain(n / 2)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "registrations={} load_seconds={load_secs:.2} rss_mib={:.1} rss_before_load_mib={rss_before:.1} answered={answered}",
        replica.len(),
        rss_mib()
    );
    cancel.cancel();
    let _ = following.await;
    let _ = serving.await;
}

/// One raw TXT query; true when it comes back NOERROR with two answers.
async fn answers_txt(server: std::net::SocketAddr, s: Subdomain) -> bool {
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::query();
    m.add_query(Query::query(Name::from_ascii(format!("{s}.{ZONE}.")).unwrap(), RecordType::TXT));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&m.to_vec().unwrap(), server).await.unwrap();
    let mut buf = vec![0; 4096];
    let Ok(Ok(len)) = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await else {
        return false;
    };
    Message::from_vec(&buf[..len])
        .is_ok_and(|r| r.metadata.response_code == ResponseCode::NoError && r.answers.len() == 2)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            // As the binary should: hickory logs every request at info.
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info,hickory_server=warn".into()),
        ))
        .with_writer(std::io::stderr)
        .init();
    // The production recorder with the binary's latency buckets
    // (crates/certdns/src/telemetry.rs), so the metric updates and their upkeep
    // are paid for as in production (without buckets every sample goes into a
    // summary sketch at upkeep, which production never pays).
    let buckets =
        [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets_for_metric(metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()), &buckets)
        .expect("buckets")
        .install_recorder()
        .expect("recorder");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                recorder.run_upkeep();
                let _ = recorder.render();
            }
        });
        match args.get(1).map(String::as_str) {
            Some("serve") => serve(&args).await,
            Some("redis-load") => redis_load(&args).await,
            _ => eprintln!("usage: bench_responder serve|redis-load [options] (see the source)"),
        }
    });
}
