//! Batched UDP I/O: every packet waiting on the socket taken with one
//! `recvmmsg`, their answers sent with one `sendmmsg`, through nix's safe
//! wrappers. Two system calls per batch instead of two per query: at full load
//! the kernel's per-call cost was most of what a query cost (callgrind sees only
//! user space; the CPU time per query at a fixed rate sees both).
//!
//! `MSG_WAITFORONE` blocks for the first packet only and takes whatever else is
//! already queued, so a lone query is answered as soon as it arrives: batching
//! adds no waiting, it only happens when packets queue up.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};

/// Packets per system call: enough to amortise the call, small enough that the
/// first answer of a batch does not wait long for the last one to be computed.
pub(crate) const BATCH: usize = 32;

/// Received packets: `BATCH` buffers of `size` bytes, filled by [`Inbox::receive`].
pub(crate) struct Inbox {
    buffers: Vec<u8>,
    size: usize,
    headers: MultiHeaders<SockaddrStorage>,
    /// Length and source of each packet of the last batch.
    got: Vec<(usize, Option<SocketAddr>)>,
}

impl Inbox {
    pub fn new(size: usize) -> Self {
        Self {
            buffers: vec![0; BATCH * size],
            size,
            headers: MultiHeaders::preallocate(BATCH, None),
            got: Vec::with_capacity(BATCH),
        }
    }

    /// Waits for at least one packet (or the socket's read timeout) and takes
    /// every packet already queued, up to `BATCH`. Returns how many.
    pub fn receive(&mut self, fd: RawFd) -> io::Result<usize> {
        self.got.clear();
        // On the stack: no allocation per batch.
        let mut chunks = self.buffers.chunks_mut(self.size);
        let mut slices: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let received = recvmmsg(fd, &mut self.headers, slices.iter_mut(), MsgFlags::MSG_WAITFORONE, None)
            .map_err(io::Error::from)?;
        self.got.extend(received.map(|m| (m.bytes, m.address.as_ref().and_then(std_addr))));
        Ok(self.got.len())
    }

    /// Packet `i` of the last batch and where it came from.
    pub fn packet(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let (len, src) = self.got.get(i)?;
        let start = i * self.size;
        Some((self.buffers.get(start..start + (*len).min(self.size))?, (*src)?))
    }
}

fn std_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddrV4::from(*v4).into());
    }
    addr.as_sockaddr_in6().map(|v6| SocketAddrV6::from(*v6).into())
}

/// Answers waiting to be sent, one buffer per slot, reused across batches.
pub(crate) struct Outbox {
    answers: Vec<Vec<u8>>,
    destinations: Vec<Option<SockaddrStorage>>,
    headers: MultiHeaders<SockaddrStorage>,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            answers: (0..BATCH).map(|_| Vec::with_capacity(capacity)).collect(),
            destinations: Vec::with_capacity(BATCH),
            headers: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// The buffer the next answer is written into; [`Outbox::push`] queues it.
    pub fn next_buffer(&mut self) -> &mut Vec<u8> {
        let at = self.destinations.len().min(BATCH - 1);
        &mut self.answers[at]
    }

    /// Queues what was written into [`Outbox::next_buffer`] for `dst`.
    pub fn push(&mut self, dst: SocketAddr) {
        if self.destinations.len() < BATCH {
            self.destinations.push(Some(dst.into()));
        }
    }

    /// Sends every queued answer. One that cannot be sent (the kernel's send
    /// buffer full for the write timeout, an unreachable network) is dropped,
    /// as a lone `send_to` would drop it; the rest still go.
    pub fn flush(&mut self, fd: RawFd) {
        let count = self.destinations.len();
        let slices: [[IoSlice<'_>; 1]; BATCH] =
            std::array::from_fn(|i| [IoSlice::new(self.answers.get(i).map_or(&[][..], |a| &a[..]))]);
        let no_control: [ControlMessage<'_>; 0] = [];
        let mut sent = 0;
        while sent < count {
            let (Some(s), Some(d)) = (slices.get(sent..count), self.destinations.get(sent..count)) else { break };
            match sendmmsg(fd, &mut self.headers, s, d, no_control, MsgFlags::empty()) {
                Ok(done) => sent += done.count().max(1),
                Err(error) => {
                    let dst = self.destinations.get(sent).copied().flatten().map(|a| a.to_string());
                    tracing::debug!(%error, ?dst, "could not send a DNS answer");
                    sent += 1;
                }
            }
        }
        self.destinations.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_batch_in_and_out() {
        round_trip("127.0.0.1:0");
    }

    #[test]
    fn ipv6_sources_too() {
        // Not every build machine has an IPv6 loopback.
        if UdpSocket::bind("[::1]:0").is_ok() {
            round_trip("[::1]:0");
        }
    }

    fn round_trip(addr: &str) {
        let server = UdpSocket::bind(addr).unwrap();
        server.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let client = UdpSocket::bind(addr).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for i in 0..40u8 {
            client.send_to(&[i; 3], server.local_addr().unwrap()).unwrap();
        }
        let mut inbox = Inbox::new(2);
        let mut outbox = Outbox::new(8);
        let mut seen = 0;
        while seen < 40 {
            let n = inbox.receive(server.as_raw_fd()).unwrap();
            assert!((1..=BATCH).contains(&n));
            for i in 0..n {
                let (packet, src) = inbox.packet(i).unwrap();
                assert_eq!(packet.len(), 2, "cut to the buffer size");
                assert_eq!(src, client.local_addr().unwrap());
                let out = outbox.next_buffer();
                out.clear();
                out.extend([packet[0], 0xaa]);
                outbox.push(src);
                seen += 1;
            }
            outbox.flush(server.as_raw_fd());
        }
        let mut buf = [0u8; 8];
        for i in 0..40u8 {
            let (len, _) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..len], &[i, 0xaa]);
        }
    }
}
