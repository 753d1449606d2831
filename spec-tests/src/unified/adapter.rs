//! The two adapters behind one blocking interface, and the log of what a client observed.
//!
//! Each client entity is a real `sdam_tokio::Client` or `sdam_std::Client`, started with a
//! subscription made before its first event ([`with_subscription`](sdam_std::Client::with_subscription)),
//! which its [`EventLog`] drains whenever it is read. The runner's own command monitoring
//! events go into the same log, in the order they happened.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bson::Document;
use sdam::logging::LogMessage;
use sdam::selection::{SelectionCriteria, SelectionOptions};
use sdam::{ApplicationError, TopologyConfig, TopologyDescription};
use sdam_adapter::{ClientEvent, ServerGuard};

/// Which adapter a file runs through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AdapterKind {
    /// `sdam-tokio`.
    Tokio,
    /// `sdam-std`.
    Std,
}

impl AdapterKind {
    /// Both adapters.
    pub const ALL: [Self; 2] = [Self::Tokio, Self::Std];

    /// `tokio` or `std`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tokio => "tokio",
            Self::Std => "std",
        }
    }
}

/// A command monitoring event of the runner's operation executor.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandEvent {
    /// The command was sent.
    Started {
        /// The command as sent.
        command: Document,
        /// Its name.
        name: String,
        /// Its database.
        database: String,
    },
    /// The command's reply was ok.
    Succeeded {
        /// The reply.
        reply: Document,
        /// The command's name.
        name: String,
        /// Its database.
        database: String,
    },
    /// The command failed (an error reply or a network error).
    Failed {
        /// The command's name.
        name: String,
        /// Its database.
        database: String,
    },
}

/// One thing a client entity observed.
#[derive(Debug, Clone)]
pub enum Observed {
    /// An event the adapter published.
    Client(ClientEvent),
    /// A command monitoring event of the runner.
    Command(CommandEvent),
}

/// Where a client's events come from.
enum Source {
    Tokio(sdam_tokio::Subscription),
    Std(sdam_std::Subscription),
    /// Not yet attached.
    None,
}

/// Everything a client entity observed, in order. Reading it first drains the client's
/// subscription, so every event the adapter published before the read is in it (an event
/// published by a call that returned is never missed by an assertion that follows).
pub struct EventLog {
    events: Mutex<Vec<Observed>>,
    source: Mutex<Source>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").finish_non_exhaustive()
    }
}

impl Default for EventLog {
    fn default() -> Self {
        Self { events: Mutex::new(Vec::new()), source: Mutex::new(Source::None) }
    }
}

impl EventLog {
    fn attach(&self, source: Source) {
        *self.source.lock().unwrap_or_else(PoisonError::into_inner) = source;
    }

    /// Moves every event the adapter has published so far into the log; `Err` if the
    /// subscription fell behind and skipped some.
    fn drain(&self) -> Result<(), String> {
        let mut source = self.source.lock().unwrap_or_else(PoisonError::into_inner);
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *source {
            Source::Tokio(sub) => {
                while let Some(e) = sub.try_recv() {
                    events.push(Observed::Client(e));
                }
                if sub.missed() > 0 {
                    return Err(format!("the subscription skipped {} events", sub.missed()));
                }
            }
            Source::Std(sub) => {
                while let Some(e) = sub.try_recv() {
                    events.push(Observed::Client(e));
                }
            }
            Source::None => {}
        }
        Ok(())
    }

    /// Appends one observation of the runner (after the adapter's events so far).
    pub fn push(&self, observed: Observed) {
        let _ = self.drain();
        self.events.lock().unwrap_or_else(PoisonError::into_inner).push(observed);
    }

    /// A copy of everything observed so far.
    pub fn snapshot(&self) -> Vec<Observed> {
        let _ = self.drain();
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Like [`snapshot`](Self::snapshot), `Err` if events were skipped.
    pub fn complete_snapshot(&self) -> Result<Vec<Observed>, String> {
        self.drain()?;
        Ok(self.events.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    /// The log messages observed so far.
    pub fn log_messages(&self) -> Vec<LogMessage> {
        self.snapshot()
            .into_iter()
            .filter_map(|o| match o {
                Observed::Client(ClientEvent::Log(m)) => Some(m),
                _ => None,
            })
            .collect()
    }

    /// Polls until `check` holds for the log (or `limit` passes); whether it held.
    pub fn wait_until(&self, limit: Duration, check: impl Fn(&[Observed]) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if check(&self.snapshot()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A client of either adapter, blocking.
pub trait AdapterClient: Send + Sync {
    /// Selects a server (waiting up to serverSelectionTimeoutMS) for command `operation`
    /// of the operation `operation_id`. Neither adapter takes the operation name and id yet
    /// (pending: selection log events with the caller's operation name and id, branch
    /// `coresel`): their selection log messages name no operation until then.
    fn select(
        &self,
        criteria: SelectionCriteria,
        operation: &str,
        operation_id: i64,
    ) -> Result<ServerGuard, String>;
    /// Reports an application error.
    fn report_error(&self, error: ApplicationError);
    /// Closes the client; returns once its tasks/threads and sockets are gone.
    fn close(&self);
    /// The current topology description.
    fn description(&self) -> Arc<TopologyDescription>;
}

/// The one runtime every tokio client of the test binary runs on.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("unified-tokio")
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}"))
    })
}

struct TokioClient(sdam_tokio::Client);

impl AdapterClient for TokioClient {
    fn select(
        &self,
        criteria: SelectionCriteria,
        operation: &str,
        operation_id: i64,
    ) -> Result<ServerGuard, String> {
        let options = SelectionOptions::new(operation).with_operation_id(operation_id);
        runtime().block_on(self.0.select_server_with(criteria, options)).map_err(|e| e.to_string())
    }
    fn report_error(&self, error: ApplicationError) {
        self.0.report_error(error);
    }
    fn close(&self) {
        runtime().block_on(self.0.close());
    }
    fn description(&self) -> Arc<TopologyDescription> {
        self.0.description()
    }
}

struct StdClient(sdam_std::Client);

impl AdapterClient for StdClient {
    fn select(
        &self,
        criteria: SelectionCriteria,
        operation: &str,
        operation_id: i64,
    ) -> Result<ServerGuard, String> {
        let options = SelectionOptions::new(operation).with_operation_id(operation_id);
        self.0.select_server_with(criteria, options).map_err(|e| e.to_string())
    }
    fn report_error(&self, error: ApplicationError) {
        self.0.report_error(error);
    }
    fn close(&self) {
        self.0.close();
    }
    fn description(&self) -> Arc<TopologyDescription> {
        self.0.description()
    }
}

/// Starts a client of `kind` whose every event goes to `log`.
pub fn start(
    kind: AdapterKind,
    config: TopologyConfig,
    log: Arc<EventLog>,
) -> Result<Box<dyn AdapterClient>, String> {
    match kind {
        AdapterKind::Tokio => {
            let rt = runtime();
            let _inside = rt.enter();
            let (client, events) =
                sdam_tokio::Client::with_subscription(config, sdam_tokio::ClientOptions::default())
                    .map_err(|e| e.to_string())?;
            log.attach(Source::Tokio(events));
            Ok(Box::new(TokioClient(client)))
        }
        AdapterKind::Std => {
            let (client, events) =
                sdam_std::Client::with_subscription(config, sdam_std::ClientOptions::default())
                    .map_err(|e| e.to_string())?;
            log.attach(Source::Std(events));
            Ok(Box::new(StdClient(client)))
        }
    }
}
