//! Events for subscribers, over std mpsc channels.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::time::Duration;

use crate::ClientEvent;

/// A subscription to a client's events, from the moment it was made. The stream ends
/// (`recv` returns `None`) once the client is closed and every event was received.
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver<ClientEvent>,
}

impl Subscription {
    /// The next event, blocking; `None` once the client is closed and drained.
    pub fn recv(&self) -> Option<ClientEvent> {
        self.rx.recv().ok()
    }

    /// The next event within `timeout`; `None` on timeout or once closed and drained.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<ClientEvent> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<ClientEvent> {
        self.rx.try_recv().ok()
    }
}

impl Iterator for Subscription {
    type Item = ClientEvent;

    fn next(&mut self) -> Option<ClientEvent> {
        self.recv()
    }
}

/// The subscribers' senders.
#[derive(Debug, Default)]
pub(crate) struct Subscribers(Mutex<Option<Vec<Sender<ClientEvent>>>>);

impl Subscribers {
    pub(crate) fn new() -> Self {
        Self(Mutex::new(Some(Vec::new())))
    }

    /// A new subscription (already ended if the client is closed).
    pub(crate) fn subscribe(&self) -> Subscription {
        let (tx, rx) = mpsc::channel();
        if let Some(list) = self.lock().as_mut() {
            list.push(tx);
        }
        Subscription { rx }
    }

    /// Sends `event` to every live subscriber.
    pub(crate) fn publish(&self, event: ClientEvent) {
        if let Some(list) = self.lock().as_mut() {
            list.retain(|tx| tx.send(event.clone()).is_ok());
        }
    }

    /// Sends `events` to every live subscriber, next to each other (an event and its log
    /// message are never split by another thread's event).
    pub(crate) fn publish_all(&self, events: &[ClientEvent]) {
        if let Some(list) = self.lock().as_mut() {
            list.retain(|tx| events.iter().all(|event| tx.send(event.clone()).is_ok()));
        }
    }

    /// Ends every subscription (after the last event).
    pub(crate) fn close(&self) {
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<Sender<ClientEvent>>>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
