//! Runs the request handler on raw packet bytes, without sockets, the way the
//! server would: for the fuzz target under `fuzz/` and the robustness tests.
//! Not part of the stable interface.

use std::sync::Arc;

use certdns_replication::Replica;

use crate::config::{RrlConfig, ZoneConfig};
use crate::listen::Protocol;
use crate::responder::Responder;
use crate::rrl::Rrl;
use crate::zone::Zone;

/// Where the harness's packets come from.
const SRC: ([u8; 4], u16) = ([192, 0, 2, 1], 5300);

pub struct PacketHarness {
    responder: Responder,
}

impl PacketHarness {
    pub fn new(zone: &ZoneConfig, replica: Arc<Replica>, rrl: &RrlConfig) -> Result<Self, String> {
        let zone = Arc::new(Zone::compile(zone)?);
        Ok(Self { responder: Responder::new(zone, replica, Rrl::new(rrl).map(Arc::new)) })
    }

    /// The encoded answer to `packet`, or `None` where the server sends nothing
    /// (shorter than a header, a response, or rate-limited). The fast path
    /// first, as in the server.
    pub async fn answer(&self, packet: &[u8], protocol: Protocol) -> Option<Vec<u8>> {
        match self.answer_fast(packet, protocol) {
            Some(answer) => answer,
            None => self.answer_hickory(packet, protocol).await,
        }
    }

    /// The fast path alone: `None` where it declines the packet, else what it
    /// sends (`Some(None)`: nothing).
    pub fn answer_fast(&self, packet: &[u8], protocol: Protocol) -> Option<Option<Vec<u8>>> {
        let mut out = Vec::new();
        self.responder.answer_fast(packet, SRC.into(), protocol, &mut out).then(|| (!out.is_empty()).then_some(out))
    }

    /// The answer through hickory's parser and encoder only (the general path,
    /// as the server runs it: FORMERR for an unparsable packet with a readable
    /// header), never the fast path: what the fast path must match byte for byte.
    pub async fn answer_hickory(&self, packet: &[u8], protocol: Protocol) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        crate::general::answer(packet, SRC.into(), protocol, &self.responder, &mut out).then_some(out)
    }
}
