//! A sans-IO monitoring connection: commands in, bytes to write out; bytes read in, owned
//! replies out.
//!
//! [`MonitorConnection`] owns everything about a monitoring (or RTT) connection that is not
//! I/O: the `OP_MSG` request ids, the reply matcher (`responseTo`, exhaust streams with
//! `moreToCome`), the receive buffer and the message size limit. An I/O layer only connects,
//! writes the bytes [`send`](MonitorConnection::send) returns, hands whatever it reads to
//! [`feed`](MonitorConnection::feed) and keeps its deadlines.

use std::fmt;

use bson::{RawDocument, RawDocumentBuf};

use crate::{frame, Framing, OpMsg, ReplyMatcher, ReplyProgress, WireError, DEFAULT_MAX_MESSAGE_SIZE};

/// One reply read from a monitoring connection, owned (it no longer borrows the buffer).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The reply document (the body section).
    pub body: RawDocumentBuf,
    /// The reply had `moreToCome` set: another reply to the same request follows (a
    /// streaming `hello`), and nothing may be sent before it arrives.
    pub more_to_come: bool,
    /// The reply's own `requestID` (chosen by the server).
    pub request_id: i32,
    /// The reply's `responseTo`.
    pub response_to: i32,
}

/// Why a [`MonitorConnection`] refused a call or the bytes it was fed.
///
/// [`Malformed`](Self::Malformed) and [`Unsolicited`](Self::Unsolicited) are about the
/// server's bytes: the stream is out of sync, the connection must be closed, and every later
/// call returns the same error. [`ReplyOutstanding`](Self::ReplyOutstanding) and
/// [`Encode`](Self::Encode) are the caller's mistakes and change nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The bytes received are not a valid reply to the request in flight: bad framing (a
    /// length beyond the size limit, a legacy opcode, ...), a message that does not parse, a
    /// wrong `responseTo`, or `moreToCome` on a request that did not allow exhaust.
    Malformed(WireError),
    /// Bytes arrived while no reply was expected (before any request, or after the final
    /// reply of the last one).
    Unsolicited {
        /// How many unexpected bytes there are.
        bytes: usize,
    },
    /// [`send`](MonitorConnection::send) was called while a reply (or the next reply of a
    /// stream) is still expected: the connection carries one exchange at a time.
    ReplyOutstanding {
        /// The `responseTo` the expected reply will carry.
        expected_response_to: i32,
    },
    /// The command cannot be sent: it would exceed the message size limit, or it cannot be
    /// encoded.
    Encode(WireError),
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "malformed reply: {e}"),
            Self::Unsolicited { bytes } => {
                write!(f, "the server sent {bytes} bytes while no reply was expected")
            }
            Self::ReplyOutstanding { expected_response_to } => write!(
                f,
                "a command was to be sent while the reply to request {expected_response_to} is still expected"
            ),
            Self::Encode(e) => write!(f, "the command cannot be sent: {e}"),
        }
    }
}

impl std::error::Error for ConnectionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed(e) | Self::Encode(e) => Some(e),
            Self::Unsolicited { .. } | Self::ReplyOutstanding { .. } => None,
        }
    }
}

/// The protocol state of one monitoring connection, without the socket.
///
/// Request ids are per connection: 1, 2, 3, ... up to `i32::MAX`, then 1 again (never zero
/// or negative). The `responseTo` of a reply is matched on the connection it arrives on, so
/// uniqueness among the requests of one connection is what the wire protocol needs; a
/// connection carries one exchange at a time, so an id is never in use twice.
///
/// The receive buffer holds at most one message beyond the bytes of the last
/// [`feed`](Self::feed): a header declaring more than the size limit is refused as soon as its
/// four length bytes arrive.
///
/// ```
/// use sdam_wire::{MonitorConnection, OpMsg};
///
/// let mut connection = MonitorConnection::new();
/// let hello = bson::rawdoc! { "hello": 1, "$db": "admin" };
/// let bytes = connection.send(&hello, false)?;          // write these to the socket
/// assert_eq!(OpMsg::parse(&bytes)?.request_id, 1);
///
/// // The server's answer, arriving in two reads.
/// let body = bson::rawdoc! { "isWritablePrimary": true, "ok": 1.0 };
/// let mut answer = OpMsg::new(900, &body);
/// answer.response_to = 1;
/// let wire = answer.to_vec()?;
/// assert_eq!(connection.feed(&wire[..7])?, None);    // not complete yet: read more
/// let reply = connection.feed(&wire[7..])?.expect("a whole reply");
/// assert_eq!(reply.body, body);
/// assert!(!reply.more_to_come);
/// assert!(!connection.awaiting_reply());              // ready for the next command
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MonitorConnection {
    /// Bytes received and not yet consumed.
    buf: Vec<u8>,
    /// The exchange in progress; `None` before the first command.
    matcher: Option<ReplyMatcher>,
    /// The `requestID` of the next command.
    next_request_id: i32,
    /// The largest reply accepted.
    max_message_size: usize,
    /// The error that ended this connection, returned again by every later call.
    failed: Option<ConnectionError>,
}

