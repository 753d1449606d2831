//! The client handle: construction, server selection, snapshots, events, errors, close.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use sdam::selection::{SelectionCriteria, SelectionOptions};
use sdam::{ApplicationError, Input, ServerAddress, Topology, TopologyConfig, TopologyDescription};

use crate::driver::Driver;
use crate::events::Subscription;
use crate::shared::Shared;
use crate::{ClientOptions, Error, SelectError, ServerGuard};

/// Selection options, made only when needed.
enum Lazy<F> {
    Later(F),
    Made(SelectionOptions),
}

impl<F: FnOnce() -> SelectionOptions> Lazy<F> {
    /// The options (made now if they were not yet).
    fn make(self) -> SelectionOptions {
        match self {
            Self::Later(f) => f(),
            Self::Made(options) => options,
        }
    }
}

/// A blocking SDAM client: one driver thread owns the topology's schedule, one thread per
/// monitoring (and RTT) connection does the I/O. Cheap to clone; the last clone dropped
/// closes it.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let core = self.handle.shared.lock();
        f.debug_struct("Client")
            .field("topology_id", &core.topology.id())
            .field("closed", &core.topology.is_closed())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    driver: Mutex<Option<JoinHandle<()>>>,
}

impl Handle {
    fn close(&self) {
        // Held while joining, so a concurrent close() returns only once everything is gone.
        let mut driver = self.driver.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(thread) = driver.take() {
            self.shared.handle(Input::Close);
            // Waiting selections get their TopologyClosed outcome from the driver as soon as it
            // drains the close, before it joins the connection threads.
            let _ = thread.join();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.close();
    }
}

impl Client {
    /// Starts monitoring the configured seeds. Never blocks and never fails because a server
    /// is down; fails only on a configuration the spec forbids.
    pub fn new(config: TopologyConfig) -> Result<Self, Error> {
        Self::with_options(config, ClientOptions::default())
    }

    /// [`Client::new`] with TLS and other adapter options.
    ///
    /// Unless `config.metadata` sets `env` or `container`, the handshake's `client.env` is
    /// read from the process environment ([`sdam_adapter::environment`]): on AWS Lambda,
    /// Azure Functions, GCP or Vercel, `serverMonitoringMode=auto` then polls.
    pub fn with_options(config: TopologyConfig, options: ClientOptions) -> Result<Self, Error> {
        Self::start(config, options, false).map(|(client, _)| client)
    }

    /// [`with_options`](Self::with_options), with a subscription made before monitoring
    /// starts: it sees every event from `TopologyOpening` on (one made with
    /// [`subscribe`](Self::subscribe) after construction may miss the first events).
    pub fn with_subscription(
        config: TopologyConfig,
        options: ClientOptions,
    ) -> Result<(Self, Subscription), Error> {
        Self::start(config, options, true)
            .map(|(client, events)| (client, events.expect("subscribed at start")))
    }

    fn start(
        mut config: TopologyConfig,
        options: ClientOptions,
        subscribe: bool,
    ) -> Result<(Self, Option<Subscription>), Error> {
        sdam_adapter::environment::detect_environment(&mut config.metadata);
        #[cfg(feature = "tls")]
        let tls =
            options.tls.as_ref().map(sdam_adapter::tls::client_config).transpose().map_err(Error::Tls)?;
        #[cfg(not(feature = "tls"))]
        let tls = crate::connection::TlsContext;
        let settings = crate::connection::Settings {
            tls,
            max_message_size: options.max_message_size,
            proxy: options.proxy.clone(),
        };
        #[cfg(not(feature = "dns"))]
        sdam_adapter::refuse_srv_without_dns(&config, "sdam-std")?;
        let topology = Topology::new(config, Instant::now())?;
        let shared = Arc::new(Shared::new(topology, options.event_buffer_bytes));
        // Selection log events are built once someone can see them: a subscriber, or tracing.
        if subscribe || cfg!(feature = "tracing") {
            shared.subscribed.store(true, Ordering::Relaxed);
        }
        let events = subscribe.then(|| Subscription::new(shared.subscribers.subscribe()));
        let driver = Driver::new(
            Arc::clone(&shared),
            settings,
            #[cfg(feature = "dns")]
            options.dns,
        );
        let thread = shared.spawn("sdam-driver".to_owned(), move || driver.run())?;
        let handle = Arc::new(Handle { shared, driver: Mutex::new(Some(thread)) });
        Ok((Self { handle }, events))
    }

