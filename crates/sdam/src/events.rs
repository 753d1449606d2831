//! What the topology tells the outside world: SDAM monitoring events
//! (server-discovery-and-monitoring-logging-and-monitoring.md) and commands for the I/O layer.

use std::sync::Arc;

use bson::oid::ObjectId;

use crate::address::ServerAddress;
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
}

/// Something the I/O layer must do for the core.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Check `address` as soon as possible (a state change error, an invalidated primary).
    RequestImmediateCheck {
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
