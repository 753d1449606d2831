//! Server selections run through virtual time: the simulator polls each waiting selection
//! with [`Topology::select`](sdam::Topology::select) whenever the topology publishes
//! [`Command::WakeSelections`](sdam::Command::WakeSelections) and when its `Wait` deadline
//! comes, and never otherwise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sdam::selection::{
    Selection, SelectionCriteria, SelectionError, SelectionLogEvent, SelectionOptions, SelectionPoll,
};
use sdam::{ServerAddress, ServerDescription};

use crate::Sim;

/// Names a selection started with [`Sim::start_selection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SelectionId(usize);

/// The server a selection chose, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The chosen server (its operation count now includes this operation: end it with
    /// [`Sim::finish_operation`]).
    pub address: ServerAddress,
    /// Its description in the topology the choice was made on.
    pub description: Arc<ServerDescription>,
    /// The virtual time (since the start) of the poll that chose it.
    pub at: Duration,
}

/// How a selection ended: the chosen server, or the core's explained error.
pub type SelectionOutcome = Result<Selected, Box<SelectionError>>;

/// One selection the simulator drives, with a record of every poll.
#[derive(Debug)]
pub struct SimSelection {
    selection: Selection,
    started: Duration,
    /// When to poll again if nothing wakes it first (`None` once finished).
    until: Option<Instant>,
    polls: Vec<Duration>,
    outcome: Option<SelectionOutcome>,
    log: Vec<(Duration, SelectionLogEvent)>,
}

impl SimSelection {
    /// The virtual time it started at.
    pub fn started(&self) -> Duration {
        self.started
    }

    /// How many times it was polled.
    pub fn polls(&self) -> usize {
        self.polls.len()
    }

    /// The virtual time of every poll, in order (the first is the start).
    pub fn poll_times(&self) -> &[Duration] {
        &self.polls
    }

    /// Whether it is still waiting for a suitable server.
    pub fn is_waiting(&self) -> bool {
        self.outcome.is_none()
    }

    /// How it ended, or `None` while it waits.
    pub fn outcome(&self) -> Option<&SelectionOutcome> {
        self.outcome.as_ref()
    }

    /// The selection's log events ("started", "waiting", "succeeded" or "failed"), with the
    /// virtual time they were produced at.
    pub fn log(&self) -> &[(Duration, SelectionLogEvent)] {
        &self.log
    }

    /// The criteria it selects for.
    pub fn criteria(&self) -> &SelectionCriteria {
        self.selection.criteria()
    }
}

impl Sim {
    /// Starts a server selection at the current virtual time and polls it once. While it
    /// waits, the simulator polls it again at every `WakeSelections` the topology publishes
    /// and at its deadline; [`run_for`](Self::run_for), [`run_until`](Self::run_until) and
    /// [`run_selection_to_end`](Self::run_selection_to_end) move it on.
    pub fn start_selection(&mut self, criteria: SelectionCriteria, options: SelectionOptions) -> SelectionId {
        let id = SelectionId(self.selections.len());
        self.selections.push(SimSelection {
            selection: Selection::new(criteria, options, self.now),
            started: self.elapsed(),
            until: None,
            polls: Vec::new(),
            outcome: None,
            log: Vec::new(),
        });
        self.poll_selection(id.0);
        self.drain();
        id
    }

    /// Options for the operation `name` with the topology's serverSelectionTimeoutMS, as a
    /// driver would build them.
    pub fn selection_options(&self, operation_name: &str) -> SelectionOptions {
        SelectionOptions::new(operation_name).with_timeout(self.topology.config().server_selection_timeout)
    }

    /// A selection started with [`start_selection`](Self::start_selection).
    ///
    /// # Panics
    /// If `id` comes from another simulator.
    pub fn selection(&self, id: SelectionId) -> &SimSelection {
        self.selections.get(id.0).unwrap_or_else(|| panic!("no selection {id:?} in this simulator"))
    }

