//! The fleet keeps every answer: split roles on Postgres and a Redis of the
//! test's own, which the tests kill, restart empty, replicate and pause.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use certdns_testkit::{PrivateRedis, TestPostgres};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::support::*;

/// An api role and `responders` dns roles on `pg` and the Redis at `redis_url`
/// (the responders reading `read_url` instead, when given).
struct Fleet {
    api: Certdns,
    responders: Vec<Certdns>,
    _dir: tempfile::TempDir,
}

/// Where the fleet's Redis is: the primary, a replica for the responders to
/// read, the key prefix.
struct RedisAt<'a> {
    url: &'a str,
    read_url: Option<&'a str>,
    prefix: &'a str,
}

impl Fleet {
    async fn start(pg: &TestPostgres, redis: RedisAt<'_>, responders: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("CERTDNS_DATABASE_URL", pg.url()),
            ("CERTDNS_REDIS_URL", redis.url),
            ("CERTDNS_REDIS_PREFIX", redis.prefix),
        ];
        let api = Certdns::start(dir.path(), &["serve", "--role", "api", "--http-listen", "127.0.0.1:0"], &env).await;
        let mut dns_env = vec![("CERTDNS_REDIS_URL", redis.url), ("CERTDNS_REDIS_PREFIX", redis.prefix)];
        if let Some(read_url) = redis.read_url {
            dns_env.push(("CERTDNS_REDIS_READ_URL", read_url));
        }
        let dns_args = ["serve", "--role", "dns", "--http-listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0"];
        let mut started = Vec::new();
        for _ in 0..responders {
            started.push(Certdns::start(dir.path(), &dns_args, &dns_env).await);
        }
        let fleet = Self { api, responders: started, _dir: dir };
        fleet.wait_for_responders(responders as u64).await;
        fleet
    }

    async fn api_ready(&self) -> Value {
        reqwest::get(format!("{}/ready", self.api.http_url())).await.unwrap().json().await.unwrap()
    }

    /// Until the api counts `n` live responders.
    async fn wait_for_responders(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let ready = self.api_ready().await;
            if ready["checks"]["distribution"]["live_responders"] == n {
                return;
            }
            assert!(Instant::now() < deadline, "{n} live responders expected: {ready}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) {
        for r in self.responders {
            r.stop().await;
        }
        self.api.stop().await;
    }
}

/// `/update`'s status, body and how long it took.
async fn timed_update(http: &str, reg: &Value, txt: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(format!("{http}/update"))
        .header("X-Api-User", reg["username"].as_str().unwrap())
        .header("X-Api-Key", reg["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": reg["subdomain"], "txt": txt }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap(), started.elapsed())
}

fn signal(server: &Certdns, sig: &str) {
    let status = std::process::Command::new("kill").args([sig, &server.pid().to_string()]).status().unwrap();
    assert!(status.success());
}

/// `/update` answers when every live responder serves the value, saying so with
/// `propagationDelaySeconds: 0`. A paused responder (SIGSTOP) costs a bounded
/// wait, then drops out of the membership and no longer holds writes up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_wait_for_live_responders_and_a_paused_one_drops_out() {
    let pg = TestPostgres::new().await;
    let redis = certdns_testkit::TestRedis::new().await;
    let at = RedisAt { url: redis.url(), read_url: None, prefix: redis.prefix() };
    let fleet = Fleet::start(&pg, at, 2).await;
    let http = fleet.api.http_url();
    let reg = register(&fleet.api.first_start_base_url().unwrap()).await;
    let fulldomain = reg["fulldomain"].as_str().unwrap().to_owned();

    let (status, body, took) = timed_update(&http, &reg, &valid_txt('a')).await;
    assert_eq!(status, 200);
    assert!(body.ends_with("\"propagationDelaySeconds\": 0}"), "{body}");
    for dns in &fleet.responders {
        // Asked right after the answer, with no retry: already served.
        let answer = dns_query(dns.dns_udp(), &fulldomain, RecordType::TXT).await;
        assert_eq!(txt_values(&answer), [valid_txt('a')], "served by every responder when /update answers");
    }
    eprintln!("update with 2 live responders: {took:?}");

    // One responder pauses: the next update waits for it until the bound (2 s).
    signal(&fleet.responders[1], "-STOP");
    let (status, body, took) = timed_update(&http, &reg, &valid_txt('b')).await;
    assert_eq!(status, 200);
    assert!(body.ends_with("\"propagationDelaySeconds\": 2}"), "not confirmed: the usual delay: {body}");
    assert!(took >= Duration::from_millis(1900) && took < Duration::from_millis(3500), "bounded: {took:?}");
    // After its liveness bound it has left; writes are fast and confirmed again.
    fleet.wait_for_responders(1).await;
    let (_, body, took) = timed_update(&http, &reg, &valid_txt('c')).await;
    assert!(body.ends_with("\"propagationDelaySeconds\": 0}"), "{body}");
    assert!(took < Duration::from_millis(1000), "{took:?}");

    // Resumed, it catches up and rejoins.
    signal(&fleet.responders[1], "-CONT");
    fleet.wait_for_responders(2).await;
    let answer = wait_for_txt(fleet.responders[1].dns_udp(), &fulldomain, 2).await;
    assert_eq!(txt_values(&answer), [valid_txt('c'), valid_txt('b')]);
    fleet.stop().await;
}

