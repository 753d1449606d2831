//! The application's own connections for this project's adapters: the adapters monitor and
//! select but have no pool, so "a write" is a selection, then an `insert` sent with
//! `sdam-wire` on a connection the bench keeps per server, and every error reported to the
//! client with `report_error` (SDAM "Application errors"), as a driver built on the core
//! would do.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bson::{rawdoc, RawBsonRef, RawDocument, RawDocumentBuf};
use sdam::{ApplicationError, ApplicationErrorKind, ErrorPhase, ServerAddress, TopologyVersion};
use sdam_wire::{frame, Framing, OpMsg, DEFAULT_MAX_MESSAGE_SIZE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One deadline for a whole command (connect, send and reply) on the bench's connections.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The insert every implementation runs as "a write".
pub(crate) fn insert(n: i64) -> RawDocumentBuf {
    rawdoc! { "insert": "writes", "documents": [{ "n": n }], "$db": "habench" }
}

/// Why a write failed, with the error the client was told about (if any).
#[derive(Debug)]
pub(crate) enum WriteError {
    /// Server selection failed (timeout or closed client).
    Selection(String),
    /// The connection failed or the server answered with an error.
    Server(Box<ApplicationError>),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Selection(e) => write!(f, "server selection: {e}"),
            Self::Server(e) => write!(f, "{:?} on {}", e.kind, e.address),
        }
    }
}

/// An I/O error on a connection to `address`, as the client must hear it.
pub(crate) fn network_error(
    address: &ServerAddress,
    generation: u32,
    phase: ErrorPhase,
    max_wire_version: i32,
) -> ApplicationError {
    let mut error = ApplicationError::new(address.clone(), generation, ApplicationErrorKind::Network);
    error.phase = phase;
    error.max_wire_version = max_wire_version;
    error
}

/// The command error a reply carries (its `ok` is not 1), as the client must hear it.
pub(crate) fn reply_error(
    address: &ServerAddress,
    generation: u32,
    reply: &RawDocument,
    max_wire_version: i32,
) -> Option<ApplicationError> {
    let ok = match reply.get("ok").ok().flatten() {
        Some(RawBsonRef::Double(d)) => d == 1.0,
        Some(RawBsonRef::Int32(i)) => i == 1,
        Some(RawBsonRef::Int64(i)) => i == 1,
        _ => false,
    };
    if ok {
        return None;
    }
    let topology_version = reply.get_document("topologyVersion").ok().and_then(|tv| {
        let counter = tv.get_i64("counter").ok().or_else(|| tv.get_i32("counter").ok().map(i64::from))?;
        Some(TopologyVersion { process_id: tv.get_object_id("processId").ok()?, counter })
    });
    let kind = ApplicationErrorKind::Command {
        code: reply.get_i32("code").ok(),
        message: reply.get_str("errmsg").unwrap_or("").to_owned(),
        topology_version,
    };
    let mut error = ApplicationError::new(address.clone(), generation, kind);
    error.max_wire_version = max_wire_version;
    error.labels = reply
        .get_array("errorLabels")
        .map(|a| a.into_iter().filter_map(|l| Some(l.ok()?.as_str()?.to_owned())).collect())
        .unwrap_or_default();
    Some(error)
}

/// Reads a whole reply frame from `buf` if it holds one.
fn take_reply(buf: &mut Vec<u8>) -> io::Result<Option<RawDocumentBuf>> {
    match frame(buf, DEFAULT_MAX_MESSAGE_SIZE).map_err(io::Error::other)? {
        Framing::Partial { .. } => Ok(None),
        Framing::Complete(len) => {
            let body = OpMsg::parse(&buf[..len]).map_err(io::Error::other)?.body.to_owned();
            buf.drain(..len);
            Ok(Some(body))
        }
    }
}

fn encode(request_id: i32, body: &RawDocument) -> io::Result<Vec<u8>> {
    OpMsg::new(request_id, body).to_vec().map_err(io::Error::other)
}

/// A tokio connection that sends one command at a time.
#[derive(Debug)]
pub(crate) struct AsyncConn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    next_request_id: i32,
}