    /// Every selection started so far, in start order.
    pub fn selections(&self) -> &[SimSelection] {
        &self.selections
    }

    /// Runs until the selection `id` has ended (it ends at its deadline at the latest) and
    /// returns how.
    ///
    /// # Panics
    /// If `id` comes from another simulator, or if the selection outlives its deadline (a
    /// core bug), or on a hot loop (more than [`MAX_STEPS`](crate::MAX_STEPS) steps).
    pub fn run_selection_to_end(&mut self, id: SelectionId) -> SelectionOutcome {
        let deadline = self.selection(id).selection.deadline();
        let left = deadline.saturating_duration_since(self.now);
        self.run_until(|s| !s.selection(id).is_waiting(), left);
        match self.selection(id).outcome() {
            Some(outcome) => outcome.clone(),
            None => panic!("selection {id:?} still waits at its deadline ({:?})", self.elapsed()),
        }
    }

    /// Starts a selection and runs until it ends: the chosen server and when, or the core's
    /// explained error (for example `TimedOut` after `options.timeout` of virtual time).
    ///
    /// # Panics
    /// As [`run_selection_to_end`](Self::run_selection_to_end).
    pub fn run_selection(
        &mut self,
        criteria: SelectionCriteria,
        options: SelectionOptions,
    ) -> SelectionOutcome {
        let id = self.start_selection(criteria, options);
        self.run_selection_to_end(id)
    }

    /// Ends one operation on `address` ([`Input::OperationFinished`](sdam::Input::OperationFinished)):
    /// its operation count goes down by one.
    pub fn finish_operation(&mut self, address: &ServerAddress) {
        self.handle(sdam::Input::OperationFinished(address.clone()));
    }

    /// Polls selection `index` with the topology, recording the result.
    fn poll_selection(&mut self, index: usize) {
        let elapsed = self.elapsed();
        let now = self.now;
        let Some(s) = self.selections.get_mut(index) else { return };
        if s.outcome.is_some() {
            return;
        }
        let poll = self.topology.select(&mut s.selection, now);
        s.polls.push(elapsed);
        while let Some(event) = s.selection.poll_event() {
            s.log.push((elapsed, event));
        }
        match poll {
            SelectionPoll::Selected(chosen) => {
                s.until = None;
                s.outcome = Some(Ok(Selected {
                    address: chosen.address,
                    description: chosen.description,
                    at: elapsed,
                }));
            }
            SelectionPoll::Failed(error) => {
                s.until = None;
                s.outcome = Some(Err(error));
            }
            SelectionPoll::Wait { until, .. } => {
                s.until = Some(until);
                if !self.waiting.contains(&index) {
                    self.waiting.push(index);
                }
            }
            _ => {}
        }
        if self.selections.get(index).is_some_and(|s| s.outcome.is_some()) {
            self.waiting.retain(|&i| i != index);
        }
    }

    /// Polls every waiting selection (the topology published `WakeSelections`). Returns
    /// whether there were any.
    pub(crate) fn wake_selections(&mut self) -> bool {
        let waiting = self.waiting.clone();
        for &index in &waiting {
            self.poll_selection(index);
        }
        !waiting.is_empty()
    }

    /// The earliest `Wait` deadline of the waiting selections.
    pub(crate) fn next_selection_deadline(&self) -> Option<Instant> {
        self.waiting.iter().filter_map(|&i| self.selections.get(i)?.until).min()
    }

    /// Polls the waiting selections whose deadline has come.
    pub(crate) fn poll_due_selections(&mut self) {
        let now = self.now;
        let due: Vec<usize> = self
            .waiting
            .iter()
            .copied()
            .filter(|&i| self.selections.get(i).and_then(|s| s.until).is_some_and(|t| t <= now))
            .collect();
        for index in due {
            self.poll_selection(index);
        }
    }
}
