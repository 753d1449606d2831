//! One monitoring (or RTT) connection: a task that owns its socket, sends the hellos the core
//! asks for as OP_MSG and reads their replies with `sdam-wire` framing.
//!
//! The task ends (dropping the socket) after the first failure it reports, when the driver
//! drops its command channel, or when the driver aborts it.

use std::sync::Arc;
use std::time::Duration;

use bson::RawDocumentBuf;
use sdam::{ConnectionId, FailureKind, RequestId, ServerAddress};
use sdam_adapter::socks5::Socks5Connect;
use sdam_adapter::ProxyOptions;
use sdam_wire::MonitorConnection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::driver::{Counted, Report, Stats};

/// What the driver asks a connection task to do.
#[derive(Debug)]
pub(crate) enum Op {
    /// Send a hello and read its (first) reply by the deadline (for the first op of a
    /// connection, opening it too: connect + TLS + hello by one deadline).
    Send { request: RequestId, command: RawDocumentBuf, exhaust_allowed: bool, deadline: Deadline },
    /// Read the next reply of a streaming exchange by the deadline.
    Read { request: RequestId, deadline: Deadline },
}

impl Op {
    pub(crate) fn request(&self) -> RequestId {
        match self {
            Self::Send { request, .. } | Self::Read { request, .. } => *request,
        }
    }

    fn deadline(&self) -> Deadline {
        match self {
            Self::Send { deadline, .. } | Self::Read { deadline, .. } => *deadline,
        }
    }
}

/// One overall deadline for a step (`at: None`: no limit), and when the step began (to say
/// how long it was given).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    started: Instant,
}

impl Deadline {
    /// The deadline `at` (from the core's command), set at `started`.
    pub(crate) fn new(at: Option<std::time::Instant>, started: std::time::Instant) -> Self {
        Self { at: at.map(Instant::from_std), started: Instant::from_std(started) }
    }

    /// Runs `future` until the deadline; the timeout failure of step `what` if it passes.
    async fn run<F: std::future::Future>(
        self,
        what: &str,
        address: &ServerAddress,
        future: F,
    ) -> Result<F::Output, Failure> {
        match self.at {
            None => Ok(future.await),
            Some(at) => tokio::time::timeout_at(at, future).await.map_err(|_| {
                // Rounded up: the deadline was computed a moment before `started` was read.
                let ms = at.saturating_duration_since(self.started).as_micros().div_ceil(1000);
                (FailureKind::Timeout, format!("{what} {address} timed out after {ms} ms"))
            }),
        }
    }
}

/// What every connection of a client shares.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The largest reply frame accepted.
    pub(crate) max_message_size: usize,
    /// TLS, when the client uses it.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::Connector>,
    /// The SOCKS5 proxy every connection goes through, if any.
    pub(crate) proxy: Option<ProxyOptions>,
}

/// A byte stream to a server: TCP, TLS over TCP, or a Unix socket.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A failed exchange: the kind the core wants and a message for the server description.
type Failure = (FailureKind, String);

fn network(error: String) -> Failure {
    (FailureKind::Network, error)
}

/// Runs one connection: opens it for `first` (a `Send` whose hello is the handshake, all by
/// its deadline), then serves the driver's ops in order until something fails or the driver
/// lets go.
pub(crate) async fn run(
    settings: Arc<Settings>,
    stats: Arc<Stats>,
    connection: ConnectionId,
    address: ServerAddress,
    first: Op,
    mut ops: mpsc::UnboundedReceiver<Op>,
    reports: mpsc::UnboundedSender<Report>,
) {
    let request = first.request();
    let stream = match connect(&settings, &address, first.deadline()).await {
        Ok(stream) => stream,
        Err(failure) => {
            let _ = reports.send(Report::Monitor { connection, request, result: Err(failure) });
            return;
        }
    };
    let mut conn = Connection {
        stream,
        wire: MonitorConnection::new().with_max_message_size(settings.max_message_size),
        address,
        _open: stats.open_connection(),
    };
    let mut op = first;
    loop {
        let request = op.request();
        let result = conn.exchange(op).await;
        let failed = result.is_err();
        if reports.send(Report::Monitor { connection, request, result }).is_err() || failed {
            return; // the driver is gone, or this connection is finished: drop the socket
        }
        match ops.recv().await {
            Some(next) => op = next,
            None => return,
        }
    }
}

/// A reply as the core wants it.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) reply: RawDocumentBuf,
    pub(crate) round_trip_time: Duration,
    pub(crate) more_to_come: bool,
}

struct Connection {
    stream: Box<dyn Stream>,
    /// Request ids, the reply matcher, the receive buffer and the size limit.
    wire: MonitorConnection,
    address: ServerAddress,
    _open: Counted,
}

impl Connection {
    async fn exchange(&mut self, op: Op) -> Result<Reply, Failure> {
        let start = Instant::now();
        let deadline = op.deadline();
        let address = self.address.clone();
        let (reply, more_to_come) =
            deadline.run("waiting for the reply from", &address, self.exchange_inner(op)).await??;
        Ok(Reply { reply, round_trip_time: start.elapsed(), more_to_come })
    }

