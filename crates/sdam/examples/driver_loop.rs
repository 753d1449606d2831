//! The shortest honest integration: a blocking driver loop over `std::net`, no adapter crate.
//! Discovery from one seed, a read with secondaryPreferred, writes that go on through a primary
//! kill to the new primary, waiting selections, close.
//! Usage: `cargo run -p sdam --example driver_loop -- 'mongodb://host:27017/?replicaSet=rs0'`
#![allow(clippy::disallowed_methods)] // the I/O layer reads the clock and spawns; the core never
use bson::{rawdoc, RawDocumentBuf};
use sdam::selection::{SelectedServer, SelectionCriteria, SelectionError, SelectionId, SelectionOptions};
use sdam::{ApplicationError, ApplicationErrorKind as Kind, Command, ConnectionId, FailureKind};
use sdam::{Input, Output, ReadPreference, ReadPreferenceMode, RequestId, ServerAddress, Topology};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

// A command + exhaustAllowed or a reply + moreToCome; a connection thread's answer (reply, round
// trip, moreToCome); its job (send this hello or read the next reply, by the deadline).
type Msg = (RawDocumentBuf, bool);
type Report = (RequestId, Result<(RawDocumentBuf, Duration, bool), (FailureKind, String)>);
type Job = (RequestId, Option<Msg>, Option<Instant>);
type Outcome = Result<SelectedServer, Box<SelectionError>>;

/// The time left until `deadline` (`None`: no limit), never zero (std refuses a zero timeout).
fn left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)))
}

fn connect(address: &ServerAddress, limit: Option<Duration>) -> io::Result<TcpStream> {
    let mut targets = (address.host(), address.port().unwrap_or(27017)).to_socket_addrs()?;
    let target = targets.next().ok_or_else(|| io::Error::other("no address"))?;
    limit.map_or_else(|| TcpStream::connect(target), |limit| TcpStream::connect_timeout(&target, limit))
}

/// One OP_MSG round on `stream` (sdam-wire frames it): send `command` if given, read one reply.
fn exchange(stream: &mut TcpStream, command: Option<&Msg>) -> io::Result<Msg> {
    if let Some((command, exhaust)) = command {
        let mut msg = sdam_wire::OpMsg::new(1, command);
        msg.flags.exhaust_allowed = *exhaust;
        stream.write_all(&msg.to_vec().map_err(io::Error::other)?)?;
    }
    let mut buf = vec![0u8; 4];
    stream.read_exact(&mut buf)?;
    let len = usize::try_from(i32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]])).unwrap_or(0);
    buf.resize(Some(len).filter(|n| (16..=48 << 20).contains(n)).ok_or(io::Error::other("bad length"))?, 0);
    stream.read_exact(&mut buf[4..])?;
    let reply = sdam_wire::OpMsg::parse(&buf).map_err(io::Error::other)?;
    Ok((reply.body.to_owned(), reply.flags.more_to_come))
}

/// A monitoring connection's thread: runs the loop's jobs until the loop closes it.
fn serve(mut s: TcpStream, jobs: Receiver<Job>, reports: Sender<Report>) {
    for (request, command, deadline) in jobs {
        let started = Instant::now();
        let result = s.set_read_timeout(left(deadline)).and_then(|()| exchange(&mut s, command.as_ref()));
        let result = result.map(|(reply, more)| (reply, started.elapsed(), more)).map_err(|e| {
            let timeout = matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut);
            (if timeout { FailureKind::Timeout } else { FailureKind::Network }, e.to_string())
        });
        let Ok(()) = reports.send((request, result)) else { return }; // the loop is gone
    }
}

/// The I/O layer: the topology, its connections, and the outcomes of selections.
struct Driver {
    topology: Topology,
    connections: HashMap<ConnectionId, (Sender<Job>, TcpStream)>,
    reports: (Sender<Report>, Receiver<Report>),
    outcomes: HashMap<SelectionId, Outcome>,
    out: Box<dyn Write + Send>,
}

impl Driver {
    /// Drains every output: after every call into the topology.
    fn drain(&mut self) {
        while let Some(output) = self.topology.poll_output() {
            match output {
                Output::Event(_) | Output::SelectionLog { .. } => {} // publish them, log them
                Output::Selection { id, result } => drop(self.outcomes.insert(id, result)),
                Output::Command(command) => self.command(command),
            }
        }
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::SendHello { request, connection, address, open, command, exhaust_allowed, deadline } => {
                if open {
                    let stream = connect(&address, left(deadline)); // one deadline: connect and reply
                    match stream.and_then(|s| Ok((s.try_clone()?, s))) {
                        Ok((own, stream)) => {
                            let (jobs, rx) = channel();
                            let reports = self.reports.0.clone();
                            std::thread::spawn(move || serve(own, rx, reports));
                            self.connections.insert(connection, (jobs, stream));
                        }
                        Err(e) => return self.failed(request, FailureKind::Network, e.to_string()),
                    }
                }
                self.job(connection, (request, Some((command, exhaust_allowed)), deadline));
            }
            Command::ReadReply { request, connection, deadline } => {
                self.job(connection, (request, None, deadline));
            }
            Command::CloseConnection { connection } => {
                if let Some((_, stream)) = self.connections.remove(&connection) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            Command::ClearPool { address, .. } => drop(writeln!(self.out, "pool of {address} cleared")),
            Command::MarkPoolReady { address, .. } => drop(writeln!(self.out, "pool of {address} ready")),
            Command::ResolveSrv { .. } | Command::ResolveTxt { .. } => unreachable!("no mongodb+srv"),
            Command::RequestCheck { .. } | Command::CancelCheck { .. } => unreachable!("the core monitors"),
        }
    }

