//! Hostile servers for the adapters' deadline and close tests, on loopback: one that stalls,
//! one that drips its TLS handshake a byte at a time, one that drips its `hello` reply a byte
//! at a time after a good handshake, and a listener whose accept queue is full (connects to it
//! hang). Also a count of a process's sockets to given ports (one descriptor per connection).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sdam::ServerAddress;
use sdam_wire::{frame, Framing, OpMsg, DEFAULT_MAX_MESSAGE_SIZE};

use crate::listener::{bind, Acceptor};

/// How often a server thread looks at its stop flag while it waits.
const TICK: Duration = Duration::from_millis(20);

/// A connection being served: a handle on its socket (to shut it down) and its thread.
type Served = (TcpStream, JoinHandle<()>);

/// What a [`HostileServer`] does with each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Accepts and never sends a byte (reads and discards what the client sends).
    Stall,
    /// TLS only: sends its handshake messages one byte every interval.
    DripHandshake(Duration),
    /// Completes the TLS handshake (if any) at full speed, reads the `hello`, then sends a
    /// valid standalone reply one byte every interval (over TLS: the reply is one TLS record,
    /// and its bytes on the wire are dripped).
    DripReply(Duration),
}

/// A server on `127.0.0.1` that misbehaves as told; stopped (every thread joined, every
/// socket closed) when dropped.
#[derive(Debug)]
pub struct HostileServer {
    address: ServerAddress,
    acceptor: Option<Acceptor>,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<Served>>>,
    #[cfg(feature = "tls")]
    ca_pem: Option<String>,
}

impl HostileServer {
    /// Starts a plaintext server. ([`Behaviour::DripHandshake`] then drips the reply.)
    pub fn start(behaviour: Behaviour) -> io::Result<Self> {
        Self::start_inner(behaviour, None)
    }

    /// Starts a TLS server with a fresh CA (see [`ca_pem`](Self::ca_pem)).
    #[cfg(feature = "tls")]
    pub fn start_tls(behaviour: Behaviour) -> io::Result<Self> {
        let material = crate::tls::generate().map_err(io::Error::other)?;
        let ca = material.ca_pem.clone();
        let mut server = Self::start_inner(behaviour, Some(Arc::clone(&material.config)))?;
        server.ca_pem = Some(ca);
        Ok(server)
    }

    fn start_inner(behaviour: Behaviour, tls: Option<Arc<TlsConfig>>) -> io::Result<Self> {
        let listener = bind(0)?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<Served>>> = Arc::default();
        let (flag, table) = (Arc::clone(&stop), Arc::clone(&live));
        let acceptor = Acceptor::spawn(listener, move |stream| {
            let Ok(clone) = stream.try_clone() else { return };
            let (flag, tls) = (Arc::clone(&flag), tls.clone());
            let spawned = thread::Builder::new()
                .name("testserver-hostile".into())
                .spawn(move || serve(stream, tls, behaviour, &flag));
            if let Ok(handle) = spawned {
                table.lock().unwrap_or_else(PoisonError::into_inner).push((clone, handle));
            }
        })?;
        let address = ServerAddress::tcp("127.0.0.1", port).map_err(io::Error::other)?;
        Ok(Self {
            address,
            acceptor: Some(acceptor),
            stop,
            live,
            #[cfg(feature = "tls")]
            ca_pem: None,
        })
    }

    /// Where it listens.
    pub fn address(&self) -> ServerAddress {
        self.address.clone()
    }

    /// The PEM of the CA that signed its certificate (TLS servers only).
    #[cfg(feature = "tls")]
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.stop();
        }
        let live = std::mem::take(&mut *self.live.lock().unwrap_or_else(PoisonError::into_inner));
        for (stream, thread) in live {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            let _ = thread.join();
        }
    }
}

#[cfg(feature = "tls")]
type TlsConfig = rustls::ServerConfig;
/// Without TLS there is no server configuration.
#[cfg(not(feature = "tls"))]
#[derive(Debug)]
enum TlsConfig {}

fn serve(mut tcp: TcpStream, tls: Option<Arc<TlsConfig>>, behaviour: Behaviour, stop: &AtomicBool) {
    let _ = tcp.set_read_timeout(Some(TICK));
    let _ = tcp.set_nodelay(true);
    match (behaviour, tls) {
        (Behaviour::Stall, _) => {
            let mut sink = [0u8; 1024];
            while !stop.load(Ordering::SeqCst) {
                match tcp.read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if is_timeout(&e) => {}
                    Err(_) => return,
                }
            }
        }
        #[cfg(feature = "tls")]
        (Behaviour::DripHandshake(every), Some(config)) => drip_tls_handshake(tcp, config, every, stop),
        #[cfg(feature = "tls")]
        (Behaviour::DripReply(every), Some(config)) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else { return };
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            while stream.conn.is_handshaking() {
                match stream.conn.complete_io(&mut stream.sock) {
                    Ok(_) => {}
                    Err(e) if is_timeout(&e) && !stop.load(Ordering::SeqCst) => {}
                    Err(_) => return,
                }
            }
            drip_reply(&mut Peer::Tls(Box::new(stream)), every, stop);
        }
        (Behaviour::DripHandshake(every) | Behaviour::DripReply(every), _) => {
            drip_reply(&mut Peer::Plain(tcp), every, stop);
        }
    }
}

