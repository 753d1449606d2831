//! Monitoring: the monitor schedules turned into commands, and what every check result does
//! (server-monitoring.md).
//!
//! A check result reaches the rules below by one of two paths, and both end in the same
//! [`check_succeeded`](Topology::check_succeeded) / [`check_failed`](Topology::check_failed):
//!
//! - the core's own monitors ([`MonitorOwner::Core`]): the answer
//!   to a [`Command::SendHello`] or [`Command::ReadReply`], or the core's own timeout of one
//!   at its deadline;
//! - by address ([`Input::CheckStarted`](super::Input::CheckStarted),
//!   [`Input::HelloReply`](super::Input::HelloReply),
//!   [`Input::CheckFailed`](super::Input::CheckFailed)), what a driver that runs its own
//!   monitors ([`MonitorOwner::Driver`]) reports.
//!
//! # Bounds on a misbehaving server
//!
//! - A server that answers every awaitable hello at once, without moreToCome, is not checked
//!   more than once per [`MIN_HEARTBEAT_FREQUENCY`]: the next awaitable hello starts
//!   minHeartbeatFrequencyMS after the previous one started (at once when the server held it
//!   longer, as a streaming server does). It stays on the streaming protocol, so once it
//!   streams properly it is streamed again ("Streaming hello or legacy hello").
//! - A server that completes the handshake and then fails every awaitable hello (closes the
//!   connection, sends a bad frame) would loop: the one immediate retry after a network error
//!   on a known server and the immediate awaitable hello after a handshake feed each other. A
//!   new monitoring connection opens no sooner than [`MIN_HEARTBEAT_FREQUENCY`] after the
//!   previous one opened, so such a server gets at most one new connection (and one pool
//!   clear) per minHeartbeatFrequencyMS. A connection that lived longer than that is retried
//!   at once, as the spec says.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::raw::{RawDocument, RawDocumentBuf};
use smallvec::SmallVec;

use super::{Purpose, ServerState, Topology};
use crate::address::ServerAddress;
use crate::events::{Command, Event, Output};
use crate::handshake::{check_command, handshake_command};
use crate::monitor::{
    ConnectionId, FailureKind, Monitor, MonitorOwner, Phase, RequestId, RttTask, MIN_HEARTBEAT_FREQUENCY,
};
use crate::server_description::{ServerDescription, ServerType};

impl Topology {
    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn driver_owned(&self) -> bool {
        self.config.monitor_owner == MonitorOwner::Driver
    }

    /// Starts monitoring a server that entered the topology: its first check is due now.
    pub(super) fn start_monitor(&mut self, address: &ServerAddress, now: Instant) {
        if self.config.load_balanced {
            return; // load balancers are not monitored
        }
        let streaming = self.config.streaming_enabled();
        let driver = self.driver_owned();
        if let Some(state) = self.servers.get_mut(address) {
            // A driver that owns its monitors starts one on `ServerOpening` and stops it on
            // `ServerClosed`; the core keeps the server's check state and RTT statistics.
            let monitor = state.monitor.get_or_insert_with(|| {
                if driver {
                    Monitor::driver_owned(now)
                } else {
                    Monitor::new(now, streaming)
                }
            });
            touch(&mut self.touched, address, monitor);
        }
    }

    /// Stops the monitor of a server that left the topology (or of every server when the
    /// topology closes): the check in flight ends with a `ServerHeartbeatFailed` naming
    /// `reason` (heartbeat events are always paired), its connections close, and late replies
    /// are dropped.
    pub(super) fn stop_monitor(
        &mut self,
        address: &ServerAddress,
        monitor: Option<Monitor>,
        reason: &str,
        now: Instant,
    ) {
        let Some(m) = monitor else { return };
        if let Phase::Checking { request, started, awaited, connection, .. } = m.phase {
            self.requests.remove(&request);
            self.emit(Event::ServerHeartbeatFailed {
                address: address.clone(),
                connection_id: connection,
                duration: now.saturating_duration_since(started),
                failure: format!("check cancelled: {reason}"),
                awaited,
            });
            if m.driver_owned {
                self.command(Command::CancelCheck { address: address.clone() });
            }
        }
        if let Some(request) = m.rtt_task.and_then(|t| t.request) {
            self.requests.remove(&request);
        }
        if !m.driver_owned {
            let rtt_connection = m.rtt_task.and_then(|t| t.connection);
            for connection in [m.connection, rtt_connection].into_iter().flatten() {
                self.command(Command::CloseConnection { connection });
            }
        }
    }

