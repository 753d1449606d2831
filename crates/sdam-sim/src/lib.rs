//! # sdam-sim
//!
//! A deterministic cluster simulator for the `sdam` core: a scripted deployment
//! ([`Cluster`]) and a driver ([`Sim`]) that owns a [`Topology`], answers every command it
//! emits as the deployment would, and runs it through virtual time. No I/O, no clock, no
//! threads: the test passes the start [`Instant`] in, and every run is reproducible.
//!
//! Besides the deployment's side of monitoring, the simulator plays the application's:
//!
//! - **server selection**: [`Sim::start_selection`] / [`Sim::run_selection`] hand a
//!   selection to the topology ([`Topology::start_selection`]), which owns the waiting; the
//!   simulator maps its selection ids to records of the outcome and the log events, with the
//!   virtual time of each;
//! - **operations**: [`Sim::run_operation`] and [`Sim::start_operation`] send an operation to
//!   a member, which fails it as a real one would (network error when down, `NotWritablePrimary`
//!   for a write on a secondary); errors are reported to the topology as
//!   `Input::ApplicationError` and returned. [`Sim::finish_operation`] ends an operation the
//!   selection counted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use bson::RawDocumentBuf;
use sdam::{
    Command, ConnectionId, Event, FailureKind, Input, Output, RequestId, ServerAddress, ServerDescription,
    Topology, TopologyConfig, TopologyDescription,
};

mod cluster;
mod operation;
mod selection;

pub use cluster::{Cluster, DeploymentKind, Member, Role, EPOCH_MILLIS};
pub use operation::{
    OperationId, OperationKind, OperationOutcome, NOT_PRIMARY_OR_SECONDARY, NOT_WRITABLE_PRIMARY,
};
pub use selection::{Selected, SelectionId, SelectionOutcome, SimSelection};
mod dns;

pub use dns::{DnsHealth, DnsLookup, DnsQuery, DnsZone};

/// The most steps one `run_*` call may take: more means the core is in a hot loop.
pub const MAX_STEPS: usize = 100_000;

/// How long a failure on a crashed member's connection takes to show.
pub const FAILURE_DELAY: Duration = Duration::from_millis(1);

/// What is waiting to happen at some virtual time.
#[derive(Debug, Clone)]
enum Delivery {
    /// A reply reaches the client.
    Reply { request: RequestId, reply: RawDocumentBuf, sent_at: Instant, more_to_come: bool },
    /// An exchange fails.
    Failure { request: RequestId, kind: FailureKind, error: String },
    /// A streaming member's `maxAwaitTimeMS` runs out: it answers the waiting hello.
    AwaitExpired { epoch: u64 },
    /// A DNS answer reaches the client (queued under [`DNS_CONNECTION`]).
    Dns { request: RequestId, answer: dns::DnsAnswer },
}

/// The connection id DNS answers are queued under: the core never uses it for a connection.
const DNS_CONNECTION: Option<ConnectionId> = None;

/// An awaitable hello a streaming member holds until its state changes or time runs out.
#[derive(Debug, Clone)]
struct Waiter {
    request: RequestId,
    address: ServerAddress,
    /// The topologyVersion the client sent.
    version: (ObjectId, i64),
    max_await: Duration,
    /// When the client sent the command (for the measured round trip).
    sent_at: Instant,
    epoch: u64,
}

/// A streaming exchange between two replies: the member answers the next `ReadReply`.
#[derive(Debug, Clone)]
struct Stream {
    request: RequestId,
    version: (ObjectId, i64),
    max_await: Duration,
    /// When the member generated its last reply.
    generated_at: Instant,
}

/// A connection the core asked for.
#[derive(Debug, Clone)]
struct Connection {
    address: ServerAddress,
    /// Reset by a crash: every further exchange on it fails.
    dead: bool,
    waiter: Option<Waiter>,
    stream: Option<Stream>,
}

