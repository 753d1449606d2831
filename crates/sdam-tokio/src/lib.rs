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

#![warn(missing_docs)]

mod connection;
mod dns;
mod driver;
mod events;
#[cfg(feature = "tls")]
mod tls;

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sdam::selection::{SelectionCriteria, SelectionError, SelectionOptions, SelectionPoll};
use sdam::{ApplicationError, ConnectionString, Input, ServerAddress, ServerDescription, ServerType};
use sdam::{TopologyConfig, TopologyDescription};
use tokio::task::JoinHandle;

use crate::driver::{Driver, Shared};
pub use crate::events::{ClientEvent, Subscription};
#[cfg(feature = "tls")]
pub use crate::tls::TlsOptions;

/// Settings of the adapter itself (the topology's are in [`TopologyConfig`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// TLS for monitoring connections; `None`: plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<TlsOptions>,
    /// How many events a subscriber may fall behind before it skips the oldest.
    pub event_capacity: usize,
    /// The largest reply frame accepted on a monitoring connection; a larger one closes the
    /// connection and fails the check.
    pub max_message_size: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            #[cfg(feature = "tls")]
            tls: None,
            event_capacity: 4096,
            max_message_size: sdam_wire::DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// Why a client could not be created.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is one the spec forbids.
    Config(sdam::ConfigError),
    /// The connection string is invalid.
    ConnectionString(sdam::ConnectionStringError),
    /// The connection string asks for something this build cannot do (e.g. TLS without the
    /// `tls` feature).
    Unsupported(String),
    /// The TLS settings are unusable (an unreadable CA file, ...).
    Tls(String),
    /// Not called from within a tokio runtime.
    NoRuntime,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid topology configuration: {e}"),
            Self::ConnectionString(e) => write!(f, "invalid connection string: {e}"),
            Self::Unsupported(e) | Self::Tls(e) => f.write_str(e),
            Self::NoRuntime => f.write_str("sdam-tokio clients must be created inside a tokio runtime"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::ConnectionString(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a server selection failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SelectError {
    /// The core's verdict: timed out, incompatible topology or invalid read preference, with
    /// each server's reason.
    Selection(Box<SelectionError>),
    /// The client was closed.
    Closed,
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Selection(e) => e.fmt(f),
            Self::Closed => f.write_str("the client was closed"),
        }
    }
}

impl std::error::Error for SelectError {}

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
    pub fn with_options(mut config: TopologyConfig, options: ClientOptions) -> Result<Self, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        if config.rng_seed == 0 {
            config.rng_seed = std::collections::hash_map::RandomState::new().build_hasher().finish() | 1;
        }
        let settings = connection::Settings {
            max_message_size: options.max_message_size,
            request_ids: AtomicI32::new(1),
            #[cfg(feature = "tls")]
            tls: options.tls.as_ref().map(tls::Connector::new).transpose().map_err(Error::Tls)?,
        };
        let topology = sdam::Topology::new(config, driver::now()).map_err(Error::Config)?;
        let shared = Arc::new(Shared::new(topology, options.event_capacity));
        let driver = runtime.spawn(Driver::new(Arc::clone(&shared), settings).run());
        Ok(Self { inner: Arc::new(Inner { shared, driver: Mutex::new(Some(driver)) }) })
    }

    /// Parses a `mongodb://` or `mongodb+srv://` connection string and starts monitoring it
    /// (`tls`, `tlsCAFile` and `tlsAllowInvalidCertificates` need the `tls` feature).
    pub fn from_uri(uri: &str) -> Result<Self, Error> {
        let cs = ConnectionString::parse(uri).map_err(Error::ConnectionString)?;
        let config = TopologyConfig::from_connection_string(&cs);
        #[allow(unused_mut)]
        let mut options = ClientOptions::default();
        if cs.tls_enabled() {
            #[cfg(feature = "tls")]
            {
                let o = cs.options();
                options.tls = Some(TlsOptions {
                    ca_file: o.tls_ca_file.as_ref().map(Into::into),
                    allow_invalid_certificates: o
                        .tls_allow_invalid_certificates
                        .or(o.tls_insecure)
                        .unwrap_or(false),
                });
            }
            #[cfg(not(feature = "tls"))]
            return Err(Error::Unsupported(
                "the connection string asks for TLS, but sdam-tokio was built without its `tls` feature"
                    .into(),
            ));
        }
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
                    return Ok(ServerGuard {
                        shared: Arc::clone(shared),
                        address: chosen.address,
                        description: chosen.description,
                    })
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
        let description = self.description();
        description
            .servers
            .iter()
            .filter(|sd| sd.server_type != ServerType::Unknown)
            .map(|sd| sd.address.clone())
            .collect()
    }

    /// Subscribes to the events published from now on.
    pub fn subscribe(&self) -> Subscription {
        let events = self.inner.shared.events.lock().unwrap_or_else(PoisonError::into_inner);
        Subscription::new(events.as_ref().map(tokio::sync::broadcast::Sender::subscribe))
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

/// A selected server. Dropping it tells the topology the operation on it ended (for the
/// in-window choice by operation count).
#[derive(Debug)]
pub struct ServerGuard {
    shared: Arc<Shared>,
    address: ServerAddress,
    description: Arc<ServerDescription>,
}

impl ServerGuard {
    /// The server's address.
    pub fn address(&self) -> &ServerAddress {
        &self.address
    }

    /// The server's description when it was selected.
    pub fn description(&self) -> &Arc<ServerDescription> {
        &self.description
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.shared.handle(Input::OperationFinished(self.address.clone()));
    }
}
