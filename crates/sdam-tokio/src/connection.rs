//! One monitoring (or RTT) connection: a task that owns its socket, sends the hellos the core
//! asks for as OP_MSG and reads their replies with `sdam-wire` framing.
//!
//! The task ends (dropping the socket) after the first failure it reports, when the driver
//! drops its command channel, or when the driver aborts it.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bson::RawDocumentBuf;
use sdam::{ConnectionId, FailureKind, RequestId, ServerAddress};
use sdam_wire::{frame, Framing, OpMsg, ReplyMatcher, ReplyProgress};
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
    /// OP_MSG requestIDs: unique per client, positive.
    pub(crate) request_ids: AtomicI32,
    /// TLS, when the client uses it.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<crate::tls::Connector>,
}

impl Settings {
    fn next_request_id(&self) -> i32 {
        // Positive and wrapping: fetch_add wraps at i32::MAX, masking keeps it non-negative.
        (self.request_ids.fetch_add(1, Ordering::Relaxed) & i32::MAX).max(1)
    }
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
        buf: Vec::new(),
        matcher: None,
        address,
        settings,
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
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// The exchange in progress (its next expected `responseTo`).
    matcher: Option<ReplyMatcher>,
    address: ServerAddress,
    settings: Arc<Settings>,
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
                if self.matcher.is_some_and(|m| !m.is_finished()) {
                    return Err(network(format!(
                        "a hello was to be sent to {} while a streamed reply was still expected",
                        self.address
                    )));
                }
                let request_id = self.settings.next_request_id();
                let mut message = OpMsg::new(request_id, &command);
                message.flags.exhaust_allowed = exhaust_allowed;
                let bytes = message
                    .to_vec()
                    .map_err(|e| network(format!("could not encode the hello for {}: {e}", self.address)))?;
                self.matcher = Some(ReplyMatcher::new(request_id, exhaust_allowed));
                self.stream
                    .write_all(&bytes)
                    .await
                    .map_err(|e| network(format!("could not send to {}: {e}", self.address)))?;
            }
            Op::Read { .. } => {
                if self.matcher.is_none_or(|m| m.is_finished()) {
                    return Err(network(format!(
                        "asked to read a streamed reply from {}, but none is expected",
                        self.address
                    )));
                }
            }
        }
        self.read_reply().await
    }

    /// Reads one reply frame, checks it, and returns its body and moreToCome flag.
    async fn read_reply(&mut self) -> Result<(RawDocumentBuf, bool), Failure> {
        let address = &self.address;
        loop {
            match frame(&self.buf, self.settings.max_message_size) {
                Err(e) => return Err(network(format!("malformed reply from {address}: {e}"))),
                Ok(Framing::Complete(len)) => {
                    let Some(bytes) = self.buf.get(..len) else {
                        return Err(network(format!("malformed reply from {address}: bad frame length")));
                    };
                    let message = OpMsg::parse(bytes)
                        .map_err(|e| network(format!("malformed reply from {address}: {e}")))?;
                    let Some(matcher) = self.matcher.as_mut() else {
                        return Err(network(format!("unexpected reply from {address}")));
                    };
                    let progress = matcher
                        .accept(&message)
                        .map_err(|e| network(format!("unexpected reply from {address}: {e}")))?;
                    let body = message.body.to_owned();
                    let more_to_come = progress == ReplyProgress::MoreToCome;
                    self.buf.drain(..len);
                    return Ok((body, more_to_come));
                }
                Ok(Framing::Partial { needed }) => {
                    self.buf.reserve(needed.min(64 * 1024));
                    let n = self
                        .stream
                        .read_buf(&mut self.buf)
                        .await
                        .map_err(|e| network(format!("could not read from {address}: {e}")))?;
                    if n == 0 {
                        return Err(network(format!("{address} closed the connection")));
                    }
                }
            }
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
