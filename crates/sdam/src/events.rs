//! What the topology tells the outside world: SDAM monitoring events
//! (server-discovery-and-monitoring-logging-and-monitoring.md) and commands for the I/O layer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;

use bson::RawDocumentBuf;

use crate::address::ServerAddress;
use crate::monitor::{ConnectionId, RequestId};
use crate::server_description::ServerDescription;
use crate::topology_description::TopologyDescription;

/// Identifies one topology in events (the spec's `topologyId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopologyId(pub ObjectId);

/// An SDAM monitoring event.
///
/// Description-changed events are published only when the description changed by the spec's
/// equality, and each one's `previous` is the `new` of the last event for the same subject.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The topology was created; always the first event.
    TopologyOpening {
        /// The topology.
        topology_id: TopologyId,
    },
    /// The topology description changed.
    TopologyDescriptionChanged {
        /// The topology.
        topology_id: TopologyId,
        /// The description before.
        previous: Arc<TopologyDescription>,
        /// The description after.
        new: Arc<TopologyDescription>,
    },
    /// A server was added to the topology; its monitor starts.
    ServerOpening {
        /// The topology.
        topology_id: TopologyId,
        /// The server.
        address: ServerAddress,
    },
    /// A server's description changed.
    ServerDescriptionChanged {
        /// The topology.
        topology_id: TopologyId,
        /// The server.
        address: ServerAddress,
        /// The description before.
        previous: Arc<ServerDescription>,
        /// The description after.
        new: Arc<ServerDescription>,
    },
    /// A server was removed from the topology; its monitor stops.
    ServerClosed {
        /// The topology.
        topology_id: TopologyId,
        /// The server.
        address: ServerAddress,
    },
    /// The topology was closed; always the last event.
    TopologyClosed {
        /// The topology.
        topology_id: TopologyId,
    },
    /// A monitor started a check (or started waiting for the next streamed reply).
    ServerHeartbeatStarted {
        /// The server.
        address: ServerAddress,
        /// The monitoring connection.
        connection_id: ConnectionId,
        /// Whether this is an awaitable (streaming) check.
        awaited: bool,
    },
    /// A check succeeded.
    ServerHeartbeatSucceeded {
        /// The server.
        address: ServerAddress,
        /// The monitoring connection.
        connection_id: ConnectionId,
        /// How long the check took.
        duration: Duration,
        /// The reply.
        reply: RawDocumentBuf,
        /// Whether this was an awaitable (streaming) check.
        awaited: bool,
    },
    /// A check failed.
    ServerHeartbeatFailed {
        /// The server.
        address: ServerAddress,
        /// The monitoring connection.
        connection_id: ConnectionId,
        /// How long the check took.
        duration: Duration,
        /// What went wrong.
        failure: String,
        /// Whether this was an awaitable (streaming) check.
        awaited: bool,
    },
}

