//! What a client publishes: SDAM events, server selection log events, pool clears. One queue
//! per subscriber, bounded by bytes
//! ([`ClientOptions::event_buffer_bytes`](crate::ClientOptions::event_buffer_bytes)), shared
//! with sdam-std (`sdam_adapter::subscribers`).

use sdam_adapter::subscribers::Receiver;

use crate::ClientEvent;

/// A stream of [`ClientEvent`]s, from [`Client::subscribe`](crate::Client::subscribe).
///
/// Each subscription sees every event published after it was created, in order. Its queue is
/// bounded by bytes: a subscriber that falls that far behind loses the oldest events and
/// receives a [`ClientEvent::Lagged`] with their number in their place; [`missed`](Self::missed)
/// counts them all.
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver,
}

impl Subscription {
    pub(crate) fn new(rx: Receiver) -> Self {
        Self { rx }
    }

    /// The next event; `None` once the client has closed and every event before was received.
    ///
    /// Cancel-safe: dropping the future (in a `select!`) loses no event.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        std::future::poll_fn(|cx| self.rx.poll_recv(cx)).await
    }

    /// The next event if one is waiting, without blocking.
    pub fn try_recv(&mut self) -> Option<ClientEvent> {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sdam::selection::SelectionCriteria;
    use sdam::TopologyConfig;
    use sdam_testserver::{MemberSpec, ReplicaSet, Role};

    use crate::{Client, ClientEvent, ClientOptions};

    /// A real selection's log event and a real heartbeat event from a 1-member set.
    async fn real_events(client: &Client) -> (ClientEvent, ClientEvent) {
        let mut events = client.subscribe();
        client.request_check();
        drop(client.select_server(SelectionCriteria::write()).await.unwrap());
        let (mut selection, mut heartbeat) = (None, None);
        let wait = async {
            while selection.is_none() || heartbeat.is_none() {
                match tokio::time::timeout(Duration::from_millis(100), events.recv()).await {
                    Ok(Some(e @ ClientEvent::Selection(_))) => selection = Some(e),
                    Ok(Some(e @ ClientEvent::Sdam(sdam::Event::ServerHeartbeatSucceeded { .. }))) => {
                        heartbeat = Some(e);
                    }
                    _ => client.request_check(),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait).await.expect("selection and heartbeat events");
        (selection.unwrap(), heartbeat.unwrap())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_subscription_made_at_construction_sees_topology_opening_first() {
        let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().unwrap();
        let (client, mut events) =
            Client::with_subscription(TopologyConfig::with_seeds(set.addresses()), ClientOptions::default())
                .unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap();
        assert!(matches!(first, Some(ClientEvent::Sdam(sdam::Event::TopologyOpening { .. }))), "{first:?}");
        client.close().await;
    }

    /// issue #15: 2 M selection events through the publishing path of selections stay within
    /// a never-read subscription's bound, far under 64 MB; the reader learns what it missed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_never_read_subscription_stays_bounded_over_2m_selection_events() {
        let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().unwrap();
        let client = Client::new(TopologyConfig::with_seeds(set.addresses())).unwrap();
        let mut never_read = client.subscribe();
        let (selection, _) = real_events(&client).await;
        let shared = &client.inner.shared;
        let mut peak = 0;
        for i in 0..2_000_000u32 {
            shared.publish(selection.clone());
            if i % 65_536 == 0 {
                peak = peak.max(never_read.queued_bytes());
            }
        }
        peak = peak.max(never_read.queued_bytes());
        assert!(peak < 64 << 20, "queued {peak} bytes");
        assert!(peak <= shared.events.max_bytes(), "queued {peak} bytes");
        let first = never_read.try_recv();
        let Some(ClientEvent::Lagged { missed }) = first else {
            panic!("expected Lagged first, got {first:?}")
        };
        assert!(missed > 1_900_000, "missed {missed}");
        assert_eq!(never_read.missed(), missed);
        client.close().await;
    }

    /// issue #15: the queue counted events, not bytes, and heartbeat events carry the whole
    /// reply (4,096 events of 200 KB replies: 698 MB). Now bounded by bytes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_heartbeat_replies_are_bounded_by_bytes_and_a_lagging_reader_is_told() {
        let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().unwrap();
        let options = ClientOptions { event_buffer_bytes: 4 << 20, ..ClientOptions::default() };
        let client = Client::with_options(TopologyConfig::with_seeds(set.addresses()), options).unwrap();
        let (_, mut heartbeat) = real_events(&client).await;
        if let ClientEvent::Sdam(sdam::Event::ServerHeartbeatSucceeded { reply, .. }) = &mut heartbeat {
            let padding = "x".repeat(200 * 1024);
            *reply = bson::rawdoc! { "ok": 1, "padding": padding };
        }
        let mut lagging = client.subscribe();
        for _ in 0..1_000 {
            client.inner.shared.publish(heartbeat.clone());
        }
        let queued = lagging.queued_bytes();
        assert!(queued <= 4 << 20, "queued {queued} bytes of 200 KB heartbeats");
        let first = lagging.recv().await;
        assert!(matches!(first, Some(ClientEvent::Lagged { missed }) if missed >= 980), "{first:?}");
        let next = lagging.recv().await;
        assert!(
            matches!(next, Some(ClientEvent::Sdam(sdam::Event::ServerHeartbeatSucceeded { .. }))),
            "{next:?}"
        );
        client.close().await;
        // Closed: the subscription drains what is queued, then ends.
        while lagging.recv().await.is_some() {}
    }
}
