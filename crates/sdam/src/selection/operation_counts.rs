//! The operation counts the in-window choice reads (server-selection.md, "operationCount"),
//! shared between the topology and the threads that select, and the snapshot those threads
//! select from without the topology's lock.
//!
//! The topology owns one [`OperationCounter`] per server (an atomic). A selection that chooses
//! a server counts one operation on it; the operation ends with
//! [`SelectedServer::finish_operation`]. [`Topology::selection_snapshot`](crate::Topology::selection_snapshot)
//! hands out a [`SelectionSnapshot`]: the current description with those counters, `Send +
//! Sync`, so any number of threads can run the spec's selection over it at once
//! ([`SelectionSnapshot::select_now`]); only a selection that must wait goes to the topology
//! ([`Topology::start_selection`](crate::Topology::start_selection)).

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use crate::address::ServerAddress;
use crate::rng::Rng;
use crate::topology_description::TopologyDescription;

use super::criteria::SelectionCriteria;
use super::in_window::{choose_in_window, OperationCounts};
use super::log_events::{SelectionLogEvent, SelectionLogKind};
use super::pipeline::in_latency_window;
use super::waiting::{log_event, SelectedServer, SelectionOptions};

/// One server's count of operations in flight. Shared: every snapshot and every
/// [`SelectedServer`] of that server holds the same counter.
#[derive(Clone, Default)]
pub(crate) struct OperationCounter(Arc<AtomicU32>);

impl OperationCounter {
    /// The operations in flight.
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    /// A new counter holding the same count (a forked topology counts on its own).
    pub(crate) fn fork(&self) -> Self {
        Self(Arc::new(AtomicU32::new(self.get())))
    }

    /// One more operation. One atomic add: 2^32 operations in flight on one server cannot
    /// happen (each holds a selected server).
    pub(crate) fn started(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// One operation fewer (saturating at zero).
    pub(crate) fn finished(&self) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
    }
}

impl fmt::Debug for OperationCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OperationCounter({})", self.get())
    }
}

/// A topology description with the topology's operation counters: what threads select from
/// without the topology's lock. Immutable apart from the counts; cheap to share behind its
/// `Arc`. Get one from [`Topology::selection_snapshot`](crate::Topology::selection_snapshot)
/// after the description changed.
pub struct SelectionSnapshot {
    description: Arc<TopologyDescription>,
    /// Sorted by address, one per server of `description`.
    counters: Vec<(ServerAddress, OperationCounter)>,
    closed: bool,
}

impl SelectionSnapshot {
    pub(crate) fn new(
        description: Arc<TopologyDescription>,
        counters: Vec<(ServerAddress, OperationCounter)>,
        closed: bool,
    ) -> Self {
        debug_assert!(counters.windows(2).all(|w| w[0].0 < w[1].0), "counters sorted by address");
        Self { description, counters, closed }
    }

    /// The description it was made from.
    pub fn description(&self) -> &Arc<TopologyDescription> {
        &self.description
    }

    /// Whether the topology was closed when it was made (nothing can be selected then).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn counter(&self, address: &ServerAddress) -> Option<&OperationCounter> {
        let i = self.counters.binary_search_by(|(a, _)| a.cmp(address)).ok()?;
        self.counters.get(i).map(|(_, c)| c)
    }

    /// Server selection against this snapshot, without waiting: server-selection.md, "Server
    /// Selection Algorithm", steps 2 to 8 (compatibility, the topology-type rules, the
    /// latency window, the in-window choice by these operation counts with `rng`). On success
    /// the chosen server's count includes the new operation; end it with
    /// [`SelectedServer::finish_operation`].
    ///
    /// `None` when the selection cannot succeed now (nothing suitable, an incompatible
    /// topology, an invalid read preference, a closed topology): hand it to
    /// [`Topology::start_selection`](crate::Topology::start_selection), which waits, asks for
    /// checks, fails it with the explained error and logs it. No allocation for up to
    /// [`INLINE_SERVERS`](super::INLINE_SERVERS) suitable servers.
    pub fn select_now(&self, criteria: &SelectionCriteria, rng: &mut Rng) -> Option<SelectedServer> {
        if self.closed {
            return None;
        }
        let window = in_latency_window(&self.description, criteria).ok()?;
        let chosen = choose_in_window(&window, self, rng)?;
        let counter = self.counter(&chosen.address)?;
        counter.started();
        Some(SelectedServer::new(Arc::clone(chosen), Some(counter.clone())))
    }

    /// [`select_now`](Self::select_now) that also produces the log events of a selection
    /// that succeeds at once ("Server selection started", "Server selection succeeded") into
    /// `log`, with the operation name and id of `options`. Nothing is logged when it returns
    /// `None`: the topology logs the selection it is handed.
    pub fn select_now_logged(
        &self,
        criteria: &SelectionCriteria,
        options: &SelectionOptions,
        rng: &mut Rng,
        log: &mut Vec<SelectionLogEvent>,
    ) -> Option<SelectedServer> {
        let selected = self.select_now(criteria, rng)?;
        let selector = criteria.to_string();
        log.push(log_event(SelectionLogKind::Started, selector.clone(), options, &self.description));
        let succeeded = SelectionLogKind::Succeeded {
            server_host: selected.address().host().to_owned(),
            server_port: selected.address().port(),
        };
        log.push(log_event(succeeded, selector, options, &self.description));
        Some(selected)
    }
}

impl OperationCounts for SelectionSnapshot {
    fn operation_count(&self, address: &ServerAddress) -> u32 {
        self.counter(address).map_or(0, OperationCounter::get)
    }
}

impl fmt::Debug for SelectionSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelectionSnapshot")
            .field("topology_type", &self.description.topology_type)
            .field("counters", &self.counters)
            .field("closed", &self.closed)
            .finish()
    }
}
