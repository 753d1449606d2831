//! The four implementations, each doing what one workload's application does: this
//! project's tokio and std adapters (with the bench's own connections, `conn.rs`), the
//! official Rust driver (`mongodb` crate) and PyMongo (a child process, `child.rs`).

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use mongodb::bson::{doc, Document};
use mongodb::event::sdam::SdamEvent;
use mongodb::event::EventHandler;
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::child::Python;
use crate::conn::{AsyncPool, BlockingPool};

/// One implementation under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Impl {
    /// `sdam-tokio` with the bench's connections.
    SdamTokio,
    /// `sdam-std` with the bench's connections.
    SdamStd,
    /// The official Rust driver.
    RustDriver,
    /// PyMongo.
    PyMongo,
}

impl Impl {
    pub(crate) const ALL: [Self; 4] = [Self::SdamTokio, Self::SdamStd, Self::RustDriver, Self::PyMongo];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::SdamTokio => "sdam-tokio",
            Self::SdamStd => "sdam-std",
            Self::RustDriver => "rust-driver",
            Self::PyMongo => "pymongo",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.name() == name)
    }

    /// This project's adapters (the others are the peers).
    pub(crate) fn is_sdam(self) -> bool {
        matches!(self, Self::SdamTokio | Self::SdamStd)
    }

    /// The connection-string flavour this implementation gets.
    pub(crate) fn flavour(self) -> crate::deploy::Flavour {
        if self.is_sdam() {
            crate::deploy::Flavour::Sdam
        } else {
            crate::deploy::Flavour::Peer
        }
    }
}

/// What the implementations need: a tokio runtime for the async ones, Python for PyMongo.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) runtime: Runtime,
    pub(crate) python: std::result::Result<Python, String>,
}

type Result<T> = std::result::Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// H1: milliseconds from construction to the first successful write and to `members`
/// servers known.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Discovery {
    pub(crate) first_write_ms: f64,
    pub(crate) all_known_ms: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A Rust-driver client whose SDAM events tell when `members` servers are known.
async fn rust_driver_client(
    uri: &str,
    members: usize,
) -> Result<(mongodb::Client, Arc<OnceLock<Instant>>, tokio::sync::watch::Receiver<usize>)> {
    let known_at = Arc::new(OnceLock::new());
    let (tx, rx) = tokio::sync::watch::channel(0usize);
    let at = Arc::clone(&known_at);
    let mut options = mongodb::options::ClientOptions::parse(uri).await.map_err(err)?;
    options.sdam_event_handler = Some(EventHandler::callback(move |event: SdamEvent| {
        if let SdamEvent::TopologyDescriptionChanged(changed) = event {
            let known = changed
                .new_description
                .servers()
                .values()
                .filter(|s| s.server_type() != mongodb::ServerType::Unknown)
                .count();
            if known >= members {
                let _ = at.set(Instant::now());
            }
            let _ = tx.send(known);
        }
    }));
    Ok((mongodb::Client::with_options(options).map_err(err)?, known_at, rx))
}

fn writes(client: &mongodb::Client) -> mongodb::Collection<Document> {
    client.database("habench").collection("writes")
}

pub(crate) fn discovery(env: &Env, which: Impl, uri: &str, members: usize) -> Result<Discovery> {
    match which {
        Impl::SdamTokio => env.runtime.block_on(async {
            let start = Instant::now();
            let client = sdam_tokio::Client::from_uri(uri).map_err(err)?;
            let mut events = client.subscribe();
            let watcher = {
                let client = client.clone();
                tokio::spawn(async move {
                    while client.nodes().len() < members {
                        events.recv().await.as_ref()?;
                    }
                    Some(Instant::now())
                })
            };
            let mut pool = AsyncPool::default();
            pool.write(&client, 1).await.map_err(err)?;
            let first_write = start.elapsed();
            let known = tokio::time::timeout(Duration::from_secs(30), watcher)
                .await
                .map_err(|_| "not every member known in 30 s".to_owned())?
                .map_err(err)?
                .ok_or("closed")?;
            client.close().await;
            Ok(Discovery { first_write_ms: ms(first_write), all_known_ms: ms(known - start) })
        }),
        Impl::SdamStd => {
            let start = Instant::now();
            let client = sdam_std::Client::from_uri(uri).map_err(err)?;
            let events = client.subscribe();
            let watcher = {
                let client = client.clone();
                std::thread::spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    while client.nodes().len() < members {
                        let left = deadline.saturating_duration_since(Instant::now());
                        if left.is_zero()
                            || events.recv_timeout(left).is_none() && client.nodes().len() < members
                        {
                            return None;
                        }
                    }
                    Some(Instant::now())
                })
            };
            let mut pool = BlockingPool::default();
            pool.write(&client, 1).map_err(err)?;
            let first_write = start.elapsed();
            let known =
                watcher.join().map_err(|_| "watcher panicked")?.ok_or("not every member known in 30 s")?;
            client.close();
            Ok(Discovery { first_write_ms: ms(first_write), all_known_ms: ms(known - start) })
        }
        Impl::RustDriver => env.runtime.block_on(async {
            let start = Instant::now();
            let (client, known_at, mut known) = rust_driver_client(uri, members).await?;
            writes(&client).insert_one(doc! { "n": 1 }).await.map_err(err)?;
            let first_write = start.elapsed();
            tokio::time::timeout(Duration::from_secs(30), known.wait_for(|k| *k >= members))
                .await
                .map_err(|_| "not every member known in 30 s".to_owned())?
                .map_err(err)?;
            let at = *known_at.get().ok_or("no time recorded")?;
            client.shutdown().await;
            Ok(Discovery { first_write_ms: ms(first_write), all_known_ms: ms(at - start) })
        }),
        Impl::PyMongo => {
            let python = env.python.as_ref().map_err(Clone::clone)?;
            let child = python.spawn(&["discovery".into(), uri.into(), members.to_string()])?;
            let v = child.json()?;
            child.finish()?;
            Ok(Discovery {
                first_write_ms: num(&v, "first_write_ms")?,
                all_known_ms: num(&v, "all_known_ms")?,
            })
        }
    }
}