    async fn exchange_inner(&mut self, op: Op) -> Result<(RawDocumentBuf, bool), Failure> {
        match op {
            Op::Send { command, exhaust_allowed, .. } => {
                let bytes = self
                    .wire
                    .send(&command, exhaust_allowed)
                    .map_err(|e| network(format!("cannot send the hello to {}: {e}", self.address)))?;
                self.stream
                    .write_all(&bytes)
                    .await
                    .map_err(|e| network(format!("could not send to {}: {e}", self.address)))?;
            }
            Op::Read { .. } => {
                if !self.wire.awaiting_reply() {
                    return Err(network(format!(
                        "asked to read a streamed reply from {}, but none is expected",
                        self.address
                    )));
                }
            }
        }
        self.read_reply().await
    }

    /// Reads until the connection state hands back a whole, checked reply.
    async fn read_reply(&mut self) -> Result<(RawDocumentBuf, bool), Failure> {
        let address = &self.address;
        let mut chunk = vec![0u8; 16 * 1024];
        let mut next = self.wire.poll_reply();
        loop {
            match next {
                Ok(Some(reply)) => return Ok((reply.body, reply.more_to_come)),
                Err(e) => return Err(network(format!("{address}: {e}"))),
                Ok(None) => {}
            }
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .map_err(|e| network(format!("could not read from {address}: {e}")))?;
            if n == 0 {
                return Err(network(format!("{address} closed the connection")));
            }
            next = self.wire.feed(chunk.get(..n).unwrap_or_default());
        }
    }
}

/// Opens the byte stream to `address` by `deadline`: TCP, then TLS when configured.
async fn connect(
    settings: &Settings,
    address: &ServerAddress,
    deadline: Deadline,
) -> Result<Box<dyn Stream>, Failure> {
    let failed = |what: &str, e: std::io::Error| network(format!("{what} {address} failed: {e}"));
    match address {
        ServerAddress::Tcp { host, port } => {
            let tcp = match &settings.proxy {
                None => deadline
                    .run("connecting to", address, tokio::net::TcpStream::connect((&**host, *port)))
                    .await?
                    .map_err(|e| failed("connecting to", e))?,
                Some(proxy) => {
                    let what = "connecting to the SOCKS5 proxy for";
                    let mut tcp = deadline
                        .run(what, address, tokio::net::TcpStream::connect((proxy.host.as_str(), proxy.port)))
                        .await?
                        .map_err(|e| failed(what, e))?;
                    let what = "the SOCKS5 handshake for";
                    deadline
                        .run(what, address, socks5_connect(&mut tcp, proxy, host, *port, address))
                        .await??;
                    tcp
                }
            };
            let _ = tcp.set_nodelay(true);
            #[cfg(feature = "tls")]
            if let Some(tls) = &settings.tls {
                let stream = deadline
                    .run("the TLS handshake with", address, tls.connect(host, tcp))
                    .await?
                    .map_err(|e| failed("the TLS handshake with", e))?;
                return Ok(Box::new(stream));
            }
            #[cfg(not(feature = "tls"))]
            let _ = settings;
            Ok(Box::new(tcp))
        }
        #[cfg(unix)]
        ServerAddress::Unix { .. } if settings.proxy.is_some() => Err(network(format!(
            "{address} is a Unix domain socket, which cannot be reached through a SOCKS5 proxy"
        ))),
        #[cfg(unix)]
        ServerAddress::Unix { path } => {
            let unix = deadline
                .run("connecting to", address, tokio::net::UnixStream::connect(&**path))
                .await?
                .map_err(|e| failed("connecting to", e))?;
            Ok(Box::new(unix))
        }
        #[allow(unreachable_patterns)]
        other => Err(network(format!("{other} is not an address this platform can connect to"))),
    }
}

/// Asks the SOCKS5 proxy on `tcp` for a tunnel to `host:port` (the name as written: the proxy
/// resolves it). A refusal is a network error (socks5.md); the caller keeps the deadline.
async fn socks5_connect(
    tcp: &mut tokio::net::TcpStream,
    proxy: &ProxyOptions,
    host: &str,
    port: u16,
    address: &ServerAddress,
) -> Result<(), Failure> {
    let refused =
        |e: String| network(format!("SOCKS5 proxy {}:{} for {address}: {e}", proxy.host, proxy.port));
    let credentials = proxy.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let mut socks = Socks5Connect::new(host, port, credentials).map_err(|e| refused(e.to_string()))?;
    let mut buf = [0u8; 262];
    loop {
        if let Some(out) = socks.take_output() {
            tcp.write_all(&out).await.map_err(|e| refused(e.to_string()))?;
        }
        if socks.is_connected() {
            return Ok(());
        }
        let want = socks.bytes_needed().min(buf.len());
        let n =
            tcp.read(buf.get_mut(..want).unwrap_or_default()).await.map_err(|e| refused(e.to_string()))?;
        if n == 0 {
            return Err(refused("the proxy closed the connection during the handshake".into()));
        }
        socks.feed(buf.get(..n).unwrap_or_default()).map_err(|e| refused(e.to_string()))?;
    }
}