    /// A client for a `mongodb://` or `mongodb+srv://` connection string: the topology, TLS
    /// (with the `tls` feature: `tls`, `tlsCAFile`, `tlsCertificateKeyFile`,
    /// `tlsCertificateKeyFilePassword`, `tlsAllowInvalidCertificates`,
    /// `tlsAllowInvalidHostnames`, `tlsInsecure`) and a SOCKS5 proxy (`proxyHost`, ...). An
    /// option that changes how or where monitoring connections connect and cannot be honoured
    /// is an error naming it (see [`sdam_adapter::config_from_uri`]); so is a Unix domain
    /// socket host.
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        let settings = sdam_adapter::config_from_uri(uri)?;
        if let Some(unix) = settings.topology.seeds.iter().find(|s| matches!(s, ServerAddress::Unix { .. })) {
            return Err(Error::Unsupported(format!(
                "{unix}: sdam-std cannot connect to Unix domain sockets"
            )));
        }
        #[cfg(not(feature = "tls"))]
        if settings.tls.is_some() {
            return Err(Error::Unsupported(
                "the connection string asks for TLS; build sdam-std with the `tls` feature".into(),
            ));
        }
        let options = ClientOptions {
            #[cfg(feature = "tls")]
            tls: settings.tls,
            proxy: settings.proxy,
            ..ClientOptions::default()
        };
        Self::with_options(settings.topology, options)
    }

    /// Selects a server for `criteria`, waiting up to serverSelectionTimeoutMS for a suitable
    /// one. The returned guard counts as an operation in progress until it is dropped. The
    /// operation is named `selectServer` in the selection log events; see
    /// [`select_server_with`](Self::select_server_with).
    pub fn select_server(&self, criteria: SelectionCriteria) -> Result<ServerGuard, SelectError> {
        self.select(criteria, || SelectionOptions::new("selectServer"))
    }

    /// [`select_server`](Self::select_server) with the operation's name and id for the log
    /// events, or its own timeout (`None`: serverSelectionTimeoutMS).
    ///
    /// A server that can be chosen now is chosen from the published snapshot without the
    /// driver's lock, so threads select in parallel. A selection that must wait is handed to
    /// the core, which owns the waiting (deadline, immediate checks, retries); this thread
    /// blocks until its outcome.
    pub fn select_server_with(
        &self,
        criteria: SelectionCriteria,
        options: SelectionOptions,
    ) -> Result<ServerGuard, SelectError> {
        self.select(criteria, || options)
    }

