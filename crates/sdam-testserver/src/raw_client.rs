//! A tiny blocking client over raw TCP, built from `sdam-wire`: for testing the scripted
//! servers themselves and for tests that need to poke a server by hand.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bson::{RawDocument, RawDocumentBuf};
use sdam_wire::{frame, Framing, OpMsg, DEFAULT_MAX_MESSAGE_SIZE};

/// One reply read by a [`RawClient`].
#[derive(Debug, Clone, PartialEq)]
pub struct RawReply {
    /// The reply's `requestID`.
    pub request_id: i32,
    /// The reply's `responseTo`.
    pub response_to: i32,
    /// Whether `moreToCome` was set (another reply follows without a request).
    pub more_to_come: bool,
    /// The body document.
    pub body: RawDocumentBuf,
}

/// A blocking `OP_MSG` client on one TCP connection.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    next_request_id: i32,
}

impl RawClient {
    /// Connects to `address` (e.g. `"127.0.0.1:27017"`), with a 5-second read timeout.
    pub fn connect(address: impl ToSocketAddrs) -> io::Result<Self> {
        let stream = TcpStream::connect(address)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::new(), next_request_id: 1 })
    }

    /// Changes the read timeout (`None`: wait forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// Sends `body` as an `OP_MSG`; returns its `requestID`.
    pub fn send(&mut self, body: &RawDocument, exhaust_allowed: bool) -> io::Result<i32> {
        let id = self.next_request_id;
        self.next_request_id += 1;
        let mut msg = OpMsg::new(id, body);
        msg.flags.exhaust_allowed = exhaust_allowed;
        let bytes = msg.to_vec().map_err(invalid)?;
        self.stream.write_all(&bytes)?;
        Ok(id)
    }

    /// Reads the next reply. A malformed or oversized frame is an `InvalidData` error.
    pub fn read_reply(&mut self) -> io::Result<RawReply> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Framing::Complete(len) = frame(&self.buf, DEFAULT_MAX_MESSAGE_SIZE).map_err(invalid)? {
                let reply = {
                    let msg = OpMsg::parse(&self.buf[..len]).map_err(invalid)?;
                    RawReply {
                        request_id: msg.request_id,
                        response_to: msg.response_to,
                        more_to_come: msg.flags.more_to_come,
                        body: msg.body.to_owned(),
                    }
                };
                self.buf.drain(..len);
                return Ok(reply);
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends `body` and reads its one reply.
    pub fn command(&mut self, body: &RawDocument) -> io::Result<RawDocumentBuf> {
        self.send(body, false)?;
        Ok(self.read_reply()?.body)
    }

    /// Whether the server closed the connection: a read sees end-of-stream or an error
    /// (within the read timeout).
    pub fn is_closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut),
        }
    }
}

fn invalid(e: sdam_wire::WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}
