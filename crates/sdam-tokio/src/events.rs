//! What a client publishes: SDAM events, server selection log events, pool clears.

use tokio::sync::broadcast;

use crate::ClientEvent;

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
