//! Server selection (server-selection.md and max-staleness.md): which server an operation
//! goes to.
//!
//! - [`SelectionCriteria`]: a read with a [`ReadPreference`](crate::ReadPreference) or a
//!   write, an optional application selector, and deprioritized servers for retries.
//! - Pure functions over a topology snapshot: [`suitable_servers`], [`in_latency_window`]
//!   (no allocation for up to [`INLINE_SERVERS`] servers) and [`select_server`].
//! - Waiting selections live in the topology: [`Topology::start_selection`](crate::Topology::start_selection)
//!   returns a [`SelectionId`]; the outcome (a [`SelectedServer`] or an explained
//!   [`SelectionError`]) and the [`SelectionLogEvent`]s come out of
//!   [`Topology::poll_output`](crate::Topology::poll_output).
//! - [`SelectionSnapshot`]: the description with the topology's shared operation counts, for
//!   selecting from many threads at once without the topology's lock
//!   ([`SelectionSnapshot::select_now`]); a selection that must wait goes to the topology.
//! - [`Selection`]: one selection polled by hand over snapshots (what the topology runs for
//!   its waiting selections, and what `explain` tools use). Poll it with a description, the
//!   servers' [`OperationCounts`] and a seeded [`Rng`](crate::rng::Rng); it answers
//!   `Selected`, `Wait` or `Failed` with an [`Explanation`], and queues [`SelectionLogEvent`]s.
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
pub(crate) mod latency_window;
mod log_events;
mod max_staleness;
mod operation_counts;
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
pub(crate) use operation_counts::OperationCounter;
pub use operation_counts::SelectionSnapshot;
pub use pipeline::{in_latency_window, select_server, suitable_servers, ImmediateFailure};
pub use readable::{read_preference_argument, ReadPreferenceArgument, WireProtocol};
pub use waiting::{
    SelectedServer, Selection, SelectionError, SelectionErrorKind, SelectionId, SelectionOptions,
    SelectionPoll, DEFAULT_SERVER_SELECTION_TIMEOUT,
};

/// How many servers a [`ServerList`] holds without allocating.
pub const INLINE_SERVERS: usize = 8;

/// Servers borrowed from a topology description, inline up to [`INLINE_SERVERS`].
pub type ServerList<'a> = SmallVec<[&'a Arc<ServerDescription>; INLINE_SERVERS]>;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
