//! Sockets: connecting (TCP, optionally TLS), sending an `OP_MSG` and reading replies, every
//! step under one overall deadline however the bytes arrive.
//!
//! Each socket is created (with socket2) before it connects and shared, not duplicated,
//! between the connection's thread and the driver's [`SocketSlot`]: one file descriptor per
//! connection, and a close shuts the socket down whatever it is doing (on Linux that aborts a
//! connect in flight too). TLS is driven by hand over the socket (rustls' `read_tls` /
//! `write_tls`), so every socket read and write waits at most until the deadline: a server
//! dripping one byte at a time cannot stretch it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bson::RawDocument;
use sdam::{FailureKind, ServerAddress};
use sdam_adapter::socks5::{ProxyOptions, Socks5Connect, Socks5Error};
use sdam_wire::{MonitorConnection, Reply};

use crate::connection::Settings;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The TLS client configuration, if the client uses TLS.
#[cfg(feature = "tls")]
pub(crate) type TlsContext = Option<Arc<rustls::ClientConfig>>;
/// Without the `tls` feature there is nothing to configure.
#[derive(Debug, Clone, Default)]
#[cfg(not(feature = "tls"))]
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
}

/// One overall deadline for a step (connect + TLS + hello, or one reply): `None` is no limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    /// When the step began, to say how long it was given.
    started: Instant,
}

impl Deadline {
    pub(crate) fn new(at: Option<Instant>, started: Instant) -> Self {
        Self { at, started }
    }

