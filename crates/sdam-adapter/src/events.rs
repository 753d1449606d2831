//! What a client publishes: SDAM events, server selection log events, pool clears and
//! pool-ready signals.

use bson::oid::ObjectId;
use sdam::selection::SelectionLogEvent;
use sdam::ServerAddress;

/// One event a client publishes to its subscribers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// An SDAM monitoring event from the core (topology and server changes, heartbeats).
    Sdam(sdam::Event),
    /// A server selection log event (server-selection.md, "Logging").
    Selection(SelectionLogEvent),
    /// The core asked for a server's connection pool to be cleared (`Command::ClearPool`).
    /// The adapters own no pool: a connection pool built on them listens for this.
    PoolCleared {
        /// The server.
        address: ServerAddress,
        /// In load-balanced mode, the service whose connections are cleared.
        service_id: Option<ObjectId>,
        /// The pool's new generation: connections of older generations are stale.
        generation: u32,
        /// Whether connections in use must be interrupted too.
        interrupt_in_use_connections: bool,
    },
    /// The core marked a server's connection pool "ready" (`Command::MarkPoolReady`): a
    /// check made the server usable while its pool was paused (new, or cleared since). A
    /// CMAP pool built on the adapters resumes check-outs and background connections on it.
    /// Published before the events of the update that made the server usable.
    PoolReady {
        /// The server.
        address: ServerAddress,
        /// The pool's current generation.
        generation: u32,
    },
    /// This subscriber fell behind: `missed` events were dropped from its queue (which is
    /// bounded by bytes, `ClientOptions::event_buffer_bytes`) before the events that follow.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
}
