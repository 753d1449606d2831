//! One accepted connection: read `OP_MSG` requests with `sdam-wire` framing, answer them from
//! the deployment's state, and stream awaitable `hello` replies.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use bson::{Document, RawDocument};
use sdam_wire::{frame, Framing, OpMsg, DEFAULT_MAX_MESSAGE_SIZE, OP_MSG};

use crate::cluster::Inner;
use crate::member::{to_raw, Fault, State};

/// How often a waiting stream checks whether the client went away.
const PEER_CHECK: Duration = Duration::from_millis(25);

/// A byte stream the server answers on: plain TCP or TLS over TCP.
pub(crate) trait Transport: Read + Write + Send {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream;
}

impl Transport for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

#[cfg(feature = "tls")]
impl Transport for rustls::StreamOwned<rustls::ServerConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// Why a connection ends.
struct Closed;

/// How a wait for a topology change ended.
#[derive(Debug, PartialEq, Eq)]
enum Waited {
    /// The topology changed or the wait timed out: reply.
    Done,
    /// A fail point for this command was set meanwhile: check it before replying.
    FailPoint,
}

/// One connection of member `index`, started in incarnation `incarnation`.
pub(crate) struct Connection<T> {
    inner: Arc<Inner>,
    index: usize,
    incarnation: u64,
    id: u64,
    transport: T,
    next_request_id: i32,
    /// The `client.application.name` of the connection's handshake (fail points filter on it).
    app_name: Option<String>,
}

impl<T: Transport> Connection<T> {
    pub(crate) fn new(inner: Arc<Inner>, index: usize, incarnation: u64, id: u64, transport: T) -> Self {
        Self { inner, index, incarnation, id, transport, next_request_id: 1, app_name: None }
    }

    /// Serves requests until the client leaves, the member crashes or the cluster shuts down,
    /// then deregisters the connection.
    pub(crate) fn run(mut self) {
        let mut buf = Vec::new();
        while let Ok(len) = self.read_frame(&mut buf) {
            let Ok(request) = OpMsg::parse(&buf[..len]) else { break };
            if self.respond(&request).is_err() {
                break;
            }
            buf.drain(..len);
        }
        let _ = self.transport.tcp().shutdown(std::net::Shutdown::Both);
        crate::cluster::forget_connection(&self.inner, self.index, self.id);
    }

