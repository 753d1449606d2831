//! What an I/O layer feeds the topology: [`Input`].

use std::time::Duration;

use bson::raw::RawDocument;

use crate::address::ServerAddress;
use crate::app_error::ApplicationError;
#[cfg(doc)]
use crate::events::Command;
use crate::monitor::{FailureKind, RequestId};

/// One input to the topology.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A server answered `hello` (or legacy hello): the reply's raw bytes as they arrived and
    /// the round trip measured for it.
    HelloReply {
        /// The server that was checked.
        address: ServerAddress,
        /// The reply document.
        reply: &'a RawDocument,
        /// The measured round-trip time of this check.
        round_trip_time: Duration,
    },
    /// A check of a server failed (network error, timeout, handshake error).
    CheckFailed {
        /// The server that was checked.
        address: ServerAddress,
        /// What went wrong, for the server description's `error`.
        error: String,
    },
    /// The reply to a [`Command::SendHello`] or [`Command::ReadReply`], with the OP_MSG
    /// moreToCome flag it carried and the measured round trip.
    MonitorReply {
        /// The exchange the reply belongs to.
        request: RequestId,
        /// The reply document.
        reply: &'a RawDocument,
        /// Time from sending the command (or starting to read) to the reply.
        round_trip_time: Duration,
        /// Whether the OP_MSG moreToCome flag was set.
        more_to_come: bool,
    },
    /// A [`Command::SendHello`] or [`Command::ReadReply`] failed: connect, write or read error,
    /// a malformed frame, or no reply within the timeout.
    MonitorFailed {
        /// The exchange that failed.
        request: RequestId,
        /// Network error or timeout.
        kind: FailureKind,
        /// What went wrong.
        error: String,
    },
    /// An application operation saw an error on one of a server's connections.
    ApplicationError(ApplicationError),
    /// The answer to a [`Command::ResolveSrv`]: the records, or
    /// why the lookup failed (including its timeout). An empty answer is treated as the spec
    /// says for "no SRV records". Answers to lookups that are not in flight are ignored.
    SrvResolved {
        /// The lookup this answers.
        request: RequestId,
        /// The records found, or the lookup's error.
        result: Result<&'a [crate::connection_string::srv::SrvRecord], String>,
    },
    /// The answer to a [`Command::ResolveTxt`]: the records (empty
    /// when the name has none), or why the lookup failed.
    TxtResolved {
        /// The lookup this answers.
        request: RequestId,
        /// The records found, or the lookup's error.
        result: Result<&'a [crate::connection_string::srv::TxtRecord], String>,
    },
    /// Check every server as soon as the monitors allow (a server selection is waiting).
    RequestImmediateCheck,
    /// An operation started on `address` (counts for the in-window choice).
    OperationStarted(ServerAddress),
    /// An operation on `address` ended.
    OperationFinished(ServerAddress),
    /// Close the topology: every server is closed and `TopologyClosed` is the last event.
    Close,
}