fn num(v: &Value, key: &str) -> Result<f64> {
    v.get(key).and_then(Value::as_f64).ok_or_else(|| format!("no {key} in {v}"))
}

/// H2's application: writes until told the primary is gone, then retries until a write
/// succeeds.
#[derive(Debug, Clone)]
pub(crate) struct Recovered {
    /// When the first write after the errors succeeded.
    pub(crate) at: When,
    /// Failed attempts before it.
    pub(crate) errors: u64,
    /// What the first failure was.
    pub(crate) first_error: String,
}

/// A moment, in this process's clock or (for a child) the wall clock.
#[derive(Debug, Clone, Copy)]
pub(crate) enum When {
    Instant(Instant),
    Wall(SystemTime),
}

/// The application's view of the failover: the first write that succeeds once the bench
/// said the election is under way is the recovery (no write can succeed between the kill and
/// the election: nothing is writable). Failed attempts are counted; with streaming monitors
/// there may be none (the monitors see the crash first and the write waits in selection).
struct Watch {
    elected: Arc<OnceLock<Instant>>,
    errors: u64,
    first_error: String,
}

impl Watch {
    fn success(&self) -> Option<Recovered> {
        let now = Instant::now();
        let elected = *self.elected.get()?;
        (now >= elected).then(|| Recovered {
            at: When::Instant(now),
            errors: self.errors,
            first_error: self.first_error.clone(),
        })
    }

    fn failure(&mut self, e: impl std::fmt::Display) -> Result<()> {
        self.errors += 1;
        if self.first_error.is_empty() {
            self.first_error = e.to_string();
        }
        if self.errors > MAX_ERRORS {
            return Err(format!("{} errors, the last: {e}", self.errors));
        }
        Ok(())
    }
}

/// A running H2 application.
pub(crate) enum FailoverApp {
    InProcess {
        ready: mpsc::Receiver<()>,
        done: mpsc::Receiver<Result<Recovered>>,
        /// Set by the bench right before the election.
        elected: Arc<OnceLock<Instant>>,
    },
    Child(crate::child::Child),
}

/// How long to pause between successful writes before the failure (the error is seen at
/// most this long after the kill; the retries then come back to back).
const WRITE_PACE: Duration = Duration::from_millis(2);
/// At most this many failed attempts before a run gives up.
const MAX_ERRORS: u64 = 100_000;

