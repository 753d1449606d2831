//! Event subscriptions bounded by bytes, shared by both adapters: each subscriber has its own
//! queue holding at most [`Subscribers::max_bytes`] of events (as [`event_size`] accounts
//! them); when a publish would go beyond, the oldest events are dropped and the subscriber
//! receives a [`ClientEvent::Lagged`] with their number before the events that remain.
//!
//! Receiving works three ways, so the same queue serves both runtimes: without waiting
//! ([`Receiver::try_recv`]), blocking on a condition variable ([`Receiver::recv_blocking`],
//! sdam-std) and as a future's poll ([`Receiver::poll_recv`], sdam-tokio). An event published
//! to several subscribers is shared, not copied; a subscriber takes its own copy when it
//! receives it (none when it is the last holder).

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use sdam::selection::{SelectionLogEvent, SelectionLogKind};
use sdam::{Event, ServerAddress, ServerDescription, TopologyDescription};

use crate::ClientEvent;

/// The default bound of one subscriber's queue: 16 MiB of accounted events.
pub const DEFAULT_EVENT_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// The bytes an event accounts for in a subscriber's queue: the event itself and what it owns
/// on the heap beyond what the topology holds anyway: a heartbeat's whole reply, strings, both
/// server descriptions of a `ServerDescriptionChanged` (with their member lists and tags), and
/// for a `TopologyDescriptionChanged` both descriptions' own fields and one pointer per server.
///
/// The server descriptions a queued topology description points to are either the topology's
/// current ones or were replaced later by a `ServerDescriptionChanged` that is queued after it
/// (the queue is in order) and accounts for them, so they are not counted twice; a
/// `ServerClosed` accounts for the closed server's description (its member lists are shared
/// with the other members' and counted with those).
pub fn event_size(event: &ClientEvent) -> usize {
    let own = size_of::<ClientEvent>() + 2 * size_of::<usize>(); // the Arc's counts
    own + match event {
        ClientEvent::Sdam(event) => sdam_event_size(event),
        ClientEvent::Selection(event) => selection_size(event),
        ClientEvent::PoolCleared { address, .. } | ClientEvent::PoolReady { address, .. } => {
            address_size(address)
        }
        ClientEvent::Lagged { .. } => 0,
    }
}

fn address_size(address: &ServerAddress) -> usize {
    match address {
        ServerAddress::Tcp { host, .. } => host.len(),
        ServerAddress::Unix { path } => path.len(),
    }
}

fn addresses_size(list: &[ServerAddress]) -> usize {
    list.iter().map(|a| size_of::<ServerAddress>() + address_size(a)).sum()
}

fn server_size(sd: &ServerDescription) -> usize {
    size_of::<ServerDescription>()
        + address_size(&sd.address)
        + sd.error.as_deref().map_or(0, str::len)
        + sd.me.as_ref().map_or(0, address_size)
        + sd.primary.as_ref().map_or(0, address_size)
        + addresses_size(&sd.hosts)
        + addresses_size(&sd.passives)
        + addresses_size(&sd.arbiters)
        + sd.tags.iter().map(|(k, v)| 2 * size_of::<String>() + k.len() + v.len()).sum::<usize>()
        + sd.set_name.as_deref().map_or(0, str::len)
        + sd.compression.iter().map(|c| size_of::<String>() + c.len()).sum::<usize>()
}

fn topology_size(td: &TopologyDescription) -> usize {
    size_of::<TopologyDescription>()
        + td.set_name.as_deref().map_or(0, str::len)
        + td.compatibility_error.as_deref().map_or(0, str::len)
        + td.srv_error.as_ref().map_or(0, |e| e.message().len())
        + td.server_limit_error.as_deref().map_or(0, str::len)
        + td.servers.len() * size_of::<usize>()
}

fn sdam_event_size(event: &Event) -> usize {
    match event {
        Event::TopologyDescriptionChanged { previous, new, .. } => {
            topology_size(previous) + topology_size(new)
        }
        Event::ServerDescriptionChanged { address, previous, new, .. } => {
            address_size(address) + server_size(previous) + server_size(new)
        }
        // A closed server's last description may be kept alive by queued topology
        // descriptions only: its size is counted here.
        Event::ServerClosed { address, .. } => size_of::<ServerDescription>() + 2 * address_size(address),
        Event::ServerOpening { address, .. } | Event::ServerHeartbeatStarted { address, .. } => {
            address_size(address)
        }
        Event::ServerHeartbeatSucceeded { address, reply, .. } => {
            address_size(address) + reply.as_bytes().len()
        }
        Event::ServerHeartbeatFailed { address, failure, .. } => address_size(address) + failure.len(),
        // TopologyOpening, TopologyClosed, and any event added later: nothing on the heap.
        _ => 0,
    }
}

