//! Application operations on the simulated members: what a driver would see when it sends a
//! command to the server a selection chose, and the errors it reports to the topology.

use std::time::{Duration, Instant};

use sdam::{ApplicationError, ApplicationErrorKind, ErrorPhase, Input, ServerAddress, TopologyVersion};

use crate::{Role, Sim, FAILURE_DELAY};

/// The `maxWireVersion` every simulated member reports (and so every application error).
const MAX_WIRE_VERSION: i32 = 21;

/// The "not writable primary" code (`NotWritablePrimary`).
pub const NOT_WRITABLE_PRIMARY: i32 = 10107;

/// The "not primary or secondary" code (`NotPrimaryOrSecondary`), a "node is recovering" error.
pub const NOT_PRIMARY_OR_SECONDARY: i32 = 13436;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// A read: any data-bearing member answers it (an arbiter or a removed member does not).
    Read,
    /// A write: only a primary, a mongos or a standalone accepts it.
    Write,
}

/// Names an operation started with [`Sim::start_operation`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperationId(usize);

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationOutcome {
    /// The virtual time it ended at.
    pub at: Duration,
    /// `Ok` or the error the driver saw (already reported to the topology).
    pub result: Result<(), Box<ApplicationError>>,
}

/// An operation in flight or ended.
#[derive(Debug, Clone)]
pub(crate) enum OperationState {
    InFlight {
        address: ServerAddress,
        kind: OperationKind,
        /// The pool generation of the connection it runs on.
        generation: Option<u32>,
        /// When the member's answer arrives (or the reset shows, after a crash).
        ends: Instant,
        /// Its connection was reset by a crash.
        reset: bool,
    },
    Ended(OperationOutcome),
}

impl Sim {
    /// Runs one operation on `address` at the current virtual time, taking no virtual time.
    ///
    /// A member that is down (or not in the cluster) fails it with a network error; a write
    /// on a member that is not writable fails with a `NotWritablePrimary` command error
    /// (code [`NOT_WRITABLE_PRIMARY`], carrying the member's topologyVersion as servers do);
    /// a read on an arbiter or a removed member fails with [`NOT_PRIMARY_OR_SECONDARY`]. The
    /// error is reported to the topology ([`Input::ApplicationError`], on an established
    /// connection of the current pool generation) and returned, so a test can ask
    /// [`ApplicationError::is_retryable`].
    ///
    /// The operation count is not touched: a selection counted the operation, and
    /// [`finish_operation`](Self::finish_operation) ends it.
    pub fn run_operation(
        &mut self,
        address: &ServerAddress,
        kind: OperationKind,
    ) -> Result<(), Box<ApplicationError>> {
        let generation = self.topology.pool_generation(address);
        let result = self.operation_result(address, kind, generation, false);
        if let Err(error) = &result {
            self.handle(Input::ApplicationError((**error).clone()));
        }
        result
    }

    /// Sends one operation to `address` now; the member answers it `duration` later, by its
    /// state then (as [`run_operation`](Self::run_operation) decides). If the member crashes
    /// meanwhile, the connection is reset and the operation fails with a network error
    /// [`FAILURE_DELAY`] after the crash. Errors are reported to the topology when they
    /// show, with the pool generation the operation started on (so an error from before a
    /// pool clear is stale). See [`operation`](Self::operation) for the outcome.
    ///
    /// The operation count is not touched: call [`finish_operation`](Self::finish_operation).
    pub fn start_operation(
        &mut self,
        address: &ServerAddress,
        kind: OperationKind,
        duration: Duration,
    ) -> OperationId {
        let id = OperationId(self.operations.len());
        self.operations.push(OperationState::InFlight {
            address: address.clone(),
            kind,
            generation: self.topology.pool_generation(address),
            ends: self.now + duration,
            reset: false,
        });
        self.in_flight.push(id.0);
        id
    }

    /// How operation `id` ended, or `None` while it is in flight.
    ///
    /// # Panics
    /// If `id` comes from another simulator.
    pub fn operation(&self, id: OperationId) -> Option<&OperationOutcome> {
        match self.operations.get(id.0) {
            Some(OperationState::Ended(outcome)) => Some(outcome),
            Some(OperationState::InFlight { .. }) => None,
            None => panic!("no operation {id:?} in this simulator"),
        }
    }

    /// What the member at `address` answers to an operation now.
    fn operation_result(
        &self,
        address: &ServerAddress,
        kind: OperationKind,
        generation: Option<u32>,
        reset: bool,
    ) -> Result<(), Box<ApplicationError>> {
        // An address no longer in the topology has no pool: generation 0.
        let error = |kind| {
            let mut e = ApplicationError::new(address.clone(), generation.unwrap_or(0), kind);
            e.max_wire_version = MAX_WIRE_VERSION;
            e.phase = ErrorPhase::AfterHandshakeCompletes;
            Box::new(e)
        };
        let member = match self.cluster.member(address) {
            Some(m) if m.up && !reset => m,
            _ => return Err(error(ApplicationErrorKind::Network)),
        };
        let refused = match (kind, member.role) {
            (OperationKind::Write, Role::Primary | Role::Mongos | Role::Standalone) => None,
            (OperationKind::Write, _) => Some((NOT_WRITABLE_PRIMARY, "not primary")),
            (OperationKind::Read, Role::Arbiter | Role::Removed) => {
                Some((NOT_PRIMARY_OR_SECONDARY, "node is not in primary or recovering state"))
            }
            (OperationKind::Read, _) => None,
        };
        match refused {
            None => Ok(()),
            Some((code, message)) => {
                let (process_id, counter) = member.topology_version();
                Err(error(ApplicationErrorKind::Command {
                    code: Some(code),
                    message: message.into(),
                    topology_version: Some(TopologyVersion { process_id, counter }),
                }))
            }
        }
    }

    /// A crash of `address` resets the connections of its operations in flight: they fail
    /// [`FAILURE_DELAY`] from now.
    pub(crate) fn reset_operations(&mut self, address: &ServerAddress) {
        let fail_at = self.now + FAILURE_DELAY;
        for &i in &self.in_flight {
            if let Some(OperationState::InFlight { address: a, ends, reset, .. }) = self.operations.get_mut(i)
            {
                if a == address {
                    *reset = true;
                    *ends = (*ends).min(fail_at);
                }
            }
        }
    }

    /// When the next operation in flight ends.
    pub(crate) fn next_operation_end(&self) -> Option<Instant> {
        self.in_flight
            .iter()
            .filter_map(|&i| match self.operations.get(i)? {
                OperationState::InFlight { ends, .. } => Some(*ends),
                OperationState::Ended(_) => None,
            })
            .min()
    }

    /// Ends the operations in flight that are due, in start order, reporting their errors.
    pub(crate) fn end_due_operations(&mut self) {
        let now = self.now;
        let due: Vec<usize> = self
            .in_flight
            .iter()
            .copied()
            .filter(|&i| matches!(self.operations.get(i), Some(OperationState::InFlight { ends, .. }) if *ends <= now))
            .collect();
        self.in_flight.retain(|i| !due.contains(i));
        for i in due {
            let Some(OperationState::InFlight { address, kind, generation, reset, .. }) =
                self.operations.get(i).cloned()
            else {
                continue;
            };
            let result = self.operation_result(&address, kind, generation, reset);
            if let Err(error) = &result {
                self.topology.handle(Input::ApplicationError((**error).clone()), self.now);
            }
            let at = self.elapsed();
            if let Some(state) = self.operations.get_mut(i) {
                *state = OperationState::Ended(OperationOutcome { at, result });
            }
            self.drain();
        }
    }
}