    /// Both selections; `options` is made only when it is needed (logging or waiting), so an
    /// immediate selection allocates nothing.
    fn select(
        &self,
        criteria: SelectionCriteria,
        options: impl FnOnce() -> SelectionOptions,
    ) -> Result<ServerGuard, SelectError> {
        let shared = &self.handle.shared;
        let mut options = Lazy::Later(options);
        if shared.subscribed.load(Ordering::Relaxed) {
            options = Lazy::Made(options.make());
        }
        let mut log = Vec::new();
        let now = shared.snapshot.with(|snapshot, rng| match &options {
            Lazy::Made(options) => snapshot.select_now_logged(&criteria, options, rng, &mut log),
            Lazy::Later(_) => snapshot.select_now(&criteria, rng),
        });
        for event in log {
            shared.publish_selection(event);
        }
        if let Some(selected) = now {
            return Ok(ServerGuard::new(selected));
        }
        // Must wait (or fail with the core's explanation): the core's waiting loop.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        {
            let mut core = shared.lock();
            if core.topology.is_closed() {
                // The driver is gone (or going): nobody would deliver an outcome.
                return Err(SelectError::Closed);
            }
            let id = core.topology.start_selection(criteria, options.make(), Instant::now());
            core.waiters.insert(id, tx);
            // Wakes the driver for the selection's outputs and its deadline.
            let _ = shared.settle(core, None);
        }
        match rx.recv() {
            Ok(Ok(selected)) => Ok(ServerGuard::new(selected)),
            Ok(Err(error)) => Err(SelectError::from(error)),
            // The driver is gone.
            Err(_) => Err(SelectError::Closed),
        }
    }

    /// The current topology description (an immutable snapshot).
    pub fn description(&self) -> Arc<TopologyDescription> {
        self.handle.shared.lock().topology.description()
    }

    /// The servers whose type is not Unknown.
    pub fn nodes(&self) -> Vec<ServerAddress> {
        sdam_adapter::known_servers(&self.description())
    }

    /// Subscribes to the client's events from now on.
    pub fn subscribe(&self) -> Subscription {
        self.handle.shared.subscribed.store(true, Ordering::Relaxed);
        Subscription::new(self.handle.shared.subscribers.subscribe())
    }

    /// appendMetadata (handshake.md): appends a wrapping library's name, version and
    /// platform to the handshake metadata of connections opened from now on. `Ok(false)` if
    /// that driver info was appended before; an error if a field contains `|`.
    pub fn append_metadata(&self, info: sdam::DriverInfo) -> Result<bool, sdam::MetadataError> {
        self.handle.shared.lock().topology.append_metadata(info)
    }

    /// The handshake's `client` document (at most 512 bytes), as monitoring connections send
    /// it: for the handshakes of a driver's own connection pool.
    pub fn client_metadata(&self) -> bson::Document {
        self.handle.shared.lock().topology.client_metadata().clone()
    }

    /// The connection pool generation of `address` now (`None`: not in the topology). Record
    /// it on each application connection when it opens and build that connection's errors
    /// with it ([`ApplicationError::new`]), so an error from a connection older than the
    /// last pool clear is ignored (SDAM, "isStaleError").
    pub fn pool_generation(&self, address: &ServerAddress) -> Option<u32> {
        self.handle.shared.lock().topology.pool_generation(address)
    }

    /// Reports an error an application operation saw on a server's connection.
    pub fn report_error(&self, error: ApplicationError) {
        self.handle.shared.handle(Input::ApplicationError(error));
    }

    /// Asks for every server to be checked as soon as the monitors allow.
    pub fn request_check(&self) {
        self.handle.shared.handle(Input::RequestImmediateCheck);
    }

    /// Closes the client: publishes `ServerClosed` for each server and `TopologyClosed`
    /// last, then returns once every thread has ended and every socket is closed.
    /// Subscriptions end after the last event; selections fail with [`SelectError::Closed`].
    pub fn close(&self) {
        self.handle.close();
    }

    /// Threads of this client still running (the driver, connections, DNS).
    #[cfg(test)]
    pub(crate) fn live_threads(&self) -> usize {
        self.handle.shared.live_threads()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientEvent;
    use sdam_testserver::{MemberSpec, ReplicaSet, Role};
    use std::time::Duration;

    fn wait(what: &str, mut check: impl FnMut() -> bool) {
        let start = Instant::now();
        while !check() {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn close_joins_every_thread_and_closes_every_socket() {
        let set = ReplicaSet::builder("rs0")
            .member(MemberSpec::new(Role::Primary))
            .member(MemberSpec::new(Role::Secondary))
            .member(MemberSpec::new(Role::Secondary).streaming(false))
            .start()
            .unwrap();
        let mut config = TopologyConfig::with_seeds(set.addresses());
        config.replica_set_name = Some("rs0".into());
        config.heartbeat_frequency = Duration::from_millis(500);
        let client = Client::new(config).unwrap();
        let clone = client.clone();
        wait("discovery", || client.nodes().len() == 3);
        // Streaming members get an RTT connection a heartbeat later.
        wait("monitoring and RTT connections", || set.total_open_connections() >= 5);
        assert!(client.live_threads() >= 6, "driver + one thread per connection: {}", client.live_threads());
        let events = client.subscribe();
        clone.close();
        assert_eq!(client.live_threads(), 0, "close() returns after every thread ended");
        wait("server-side connections to close", || set.total_open_connections() == 0);
        // The last SDAM event (its log message, "Stopped topology monitoring", follows it).
        let last = events.into_iter().filter(|e| matches!(e, ClientEvent::Sdam(_))).last();
        assert!(matches!(last, Some(ClientEvent::Sdam(sdam::Event::TopologyClosed { .. }))), "{last:?}");
        assert!(matches!(client.select_server(SelectionCriteria::write()), Err(SelectError::Closed)));
        client.close(); // idempotent
    }

    /// server-selection.md, "Logging": when a waiting selection's caller gets its outcome,
    /// the selection's last log event and message ("Server selection failed") were already
    /// published, as the unified tests check right after the operation (the core outputs
    /// them before the outcome; the driver hands them over in that order).
    #[test]
    fn waiting_selection_outcome_follows_its_log_messages() {
        let config = TopologyConfig::with_seeds([ServerAddress::parse("127.0.0.1:1").unwrap()]);
        let (client, events) = Client::with_subscription(config, ClientOptions::default()).unwrap();
        for i in 0..20 {
            let options =
                SelectionOptions::new("insert").with_operation_id(i).with_timeout(Duration::from_millis(5));
            let error = client.select_server_with(SelectionCriteria::write(), options).unwrap_err();
            assert!(!matches!(error, SelectError::Closed), "{error:?}");
            let published: Vec<ClientEvent> = std::iter::from_fn(|| events.try_recv()).collect();
            let last_log = published.iter().rev().find_map(|e| match e {
                ClientEvent::Log(m) if m.component == sdam::logging::LogComponent::ServerSelection => {
                    Some(m.message)
                }
                _ => None,
            });
            assert_eq!(last_log, Some("Server selection failed"), "selection {i}: {published:?}");
        }
        client.close();
    }

    /// SDAM logging, "Log Messages", and server-selection.md, "Logging": every SDAM event
    /// but ServerDescriptionChanged is followed by its log message, every selection log
    /// event by its own.
    #[test]
    fn log_messages_follow_their_events() {
        let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().unwrap();
        let mut config = TopologyConfig::with_seeds(set.addresses());
        config.replica_set_name = Some("rs0".into());
        let (client, events) = Client::with_subscription(config, ClientOptions::default()).unwrap();
        client.select_server(SelectionCriteria::write()).unwrap();
        client.close();
        let events: Vec<ClientEvent> = events.into_iter().collect();
        let mut expected = 0;
        for pair in events.windows(2) {
            let message = match &pair[0] {
                ClientEvent::Sdam(sdam::Event::ServerDescriptionChanged { .. }) => continue,
                ClientEvent::Sdam(e) => {
                    sdam::logging::topology_message(client_id(&events), e, &Default::default())
                }
                ClientEvent::Selection(e) => Some(sdam::logging::selection_message(e, &Default::default())),
                _ => continue,
            };
            expected += 1;
            assert_eq!(pair[1], ClientEvent::Log(message.unwrap()), "after {:?}", pair[0]);
        }
        let logs: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Log(m) => Some(m.message),
                _ => None,
            })
            .collect();
        assert_eq!(logs.len(), expected);
        for m in ["Starting topology monitoring", "Server heartbeat succeeded", "Server selection succeeded"]
        {
            assert!(logs.contains(&m), "{m} missing from {logs:?}");
        }
        assert_eq!(logs.last(), Some(&"Stopped topology monitoring"));
    }

    fn client_id(events: &[ClientEvent]) -> sdam::TopologyId {
        events
            .iter()
            .find_map(|e| match e {
                ClientEvent::Sdam(sdam::Event::TopologyOpening { topology_id }) => Some(*topology_id),
                ClientEvent::Sdam(sdam::Event::TopologyClosed { topology_id }) => Some(*topology_id),
                _ => None,
            })
            .expect("a topology event")
    }

    #[test]
    fn dropping_the_last_clone_closes() {
        let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().unwrap();
        let client = Client::new(TopologyConfig::with_seeds(set.addresses())).unwrap();
        wait("discovery", || client.nodes().len() == 1);
        let events = client.subscribe();
        drop(client);
        assert!(events
            .into_iter()
            .any(|e| matches!(e, ClientEvent::Sdam(sdam::Event::TopologyClosed { .. }))));
        wait("server-side connections to close", || set.total_open_connections() == 0);
    }

    #[test]
    fn bad_configurations_are_errors() {
        let err = Client::new(TopologyConfig::default()).unwrap_err();
        assert_eq!(err.to_string(), "invalid topology configuration: the seed list is empty");
        let err = Client::from_uri("mongodb://a,b/?directConnection=true").unwrap_err();
        assert!(err.to_string().contains("directConnection"), "{err}");
        assert!(matches!(Client::from_uri("http://a"), Err(Error::ConnectionString(_))));
        let err = Client::from_uri("mongodb://%2Ftmp%2Fmongodb-27017.sock").unwrap_err();
        assert!(err.to_string().contains("cannot connect to Unix domain sockets"), "{err}");
        let err = Client::from_uri("mongodb://a/?tls=maybe").unwrap_err();
        assert!(err.to_string().starts_with("tls: invalid value"), "{err}");
    }

    #[test]
    fn selection_times_out_with_an_explanation() {
        // Nothing listens on this port once the listener is dropped.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut config = TopologyConfig::with_seeds([ServerAddress::tcp("127.0.0.1", port).unwrap()]);
        config.server_selection_timeout = Duration::from_millis(300);
        let client = Client::new(config).unwrap();
        let events = client.subscribe();
        let err = client.select_server(SelectionCriteria::write()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("timed out after 300 ms"), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        let selection_events = events.try_iter_selection();
        assert!(selection_events >= 2, "started and failed log events: {selection_events}");
        client.close();
    }

    /// A real selection's log event and a real heartbeat event from a 1-member set.
    fn real_events(client: &Client) -> (ClientEvent, ClientEvent) {
        let events = client.subscribe();
        client.request_check();
        drop(client.select_server(SelectionCriteria::write()).unwrap());
        let (mut selection, mut heartbeat) = (None, None);
        let start = Instant::now();
        while selection.is_none() || heartbeat.is_none() {
            assert!(start.elapsed() < Duration::from_secs(10), "no selection or heartbeat event");
            match events.recv_timeout(Duration::from_millis(100)) {
                Some(e @ ClientEvent::Selection(_)) => selection = Some(e),
                Some(e @ ClientEvent::Sdam(sdam::Event::ServerHeartbeatSucceeded { .. })) => {
                    heartbeat = Some(e);
                }
                _ => client.request_check(),
            }
        }
        (selection.unwrap(), heartbeat.unwrap())
    }

    /// issue #15: one never-read subscription grew the process to 1.65 GB over 2 M selections
    /// (two ~810-byte selection events each). 2 M selection events through the publishing path
    /// of selections now stay within the subscription's bound, far under 64 MB; the reader
    /// learns how many it missed.
    #[test]
    fn a_never_read_subscription_stays_bounded_over_2m_selection_events() {
        let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().unwrap();
        let client = Client::new(TopologyConfig::with_seeds(set.addresses())).unwrap();
        let never_read = client.subscribe();
        let (selection, _) = real_events(&client);
        let size = sdam_adapter::subscribers::event_size(&selection);
        // ~220 bytes with one member (~810 with the 3-member sets of the report): 2 M of them
        // unbounded would be over 400 MB.
        assert!(size > 150, "a selection event accounts for its strings: {size}");
        let shared = &client.handle.shared;
        let mut peak = 0;
        for i in 0..2_000_000u32 {
            shared.subscribers.publish(selection.clone());
            if i % 65_536 == 0 {
                peak = peak.max(never_read.queued_bytes());
            }
        }
        peak = peak.max(never_read.queued_bytes());
        assert!(peak < 64 << 20, "queued {peak} bytes");
        assert!(peak <= shared.subscribers.max_bytes(), "queued {peak} bytes");
        let first = never_read.try_recv();
        let Some(ClientEvent::Lagged { missed }) = first else {
            panic!("expected Lagged first, got {first:?}")
        };
        assert!(missed > 1_900_000, "missed {missed}");
        assert_eq!(never_read.missed(), missed);
        client.close();
    }

    /// Heartbeat events carry the whole reply: with 200 KB replies, 4,096 queued events were
    /// 698 MB. Queues are bounded by bytes, so they stay within the bound whatever the size.
    #[test]
    fn large_heartbeat_replies_are_bounded_by_bytes_and_a_lagging_reader_is_told() {
        let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().unwrap();
        let options = ClientOptions { event_buffer_bytes: 4 << 20, ..ClientOptions::default() };
        let client = Client::with_options(TopologyConfig::with_seeds(set.addresses()), options).unwrap();
        let (_, mut heartbeat) = real_events(&client);
        if let ClientEvent::Sdam(sdam::Event::ServerHeartbeatSucceeded { reply, .. }) = &mut heartbeat {
            let padding = "x".repeat(200 * 1024);
            *reply = bson::rawdoc! { "ok": 1, "padding": padding };
        }
        let lagging = client.subscribe();
        for _ in 0..1_000 {
            client.handle.shared.subscribers.publish(heartbeat.clone());
        }
        let queued = lagging.queued_bytes();
        assert!(queued <= 4 << 20, "queued {queued} bytes of 200 KB heartbeats");
        assert!(matches!(lagging.try_recv(), Some(ClientEvent::Lagged { missed }) if missed >= 980));
        assert!(matches!(
            lagging.try_recv(),
            Some(ClientEvent::Sdam(sdam::Event::ServerHeartbeatSucceeded { .. }))
        ));
        client.close();
    }

    #[test]
    fn a_subscription_made_at_construction_sees_topology_opening_first() {
        let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().unwrap();
        let (client, events) =
            Client::with_subscription(TopologyConfig::with_seeds(set.addresses()), ClientOptions::default())
                .unwrap();
        let first = events.recv_timeout(Duration::from_secs(5));
        assert!(matches!(first, Some(ClientEvent::Sdam(sdam::Event::TopologyOpening { .. }))), "{first:?}");
        client.close();
    }

    trait CountSelection {
        fn try_iter_selection(&self) -> usize;
    }

    impl CountSelection for Subscription {
        fn try_iter_selection(&self) -> usize {
            std::iter::from_fn(|| self.try_recv()).filter(|e| matches!(e, ClientEvent::Selection(_))).count()
        }
    }
}