/// TLS: every byte the server's TLS state wants to send goes out one per `every`.
#[cfg(feature = "tls")]
fn drip_tls_handshake(mut tcp: TcpStream, config: Arc<TlsConfig>, every: Duration, stop: &AtomicBool) {
    let Ok(mut conn) = rustls::ServerConnection::new(config) else { return };
    while !stop.load(Ordering::SeqCst) {
        match conn.read_tls(&mut tcp) {
            Ok(0) => return,
            Ok(_) => {
                if conn.process_new_packets().is_err() {
                    return;
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => return,
        }
        let mut out = Vec::new();
        while conn.wants_write() {
            if conn.write_tls(&mut out).is_err() {
                return;
            }
        }
        for byte in out {
            if stop.load(Ordering::SeqCst) || tcp.write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(every);
        }
    }
}

/// Reads one request, then sends a standalone's hello reply one byte per `every`.
fn drip_reply(stream: &mut Peer, every: Duration, stop: &AtomicBool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let request_id = loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(Framing::Complete(len)) = frame(&buf, DEFAULT_MAX_MESSAGE_SIZE) {
            match OpMsg::parse(&buf[..len]) {
                Ok(request) => break request.request_id,
                Err(_) => return,
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(_) => return,
        }
    };
    let body = bson::rawdoc! {
        "isWritablePrimary": true, "helloOk": true, "maxWireVersion": crate::MAX_WIRE_VERSION,
        "minWireVersion": 0, "maxBsonObjectSize": 16_777_216, "ok": 1.0,
    };
    let mut reply = OpMsg::new(1, &body);
    reply.response_to = request_id;
    let Ok(bytes) = reply.to_vec() else { return };
    let Some(wire) = stream.encode(&bytes) else { return };
    for byte in wire {
        if stop.load(Ordering::SeqCst) || stream.tcp().write_all(&[byte]).is_err() {
            return;
        }
        thread::sleep(every);
    }
    // Then stay silent until the client leaves.
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Err(e) if !is_timeout(&e) => return,
            _ => {}
        }
    }
}

/// A server connection, plain or TLS.
enum Peer {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(stream) => stream.read(buf),
        }
    }

    fn tcp(&mut self) -> &mut TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "tls")]
            Self::Tls(stream) => &mut stream.sock,
        }
    }

    /// The bytes on the wire that carry `plaintext`.
    fn encode(&mut self, plaintext: &[u8]) -> Option<Vec<u8>> {
        match self {
            Self::Plain(_) => Some(plaintext.to_vec()),
            #[cfg(feature = "tls")]
            Self::Tls(stream) => {
                stream.conn.writer().write_all(plaintext).ok()?;
                let mut out = Vec::new();
                while stream.conn.wants_write() {
                    stream.conn.write_tls(&mut out).ok()?;
                }
                Some(out)
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// A listener on `127.0.0.1` that never accepts, with its accept queue filled: a new
/// connection to it is neither accepted nor refused (the kernel drops its SYN), so a connect
/// hangs until its timeout. Closed when dropped.
#[derive(Debug)]
pub struct FullBacklog {
    address: ServerAddress,
    _listener: TcpListener,
    _fillers: Vec<TcpStream>,
}

impl FullBacklog {
    /// Binds with a backlog of 1 and fills the queue.
    pub fn start() -> io::Result<Self> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
        socket.listen(1)?;
        let listener: TcpListener = socket.into();
        let local = listener.local_addr()?;
        let mut fillers = Vec::new();
        // Connections complete until the queue is full; the first one that does not is the
        // proof that the next will hang too.
        for _ in 0..16 {
            match TcpStream::connect_timeout(&local, Duration::from_millis(200)) {
                Ok(stream) => fillers.push(stream),
                Err(_) => break,
            }
        }
        let address = ServerAddress::tcp("127.0.0.1", local.port()).map_err(io::Error::other)?;
        Ok(Self { address, _listener: listener, _fillers: fillers })
    }

    /// Where it listens.
    pub fn address(&self) -> ServerAddress {
        self.address.clone()
    }
}

/// This process's TCP sockets connected to one of `ports` on the remote side (the client
/// ends of connections to those servers), from `/proc`: how many distinct sockets, and how
/// many file descriptors refer to them. Linux only; `None` elsewhere.
pub fn client_socket_descriptors(ports: &[u16]) -> Option<(usize, usize)> {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = |field: Option<&&str>| {
                field.and_then(|f| f.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok())
            };
            let (local, remote) = (port(fields.get(1)), port(fields.get(2)));
            let client_side =
                remote.is_some_and(|p| ports.contains(&p)) && !local.is_some_and(|p| ports.contains(&p));
            if client_side {
                if let Some(inode) = fields.get(9).and_then(|i| i.parse::<u64>().ok()).filter(|&i| i != 0) {
                    inodes.insert(inode);
                }
            }
        }
    }
    let mut descriptors = 0;
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(target) = std::fs::read_link(entry.path()) else { continue };
        let target = target.to_string_lossy();
        let inode = target.strip_prefix("socket:[").and_then(|t| t.strip_suffix(']'));
        if inode.and_then(|i| i.parse::<u64>().ok()).is_some_and(|i| inodes.contains(&i)) {
            descriptors += 1;
        }
    }
    Some((inodes.len(), descriptors))
}
