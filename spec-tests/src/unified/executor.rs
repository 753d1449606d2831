//! The runner's minimal operation executor: what a driver does for one command, without a
//! pool. It selects a server through the adapter (the guard counts the operation), opens its
//! own connection (connectTimeoutMS), performs the handshake with the client's metadata and
//! appName, sends the command as OP_MSG (sdam-wire), reads the reply (socketTimeoutMS),
//! publishes command monitoring events, and reports every error to the adapter as an
//! application error (SDAM "Application errors") with the pool generation the connection was
//! opened in and the phase it failed in.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use bson::{Bson, Document, RawDocumentBuf};
use sdam::selection::SelectionCriteria;
use sdam::{ApplicationError, ApplicationErrorKind, ErrorPhase, ServerAddress};
use sdam_adapter::ClientEvent;
use sdam_wire::{frame, Framing, OpMsg, DEFAULT_MAX_MESSAGE_SIZE};

use super::adapter::{AdapterClient, CommandEvent, EventLog, Observed};

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum OpError {
    /// No server could be selected (a client-side error).
    Selection(String),
    /// The connection failed (a network error or timeout), with the error labels the pool
    /// added.
    Network(String, Vec<String>),
    /// The server answered with an error.
    Command(Document),
}

impl OpError {
    /// Whether the unified format calls this a client error (not a server's reply).
    pub(super) fn is_client_error(&self) -> bool {
        matches!(self, Self::Selection(_) | Self::Network(..))
    }

    /// The error's labels (`errorLabels` of an error reply, or the pool's).
    pub(super) fn labels(&self) -> Vec<String> {
        match self {
            Self::Selection(_) => Vec::new(),
            Self::Network(_, labels) => labels.clone(),
            Self::Command(reply) => reply
                .get_array("errorLabels")
                .map(|l| l.iter().filter_map(Bson::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Selection(e) => write!(f, "server selection failed: {e}"),
            Self::Network(e, labels) => write!(f, "network error: {e} (labels {labels:?})"),
            Self::Command(reply) => write!(f, "command failed: {reply}"),
        }
    }
}

/// What the executor needs from a client entity.
pub(super) struct Executor<'a> {
    /// The adapter's client.
    pub(super) client: &'a dyn AdapterClient,
    /// Its event log (command events go there; pool generations are read from it).
    pub(super) log: &'a Arc<EventLog>,
    /// The handshake command (client metadata with the appName).
    pub(super) handshake: &'a RawDocumentBuf,
    /// connectTimeoutMS (`None`: no limit).
    pub(super) connect_timeout: Option<Duration>,
    /// socketTimeoutMS (`None`: no limit).
    pub(super) socket_timeout: Option<Duration>,
}

/// The pool generation of each server: how many times the adapter asked for its pool to be
/// cleared (`ClientEvent::PoolCleared`), as a pool built on the adapter would count.
fn generations(log: &EventLog) -> HashMap<ServerAddress, u32> {
    let mut out = HashMap::new();
    for o in log.snapshot() {
        if let Observed::Client(ClientEvent::PoolCleared { address, generation, .. }) = o {
            out.insert(address, generation);
        }
    }
    out
}

impl Executor<'_> {
    /// Runs `command` on database `db` on a server selected by `criteria`, as part of the
    /// operation `operation_id`.
    pub(super) fn run(
        &self,
        db: &str,
        mut command: Document,
        criteria: SelectionCriteria,
        operation_id: i64,
    ) -> Result<Document, OpError> {
        let name = command.keys().next().cloned().unwrap_or_default();
        let guard = self.client.select(criteria, &name, operation_id).map_err(OpError::Selection)?;
        let address = guard.address().clone();
        let max_wire_version = guard.description().max_wire_version;
        let generation = generations(self.log).get(&address).copied().unwrap_or(0);
        let report = |phase: ErrorPhase, kind: ApplicationErrorKind, labels: Vec<String>| {
            let mut error = ApplicationError::new(address.clone(), generation, kind);
            error.phase = phase;
            error.max_wire_version = max_wire_version;
            error.labels = labels;
            self.client.report_error(error);
        };
        let network_kind = |e: &io::Error| {
            if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) {
                ApplicationErrorKind::Timeout
            } else {
                ApplicationErrorKind::Network
            }
        };
        // CMAP "Connection Pool", backpressure-enabled: a network error or timeout while
        // establishing the connection or in its hello carries these labels (and so does not
        // clear the pool).
        let backpressure =
            || vec![sdam::app_error::SYSTEM_OVERLOADED_LABEL.to_owned(), "RetryableError".to_owned()];
        // Open and handshake (no authentication here): the connection-establishment phase.
        let mut connection = match Connection::open(&address, self.connect_timeout) {
            Ok(c) => c,
            Err(e) => {
                report(ErrorPhase::ConnectionEstablishment, network_kind(&e), backpressure());
                return Err(OpError::Network(format!("connecting to {address}: {e}"), backpressure()));
            }
        };
        match connection.command(self.handshake) {
            Ok(reply) => {
                if let Some(kind) = sdam::app_error::command_error_from_reply(&reply) {
                    report(ErrorPhase::ConnectionEstablishment, kind, labels(&reply));
                    return Err(OpError::Command(Document::try_from(reply.as_ref()).unwrap_or_default()));
                }
            }
            Err(e) => {
                report(ErrorPhase::ConnectionEstablishment, network_kind(&e), backpressure());
                return Err(OpError::Network(format!("handshake with {address}: {e}"), backpressure()));
            }
        }
        connection.set_timeout(self.socket_timeout);
        command.insert("$db", db);
        self.log.push(Observed::Command(CommandEvent::Started {
            command: command.clone(),
            name: name.clone(),
            database: db.to_owned(),
        }));
        let raw =
            RawDocumentBuf::try_from(&command).map_err(|e| OpError::Network(e.to_string(), Vec::new()))?;
        let failed = || {
            self.log.push(Observed::Command(CommandEvent::Failed {
                name: name.clone(),
                database: db.to_owned(),
            }));
        };
        match connection.command(&raw) {
            Ok(reply) => {
                let doc = Document::try_from(reply.as_ref()).unwrap_or_default();
                if let Some(kind) = sdam::app_error::command_error_from_reply(&reply) {
                    failed();
                    report(ErrorPhase::AfterHandshakeCompletes, kind, labels(&reply));
                    return Err(OpError::Command(doc));
                }
                self.log.push(Observed::Command(CommandEvent::Succeeded {
                    reply: doc.clone(),
                    name,
                    database: db.to_owned(),
                }));
                drop(guard);
                Ok(doc)
            }
            Err(e) => {
                failed();
                report(ErrorPhase::AfterHandshakeCompletes, network_kind(&e), Vec::new());
                Err(OpError::Network(format!("{name} on {address}: {e}"), Vec::new()))
            }
        }
    }
}

