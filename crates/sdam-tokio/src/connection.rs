//! One monitoring (or RTT) connection: a task that owns its socket, sends the hellos the core
//! asks for as OP_MSG and reads their replies with `sdam-wire` framing.
//!
//! The task ends (dropping the socket) after the first failure it reports, when the driver
//! drops its command channel, or when the driver aborts it.

use std::sync::Arc;
use std::time::Duration;

use bson::RawDocumentBuf;
use sdam::{ConnectionId, FailureKind, RequestId, ServerAddress};
use sdam_wire::MonitorConnection;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::driver::{Counted, Report, Stats};

/// What the driver asks a connection task to do.
#[derive(Debug)]
pub(crate) enum Op {
    /// Send a hello and read its (first) reply.
    Send { request: RequestId, command: RawDocumentBuf, exhaust_allowed: bool, timeout: Option<Duration> },
    /// Read the next reply of a streaming exchange.
    Read { request: RequestId, timeout: Option<Duration> },
}

impl Op {
    pub(crate) fn request(&self) -> RequestId {
        match self {
            Self::Send { request, .. } | Self::Read { request, .. } => *request,
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
}

/// A byte stream to a server: TCP, TLS over TCP, or a Unix socket.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A failed exchange: the kind the core wants and a message for the server description.
type Failure = (FailureKind, String);

fn network(error: String) -> Failure {
    (FailureKind::Network, error)
}

/// Runs one connection: opens it for `first` (a `Send` whose hello is the handshake), then
/// serves the driver's ops in order until something fails or the driver lets go.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    settings: Arc<Settings>,
    stats: Arc<Stats>,
    connection: ConnectionId,
    address: ServerAddress,
    connect_timeout: Option<Duration>,
    first: Op,
    mut ops: mpsc::UnboundedReceiver<Op>,
    reports: mpsc::UnboundedSender<Report>,
) {
    let request = first.request();
    let stream = match with_timeout(connect_timeout, connect(&settings, &address)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            let failure = network(format!("could not connect to {address}: {error}"));
            let _ = reports.send(Report::Monitor { connection, request, result: Err(failure) });
            return;
        }
        Err(limit) => {
            let failure = (
                FailureKind::Timeout,
                format!("could not connect to {address} within {} ms", limit.as_millis()),
            );
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
        let timeout = match &op {
            Op::Send { timeout, .. } | Op::Read { timeout, .. } => *timeout,
        };
        match with_timeout(timeout, self.exchange_inner(op)).await {
            Ok(Ok((reply, more_to_come))) => {
                Ok(Reply { reply, round_trip_time: start.elapsed(), more_to_come })
            }
            Ok(Err(failure)) => Err(failure),
            Err(limit) => Err((
                FailureKind::Timeout,
                format!("no reply from {} within {} ms", self.address, limit.as_millis()),
            )),
        }
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

/// Runs `future` within `limit` (none: no limit); `Err(limit)` when it ran out.
async fn with_timeout<F: std::future::Future>(
    limit: Option<Duration>,
    future: F,
) -> Result<F::Output, Duration> {
    match limit.filter(|d| !d.is_zero()) {
        Some(limit) => tokio::time::timeout(limit, future).await.map_err(|_| limit),
        None => Ok(future.await),
    }
}

/// Opens the byte stream to `address`.
async fn connect(settings: &Settings, address: &ServerAddress) -> std::io::Result<Box<dyn Stream>> {
    match address {
        ServerAddress::Tcp { host, port } => {
            let tcp = tokio::net::TcpStream::connect((&**host, *port)).await?;
            tcp.set_nodelay(true)?;
            #[cfg(feature = "tls")]
            if let Some(tls) = &settings.tls {
                return Ok(Box::new(tls.connect(host, tcp).await?));
            }
            #[cfg(not(feature = "tls"))]
            let _ = settings;
            Ok(Box::new(tcp))
        }
        #[cfg(unix)]
        ServerAddress::Unix { path } => Ok(Box::new(tokio::net::UnixStream::connect(&**path).await?)),
        #[allow(unreachable_patterns)]
        other => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("{other} is not an address this platform can connect to"),
        )),
    }
}