fn selection_size(event: &SelectionLogEvent) -> usize {
    let kind = match &event.kind {
        SelectionLogKind::Succeeded { server_host, .. } => server_host.len(),
        SelectionLogKind::Failed { failure } => failure.len(),
        _ => 0,
    };
    event.selector.len() + event.operation.len() + event.topology_description.len() + kind
}

/// One subscriber's queue.
#[derive(Debug)]
struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<(Arc<ClientEvent>, usize)>,
    /// The accounted bytes of `events`.
    bytes: usize,
    /// Events dropped since the subscriber last received: delivered as one `Lagged` first.
    lagged: u64,
    /// Events dropped over the subscription's life.
    missed: u64,
    closed: bool,
    waker: Option<Waker>,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// The next event for the subscriber: a pending `Lagged` first.
    fn pop(&mut self) -> Option<ClientEvent> {
        if self.lagged > 0 {
            let missed = std::mem::take(&mut self.lagged);
            return Some(ClientEvent::Lagged { missed });
        }
        let (event, size) = self.events.pop_front()?;
        self.bytes -= size;
        Some(Arc::try_unwrap(event).unwrap_or_else(|shared| (*shared).clone()))
    }
}

/// The publishing side: every live subscriber's queue.
#[derive(Debug)]
pub struct Subscribers {
    queues: Mutex<Option<Vec<Arc<Queue>>>>,
    /// How many queues the list holds (read without the lock when there are none).
    count: AtomicUsize,
    max_bytes: usize,
}

impl Subscribers {
    /// No subscribers yet; each subscriber's queue holds at most `max_bytes` of events (the
    /// newest event is always kept, however large).
    pub fn new(max_bytes: usize) -> Self {
        Self { queues: Mutex::new(Some(Vec::new())), count: AtomicUsize::new(0), max_bytes }
    }

