//! Errors that application operations saw on a server's connections, and how they update
//! the topology (server-discovery-and-monitoring.md, "Application errors").

use std::fmt;

use bson::oid::ObjectId;
use bson::raw::{RawBsonRef, RawDocument};

use crate::address::ServerAddress;
use crate::hello::parse_topology_version;
use crate::server_description::TopologyVersion;

/// "node is recovering" codes ("not writable primary" and "node is recovering").
const RECOVERING_CODES: [i32; 5] = [11600, 11602, 13436, 189, 91];
/// "not writable primary" codes.
const NOT_WRITABLE_PRIMARY_CODES: [i32; 3] = [10107, 13435, 10058];
/// "node is shutting down" codes: the subset of recovering codes that clear the pool.
const SHUTDOWN_CODES: [i32; 2] = [11600, 91];

/// Codes of errors a read or write may be retried after (retryable-reads.md and
/// retryable-writes.md): the "not writable primary" and "node is recovering" families, host
/// unreachable/not found, network timeout, socket exception, and exceeded time limit.
const RETRYABLE_CODES: [i32; 13] = [11600, 11602, 10107, 13435, 13436, 189, 91, 7, 6, 89, 9001, 262, 134];

/// The label servers put on errors caused by overload; such errors never mark a server
/// Unknown nor clear its pool ("Error handling pseudocode").
pub const SYSTEM_OVERLOADED_LABEL: &str = "SystemOverloadedError";

/// When an application error happened on its connection: the three phases of
/// server-discovery-and-monitoring.md, "Network error when reading or writing".
///
/// | phase | network error | network timeout | other command error |
/// | --- | --- | --- | --- |
/// | [`ConnectionEstablishment`](Self::ConnectionEstablishment) | no change | no change | Unknown, pool cleared |
/// | [`Authentication`](Self::Authentication) | Unknown, pool cleared | Unknown, pool cleared | Unknown, pool cleared |
/// | [`AfterHandshakeCompletes`](Self::AfterHandshakeCompletes) | Unknown, pool cleared | no change | no change |
///
/// In every phase a "not writable primary" or "node is recovering" error is handled as such,
/// errors of an older pool generation are ignored, errors labelled
/// [`SYSTEM_OVERLOADED_LABEL`] never mark the server Unknown, and in load-balanced mode the
/// server stays a LoadBalancer (only the service's pool is cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPhase {
    /// "Connection establishment and hello": TCP, TLS, and the handshake's hello and its
    /// reply. A network error or timeout here MUST NOT change the server's description (the
    /// spec tests' `beforeHandshakeCompletes`).
    ConnectionEstablishment,
    /// "Authentication step": after the handshake's hello, while authenticating. A network
    /// error or timeout here marks the server Unknown and clears its pool.
    Authentication,
    /// "After the handshake completes": on an established connection, after it was checked
    /// out of the pool (the spec tests' `afterHandshakeCompletes`).
    AfterHandshakeCompletes,
}

impl ErrorPhase {
    /// Whether the connection had not finished its handshake (establishment, hello and
    /// authentication) when the error happened: the "MongoDB Handshake errors" phases.
    pub fn before_handshake_completes(self) -> bool {
        matches!(self, Self::ConnectionEstablishment | Self::Authentication)
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApplicationErrorKind {
    /// A network error other than a timeout (connection reset, closed, refused...).
    Network,
    /// A network timeout.
    Timeout,
    /// The server answered with an error (a command error or a write concern error).
    Command {
        /// The error code, if the server sent one (it is preferred over the message).
        code: Option<i32>,
        /// The error message.
        message: String,
        /// The error's topologyVersion, if the server sent one.
        topology_version: Option<TopologyVersion>,
    },
}

/// An error an application operation saw on one of a server's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationError {
    /// The server the connection was to.
    pub address: ServerAddress,
    /// The pool generation of the connection; `None` means the pool's current generation.
    pub generation: Option<u32>,
    /// The `serviceId` of the connection (load-balanced mode).
    pub service_id: Option<ObjectId>,
    /// The `maxWireVersion` of the connection.
    pub max_wire_version: i32,
    /// When the error happened.
    pub phase: ErrorPhase,
    /// What the error was.
    pub kind: ApplicationErrorKind,
    /// The error's labels (e.g. `SystemOverloadedError`, `RetryableWriteError`).
    pub labels: Vec<String>,
}

impl ApplicationError {
    /// An error of `kind` on an established connection at the pool's current generation.
    pub fn new(address: ServerAddress, kind: ApplicationErrorKind) -> Self {
        Self {
            address,
            generation: None,
            service_id: None,
            max_wire_version: 0,
            phase: ErrorPhase::AfterHandshakeCompletes,
            kind,
            labels: Vec::new(),
        }
    }