impl FailoverApp {
    /// Starts the application of `which` on `uri`.
    pub(crate) fn start(env: &Env, which: Impl, uri: &str) -> Result<Self> {
        let (ready_tx, ready) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let elected = Arc::new(OnceLock::new());
        let mut watch = Watch { elected: Arc::clone(&elected), errors: 0, first_error: String::new() };
        match which {
            Impl::SdamTokio => {
                let client = {
                    let _guard = env.runtime.enter();
                    sdam_tokio::Client::from_uri(uri).map_err(err)?
                };
                env.runtime.spawn(async move {
                    let mut pool = AsyncPool::default();
                    let result = async {
                        pool.write(&client, 0).await.map_err(err)?;
                        let _ = ready_tx.send(());
                        let mut n = 0i64;
                        loop {
                            n += 1;
                            match pool.write(&client, n).await {
                                Ok(_) => match watch.success() {
                                    Some(recovered) => return Ok(recovered),
                                    None => tokio::time::sleep(WRITE_PACE).await,
                                },
                                Err(e) => watch.failure(&e)?,
                            }
                        }
                    }
                    .await;
                    client.close().await;
                    let _ = done_tx.send(result);
                });
                Ok(Self::InProcess { ready, done, elected })
            }
            Impl::SdamStd => {
                let client = sdam_std::Client::from_uri(uri).map_err(err)?;
                std::thread::spawn(move || {
                    let mut pool = BlockingPool::default();
                    let result = (|| {
                        pool.write(&client, 0).map_err(err)?;
                        let _ = ready_tx.send(());
                        let mut n = 0i64;
                        loop {
                            n += 1;
                            match pool.write(&client, n) {
                                Ok(_) => match watch.success() {
                                    Some(recovered) => return Ok(recovered),
                                    None => std::thread::sleep(WRITE_PACE),
                                },
                                Err(e) => watch.failure(&e)?,
                            }
                        }
                    })();
                    client.close();
                    let _ = done_tx.send(result);
                });
                Ok(Self::InProcess { ready, done, elected })
            }
            Impl::RustDriver => {
                let client = env.runtime.block_on(rust_driver_client(uri, 0))?.0;
                env.runtime.spawn(async move {
                    let coll = writes(&client);
                    let result = async {
                        coll.insert_one(doc! { "n": 0 }).await.map_err(err)?;
                        let _ = ready_tx.send(());
                        let mut n = 0i64;
                        loop {
                            n += 1;
                            match coll.insert_one(doc! { "n": n }).await {
                                Ok(_) => match watch.success() {
                                    Some(recovered) => return Ok(recovered),
                                    None => tokio::time::sleep(WRITE_PACE).await,
                                },
                                Err(e) => watch.failure(format!("{:?}", e.kind))?,
                            }
                        }
                    }
                    .await;
                    client.shutdown().await;
                    let _ = done_tx.send(result);
                });
                Ok(Self::InProcess { ready, done, elected })
            }
            Impl::PyMongo => {
                let python = env.python.as_ref().map_err(Clone::clone)?;
                Ok(Self::Child(python.spawn(&["failover".into(), uri.into()])?))
            }
        }
    }

    /// Waits until the application's first write succeeded.
    pub(crate) fn ready(&self) -> Result<()> {
        match self {
            Self::InProcess { ready, done, .. } => match ready.recv_timeout(Duration::from_secs(60)) {
                Ok(()) => Ok(()),
                Err(_) => {
                    Err(done.try_recv().map_or_else(|_| "not ready in 60 s".to_owned(), |r| format!("{r:?}")))
                }
            },
            Self::Child(child) => child.expect("ready"),
        }
    }

    /// Tells the application the election happens now (call right before it).
    pub(crate) fn electing(&mut self, at: Instant, wall: SystemTime) -> Result<()> {
        match self {
            Self::InProcess { elected, .. } => {
                let _ = elected.set(at);
                Ok(())
            }
            Self::Child(child) => {
                let ns = wall.duration_since(SystemTime::UNIX_EPOCH).map_err(err)?.as_nanos();
                child.send(&format!("elected {ns}"))
            }
        }
    }

    /// Waits for the first success after the failure.
    pub(crate) fn recovered(self) -> Result<Recovered> {
        match self {
            Self::InProcess { done, .. } => {
                done.recv_timeout(Duration::from_secs(90)).map_err(|_| "no recovery in 90 s".to_owned())?
            }
            Self::Child(child) => {
                let v = child.json()?;
                child.finish()?;
                let ns = v
                    .get("success_unix_ns")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("no time in {v}"))?;
                Ok(Recovered {
                    at: When::Wall(SystemTime::UNIX_EPOCH + Duration::from_nanos(ns)),
                    errors: v.get("errors").and_then(Value::as_u64).unwrap_or(0),
                    first_error: v.get("first_error").and_then(Value::as_str).unwrap_or("").to_owned(),
                })
            }
        }
    }
}

/// The average round-trip times (ms) the client holds for `addresses`, where it tells them.
pub(crate) type Rtts = Vec<Option<f64>>;

fn sdam_rtts(description: &sdam::TopologyDescription, addresses: &[sdam::ServerAddress]) -> Rtts {
    addresses
        .iter()
        .map(|a| description.server(a).and_then(|s| s.round_trip_time).map(|d| crate::stats::round(ms(d))))
        .collect()
}

