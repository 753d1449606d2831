//! Monitoring and RTT connections: one thread each, carrying out the core's `SendHello` and
//! `ReadReply` commands with blocking sockets and the commands' timeouts.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bson::RawDocumentBuf;
use sdam::{ConnectionId, FailureKind, Input, RequestId, ServerAddress};

use crate::shared::{OwnRead, Shared};
use crate::transport::{connect, Deadline, Failure, SocketSlot, Wire};
use sdam_wire::Reply;

pub(crate) use crate::transport::TlsContext;

/// What every connection of a client shares.
#[derive(Clone)]
pub(crate) struct Settings {
    /// TLS, when the client uses it.
    pub(crate) tls: TlsContext,
    /// The largest reply accepted on a monitoring connection.
    pub(crate) max_message_size: usize,
    /// The SOCKS5 proxy every connection goes through, if any.
    pub(crate) proxy: Option<sdam_adapter::ProxyOptions>,
}

/// A command for a connection's thread.
enum Job {
    /// Send a hello (after opening the connection when `open`) and read its first reply, all
    /// by one deadline.
    Hello {
        request: RequestId,
        open: bool,
        command: RawDocumentBuf,
        exhaust_allowed: bool,
        deadline: Deadline,
    },
    /// Read the next reply of a streaming exchange by the deadline.
    Read { request: RequestId, deadline: Deadline },
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

    /// `Command::SendHello`: opens the connection first when `open` (connect, TLS handshake
    /// and the hello's reply all by `deadline`; `None`: no limit).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn send_hello(
        &mut self,
        request: RequestId,
        connection: ConnectionId,
        address: ServerAddress,
        open: bool,
        command: RawDocumentBuf,
        exhaust_allowed: bool,
        deadline: Option<Instant>,
    ) {
        let deadline = Deadline::new(deadline, Instant::now());
        if open {
            self.close(connection);
            if let Err(e) = self.start(connection, address) {
                return self.fail(request, format!("cannot start a connection thread: {e}"));
            }
        }
        self.submit(connection, request, Job::Hello { request, open, command, exhaust_allowed, deadline });
    }

    /// `Command::ReadReply`: the next reply of a streaming exchange, by `deadline`.
    pub(crate) fn read_reply(
        &mut self,
        request: RequestId,
        connection: ConnectionId,
        deadline: Option<Instant>,
    ) {
        let deadline = Deadline::new(deadline, Instant::now());
        self.submit(connection, request, Job::Read { request, deadline });
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
        let name = format!("sdam-conn-{connection}-{address}");
        let thread =
            self.shared.spawn(name, move || run(&shared, connection, &address, &slot, &settings, &rx))?;
        self.live.insert(connection, Worker { jobs, socket, thread });
        Ok(())
    }

    fn submit(&mut self, connection: ConnectionId, request: RequestId, job: Job) {
        let sent = self.live.get(&connection).is_some_and(|w| w.jobs.send(job).is_ok());
        if !sent {
            self.fail(request, format!("monitoring connection {connection} is closed"));
        }
    }

    fn fail(&self, request: RequestId, error: String) {
        self.shared.handle(Input::MonitorFailed { request, kind: FailureKind::Network, error });
    }
}

/// A connection's thread: carries out jobs until the connection fails or is closed. The next
/// read of a streaming exchange comes back from the core as this thread reports a reply
/// ([`Shared::handle_on`]) and is started at once, not handed back through the driver.
fn run(
    shared: &Shared,
    connection: ConnectionId,
    address: &ServerAddress,
    slot: &SocketSlot,
    settings: &Settings,
    jobs: &Receiver<Job>,
) {
    let mut wire: Option<Wire> = None;
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return, // closed by the driver
            },
        };
        let (request, outcome) = match job {
            Job::Hello { request, open, command, exhaust_allowed, deadline } => {
                if open {
                    match connect(address, deadline, settings, slot) {
                        Ok(w) => wire = Some(w),
                        Err(f) => {
                            report(shared, connection, request, Err(f));
                            return;
                        }
                    }
                }
                let started = Instant::now();
                let outcome = match wire.as_mut() {
                    Some(w) => w.send(&command, exhaust_allowed, deadline).and_then(|()| w.read(deadline)),
                    None => Err(Failure::network(format!("no open connection to {address}"))),
                };
                (request, outcome.map(|reply| (reply, started.elapsed())))
            }
            Job::Read { request, deadline } => {
                let started = Instant::now();
                let outcome = match wire.as_mut() {
                    Some(w) => w.read(deadline),
                    None => Err(Failure::network(format!("no open connection to {address}"))),
                };
                (request, outcome.map(|reply| (reply, started.elapsed())))
            }
        };
        let failed = outcome.is_err();
        let read = report(shared, connection, request, outcome);
        // A next read on a socket closed meanwhile fails at once and is reported.
        if failed || (slot.is_closed() && read.is_none()) {
            return; // the core closes this connection and opens a new one when it needs one
        }
        next = read.map(|(request, deadline)| Job::Read {
            request,
            deadline: Deadline::new(deadline, Instant::now()),
        });
    }
}

/// Feeds the outcome to the core; returns this connection's next streaming read, if the core
/// asked for one.
fn report(
    shared: &Shared,
    connection: ConnectionId,
    request: RequestId,
    outcome: Result<(Reply, Duration), Failure>,
) -> Option<OwnRead> {
    match outcome {
        Ok((reply, round_trip_time)) => shared.handle_on(
            Input::MonitorReply {
                request,
                more_to_come: reply.more_to_come,
                reply: reply.body,
                round_trip_time,
            },
            Some(connection),
        ),
        Err(f) => {
            shared.handle_on(Input::MonitorFailed { request, kind: f.kind, error: f.error }, Some(connection))
        }
    }
}