    /// Whether the error carries `label`.
    pub fn has_label(&self, label: &str) -> bool {
        self.labels.iter().any(|l| l == label)
    }

    /// Whether an operation that failed with this error may be retried once on a newly
    /// selected server: network errors and timeouts, the codes of retryable-reads.md and
    /// retryable-writes.md (not writable primary, node recovering or shutting down, host
    /// unreachable, ...), and errors the server labelled `RetryableWriteError` or
    /// `RetryableError`. The caller still applies its own rules (retryWrites, transactions).
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            ApplicationErrorKind::Network | ApplicationErrorKind::Timeout => true,
            ApplicationErrorKind::Command { code, .. } => {
                code.is_some_and(|c| RETRYABLE_CODES.contains(&c))
                    || self.has_label("RetryableWriteError")
                    || self.has_label("RetryableError")
            }
        }
    }
}

/// The command error that a server's reply carries, if any: the top-level error when `ok` is
/// not 1, else the `writeConcernError` ("Error handling pseudocode", parseCommandResponse).
/// Errors inside `writeErrors` are never considered.
pub fn command_error_from_reply(reply: &RawDocument) -> Option<ApplicationErrorKind> {
    let ok = match reply.get("ok").ok().flatten() {
        Some(RawBsonRef::Double(d)) => d == 1.0,
        Some(RawBsonRef::Int32(i)) => i == 1,
        Some(RawBsonRef::Int64(i)) => i == 1,
        Some(RawBsonRef::Boolean(b)) => b,
        _ => false,
    };
    let source = if ok {
        match reply.get("writeConcernError").ok().flatten() {
            Some(RawBsonRef::Document(wce)) => wce,
            _ => return None,
        }
    } else {
        reply
    };
    let code = match source.get("code").ok().flatten() {
        Some(RawBsonRef::Int32(c)) => Some(c),
        Some(RawBsonRef::Int64(c)) => i32::try_from(c).ok(),
        Some(RawBsonRef::Double(c)) if c.fract() == 0.0 && c.abs() < 2.0e9 => Some(c as i32),
        _ => None,
    };
    let message = match source.get("errmsg").ok().flatten() {
        Some(RawBsonRef::String(s)) => s.to_owned(),
        _ => String::new(),
    };
    // The topologyVersion is at the top level of the reply, also for write concern errors.
    let topology_version = match reply.get("topologyVersion").ok().flatten() {
        Some(RawBsonRef::Document(tv)) => parse_topology_version(tv).ok(),
        _ => None,
    };
    Some(ApplicationErrorKind::Command { code, message, topology_version })
}

/// How an error's code (preferred) or message classify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateChange {
    /// Not a state change error.
    None,
    /// "node is recovering"; `shutdown` for the "node is shutting down" subset.
    Recovering {
        /// Whether the node is shutting down (its pool must be cleared).
        shutdown: bool,
    },
    /// "not writable primary".
    NotWritablePrimary,
}

