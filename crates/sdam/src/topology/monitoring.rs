//! Monitoring: the monitor schedules turned into commands, and what their replies and
//! failures do (server-monitoring.md).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::raw::RawDocument;
use smallvec::SmallVec;

use super::{Purpose, ServerState, Topology};
use crate::address::ServerAddress;
use crate::events::{Command, Event, Output};
use crate::handshake::{check_command, handshake_command};
use crate::monitor::{ConnectionId, FailureKind, Monitor, Phase, RequestId, RttTask};
use crate::server_description::{ServerDescription, ServerType};

impl Topology {
    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Starts monitoring a server that entered the topology: its first check is due now.
    pub(super) fn start_monitor(&mut self, address: &ServerAddress, now: Instant) {
        if self.config.load_balanced {
            return; // load balancers are not monitored
        }
        let streaming = self.config.streaming_enabled();
        if let Some(state) = self.servers.get_mut(address) {
            state.monitor.get_or_insert_with(|| Monitor::new(now, streaming));
            self.touched.push(address.clone());
        }
    }

    /// Stops a monitor: closes its connections; late replies are then dropped.
    pub(super) fn stop_monitor(&mut self, monitor: Option<Monitor>) {
        let Some(m) = monitor else { return };
        let rtt_connection = m.rtt_task.and_then(|t| t.connection);
        for connection in [m.connection, rtt_connection].into_iter().flatten() {
            self.command(Command::CloseConnection { connection });
        }
        if let Phase::Checking { request, .. } = m.phase {
            self.requests.remove(&request);
        }
        if let Some(request) = m.rtt_task.and_then(|t| t.request) {
            self.requests.remove(&request);
        }
    }

