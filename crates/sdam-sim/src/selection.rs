//! Server selections run through virtual time. The waiting is the core's
//! ([`Topology::start_selection`](sdam::Topology::start_selection)): the simulator only maps
//! the core's selection ids to its own records, and moves time to the topology's
//! `poll_timeout` (which includes every waiting selection's deadline).

use std::sync::Arc;
use std::time::Duration;

use sdam::selection::{
    SelectedServer, SelectionCriteria, SelectionError, SelectionLogEvent, SelectionOptions,
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
    /// The virtual time (since the start) the topology chose it.
    pub at: Duration,
}

/// How a selection ended: the chosen server, or the core's explained error.
pub type SelectionOutcome = Result<Selected, Box<SelectionError>>;

/// One selection the topology runs, with what the simulator saw of it.
#[derive(Debug)]
pub struct SimSelection {
    core: sdam::selection::SelectionId,
    criteria: SelectionCriteria,
    started: Duration,
    outcome: Option<SelectionOutcome>,
    log: Vec<(Duration, SelectionLogEvent)>,
}

impl SimSelection {
    /// The virtual time it started at.
    pub fn started(&self) -> Duration {
        self.started
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
    /// virtual time the topology produced them at.
    pub fn log(&self) -> &[(Duration, SelectionLogEvent)] {
        &self.log
    }

    /// The criteria it selects for.
    pub fn criteria(&self) -> &SelectionCriteria {
        &self.criteria
    }
}

impl Sim {
    /// Starts a server selection at the current virtual time: the topology chooses at once if
    /// it can, else waits (asking its monitors for checks) until a suitable server appears or
    /// the deadline; [`run_for`](Self::run_for), [`run_until`](Self::run_until) and
    /// [`run_selection_to_end`](Self::run_selection_to_end) move it on.
    pub fn start_selection(&mut self, criteria: SelectionCriteria, options: SelectionOptions) -> SelectionId {
        let core = self.topology.start_selection(criteria.clone(), options, self.now);
        let id = SelectionId(self.selections.len());
        self.selections.push(SimSelection {
            core,
            criteria,
            started: self.elapsed(),
            outcome: None,
            log: Vec::new(),
        });
        self.selection_index.insert(core, id.0);
        self.drain();
        id
    }

    /// Options for the operation `name`, as a driver builds them (the topology's
    /// serverSelectionTimeoutMS applies).
    pub fn selection_options(&self, operation_name: &str) -> SelectionOptions {
        SelectionOptions::new(operation_name)
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
        let core = self.selection(id).core;
        if let Some(deadline) = self.topology.selection_deadline(core) {
            let left = deadline.saturating_duration_since(self.now);
            self.run_until(|s| !s.selection(id).is_waiting(), left);
        }
        match self.selection(id).outcome() {
            Some(outcome) => outcome.clone(),
            None => panic!("selection {id:?} still waits at its deadline ({:?})", self.elapsed()),
        }
    }

    /// Starts a selection and runs until it ends: the chosen server and when, or the core's
    /// explained error (for example `TimedOut` after the timeout, in virtual time).
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

    /// The topology's outcome of a selection. The operation it counted stays counted until
    /// [`finish_operation`](Self::finish_operation).
    pub(crate) fn selection_ended(
        &mut self,
        core: sdam::selection::SelectionId,
        result: Result<SelectedServer, Box<SelectionError>>,
    ) {
        let at = self.elapsed();
        let Some(s) = self.selection_index.get(&core).and_then(|&i| self.selections.get_mut(i)) else {
            return;
        };
        s.outcome = Some(result.map(|chosen| Selected {
            address: chosen.address().clone(),
            description: Arc::clone(chosen.description()),
            at,
        }));
    }

    /// A selection log event from the topology.
    pub(crate) fn selection_logged(&mut self, core: sdam::selection::SelectionId, event: SelectionLogEvent) {
        let at = self.elapsed();
        if let Some(s) = self.selection_index.get(&core).and_then(|&i| self.selections.get_mut(i)) {
            s.log.push((at, event));
        }
    }
}
