//! The general path: a packet the fast path (`fast`) declined, parsed and
//! answered by hickory's parser, certdns's [`Responder`] rules and hickory's
//! encoder, the way hickory's own server did it. Its answer is written into a
//! buffer, so UDP sends it with the rest of its batch and TCP with the rest of
//! what the connection pipelined.
//!
//! Protocol differences kept from hickory's server: an unparsable packet with a
//! readable header gets FORMERR on both, except a UDP one flagged as a
//! response (never answer a response: that is how reflection loops start);
//! UDP answers are capped at the client's EDNS size (else 512), TCP at 65,535.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::FutureExt;
use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol as NetProtocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use crate::listen::Protocol;
use crate::responder::Responder;

/// Answers `packet` through hickory's parser and encoder, appending the answer
/// to `out`. Returns whether there is an answer (none for fewer than 12 bytes,
/// a response, or a rate-limited UDP question).
pub(crate) fn answer(
    packet: &[u8],
    src: SocketAddr,
    protocol: Protocol,
    responder: &Responder,
    out: &mut Vec<u8>,
) -> bool {
    let capture = Capture { out: Arc::default(), protocol };
    // Nothing in the handler can be pending: the replica lookup is lock-free and
    // the capture only encodes. If it ever were, that one question goes
    // unanswered rather than a receive loop blocking on it.
    if run(packet, src, protocol, responder, capture.clone()).now_or_never().is_none() {
        tracing::warn!("a DNS answer did not complete in one poll and was dropped");
        return false;
    }
    let Ok(mut captured) = capture.out.lock() else { return false };
    match captured.take() {
        Some(bytes) => {
            out.extend_from_slice(&bytes);
            true
        }
        None => false,
    }
}

async fn run(packet: &[u8], src: SocketAddr, protocol: Protocol, responder: &Responder, capture: Capture) {
    let net = match protocol {
        Protocol::Udp => NetProtocol::Udp,
        Protocol::Tcp => NetProtocol::Tcp,
    };
    let request = match Request::from_bytes(packet.to_vec(), src, net) {
        Ok(request) => request,
        Err(_) => {
            let started = std::time::Instant::now();
            if form_error(packet, protocol, capture).await {
                responder.metrics().answered(None, ResponseCode::FormErr, started.elapsed());
            }
            return;
        }
    };
    if request.metadata.message_type == MessageType::Response {
        return;
    }
    responder.handle_request::<_, TokioTime>(&request, capture).await;
}

/// A packet with a readable header but an unreadable body: FORMERR, as hickory's
/// server does. Shorter than a header, or a response over UDP: nothing. Returns
/// whether a FORMERR was written.
async fn form_error(packet: &[u8], protocol: Protocol, mut capture: Capture) -> bool {
    let Ok(header) = Header::read(&mut BinDecoder::new(packet)) else { return false };
    if protocol == Protocol::Udp && header.metadata.message_type == MessageType::Response {
        return false;
    }
    let Ok(no_queries) = Queries::read(&mut BinDecoder::new(&[]), 0) else { return false };
    let response = MessageResponseBuilder::new(&no_queries, None).error_msg(&header.metadata, ResponseCode::FormErr);
    match capture.send_response(response).await {
        Ok(_) => true,
        Err(error) => {
            tracing::debug!(%error, "could not encode FORMERR");
            false
        }
    }
}

/// Encodes the handler's answer where [`answer`] can take it.
#[derive(Clone)]
struct Capture {
    out: Arc<Mutex<Option<Vec<u8>>>>,
    protocol: Protocol,
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
        // The handler already sized the answer to fit; these caps are the
        // backstop hickory's server applies.
        let max = match (self.protocol, response.edns()) {
            (Protocol::Tcp, _) => u16::MAX,
            (Protocol::Udp, Some(edns)) => edns.max_payload(),
            (Protocol::Udp, None) => 512,
        };
        let id = response.metadata().id;
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = match response.destructive_emit(&mut encoder) {
            Ok(info) => info,
            // hickory's server answered an answer it could not encode with a bare
            // SERVFAIL over TCP; over UDP nothing went out.
            Err(error) if self.protocol == Protocol::Tcp => {
                tracing::error!(%error, "could not encode a DNS answer");
                let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
                metadata.response_code = ResponseCode::ServFail;
                let header = Header { metadata, counts: HeaderCounts::default() };
                bytes = header.to_bytes()?;
                ResponseInfo::from(header)
            }
            Err(error) => return Err(error.into()),
        };
        if let Ok(mut out) = self.out.lock() {
            *out = Some(bytes);
        }
        Ok(info)
    }
}