    /// Asks the monitor of `address` for an immediate check.
    pub(super) fn request_check(&mut self, address: &ServerAddress, now: Instant) {
        if let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) {
            m.request_check(now);
        }
    }

    /// Cancels the check in flight on `address` and closes its monitoring connection.
    pub(super) fn cancel_check(&mut self, address: &ServerAddress, now: Instant) {
        let heartbeat = self.config.heartbeat_frequency;
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        let cancelled = match m.phase {
            Phase::Checking { request, .. } => Some(request),
            Phase::Idle { .. } => None,
        };
        let connection = m.connection.take();
        if cancelled.is_some() {
            m.sleep(now, heartbeat);
        }
        m.rtt.reset();
        if let Some(request) = cancelled {
            self.requests.remove(&request);
        }
        if let Some(connection) = connection {
            self.command(Command::CloseConnection { connection });
        }
    }

    /// Starts every check and RTT measurement due at `now`.
    pub(super) fn run_timers(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        self.update_timers();
        let mut due: SmallVec<[ServerAddress; 4]> =
            self.timers.iter().take_while(|(t, _)| *t <= now).map(|(_, a)| a.clone()).collect();
        // In address order, as a scan of the servers would find them.
        due.sort_unstable();
        for address in due {
            self.start_check_if_due(&address, now);
            self.start_rtt_if_due(&address, now);
        }
        self.run_srv_timers(now);
        self.update_timers();
    }

    /// Brings `timers` up to date with the monitors touched since the last call.
    pub(super) fn update_timers(&mut self) {
        let touched = std::mem::take(&mut self.touched);
        for address in touched {
            let Some(state) = self.servers.get_mut(&address) else { continue };
            let deadline = state.monitor.as_ref().and_then(Monitor::next_deadline);
            if deadline != state.timer {
                if let Some(t) = state.timer {
                    self.timers.remove(&(t, address.clone()));
                }
                if let Some(t) = deadline {
                    self.timers.insert((t, address));
                }
                state.timer = deadline;
            }
        }
    }

    /// Removes a server's state and its timer.
    pub(super) fn remove_server_state(&mut self, address: &ServerAddress) -> Option<ServerState> {
        let state = self.servers.remove(address)?;
        if let Some(t) = state.timer {
            self.timers.remove(&(t, address.clone()));
        }
        Some(state)
    }

    pub(super) fn start_check_if_due(&mut self, address: &ServerAddress, now: Instant) {
        let id = self.next_id();
        let connection_id = self.next_id();
        let heartbeat = self.config.heartbeat_frequency;
        let connect_timeout = nonzero(self.config.connect_timeout);
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        if !matches!(m.phase, Phase::Idle { next_check } if next_check <= now) {
            return;
        }
        let request = RequestId::new(id);
        let (connection, open, command, awaited) = match m.connection {
            // A new connection: its handshake is the check ("Clients update the topology from
            // each handshake").
            None => {
                let c = ConnectionId::new(connection_id);
                m.connection = Some(c);
                let cmd =
                    handshake_command(&self.metadata, &self.config.compressors, self.config.load_balanced);
                (c, Some(connect_timeout.unwrap_or(Duration::ZERO)), cmd, false)
            }
            // Streaming: an awaitable hello from the last topologyVersion.
            Some(c) if m.streaming_allowed && m.topology_version.is_some() => {
                let tv = m.topology_version.map(|tv| (tv, heartbeat));
                (c, None, check_command(m.hello_ok, tv), true)
            }
            Some(c) => (c, None, check_command(m.hello_ok, None), false),
        };
        m.phase = Phase::Checking { request, started: now, awaited, handshake: open.is_some() };
        // "Socket timeout": connectTimeoutMS, plus heartbeatFrequencyMS for awaitable hellos.
        let timeout = connect_timeout.map(|t| if awaited { t + heartbeat } else { t });
        self.requests.insert(request, (address.clone(), Purpose::Check));
        self.emit(Event::ServerHeartbeatStarted {
            address: address.clone(),
            connection_id: connection,
            awaited,
        });
        self.command(Command::SendHello {
            request,
            connection,
            address: address.clone(),
            open,
            command,
            exhaust_allowed: awaited,
            timeout,
        });
    }

    pub(super) fn start_rtt_if_due(&mut self, address: &ServerAddress, now: Instant) {
        let id = self.next_id();
        let connection_id = self.next_id();
        let connect_timeout = nonzero(self.config.connect_timeout);
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        let hello_ok = m.hello_ok;
        let Some(task) = m.rtt_task.as_mut().filter(|t| t.request.is_none() && t.next_at <= now) else {
            return;
        };
        let request = RequestId::new(id);
        task.request = Some(request);
        let (connection, open, command) = match task.connection {
            Some(c) => (c, None, check_command(hello_ok, None)),
            None => {
                let c = ConnectionId::new(connection_id);
                task.connection = Some(c);
                let cmd =
                    handshake_command(&self.metadata, &self.config.compressors, self.config.load_balanced);
                (c, Some(connect_timeout.unwrap_or(Duration::ZERO)), cmd)
            }
        };
        self.requests.insert(request, (address.clone(), Purpose::Rtt));
        // No events for RTT commands ("Measuring RTT").
        self.command(Command::SendHello {
            request,
            connection,
            address: address.clone(),
            open,
            command,
            exhaust_allowed: false,
            timeout: connect_timeout,
        });
    }

    pub(super) fn on_monitor_reply(
        &mut self,
        request: RequestId,
        reply: &RawDocument,
        round_trip_time: Duration,
        more_to_come: bool,
        now: Instant,
    ) {
        let Some((address, purpose)) = self.requests.get(&request).cloned() else { return };
        let heartbeat = self.config.heartbeat_frequency;
        if purpose == Purpose::Rtt {
            self.requests.remove(&request);
            if let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, &address) {
                // The reply's content is ignored; only its duration counts ("Measuring RTT").
                m.rtt.add_sample(round_trip_time);
                if let Some(task) = m.rtt_task.as_mut() {
                    task.request = None;
                    task.next_at = now + heartbeat;
                }
            }
            return;
        }
        let Some(state) = self.servers.get_mut(&address) else { return };
        let Some(m) = state.monitor.as_mut() else { return };
        self.touched.push(address.clone());
        let Phase::Checking { started, awaited, handshake, .. } = m.phase else { return };
        let connection = m.connection.unwrap_or(ConnectionId::new(0));
        let previous = self.description.server(&address).map(Arc::clone);
        let parsed = ServerDescription::from_hello_after(
            address.clone(),
            reply,
            now,
            previous.as_deref(),
            Some(&mut state.replies),
        );
        let failure = match &parsed {
            Ok(sd) if sd.server_type == ServerType::Unknown => sd.error.as_deref().map(str::to_owned),
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(error) = failure {
            // A command error (ok: 0) or a malformed reply: the check failed.
            self.fail_check(request, &address, FailureKind::Network, error, false, now);
            return;
        }
        let Ok(mut sd) = parsed else { return };
        // RTT comes from the handshake and from polling checks, never from streamed replies.
        if handshake || !awaited {
            m.rtt.add_sample(round_trip_time);
        }
        sd.round_trip_time = m.rtt.average().or(Some(round_trip_time));
        sd.min_round_trip_time = Some(m.rtt.minimum());
        m.hello_ok = sd.hello_ok;
        m.topology_version = sd.topology_version;
        let supports_streaming = sd.topology_version.is_some();
        let duration = if awaited { now.saturating_duration_since(started) } else { round_trip_time };

        if more_to_come {
            // The next streamed reply is already on its way: wait for it.
            m.phase = Phase::Checking { request, started: now, awaited: true, handshake: false };
        } else if awaited {
            // A server that answers an awaitable hello without moreToCome does not really
            // stream: poll it instead, or it would be checked in a hot loop.
            m.streaming_allowed = false;
            let rtt_task = m.rtt_task.take();
            m.sleep(now, heartbeat);
            self.requests.remove(&request);
            if let Some(task) = rtt_task {
                if let Some(r) = task.request {
                    self.requests.remove(&r);
                }
                if let Some(connection) = task.connection {
                    self.command(Command::CloseConnection { connection });
                }
            }
        } else if m.streaming_allowed && supports_streaming {
            // "Heartbeat frequency": after an ok reply the streaming protocol checks again at once.
            m.check_now(now);
            if m.rtt_task.is_none() {
                m.rtt_task = Some(RttTask { connection: None, request: None, next_at: now + heartbeat });
            }
            self.requests.remove(&request);
        } else {
            m.sleep(now, heartbeat);
            self.requests.remove(&request);
        }
        self.emit(Event::ServerHeartbeatSucceeded {
            address: address.clone(),
            connection_id: connection,
            duration,
            reply: reply.to_owned(),
            awaited,
        });
        if more_to_come {
            self.emit(Event::ServerHeartbeatStarted {
                address: address.clone(),
                connection_id: connection,
                awaited: true,
            });
            let timeout = nonzero(self.config.connect_timeout).map(|t| t + heartbeat);
            self.command(Command::ReadReply { request, connection, timeout });
        }
        self.apply_server_description(sd, now);
    }

    pub(super) fn on_monitor_failed(
        &mut self,
        request: RequestId,
        kind: FailureKind,
        error: String,
        now: Instant,
    ) {
        let Some((address, purpose)) = self.requests.get(&request).cloned() else { return };
        if purpose == Purpose::Rtt {
            // RTT failures never touch the topology ("Why don't clients mark a server unknown
            // when an RTT command fails?"): close that connection and try again later.
            self.requests.remove(&request);
            let heartbeat = self.config.heartbeat_frequency;
            let mut close = None;
            if let Some(task) =
                monitor_mut(&mut self.servers, &mut self.touched, &address).and_then(|m| m.rtt_task.as_mut())
            {
                task.request = None;
                close = task.connection.take();
                task.next_at = now + heartbeat;
            }
            if let Some(connection) = close {
                self.command(Command::CloseConnection { connection });
            }
            return;
        }
        self.fail_check(request, &address, kind, error, true, now);
    }

    /// "Network or command error during server check".
    pub(super) fn fail_check(
        &mut self,
        request: RequestId,
        address: &ServerAddress,
        kind: FailureKind,
        error: String,
        network: bool,
        now: Instant,
    ) {
        self.requests.remove(&request);
        let heartbeat = self.config.heartbeat_frequency;
        let was_known =
            self.description.server(address).is_some_and(|sd| sd.server_type != ServerType::Unknown);
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        let Phase::Checking { started, awaited, .. } = m.phase else { return };
        // 1. Close the monitoring connection (the RTT one stays: it has its own schedule).
        let connection = m.connection.take();
        m.rtt.reset();
        m.topology_version = None;
        // 4./5. One immediate retry after a network error on a server that was known;
        // otherwise sleep a heartbeat.
        if network && was_known {
            m.check_now(now);
        } else {
            m.sleep(now, heartbeat);
        }
        let connection_id = connection.unwrap_or(ConnectionId::new(0));
        if let Some(c) = connection {
            self.command(Command::CloseConnection { connection: c });
        }
        self.emit(Event::ServerHeartbeatFailed {
            address: address.clone(),
            connection_id,
            duration: now.saturating_duration_since(started),
            failure: error.clone(),
            awaited,
        });
        // 2. Mark the server Unknown, 3. then clear its pool (interrupting in-use connections
        // after a timeout).
        let mut sd = ServerDescription::unknown_with_error(address.clone(), error);
        sd.last_update_time = Some(now);
        self.apply_server_description(sd, now);
        self.clear_pool(address, None, kind == FailureKind::Timeout);
    }

    pub(super) fn command(&mut self, command: Command) {
        self.outputs.push_back(Output::Command(command));
    }
}

/// The monitor of `address`, recorded as touched so its timer is brought up to date.
pub(super) fn monitor_mut<'s>(
    servers: &'s mut BTreeMap<ServerAddress, ServerState>,
    touched: &mut SmallVec<[ServerAddress; 4]>,
    address: &ServerAddress,
) -> Option<&'s mut Monitor> {
    let monitor = servers.get_mut(address)?.monitor.as_mut()?;
    touched.push(address.clone());
    Some(monitor)
}

/// A zero duration means "no limit" for connectTimeoutMS.
pub(super) fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}
