//! Matching replies to the request they answer, including exhaust streams.

use crate::{OpMsg, WireError};

/// Where a conversation stands after a reply was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ReplyProgress {
    /// The reply had `moreToCome` set: keep reading, and send nothing on this connection
    /// until a [`Final`](Self::Final) reply arrives.
    MoreToCome,
    /// The reply was the last one: the connection may carry a new request.
    Final,
}

/// Checks that each reply read from a connection answers the request sent on it.
///
/// A plain request gets one reply whose `responseTo` is the request's `requestID`. A request
/// with `exhaustAllowed` (a streaming `hello`) may get a stream: while a reply has
/// `moreToCome` set another follows, and each follow-up's `responseTo` is the `requestID` of
/// the reply before it. The matcher tracks that expected value.
///
/// ```
/// use sdam_wire::{OpMsg, OpMsgFlags, ReplyMatcher, ReplyProgress};
///
/// let body = bson::rawdoc! { "ok": 1 };
/// let mut request = OpMsg::new(10, &body);
/// request.flags.exhaust_allowed = true;
/// let mut matcher = ReplyMatcher::for_request(&request).expect("a reply is expected");
///
/// let mut first = OpMsg::new(500, &body);
/// first.response_to = 10;
/// first.flags.more_to_come = true;
/// assert_eq!(matcher.accept(&first), Ok(ReplyProgress::MoreToCome));
/// assert_eq!(matcher.expected_response_to(), Some(500));
///
/// let mut second = OpMsg::new(501, &body);
/// second.response_to = 500;
/// assert_eq!(matcher.accept(&second), Ok(ReplyProgress::Final));
/// assert_eq!(matcher.expected_response_to(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyMatcher {
    /// The `responseTo` the next reply must carry; `None` once the final reply arrived.
    expected: Option<i32>,
    /// Whether the request allowed `moreToCome` replies.
    exhaust_allowed: bool,
}

impl ReplyMatcher {
    /// A matcher for the replies to the request with this `requestID`. `exhaust_allowed`
    /// says whether that request set `exhaustAllowed`; if it did not, a reply with
    /// `moreToCome` is a protocol error.
    #[must_use]
    pub fn new(request_id: i32, exhaust_allowed: bool) -> Self {
        Self { expected: Some(request_id), exhaust_allowed }
    }

    /// A matcher for the replies to `request`, or `None` if the request set `moreToCome`,
    /// which tells the server not to reply at all.
    #[must_use]
    pub fn for_request(request: &OpMsg<'_>) -> Option<Self> {
        (!request.flags.more_to_come).then(|| Self::new(request.request_id, request.flags.exhaust_allowed))
    }

    /// The `responseTo` the next reply must carry, or `None` when the conversation is over.
    #[must_use]
    pub fn expected_response_to(&self) -> Option<i32> {
        self.expected
    }

    /// Whether the final reply has arrived.
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.expected.is_none()
    }

    /// Checks the next reply read from the connection and advances.
    ///
    /// # Errors
    /// - [`WireError::ConversationFinished`] if the final reply was already accepted;
    /// - [`WireError::UnexpectedResponseTo`] if the reply's `responseTo` is not the expected one;
    /// - [`WireError::UnexpectedMoreToCome`] if the reply has `moreToCome` but the request
    ///   did not allow exhaust.
    ///
    /// On error the matcher is unchanged; the connection should be closed.
    pub fn accept(&mut self, reply: &OpMsg<'_>) -> Result<ReplyProgress, WireError> {
        let Some(expected) = self.expected else {
            return Err(WireError::ConversationFinished { response_to: reply.response_to });
        };
        if reply.response_to != expected {
            return Err(WireError::UnexpectedResponseTo { expected, actual: reply.response_to });
        }
        if !reply.flags.more_to_come {
            self.expected = None;
            return Ok(ReplyProgress::Final);
        }
        if !self.exhaust_allowed {
            return Err(WireError::UnexpectedMoreToCome { response_to: reply.response_to });
        }
        self.expected = Some(reply.request_id);
        Ok(ReplyProgress::MoreToCome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpMsgFlags;
    use bson::{rawdoc, RawDocumentBuf};

    fn reply(body: &RawDocumentBuf, request_id: i32, response_to: i32, more_to_come: bool) -> OpMsg<'_> {
        let mut msg = OpMsg::new(request_id, body);
        msg.response_to = response_to;
        msg.flags.more_to_come = more_to_come;
        msg
    }

    #[test]
    fn single_reply() {
        let body = rawdoc! { "ok": 1 };
        let mut matcher = ReplyMatcher::new(7, false);
        assert_eq!(matcher.expected_response_to(), Some(7));
        assert!(!matcher.is_finished());
        assert_eq!(matcher.accept(&reply(&body, 100, 7, false)), Ok(ReplyProgress::Final));
        assert!(matcher.is_finished());
        assert_eq!(
            matcher.accept(&reply(&body, 101, 7, false)),
            Err(WireError::ConversationFinished { response_to: 7 })
        );
    }

    #[test]
    fn wrong_response_to() {
        let body = rawdoc! { "ok": 1 };
        let mut matcher = ReplyMatcher::new(7, true);
        let err = matcher.accept(&reply(&body, 100, 8, false)).unwrap_err();
        assert_eq!(err, WireError::UnexpectedResponseTo { expected: 7, actual: 8 });
        assert_eq!(err.to_string(), "reply has responseTo 8, expected 7");
        // Unchanged: the right reply is still accepted.
        assert_eq!(matcher.accept(&reply(&body, 100, 7, false)), Ok(ReplyProgress::Final));
    }

    #[test]
    fn exhaust_stream_chains_request_ids() {
        let body = rawdoc! { "ok": 1 };
        let mut matcher = ReplyMatcher::new(1, true);
        assert_eq!(matcher.accept(&reply(&body, 10, 1, true)), Ok(ReplyProgress::MoreToCome));
        assert_eq!(matcher.accept(&reply(&body, 11, 10, true)), Ok(ReplyProgress::MoreToCome));
        // A follow-up answering the original request instead of the previous reply is wrong.
        assert_eq!(
            matcher.accept(&reply(&body, 12, 1, true)),
            Err(WireError::UnexpectedResponseTo { expected: 11, actual: 1 })
        );
        assert_eq!(matcher.accept(&reply(&body, 12, 11, false)), Ok(ReplyProgress::Final));
        assert_eq!(matcher.expected_response_to(), None);
    }

    #[test]
    fn more_to_come_without_exhaust_is_refused() {
        let body = rawdoc! { "ok": 1 };
        let mut matcher = ReplyMatcher::new(3, false);
        assert_eq!(
            matcher.accept(&reply(&body, 10, 3, true)),
            Err(WireError::UnexpectedMoreToCome { response_to: 3 })
        );
    }

    #[test]
    fn for_request() {
        let body = rawdoc! { "hello": 1, "$db": "admin" };
        let mut request = OpMsg::new(42, &body);
        assert_eq!(ReplyMatcher::for_request(&request), Some(ReplyMatcher::new(42, false)));
        request.flags = OpMsgFlags { exhaust_allowed: true, ..OpMsgFlags::default() };
        assert_eq!(ReplyMatcher::for_request(&request), Some(ReplyMatcher::new(42, true)));
        request.flags.more_to_come = true;
        assert_eq!(ReplyMatcher::for_request(&request), None);
    }
}
