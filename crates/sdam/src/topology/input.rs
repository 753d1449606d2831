//! What an I/O layer feeds the topology: [`Input`].

use std::time::Duration;

use bson::raw::{RawDocument, RawDocumentBuf};

use crate::address::ServerAddress;
use crate::app_error::ApplicationError;
#[cfg(doc)]
use crate::events::Command;
use crate::monitor::{FailureKind, RequestId};

/// One input to the topology.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A check by address started: the driver's monitor of `address` is about to send a hello
    /// (driver-owned monitoring, [`MonitorOwner::Driver`](crate::MonitorOwner::Driver)).
    /// Publishes `ServerHeartbeatStarted`. Optional: a result reported without it starts the
    /// check at that moment. The core sets no deadline on a driver's check: its monitor owns
    /// its timeouts and reports them as [`CheckFailed`](Self::CheckFailed) with
    /// [`FailureKind::Timeout`]. With the core's monitors, a core exchange in flight on
    /// `address` is abandoned (its connection closed, its late answer ignored).
    CheckStarted {
        /// The server being checked.
        address: ServerAddress,
        /// Whether it is an awaitable (streaming) hello.
        awaited: bool,
    },
    /// A check by address succeeded: a server answered `hello` (or legacy hello), the reply's
    /// raw bytes as they arrived and the round trip measured for it. The same
    /// server-monitoring rules as for a [`MonitorReply`](Self::MonitorReply): the
    /// `ServerHeartbeatSucceeded` event (after a `ServerHeartbeatStarted`), the RTT moving
    /// average and minimum (not sampled from an awaited reply), a reply with `ok: 0` or that
    /// does not parse failing the check. The result of a check the core cancelled (see
    /// [`Command::CancelCheck`]) is ignored: the first result after a cancellation, unless a
    /// [`CheckStarted`](Self::CheckStarted) came in between.
    HelloReply {
        /// The server that was checked.
        address: ServerAddress,
        /// The reply document, moved in: the core parses it and hands it on, without a copy,
        /// in the `ServerHeartbeatSucceeded` event ("SDAM Monitoring": the event carries the
        /// reply).
        reply: RawDocumentBuf,
        /// The measured round-trip time of this check.
        round_trip_time: Duration,
        /// Whether it answered an awaitable (streaming) hello: its duration is no RTT sample.
        awaited: bool,
    },
    /// A check by address failed (network error, timeout, handshake error). The same rules
    /// as for a [`MonitorFailed`](Self::MonitorFailed) (server-monitoring.md, "Network or
    /// command error during server check"): `ServerHeartbeatFailed`, the server Unknown, its
    /// RTT reset, its pool cleared (interrupting in-use connections after a timeout) and, after
    /// a network error on a server that was known, one immediate retry
    /// ([`Command::RequestCheck`] with `immediate` for a driver's monitor).
    CheckFailed {
        /// The server that was checked.
        address: ServerAddress,
        /// Network error or timeout.
        kind: FailureKind,
        /// What went wrong, for the server description's `error`.
        error: String,
    },
    /// A driver's RTT measurement of `address` on its dedicated RTT connection
    /// (server-monitoring.md, "Measuring RTT"; driver-owned monitoring): one sample for the
    /// moving average and the minimum, which the next description of the server carries.
    RoundTripTime {
        /// The server.
        address: ServerAddress,
        /// The measured round trip.
        round_trip_time: Duration,
    },
    /// A hello reply seen on the handshake of an application connection (not a monitor's):
    /// server-monitoring.md, "Clients update the topology from each handshake". It updates the
    /// server's description as a check's reply would (its round trip is an RTT sample), with
    /// no heartbeat event and no change to the monitor's schedule; a reply with `ok: 0` marks
    /// the server Unknown and clears its pool. A handshake that fails with a network error is
    /// an [`ApplicationError`](Self::ApplicationError) with
    /// [`ErrorPhase::ConnectionEstablishment`](crate::ErrorPhase::ConnectionEstablishment)
    /// (or [`ErrorPhase::Authentication`](crate::ErrorPhase::Authentication) once the hello
    /// has been answered).
    ApplicationHandshake {
        /// The server the connection is to.
        address: ServerAddress,
        /// The handshake's reply document.
        reply: &'a RawDocument,
        /// The handshake's measured round trip.
        round_trip_time: Duration,
    },
    /// The reply to a [`Command::SendHello`] or [`Command::ReadReply`], with the OP_MSG
    /// moreToCome flag it carried and the measured round trip.
    MonitorReply {
        /// The exchange the reply belongs to.
        request: RequestId,
        /// The reply document, moved in (as for [`HelloReply`](Self::HelloReply)): it ends up
        /// in the `ServerHeartbeatSucceeded` event without a copy; an RTT reply is dropped.
        reply: RawDocumentBuf,
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
    /// Check every server as soon as the monitors allow (a server selection is waiting); a
    /// driver's monitors are asked with [`Command::RequestCheck`].
    RequestImmediateCheck,
    /// An operation started on `address` (counts for the in-window choice).
    OperationStarted(ServerAddress),
    /// An operation on `address` ended.
    OperationFinished(ServerAddress),
    /// Close the topology: every server is closed and `TopologyClosed` is the last event.
    Close,
}
