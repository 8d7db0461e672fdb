//! The UDP receive loop: one thread per socket, each packet parsed and answered
//! in place, in batches (see `batch`): the fast path (`fast`) answers the common
//! questions, everything else goes through hickory's parser and encoder.
//!
//! hickory's `Server` spawns a task per UDP packet and routes every answer
//! through a channel to a sender task; for an authoritative server whose answers
//! never wait on anything (the replica is in memory), that machinery is most of
//! the cost. Here each socket has a thread doing a blocking `recvmmsg`, running
//! the fast path or the same [`RequestHandler`] to completion in one poll
//! (nothing in it can be pending: the lookup is lock-free and the hickory path's
//! send is a plain blocking `send_to`), and sending the batch's answers with one
//! `sendmmsg`, with buffers reused across batches. Several sockets
//! share the port (SO_REUSEPORT), so the kernel spreads packets over the cores.
//! TCP stays with hickory's `Server`.

use std::io;
use std::net::UdpSocket;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::FutureExt;
use hickory_proto::op::{Header, MessageType, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol as NetProtocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use crate::batch::{Inbox, Outbox};
use crate::responder::Responder;

/// Largest query accepted; a DNS query is far smaller, anything beyond is cut
/// (and so fails to parse: FORMERR).
const MAX_QUERY: usize = 4096;
/// Room for an answer of the largest size we ever send over UDP.
const ANSWER_CAPACITY: usize = 1280;
/// How often an idle socket thread checks for shutdown.
const STOP_CHECK: Duration = Duration::from_millis(200);
const SEND_TIMEOUT: Duration = Duration::from_millis(100);

pub(crate) fn serve(socket: UdpSocket, responder: Arc<Responder>, stopped: Arc<AtomicBool>) -> io::Result<()> {
    socket.set_nonblocking(false)?;
    // Wake up now and then to notice a shutdown.
    socket.set_read_timeout(Some(STOP_CHECK))?;
    // A full send buffer must not stall the thread for long; the answer is dropped.
    socket.set_write_timeout(Some(SEND_TIMEOUT))?;
    let socket = Arc::new(socket);
    let fd = socket.as_raw_fd();
    let mut inbox = Inbox::new(MAX_QUERY);
    let mut outbox = Outbox::new(ANSWER_CAPACITY);
    while !stopped.load(Ordering::Relaxed) {
        let received = match inbox.receive(fd) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
            // ICMP errors from earlier sends and the like surface here; they are
            // about someone else's packet, not this socket.
            Err(e) if !matches!(e.kind(), io::ErrorKind::NotConnected | io::ErrorKind::ConnectionAborted) => {
                tracing::debug!(error = %e, "UDP receive error");
                continue;
            }
            Err(e) => return Err(e),
        };
        for i in 0..received {
            let Some((packet, src)) = inbox.packet(i) else { continue };
            if !answerable(src) {
                continue;
            }
            let out = outbox.next_buffer();
            if responder.answer_fast(packet, src, out) {
                if !out.is_empty() {
                    outbox.push(src);
                }
            } else if answer(packet, src, &socket, &responder).now_or_never().is_none() {
                // Cannot happen (see the module comment); if it ever does, that one
                // query goes unanswered rather than the loop blocking on it.
                tracing::warn!("a UDP answer did not complete in one poll and was dropped");
            }
        }
        outbox.flush(fd);
    }
    Ok(())
}

/// Never answer to port 0, an unspecified or a broadcast address.
fn answerable(src: SocketAddr) -> bool {
    src.port() != 0
        && match src.ip() {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_broadcast(),
            IpAddr::V6(v6) => !v6.is_unspecified(),
        }
}

async fn answer(packet: &[u8], src: SocketAddr, socket: &Arc<UdpSocket>, responder: &Responder) {
    let reply = Reply { socket: socket.clone(), dst: src };
    let request = match Request::from_bytes(packet.to_vec(), src, NetProtocol::Udp) {
        Ok(request) => request,
        Err(_) => {
            let started = std::time::Instant::now();
            if form_error(packet, reply).await {
                responder.metrics().answered(None, ResponseCode::FormErr, started.elapsed());
            }
            return;
        }
    };
    // Never answer a response: that is how reflection loops start.
    if request.metadata.message_type == MessageType::Response {
        return;
    }
    responder.handle_request::<_, TokioTime>(&request, reply).await;
}

/// A packet with a readable header but an unreadable body: FORMERR, as hickory's
/// server does. Shorter than a header, or a response: nothing. Returns whether
/// a FORMERR was sent.
async fn form_error(packet: &[u8], mut reply: Reply) -> bool {
    let Ok(header) = Header::read(&mut BinDecoder::new(packet)) else { return false };
    if header.metadata.message_type == MessageType::Response {
        return false;
    }
    let Ok(no_queries) = Queries::read(&mut BinDecoder::new(&[]), 0) else { return false };
    let response = MessageResponseBuilder::new(&no_queries, None).error_msg(&header.metadata, ResponseCode::FormErr);
    match reply.send_response(response).await {
        Ok(_) => true,
        Err(error) => {
            tracing::debug!(%error, "could not send FORMERR");
            false
        }
    }
}

/// Sends one answer straight from the handler's task.
#[derive(Clone)]
struct Reply {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

#[async_trait]
impl ResponseHandler for Reply {
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
        // The handler already sized the answer to fit; this cap is the same
        // backstop hickory applies (the client's EDNS size, else 512).
        let max = response.edns().map_or(512, |e| e.max_payload());
        let mut bytes = Vec::with_capacity(ANSWER_CAPACITY);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = response.destructive_emit(&mut encoder)?;
        // Try without waiting first: the socket is almost always writable.
        self.socket.send_to(&bytes, self.dst)?;
        Ok(info)
    }
}