/// One hello the core asked for ([`Command::SendHello`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentHello {
    /// When (virtual time since the start).
    pub at: Duration,
    /// To what server.
    pub address: ServerAddress,
    /// On what connection.
    pub connection: ConnectionId,
    /// Whether it opened the connection (its handshake).
    pub opened: bool,
    /// Whether it was awaitable (exhaustAllowed).
    pub awaitable: bool,
}

/// The simulator: a [`Topology`] driven through virtual time against a [`Cluster`].
#[derive(Debug)]
pub struct Sim {
    topology: Topology,
    cluster: Cluster,
    start: Instant,
    now: Instant,
    queue: BTreeMap<(Instant, u64), (Option<ConnectionId>, Delivery)>,
    seq: u64,
    connections: BTreeMap<ConnectionId, Connection>,
    events: Vec<(Duration, Event)>,
    closed_connections: Vec<(Duration, ConnectionId, ServerAddress)>,
    pool_clears: Vec<(Duration, ServerAddress)>,
    pool_readies: Vec<(Duration, ServerAddress, u32)>,
    hellos: Vec<SentHello>,
    steps: usize,
    /// Every selection started, and where each of the topology's selection ids is.
    selections: Vec<SimSelection>,
    selection_index: BTreeMap<sdam::selection::SelectionId, usize>,
    /// Every operation started, and the indices of those in flight.
    operations: Vec<operation::OperationState>,
    in_flight: Vec<usize>,
    dns: DnsZone,
}

impl Sim {
    /// Creates the topology at `start` (virtual time zero) against `cluster`.
    ///
    /// # Panics
    /// If the configuration is invalid.
    pub fn new(cluster: Cluster, config: TopologyConfig, start: Instant) -> Self {
        Self::with_dns(cluster, DnsZone::new(), config, start)
    }

