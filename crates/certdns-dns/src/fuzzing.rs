//! Runs the request handler on raw packet bytes, without sockets, the way the
//! server would: for the fuzz target under `fuzz/` and the robustness tests.
//! Not part of the stable interface.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use certdns_replication::Replica;
use hickory_proto::op::MessageType;
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol as NetProtocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;

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
    /// (shorter than a header, a response, unparsable, or rate-limited). UDP
    /// goes through the fast path first, as in the server.
    pub async fn answer(&self, packet: &[u8], protocol: Protocol) -> Option<Vec<u8>> {
        let fast = if protocol == Protocol::Udp { self.answer_fast(packet) } else { None };
        match fast {
            Some(answer) => answer,
            None => self.answer_hickory(packet, protocol).await,
        }
    }

    /// The UDP fast path alone: `None` where it declines the packet, else what
    /// it sends (`Some(None)`: nothing).
    pub fn answer_fast(&self, packet: &[u8]) -> Option<Option<Vec<u8>>> {
        let mut out = Vec::new();
        self.responder.answer_fast(packet, SRC.into(), &mut out).then(|| (!out.is_empty()).then_some(out))
    }

    /// The answer through hickory's parser and encoder only, never the fast
    /// path: what the fast path must match byte for byte.
    pub async fn answer_hickory(&self, packet: &[u8], protocol: Protocol) -> Option<Vec<u8>> {
        let protocol = match protocol {
            Protocol::Udp => NetProtocol::Udp,
            Protocol::Tcp => NetProtocol::Tcp,
        };
        let request = Request::from_bytes(packet.to_vec(), SRC.into(), protocol).ok()?;
        if request.metadata.message_type == MessageType::Response {
            return None;
        }
        let capture = Capture { out: Arc::default(), udp: protocol == NetProtocol::Udp };
        self.responder.handle_request::<_, TokioTime>(&request, capture.clone()).await;
        capture.out.lock().ok()?.take()
    }
}

#[derive(Clone)]
struct Capture {
    out: Arc<Mutex<Option<Vec<u8>>>>,
    udp: bool,
}

#[async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        // The same size rule as hickory's UDP response path.
        let max = match (self.udp, response.edns()) {
            (false, _) => u16::MAX,
            (true, Some(edns)) => edns.max_payload(),
            (true, None) => 512,
        };
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = response.destructive_emit(&mut encoder)?;
        if let Ok(mut out) = self.out.lock() {
            *out = Some(bytes);
        }
        Ok(info)
    }
}
