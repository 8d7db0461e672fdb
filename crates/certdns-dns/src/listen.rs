//! Sockets: everything is bound up front by [`bind`] (so a taken port fails the
//! start, with the address in the message), then served by [`BoundDns::run`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use certdns_replication::Replica;
use socket2::{Domain, Socket, Type};
use tokio_util::sync::CancellationToken;

use crate::config::{DnsConfig, ZoneConfig};
use crate::responder::Responder;
use crate::rrl::Rrl;
use crate::tcp::TcpLimits;
use crate::zone::Zone;

/// Attempts at finding a port free for both UDP and TCP when port 0 is asked for.
const PORT_ZERO_ATTEMPTS: usize = 16;
/// Kernel receive buffer per UDP socket: absorbs bursts while a core is busy.
const UDP_RECV_BUFFER: usize = 4 << 20;
/// How often the RRL table forgets quiet prefixes.
const RRL_HOUSEKEEPING: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The `[zone]` or `[dns]` configuration is invalid; the message starts with the key.
    #[error("{0}")]
    Config(String),
    #[error("cannot listen for DNS on {protocol} {addr}: {source}")]
    Bind { protocol: Protocol, addr: SocketAddr, source: io::Error },
    #[error("DNS server failed: {0}")]
    Serve(String),
}

/// A responder with all of its sockets bound, not yet serving.
pub struct BoundDns {
    responder: Responder,
    rrl: Option<Arc<Rrl>>,
    /// One per UDP thread (several may share a socket).
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<std::net::TcpListener>,
    tcp_limits: TcpLimits,
}

/// Validates the configuration, compiles the zone and binds every socket.
pub async fn bind(dns: &DnsConfig, zone: &ZoneConfig, replica: Arc<Replica>) -> Result<BoundDns, DnsError> {
    dns.validate().map_err(DnsError::Config)?;
    let compiled = Arc::new(Zone::compile(zone).map_err(DnsError::Config)?);
    let rrl = Rrl::new(&dns.rrl).map(Arc::new);
    let sockets_per_addr = dns.udp_socket_count();
    let threads_per_addr = dns.udp_thread_count();
    // One entry per UDP thread: the sockets of an address, shared round-robin.
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for addr in &dns.listen {
        let (sockets, t) = bind_addr(*addr, sockets_per_addr)?;
        for socket in sockets.iter().cycle().take(threads_per_addr) {
            let shared =
                socket.try_clone().map_err(|source| DnsError::Bind { protocol: Protocol::Udp, addr: *addr, source })?;
            udp.push(shared);
        }
        tcp.push(t);
    }
    tracing::info!(
        zone = %compiled.apex(),
        serial = compiled.serial,
        listen = ?dns.listen,
        udp_sockets_per_address = sockets_per_addr,
        udp_threads_per_address = threads_per_addr,
        rrl = rrl.is_some(),
        "DNS responder bound"
    );
    Ok(BoundDns {
        responder: Responder::new(compiled, replica, rrl.clone()),
        rrl,
        udp,
        tcp,
        tcp_limits: TcpLimits {
            idle: Duration::from_secs(dns.tcp_idle_secs),
            max_connections: dns.tcp_max_connections,
        },
    })
}

/// One address: a TCP listener and `n` UDP sockets sharing the port.
///
/// The TCP listener is bound first and without SO_REUSEPORT: a second responder
/// started on the same port fails there with "address in use" instead of quietly
/// joining the UDP reuse-port group and splitting the traffic.
fn bind_addr(addr: SocketAddr, n: usize) -> Result<(Vec<std::net::UdpSocket>, std::net::TcpListener), DnsError> {
    let attempts = if addr.port() == 0 { PORT_ZERO_ATTEMPTS } else { 1 };
    let mut last_error = None;
    for _ in 0..attempts {
        let tcp = tcp_listener(addr).map_err(|source| DnsError::Bind { protocol: Protocol::Tcp, addr, source })?;
        let port = tcp.local_addr().map_err(|source| DnsError::Bind { protocol: Protocol::Tcp, addr, source })?.port();
        let udp_addr = SocketAddr::new(addr.ip(), port);
        match (0..n).map(|_| udp_socket(udp_addr)).collect::<io::Result<Vec<_>>>() {
            Ok(udp) => return Ok((udp, tcp)),
            // Port 0: TCP got a port whose UDP twin is taken; try another.
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => last_error = Some(e),
            Err(source) => return Err(DnsError::Bind { protocol: Protocol::Udp, addr: udp_addr, source }),
        }
    }
    let source = last_error.unwrap_or_else(|| io::Error::from(io::ErrorKind::AddrInUse));
    Err(DnsError::Bind { protocol: Protocol::Udp, addr, source })
}