    /// Like [`Sim::new`], with `dns` answering the topology's SRV and TXT lookups (a
    /// `mongodb+srv` configuration sends its first ones from `Topology::new`). A
    /// configuration without `rng_seed` gets seed 0: runs are reproducible.
    ///
    /// # Panics
    /// If the configuration is invalid.
    pub fn with_dns(cluster: Cluster, dns: DnsZone, mut config: TopologyConfig, start: Instant) -> Self {
        // A simulation is reproducible: without a configured seed, the seed is 0.
        config.rng_seed.get_or_insert(0);
        let topology = Topology::new(config, start).unwrap_or_else(|e| panic!("invalid config: {e}"));
        let mut sim = Self {
            topology,
            cluster,
            start,
            now: start,
            queue: BTreeMap::new(),
            seq: 0,
            connections: BTreeMap::new(),
            events: Vec::new(),
            closed_connections: Vec::new(),
            pool_clears: Vec::new(),
            pool_readies: Vec::new(),
            hellos: Vec::new(),
            steps: 0,
            selections: Vec::new(),
            selection_index: BTreeMap::new(),
            operations: Vec::new(),
            in_flight: Vec::new(),
            dns,
        };
        sim.drain();
        sim
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The topology under test.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The current topology description.
    pub fn description(&self) -> Arc<TopologyDescription> {
        self.topology.description()
    }

    /// The current description of one server.
    pub fn server(&self, address: &ServerAddress) -> Option<Arc<ServerDescription>> {
        self.topology.description().servers.get(address).cloned()
    }

    /// The simulated deployment.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The simulated DNS zone (with the log of every lookup the core sent).
    pub fn dns(&self) -> &DnsZone {
        &self.dns
    }

    /// Changes the DNS zone: records, health and latency apply to lookups sent from now on.
    pub fn dns_mut(&mut self) -> &mut DnsZone {
        &mut self.dns
    }

    /// Every event the topology published, with the virtual time it was published at.
    pub fn events(&self) -> &[(Duration, Event)] {
        &self.events
    }

    /// Every connection the core closed: when, which, and to what server.
    pub fn closed_connections(&self) -> &[(Duration, ConnectionId, ServerAddress)] {
        &self.closed_connections
    }

    /// Every pool clear the core asked for: when and for what server.
    pub fn pool_clears(&self) -> &[(Duration, ServerAddress)] {
        &self.pool_clears
    }

    /// Every pool the core marked ready (`Command::MarkPoolReady`): when, for what server,
    /// and the pool generation.
    pub fn pool_readies(&self) -> &[(Duration, ServerAddress, u32)] {
        &self.pool_readies
    }

    /// Every hello the core asked for (`SendHello`: checks, handshakes and RTT measurements;
    /// `ReadReply` is no new hello).
    pub fn hellos(&self) -> &[SentHello] {
        &self.hellos
    }

    /// How many hellos were sent to `address`, and how many of them opened a new connection,
    /// in the virtual time window `[from, to)`.
    pub fn hello_counts(&self, address: &ServerAddress, from: Duration, to: Duration) -> (usize, usize) {
        let sent = self.hellos.iter().filter(|h| &h.address == address && h.at >= from && h.at < to);
        sent.fold((0, 0), |(n, opened), h| (n + 1, opened + usize::from(h.opened)))
    }

    /// The total number of steps taken so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The virtual times of the heartbeats started on `address` (`ServerHeartbeatStarted`).
    pub fn heartbeats_started(&self, address: &ServerAddress) -> Vec<Duration> {
        self.event_times(|e| matches!(e, Event::ServerHeartbeatStarted { address: a, .. } if a == address))
    }

    /// The virtual times of the heartbeats that failed on `address` (`ServerHeartbeatFailed`).
    pub fn heartbeats_failed(&self, address: &ServerAddress) -> Vec<Duration> {
        self.event_times(|e| matches!(e, Event::ServerHeartbeatFailed { address: a, .. } if a == address))
    }

    /// The virtual times of the events that `wanted` picks.
    fn event_times(&self, wanted: impl Fn(&Event) -> bool) -> Vec<Duration> {
        self.events.iter().filter(|(_, e)| wanted(e)).map(|(t, _)| *t).collect()
    }

    /// Feeds an input to the topology at the current virtual time and handles its outputs.
    pub fn handle(&mut self, input: Input<'_>) {
        self.topology.handle(input, self.now);
        self.drain();
    }

    /// Runs for `duration` of virtual time.
    ///
    /// # Panics
    /// If more than [`MAX_STEPS`] steps are needed (a hot loop).
    pub fn run_for(&mut self, duration: Duration) {
        let deadline = self.now + duration;
        let mut steps = 0;
        while self.step(deadline) {
            steps += 1;
            self.check_steps(steps, duration);
        }
    }

    /// Runs until `done` holds (checked before the first step and after each one) or
    /// `max_duration` has passed. Returns the elapsed virtual time (since the start) at which
    /// `done` first held, or `None` on time out (the clock then stands at the deadline).
    ///
    /// # Panics
    /// If more than [`MAX_STEPS`] steps are needed (a hot loop).
    pub fn run_until(
        &mut self,
        mut done: impl FnMut(&Self) -> bool,
        max_duration: Duration,
    ) -> Option<Duration> {
        let deadline = self.now + max_duration;
        let mut steps = 0;
        loop {
            if done(self) {
                return Some(self.elapsed());
            }
            if !self.step(deadline) {
                return None;
            }
            steps += 1;
            self.check_steps(steps, max_duration);
        }
    }

    fn check_steps(&self, steps: usize, duration: Duration) {
        assert!(
            steps <= MAX_STEPS,
            "hot loop: more than {MAX_STEPS} steps within {duration:?} of virtual time (now {:?})",
            self.elapsed()
        );
    }

    /// One step: advance to the next delivery, operation end or timer (the topology's, which
    /// includes the selections' deadlines), not past `deadline`, and process it, in that order
    /// of precedence at one instant.
    /// Returns `false` once the clock stands at `deadline` with nothing due.
    fn step(&mut self, deadline: Instant) -> bool {
        self.drain();
        let next_delivery = self.queue.keys().next().map(|&(t, _)| t);
        let next_operation = self.next_operation_end();
        let next_timer = self.topology.poll_timeout();
        let Some(next) = [next_delivery, next_operation, next_timer].into_iter().flatten().min() else {
            self.now = self.now.max(deadline);
            return false;
        };
        if next > deadline {
            self.now = self.now.max(deadline);
            return false;
        }
        self.now = self.now.max(next);
        self.steps += 1;
        if next_delivery == Some(next) {
            if let Some(((_, _), (connection, delivery))) = self.queue.pop_first() {
                self.deliver(connection, delivery);
            }
        } else if next_operation == Some(next) {
            self.end_due_operations();
        } else {
            self.topology.handle_timeout(self.now);
        }
        self.drain();
        true
    }

    /// Handles every output the topology has.
    fn drain(&mut self) {
        while let Some(output) = self.topology.poll_output() {
            match output {
                Output::Event(event) => self.events.push((self.elapsed(), event)),
                Output::Command(command) => self.command(command),
                Output::Selection { id, result } => self.selection_ended(id, result),
                Output::SelectionLog { id, event } => self.selection_logged(id, event),
            }
        }
    }

    fn schedule(&mut self, at: Instant, connection: impl Into<Option<ConnectionId>>, delivery: Delivery) {
        let connection = connection.into();
        self.seq += 1;
        self.queue.insert((at.max(self.now), self.seq), (connection, delivery));
    }

    fn fail(&mut self, connection: ConnectionId, request: RequestId, error: &str) {
        let delivery = Delivery::Failure { request, kind: FailureKind::Network, error: error.into() };
        self.schedule(self.now + FAILURE_DELAY, connection, delivery);
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::SendHello { request, connection, address, open, command, exhaust_allowed, deadline } => {
                self.hellos.push(SentHello {
                    at: self.elapsed(),
                    address: address.clone(),
                    connection,
                    opened: open,
                    awaitable: exhaust_allowed,
                });
                if open {
                    self.connections.insert(
                        connection,
                        Connection { address: address.clone(), dead: false, waiter: None, stream: None },
                    );
                }
                self.send_hello(request, connection, &address, &command, exhaust_allowed, deadline);
            }
            Command::ReadReply { request, connection, .. } => self.read_reply(request, connection),
            Command::CloseConnection { connection } => {
                self.queue.retain(|_, (c, _)| *c != Some(connection));
                if let Some(c) = self.connections.remove(&connection) {
                    self.closed_connections.push((self.elapsed(), connection, c.address));
                }
            }
            Command::ClearPool { address, .. } => self.pool_clears.push((self.elapsed(), address)),
            Command::MarkPoolReady { address, generation } => {
                self.pool_readies.push((self.elapsed(), address, generation));
            }
            Command::ResolveSrv { request, name, deadline } => {
                let timeout = deadline.saturating_duration_since(self.now);
                self.resolve(request, DnsQuery::Srv, name, timeout);
            }
            Command::ResolveTxt { request, name, deadline } => {
                let timeout = deadline.saturating_duration_since(self.now);
                self.resolve(request, DnsQuery::Txt, name, timeout);
            }
            // The simulator runs the core's monitors (MonitorOwner::Core).
            Command::RequestCheck { .. } | Command::CancelCheck { .. } => {}
        }
    }