/// A Redis that restarts empty (no persistence, as a cache-only Redis or a
/// failover to an empty replica) must not erase the DNS: the responders keep
/// their replicas, the api republishes the store into a new generation at once,
/// and every name is answered throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_erases_no_answer() {
    let pg = TestPostgres::new().await;
    let port = PrivateRedis::free_port();
    let mut redis = PrivateRedis::start(port).await;
    let url = redis.url();
    let fleet = Fleet::start(&pg, RedisAt { url: &url, read_url: None, prefix: "certdns:" }, 2).await;
    let (http, base_url) = (fleet.api.http_url(), fleet.api.first_start_base_url().unwrap());
    let mut expected: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..20 {
        let reg = register(&base_url).await;
        let value = format!("{:0>43}", i);
        update(&http, &reg, &value).await;
        expected.insert(reg["fulldomain"].as_str().unwrap().to_owned(), vec![value]);
    }
    for dns in &fleet.responders {
        for (name, values) in &expected {
            assert_eq!(&txt_values(&wait_for_txt(dns.dns_udp(), name, 1).await), values);
        }
    }

    // kill -9, and back 3 s later, empty; no /update meanwhile.
    redis.stop();
    let killed = Instant::now();
    let mut restarted: Option<(Instant, PrivateRedis)> = None;
    let mut complete_after = None;
    let (mut asked, mut wrong) = (0u64, Vec::new());
    loop {
        if restarted.is_none() && killed.elapsed() >= Duration::from_secs(3) {
            restarted = Some((Instant::now(), PrivateRedis::start(port).await));
        }
        if restarted.is_none() {
            // Redis away: responders stay ready (they answer from their replicas)
            // until dns.degraded_after_secs; withdrawing them all would be the outage.
            for dns in &fleet.responders {
                let status = reqwest::get(format!("{}/ready", dns.http_url())).await.unwrap().status();
                assert_eq!(status, 200, "a responder stays ready while Redis is briefly away");
            }
        }
        if let Some((at, _)) = &restarted {
            if complete_after.is_none() && fleet.api_ready().await["checks"]["distribution"]["generation"] == "complete"
            {
                complete_after = Some(at.elapsed());
            }
            if at.elapsed() >= Duration::from_secs(60) {
                break;
            }
        }
        for dns in &fleet.responders {
            for (name, values) in &expected {
                let answer = dns_query(dns.dns_udp(), name, RecordType::TXT).await;
                asked += 1;
                if answer.metadata.response_code != ResponseCode::NoError || &txt_values(&answer) != values {
                    wrong.push(format!("{:?} {name}: {:?}", killed.elapsed(), answer.metadata.response_code));
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        wrong.is_empty(),
        "{} wrong or missing answers of {asked}: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let complete_after = complete_after.expect("the republished generation completed");
    eprintln!("redis restart: {asked} answers, 0 wrong; new generation complete {complete_after:?} after the restart");
    assert!(complete_after < Duration::from_secs(15), "{complete_after:?}");
    for dns in &fleet.responders {
        let ready: Value = reqwest::get(format!("{}/ready", dns.http_url())).await.unwrap().json().await.unwrap();
        assert_eq!(ready["checks"]["replica"]["status"], "ok", "loaded the new generation: {ready}");
    }
    fleet.stop().await;
}

/// Responders read a Redis replica in their own PoP; their reports go to the
/// primary, where the api listens. The primary dies: responders keep answering
/// from the replica. It comes back (empty): changes flow again, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responders_read_a_replica_and_survive_the_primary() {
    let pg = TestPostgres::new().await;
    let primary_port = PrivateRedis::free_port();
    let mut primary = PrivateRedis::start(primary_port).await;
    let replica = PrivateRedis::start_replica_of(PrivateRedis::free_port(), primary_port).await;
    let (url, read_url) = (primary.url(), replica.url());
    let fleet = Fleet::start(&pg, RedisAt { url: &url, read_url: Some(&read_url), prefix: "certdns:" }, 1).await;
    let (http, base_url) = (fleet.api.http_url(), fleet.api.first_start_base_url().unwrap());
    let dns = fleet.responders[0].dns_udp();
    let reg = register(&base_url).await;
    let name = reg["fulldomain"].as_str().unwrap().to_owned();
    let (_, body, _) = timed_update(&http, &reg, &valid_txt('a')).await;
    assert!(body.ends_with("\"propagationDelaySeconds\": 0}"), "confirmed through the replica: {body}");
    assert_eq!(txt_values(&dns_query(dns, &name, RecordType::TXT).await), [valid_txt('a')]);

    primary.stop();
    for _ in 0..10 {
        assert_eq!(txt_values(&dns_query(dns, &name, RecordType::TXT).await), [valid_txt('a')], "answered");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (status, _, _) = timed_update(&http, &reg, &valid_txt('b')).await;
    assert_eq!(status, 200, "durable in Postgres while Redis is down");

    let _primary = PrivateRedis::start(primary_port).await;
    // The write made during the outage arrives once the api republishes.
    let answer = wait_for_values(dns, &name, &[valid_txt('b'), valid_txt('a')]).await;
    assert_eq!(answer, [valid_txt('b'), valid_txt('a')]);
    let (_, body, _) = timed_update(&http, &reg, &valid_txt('c')).await;
    assert!(body.ends_with("\"propagationDelaySeconds\": 0}"), "{body}");
    assert_eq!(txt_values(&dns_query(dns, &name, RecordType::TXT).await), [valid_txt('c'), valid_txt('b')]);
    fleet.stop().await;
}

async fn wait_for_values(dns: std::net::SocketAddr, name: &str, want: &[String]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = txt_values(&dns_query(dns, name, RecordType::TXT).await);
        if got == want || Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
