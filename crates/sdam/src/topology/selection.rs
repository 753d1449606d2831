//! Server selection against the topology's own operation counts and random generator.

use std::time::Instant;

use super::{Input, Topology};
use crate::address::ServerAddress;
use crate::selection::{Selection, SelectionPoll};

impl Topology {
    /// Polls a server selection against the current description with this topology's
    /// operation counts and random number generator.
    ///
    /// On `Selected`, the chosen server's operation count is incremented: report
    /// [`Input::OperationFinished`] when the operation ends. On `Wait` with
    /// `request_immediate_check`, the monitors are asked for an immediate check (throttled by
    /// minHeartbeatFrequencyMS), so the caller only has to wait for the next
    /// [`Command::WakeSelections`](crate::Command::WakeSelections) or the `until` deadline.
    pub fn select(&mut self, selection: &mut Selection, now: Instant) -> SelectionPoll {
        let counts = |address: &ServerAddress| self.servers.get(address).map_or(0, |s| s.operations);
        let poll = selection.poll(&self.description, &counts, &mut self.rng, now);
        match &poll {
            SelectionPoll::Selected(chosen) => {
                if let Some(s) = self.servers.get_mut(&chosen.address) {
                    s.operations = s.operations.saturating_add(1);
                }
            }
            SelectionPoll::Wait { request_immediate_check: true, .. } if !self.closed => {
                self.handle(Input::RequestImmediateCheck, now);
            }
            _ => {}
        }
        poll
    }
}
