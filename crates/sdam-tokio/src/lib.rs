//! # sdam-tokio
//!
//! The tokio adapter for the [`sdam`] core: it opens the monitoring connections the core asks
//! for, sends its hellos as OP_MSG (with `sdam-wire`), reports replies, failures and round-trip
//! times, performs its DNS lookups, sleeps until its next deadline, publishes the selection
//! snapshot and hands waiting selections their outcomes. It contains no SDAM rule: every
//! decision is the core's.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sdam::selection::SelectionCriteria;
//!
//! let client = sdam_tokio::Client::from_uri("mongodb://db1.example.com,db2.example.com/?replicaSet=rs0")?;
//! let server = client.select_server(SelectionCriteria::write()).await?;
//! println!("writes go to {}", server.address());
//! drop(server); // the operation is over
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! One driver task owns the [`sdam::Topology`]; each monitoring (and RTT) connection is a task
//! owning its socket (directly or through a SOCKS5 proxy, then TLS) and running on
//! `sdam_wire::MonitorConnection`, each step by one overall deadline (connect + TLS + hello
//! within connectTimeoutMS); [`Client::close`] returns once every task and socket is gone.
//!
//! `mongodb+srv` lookups use hickory-resolver (the default `dns` feature; without it
//! `mongodb+srv` is refused) at the system's name servers or those of [`ClientOptions::dns`].
//! Each [`Subscription`] queues at most [`ClientOptions::event_buffer_bytes`] of events; one
//! that falls behind receives a [`ClientEvent::Lagged`] with the number it missed.
//!
//! The runtime-independent types ([`ClientEvent`], [`Error`], [`SelectError`], [`ServerGuard`],
//! [`ProxyOptions`], `TlsOptions`) come from `sdam-adapter` and are the same types as `sdam-std`'s.
#![cfg_attr(docsrs, feature(doc_cfg))] // feature badges on docs.rs (nightly); stable never sets `docsrs`
#![warn(missing_docs)]

mod connection;
#[cfg(feature = "dns")]
mod dns;
mod driver;
mod events;
#[cfg(feature = "tls")]
mod tls;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use sdam::selection::{SelectionCriteria, SelectionOptions};
use sdam::{ApplicationError, Input, ServerAddress};
use sdam::{TopologyConfig, TopologyDescription};
use tokio::task::JoinHandle;

use crate::driver::{Driver, Shared};
pub use crate::events::Subscription;
#[cfg(feature = "dns")]
pub use sdam_adapter::DnsOptions;
#[cfg(feature = "tls")]
pub use sdam_adapter::TlsOptions;
pub use sdam_adapter::{ClientEvent, Error, ProxyOptions, SelectError, ServerGuard};

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

/// A selection handed to the core; dropping it before the outcome (the caller's future was
/// dropped) cancels the selection, and ends the operation of an outcome that arrived too late.
struct Waiting<'a> {
    shared: &'a Shared,
    id: sdam::selection::SelectionId,
    outcome: tokio::sync::oneshot::Receiver<driver::Outcome>,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        {
            let mut topology = self.shared.topology();
            topology.cancel_selection(self.id);
            self.shared.waiters.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.id);
        }
        self.outcome.close();
        if let Ok(Ok(mut selected)) = self.outcome.try_recv() {
            selected.finish_operation();
        }
    }
}

/// Settings of the adapter itself (the topology's are in [`TopologyConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// TLS for monitoring connections; `None`: plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsOptions>,
    /// The most bytes of events each subscription queues (as
    /// [`event_size`](sdam_adapter::subscribers::event_size) accounts them, a heartbeat's
    /// whole reply included) before it drops its oldest and reports a
    /// [`ClientEvent::Lagged`]. Default 16 MiB.
    pub event_buffer_bytes: usize,
    /// Where `mongodb+srv` lookups go (default: the system's resolver configuration).
    #[cfg(feature = "dns")]
    pub dns: DnsOptions,
    /// The largest reply frame accepted on a monitoring connection; a larger one closes the
    /// connection and fails the check.
    pub max_message_size: usize,
    /// A SOCKS5 proxy for every monitoring connection (`proxyHost`, ...); `None`: direct.
    pub proxy: Option<ProxyOptions>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            #[cfg(feature = "tls")]
            tls: None,
            event_buffer_bytes: sdam_adapter::subscribers::DEFAULT_EVENT_BUFFER_BYTES,
            max_message_size: sdam_wire::DEFAULT_MAX_MESSAGE_SIZE,
            proxy: None,
            #[cfg(feature = "dns")]
            dns: DnsOptions::default(),
        }
    }
}