    /// Reads until `buf` starts with a whole message; returns its length.
    fn read_frame(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match frame(buf, DEFAULT_MAX_MESSAGE_SIZE) {
                Ok(Framing::Complete(len)) => return Ok(len),
                Ok(Framing::Partial { .. }) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            let n = self.transport.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The state, if this connection's member still runs in its incarnation.
    fn alive(&self) -> Result<MutexGuard<'_, State>, Closed> {
        let state = self.inner.lock();
        let m = state.members.get(self.index).ok_or(Closed)?;
        if state.shutdown || !m.up || m.incarnation != self.incarnation {
            return Err(Closed);
        }
        Ok(state)
    }

    fn respond(&mut self, request: &OpMsg<'_>) -> Result<(), Closed> {
        let body = request.body;
        let name =
            body.iter().next().and_then(Result::ok).map(|(k, _)| k.as_str().to_owned()).unwrap_or_default();
        if let Some(app) = crate::fail_point::handshake_app_name(body) {
            self.app_name = Some(app);
        }
        if !matches!(name.as_str(), "hello" | "isMaster" | "ismaster") {
            let (reply, latency, fault) = {
                let mut state = self.alive()?;
                state.members[self.index].command_count += 1;
                let fired = crate::fail_point::check(
                    &mut state.members[self.index].fail_point,
                    &name,
                    self.app_name.as_deref(),
                );
                let fired = match fired {
                    Some(action) => {
                        drop(state);
                        let error = self.fail(action)?;
                        state = self.alive()?;
                        error
                    }
                    None => None,
                };
                let reply = match fired {
                    Some(error) => error,
                    None if name == "configureFailPoint" => {
                        let reply =
                            crate::fail_point::configure(&mut state.members[self.index].fail_point, body);
                        // Streaming hellos re-check the fail point at once.
                        self.inner.changed.notify_all();
                        reply
                    }
                    None if matches!(name.as_str(), "replSetStepDown" | "replSetFreeze") => {
                        let reply = crate::repl_commands::apply(&mut state, self.index, &name, body)
                            .unwrap_or_default();
                        self.inner.changed.notify_all();
                        reply
                    }
                    None => {
                        let reply = state.command_reply(self.index, &name, body);
                        let ok = reply.get_f64("ok").ok() == Some(1.0);
                        match state.data.apply(&name, body) {
                            // The store reads documents from the command body; a driver that
                            // sends them as an OP_MSG document sequence gets the plain reply.
                            Some(data_reply) if ok && data_reply.get_f64("ok").ok() == Some(1.0) => {
                                data_reply
                            }
                            _ => reply,
                        }
                    }
                };
                let m = &state.members[self.index];
                (reply, m.command_latency(), m.fault)
            };
            if request.flags.more_to_come {
                return Ok(()); // the client wants no reply
            }
            return self.send(request.request_id, &reply, false, latency, fault).map(drop);
        }
        let legacy = name != "hello";
        let hello_ok = body.get_bool("helloOk").unwrap_or(false);
        let awaitable = awaitable(body);
        {
            let mut state = self.alive()?;
            let m = &mut state.members[self.index];
            m.hello_count += 1;
            m.note_handshake(body);
        }
        let mut known = awaitable.map(|(tv, _)| tv);
        let mut response_to = request.request_id;
        loop {
            // The fail point, before each reply of a streaming hello too (a server re-runs the
            // command for every streamed reply): it blocks before the wait for a change.
            let fired = {
                let mut state = self.alive()?;
                crate::fail_point::check(
                    &mut state.members[self.index].fail_point,
                    &name,
                    self.app_name.as_deref(),
                )
            };
            if let Some(action) = fired {
                if let Some(error) = self.fail(action)? {
                    let (latency, fault) = {
                        let state = self.alive()?;
                        let m = &state.members[self.index];
                        (m.latency, m.fault)
                    };
                    return self.send(response_to, &error, false, latency, fault).map(drop);
                }
            }
            if let Some((tv, max_await)) = known.zip(awaitable.map(|a| a.1)) {
                if self.wait_for_change(tv, max_await, &name)? == Waited::FailPoint {
                    continue; // a fail point set meanwhile acts before this reply
                }
            }
            let (reply, latency, fault, more, tv) = {
                let state = self.alive()?;
                let m = &state.members[self.index];
                let reply = state.hello_reply(self.index, legacy, hello_ok, self.id);
                // Exhaust streaming only from a member that streams, for an awaitable hello.
                let more = request.flags.exhaust_allowed && awaitable.is_some() && m.streaming;
                (reply, m.latency, m.fault, more, (m.process_id, m.counter))
            };
            let id = self.send(response_to, &reply, more, latency, fault)?;
            if !more {
                return Ok(());
            }
            response_to = id;
            known = Some(tv);
        }
    }

    /// Waits until the member's topologyVersion differs from `tv` or `max_await` passed; at
    /// once if the member does not stream, or if a fail point for `name` is set. Fails if the member crashes, the cluster shuts
    /// down, or the client closes the connection.
    fn wait_for_change(
        &mut self,
        tv: (ObjectId, i64),
        max_await: Duration,
        name: &str,
    ) -> Result<Waited, Closed> {
        let deadline = Instant::now() + max_await;
        loop {
            {
                let state = self.alive()?;
                let m = &state.members[self.index];
                let fail_point =
                    crate::fail_point::pending(m.fail_point.as_ref(), name, self.app_name.as_deref());
                if fail_point {
                    return Ok(Waited::FailPoint);
                }
                if !m.streaming || (m.process_id, m.counter) != tv {
                    return Ok(Waited::Done);
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Waited::Done);
                }
                let (state, _) =
                    self.inner.changed.wait_timeout(state, left.min(PEER_CHECK)).map_err(|_| Closed)?;
                drop(state);
            }
            if !peer_quiet(self.transport.tcp()) {
                return Err(Closed);
            }
        }
    }