/// H3: runs `ops` writes one after the other once the `addresses` are known and `settle`
/// passed; `between` is called right before the first and after the last (the bench reads
/// the servers' counts there). Returns the client's average RTTs after the writes (the Rust
/// driver does not publish them: `None`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn spread(
    env: &Env,
    which: Impl,
    uri: &str,
    addresses: &[sdam::ServerAddress],
    ops: usize,
    settle: Duration,
    mut between: impl FnMut(),
) -> Result<Rtts> {
    let members = addresses.len();
    match which {
        Impl::SdamTokio => env.runtime.block_on(async {
            let client = sdam_tokio::Client::from_uri(uri).map_err(err)?;
            let mut events = client.subscribe();
            while client.nodes().len() < members {
                tokio::time::timeout(Duration::from_secs(30), events.recv())
                    .await
                    .map_err(|_| "mongoses not known in 30 s".to_owned())?;
            }
            tokio::time::sleep(settle).await;
            let mut pool = AsyncPool::default();
            between();
            for n in 0..ops {
                pool.write(&client, i64::try_from(n).unwrap_or(0)).await.map_err(err)?;
            }
            between();
            let rtts = sdam_rtts(&client.description(), addresses);
            client.close().await;
            Ok(rtts)
        }),
        Impl::SdamStd => {
            let client = sdam_std::Client::from_uri(uri).map_err(err)?;
            let events = client.subscribe();
            while client.nodes().len() < members {
                events.recv_timeout(Duration::from_secs(30)).ok_or("mongoses not known in 30 s")?;
            }
            std::thread::sleep(settle);
            let mut pool = BlockingPool::default();
            between();
            for n in 0..ops {
                pool.write(&client, i64::try_from(n).unwrap_or(0)).map_err(err)?;
            }
            between();
            let rtts = sdam_rtts(&client.description(), addresses);
            client.close();
            Ok(rtts)
        }
        Impl::RustDriver => env.runtime.block_on(async {
            let (client, _, mut known) = rust_driver_client(uri, members).await?;
            tokio::time::timeout(Duration::from_secs(30), known.wait_for(|k| *k >= members))
                .await
                .map_err(|_| "mongoses not known in 30 s".to_owned())?
                .map_err(err)?;
            tokio::time::sleep(settle).await;
            let coll = writes(&client);
            between();
            for n in 0..ops {
                coll.insert_one(doc! { "n": i64::try_from(n).unwrap_or(0) }).await.map_err(err)?;
            }
            between();
            client.shutdown().await;
            Ok(vec![None; members])
        }),
        Impl::PyMongo => {
            let python = env.python.as_ref().map_err(Clone::clone)?;
            between();
            let child = python.spawn(&[
                "spread".into(),
                uri.into(),
                members.to_string(),
                ops.to_string(),
                settle.as_millis().to_string(),
            ])?;
            let done = child.json()?;
            between();
            child.finish()?;
            let rtt = done.get("rtt_ms");
            Ok(addresses
                .iter()
                .map(|a| {
                    rtt.and_then(|r| r.get(a.to_string())).and_then(Value::as_f64).map(crate::stats::round)
                })
                .collect())
        }
    }
}

/// The idle program of a Rust implementation (`sdam-habench idle IMPL URI MEMBERS`): discover,
/// print `ready`, do nothing until stdin closes, close.
pub(crate) fn idle_main(which: Impl, uri: &str, members: usize) -> Result<()> {
    use std::io::Read;
    let say_ready = || {
        use std::io::Write;
        let mut out = std::io::stdout();
        writeln!(out, "ready").and_then(|()| out.flush()).map_err(err)
    };
    let wait_stdin = || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    };
    match which {
        Impl::SdamTokio => {
            // The default runtime of `#[tokio::main]`: one worker per core.
            let runtime = Runtime::new().map_err(err)?;
            let client = runtime.block_on(async {
                let client = sdam_tokio::Client::from_uri(uri).map_err(err)?;
                let mut events = client.subscribe();
                while client.nodes().len() < members {
                    tokio::time::timeout(Duration::from_secs(60), events.recv())
                        .await
                        .map_err(|_| "not every server known in 60 s".to_owned())?;
                }
                Ok::<_, String>(client)
            })?;
            say_ready()?;
            wait_stdin();
            runtime.block_on(client.close());
            Ok(())
        }
        Impl::SdamStd => {
            let client = sdam_std::Client::from_uri(uri).map_err(err)?;
            let events = client.subscribe();
            while client.nodes().len() < members {
                events.recv_timeout(Duration::from_secs(60)).ok_or("not every server known in 60 s")?;
            }
            drop(events);
            say_ready()?;
            wait_stdin();
            client.close();
            Ok(())
        }
        Impl::RustDriver => {
            let runtime = Runtime::new().map_err(err)?;
            let client = runtime.block_on(async {
                let (client, _, mut known) = rust_driver_client(uri, members).await?;
                tokio::time::timeout(Duration::from_secs(60), known.wait_for(|k| *k >= members))
                    .await
                    .map_err(|_| "not every server known in 60 s".to_owned())?
                    .map_err(err)?;
                Ok::<_, String>(client)
            })?;
            say_ready()?;
            wait_stdin();
            runtime.block_on(async { client.shutdown().await });
            Ok(())
        }
        Impl::PyMongo => Err("PyMongo idles in python/habench_peer.py".into()),
    }
}
