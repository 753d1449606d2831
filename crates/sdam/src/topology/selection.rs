//! Waiting server selections, owned by the topology (server-selection.md, "Multi-threaded or
//! asynchronous server selection"): one loop, polled when the description changes and at
//! each selection's deadline, never otherwise.

use std::sync::Arc;
use std::time::Instant;

use smallvec::SmallVec;

use super::Topology;
use crate::address::ServerAddress;
use crate::events::Output;
use crate::selection::{
    SelectedServer, Selection, SelectionCriteria, SelectionErrorKind, SelectionId, SelectionOptions,
    SelectionPoll, SelectionSnapshot,
};

impl Topology {
    /// Starts a server selection at `now` and returns its id. Its outcome comes out of
    /// [`poll_output`](Self::poll_output) as exactly one [`Output::Selection`] naming the id
    /// (already queued when a suitable server is known now), with its log events as
    /// [`Output::SelectionLog`] (started, then waiting once if it must wait, then succeeded or
    /// failed), carrying `options`' operation name and id.
    ///
    /// The deadline is `now` plus `options.timeout`, or the configured serverSelectionTimeoutMS
    /// when the options leave it unset; it is part of [`poll_timeout`](Self::poll_timeout), and
    /// [`handle_timeout`](Self::handle_timeout) at that moment fails the selection with
    /// [`SelectionErrorKind::TimedOut`]. While it waits, the monitors are asked for immediate
    /// checks (throttled by minHeartbeatFrequencyMS, server-selection.md, step 9) and it is
    /// tried again whenever the description changes. On success the chosen server's operation
    /// count includes this operation, counted once: end it with
    /// [`SelectedServer::finish_operation`] (or [`Input::OperationFinished`](crate::Input::OperationFinished)).
    /// A closed topology fails it at once with [`SelectionErrorKind::TopologyClosed`].
    pub fn start_selection(
        &mut self,
        criteria: SelectionCriteria,
        options: SelectionOptions,
        now: Instant,
    ) -> SelectionId {
        self.last_now = self.last_now.max(now);
        let id = SelectionId::new(self.next_selection);
        self.next_selection += 1;
        // serverSelectionTimeoutMS unless the operation computed its own (server-selection.md,
        // "serverSelectionTimeoutMS").
        let timeout = options.timeout.unwrap_or(self.config.server_selection_timeout);
        let selection = Selection::with_timeout(criteria, options, timeout, now);
        self.selections.insert(id, selection);
        if self.closed {
            self.fail_selection(id, SelectionErrorKind::TopologyClosed);
            return id;
        }
        if self.poll_selection(id, now) {
            self.request_immediate_checks(now);
        }
        self.run_timers(now);
        id
    }

    /// Stops waiting for selection `id`: no outcome will be reported for it. Returns whether
    /// it was still waiting (a selection that already ended has reported its outcome).
    pub fn cancel_selection(&mut self, id: SelectionId) -> bool {
        match self.selections.remove(&id) {
            Some(selection) => {
                self.selection_deadlines.remove(&(selection.deadline(), id));
                true
            }
            None => false,
        }
    }

    /// When waiting selection `id` times out (`None` once it ended or was cancelled).
    pub fn selection_deadline(&self, id: SelectionId) -> Option<Instant> {
        self.selections.get(&id).map(Selection::deadline)
    }

    /// How many selections are waiting.
    pub fn waiting_selections(&self) -> usize {
        self.selections.len()
    }

    /// The current description with this topology's operation counters, for selecting without
    /// the topology (from any thread): see [`SelectionSnapshot::select_now`]. Make a new one
    /// after the description changed ([`description`](Self::description) returns another
    /// `Arc`); the counters are the topology's own, shared by every snapshot.
    pub fn selection_snapshot(&self) -> Arc<SelectionSnapshot> {
        let counters: Vec<_> = self.servers.iter().map(|(a, s)| (a.clone(), s.operations.clone())).collect();
        Arc::new(SelectionSnapshot::new(Arc::clone(&self.description), counters, self.closed))
    }

    /// The waiting loop: polls every waiting selection when the description changed since the
    /// last round, else those whose deadline has come; asks for immediate checks while any
    /// still waits.
    pub(super) fn run_selections(&mut self, now: Instant) {
        if self.selections.is_empty() {
            return;
        }
        let changed = !self.selections_seen.as_ref().is_some_and(|d| Arc::ptr_eq(d, &self.description));
        let due: SmallVec<[SelectionId; 8]> = if changed {
            self.selections.keys().copied().collect()
        } else {
            self.selection_deadlines.iter().take_while(|(t, _)| *t <= now).map(|(_, id)| *id).collect()
        };
        if due.is_empty() {
            return;
        }
        self.selections_seen = Some(Arc::clone(&self.description));
        let mut waiting = false;
        for id in due {
            waiting |= self.poll_selection(id, now);
        }
        if waiting && changed {
            self.request_immediate_checks(now);
        }
    }

    /// One step of selection `id` against the current description; returns whether it still
    /// waits.
    fn poll_selection(&mut self, id: SelectionId, now: Instant) -> bool {
        let Some(mut selection) = self.selections.remove(&id) else { return false };
        self.selection_deadlines.remove(&(selection.deadline(), id));
        let servers = &self.servers;
        let counts = |a: &ServerAddress| servers.get(a).map_or(0, |s| s.operations.get());
        let poll = selection.poll(&self.description, &counts, &mut self.rng, now);
        while let Some(event) = selection.poll_event() {
            self.outputs.push_back(Output::SelectionLog { id, event });
        }
        match poll {
            SelectionPoll::Selected(chosen) => {
                // The operation is counted here, once, for the one outcome reported.
                let counter = self.servers.get(chosen.address()).map(|s| s.operations.clone());
                if let Some(c) = &counter {
                    c.started();
                }
                let selected = SelectedServer::new(Arc::clone(chosen.description()), counter);
                self.outputs.push_back(Output::Selection { id, result: Ok(selected) });
                false
            }
            SelectionPoll::Failed(error) => {
                self.outputs.push_back(Output::Selection { id, result: Err(error) });
                false
            }
            SelectionPoll::Wait { until, .. } => {
                self.selection_deadlines.insert((until, id));
                self.selections.insert(id, selection);
                true
            }
        }
    }

    /// Ends selection `id` with `kind`, with its log event.
    fn fail_selection(&mut self, id: SelectionId, kind: SelectionErrorKind) {
        let Some(mut selection) = self.selections.remove(&id) else { return };
        self.selection_deadlines.remove(&(selection.deadline(), id));
        let poll = selection.fail(kind, &self.description);
        while let Some(event) = selection.poll_event() {
            self.outputs.push_back(Output::SelectionLog { id, event });
        }
        if let SelectionPoll::Failed(error) = poll {
            self.outputs.push_back(Output::Selection { id, result: Err(error) });
        }
    }

    /// Closing: every waiting selection fails with [`SelectionErrorKind::TopologyClosed`].
    pub(super) fn fail_waiting_selections(&mut self) {
        let ids: Vec<SelectionId> = self.selections.keys().copied().collect();
        for id in ids {
            self.fail_selection(id, SelectionErrorKind::TopologyClosed);
        }
    }
}