    /// Whether `connection` can carry an exchange: it exists, is not reset, and its member is up.
    fn usable(&self, connection: ConnectionId) -> Option<ServerAddress> {
        let c = self.connections.get(&connection)?;
        let up = self.cluster.member(&c.address).is_some_and(|m| m.up);
        (up && !c.dead).then(|| c.address.clone())
    }

    fn send_hello(
        &mut self,
        request: RequestId,
        connection: ConnectionId,
        address: &ServerAddress,
        command: &RawDocumentBuf,
        exhaust_allowed: bool,
        deadline: Option<Instant>,
    ) {
        if self.usable(connection).is_none() {
            self.fail(connection, request, &format!("connection to {address} refused or reset"));
            return;
        }
        let Some(member) = self.cluster.member(address) else { return };
        let awaitable = parse_awaitable(command);
        match awaitable {
            Some(_) if member.closes_awaitable => {
                // The member completed the handshake but closes every awaitable hello.
                let error = format!("connection to {address} closed by the server");
                self.fail(connection, request, &error);
            }
            Some((version, max_await)) if exhaust_allowed && member.streaming => {
                self.seq += 1;
                let waiter = Waiter {
                    request,
                    address: address.clone(),
                    version,
                    max_await,
                    sent_at: self.now,
                    epoch: self.seq,
                };
                self.start_waiting(connection, waiter, self.now);
            }
            _ => {
                let latency = member.latency;
                if deadline.is_some_and(|d| self.now + latency > d) {
                    // The reply would come after the command's deadline: the core fails the
                    // exchange itself then (and closes the connection, dropping the reply).
                    return;
                }
                let failing = &mut self.cluster.member_mut(address).failing_hellos;
                let reply = if *failing > 0 {
                    *failing -= 1;
                    let error = bson::doc! {"ok": 0, "errmsg": "failCommand", "code": 1234};
                    RawDocumentBuf::try_from(&error).ok()
                } else {
                    self.cluster.hello_reply(address, self.elapsed())
                };
                let Some(reply) = reply else { return };
                let delivery = Delivery::Reply { request, reply, sent_at: self.now, more_to_come: false };
                self.schedule(self.now + latency, connection, delivery);
            }
        }
    }