impl Default for MonitorConnection {
    fn default() -> Self {
        Self::new()
    }
}

impl MonitorConnection {
    /// A new connection with the default size limit ([`DEFAULT_MAX_MESSAGE_SIZE`], the
    /// server's `maxMessageSizeBytes` bound) and request ids from 1.
    #[must_use]
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            matcher: None,
            next_request_id: 1,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            failed: None,
        }
    }

    /// Sets the largest reply accepted, in bytes. A reply declaring more fails with
    /// [`ConnectionError::Malformed`] as soon as its length prefix arrives. (Commands are
    /// bounded by [`DEFAULT_MAX_MESSAGE_SIZE`], the most any server accepts.)
    #[must_use]
    pub fn with_max_message_size(mut self, max_message_size: usize) -> Self {
        self.max_message_size = max_message_size;
        self
    }

    /// Sets the `requestID` of the next command (a value below 1 becomes 1). For tests and
    /// for I/O layers that number their connections' requests from a shared counter.
    #[must_use]
    pub fn with_first_request_id(mut self, request_id: i32) -> Self {
        self.next_request_id = request_id.max(1);
        self
    }

    /// The largest reply accepted.
    #[must_use]
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    /// The `requestID` the next command will carry.
    #[must_use]
    pub fn next_request_id(&self) -> i32 {
        self.next_request_id
    }

    /// Whether a reply is expected: after [`send`](Self::send), and after a reply with
    /// `moreToCome`, until the final reply.
    #[must_use]
    pub fn awaiting_reply(&self) -> bool {
        self.matcher.is_some_and(|m| !m.is_finished())
    }

    /// The `responseTo` the next reply must carry, if one is expected.
    #[must_use]
    pub fn expected_response_to(&self) -> Option<i32> {
        self.matcher.and_then(|m| m.expected_response_to())
    }

    /// Bytes received and not yet part of a returned reply.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The error that ended this connection, if any.
    #[must_use]
    pub fn error(&self) -> Option<&ConnectionError> {
        self.failed.as_ref()
    }

    /// Encodes `command` as an `OP_MSG` with the next request id (and `exhaustAllowed` when
    /// asked: a streaming `hello` may then be answered by several replies) and returns the
    /// bytes to write. From now on the connection expects the reply.
    ///
    /// # Errors
    /// - [`ConnectionError::ReplyOutstanding`] while a reply is still expected;
    /// - [`ConnectionError::Encode`] if the message would exceed [`DEFAULT_MAX_MESSAGE_SIZE`];
    /// - the connection's earlier error, or [`ConnectionError::Unsolicited`] if bytes the
    ///   server sent after its last reply are buffered.
    pub fn send(&mut self, command: &RawDocument, exhaust_allowed: bool) -> Result<Vec<u8>, ConnectionError> {
        self.check_failed()?;
        if let Some(expected_response_to) = self.expected_response_to() {
            return Err(ConnectionError::ReplyOutstanding { expected_response_to });
        }
        if !self.buf.is_empty() {
            return Err(self.fail(ConnectionError::Unsolicited { bytes: self.buf.len() }));
        }
        let request_id = self.next_request_id;
        let mut message = OpMsg::new(request_id, command);
        message.flags.exhaust_allowed = exhaust_allowed;
        let length = message.encoded_len().map_err(ConnectionError::Encode)?;
        if length > DEFAULT_MAX_MESSAGE_SIZE {
            return Err(ConnectionError::Encode(WireError::LengthTooLarge {
                length,
                maximum: DEFAULT_MAX_MESSAGE_SIZE,
            }));
        }
        let bytes = message.to_vec().map_err(ConnectionError::Encode)?;
        self.next_request_id = if request_id == i32::MAX { 1 } else { request_id + 1 };
        self.matcher = Some(ReplyMatcher::new(request_id, exhaust_allowed));
        Ok(bytes)
    }

    /// Takes bytes read from the socket, then returns the next whole reply if there is one
    /// (as [`poll_reply`](Self::poll_reply) does). `Ok(None)`: read more.
    ///
    /// # Errors
    /// As for [`poll_reply`](Self::poll_reply); also [`ConnectionError::Unsolicited`] for
    /// bytes fed while no reply is expected.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Reply>, ConnectionError> {
        self.check_failed()?;
        if bytes.is_empty() {
            return self.poll_reply();
        }
        if !self.awaiting_reply() {
            let unexpected = self.buf.len().saturating_add(bytes.len());
            return Err(self.fail(ConnectionError::Unsolicited { bytes: unexpected }));
        }
        self.buf.extend_from_slice(bytes);
        self.poll_reply()
    }

    /// The next whole reply among the bytes fed so far, checked (framing, size limit,
    /// `OP_MSG` parsing, `responseTo`, `moreToCome`) and owned. `Ok(None)`: more bytes are
    /// needed, or no reply is expected.
    ///
    /// # Errors
    /// [`ConnectionError::Malformed`] for bytes that are not the expected reply; the
    /// connection is then finished and every later call returns the same error.
    pub fn poll_reply(&mut self) -> Result<Option<Reply>, ConnectionError> {
        self.check_failed()?;
        if !self.awaiting_reply() {
            return Ok(None);
        }
        let len = match frame(&self.buf, self.max_message_size) {
            Ok(Framing::Partial { .. }) => return Ok(None),
            Ok(Framing::Complete(len)) => len,
            Err(e) => return Err(self.fail(ConnectionError::Malformed(e))),
        };
        let parsed = match self.buf.get(..len).map(OpMsg::parse) {
            Some(Ok(message)) => {
                let reply = Reply {
                    body: message.body.to_owned(),
                    more_to_come: message.flags.more_to_come,
                    request_id: message.request_id,
                    response_to: message.response_to,
                };
                // The matcher is known to exist: awaiting_reply() held.
                let progress = self.matcher.as_mut().map(|m| m.accept(&message));
                Ok((reply, progress))
            }
            Some(Err(e)) => Err(e),
            None => Err(WireError::LengthMismatch { declared: len, actual: self.buf.len() }),
        };
        match parsed {
            Ok((mut reply, Some(Ok(progress)))) => {
                self.buf.drain(..len);
                reply.more_to_come = progress == ReplyProgress::MoreToCome;
                Ok(Some(reply))
            }
            Ok((_, Some(Err(e)))) | Err(e) => Err(self.fail(ConnectionError::Malformed(e))),
            Ok((_, None)) => Ok(None),
        }
    }

    fn check_failed(&self) -> Result<(), ConnectionError> {
        self.failed.clone().map_or(Ok(()), Err)
    }

    /// Records `error` as the end of this connection and returns it.
    fn fail(&mut self, error: ConnectionError) -> ConnectionError {
        self.buf = Vec::new();
        self.failed = Some(error.clone());
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MessageHeader, OP_MSG};
    use bson::rawdoc;
    use proptest::prelude::*;

    fn reply_bytes(body: &RawDocument, request_id: i32, response_to: i32, more_to_come: bool) -> Vec<u8> {
        let mut msg = OpMsg::new(request_id, body);
        msg.response_to = response_to;
        msg.flags.more_to_come = more_to_come;
        msg.to_vec().unwrap()
    }

    fn hello() -> RawDocumentBuf {
        rawdoc! { "hello": 1, "$db": "admin" }
    }

    #[test]
    fn one_exchange_byte_by_byte() {
        let mut c = MonitorConnection::new();
        assert!(!c.awaiting_reply());
        let sent = c.send(&hello(), false).unwrap();
        let request = OpMsg::parse(&sent).unwrap();
        assert_eq!((request.request_id, request.flags.exhaust_allowed), (1, false));
        assert_eq!(request.body, hello().as_ref());
        assert_eq!(c.expected_response_to(), Some(1));
        let body = rawdoc! { "ok": 1 };
        let wire = reply_bytes(&body, 77, 1, false);
        let (last, rest) = wire.split_last().unwrap();
        for byte in rest {
            assert_eq!(c.feed(std::slice::from_ref(byte)), Ok(None));
        }
        let reply = c.feed(&[*last]).unwrap().unwrap();
        assert_eq!(reply, Reply { body, more_to_come: false, request_id: 77, response_to: 1 });
        assert!(!c.awaiting_reply());
        assert_eq!(c.buffered(), 0);
        assert_eq!(c.poll_reply(), Ok(None));
    }

    #[test]
    fn request_ids_are_per_connection_positive_and_wrap_to_one() {
        let body = rawdoc! { "ok": 1 };
        let mut c = MonitorConnection::new().with_first_request_id(i32::MAX - 1);
        let mut ids = Vec::new();
        for _ in 0..3 {
            let id = OpMsg::parse(&c.send(&hello(), false).unwrap()).unwrap().request_id;
            c.feed(&reply_bytes(&body, 5, id, false)).unwrap().unwrap();
            ids.push(id);
        }
        assert_eq!(ids, [i32::MAX - 1, i32::MAX, 1]);
        assert_eq!(c.next_request_id(), 2);
        // Two connections number independently.
        let mut other = MonitorConnection::new();
        assert_eq!(OpMsg::parse(&other.send(&hello(), false).unwrap()).unwrap().request_id, 1);
        assert_eq!(MonitorConnection::new().with_first_request_id(-4).next_request_id(), 1);
    }

    #[test]
    fn exhaust_stream_in_one_read_then_final() {
        let mut c = MonitorConnection::new();
        let sent = c.send(&hello(), true).unwrap();
        assert!(OpMsg::parse(&sent).unwrap().flags.exhaust_allowed);
        let body = rawdoc! { "ok": 1 };
        let mut wire = reply_bytes(&body, 10, 1, true);
        wire.extend(reply_bytes(&body, 11, 10, true));
        wire.extend(&reply_bytes(&body, 12, 11, false)[..5]);
        let first = c.feed(&wire).unwrap().unwrap();
        assert!(first.more_to_come);
        // Nothing may be sent while the stream goes on.
        assert_eq!(
            c.send(&hello(), false),
            Err(ConnectionError::ReplyOutstanding { expected_response_to: 10 })
        );
        let second = c.poll_reply().unwrap().unwrap();
        assert_eq!((second.request_id, second.more_to_come), (11, true));
        assert_eq!(c.poll_reply(), Ok(None));
        let third = c.feed(&reply_bytes(&body, 12, 11, false)[5..]).unwrap().unwrap();
        assert!(!third.more_to_come);
        assert!(!c.awaiting_reply());
        assert_eq!(OpMsg::parse(&c.send(&hello(), false).unwrap()).unwrap().request_id, 2);
    }

    #[test]
    fn wrong_response_to_and_unexpected_more_to_come_end_the_connection() {
        let body = rawdoc! { "ok": 1 };
        let mut c = MonitorConnection::new();
        c.send(&hello(), false).unwrap();
        let err = c.feed(&reply_bytes(&body, 5, 9, false)).unwrap_err();
        assert_eq!(
            err,
            ConnectionError::Malformed(WireError::UnexpectedResponseTo { expected: 1, actual: 9 })
        );
        assert_eq!(err.to_string(), "malformed reply: reply has responseTo 9, expected 1");
        // Sticky: the stream is out of sync.
        assert_eq!(c.feed(&reply_bytes(&body, 5, 1, false)), Err(err.clone()));
        assert_eq!(c.send(&hello(), false), Err(err.clone()));
        assert_eq!(c.error(), Some(&err));

        let mut c = MonitorConnection::new();
        c.send(&hello(), false).unwrap();
        assert_eq!(
            c.feed(&reply_bytes(&body, 5, 1, true)),
            Err(ConnectionError::Malformed(WireError::UnexpectedMoreToCome { response_to: 1 }))
        );
    }

    #[test]
    fn the_size_limit_is_enforced_at_the_length_prefix() {
        let mut c = MonitorConnection::new().with_max_message_size(1000);
        c.send(&hello(), false).unwrap();
        let header = MessageHeader { message_length: 1001, request_id: 1, response_to: 1, op_code: OP_MSG };
        let err = c.feed(&header.to_bytes()[..4]).unwrap_err();
        assert_eq!(
            err,
            ConnectionError::Malformed(WireError::LengthTooLarge { length: 1001, maximum: 1000 })
        );
        assert_eq!(c.buffered(), 0);

        // Commands are bounded by what any server accepts, whatever the reply limit.
        let mut c = MonitorConnection::new().with_max_message_size(40);
        assert!(c.send(&hello(), false).is_ok());
        let mut c = MonitorConnection::new();
        let big = rawdoc! { "hello": 1, "$db": "admin", "client": "x".repeat(DEFAULT_MAX_MESSAGE_SIZE) };
        assert!(matches!(
            c.send(&big, false),
            Err(ConnectionError::Encode(WireError::LengthTooLarge { .. }))
        ));
        assert!(!c.awaiting_reply(), "a refused command changes nothing");
        assert_eq!(MonitorConnection::new().max_message_size(), DEFAULT_MAX_MESSAGE_SIZE);
    }

    #[test]
    fn garbage_and_unsolicited_bytes_are_errors() {
        let mut c = MonitorConnection::new();
        assert_eq!(c.feed(b"abc"), Err(ConnectionError::Unsolicited { bytes: 3 }));
        assert_eq!(
            ConnectionError::Unsolicited { bytes: 3 }.to_string(),
            "the server sent 3 bytes while no reply was expected"
        );

        let mut c = MonitorConnection::new();
        c.send(&hello(), false).unwrap();
        let header = MessageHeader { message_length: 40, request_id: 1, response_to: 1, op_code: 1 };
        assert_eq!(
            c.feed(&header.to_bytes()),
            Err(ConnectionError::Malformed(WireError::UnsupportedOpCode { op_code: 1 }))
        );

        // Bytes after the final reply are found before the next command is sent.
        let body = rawdoc! { "ok": 1 };
        let mut c = MonitorConnection::new();
        c.send(&hello(), false).unwrap();
        let mut wire = reply_bytes(&body, 5, 1, false);
        wire.extend_from_slice(b"xy");
        assert!(c.feed(&wire).unwrap().is_some());
        assert_eq!(c.send(&hello(), false), Err(ConnectionError::Unsolicited { bytes: 2 }));
    }

    proptest! {
        /// However the replies of an exhaust stream are cut into reads, the same replies come
        /// out in order, and the buffer never holds more than one message plus one read.
        #[test]
        fn any_split_of_a_stream_gives_the_same_replies(
            count in 1usize..5,
            cuts in proptest::collection::vec(1usize..64, 0..40),
        ) {
            let body = rawdoc! { "ok": 1, "n": "some padding to make messages longer" };
            let mut wire = Vec::new();
            let mut previous = 1;
            for i in 0..count {
                let id = 100 + i32::try_from(i).unwrap();
                wire.extend(reply_bytes(&body, id, previous, i + 1 < count));
                previous = id;
            }
            let one = reply_bytes(&body, 1, 1, false).len();
            let mut c = MonitorConnection::new();
            c.send(&hello(), true).unwrap();
            let mut replies = Vec::new();
            let mut rest = wire.as_slice();
            let mut cuts = cuts.into_iter();
            while !rest.is_empty() {
                let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                let mut next = c.feed(chunk).unwrap();
                while let Some(reply) = next {
                    replies.push(reply);
                    next = c.poll_reply().unwrap();
                }
                prop_assert!(c.buffered() <= one + 64);
            }
            prop_assert_eq!(replies.len(), count);
            prop_assert!(replies.iter().rev().skip(1).all(|r| r.more_to_come));
            prop_assert!(!replies.last().unwrap().more_to_come);
            prop_assert!(!c.awaiting_reply());
        }
    }
}