/// Something the I/O layer must do for the core.
///
/// # Deadlines
///
/// Every command that expects an answer ([`SendHello`](Self::SendHello),
/// [`ReadReply`](Self::ReadReply), [`ResolveSrv`](Self::ResolveSrv),
/// [`ResolveTxt`](Self::ResolveTxt)) carries one overall `deadline`, an [`Instant`] on the
/// clock the I/O layer passes to the core. `None` means no limit (`connectTimeoutMS=0`); a
/// limit is never written as a zero duration. The core keeps the deadline itself: when it
/// passes without an answer, [`Topology::handle_timeout`](crate::Topology::handle_timeout)
/// fails the exchange as a timeout, asks for the connection to be closed
/// ([`CloseConnection`](Self::CloseConnection)) and the monitor goes on; an answer that comes
/// later is ignored. An I/O layer gives its connect, TLS handshake, write and read the time
/// left until the deadline (`deadline.saturating_duration_since(now)`), but an exchange it
/// loses cannot stall the core.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Command {
    /// Clear the connection pool of `address` (and only the connections of `service_id` in
    /// load-balanced mode): connections of a generation below `generation` are stale.
    ClearPool {
        /// The server.
        address: ServerAddress,
        /// In load-balanced mode, the service whose connections are cleared.
        service_id: Option<ObjectId>,
        /// The pool's new generation.
        generation: u32,
        /// Whether connections in use must be interrupted too (CMAP `interruptInUseConnections`).
        interrupt_in_use_connections: bool,
    },
    /// Mark the connection pool of `address` "ready" (CMAP, "Marking a Connection Pool as
    /// Ready"): a check made the server usable again while its pool was "paused" (new, or
    /// cleared since). Emitted exactly on the paused-to-ready transitions, before the events
    /// and [`WakeSelections`](Self::WakeSelections) of the same update, so an I/O layer that
    /// carries out outputs in order readies the pool before any selection can see the server
    /// (server-monitoring.md, "Marking the connection pool as ready"). A pool that is
    /// already ready gets no second command; a [`ClearPool`](Self::ClearPool) without a
    /// `service_id` pauses it again.
    MarkPoolReady {
        /// The server.
        address: ServerAddress,
        /// The pool's current generation (that of the last clear, 0 if never cleared).
        generation: u32,
    },
    /// Send a hello command on `connection` and read one reply; report it with
    /// [`Input::MonitorReply`](crate::Input::MonitorReply) or
    /// [`Input::MonitorFailed`](crate::Input::MonitorFailed) naming `request`.
    SendHello {
        /// Names this exchange in the reply.
        request: RequestId,
        /// The connection to use.
        connection: ConnectionId,
        /// The server.
        address: ServerAddress,
        /// Open `connection` first (connect, then TLS if configured): this hello is its
        /// handshake. The same `deadline` covers the connect, the handshake and the reply.
        open: bool,
        /// The command document (body of an OP_MSG).
        command: RawDocumentBuf,
        /// Set the OP_MSG exhaustAllowed flag (streaming).
        exhaust_allowed: bool,
        /// When the reply must have arrived (`None`: no limit); see [Deadlines](Self#deadlines).
        deadline: Option<Instant>,
    },
    /// Read the next reply of a streaming exchange (the previous one had moreToCome).
    ReadReply {
        /// The exchange.
        request: RequestId,
        /// The connection.
        connection: ConnectionId,
        /// When the reply must have arrived (`None`: no limit); see [Deadlines](Self#deadlines).
        deadline: Option<Instant>,
    },
    /// Close a monitoring or RTT connection; any exchange on it is abandoned.
    CloseConnection {
        /// The connection.
        connection: ConnectionId,
    },
    /// The description changed: re-run waiting server selections against it.
    WakeSelections,
    /// Look up the SRV records of `name` (`_{srvServiceName}._tcp.{host}`); report the
    /// answer with [`Input::SrvResolved`](crate::Input::SrvResolved) naming `request`.
    ResolveSrv {
        /// Names this lookup in the answer.
        request: RequestId,
        /// The full DNS name to query.
        name: String,
        /// When the answer must have arrived (a lookup always has a limit); see
        /// [Deadlines](Self#deadlines).
        deadline: Instant,
    },
    /// Look up the TXT records of `name`; report the answer with
    /// [`Input::TxtResolved`](crate::Input::TxtResolved) naming `request`. A name with no TXT
    /// record is an empty answer, not a failure.
    ResolveTxt {
        /// Names this lookup in the answer.
        request: RequestId,
        /// The DNS name to query.
        name: String,
        /// When the answer must have arrived (a lookup always has a limit); see
        /// [Deadlines](Self#deadlines).
        deadline: Instant,
    },
    /// Driver-owned monitoring only ([`MonitorOwner::Driver`](crate::MonitorOwner::Driver)):
    /// check `address` (server-monitoring.md, "Requesting an immediate check").
    ///
    /// `immediate: true` is the one retry after a network error on a server that was known
    /// ("Network or command error during server check", step 4): start it now, on a new
    /// connection. Otherwise start it as soon as the monitor allows: no sooner than
    /// minHeartbeatFrequencyMS after its previous check ended, and not while a check runs.
    RequestCheck {
        /// The server.
        address: ServerAddress,
        /// Start at once (the retry) rather than when minHeartbeatFrequencyMS allows.
        immediate: bool,
    },
    /// Driver-owned monitoring only ([`MonitorOwner::Driver`](crate::MonitorOwner::Driver)):
    /// cancel the check in flight on `address` and close its monitoring connection
    /// (server-monitoring.md, "hello or legacy hello Cancellation"). The core already
    /// published the check's `ServerHeartbeatFailed`; its result, if it still comes, is
    /// ignored.
    CancelCheck {
        /// The server.
        address: ServerAddress,
    },
}

/// One output of the topology: an event to publish or a command to carry out.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Output {
    /// An SDAM monitoring event.
    Event(Event),
    /// A command for the I/O layer.
    Command(Command),
}
