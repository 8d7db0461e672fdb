//! DNS over TCP: an accept loop per listener and a task per connection that
//! reads whatever the client has pipelined, answers every whole message in it
//! (the fast path first, as over UDP, then the general path), and writes all of
//! their answers with one write.
//!
//! hickory's `Server` did this before, one message at a time: a buffer
//! allocated per message, the parse and encode of the general path, the answer
//! passed through a channel to the writer and written with a system call of its
//! own, and the idle timer re-armed per message. That was 1.9× Knot's CPU per
//! query (`loadtest/README.md`).
//!
//! The protections are hickory's, plus a cap on connections:
//! * a connection is closed when a whole message has not arrived within
//!   `tcp_idle_secs` of the previous one (or of the accept): a client trickling
//!   a message byte by byte is idle too;
//! * it is closed when its answers cannot be written within `tcp_idle_secs` (a
//!   client that sends but does not read);
//! * at most `tcp_max_connections` at once: one accepted over the cap is closed
//!   at once (and counted), so a flood of idle connections cannot exhaust file
//!   descriptors or memory;
//! * a connection holds at most one message being read (≤ 64 KiB) and
//!   [`FLUSH_AT`] bytes of answers not yet written; messages are answered in
//!   order, one connection at a time, as before.
//!
//! As with hickory's server: a message of fewer than 12 bytes gets no answer, an
//! empty one (length 0) closes the connection, and nothing is rate-limited
//! (a spoofed source cannot complete a handshake).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::listen::Protocol;
use crate::responder::Responder;

/// A connection's read buffer to begin with; it grows to hold one whole
/// message when a longer one arrives, and shrinks back after it.
const READ_BUFFER: usize = 4096;
/// Answers are written once this many bytes are waiting, even mid-batch.
pub(crate) const FLUSH_AT: usize = 16 * 1024;
const LENGTH_PREFIX: usize = 2;
/// After a failed accept (out of file descriptors, say), a pause before the
/// next, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(20);

/// What a TCP client may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpLimits {
    pub idle: Duration,
    pub max_connections: usize,
}

/// Accepts and serves connections until `shutdown`; open connections are
/// dropped then.
pub(crate) async fn serve(
    listener: TcpListener,
    responder: Arc<Responder>,
    limits: TcpLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let (stream, src) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // The listener itself is gone: the responder cannot go on.
                Err(e) if matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::NotConnected) => return Err(e),
                Err(e) => {
                    tracing::debug!(error = %e, "TCP accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return Ok(()),
        };
        while connections.try_join_next().is_some() {}
        if !crate::udp::answerable(src) {
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%src, "TCP connection closed: dns.tcp_max_connections reached");
            responder.metrics().tcp_refused();
            continue;
        };
        let responder = responder.clone();
        connections.spawn(async move {
            let _slot = slot;
            connection(stream, src, &responder, limits.idle).await;
        });
    }
}

/// The body length of the whole message at the start of `buf`, if all of it is there.
fn whole_message(buf: &[u8]) -> Option<usize> {
    let len = usize::from(u16::from_be_bytes([*buf.first()?, *buf.get(1)?]));
    (buf.len() >= LENGTH_PREFIX + len).then_some(len)
}

/// The bytes needed to hold the message being read, once its length is known.
fn message_room(buf: &[u8]) -> usize {
    match (buf.first(), buf.get(1)) {
        (Some(&hi), Some(&lo)) => LENGTH_PREFIX + usize::from(u16::from_be_bytes([hi, lo])),
        _ => LENGTH_PREFIX,
    }
}

async fn connection(mut stream: TcpStream, src: SocketAddr, responder: &Responder, idle: Duration) {
    // Answers go out as soon as they are written, never held back by Nagle.
    let _ = stream.set_nodelay(true);
    let mut input = vec![0u8; READ_BUFFER];
    let mut filled = 0;
    let mut output = Vec::with_capacity(READ_BUFFER);
    let mut answer = Vec::with_capacity(512);
    let mut deadline = Instant::now() + idle;
    loop {
        let mut at = 0;
        while let Some(len) = input.get(at..filled).and_then(whole_message) {
            if len == 0 {
                return;
            }
            let Some(message) = input.get(at + LENGTH_PREFIX..at + LENGTH_PREFIX + len) else { return };
            at += LENGTH_PREFIX + len;
            answer_one(message, src, responder, &mut answer, &mut output);
            if output.len() >= FLUSH_AT {
                if !write(&mut stream, &output, Instant::now() + idle).await {
                    return;
                }
                output.clear();
            }
        }
        if at > 0 {
            input.copy_within(at..filled, 0);
            filled -= at;
            deadline = Instant::now() + idle;
        }
        if !output.is_empty() {
            if !write(&mut stream, &output, deadline).await {
                return;
            }
            output.clear();
        }
        // Room for the whole message being read (what is left in the buffer is
        // less than one); back to the usual size after a long one.
        let room = message_room(input.get(..filled).unwrap_or_default()).max(READ_BUFFER);
        if input.len() < room {
            input.resize(room, 0);
        } else if input.len() > room {
            input.truncate(room);
            input.shrink_to_fit();
        }
        let Some(free) = input.get_mut(filled..) else { return };
        filled += match timeout_at(deadline, stream.read(free)).await {
            // Closed by the client, at a message boundary or not.
            Ok(Ok(0)) => return,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%src, error = %e, "TCP read failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%src, "TCP connection idle for dns.tcp_idle_secs, closed");
                return;
            }
        };
    }
}

/// Answers one message, appending the answer with its length prefix to `output`.
fn answer_one(message: &[u8], src: SocketAddr, responder: &Responder, answer: &mut Vec<u8>, output: &mut Vec<u8>) {
    let answered = responder.answer_fast(message, src, Protocol::Tcp, answer)
        || crate::general::answer(message, src, Protocol::Tcp, responder, answer);
    // The general path caps a TCP answer at 65,535 bytes, the fast path never
    // comes near it; anything longer could not be framed and is not sent.
    if answered
        && !answer.is_empty()
        && let Ok(len) = u16::try_from(answer.len())
    {
        output.extend_from_slice(&len.to_be_bytes());
        output.extend_from_slice(answer);
    }
}

/// Writes `bytes` whole before `deadline`; false when the connection is done.
async fn write(stream: &mut TcpStream, bytes: &[u8], deadline: Instant) -> bool {
    match timeout_at(deadline, stream.write_all(bytes)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TCP write failed");
            false
        }
        Err(_) => {
            tracing::debug!("TCP answers not taken within dns.tcp_idle_secs, closed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_found_whole_or_not_at_all() {
        assert_eq!(whole_message(&[]), None);
        assert_eq!(whole_message(&[0]), None);
        assert_eq!(whole_message(&[0, 0]), Some(0));
        assert_eq!(whole_message(&[0, 3, 1, 2]), None);
        assert_eq!(whole_message(&[0, 3, 1, 2, 3]), Some(3));
        assert_eq!(whole_message(&[0, 3, 1, 2, 3, 0, 9]), Some(3), "the next message's bytes stay");
        assert_eq!(whole_message(&[0xff, 0xff, 1]), None);
        assert_eq!(message_room(&[0xff, 0xff, 1]), 65_537);
        assert_eq!(message_room(&[0x01]), LENGTH_PREFIX);
    }
}
