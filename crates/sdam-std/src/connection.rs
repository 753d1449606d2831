//! Monitoring and RTT connections: one thread each, carrying out the core's `SendHello` and
//! `ReadReply` commands with blocking sockets and the commands' timeouts.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bson::RawDocumentBuf;
use sdam::{ConnectionId, FailureKind, Input, RequestId, ServerAddress};

use crate::shared::Shared;
use crate::transport::{connect, Failure, SocketSlot, Wire};

pub(crate) use crate::transport::TlsContext;

/// What every connection of a client shares.
#[derive(Clone)]
pub(crate) struct Settings {
    /// TLS, when the client uses it.
    pub(crate) tls: TlsContext,
    /// The largest reply accepted on a monitoring connection.
    pub(crate) max_message_size: usize,
}

/// A command for a connection's thread.
enum Job {
    Hello {
        request: RequestId,
        open: Option<Duration>,
        command: RawDocumentBuf,
        exhaust_allowed: bool,
        timeout: Option<Duration>,
    },
    Read {
        request: RequestId,
        timeout: Option<Duration>,
    },
}

struct Worker {
    jobs: Sender<Job>,
    socket: Arc<SocketSlot>,
    thread: JoinHandle<()>,
}

/// The driver's table of connections.
pub(crate) struct Connections {
    shared: Arc<Shared>,
    settings: Arc<Settings>,
    live: HashMap<ConnectionId, Worker>,
    /// Threads of closed connections, joined at the end (or pruned once finished).
    closing: Vec<JoinHandle<()>>,
}

impl Connections {
    pub(crate) fn new(shared: Arc<Shared>, settings: Settings) -> Self {
        Self { shared, settings: Arc::new(settings), live: HashMap::new(), closing: Vec::new() }
    }

    /// `Command::SendHello`: opens the connection first when `open` carries a connect timeout.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_hello(
        &mut self,
        request: RequestId,
        connection: ConnectionId,
        address: ServerAddress,
        open: Option<Duration>,
        command: RawDocumentBuf,
        exhaust_allowed: bool,
        timeout: Option<Duration>,
    ) {
        if open.is_some() {
            self.close(connection);
            if let Err(e) = self.start(connection, address) {
                return self.fail(request, format!("cannot start a connection thread: {e}"));
            }
        }
        self.submit(connection, request, Job::Hello { request, open, command, exhaust_allowed, timeout });
    }

    /// `Command::ReadReply`: the next reply of a streaming exchange.
    pub(crate) fn read_reply(
        &mut self,
        request: RequestId,
        connection: ConnectionId,
        timeout: Option<Duration>,
    ) {
        self.submit(connection, request, Job::Read { request, timeout });
    }

    /// `Command::CloseConnection`: closes the socket at once (a blocked read returns) and lets
    /// the thread end.
    pub(crate) fn close(&mut self, connection: ConnectionId) {
        if let Some(worker) = self.live.remove(&connection) {
            worker.socket.close();
            drop(worker.jobs);
            self.closing.push(worker.thread);
        }
        self.closing.retain(|t| !t.is_finished());
    }

    /// Closes every connection and joins every connection thread.
    pub(crate) fn close_all(&mut self) {
        let ids: Vec<ConnectionId> = self.live.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
        for thread in self.closing.drain(..) {
            let _ = thread.join();
        }
    }

    fn start(&mut self, connection: ConnectionId, address: ServerAddress) -> std::io::Result<()> {
        let (jobs, rx) = mpsc::channel();
        let socket = Arc::new(SocketSlot::default());
        let (shared, slot, settings) =
            (Arc::clone(&self.shared), Arc::clone(&socket), Arc::clone(&self.settings));
        let name = format!("sdam-conn-{}-{address}", connection.0);
        let thread = self.shared.spawn(name, move || run(&shared, &address, &slot, &settings, &rx))?;
        self.live.insert(connection, Worker { jobs, socket, thread });
        Ok(())
    }

    fn submit(&mut self, connection: ConnectionId, request: RequestId, job: Job) {
        let sent = self.live.get(&connection).is_some_and(|w| w.jobs.send(job).is_ok());
        if !sent {
            self.fail(request, format!("monitoring connection {} is closed", connection.0));
        }
    }

    fn fail(&self, request: RequestId, error: String) {
        self.shared.handle(Input::MonitorFailed { request, kind: FailureKind::Network, error });
    }
}

/// A connection's thread: carries out jobs until the connection fails or is closed.
fn run(
    shared: &Shared,
    address: &ServerAddress,
    slot: &SocketSlot,
    settings: &Settings,
    jobs: &Receiver<Job>,
) {
    let mut wire: Option<Wire> = None;
    for job in jobs {
        let (request, outcome) = match job {
            Job::Hello { request, open, command, exhaust_allowed, timeout } => {
                if let Some(connect_timeout) = open {
                    match connect(address, connect_timeout, &settings.tls, slot, settings.max_message_size) {
                        Ok(w) => wire = Some(w),
                        Err(f) => {
                            report(shared, request, Err(f));
                            return;
                        }
                    }
                }
                let started = Instant::now();
                let outcome = match wire.as_mut() {
                    Some(w) => w.send(&command, exhaust_allowed).and_then(|()| w.read(timeout)),
                    None => Err(Failure::network(format!("no open connection to {address}"))),
                };
                (request, outcome.map(|(reply, more)| (reply, more, started.elapsed())))
            }
            Job::Read { request, timeout } => {
                let started = Instant::now();
                let outcome = match wire.as_mut() {
                    Some(w) => w.read(timeout),
                    None => Err(Failure::network(format!("no open connection to {address}"))),
                };
                (request, outcome.map(|(reply, more)| (reply, more, started.elapsed())))
            }
        };
        let failed = outcome.is_err();
        report(shared, request, outcome);
        if failed || slot.is_closed() {
            return; // the core closes this connection and opens a new one when it needs one
        }
    }
}

fn report(shared: &Shared, request: RequestId, outcome: Result<(RawDocumentBuf, bool, Duration), Failure>) {
    match outcome {
        Ok((reply, more_to_come, round_trip_time)) => {
            shared.handle(Input::MonitorReply { request, reply: &reply, round_trip_time, more_to_come });
        }
        Err(f) => shared.handle(Input::MonitorFailed { request, kind: f.kind, error: f.error }),
    }
}