    /// Parks `waiter` on `connection`: answered at once if the member's topologyVersion
    /// differs from the one sent (as of `since`), else when it changes or at `since + maxAwait`.
    fn start_waiting(&mut self, connection: ConnectionId, waiter: Waiter, since: Instant) {
        let Some(member) = self.cluster.member(&waiter.address) else { return };
        if member.topology_version() != waiter.version {
            let generated = member.changed_at.map_or(since, |c| c.max(since));
            self.answer_waiter(connection, waiter, generated);
            return;
        }
        let expires = since + waiter.max_await;
        let epoch = waiter.epoch;
        if let Some(c) = self.connections.get_mut(&connection) {
            c.waiter = Some(waiter);
        }
        self.schedule(expires, connection, Delivery::AwaitExpired { epoch });
    }

    /// The member answers a waiting awaitable hello, generating the reply at `generated`.
    fn answer_waiter(&mut self, connection: ConnectionId, waiter: Waiter, generated: Instant) {
        let Some(member) = self.cluster.member(&waiter.address) else { return };
        let latency = member.latency;
        let version = member.topology_version();
        let elapsed = generated.saturating_duration_since(self.start);
        let Some(reply) = self.cluster.hello_reply(&waiter.address, elapsed) else { return };
        if let Some(c) = self.connections.get_mut(&connection) {
            c.waiter = None;
            c.stream = Some(Stream {
                request: waiter.request,
                version,
                max_await: waiter.max_await,
                generated_at: generated,
            });
        }
        let delivery =
            Delivery::Reply { request: waiter.request, reply, sent_at: waiter.sent_at, more_to_come: true };
        self.schedule(generated + latency, connection, delivery);
    }

    fn read_reply(&mut self, request: RequestId, connection: ConnectionId) {
        let Some(address) = self.usable(connection) else {
            self.fail(connection, request, "connection reset");
            return;
        };
        let stream = self.connections.get_mut(&connection).and_then(|c| c.stream.take());
        let Some(stream) = stream.filter(|s| s.request == request) else {
            self.fail(connection, request, "ReadReply without a streaming exchange");
            return;
        };
        self.seq += 1;
        let waiter = Waiter {
            request,
            address,
            version: stream.version,
            max_await: stream.max_await,
            sent_at: self.now,
            epoch: self.seq,
        };
        self.start_waiting(connection, waiter, stream.generated_at);
    }