fn labels(reply: &RawDocumentBuf) -> Vec<String> {
    match Document::try_from(reply.as_ref()).ok().and_then(|d| d.get_array("errorLabels").ok().cloned()) {
        Some(labels) => labels.iter().filter_map(Bson::as_str).map(str::to_owned).collect(),
        None => Vec::new(),
    }
}

/// One blocking OP_MSG connection.
struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    next_request_id: i32,
}

impl Connection {
    fn open(address: &ServerAddress, timeout: Option<Duration>) -> io::Result<Self> {
        let port = address.port().unwrap_or(27017);
        let socket = (address.host(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address"))?;
        let stream = match timeout {
            Some(t) => TcpStream::connect_timeout(&socket, t)?,
            None => TcpStream::connect(socket)?,
        };
        stream.set_nodelay(true)?;
        // connectTimeoutMS covers the handshake too (CMAP, "Establishing a connection").
        stream.set_read_timeout(timeout)?;
        Ok(Self { stream, buf: Vec::new(), next_request_id: 1 })
    }

    fn set_timeout(&mut self, timeout: Option<Duration>) {
        let _ = self.stream.set_read_timeout(timeout);
    }

    fn command(&mut self, body: &RawDocumentBuf) -> io::Result<RawDocumentBuf> {
        let id = self.next_request_id;
        self.next_request_id += 1;
        let bytes =
            OpMsg::new(id, body).to_vec().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.stream.write_all(&bytes)?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match frame(&self.buf, DEFAULT_MAX_MESSAGE_SIZE) {
                Ok(Framing::Complete(len)) => {
                    let body = OpMsg::parse(&self.buf[..len])
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
                        .body
                        .to_owned();
                    self.buf.drain(..len);
                    return Ok(body);
                }
                Ok(Framing::Partial { .. }) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
