//! The driver thread: sleeps until the core's next deadline or new input, drains the core's
//! outputs, publishes events and hands commands to the I/O threads.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sdam::{Command, Output};

use crate::connection::{Connections, Settings};
#[cfg(feature = "dns")]
use crate::dns::Dns;
use crate::shared::{Outcome, Shared, Work};
use crate::ClientEvent;

/// The driver's state: the connections it runs and the DNS thread, once started.
pub(crate) struct Driver {
    shared: Arc<Shared>,
    connections: Connections,
    #[cfg(feature = "dns")]
    dns: Option<Dns>,
    #[cfg(feature = "dns")]
    dns_options: sdam_adapter::DnsOptions,
    /// The last deadline `handle_timeout` ran for (a deadline is fired once).
    fired: Option<Instant>,
}

impl Driver {
    pub(crate) fn new(
        shared: Arc<Shared>,
        settings: Settings,
        #[cfg(feature = "dns")] dns_options: sdam_adapter::DnsOptions,
    ) -> Self {
        let connections = Connections::new(Arc::clone(&shared), settings);
        Self {
            shared,
            connections,
            #[cfg(feature = "dns")]
            dns: None,
            #[cfg(feature = "dns")]
            dns_options,
            fired: None,
        }
    }

    /// Runs until the topology is closed, then closes every connection, joins every thread
    /// it started and ends the subscriptions.
    pub(crate) fn run(mut self) {
        loop {
            let (work, closed) = self.wait_for_work();
            for work in work {
                match work {
                    Work::Output(output) => self.execute(output),
                    Work::Deliver(waiter, outcome) => deliver(waiter, outcome),
                }
            }
            if closed {
                break;
            }
        }
        self.connections.close_all();
        #[cfg(feature = "dns")]
        if let Some(dns) = self.dns.take() {
            dns.stop();
        }
        self.shared.subscribers.close();
    }

    /// Waits for new input or the next deadline; returns the outputs drained (with each
    /// waiting selection's waiter taken under the lock) and whether the topology is closed.
    fn wait_for_work(&mut self) -> (Vec<Work>, bool) {
        let mut core = self.shared.lock();
        loop {
            // Outputs of inputs fed under this lock by the driver itself (or at creation).
            let _ = core.take_outputs(None, self.shared.unheard());
            let now = Instant::now();
            let deadline = core.topology.poll_timeout();
            if let Some(t) = deadline.filter(|t| *t <= now && self.fired != Some(*t)) {
                self.fired = Some(t);
                core.topology.handle_timeout(now);
                let _ = core.take_outputs(None, self.shared.unheard());
                self.shared.snapshot.refresh(&core.topology);
                // What fired may have set an earlier deadline than the next one below.
                continue;
            }
            if !core.pending.is_empty() || core.topology.is_closed() {
                break;
            }
            let wait = match deadline {
                // A deadline already fired that the core still reports: look again shortly.
                Some(t) if t <= now => Some(Duration::from_millis(1)),
                Some(t) => Some(t - now),
                None => None,
            };
            // Inputs wake the driver only for work or a deadline earlier than this one
            // (`Shared::settle`).
            core.driver_sleep = Some(wait.map(|d| now + d));
            core = match wait {
                Some(d) => {
                    self.shared.driver_wake.wait_timeout(core, d).map_or_else(|e| e.into_inner().0, |r| r.0)
                }
                None => self.shared.driver_wake.wait(core).unwrap_or_else(std::sync::PoisonError::into_inner),
            };
            core.driver_sleep = None;
        }
        let outputs = std::mem::take(&mut core.pending);
        // A new description: publish it for the selecting threads.
        self.shared.snapshot.refresh(&core.topology);
        let closed = core.topology.is_closed();
        (outputs, closed)
    }

    fn execute(&mut self, output: Output) {
        let command = match output {
            Output::Event(event) => return self.shared.publish_event(event),
            Output::SelectionLog { event, .. } => return self.shared.publish_selection(event),
            // Turned into `Work::Deliver` in `wait_for_work`.
            Output::Selection { .. } => return,
            Output::Command(command) => command,
        };
        match command {
            Command::SendHello { request, connection, address, open, command, exhaust_allowed, deadline } => {
                // One deadline for connect + TLS + hello when opening, else for the reply.
                self.connections.send_hello(
                    request,
                    connection,
                    address,
                    open,
                    command,
                    exhaust_allowed,
                    deadline,
                );
            }
            Command::ReadReply { request, connection, deadline } => {
                self.connections.read_reply(request, connection, deadline);
            }
            Command::CloseConnection { connection } => self.connections.close(connection),
            Command::ClearPool { address, service_id, generation, interrupt_in_use_connections } => {
                self.shared.subscribers.publish(ClientEvent::PoolCleared {
                    address,
                    service_id,
                    generation,
                    interrupt_in_use_connections,
                });
            }
            Command::MarkPoolReady { address, generation } => {
                self.shared.subscribers.publish(ClientEvent::PoolReady { address, generation });
            }
            #[cfg(feature = "dns")]
            Command::ResolveSrv { request, name, deadline } => {
                self.dns().resolve_srv(request, name, time_left(Some(deadline)).unwrap_or(MIN_TIME_LEFT));
            }
            #[cfg(feature = "dns")]
            Command::ResolveTxt { request, name, deadline } => {
                self.dns().resolve_txt(request, name, time_left(Some(deadline)).unwrap_or(MIN_TIME_LEFT));
            }
            #[cfg(not(feature = "dns"))]
            Command::ResolveSrv { request, .. } => {
                let error = sdam_adapter::no_dns("sdam-std");
                self.shared.handle(sdam::Input::SrvResolved { request, result: Err(error) });
            }
            #[cfg(not(feature = "dns"))]
            Command::ResolveTxt { request, .. } => {
                let error = sdam_adapter::no_dns("sdam-std");
                self.shared.handle(sdam::Input::TxtResolved { request, result: Err(error) });
            }
            // The adapter runs the core's monitors (MonitorOwner::Core): these are only sent
            // to a driver that owns its monitors.
            Command::RequestCheck { .. } | Command::CancelCheck { .. } => {}
        }
    }

    #[cfg(feature = "dns")]
    fn dns(&mut self) -> &Dns {
        let (shared, options) = (&self.shared, &self.dns_options);
        self.dns.get_or_insert_with(|| Dns::start(Arc::clone(shared), options.clone()))
    }
}

/// The least time a DNS lookup is given: a deadline already due still gets a (failing) attempt,
/// and `std::net` refuses a zero timeout; the core fails the exchange at its deadline anyway.
#[cfg(feature = "dns")]
const MIN_TIME_LEFT: Duration = Duration::from_millis(1);

/// The time left until a command's deadline (`None`: no limit), at least [`MIN_TIME_LEFT`].
#[cfg(feature = "dns")]
fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()).max(MIN_TIME_LEFT))
}

/// Hands a waiting selection's outcome to its waiter; an operation nobody waits for any more
/// ends at once.
fn deliver(waiter: Option<SyncSender<Outcome>>, outcome: Outcome) {
    let unsent = match waiter {
        Some(waiter) => waiter.try_send(outcome).err().map(|e| match e {
            TrySendError::Full(r) | TrySendError::Disconnected(r) => r,
        }),
        None => Some(outcome),
    };
    if let Some(Ok(mut selected)) = unsent {
        selected.finish_operation();
    }
}