    /// The time left, `Ok(None)` without a limit, or the timeout failure once it passed.
    fn left(&self, what: &str, address: &ServerAddress) -> Result<Option<Duration>, Failure> {
        let Some(at) = self.at else { return Ok(None) };
        match at.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            Some(left) => Ok(Some(left)),
            None => Err(self.timed_out(what, address)),
        }
    }

    fn timed_out(&self, what: &str, address: &ServerAddress) -> Failure {
        // Rounded up: the deadline was computed a moment before `started` was read.
        let ms =
            self.at.map_or(0, |at| at.saturating_duration_since(self.started).as_micros().div_ceil(1000));
        Failure { kind: FailureKind::Timeout, error: format!("{what} {address} timed out after {ms} ms") }
    }

    /// An I/O error of step `what`: a socket timeout is this deadline passing.
    fn io(&self, what: &str, address: &ServerAddress, e: &io::Error) -> Failure {
        if is_timeout(e) {
            return self.timed_out(what, address);
        }
        Failure::network(format!("{what} {address} failed: {e}"))
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

/// A connection's socket, reachable from the driver so a close interrupts whatever the
/// connection's thread is blocked in (connect, TLS handshake, read, write).
#[derive(Debug, Default)]
pub(crate) struct SocketSlot(Mutex<(bool, Option<Arc<Socket>>)>);

impl SocketSlot {
    fn lock(&self) -> MutexGuard<'_, (bool, Option<Arc<Socket>>)> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes the socket (now, or as soon as one is attached).
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

    /// Shares `socket` with the slot (the same descriptor); `false` if the connection was
    /// closed meanwhile.
    fn attach(&self, socket: &Arc<Socket>) -> bool {
        let mut slot = self.lock();
        if slot.0 {
            return false;
        }
        slot.1 = Some(Arc::clone(socket));
        true
    }
}

/// An open connection speaking `OP_MSG`.
pub(crate) struct Wire {
    address: ServerAddress,
    socket: Arc<Socket>,
    #[cfg(feature = "tls")]
    tls: Option<rustls::ClientConnection>,
    /// Request ids, the reply matcher, the receive buffer and the size limit.
    wire: MonitorConnection,
}

/// Opens a connection to `address` by `deadline`: TCP (through the SOCKS5 `proxy` when
/// given, which is then told the host name as written), then TLS when configured.
pub(crate) fn connect(
    address: &ServerAddress,
    deadline: Deadline,
    settings: &Settings,
    slot: &SocketSlot,
) -> Result<Wire, Failure> {
    let ServerAddress::Tcp { host, port } = address else {
        return Err(Failure::network(format!(
            "{address}: Unix domain sockets are not supported by sdam-std"
        )));
    };
    let (dial_host, dial_port) = match &settings.proxy {
        Some(proxy) => (proxy.host.as_str(), proxy.port),
        None => (&**host, *port),
    };
    let dialled = |what: &str| match &settings.proxy {
        Some(proxy) => format!("{what} the SOCKS5 proxy {}:{} for {address}", proxy.host, proxy.port),
        None => format!("{what} {address}"),
    };
    let addrs: Vec<SocketAddr> = (dial_host, dial_port)
        .to_socket_addrs()
        .map_err(|e| Failure::network(format!("{}: {e}", dialled("cannot resolve"))))?
        .collect();
    let mut last = Failure::network(format!("{} resolved to no address", dialled("the host of")));
    let mut connected = None;
    for addr in addrs {
        match connect_one(address, addr, deadline, slot, settings.proxy.is_some()) {
            Ok(socket) => {
                connected = Some(socket);
                break;
            }
            Err(failure) if failure.kind == FailureKind::Timeout || slot.is_closed() => return Err(failure),
            Err(failure) => last = failure,
        }
    }
    let socket = connected.ok_or(last)?;
    let _ = socket.set_tcp_nodelay(true);
    if let Some(proxy) = &settings.proxy {
        socks5_connect(&socket, proxy, host, *port, deadline, address)?;
    }
    let mut wire = Wire {
        address: address.clone(),
        socket,
        #[cfg(feature = "tls")]
        tls: None,
        wire: MonitorConnection::new().with_max_message_size(settings.max_message_size),
    };
    wire.start_tls(host, &settings.tls, deadline)?;
    Ok(wire)
}

/// Asks the SOCKS5 proxy on `socket` for a tunnel to `host:port` (the name as written: the
/// proxy resolves it), by `deadline`. A refusal is a network error (socks5.md).
fn socks5_connect(
    socket: &Socket,
    proxy: &ProxyOptions,
    host: &str,
    port: u16,
    deadline: Deadline,
    address: &ServerAddress,
) -> Result<(), Failure> {
    const WHAT: &str = "the SOCKS5 handshake for";
    let refused = |e: Socks5Error| {
        Failure::network(format!("SOCKS5 proxy {}:{} for {address}: {e}", proxy.host, proxy.port))
    };
    let credentials = proxy.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let mut socks = Socks5Connect::new(host, port, credentials).map_err(refused)?;
    let mut buf = [0u8; 262];
    loop {
        if let Some(out) = socks.take_output() {
            write_all(socket, &out, deadline, WHAT, address)?;
        }
        if socks.is_connected() {
            return Ok(());
        }
        let want = socks.bytes_needed().min(buf.len());
        let n = read_some(socket, buf.get_mut(..want).unwrap_or_default(), deadline, WHAT, address)?;
        if n == 0 {
            return Err(Failure::network(format!(
                "SOCKS5 proxy {}:{} closed the connection during the handshake for {address}",
                proxy.host, proxy.port
            )));
        }
        socks.feed(buf.get(..n).unwrap_or_default()).map_err(refused)?;
    }
}

/// Writes all of `bytes`, waiting at most until the deadline.
fn write_all(
    socket: &Socket,
    bytes: &[u8],
    deadline: Deadline,
    what: &str,
    address: &ServerAddress,
) -> Result<(), Failure> {
    let mut rest = bytes;
    while !rest.is_empty() {
        socket
            .set_write_timeout(deadline.left(what, address)?)
            .map_err(|e| deadline.io(what, address, &e))?;
        match (&*socket).write(rest) {
            Ok(0) => return Err(Failure::network(format!("{address}: the connection was closed"))),
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.io(what, address, &e)),
        }
    }
    Ok(())
}

/// Reads some bytes (0: closed by the peer), waiting at most until the deadline.
fn read_some(
    socket: &Socket,
    buf: &mut [u8],
    deadline: Deadline,
    what: &str,
    address: &ServerAddress,
) -> Result<usize, Failure> {
    loop {
        socket.set_read_timeout(deadline.left(what, address)?).map_err(|e| deadline.io(what, address, &e))?;
        match (&*socket).read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.io(what, address, &e)),
        }
    }
}