    /// Carries out a fail point's action: blocks, then closes the connection (`Err`) or
    /// returns the error reply to send instead of running the command (`None`: run it).
    fn fail(&mut self, action: crate::fail_point::Action) -> Result<Option<Document>, Closed> {
        if let Some(block) = action.block {
            thread::sleep(block);
        }
        if action.close_connection {
            return Err(Closed);
        }
        Ok(action.error)
    }

    /// Sends one reply after the member's latency; returns its requestID.
    fn send(
        &mut self,
        response_to: i32,
        reply: &Document,
        more_to_come: bool,
        latency: Duration,
        fault: Fault,
    ) -> Result<i32, Closed> {
        if !latency.is_zero() {
            thread::sleep(latency);
        }
        let request_id = self.next_request_id;
        self.next_request_id = self.next_request_id.wrapping_add(1);
        let bytes = match fault {
            Fault::None => {
                let raw = to_raw(reply);
                let mut msg = OpMsg::new(request_id, &raw);
                msg.response_to = response_to;
                msg.flags.more_to_come = more_to_come;
                msg.to_vec().map_err(|_| Closed)?
            }
            Fault::GarbageReply => garbage(request_id, response_to),
            Fault::OversizedReply => oversized(request_id, response_to),
        };
        self.transport.write_all(&bytes).map_err(|_| Closed)?;
        self.transport.flush().map_err(|_| Closed)?;
        Ok(request_id)
    }
}

/// The `(processId, counter)` and `maxAwaitTimeMS` of an awaitable hello.
fn awaitable(body: &RawDocument) -> Option<((ObjectId, i64), Duration)> {
    let tv = body.get_document("topologyVersion").ok()?;
    let process_id = tv.get_object_id("processId").ok()?;
    let counter = tv.get_i64("counter").ok().or_else(|| tv.get_i32("counter").ok().map(i64::from))?;
    let max_await =
        body.get_i64("maxAwaitTimeMS").ok().or_else(|| body.get_i32("maxAwaitTimeMS").ok().map(i64::from))?;
    let max_await = Duration::from_millis(u64::try_from(max_await).ok()?);
    Some(((process_id, counter), max_await))
}

/// Whether the client has neither closed the connection nor sent anything (it must not,
/// while a streamed reply is outstanding).
fn peer_quiet(tcp: &TcpStream) -> bool {
    if tcp.set_nonblocking(true).is_err() {
        return false;
    }
    let quiet = matches!(tcp.peek(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    tcp.set_nonblocking(false).is_ok() && quiet
}

/// An `OP_MSG` header and flags followed by a body that is not BSON (its length is -1).
fn garbage(request_id: i32, response_to: i32) -> Vec<u8> {
    let mut out = header(29, request_id, response_to);
    out.extend_from_slice(&0u32.to_le_bytes()); // flagBits
    out.push(0); // section kind 0: body
    out.extend_from_slice(&[0xff; 8]);
    out
}

/// A header declaring a 64 MiB message, and a few bytes of it.
fn oversized(request_id: i32, response_to: i32) -> Vec<u8> {
    let mut out = header(64 * 1024 * 1024, request_id, response_to);
    out.extend_from_slice(&[0u8; 16]);
    out
}

fn header(length: i32, request_id: i32, response_to: i32) -> Vec<u8> {
    sdam_wire::MessageHeader { message_length: length, request_id, response_to, op_code: OP_MSG }
        .to_bytes()
        .to_vec()
}
