//! The driver thread: sleeps until the core's next deadline or new input, drains the core's
//! outputs, publishes events and hands commands to the I/O threads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sdam::{Command, Output};

use crate::connection::{Connections, TlsContext};
#[cfg(feature = "dns")]
use crate::dns::Dns;
use crate::shared::Shared;
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
        tls: TlsContext,
        #[cfg(feature = "dns")] dns_options: sdam_adapter::DnsOptions,
    ) -> Self {
        let connections = Connections::new(Arc::clone(&shared), tls);
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
            let (outputs, closed) = self.wait_for_work();
            for output in outputs {
                self.execute(output);
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
        self.shared.selection_wake.notify_all();
    }

    /// Waits for new input or the next deadline; returns the outputs drained and whether the
    /// topology is closed. Selections are woken here, under the lock, so none misses a change.
    fn wait_for_work(&mut self) -> (Vec<Output>, bool) {
        let mut core = self.shared.lock();
        loop {
            let now = Instant::now();
            let deadline = core.topology.poll_timeout();
            match deadline {
                Some(t) if t <= now && self.fired != Some(t) => {
                    self.fired = Some(t);
                    core.topology.handle_timeout(now);
                    core.dirty = true;
                }
                _ => {}
            }
            if core.dirty || core.topology.is_closed() {
                break;
            }
            let wait = match deadline {
                // A deadline already fired that the core still reports: look again shortly.
                Some(t) if t <= now => Some(Duration::from_millis(1)),
                Some(t) => Some(t - now),
                None => None,
            };
            core = match wait {
                Some(d) => {
                    self.shared.driver_wake.wait_timeout(core, d).map_or_else(|e| e.into_inner().0, |r| r.0)
                }
                None => self.shared.driver_wake.wait(core).unwrap_or_else(std::sync::PoisonError::into_inner),
            };
        }
        core.dirty = false;
        let mut outputs = Vec::new();
        let mut wake = false;
        while let Some(output) = core.topology.poll_output() {
            if matches!(output, Output::Command(Command::WakeSelections)) {
                wake = true;
            } else {
                outputs.push(output);
            }
        }
        if wake {
            core.wake_generation += 1;
            self.shared.selection_wake.notify_all();
        }
        let closed = core.topology.is_closed();
        (outputs, closed)
    }

    fn execute(&mut self, output: Output) {
        let command = match output {
            Output::Event(event) => return self.shared.subscribers.publish(ClientEvent::Sdam(event)),
            Output::Command(command) => command,
            _ => return,
        };
        match command {
            Command::SendHello { request, connection, address, open, command, exhaust_allowed, deadline } => {
                let timeout = time_left(deadline);
                // The connection code takes a zero connect timeout as "no limit".
                let open = open.then(|| timeout.unwrap_or(Duration::ZERO));
                self.connections.send_hello(
                    request,
                    connection,
                    address,
                    open,
                    command,
                    exhaust_allowed,
                    timeout,
                );
            }
            Command::ReadReply { request, connection, deadline } => {
                self.connections.read_reply(request, connection, time_left(deadline));
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
            // WakeSelections is handled under the lock.
            _ => {}
        }
    }

    #[cfg(feature = "dns")]
    fn dns(&mut self) -> &Dns {
        let (shared, options) = (&self.shared, &self.dns_options);
        self.dns.get_or_insert_with(|| Dns::start(Arc::clone(shared), options.clone()))
    }
}

/// The least time an exchange is given: a deadline already due still gets a (failing) attempt,
/// and `std::net` refuses a zero timeout; the core fails the exchange at its deadline anyway.
const MIN_TIME_LEFT: Duration = Duration::from_millis(1);

/// The time left until a command's deadline (`None`: no limit), at least [`MIN_TIME_LEFT`].
fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()).max(MIN_TIME_LEFT))
}