    fn deliver(&mut self, connection: Option<ConnectionId>, delivery: Delivery) {
        match delivery {
            Delivery::Reply { request, reply, sent_at, more_to_come } => {
                let round_trip_time = self.now.saturating_duration_since(sent_at);
                self.topology
                    .handle(Input::MonitorReply { request, reply, round_trip_time, more_to_come }, self.now);
            }
            Delivery::Failure { request, kind, error } => {
                self.topology.handle(Input::MonitorFailed { request, kind, error }, self.now);
            }
            Delivery::Dns { request, answer } => self.deliver_dns(request, answer),
            Delivery::AwaitExpired { epoch } => {
                let Some(connection) = connection else { return };
                let waiter = self
                    .connections
                    .get_mut(&connection)
                    .and_then(|c| c.waiter.take_if(|w| w.epoch == epoch));
                if let Some(waiter) = waiter {
                    self.answer_waiter(connection, waiter, self.now);
                }
            }
        }
    }

    /// Applies a change to the deployment at the current virtual time: every member whose
    /// hello reply changed gets its topologyVersion counter bumped, and streaming members
    /// answer their waiting hellos.
    fn change(&mut self, f: impl FnOnce(&mut Cluster)) {
        let addresses: Vec<ServerAddress> = self.cluster.members().map(|(a, _)| a.clone()).collect();
        let before: Vec<_> = addresses.iter().map(|a| self.cluster.hello_fields(a)).collect();
        f(&mut self.cluster);
        let now = self.now;
        for (address, before) in addresses.iter().zip(before) {
            if self.cluster.hello_fields(address) != before {
                let m = self.cluster.member_mut(address);
                m.counter += 1;
                m.changed_at = Some(now);
            }
        }
        self.wake_waiters();
    }

    /// Answers every waiting hello whose member's topologyVersion moved on.
    fn wake_waiters(&mut self) {
        let woken: Vec<(ConnectionId, Waiter)> = self
            .connections
            .iter_mut()
            .filter_map(|(id, c)| {
                let member = self.cluster.member(&c.address)?;
                let changed = c.waiter.as_ref().is_some_and(|w| w.version != member.topology_version());
                (changed && member.up).then(|| c.waiter.take().map(|w| (*id, w)))?
            })
            .collect();
        for (connection, waiter) in woken {
            self.answer_waiter(connection, waiter, self.now);
        }
    }

    /// Elects `address` primary: the previous primary becomes a secondary, electionId + 1.
    ///
    /// # Panics
    /// If `address` is not an up member.
    pub fn elect(&mut self, address: &ServerAddress) {
        assert!(self.cluster.member(address).is_some_and(|m| m.up), "cannot elect {address}: not up");
        let address = address.clone();
        self.change(|c| {
            let old: Vec<ServerAddress> =
                c.members().filter(|(_, m)| m.role == Role::Primary).map(|(a, _)| a.clone()).collect();
            for a in old {
                c.member_mut(&a).role = Role::Secondary;
            }
            c.member_mut(&address).role = Role::Primary;
            c.bump_election();
        });
    }

    /// The primary `address` steps down to secondary; the set has no primary until `elect`.
    pub fn step_down(&mut self, address: &ServerAddress) {
        let address = address.clone();
        self.change(|c| {
            let m = c.member_mut(&address);
            if m.role == Role::Primary {
                m.role = Role::Secondary;
            }
        });
    }