impl AsyncConn {
    async fn connect(address: &ServerAddress) -> io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(address.to_string()).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::new(), next_request_id: 1 })
    }

    async fn command(&mut self, body: &RawDocument) -> io::Result<RawDocumentBuf> {
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let bytes = encode(self.next_request_id, body)?;
        self.stream.write_all(&bytes).await?;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(reply) = take_reply(&mut self.buf)? {
                return Ok(reply);
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The bench's application connections of one tokio client, one per server.
#[derive(Debug, Default)]
pub(crate) struct AsyncPool {
    /// The pool generation of each connection's server when it was opened: its errors carry it.
    generations: HashMap<ServerAddress, u32>,
    conns: HashMap<ServerAddress, AsyncConn>,
}

impl AsyncPool {
    /// Selects a writable server and runs one insert there; every failure is reported to
    /// `client`. Returns the server written to.
    pub(crate) async fn write(
        &mut self,
        client: &sdam_tokio::Client,
        n: i64,
    ) -> Result<ServerAddress, WriteError> {
        let guard = client
            .select_server(sdam::selection::SelectionCriteria::write())
            .await
            .map_err(|e| WriteError::Selection(e.to_string()))?;
        let address = guard.address().clone();
        let wire = guard.description().max_wire_version;
        let now = client.pool_generation(&address).unwrap_or(0);
        let result = tokio::time::timeout(COMMAND_TIMEOUT, self.run(&address, now, &insert(n))).await;
        let generation = self.generations.get(&address).copied().unwrap_or(now);
        let error = match result {
            Ok(Ok(reply)) => match reply_error(&address, generation, &reply, wire) {
                None => return Ok(address),
                Some(error) => error,
            },
            Ok(Err((phase, _io))) => {
                self.conns.remove(&address);
                network_error(&address, generation, phase, wire)
            }
            Err(_elapsed) => {
                self.conns.remove(&address);
                let mut error =
                    network_error(&address, generation, ErrorPhase::AfterHandshakeCompletes, wire);
                error.kind = ApplicationErrorKind::Timeout;
                error
            }
        };
        client.report_error(error.clone());
        Err(WriteError::Server(Box::new(error)))
    }

    async fn run(
        &mut self,
        address: &ServerAddress,
        generation: u32,
        body: &RawDocument,
    ) -> Result<RawDocumentBuf, (ErrorPhase, io::Error)> {
        if !self.conns.contains_key(address) {
            let conn =
                AsyncConn::connect(address).await.map_err(|e| (ErrorPhase::ConnectionEstablishment, e))?;
            self.conns.insert(address.clone(), conn);
            self.generations.insert(address.clone(), generation);
        }
        let conn = self
            .conns
            .get_mut(address)
            .ok_or_else(|| (ErrorPhase::ConnectionEstablishment, io::ErrorKind::NotConnected.into()))?;
        conn.command(body).await.map_err(|e| (ErrorPhase::AfterHandshakeCompletes, e))
    }
}

/// A blocking connection that sends one command at a time.
#[derive(Debug)]
pub(crate) struct BlockingConn {
    stream: TcpStream,
    buf: Vec<u8>,
    next_request_id: i32,
}

impl BlockingConn {
    fn connect(address: &ServerAddress) -> io::Result<Self> {
        let socket = std::net::ToSocketAddrs::to_socket_addrs(&address.to_string())?
            .next()
            .ok_or_else(|| io::Error::other(format!("{address} resolves to nothing")))?;
        let stream = TcpStream::connect_timeout(&socket, COMMAND_TIMEOUT)?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::new(), next_request_id: 1 })
    }

    fn command(&mut self, body: &RawDocument) -> io::Result<RawDocumentBuf> {
        // One deadline for the whole exchange, however the bytes arrive.
        let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let bytes = encode(self.next_request_id, body)?;
        self.stream.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        self.stream.write_all(&bytes)?;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(reply) = take_reply(&mut self.buf)? {
                return Ok(reply);
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.stream.set_read_timeout(Some(left))?;
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The bench's application connections of one std client, one per server.
#[derive(Debug, Default)]
pub(crate) struct BlockingPool {
    /// The pool generation of each connection's server when it was opened: its errors carry it.
    generations: HashMap<ServerAddress, u32>,
    conns: HashMap<ServerAddress, BlockingConn>,
}

impl BlockingPool {
    /// [`AsyncPool::write`] for the std adapter.
    pub(crate) fn write(&mut self, client: &sdam_std::Client, n: i64) -> Result<ServerAddress, WriteError> {
        let guard = client
            .select_server(sdam::selection::SelectionCriteria::write())
            .map_err(|e| WriteError::Selection(e.to_string()))?;
        let address = guard.address().clone();
        let wire = guard.description().max_wire_version;
        let now = client.pool_generation(&address).unwrap_or(0);
        let result = self.run(&address, now, &insert(n));
        let generation = self.generations.get(&address).copied().unwrap_or(now);
        let error = match result {
            Ok(reply) => match reply_error(&address, generation, &reply, wire) {
                None => return Ok(address),
                Some(error) => error,
            },
            Err((phase, io)) => {
                self.conns.remove(&address);
                let mut error = network_error(&address, generation, phase, wire);
                if matches!(io.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) {
                    error.kind = ApplicationErrorKind::Timeout;
                }
                error
            }
        };
        client.report_error(error.clone());
        Err(WriteError::Server(Box::new(error)))
    }

    fn run(
        &mut self,
        address: &ServerAddress,
        generation: u32,
        body: &RawDocument,
    ) -> Result<RawDocumentBuf, (ErrorPhase, io::Error)> {
        if !self.conns.contains_key(address) {
            let conn =
                BlockingConn::connect(address).map_err(|e| (ErrorPhase::ConnectionEstablishment, e))?;
            self.conns.insert(address.clone(), conn);
            self.generations.insert(address.clone(), generation);
        }
        let conn = self
            .conns
            .get_mut(address)
            .ok_or_else(|| (ErrorPhase::ConnectionEstablishment, io::ErrorKind::NotConnected.into()))?;
        conn.command(body).map_err(|e| (ErrorPhase::AfterHandshakeCompletes, e))
    }
}
