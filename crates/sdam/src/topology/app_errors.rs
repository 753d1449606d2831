//! Application errors: the SDAM "Error handling pseudocode" and pool clears.

use std::time::Instant;

use bson::oid::ObjectId;

use super::Topology;
use crate::address::ServerAddress;
use crate::app_error::{
    classify, ApplicationError, ApplicationErrorKind, ErrorPhase, StateChange, SYSTEM_OVERLOADED_LABEL,
};
use crate::events::{Command, Output};
use crate::server_description::ServerDescription;
use crate::topology_description::TopologyType;

impl Topology {
    /// "Error handling pseudocode" (handleError).
    pub(super) fn handle_application_error(&mut self, error: ApplicationError, now: Instant) {
        let Some(state) = self.servers.get(&error.address) else { return };
        let Some(current) = self.description.servers.get(&error.address).cloned() else { return };
        let load_balanced = self.description.topology_type == TopologyType::LoadBalanced;
        // isStaleError: an error from a connection of an older pool generation is stale.
        let current_generation = match (load_balanced, error.service_id) {
            (true, Some(service)) => state.service_generations.get(&service).copied().unwrap_or(0),
            _ => state.pool_generation,
        };
        if error.generation.is_some_and(|g| g < current_generation) {
            return;
        }
        let overloaded = error.has_label(SYSTEM_OVERLOADED_LABEL);
        match &error.kind {
            ApplicationErrorKind::Command { code, message, topology_version } => {
                let class = classify(*code, message);
                if class == StateChange::None {
                    // "MongoDB Handshake errors": any other error while establishing the
                    // connection (the handshake or authentication) marks the server Unknown
                    // and clears its pool.
                    if error.phase.before_handshake_completes() && !overloaded {
                        self.mark_unknown_and_clear(&error, load_balanced, now);
                    }
                    return;
                }
                // isStaleError: the current description's topologyVersion is not older.
                if crate::server_description::TopologyVersion::compare(
                    current.topology_version.as_ref(),
                    topology_version.as_ref(),
                ) != std::cmp::Ordering::Less
                {
                    return;
                }
                if !load_balanced {
                    let mut unknown =
                        ServerDescription::unknown_with_error(error.address.clone(), error.to_string());
                    unknown.topology_version = *topology_version;
                    unknown.last_update_time = Some(now);
                    self.apply_server_description(unknown, now);
                }
                // Clear the pool if and only if the node is shutting down.
                if class == (StateChange::Recovering { shutdown: true }) {
                    self.clear_pool(
                        &error.address,
                        load_balanced.then_some(error.service_id).flatten(),
                        false,
                    );
                }
                self.request_check(&error.address, now);
            }
            // "Network error when reading or writing", by phase: a network error or timeout
            // on the connection establishment or the hello MUST NOT change the server's
            // description (error_handling_handshake.json); one during the authentication step
            // marks it Unknown; after the handshake, a timeout may be a slow operation and
            // changes nothing, any other network error marks it Unknown. Errors carrying the
            // backpressure label are ignored ("Error handling pseudocode").
            ApplicationErrorKind::Network | ApplicationErrorKind::Timeout => {
                let marks_unknown = match error.phase {
                    ErrorPhase::ConnectionEstablishment => false,
                    ErrorPhase::Authentication => true,
                    ErrorPhase::AfterHandshakeCompletes => error.kind == ApplicationErrorKind::Network,
                };
                if marks_unknown && !overloaded {
                    self.mark_unknown_and_clear(&error, load_balanced, now);
                }
            }
        }
    }

    /// Marks the server Unknown (unless load balanced) and clears its pool.
    pub(super) fn mark_unknown_and_clear(
        &mut self,
        error: &ApplicationError,
        load_balanced: bool,
        now: Instant,
    ) {
        if load_balanced {
            if let Some(service) = error.service_id {
                self.clear_pool(&error.address, Some(service), false);
            }
            return;
        }
        let mut unknown = ServerDescription::unknown_with_error(error.address.clone(), error.to_string());
        unknown.last_update_time = Some(now);
        self.apply_server_description(unknown, now);
        self.clear_pool(&error.address, None, false);
        // "hello or legacy hello Cancellation": cancel the check in flight and close the
        // monitoring connection; the monitor sleeps a heartbeat (or until a check is requested).
        self.cancel_check(
            &error.address,
            "the server was marked Unknown after an application network error",
            now,
        );
    }

    /// Bumps the pool generation and tells the I/O layer to clear the pool.
    pub(super) fn clear_pool(
        &mut self,
        address: &ServerAddress,
        service_id: Option<ObjectId>,
        interrupt: bool,
    ) {
        let Some(state) = self.servers.get_mut(address) else { return };
        let generation = match service_id {
            Some(service) => {
                let g = state.service_generations.entry(service).or_insert(0);
                *g += 1;
                *g
            }
            None => {
                // CMAP, "Clearing a non-load balanced pool": the pool is "paused" until a
                // check marks it ready again. (A load-balanced service clear does not pause.)
                state.pool_generation += 1;
                state.pool_ready = false;
                state.pool_generation
            }
        };
        self.outputs.push_back(Output::Command(Command::ClearPool {
            address: address.clone(),
            service_id,
            generation,
            interrupt_in_use_connections: interrupt,
        }));
    }
}