/// Classifies a command error ("not writable primary" and "node is recovering"): the code
/// decides when there is one; only without a code does the message.
pub(crate) fn classify(code: Option<i32>, message: &str) -> StateChange {
    match code {
        Some(c) if RECOVERING_CODES.contains(&c) => {
            StateChange::Recovering { shutdown: SHUTDOWN_CODES.contains(&c) }
        }
        Some(c) if NOT_WRITABLE_PRIMARY_CODES.contains(&c) => StateChange::NotWritablePrimary,
        Some(_) => StateChange::None,
        None if message.contains("node is recovering") || message.contains("not master or secondary") => {
            StateChange::Recovering { shutdown: false }
        }
        None if message.contains("not master") => StateChange::NotWritablePrimary,
        None => StateChange::None,
    }
}

impl fmt::Display for ApplicationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            ErrorPhase::ConnectionEstablishment => "while connecting",
            ErrorPhase::Authentication => "while authenticating",
            ErrorPhase::AfterHandshakeCompletes => "on an established connection",
        };
        match &self.kind {
            ApplicationErrorKind::Network => write!(f, "network error {phase} to {}", self.address),
            ApplicationErrorKind::Timeout => write!(f, "network timeout {phase} to {}", self.address),
            ApplicationErrorKind::Command { code: Some(code), message, .. } => {
                write!(f, "command error from {} {phase}: {message} (code {code})", self.address)
            }
            ApplicationErrorKind::Command { code: None, message, .. } => {
                write!(f, "command error from {} {phase}: {message}", self.address)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::rawdoc;

    #[test]
    fn code_is_preferred_over_message() {
        assert_eq!(classify(Some(1), "not master"), StateChange::None);
        assert_eq!(classify(Some(1), "node is recovering"), StateChange::None);
        assert_eq!(classify(None, "not master"), StateChange::NotWritablePrimary);
        assert_eq!(classify(None, "not master or secondary"), StateChange::Recovering { shutdown: false });
        assert_eq!(classify(Some(91), ""), StateChange::Recovering { shutdown: true });
        assert_eq!(classify(Some(189), ""), StateChange::Recovering { shutdown: false });
        assert_eq!(classify(Some(10107), ""), StateChange::NotWritablePrimary);
    }

    #[test]
    fn replies_yield_their_command_error() {
        assert_eq!(command_error_from_reply(&rawdoc! {"ok": 1}), None);
        let wce =
            command_error_from_reply(&rawdoc! {"ok": 1, "writeConcernError": {"code": 91, "errmsg": "x"}});
        assert!(matches!(wce, Some(ApplicationErrorKind::Command { code: Some(91), .. })));
        let we =
            command_error_from_reply(&rawdoc! {"ok": 1, "writeErrors": [{"code": 10107, "errmsg": "x"}]});
        assert_eq!(we, None);
        let top = command_error_from_reply(&rawdoc! {"ok": 0, "errmsg": "not master"});
        assert!(matches!(top, Some(ApplicationErrorKind::Command { code: None, .. })));
    }

    #[test]
    fn retryable_errors() {
        let addr = ServerAddress::parse("a:27017").unwrap();
        let command = |code: Option<i32>| ApplicationErrorKind::Command {
            code,
            message: String::new(),
            topology_version: None,
        };
        assert!(ApplicationError::new(addr.clone(), ApplicationErrorKind::Network).is_retryable());
        assert!(ApplicationError::new(addr.clone(), ApplicationErrorKind::Timeout).is_retryable());
        assert!(ApplicationError::new(addr.clone(), command(Some(10107))).is_retryable());
        assert!(ApplicationError::new(addr.clone(), command(Some(91))).is_retryable());
        assert!(!ApplicationError::new(addr.clone(), command(Some(11000))).is_retryable());
        assert!(!ApplicationError::new(addr.clone(), command(None)).is_retryable());
        let mut labelled = ApplicationError::new(addr, command(Some(50)));
        labelled.labels.push("RetryableWriteError".to_owned());
        assert!(labelled.is_retryable());
    }
}