    /// Asks the monitor of `address` for an immediate check ("Requesting an immediate check");
    /// a driver's monitor is asked with [`Command::RequestCheck`].
    pub(super) fn request_check(&mut self, address: &ServerAddress, now: Instant) {
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        if m.driver_owned {
            if matches!(m.phase, Phase::Idle { .. }) {
                self.command(Command::RequestCheck { address: address.clone(), immediate: false });
            }
        } else {
            m.request_check(now);
        }
    }

    /// "hello or legacy hello Cancellation": cancels the check in flight on `address` (its
    /// `ServerHeartbeatFailed` says why) and closes its monitoring connection; the monitor
    /// sleeps a heartbeat, or until a check is requested.
    pub(super) fn cancel_check(&mut self, address: &ServerAddress, reason: &str, now: Instant) {
        let heartbeat = self.config.heartbeat_frequency;
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        let cancelled = match m.phase {
            Phase::Checking { request, started, awaited, connection, .. } => {
                Some((request, started, awaited, connection))
            }
            Phase::Idle { .. } => None,
        };
        let driver = m.driver_owned;
        let connection = m.connection.take();
        if cancelled.is_some() {
            m.sleep(now, heartbeat);
            m.cancelled = driver;
        }
        m.rtt.reset();
        m.topology_version = None;
        if let Some((request, started, awaited, connection_id)) = cancelled {
            self.requests.remove(&request);
            self.emit(Event::ServerHeartbeatFailed {
                address: address.clone(),
                connection_id,
                duration: now.saturating_duration_since(started),
                failure: format!("check cancelled: {reason}"),
                awaited,
            });
            if driver {
                self.command(Command::CancelCheck { address: address.clone() });
            }
        }
        if let (false, Some(connection)) = (driver, connection) {
            self.command(Command::CloseConnection { connection });
        }
    }

    /// Fails the exchanges of every due server whose deadline passed, then starts every
    /// check and RTT measurement due at `now`.
    pub(super) fn run_timers(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        self.update_timers();
        let mut due: SmallVec<[ServerAddress; 4]> =
            self.timers.iter().take_while(|(t, _)| *t <= now).map(|(_, a)| a.clone()).collect();
        // In address order, as a scan of the servers would find them.
        due.sort_unstable();
        for address in due {
            self.expire_exchanges(&address, now);
            self.start_check_if_due(&address, now);
            self.start_rtt_if_due(&address, now);
        }
        self.run_srv_timers(now);
        self.update_timers();
    }

