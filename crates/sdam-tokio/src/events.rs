//! What a client publishes: SDAM events, server selection log events, pool clears.

use bson::oid::ObjectId;
use sdam::selection::SelectionLogEvent;
use sdam::ServerAddress;
use tokio::sync::broadcast;

/// One event a [`Client`](crate::Client) publishes to its subscribers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// An SDAM monitoring event from the core (topology and server changes, heartbeats).
    Sdam(sdam::Event),
    /// A server selection log event (server-selection.md, "Logging").
    Selection(SelectionLogEvent),
    /// The core asked for a server's connection pool to be cleared (`Command::ClearPool`).
    /// The adapter owns no pool: a connection pool built on it listens for this.
    PoolCleared {
        /// The server.
        address: ServerAddress,
        /// In load-balanced mode, the service whose connections are cleared.
        service_id: Option<ObjectId>,
        /// The pool's new generation: connections of older generations are stale.
        generation: u32,
        /// Whether connections in use must be interrupted too.
        interrupt_in_use_connections: bool,
    },
}

/// A stream of [`ClientEvent`]s, from [`Client::subscribe`](crate::Client::subscribe).
///
/// Each subscription sees every event published after it was created, in order. The buffer
/// is bounded ([`ClientOptions::event_capacity`](crate::ClientOptions::event_capacity)): a
/// subscriber that falls that far behind skips the oldest events, and [`missed`](Self::missed)
/// counts them.
#[derive(Debug)]
pub struct Subscription {
    receiver: Option<broadcast::Receiver<ClientEvent>>,
    missed: u64,
}

impl Subscription {
    pub(crate) fn new(receiver: Option<broadcast::Receiver<ClientEvent>>) -> Self {
        Self { receiver, missed: 0 }
    }

    /// The next event; `None` once the client has closed and every event before was received.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        let receiver = self.receiver.as_mut()?;
        loop {
            match receiver.recv().await {
                Ok(event) => return Some(event),
                Err(broadcast::error::RecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::RecvError::Closed) => {
                    self.receiver = None;
                    return None;
                }
            }
        }
    }

    /// The next event if one is waiting, without blocking.
    pub fn try_recv(&mut self) -> Option<ClientEvent> {
        let receiver = self.receiver.as_mut()?;
        loop {
            match receiver.try_recv() {
                Ok(event) => return Some(event),
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.missed += n,
                Err(broadcast::error::TryRecvError::Empty) => return None,
                Err(broadcast::error::TryRecvError::Closed) => {
                    self.receiver = None;
                    return None;
                }
            }
        }
    }

    /// How many events this subscription skipped because it fell behind.
    pub fn missed(&self) -> u64 {
        self.missed
    }
}
