//! Sockets: connecting with a timeout (TCP, optionally TLS), sending an `OP_MSG` and reading
//! replies with `sdam-wire` framing under a deadline.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bson::{RawDocument, RawDocumentBuf};
use sdam::{FailureKind, ServerAddress};
use sdam_wire::{ConnectionError, MonitorConnection};

/// The TLS client configuration, if the client uses TLS.
#[cfg(feature = "tls")]
pub(crate) type TlsContext = Option<std::sync::Arc<rustls::ClientConfig>>;
/// Without the `tls` feature there is nothing to configure.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsContext;

/// Why an exchange failed, as the core wants it.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: FailureKind,
    pub(crate) error: String,
}

impl Failure {
    pub(crate) fn network(error: String) -> Self {
        Self { kind: FailureKind::Network, error }
    }

    fn io(what: &str, address: &ServerAddress, e: &io::Error) -> Self {
        let kind = match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FailureKind::Timeout,
            _ => FailureKind::Network,
        };
        Self { kind, error: format!("{what} {address}: {e}") }
    }
}

/// A connection's socket, reachable from the driver so a close interrupts a blocked read.
#[derive(Debug, Default)]
pub(crate) struct SocketSlot(Mutex<(bool, Option<TcpStream>)>);

impl SocketSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, (bool, Option<TcpStream>)> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the socket (now, or as soon as it is attached).
    pub(crate) fn close(&self) {
        let mut slot = self.lock();
        slot.0 = true;
        if let Some(s) = slot.1.take() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().0
    }

    /// Keeps a handle on `socket`; `false` if the connection was closed meanwhile.
    fn attach(&self, socket: &TcpStream) -> bool {
        let mut slot = self.lock();
        if slot.0 {
            let _ = socket.shutdown(Shutdown::Both);
            return false;
        }
        slot.1 = socket.try_clone().ok();
        true
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// An open connection speaking `OP_MSG`.
pub(crate) struct Wire {
    address: ServerAddress,
    stream: Box<dyn Stream>,
    /// The TCP socket underneath, for read timeouts.
    tcp: TcpStream,
    /// Request ids, the reply matcher, the receive buffer and the size limit.
    wire: MonitorConnection,
}

/// Opens a connection to `address` within `timeout` (zero: no limit).
pub(crate) fn connect(
    address: &ServerAddress,
    timeout: Duration,
    tls: &TlsContext,
    slot: &SocketSlot,
    max_message_size: usize,
) -> Result<Wire, Failure> {
    let ServerAddress::Tcp { host, port } = address else {
        return Err(Failure::network(format!(
            "{address}: Unix domain sockets are not supported by sdam-std"
        )));
    };
    let addrs: Vec<SocketAddr> =
        (&**host, *port).to_socket_addrs().map_err(|e| Failure::io("cannot resolve", address, &e))?.collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name resolved to no address");
    let tcp = addrs
        .iter()
        .find_map(|a| {
            let attempt = if timeout.is_zero() {
                TcpStream::connect(a)
            } else {
                TcpStream::connect_timeout(a, timeout)
            };
            attempt.map_err(|e| last = e).ok()
        })
        .ok_or_else(|| Failure::io("cannot connect to", address, &last))?;
    let _ = tcp.set_nodelay(true);
    if !slot.attach(&tcp) {
        return Err(Failure::network(format!("connection to {address} closed")));
    }
    let stream = wrap_tls(
        address,
        host,
        tcp.try_clone().map_err(|e| Failure::io("socket", address, &e))?,
        timeout,
        tls,
    )?;
    let wire = MonitorConnection::new().with_max_message_size(max_message_size);
    Ok(Wire { address: address.clone(), stream, tcp, wire })
}

#[cfg(feature = "tls")]
fn wrap_tls(
    address: &ServerAddress,
    host: &str,
    mut tcp: TcpStream,
    timeout: Duration,
    tls: &TlsContext,
) -> Result<Box<dyn Stream>, Failure> {
    let Some(config) = tls else { return Ok(Box::new(tcp)) };
    let name = rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| Failure::network(format!("{address}: invalid TLS server name: {e}")))?;
    let mut conn = rustls::ClientConnection::new(std::sync::Arc::clone(config), name)
        .map_err(|e| Failure::network(format!("{address}: TLS: {e}")))?;
    let _ = tcp.set_read_timeout((!timeout.is_zero()).then_some(timeout));
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| Failure::io("TLS handshake with", address, &e))?;
    }
    Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
}

#[cfg(not(feature = "tls"))]
fn wrap_tls(
    _address: &ServerAddress,
    _host: &str,
    tcp: TcpStream,
    _timeout: Duration,
    _tls: &TlsContext,
) -> Result<Box<dyn Stream>, Failure> {
    Ok(Box::new(tcp))
}

impl Wire {
    /// Sends `command` as an `OP_MSG` (with `exhaustAllowed` when asked).
    pub(crate) fn send(&mut self, command: &RawDocument, exhaust_allowed: bool) -> Result<(), Failure> {
        let bytes = self
            .wire
            .send(command, exhaust_allowed)
            .map_err(|e| Failure::network(format!("cannot send the hello to {}: {e}", self.address)))?;
        self.stream
            .write_all(&bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|e| Failure::io("cannot write to", &self.address, &e))
    }

    /// Reads the next reply within `timeout` (`None`: no limit): its body and whether
    /// `moreToCome` was set. Malformed or oversized frames fail the exchange.
    pub(crate) fn read(&mut self, timeout: Option<Duration>) -> Result<(RawDocumentBuf, bool), Failure> {
        if !self.wire.awaiting_reply() {
            return Err(Failure::network(format!(
                "asked to read a streamed reply from {}, but none is expected",
                self.address
            )));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut chunk = [0u8; 16 * 1024];
        let mut next = self.wire.poll_reply();
        loop {
            match next {
                Ok(Some(reply)) => return Ok((reply.body, reply.more_to_come)),
                Err(e) => return Err(self.malformed(&e)),
                Ok(None) => {}
            }
            let left = match deadline {
                Some(d) => Some(
                    d.checked_duration_since(Instant::now())
                        .filter(|l| !l.is_zero())
                        .ok_or_else(|| self.timed_out(timeout))?,
                ),
                None => None,
            };
            self.tcp.set_read_timeout(left).map_err(|e| Failure::io("socket", &self.address, &e))?;
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Failure::network(format!("connection closed by {}", self.address))),
                Ok(n) => next = self.wire.feed(&chunk[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Err(self.timed_out(timeout));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => next = Ok(None),
                Err(e) => return Err(Failure::io("cannot read from", &self.address, &e)),
            }
        }
    }

    fn malformed(&self, e: &ConnectionError) -> Failure {
        Failure::network(format!("{}: {e}", self.address))
    }

    fn timed_out(&self, timeout: Option<Duration>) -> Failure {
        let ms = timeout.map_or(0, |t| t.as_millis());
        Failure {
            kind: FailureKind::Timeout,
            error: format!("no reply from {} within {ms} ms", self.address),
        }
    }
}
