//! Events for subscribers: one queue per subscriber, bounded by bytes
//! ([`ClientOptions::event_buffer_bytes`](crate::ClientOptions::event_buffer_bytes)), shared
//! with sdam-tokio (`sdam_adapter::subscribers`).

use std::time::{Duration, Instant};

use sdam_adapter::subscribers::Receiver;

use crate::ClientEvent;

/// A subscription to a client's events, from the moment it was made. The stream ends
/// (`recv` returns `None`) once the client is closed and every event was received.
///
/// Its queue is bounded by bytes: a subscriber that falls that far behind loses the oldest
/// events and receives a [`ClientEvent::Lagged`] with their number in their place;
/// [`missed`](Self::missed) counts them all.
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver,
}

impl Subscription {
    pub(crate) fn new(rx: Receiver) -> Self {
        Self { rx }
    }

    /// The next event, blocking; `None` once the client is closed and drained.
    pub fn recv(&self) -> Option<ClientEvent> {
        self.rx.recv_blocking(None)
    }

    /// The next event within `timeout`; `None` on timeout or once closed and drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<ClientEvent> {
        self.rx.recv_blocking(Some(Instant::now() + timeout))
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<ClientEvent> {
        self.rx.try_recv()
    }

    /// How many events this subscription skipped because it fell behind.
    pub fn missed(&self) -> u64 {
        self.rx.missed()
    }

    /// The accounted bytes of the events waiting for this subscription (for tests and
    /// monitoring the bound; not a stable interface).
    #[doc(hidden)]
    pub fn queued_bytes(&self) -> usize {
        self.rx.queued_bytes()
    }
}

impl Iterator for Subscription {
    type Item = ClientEvent;

    fn next(&mut self) -> Option<ClientEvent> {
        self.recv()
    }
}