    fn job(&mut self, connection: ConnectionId, job: Job) {
        let request = job.0;
        if self.connections.get(&connection).is_none_or(|(jobs, _)| jobs.send(job).is_err()) {
            self.failed(request, FailureKind::Network, format!("connection {connection} is closed"));
        }
    }

    fn failed(&mut self, request: RequestId, kind: FailureKind, error: String) {
        self.topology.handle(Input::MonitorFailed { request, kind, error }, Instant::now());
    }

    /// Waits once for I/O or the topology's next deadline, never past `until`.
    fn step(&mut self, until: Instant) {
        self.drain();
        let deadline = self.topology.poll_timeout().map_or(until, |t| t.min(until));
        match self.reports.1.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((request, Ok((reply, round_trip_time, more_to_come)))) => {
                let input = Input::MonitorReply { request, reply, round_trip_time, more_to_come };
                self.topology.handle(input, Instant::now());
            }
            Ok((request, Err((kind, error)))) => self.failed(request, kind, error),
            Err(_) => self.topology.handle_timeout(Instant::now()),
        }
        self.drain();
    }

    /// A selection: the core waits for a suitable server (up to serverSelectionTimeoutMS).
    fn select(&mut self, criteria: SelectionCriteria, operation: &str) -> Outcome {
        let id = self.topology.start_selection(criteria, SelectionOptions::new(operation), Instant::now());
        loop {
            self.drain();
            if let Some(outcome) = self.outcomes.remove(&id) {
                return outcome;
            }
            self.step(Instant::now() + Duration::from_secs(1));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::args().nth(1).ok_or("usage: driver_loop MONGODB_URI")?;
    run(&uri, Box::new(io::stdout()))
}

/// The whole story against `uri`, told on `out`.
pub fn run(uri: &str, out: Box<dyn Write + Send>) -> Result<(), Box<dyn std::error::Error>> {
    let cs = sdam::ConnectionString::parse(uri)?;
    (!cs.is_srv()).then_some(()).ok_or("this example speaks mongodb:// only (no DNS lookups)")?;
    let topology = Topology::new(sdam::TopologyConfig::from_connection_string(&cs), Instant::now())?;
    let (connections, outcomes) = (HashMap::new(), HashMap::new());
    let mut d = Driver { topology, connections, reports: channel(), outcomes, out };
    let read = SelectionCriteria::read(ReadPreference::new(ReadPreferenceMode::SecondaryPreferred));
    let mut server = d.select(read, "find")?;
    writeln!(d.out, "read (secondaryPreferred) -> {}", server.address())?;
    server.finish_operation(); // the operation is over: the in-window choice counts it no more
    let (mut first, started) = (None, Instant::now());
    while started.elapsed() < Duration::from_secs(30) {
        let mut primary = d.select(SelectionCriteria::write(), "insert")?;
        let address = primary.address().clone();
        let generation = d.topology.pool_generation(&address).unwrap_or(0); // a pool records it per connection
        let insert = (rawdoc! { "insert": "orders", "documents": [{ "n": 1 }], "$db": "shop" }, false);
        let result = connect(&address, Some(Duration::from_secs(1))).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(1)))?;
            exchange(&mut stream, Some(&insert))
        });
        primary.finish_operation();
        match result {
            Ok(_) if first.as_ref().is_some_and(|f| *f != address) => {
                writeln!(d.out, "new primary: {address}")?;
                d.topology.handle(Input::Close, Instant::now());
                d.drain();
                writeln!(d.out, "closed")?;
                return Ok(());
            }
            Ok(_) => writeln!(d.out, "write -> {}", first.get_or_insert(address))?,
            Err(e) => {
                writeln!(d.out, "write to {address} failed: {e}")?;
                let error = ApplicationError::new(address, generation, Kind::Network);
                d.topology.handle(Input::ApplicationError(error), Instant::now());
            }
        }
        d.step(Instant::now() + Duration::from_millis(50));
    }
    Err("no new primary within 30 s".into())
}