    /// Brings `timers` up to date with the monitors touched since the last call.
    pub(super) fn update_timers(&mut self) {
        if self.touched.is_empty() {
            return; // nothing touched (always so with the driver's monitors): nothing to move or drop
        }
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

    /// The core's own timeouts (events.rs, "Deadlines"): a check whose deadline passed fails
    /// as a timeout (server-monitoring.md, "Network or command error during server check"),
    /// an RTT exchange whose deadline passed fails as an RTT failure ("Measuring RTT").
    fn expire_exchanges(&mut self, address: &ServerAddress, now: Instant) {
        let Some(m) = self.servers.get(address).and_then(|s| s.monitor.as_ref()) else { return };
        if let Phase::Checking { request, started, deadline: Some(deadline), .. } = m.phase {
            if deadline <= now && self.requests.contains_key(&request) {
                let waited = deadline.saturating_duration_since(started);
                let error = format!("no reply from {address} within {} ms", waited.as_millis());
                self.check_failed(address, FailureKind::Timeout, error, true, now);
            }
        }
        let Some(m) = self.servers.get(address).and_then(|s| s.monitor.as_ref()) else { return };
        if let Some(RttTask { request: Some(request), deadline: Some(deadline), .. }) = m.rtt_task {
            if deadline <= now {
                self.rtt_failed(address, request, now);
            }
        }
    }

    pub(super) fn start_check_if_due(&mut self, address: &ServerAddress, now: Instant) {
        let id = self.next_id();
        let connection_id = self.next_id();
        let heartbeat = self.config.heartbeat_frequency;
        let deadline_plain = self.config.exchange_deadline(now, false);
        let deadline_awaited = self.config.exchange_deadline(now, true);
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        if m.driver_owned || !matches!(m.phase, Phase::Idle { next_check } if next_check <= now) {
            return;
        }
        if m.connection.is_none() {
            // At most one new monitoring connection per minHeartbeatFrequencyMS (the streaming
            // failure loop bound, see the module docs).
            let earliest = m.earliest_open(now);
            if earliest > now {
                m.phase = Phase::Idle { next_check: earliest };
                return;
            }
        }
        let request = RequestId::new(id);
        let (connection, open, command, awaited) = match m.connection {
            // A new connection: its handshake is the check ("Clients update the topology from
            // each handshake").
            None => {
                let c = ConnectionId::new(connection_id);
                m.connection = Some(c);
                m.last_open = Some(now);
                let cmd =
                    handshake_command(&self.metadata, &self.config.compressors, self.config.load_balanced);
                (c, true, cmd, false)
            }
            // Streaming: an awaitable hello from the last topologyVersion.
            Some(c) if m.streaming_allowed && m.topology_version.is_some() => {
                let tv = m.topology_version.map(|tv| (tv, heartbeat));
                (c, false, check_command(m.hello_ok, tv), true)
            }
            Some(c) => (c, false, check_command(m.hello_ok, None), false),
        };
        // "Socket timeout": connectTimeoutMS, plus heartbeatFrequencyMS for awaitable hellos.
        let deadline = if awaited { deadline_awaited } else { deadline_plain };
        m.phase = Phase::Checking { request, started: now, awaited, handshake: open, deadline, connection };
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
            deadline,
        });
    }

    pub(super) fn start_rtt_if_due(&mut self, address: &ServerAddress, now: Instant) {
        let id = self.next_id();
        let connection_id = self.next_id();
        let deadline = self.config.exchange_deadline(now, false);
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        let hello_ok = m.hello_ok;
        let Some(task) = m.rtt_task.as_mut().filter(|t| t.request.is_none() && t.next_at <= now) else {
            return;
        };
        let request = RequestId::new(id);
        task.request = Some(request);
        task.deadline = deadline;
        let (connection, open, command) = match task.connection {
            Some(c) => (c, false, check_command(hello_ok, None)),
            None => {
                let c = ConnectionId::new(connection_id);
                task.connection = Some(c);
                let cmd =
                    handshake_command(&self.metadata, &self.config.compressors, self.config.load_balanced);
                (c, true, cmd)
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
            deadline,
        });
    }

    /// [`Input::MonitorReply`](super::Input::MonitorReply).
    pub(super) fn on_monitor_reply(
        &mut self,
        request: RequestId,
        reply: RawDocumentBuf,
        round_trip_time: Duration,
        more_to_come: bool,
        now: Instant,
    ) {
        let Some((address, purpose)) = self.requests.get(&request).cloned() else { return };
        if purpose == Purpose::Rtt {
            self.requests.remove(&request);
            let heartbeat = self.config.heartbeat_frequency;
            if let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, &address) {
                // The reply's content is ignored; only its duration counts ("Measuring RTT").
                m.rtt.add_sample(round_trip_time);
                if let Some(task) = m.rtt_task.as_mut() {
                    task.request = None;
                    task.deadline = None;
                    task.next_at = now + heartbeat;
                }
            }
            return;
        }
        self.check_succeeded(&address, reply, round_trip_time, Via::Exchange { more_to_come }, now);
    }

    /// [`Input::MonitorFailed`](super::Input::MonitorFailed).
    pub(super) fn on_monitor_failed(
        &mut self,
        request: RequestId,
        kind: FailureKind,
        error: String,
        now: Instant,
    ) {
        let Some((address, purpose)) = self.requests.get(&request).cloned() else { return };
        if purpose == Purpose::Rtt {
            self.rtt_failed(&address, request, now);
            return;
        }
        self.check_failed(&address, kind, error, true, now);
    }

    /// RTT failures never touch the topology ("Why don't clients mark a server unknown when an
    /// RTT command fails?"): close that connection and try again a heartbeat later.
    fn rtt_failed(&mut self, address: &ServerAddress, request: RequestId, now: Instant) {
        self.requests.remove(&request);
        let heartbeat = self.config.heartbeat_frequency;
        let mut close = None;
        if let Some(task) =
            monitor_mut(&mut self.servers, &mut self.touched, address).and_then(|m| m.rtt_task.as_mut())
        {
            task.request = None;
            task.deadline = None;
            close = task.connection.take();
            task.next_at = now + heartbeat;
        }
        if let Some(connection) = close {
            self.command(Command::CloseConnection { connection });
        }
    }

    /// [`Input::CheckStarted`](super::Input::CheckStarted): a check by address starts. With the
    /// core's monitors, a core exchange in flight is abandoned (its connection closed, its
    /// late answer dropped); a check already started by address ends first as failed, so
    /// heartbeat events stay paired.
    pub(super) fn on_check_started(&mut self, address: &ServerAddress, awaited: bool, now: Instant) {
        let fresh = ConnectionId::new(self.next_id());
        let request = RequestId::new(self.next_id());
        let Some(m) = self.servers.get(address).and_then(|s| s.monitor.as_ref()) else { return };
        if let Phase::Checking { request: previous, started, awaited: was_awaited, connection, .. } = m.phase
        {
            let core_exchange = self.requests.remove(&previous).is_some();
            self.emit(Event::ServerHeartbeatFailed {
                address: address.clone(),
                connection_id: connection,
                duration: now.saturating_duration_since(started),
                failure: "check cancelled: superseded by a check reported by address".into(),
                awaited: was_awaited,
            });
            if core_exchange {
                if let Some(c) = monitor_mut(&mut self.servers, &mut self.touched, address)
                    .and_then(|m| m.connection.take())
                {
                    self.command(Command::CloseConnection { connection: c });
                }
            }
        }
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        let connection = m.begin_check_by_address(fresh, request, awaited, now);
        self.emit(Event::ServerHeartbeatStarted {
            address: address.clone(),
            connection_id: connection,
            awaited,
        });
    }

    /// Whether a failure reported by address should be applied (see [`accept`]).
    fn accept_by_address(&mut self, address: &ServerAddress, awaited: bool, now: Instant) -> bool {
        let Some(m) = self.servers.get_mut(address).and_then(|s| s.monitor.as_mut()) else { return false };
        let mut parts = Parts {
            requests: &mut self.requests,
            outputs: &mut self.outputs,
            next_id: &mut self.next_id,
            touched: &mut self.touched,
        };
        accept(m, &mut parts, address, awaited, now)
    }

    /// [`Input::HelloReply`](super::Input::HelloReply): a check by address succeeded.
    pub(super) fn on_hello_by_address(
        &mut self,
        address: &ServerAddress,
        reply: RawDocumentBuf,
        round_trip_time: Duration,
        awaited: bool,
        now: Instant,
    ) {
        if self.description.topology_type == crate::TopologyType::LoadBalanced {
            return; // load balancers are never monitored
        }
        self.check_succeeded(address, reply, round_trip_time, Via::Address { awaited }, now);
    }

    /// [`Input::CheckFailed`](super::Input::CheckFailed): a check by address failed.
    pub(super) fn on_check_failed_by_address(
        &mut self,
        address: &ServerAddress,
        kind: FailureKind,
        error: String,
        now: Instant,
    ) {
        if self.accept_by_address(address, false, now) {
            self.check_failed(address, kind, error, true, now);
        }
    }

    /// [`Input::RoundTripTime`](super::Input::RoundTripTime): a driver's RTT measurement.
    pub(super) fn on_rtt_sample(&mut self, address: &ServerAddress, round_trip_time: Duration) {
        if let Some(m) = self.servers.get_mut(address).and_then(|s| s.monitor.as_mut()) {
            m.rtt.add_sample(round_trip_time);
        }
    }

    /// [`Input::ApplicationHandshake`](super::Input::ApplicationHandshake): "Clients update
    /// the topology from each handshake" — the reply updates the description as a check's
    /// would (its round trip is an RTT sample), with no heartbeat events and no change to the
    /// monitor's schedule; a reply that fails (`ok: 0`, malformed) marks the server Unknown
    /// and clears its pool, as a failed check does.
    pub(super) fn on_application_handshake(
        &mut self,
        address: &ServerAddress,
        reply: &RawDocument,
        round_trip_time: Duration,
        now: Instant,
    ) {
        if self.description.topology_type == crate::TopologyType::LoadBalanced {
            return;
        }
        // One search of the description, for the previous description and for the update.
        let servers = &self.description.servers;
        let slot = servers.slot(address);
        let previous = slot.and_then(|s| servers.at(s)).map(Arc::clone);
        let Some(state) = self.servers.get_mut(address) else { return };
        let parsed = ServerDescription::from_hello_after(
            address.clone(),
            reply,
            now,
            previous.as_deref(),
            Some(&mut state.replies),
        );
        let sd = match parsed {
            Ok(mut sd) if sd.server_type != ServerType::Unknown => {
                if let Some(m) = state.monitor.as_mut() {
                    m.rtt.add_sample(round_trip_time);
                    sd.round_trip_time = m.rtt.average();
                    sd.min_round_trip_time = Some(m.rtt.minimum());
                } else {
                    sd.round_trip_time = Some(round_trip_time);
                }
                self.apply_checked(Arc::new(sd), slot, None, now);
                return;
            }
            Ok(sd) => sd,
            Err(e) => ServerDescription::unknown_with_error(address.clone(), e.to_string()),
        };
        let mut unknown = ServerDescription::unknown_with_error(
            address.clone(),
            sd.error.unwrap_or_else(|| "hello failed".into()),
        );
        unknown.last_update_time = Some(now);
        self.apply_server_description(unknown, now);
        self.clear_pool(address, None, false);
    }

    /// A check's successful reply, on either path: RTT, heartbeat events, the next check, the
    /// description. A result by address is first accepted ([`accept`]) on the same lookup.
    fn check_succeeded(
        &mut self,
        address: &ServerAddress,
        reply: RawDocumentBuf,
        round_trip_time: Duration,
        via: Via,
        now: Instant,
    ) {
        let Some(state) = self.servers.get_mut(address) else { return };
        let Some(m) = state.monitor.as_mut() else { return };
        if let Via::Address { awaited } = via {
            let mut parts = Parts {
                requests: &mut self.requests,
                outputs: &mut self.outputs,
                next_id: &mut self.next_id,
                touched: &mut self.touched,
            };
            if !accept(m, &mut parts, address, awaited, now) {
                return;
            }
        }
        let more_to_come = matches!(via, Via::Exchange { more_to_come: true });
        touch(&mut self.touched, address, m);
        let Phase::Checking { request, started, awaited, handshake, connection, .. } = m.phase else {
            return;
        };
        // One search of the description, for the previous description and for the update.
        let servers = &self.description.servers;
        let slot = servers.slot(address);
        let previous = slot.and_then(|s| servers.at(s)).map(Arc::clone);
        let parsed = ServerDescription::from_hello_after(
            address.clone(),
            &reply,
            now,
            previous.as_deref(),
            Some(&mut state.replies),
        );
        let mut sd = match parsed {
            Ok(sd) if sd.server_type != ServerType::Unknown => sd,
            // A command error (ok: 0) or a malformed reply: the check failed.
            Ok(sd) => return self.reply_failed(address, sd.error.as_deref().unwrap_or("hello failed"), now),
            Err(e) => return self.reply_failed(address, &e.to_string(), now),
        };
        // "Measuring RTT": from the handshake and from polling checks, never from streamed
        // replies; the description carries the moving average and the minimum.
        if handshake || !awaited {
            m.rtt.add_sample(round_trip_time);
        }
        sd.round_trip_time = m.rtt.average().or(Some(round_trip_time));
        sd.min_round_trip_time = Some(m.rtt.minimum());
        m.hello_ok = sd.hello_ok;
        m.topology_version = sd.topology_version;
        let supports_streaming = sd.topology_version.is_some();
        let duration = if awaited { now.saturating_duration_since(started) } else { round_trip_time };
        let mut read_deadline = None;

        if m.driver_owned {
            // The driver schedules its next check.
            m.last_check_end = Some(now);
            m.phase = Phase::Idle { next_check: now };
        } else if more_to_come {
            // The next streamed reply is already on its way: wait for it.
            read_deadline = self.config.exchange_deadline(now, true);
            m.phase = Phase::Checking {
                request,
                started: now,
                awaited: true,
                handshake: false,
                deadline: read_deadline,
                connection,
            };
        } else if m.streaming_allowed && supports_streaming {
            // "Streaming hello or legacy hello": a successful reply without moreToCome starts a
            // new awaitable hello with its topologyVersion at once ("Heartbeat frequency") —
            // but one answered at once waits out minHeartbeatFrequencyMS from the start of the
            // previous one, so a server that does not hold awaitable hellos is not hot-looped.
            let at = if awaited { started + MIN_HEARTBEAT_FREQUENCY } else { now };
            m.check_at(now, at);
            if m.rtt_task.is_none() {
                m.rtt_task = Some(RttTask {
                    connection: None,
                    request: None,
                    deadline: None,
                    next_at: now + self.config.heartbeat_frequency,
                });
            }
        } else {
            m.sleep(now, self.config.heartbeat_frequency);
        }
        // CMAP's "ready" state, read on this lookup for the update below.
        let pool_ready = state.pool_ready;
        if !more_to_come {
            self.requests.remove(&request);
        }
        self.emit(Event::ServerHeartbeatSucceeded {
            address: address.clone(),
            connection_id: connection,
            duration,
            reply,
            awaited,
        });
        if more_to_come {
            // "SDAM Monitoring": a started event before reading the next streamed reply.
            self.emit(Event::ServerHeartbeatStarted {
                address: address.clone(),
                connection_id: connection,
                awaited: true,
            });
            self.command(Command::ReadReply { request, connection, deadline: read_deadline });
        }
        self.apply_checked(Arc::new(sd), slot, Some(pool_ready), now);
    }

    /// A check's reply that is a command error (`ok: 0`) or malformed: the check failed
    /// (server-monitoring.md, "Network or command error during server check"). Out of line:
    /// the reply path of every healthy check stays short.
    #[cold]
    #[inline(never)]
    fn reply_failed(&mut self, address: &ServerAddress, error: &str, now: Instant) {
        self.check_failed(address, FailureKind::Network, error.to_owned(), false, now);
    }

    /// "Network or command error during server check", on either path.
    pub(super) fn check_failed(
        &mut self,
        address: &ServerAddress,
        kind: FailureKind,
        error: String,
        network: bool,
        now: Instant,
    ) {
        let heartbeat = self.config.heartbeat_frequency;
        let was_known =
            self.description.server(address).is_some_and(|sd| sd.server_type != ServerType::Unknown);
        let Some(m) = monitor_mut(&mut self.servers, &mut self.touched, address) else { return };
        let Phase::Checking { request, started, awaited, connection: connection_id, .. } = m.phase else {
            return;
        };
        // 1. Close the monitoring connection (the RTT one stays: it has its own schedule).
        let connection = m.connection.take();
        m.rtt.reset();
        m.topology_version = None;
        // 4./5. One immediate retry after a network error on a server that was known;
        // otherwise sleep a heartbeat.
        let retry = network && was_known;
        let driver = m.driver_owned;
        if driver {
            m.last_check_end = Some(now);
            m.phase = Phase::Idle { next_check: now };
        } else if retry {
            m.check_now(now);
        } else {
            m.sleep(now, heartbeat);
        }
        self.requests.remove(&request);
        if let (false, Some(c)) = (driver, connection) {
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
        if driver && retry {
            self.command(Command::RequestCheck { address: address.clone(), immediate: true });
        }
    }

    pub(super) fn command(&mut self, command: Command) {
        self.outputs.push_back(Output::Command(command));
    }
}

