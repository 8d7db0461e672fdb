//! Fuzzes the DNS request handler with arbitrary packets, exactly as the server
//! would run it (parse, then answer), over both UDP and TCP rules. Checks that
//! nothing panics, that every answer parses, keeps the query id, that UDP
//! answers respect the size we advertise, and that the fast path answers byte
//! for byte as the hickory path does, over UDP and over TCP.
#![no_main]

use std::sync::OnceLock;

use certdns_core::{Subdomain, TxtState, TxtValue};
use certdns_dns::fuzzing::PacketHarness;
use certdns_dns::{EDNS_PAYLOAD, Protocol, RrlConfig, ZoneConfig};
use certdns_replication::Replica;
use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;

struct Setup {
    runtime: tokio::runtime::Runtime,
    harness: PacketHarness,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let zone = ZoneConfig {
            domain: "a.example".into(),
            nameservers: vec!["ns1.a.example".into()],
            records: vec!["ns1.a.example. A 192.0.2.1".into(), "x.y.a.example. TXT \"static\"".into()],
            ..ZoneConfig::default()
        };
        // A fixed subdomain, so the fuzzer can find it: 00000000-0000-0000-0000-000000000001.a.example
        let values = (0..3).map(|i| TxtValue::parse(&format!("{i:0>43}")).expect("valid")).collect();
        let replica =
            Replica::with_states(&[TxtState { subdomain: Subdomain::from_u128(1), version: 1, values, persist: None }]);
        let harness = PacketHarness::new(&zone, replica, &RrlConfig::default()).expect("zone compiles");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        Setup { runtime, harness }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        // The fast path sends exactly what the hickory path sends, or declines.
        if let Some(fast) = s.harness.answer_fast(data, protocol) {
            let hickory = s.runtime.block_on(s.harness.answer_hickory(data, protocol));
            assert_eq!(fast, hickory, "the fast path and the hickory path differ over {protocol}");
        }
        if let Some(answer) = s.runtime.block_on(s.harness.answer(data, protocol)) {
            let m = Message::from_vec(&answer).expect("every answer parses");
            assert_eq!(m.metadata.id, u16::from_be_bytes([data[0], data[1]]));
            if protocol == Protocol::Udp {
                assert!(answer.len() <= usize::from(EDNS_PAYLOAD));
            }
        }
    }
});
