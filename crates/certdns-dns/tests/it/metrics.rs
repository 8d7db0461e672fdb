//! The responder's metrics, rendered by the Prometheus recorder the binary uses.

use crate::support::*;
use certdns_core::Subdomain;
use certdns_dns::fuzzing::PacketHarness;
use certdns_dns::{Protocol, RrlConfig};
use certdns_replication::Replica;
use hickory_proto::rr::RecordType;
use metrics_exporter_prometheus::PrometheusBuilder;

#[tokio::test]
async fn queries_are_counted_by_qtype_and_rcode_with_latency_and_rrl() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let replica = Replica::with_states(&[]);
    let sub = Subdomain::generate();
    replica.apply(&upsert(sub, 1, &["a"]));
    let rrl = RrlConfig { enabled: true, responses_per_second: 1, burst: 3, slip: 2, ..RrlConfig::default() };
    // Handles are registered when the responder is built: the recorder must be
    // in place by then (the binary installs it before `bind`).
    let harness =
        metrics::with_local_recorder(&recorder, || PacketHarness::new(&zone_config(), replica, &rrl).unwrap());

    let txt = query(&format!("{sub}.{ZONE}."), RecordType::TXT).to_vec().unwrap();
    let nx = query(&format!("nope.{ZONE}."), RecordType::A).to_vec().unwrap();
    let refused = query("example.com.", RecordType::SOA).to_vec().unwrap();
    assert!(harness.answer(&txt, Protocol::Tcp).await.is_some());
    assert!(harness.answer(&nx, Protocol::Tcp).await.is_some());
    assert!(harness.answer(&refused, Protocol::Tcp).await.is_some());
    // UDP: 3 within the burst, then limited (dropped, slipped, dropped, slipped).
    let answered = futures_count(&harness, &txt, 7).await;
    assert_eq!(answered, 5, "3 answers and 2 slipped TC replies");

    let text = handle.render();
    for line in [
        r#"certdns_dns_queries_total{qtype="TXT",rcode="NOERROR"} 6"#,
        r#"certdns_dns_queries_total{qtype="A",rcode="NXDOMAIN"} 1"#,
        r#"certdns_dns_queries_total{qtype="SOA",rcode="REFUSED"} 1"#,
        r#"certdns_dns_rrl_limited_total{action="dropped"} 2"#,
        r#"certdns_dns_rrl_limited_total{action="slipped"} 2"#,
        "certdns_dns_answer_seconds_count 8",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

async fn futures_count(harness: &PacketHarness, packet: &[u8], n: usize) -> usize {
    let mut answered = 0;
    for _ in 0..n {
        if harness.answer(packet, Protocol::Udp).await.is_some() {
            answered += 1;
        }
    }
    answered
}
