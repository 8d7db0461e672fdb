//! The UDP receive loop: `dns.udp_threads` threads per address (several may
//! share a socket, see `docs/dns.md`), each packet parsed and answered
//! in place, in batches (see `batch`): the fast path (`fast`) answers the common
//! questions, everything else goes through hickory's parser and encoder
//! (`general`).
//!
//! hickory's `Server` spawns a task per UDP packet and routes every answer
//! through a channel to a sender task; for an authoritative server whose answers
//! never wait on anything (the replica is in memory), that machinery is most of
//! the cost. Here each thread does a blocking `recvmmsg`, running
//! the fast path or the general path to completion, and sending the batch's
//! answers with one `sendmmsg`, with buffers reused across batches. Threads on
//! one socket take packets from one queue: a query waits for whichever thread
//! is free first. Several sockets may share the port (SO_REUSEPORT), the kernel
//! spreading packets over them by source. TCP is `tcp`.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::batch::{Inbox, Outbox};
use crate::listen::Protocol;
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
            let answered = if responder.answer_fast(packet, src, Protocol::Udp, out) {
                !out.is_empty()
            } else {
                crate::general::answer(packet, src, Protocol::Udp, &responder, out)
            };
            if answered {
                outbox.push(src);
            }
        }
        outbox.flush(fd);
    }
    Ok(())
}

/// Never answer to port 0, an unspecified or a broadcast address.
pub(crate) fn answerable(src: SocketAddr) -> bool {
    src.port() != 0
        && match src.ip() {
            IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_broadcast(),
            IpAddr::V6(v6) => !v6.is_unspecified(),
        }
}