fn connect_one(
    address: &ServerAddress,
    addr: SocketAddr,
    deadline: Deadline,
    slot: &SocketSlot,
    proxied: bool,
) -> Result<Arc<Socket>, Failure> {
    let what = if proxied { "connecting to the SOCKS5 proxy for" } else { "connecting to" };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map(Arc::new)
        .map_err(|e| Failure::network(format!("cannot create a socket for {address}: {e}")))?;
    if !slot.attach(&socket) {
        return Err(Failure::network(format!("the connection to {address} was closed")));
    }
    let target = SockAddr::from(addr);
    let result = match deadline.left(what, address)? {
        Some(left) => socket.connect_timeout(&target, left),
        None => socket.connect(&target),
    };
    match result {
        Ok(()) => Ok(socket),
        Err(_) if slot.is_closed() => {
            Err(Failure::network(format!("the connection to {address} was closed")))
        }
        Err(e) => Err(deadline.io(what, address, &e)),
    }
}

impl Wire {
    #[cfg(feature = "tls")]
    fn start_tls(&mut self, host: &str, tls: &TlsContext, deadline: Deadline) -> Result<(), Failure> {
        let Some(config) = tls else { return Ok(()) };
        let address = &self.address;
        let name = rustls_pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| Failure::network(format!("{address}: {host} is not a TLS server name: {e}")))?;
        let mut conn = rustls::ClientConnection::new(Arc::clone(config), name)
            .map_err(|e| Failure::network(format!("{address}: TLS: {e}")))?;
        while conn.is_handshaking() {
            flush_tls(&mut conn, &self.socket, deadline, address)?;
            if conn.is_handshaking() {
                read_tls(&mut conn, &self.socket, deadline, address, "the TLS handshake with")?;
            }
        }
        flush_tls(&mut conn, &self.socket, deadline, address)?;
        self.tls = Some(conn);
        Ok(())
    }

    #[cfg(not(feature = "tls"))]
    #[allow(clippy::unused_self, clippy::unnecessary_wraps)]
    fn start_tls(&mut self, _host: &str, _tls: &TlsContext, _deadline: Deadline) -> Result<(), Failure> {
        Ok(())
    }

    /// Sends `command` as an `OP_MSG` (with `exhaustAllowed` when asked) by `deadline`.
    pub(crate) fn send(
        &mut self,
        command: &RawDocument,
        exhaust_allowed: bool,
        deadline: Deadline,
    ) -> Result<(), Failure> {
        let bytes = self
            .wire
            .send(command, exhaust_allowed)
            .map_err(|e| Failure::network(format!("cannot send the hello to {}: {e}", self.address)))?;
        #[cfg(feature = "tls")]
        if let Some(conn) = self.tls.as_mut() {
            conn.writer()
                .write_all(&bytes)
                .map_err(|e| Failure::network(format!("TLS with {}: {e}", self.address)))?;
            return flush_tls(conn, &self.socket, deadline, &self.address);
        }
        write_all(&self.socket, &bytes, deadline, "sending to", &self.address)
    }

    /// Reads the next reply by `deadline`. Malformed or oversized frames fail the exchange.
    pub(crate) fn read(&mut self, deadline: Deadline) -> Result<Reply, Failure> {
        if !self.wire.awaiting_reply() {
            return Err(Failure::network(format!(
                "asked to read a streamed reply from {}, but none is expected",
                self.address
            )));
        }
        let mut chunk = [0u8; 16 * 1024];
        let mut next = self.wire.poll_reply();
        loop {
            match next {
                Ok(Some(reply)) => return Ok(reply),
                Err(e) => return Err(Failure::network(format!("{}: {e}", self.address))),
                Ok(None) => {}
            }
            let n = self.read_some(&mut chunk, deadline)?;
            if n == 0 {
                return Err(Failure::network(format!("{} closed the connection", self.address)));
            }
            next = self.wire.feed(chunk.get(..n).unwrap_or_default());
        }
    }

    /// Reads some plaintext (0: the server closed the connection).
    fn read_some(&mut self, chunk: &mut [u8], deadline: Deadline) -> Result<usize, Failure> {
        const WHAT: &str = "waiting for the reply from";
        #[cfg(feature = "tls")]
        if let Some(conn) = self.tls.as_mut() {
            loop {
                match conn.reader().read(chunk) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(Failure::network(format!("TLS with {}: {e}", self.address))),
                }
                read_tls(conn, &self.socket, deadline, &self.address, WHAT)?;
                flush_tls(conn, &self.socket, deadline, &self.address)?;
            }
        }
        read_some(&self.socket, chunk, deadline, WHAT, &self.address)
    }
}