    /// The bound of each subscriber's queue, in accounted bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    fn lock(&self) -> MutexGuard<'_, Option<Vec<Arc<Queue>>>> {
        self.queues.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new subscriber that receives every event published from now on (already ended
    /// when the subscribers are closed).
    pub fn subscribe(&self) -> Receiver {
        let queue = Arc::new(Queue { state: Mutex::new(State::default()), ready: Condvar::new() });
        match self.lock().as_mut() {
            Some(list) => {
                list.push(Arc::clone(&queue));
                self.count.store(list.len(), Ordering::Release);
            }
            None => queue.lock().closed = true,
        }
        Receiver { queue }
    }

    /// Whether anyone is subscribed (publishers may skip building events when not).
    pub fn has_subscribers(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Queues `event` for every live subscriber, dropping each one's oldest events beyond
    /// the bound; forgets subscribers that were dropped.
    pub fn publish(&self, event: ClientEvent) {
        if !self.has_subscribers() {
            return;
        }
        let size = event_size(&event);
        let event = Arc::new(event);
        let mut guard = self.lock();
        let Some(list) = guard.as_mut() else { return };
        list.retain(|queue| Arc::strong_count(queue) > 1);
        self.count.store(list.len(), Ordering::Release);
        for queue in list.iter() {
            let mut state = queue.lock();
            state.events.push_back((Arc::clone(&event), size));
            state.bytes += size;
            while state.bytes > self.max_bytes && state.events.len() > 1 {
                if let Some((_, dropped)) = state.events.pop_front() {
                    state.bytes -= dropped;
                    state.lagged += 1;
                    state.missed += 1;
                }
            }
            let waker = state.waker.take();
            drop(state);
            queue.ready.notify_all();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Ends every subscription: each receives what is queued, then the end. Later
    /// subscriptions start ended.
    pub fn close(&self) {
        let Some(list) = self.lock().take() else { return };
        self.count.store(0, Ordering::Release);
        for queue in list {
            let mut state = queue.lock();
            state.closed = true;
            let waker = state.waker.take();
            drop(state);
            queue.ready.notify_all();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

/// The receiving side of one subscription.
#[derive(Debug)]
pub struct Receiver {
    queue: Arc<Queue>,
}

impl Receiver {
    /// The next event if one is queued (a [`ClientEvent::Lagged`] first when events were
    /// dropped); `None` when none is.
    pub fn try_recv(&self) -> Option<ClientEvent> {
        self.queue.lock().pop()
    }

    /// Whether the subscription has ended and every event was received.
    pub fn is_finished(&self) -> bool {
        let state = self.queue.lock();
        state.closed && state.lagged == 0 && state.events.is_empty()
    }

    /// The next event, blocking until one is published or `deadline` (`None`: no limit);
    /// `None` on the deadline or once the subscription ended and was drained.
    pub fn recv_blocking(&self, deadline: Option<Instant>) -> Option<ClientEvent> {
        let mut state = self.queue.lock();
        loop {
            if let Some(event) = state.pop() {
                return Some(event);
            }
            if state.closed {
                return None;
            }
            state = match deadline {
                None => self.queue.ready.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
                    self.queue.ready.wait_timeout(state, left).map_or_else(|e| e.into_inner().0, |r| r.0)
                }
            };
        }
    }

    /// Polls for the next event: `Ready(Some)` with one, `Ready(None)` once the subscription
    /// ended and was drained, else `Pending` (the context's waker is woken on the next
    /// publish or at the end).
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        let mut state = self.queue.lock();
        if let Some(event) = state.pop() {
            return Poll::Ready(Some(event));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        match &mut state.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// How many events this subscription has missed because it fell behind (each gap was
    /// also announced by a [`ClientEvent::Lagged`]).
    pub fn missed(&self) -> u64 {
        self.queue.lock().missed
    }

    /// The accounted bytes of the events queued for this subscription ([`event_size`]).
    pub fn queued_bytes(&self) -> usize {
        self.queue.lock().bytes
    }

    /// How many events are queued for this subscription.
    pub fn queued_events(&self) -> usize {
        self.queue.lock().events.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An event of about the size of a selection log event (~800 bytes).
    fn selection_event(n: usize) -> ClientEvent {
        ClientEvent::PoolCleared {
            address: ServerAddress::tcp(&format!("{n:0>700}"), 27017).unwrap(),
            service_id: None,
            generation: 1,
            interrupt_in_use_connections: false,
        }
    }

    #[test]
    fn a_lagging_subscriber_learns_how_many_it_missed_then_gets_the_rest_in_order() {
        let one = event_size(&selection_event(0));
        let subscribers = Subscribers::new(one * 10);
        let rx = subscribers.subscribe();
        for n in 0..25 {
            subscribers.publish(selection_event(n));
        }
        assert!(rx.queued_bytes() <= one * 10);
        assert_eq!(rx.try_recv(), Some(ClientEvent::Lagged { missed: 15 }));
        assert_eq!(rx.try_recv(), Some(selection_event(15)));
        assert_eq!(rx.missed(), 15);
        // Keeping up now: no further gap.
        subscribers.publish(selection_event(25));
        let rest: Vec<ClientEvent> = std::iter::from_fn(|| rx.try_recv()).collect();
        assert_eq!(rest, (16..26).map(selection_event).collect::<Vec<_>>());
        assert_eq!(rx.queued_bytes(), 0);
    }

    /// A topology description of a 1,000-member set whose members share one 1,000-host list
    /// is not counted as a million addresses: its servers are accounted by the events that
    /// changed them.
    #[test]
    fn topology_descriptions_count_their_own_fields_not_the_shared_servers() {
        let hosts: Vec<ServerAddress> = (0..1000)
            .map(|i| ServerAddress::tcp(&format!("member-{i}.example.com"), 27017).unwrap())
            .collect();
        let list = sdam::AddressList::new(hosts.clone());
        let mut td = TopologyDescription::new(sdam::TopologyType::ReplicaSetNoPrimary);
        for h in hosts {
            let mut sd = ServerDescription::unknown(h);
            sd.hosts = list.clone();
            td.insert_server(sd);
        }
        let size = topology_size(&td);
        assert!(size < 16 * 1024, "{size}");
        let one = td.servers.iter().next().unwrap();
        assert!(
            server_size(one) > 1000 * size_of::<ServerAddress>(),
            "a server's own change counts its lists"
        );
    }

    #[test]
    fn an_event_larger_than_the_bound_is_still_delivered_alone() {
        let subscribers = Subscribers::new(10);
        let rx = subscribers.subscribe();
        subscribers.publish(selection_event(0));
        subscribers.publish(selection_event(1));
        assert_eq!(rx.queued_events(), 1);
        assert_eq!(rx.try_recv(), Some(ClientEvent::Lagged { missed: 1 }));
        assert_eq!(rx.try_recv(), Some(selection_event(1)));
    }

    #[test]
    fn close_ends_after_the_queued_events_and_dropped_subscribers_are_forgotten() {
        let subscribers = Subscribers::new(DEFAULT_EVENT_BUFFER_BYTES);
        let rx = subscribers.subscribe();
        let gone = subscribers.subscribe();
        drop(gone);
        subscribers.publish(selection_event(0));
        assert!(subscribers.has_subscribers());
        subscribers.close();
        assert!(!rx.is_finished());
        assert_eq!(rx.recv_blocking(None), Some(selection_event(0)));
        assert_eq!(rx.recv_blocking(None), None);
        assert!(rx.is_finished());
        assert!(subscribers.subscribe().is_finished(), "subscribing after close ends at once");
    }

    #[test]
    fn blocking_receives_wait_for_a_publish_or_the_deadline() {
        let subscribers = Arc::new(Subscribers::new(DEFAULT_EVENT_BUFFER_BYTES));
        let rx = subscribers.subscribe();
        assert_eq!(rx.recv_blocking(Some(Instant::now() + Duration::from_millis(20))), None);
        let publisher = Arc::clone(&subscribers);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            publisher.publish(selection_event(1));
        });
        assert_eq!(rx.recv_blocking(None), Some(selection_event(1)));
        t.join().unwrap();
    }
}
