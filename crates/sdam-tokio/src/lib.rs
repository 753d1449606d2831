//! # sdam-tokio
//!
//! The tokio adapter for the [`sdam`] core: it opens the monitoring connections the core asks
//! for, sends its hellos as OP_MSG (with `sdam-wire`), reports replies, failures and round-trip
//! times, performs its DNS lookups, sleeps until its next deadline and wakes waiting server
//! selections. It contains no SDAM rule: every decision is the core's.
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
//! owning its socket; [`Client::close`] returns once every task and socket is gone.
//!
//! `mongodb+srv` lookups use hickory-resolver (the default `dns` feature; without it
//! `mongodb+srv` is refused) at the system's name servers or those of [`ClientOptions::dns`].
//! Each [`Subscription`] queues at most [`ClientOptions::event_buffer_bytes`] of events; one
//! that falls behind receives a [`ClientEvent::Lagged`] with the number it missed.
//!
//! The runtime-independent types ([`ClientEvent`], [`Error`], [`SelectError`], [`ServerGuard`],
//! [`TlsOptions`]) come from `sdam-adapter` and are the same types as `sdam-std`'s.

#![warn(missing_docs)]

mod connection;
#[cfg(feature = "dns")]
mod dns;
mod driver;
mod events;
#[cfg(feature = "tls")]
mod tls;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sdam::selection::{SelectionCriteria, SelectionOptions, SelectionPoll};
use sdam::{ApplicationError, Input, ServerAddress};
use sdam::{TopologyConfig, TopologyDescription};
use tokio::task::JoinHandle;

use crate::driver::{Driver, Shared};
pub use crate::events::Subscription;
#[cfg(feature = "dns")]
pub use sdam_adapter::DnsOptions;
#[cfg(feature = "tls")]
pub use sdam_adapter::TlsOptions;
pub use sdam_adapter::{ClientEvent, Error, SelectError, ServerGuard};

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
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            #[cfg(feature = "tls")]
            tls: None,
            event_buffer_bytes: sdam_adapter::subscribers::DEFAULT_EVENT_BUFFER_BYTES,
            max_message_size: sdam_wire::DEFAULT_MAX_MESSAGE_SIZE,
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
    /// down; must be called inside a tokio runtime. An `rng_seed` of 0 is replaced by a random
    /// one from the operating system.
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
        if config.rng_seed == 0 {
            config.rng_seed = sdam_adapter::random_seed();
        }
        sdam_adapter::environment::detect_environment(&mut config.metadata);
        let settings = connection::Settings {
            max_message_size: options.max_message_size,
            request_ids: AtomicI32::new(1),
            #[cfg(feature = "tls")]
            tls: options.tls.as_ref().map(tls::Connector::new).transpose().map_err(Error::Tls)?,
        };
        let topology = sdam::Topology::new(config, driver::now()).map_err(Error::Config)?;
        let shared = Arc::new(Shared::new(topology, options.event_buffer_bytes));
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

    /// Parses a `mongodb://` or `mongodb+srv://` connection string and starts monitoring it
    /// (`tls`, `tlsCAFile` and `tlsAllowInvalidCertificates` need the `tls` feature).
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        let (config, tls) = sdam_adapter::config_from_uri(uri)?;
        #[cfg(feature = "tls")]
        let options = ClientOptions { tls, ..ClientOptions::default() };
        #[cfg(not(feature = "tls"))]
        if tls.is_some() {
            return Err(Error::Unsupported(
                "the connection string asks for TLS, but sdam-tokio was built without its `tls` feature"
                    .into(),
            ));
        }
        #[cfg(not(feature = "tls"))]
        let options = ClientOptions::default();
        Self::with_options(config, options)
    }

    /// Selects a server for `criteria`, waiting (up to serverSelectionTimeoutMS) for the
    /// topology to offer one. The returned guard counts one operation on the server until it
    /// is dropped.
    pub async fn select_server(&self, criteria: SelectionCriteria) -> Result<ServerGuard, SelectError> {
        let shared = &self.inner.shared;
        let timeout = shared.topology().config().server_selection_timeout;
        let mut selection = sdam::selection::Selection::new(
            criteria,
            SelectionOptions::default().with_timeout(timeout),
            driver::now(),
        );
        let mut woken = shared.selections.subscribe();
        loop {
            woken.borrow_and_update();
            let (poll, events) = {
                let mut topology = shared.topology();
                if topology.is_closed() {
                    return Err(SelectError::Closed);
                }
                let poll = topology.select(&mut selection, driver::now());
                (poll, std::iter::from_fn(|| selection.poll_event()).collect::<Vec<_>>())
            };
            for event in events {
                shared.publish(ClientEvent::Selection(event));
            }
            match poll {
                SelectionPoll::Selected(chosen) => {
                    return Ok(ServerGuard::new(Arc::clone(shared) as _, chosen.address, chosen.description))
                }
                SelectionPoll::Failed(error) => return Err(SelectError::Selection(error)),
                SelectionPoll::Wait { until, .. } => {
                    // The core may have asked its monitors for an immediate check.
                    shared.wake_driver.notify_one();
                    tokio::select! {
                        _ = woken.changed() => {}
                        () = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
                    }
                }
                _ => return Err(SelectError::Closed),
            }
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