/// Reads TLS records from the socket once (waiting at most until the deadline) and processes
/// them.
#[cfg(feature = "tls")]
fn read_tls(
    conn: &mut rustls::ClientConnection,
    socket: &Socket,
    deadline: Deadline,
    address: &ServerAddress,
    what: &str,
) -> Result<(), Failure> {
    loop {
        socket.set_read_timeout(deadline.left(what, address)?).map_err(|e| deadline.io(what, address, &e))?;
        match conn.read_tls(&mut &*socket) {
            Ok(0) => return Err(Failure::network(format!("{address} closed the connection during TLS"))),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.io(what, address, &e)),
        }
    }
    if let Err(e) = conn.process_new_packets() {
        // Tell the server why (an alert), best effort.
        let _ = conn.write_tls(&mut &*socket);
        return Err(Failure::network(format!("TLS with {address}: {e}")));
    }
    Ok(())
}

/// Writes what the TLS state wants to send, waiting at most until the deadline.
#[cfg(feature = "tls")]
fn flush_tls(
    conn: &mut rustls::ClientConnection,
    socket: &Socket,
    deadline: Deadline,
    address: &ServerAddress,
) -> Result<(), Failure> {
    const WHAT: &str = "sending to";
    while conn.wants_write() {
        socket
            .set_write_timeout(deadline.left(WHAT, address)?)
            .map_err(|e| deadline.io(WHAT, address, &e))?;
        match conn.write_tls(&mut &*socket) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(deadline.io(WHAT, address, &e)),
        }
    }
    Ok(())
}

/// The transport's own deadlines, without the core: whatever the core does, a connection's
/// thread gives up by its deadline and says so.
#[cfg(all(test, feature = "tls"))]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use sdam_testserver::hostile::{Behaviour, HostileServer};

    use super::{connect, Deadline, SocketSlot};
    use crate::connection::Settings;

    const LIMIT: Duration = Duration::from_millis(1000);

    fn settings(server: &HostileServer) -> Settings {
        let path = std::env::temp_dir().join(format!(
            "sdam-std-transport-ca-{}-{}.pem",
            std::process::id(),
            server.address().port().unwrap_or(0)
        ));
        std::fs::write(&path, server.ca_pem().unwrap()).unwrap();
        let options = sdam_adapter::TlsOptions { ca_file: Some(path.clone()), ..Default::default() };
        let tls = sdam_adapter::tls::client_config(&options).unwrap();
        let _ = std::fs::remove_file(path);
        Settings {
            tls: Some(Arc::clone(&tls)),
            max_message_size: sdam_wire::DEFAULT_MAX_MESSAGE_SIZE,
            proxy: None,
        }
    }

    fn assert_on_time(started: Instant, error: &str) {
        let took = started.elapsed();
        assert!(took <= LIMIT + LIMIT / 10, "gave up after {took:?}: {error}");
        assert!(error.ends_with("timed out after 1000 ms"), "{error}");
    }

    #[test]
    fn a_dripping_tls_handshake_fails_by_the_deadline() {
        let server = HostileServer::start_tls(Behaviour::DripHandshake(Duration::from_millis(200))).unwrap();
        let settings = settings(&server);
        let started = Instant::now();
        let deadline = Deadline::new(Some(started + LIMIT), started);
        let failure = connect(&server.address(), deadline, &settings, &SocketSlot::default()).err().unwrap();
        assert_on_time(started, &failure.error);
        assert!(failure.error.starts_with("the TLS handshake with"), "{}", failure.error);
    }

    #[test]
    fn a_reply_dripped_after_the_tls_handshake_fails_by_the_deadline() {
        let server = HostileServer::start_tls(Behaviour::DripReply(Duration::from_millis(200))).unwrap();
        let settings = settings(&server);
        let started = Instant::now();
        let deadline = Deadline::new(Some(started + LIMIT), started);
        let mut wire = connect(&server.address(), deadline, &settings, &SocketSlot::default()).unwrap();
        wire.send(&bson::rawdoc! { "hello": 1, "$db": "admin" }, false, deadline).unwrap();
        let failure = wire.read(deadline).err().unwrap();
        assert_on_time(started, &failure.error);
        assert!(failure.error.starts_with("waiting for the reply from"), "{}", failure.error);
    }
}