fn new_socket(addr: SocketAddr, ty: Type) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, None)?;
    if addr.is_ipv6() {
        // So `[::]:53` and `0.0.0.0:53` can both be listed.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = new_socket(addr, Type::STREAM)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = new_socket(addr, Type::DGRAM)?;
    socket.set_reuse_port(true)?;
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = socket.set_recv_buffer_size(UDP_RECV_BUFFER);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

impl BoundDns {
    /// The addresses actually bound (the real ports when port 0 was asked for),
    /// one entry per address and protocol.
    pub fn local_addrs(&self) -> Vec<(Protocol, SocketAddr)> {
        let mut out: Vec<(Protocol, SocketAddr)> = Vec::new();
        let udp = self.udp.iter().filter_map(|s| s.local_addr().ok()).map(|a| (Protocol::Udp, a));
        let tcp = self.tcp.iter().filter_map(|s| s.local_addr().ok()).map(|a| (Protocol::Tcp, a));
        for entry in udp.chain(tcp) {
            if !out.contains(&entry) {
                out.push(entry);
            }
        }
        out
    }

    /// Serves until `cancel` fires, then stops accepting, lets the listener tasks
    /// finish and returns.
    // Spelled out rather than `async fn` so that `Send` is part of the promise
    // (the binary spawns it), not an inferred property that could silently go.
    #[allow(clippy::manual_async_fn)]
    pub fn run(self, cancel: CancellationToken) -> impl Future<Output = Result<(), DnsError>> + Send {
        async move {
            // A child, so a failing socket stops this responder without cancelling
            // whatever else shares the caller's token.
            let cancel = cancel.child_token();
            // UDP: a thread per entry (see `udp`). The flag is their stop signal:
            // a token's `is_cancelled` takes a lock, too much for every packet.
            let responder = Arc::new(self.responder);
            let stopped = Arc::new(AtomicBool::new(false));
            let mut udp_tasks = tokio::task::JoinSet::new();
            for socket in self.udp {
                let (responder, stopped) = (responder.clone(), stopped.clone());
                udp_tasks.spawn_blocking(move || crate::udp::serve(socket, responder, stopped));
            }
            // TCP: a task per listener, one per connection (see `tcp`).
            let mut tcp_tasks = tokio::task::JoinSet::new();
            for listener in self.tcp {
                let listener =
                    tokio::net::TcpListener::from_std(listener).map_err(|e| DnsError::Serve(e.to_string()))?;
                let (responder, stop) = (responder.clone(), cancel.clone());
                tcp_tasks.spawn(crate::tcp::serve(listener, responder, self.tcp_limits, stop));
            }
            // Raised on cancel, and also when this task is dropped unpolled (the
            // runtime shutting down, e.g. after a panic): otherwise the threads
            // would run on and the runtime would wait for them forever.
            let flag = RaiseOnDrop(stopped.clone());
            let raise_flag = cancel.clone();
            tokio::spawn(async move {
                let _flag = flag;
                raise_flag.cancelled().await;
            });
            let rrl = self.rrl;
            let housekeeping = cancel.clone();
            let stopper = tokio::spawn(async move {
                let mut tick = tokio::time::interval(RRL_HOUSEKEEPING);
                loop {
                    tokio::select! {
                        () = housekeeping.cancelled() => break,
                        _ = tick.tick() => if let Some(rrl) = &rrl { rrl.housekeeping() },
                    }
                }
            });
            let mut result = Ok(());
            loop {
                let (protocol, joined) = tokio::select! {
                    Some(joined) = udp_tasks.join_next() => (Protocol::Udp, joined),
                    Some(joined) = tcp_tasks.join_next() => (Protocol::Tcp, joined),
                    else => break,
                };
                let failure = match joined {
                    Ok(Ok(())) => continue,
                    Ok(Err(e)) => format!("{protocol} socket failed: {e}"),
                    Err(e) => format!("{protocol} task failed: {e}"),
                };
                // One socket gone is a broken responder: stop the rest and say why.
                tracing::error!(error = %failure, "DNS responder stopping");
                cancel.cancel();
                result = Err(DnsError::Serve(failure));
            }
            stopper.abort();
            tracing::info!("DNS responder stopped");
            result
        }
    }
}

/// Sets the UDP threads' stop flag when dropped.
struct RaiseOnDrop(Arc<AtomicBool>);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
