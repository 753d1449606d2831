//! Server selection (server-selection.md and max-staleness.md): which server an operation
//! goes to.
//!
//! - [`SelectionCriteria`]: a read with a [`ReadPreference`](crate::ReadPreference) or a
//!   write, an optional application selector, and deprioritized servers for retries.
//! - Pure functions over a topology snapshot: [`suitable_servers`], [`in_latency_window`]
//!   (no allocation for up to [`INLINE_SERVERS`] servers) and [`select_server`].
//! - [`Selection`]: the waiting loop, sans-IO. Poll it with the topology, the servers'
//!   [`OperationCounts`] and a seeded [`Rng`](crate::rng::Rng); it answers `Selected`, `Wait`
//!   or `Failed` with an [`Explanation`], and queues [`SelectionLogEvent`]s.
//! - [`explain`]: why each server was or was not chosen.
//! - [`TopologyDescription::has_readable_server`](crate::TopologyDescription::has_readable_server)
//!   and [`has_writable_server`](crate::TopologyDescription::has_writable_server), and
//!   [`read_preference_argument`]: the `$readPreference` document (or `SecondaryOk` flag) a
//!   read sends to the server selected for it.
//!
//! The order of the steps is the spec's: topology compatibility, the topology-type rules
//! (mode, then `maxStalenessSeconds`, then tag sets, skipping deprioritized servers unless
//! nothing else is suitable), the application selector, the latency window, and the
//! in-window choice by operation count.

mod criteria;
mod explanation;
mod in_window;
mod latency_window;
mod log_events;
mod max_staleness;
mod pipeline;
mod readable;
mod topology_rules;
mod waiting;

use std::sync::Arc;

use smallvec::SmallVec;

use crate::server_description::ServerDescription;

pub use crate::compatibility::is_compatible;
pub use criteria::{Operation, SelectionCriteria, ServerSelector};
pub use explanation::{explain, explain_shared, Explanation, Rejection, ServerExplanation, Verdict};
pub use in_window::{choose_in_window, NoOperations, OperationCounts};
pub use log_events::{describe_topology, LogLevel, SelectionLogEvent, SelectionLogKind, LOG_COMPONENT};
pub use max_staleness::estimate_staleness;
pub use pipeline::{in_latency_window, select_server, suitable_servers, ImmediateFailure};
pub use readable::{read_preference_argument, ReadPreferenceArgument, WireProtocol};
pub use waiting::{
    SelectedServer, Selection, SelectionError, SelectionErrorKind, SelectionOptions, SelectionPoll,
    DEFAULT_SERVER_SELECTION_TIMEOUT,
};

/// How many servers a [`ServerList`] holds without allocating.
pub const INLINE_SERVERS: usize = 8;

/// Servers borrowed from a topology description, inline up to [`INLINE_SERVERS`].
pub type ServerList<'a> = SmallVec<[&'a Arc<ServerDescription>; INLINE_SERVERS]>;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