    /// Crashes `address`: its exchanges in flight (monitoring and operations) and every later
    /// one fail with a network error after [`FAILURE_DELAY`]. A crashed primary leaves the
    /// set without a primary.
    pub fn crash(&mut self, address: &ServerAddress) {
        let address = address.clone();
        self.reset_operations(&address);
        self.change(|c| {
            let m = c.member_mut(&address);
            m.up = false;
            if m.role == Role::Primary {
                m.role = Role::Secondary;
            }
        });
        // Every exchange in flight on its connections fails.
        let mut failed: Vec<(ConnectionId, RequestId)> = Vec::new();
        for (id, c) in self.connections.iter_mut().filter(|(_, c)| c.address == address) {
            c.dead = true;
            if let Some(w) = c.waiter.take() {
                failed.push((*id, w.request));
            }
        }
        let queued: Vec<(Instant, u64)> = self
            .queue
            .iter()
            .filter(|(_, (c, _))| {
                c.and_then(|c| self.connections.get(&c)).is_some_and(|c| c.address == address)
            })
            .map(|(k, _)| *k)
            .collect();
        for key in queued {
            if let Some((c, d)) = self.queue.remove(&key) {
                match d {
                    Delivery::Reply { request, .. } | Delivery::Failure { request, .. } => {
                        if let Some(c) = c {
                            failed.push((c, request));
                        }
                    }
                    Delivery::AwaitExpired { .. } | Delivery::Dns { .. } => {}
                }
            }
        }
        for (connection, request) in failed {
            self.fail(connection, request, &format!("connection to {address} reset"));
        }
    }

    /// Restarts the crashed `address` as a secondary with a new processId.
    pub fn restart(&mut self, address: &ServerAddress) {
        let address = address.clone();
        let now = self.now;
        self.change(|c| {
            let process_id = c.new_process_id();
            let m = c.member_mut(&address);
            m.up = true;
            if m.role == Role::Primary {
                m.role = Role::Secondary;
            }
            m.process_id = process_id;
            m.counter = 0;
            m.changed_at = Some(now);
        });
    }

    /// Reconfig: adds `member` at `address` (setVersion + 1).
    pub fn add_member(&mut self, address: &ServerAddress, member: Member) {
        let address = address.clone();
        self.change(|c| {
            c.insert(&address, member);
            c.bump_set_version();
        });
    }

    /// Reconfig: removes `address` from the set (setVersion + 1); it keeps running as a ghost.
    pub fn remove_member(&mut self, address: &ServerAddress) {
        let address = address.clone();
        self.change(|c| {
            c.member_mut(&address).role = Role::Removed;
            c.bump_set_version();
        });
    }

    /// Reconfig: replaces the tags of `address` (setVersion + 1 in a replica set).
    pub fn set_tags(&mut self, address: &ServerAddress, tags: &[(&str, &str)]) {
        let address = address.clone();
        self.change(|c| {
            c.member_mut(&address).tags = tags.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            if matches!(c.kind(), DeploymentKind::ReplicaSet(_)) {
                c.bump_set_version();
            }
        });
    }

    /// Makes `address` answer its next `n` hellos with a command error (a `failCommand` fail
    /// point on hello with `times: n`).
    pub fn fail_hellos(&mut self, address: &ServerAddress, n: u32) {
        self.cluster.member_mut(address).failing_hellos = n;
    }

    /// Changes the latency of `address` (exchanges sent from now on).
    pub fn set_latency(&mut self, address: &ServerAddress, latency: Duration) {
        self.cluster.member_mut(address).latency = latency;
    }
}

/// The `(topologyVersion, maxAwaitTimeMS)` of an awaitable hello command.
fn parse_awaitable(command: &RawDocumentBuf) -> Option<((ObjectId, i64), Duration)> {
    let tv = command.get_document("topologyVersion").ok()?;
    let process_id = tv.get_object_id("processId").ok()?;
    let counter = tv.get_i64("counter").ok()?;
    let max_await = command.get_i64("maxAwaitTimeMS").ok()?;
    Some(((process_id, counter), Duration::from_millis(u64::try_from(max_await).unwrap_or(0))))
}