/// How a check result arrived.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// The answer to one of the core's exchanges (a `SendHello` or `ReadReply`).
    Exchange {
        /// The reply had moreToCome: the next streamed reply follows on the same exchange.
        more_to_come: bool,
    },
    /// Reported by address (`Input::HelloReply`), for a check that was (or now is) awaited or
    /// not.
    Address {
        /// Whether the check was an awaitable hello.
        awaited: bool,
    },
}

/// The parts of a [`Topology`] that [`accept`] changes, borrowed beside a server's monitor.
struct Parts<'t> {
    requests: &'t mut BTreeMap<RequestId, (ServerAddress, Purpose)>,
    outputs: &'t mut VecDeque<Output>,
    next_id: &'t mut u64,
    touched: &'t mut SmallVec<[ServerAddress; 4]>,
}

/// Whether a result reported by address for the server of monitor `m` should be applied: not
/// the late result of a check the core cancelled. It is the result of the check in flight: a
/// core exchange in flight is abandoned (its connection closed, its late answer dropped);
/// with no check in flight, one starts now, as `on_check_started` starts it from Idle
/// (ServerHeartbeatStarted first, so heartbeat events stay paired — "SDAM Monitoring").
fn accept(m: &mut Monitor, t: &mut Parts<'_>, address: &ServerAddress, awaited: bool, now: Instant) -> bool {
    if std::mem::take(&mut m.cancelled) {
        return false;
    }
    match m.phase {
        Phase::Checking { request, .. } => {
            if t.requests.remove(&request).is_some() {
                if let Some(connection) = m.connection.take() {
                    t.outputs.push_back(Output::Command(Command::CloseConnection { connection }));
                }
            }
        }
        Phase::Idle { .. } => {
            *t.next_id += 2;
            let (fresh, request) = (ConnectionId::new(*t.next_id - 1), RequestId::new(*t.next_id));
            let connection = m.begin_check_by_address(fresh, request, awaited, now);
            touch(t.touched, address, m);
            t.outputs.push_back(Output::Event(Event::ServerHeartbeatStarted {
                address: address.clone(),
                connection_id: connection,
                awaited,
            }));
        }
    }
    true
}

/// The monitor of `address`, recorded as touched so its timer is brought up to date.
pub(super) fn monitor_mut<'s>(
    servers: &'s mut BTreeMap<ServerAddress, ServerState>,
    touched: &mut SmallVec<[ServerAddress; 4]>,
    address: &ServerAddress,
) -> Option<&'s mut Monitor> {
    let monitor = servers.get_mut(address)?.monitor.as_mut()?;
    touch(touched, address, monitor);
    Some(monitor)
}

/// Records that the monitor of `address` changed, so `update_timers` brings its timer up to
/// date. A driver's monitor has no timer (`Monitor::next_deadline`): nothing to record. One
/// input usually touches the same monitor several times in a row, which is recorded once (a
/// repeat further back is harmless: `update_timers` finds the timer already up to date).
fn touch(touched: &mut SmallVec<[ServerAddress; 4]>, address: &ServerAddress, monitor: &Monitor) {
    if !monitor.driver_owned && touched.last() != Some(address) {
        touched.push(address.clone());
    }
}