/// Counters for tests and overhead measurements; not a stable interface.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriverStats {
    /// How often the driver task woke up (each return from its wait).
    pub wakeups: u64,
    /// Tasks of this client still alive (the driver, connections, lookups).
    pub live_tasks: usize,
    /// Monitoring and RTT sockets open.
    pub open_connections: usize,
    /// Hello commands handed to connections.
    pub hellos_sent: u64,
}

/// A handle to one monitored topology. Cheap to clone; all clones share it. Dropping the last
/// one closes the topology in the background; [`close`](Self::close) waits for that.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    driver: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: stop monitoring (the driver exits on its own).
        self.shared.handle(Input::Close);
    }
}

impl Client {
    /// Starts monitoring `config`'s seeds. Never blocks and never fails because a server is
    /// down; must be called inside a tokio runtime. Without an `rng_seed` the core seeds its
    /// generator from the operating system.
    pub fn new(config: TopologyConfig) -> Result<Self, Error> {
        Self::with_options(config, ClientOptions::default())
    }

    /// [`new`](Self::new) with adapter options.
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
        #[cfg(not(feature = "dns"))]
        sdam_adapter::refuse_srv_without_dns(&config, "sdam-tokio")?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        sdam_adapter::environment::detect_environment(&mut config.metadata);
        let settings = connection::Settings {
            max_message_size: options.max_message_size,
            proxy: options.proxy.clone(),
            #[cfg(feature = "tls")]
            tls: options.tls.as_ref().map(tls::Connector::new).transpose().map_err(Error::Tls)?,
        };
        let topology = sdam::Topology::new(config, driver::now()).map_err(Error::Config)?;
        let shared = Arc::new(Shared::new(topology, options.event_buffer_bytes));
        // Selection log events are built once someone can see them: a subscriber, or tracing.
        if subscribe || cfg!(feature = "tracing") {
            shared.subscribed.store(true, Ordering::Relaxed);
        }
        let events = subscribe.then(|| Subscription::new(shared.events.subscribe()));
        let driver = runtime.spawn(
            Driver::new(
                Arc::clone(&shared),
                settings,
                #[cfg(feature = "dns")]
                options.dns,
            )
            .run(),
        );
        Ok((Self { inner: Arc::new(Inner { shared, driver: Mutex::new(Some(driver)) }) }, events))
    }

    /// Parses a `mongodb://` or `mongodb+srv://` connection string and starts monitoring it:
    /// the topology, TLS (the `tls` feature: `tls`, `tlsCAFile`, `tlsCertificateKeyFile`,
    /// `tlsCertificateKeyFilePassword`, `tlsAllowInvalidCertificates`,
    /// `tlsAllowInvalidHostnames`, `tlsInsecure`) and a SOCKS5 proxy (`proxyHost`, ...). An
    /// option that changes how or where monitoring connections connect and cannot be honoured
    /// is an error naming it (see [`sdam_adapter::config_from_uri`]).
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        let settings = sdam_adapter::config_from_uri(uri)?;
        #[cfg(not(feature = "tls"))]
        if settings.tls.is_some() {
            return Err(Error::Unsupported(
                "the connection string asks for TLS, but sdam-tokio was built without its `tls` feature"
                    .into(),
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

    /// Selects a server for `criteria`, waiting (up to serverSelectionTimeoutMS) for the
    /// topology to offer one. The returned guard counts one operation on the server until it
    /// is dropped. The operation is named `selectServer` in the selection log events; see
    /// [`select_server_with`](Self::select_server_with).
    pub async fn select_server(&self, criteria: SelectionCriteria) -> Result<ServerGuard, SelectError> {
        self.select(criteria, || SelectionOptions::new("selectServer")).await
    }

    /// [`select_server`](Self::select_server) with the operation's name and id for the log
    /// events, or its own timeout (`None`: serverSelectionTimeoutMS).
    ///
    /// A server that can be chosen now is chosen from the published snapshot without the
    /// driver's lock, so tasks on every worker select at once. A selection that must wait is
    /// handed to the core, which owns the waiting (deadline, immediate checks, retries); the
    /// task awaits its outcome. Every call is a cooperative-scheduling point (it consumes
    /// tokio's task budget), so a task selecting in a loop cannot starve the driver.
    pub async fn select_server_with(
        &self,
        criteria: SelectionCriteria,
        options: SelectionOptions,
    ) -> Result<ServerGuard, SelectError> {
        self.select(criteria, || options).await
    }

    /// Both selections; `options` is made only when it is needed (logging or waiting), so an
    /// immediate selection allocates nothing.
    async fn select(
        &self,
        criteria: SelectionCriteria,
        options: impl FnOnce() -> SelectionOptions,
    ) -> Result<ServerGuard, SelectError> {
        // #15: a tight loop of immediate selections yields when its budget is spent.
        tokio::task::consume_budget().await;
        let shared = &self.inner.shared;
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
        let (tx, rx) = tokio::sync::oneshot::channel();
        let id = {
            let mut topology = shared.topology();
            if topology.is_closed() {
                // The driver is gone (or going): nobody would deliver an outcome.
                return Err(SelectError::Closed);
            }
            let id = topology.start_selection(criteria, options.make(), driver::now());
            shared.waiters.lock().unwrap_or_else(PoisonError::into_inner).insert(id, tx);
            id
        };
        shared.wake_driver.notify_one();
        let mut waiting = Waiting { shared, id, outcome: rx, done: false };
        let outcome = (&mut waiting.outcome).await;
        waiting.done = true;
        match outcome {
            Ok(Ok(selected)) => Ok(ServerGuard::new(selected)),
            Ok(Err(error)) => Err(SelectError::from(error)),
            // The driver is gone.
            Err(_) => Err(SelectError::Closed),
        }
    }

    /// The current topology description (an immutable snapshot).
    pub fn description(&self) -> Arc<TopologyDescription> {
        self.inner.shared.topology().description()
    }

    /// The servers whose type is known (not Unknown).
    pub fn nodes(&self) -> Vec<ServerAddress> {
        sdam_adapter::known_servers(&self.description())
    }

    /// Subscribes to the events published from now on.
    pub fn subscribe(&self) -> Subscription {
        self.inner.shared.subscribed.store(true, Ordering::Relaxed);
        Subscription::new(self.inner.shared.events.subscribe())
    }

    /// appendMetadata (handshake.md): appends a wrapping library's name, version and
    /// platform to the handshake metadata of connections opened from now on. `Ok(false)` if
    /// that driver info was appended before; an error if a field contains `|`.
    pub fn append_metadata(&self, info: sdam::DriverInfo) -> Result<bool, sdam::MetadataError> {
        self.inner.shared.topology().append_metadata(info)
    }

    /// The handshake's `client` document (at most 512 bytes), as monitoring connections send
    /// it: for the handshakes of a driver's own connection pool.
    pub fn client_metadata(&self) -> bson::Document {
        self.inner.shared.topology().client_metadata().clone()
    }

    /// The connection pool generation of `address` now (`None`: not in the topology). Record
    /// it on each application connection when it opens and build that connection's errors
    /// with it ([`ApplicationError::new`]), so an error from a connection older than the
    /// last pool clear is ignored (SDAM, "isStaleError").
    pub fn pool_generation(&self, address: &ServerAddress) -> Option<u32> {
        self.inner.shared.topology().pool_generation(address)
    }

    /// Reports an error an application operation saw (SDAM "Application errors").
    pub fn report_error(&self, error: ApplicationError) {
        self.inner.shared.handle(Input::ApplicationError(error));
    }

    /// Asks every monitor for an immediate check (throttled by minHeartbeatFrequencyMS).
    pub fn request_check(&self) {
        self.inner.shared.handle(Input::RequestImmediateCheck);
    }

    /// Closes the topology: publishes the closing events (`ServerClosed` for each server, then
    /// `TopologyClosed`), and returns once every task and socket of this client is gone.
    /// Waiting selections fail with [`SelectError::Closed`]. Closing twice is harmless.
    pub async fn close(&self) {
        self.inner.shared.handle(Input::Close);
        let driver = self.inner.driver.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(driver) = driver {
            let _ = driver.await;
        } else {
            // Another close is awaiting the driver: wait for the same end.
            let stats = &self.inner.shared.stats;
            while stats.live_tasks.load(Ordering::SeqCst) > 0 {
                let mut woken = self.inner.shared.selections.subscribe();
                if stats.live_tasks.load(Ordering::SeqCst) == 0 {
                    break;
                }
                let _ = woken.changed().await;
            }
        }
    }

    #[doc(hidden)]
    /// Counters for tests and overhead measurements.
    pub fn driver_stats(&self) -> DriverStats {
        let stats = &self.inner.shared.stats;
        DriverStats {
            wakeups: stats.wakeups.load(Ordering::Relaxed),
            live_tasks: stats.live_tasks.load(Ordering::SeqCst),
            open_connections: stats.open_connections.load(Ordering::SeqCst),
            hellos_sent: stats.hellos_sent.load(Ordering::Relaxed),
        }
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
