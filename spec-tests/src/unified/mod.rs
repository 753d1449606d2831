//! The unified test format (unified-test-format.md) on scripted servers, through either
//! adapter.
//!
//! Each test gets a fresh scripted deployment of `sdam-testserver` chosen from the file's
//! and the test's `runOnRequirements` (single: a standalone; replicaset: a 3-member set;
//! sharded: two mongoses; load-balanced: a mongos reached with `loadBalanced=true`), its
//! `initialData` written, its entities created as real adapter clients, its operations run
//! and its `expectEvents`, `expectLogMessages` and `outcome` checked. [`classify`] says up
//! front why a file cannot run here (it needs a CMAP pool, CMAP events, authentication, or an
//! operation this runner does not have).
//!
//! Operations: `createEntities` (client with `uriOptions`, `observeEvents`,
//! `observeLogMessages`, `useMultipleMongoses`; database; collection), `failPoint` (sent as
//! `configureFailPoint` by the named client, turned off after the test), `waitForEvent`,
//! `assertEventCount`, `wait`, `runOnThread` / `waitForThread` (thread entities),
//! `recordTopologyDescription`, `assertTopologyType`, `waitForPrimaryChange`, `close`,
//! `runCommand`, `insertOne`, `insertMany`, `find` and `bulkWrite` of `insertOne` requests,
//! with `expectResult` / `expectError`.

pub mod adapter;
mod executor;
pub mod matching;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{doc, Bson, Document, RawDocumentBuf};
use sdam::logging::{LogComponent, LogMessage, LogValue};
use sdam::selection::{LogLevel, SelectionCriteria};
use sdam::{Event, ReadPreference, ReadPreferenceMode};
use sdam_adapter::ClientEvent;
use sdam_testserver::{Cluster, MemberSpec, Mongos, RawClient, ReplicaSet, Role, Standalone};

use adapter::{AdapterClient, AdapterKind, CommandEvent, EventLog, Observed};
use executor::{Executor, OpError};

/// The server version the scripted servers stand for (maxWireVersion 21: MongoDB 7.0).
const SERVER_VERSION: [u64; 3] = [7, 0, 0];

/// How long `waitForEvent` waits (the format suggests at least 10 s).
const WAIT_FOR_EVENT: Duration = Duration::from_secs(10);

/// Why a whole file cannot run on scripted servers, if it cannot: what its runnable tests
/// (those whose `runOnRequirements` the scripted servers meet) or its entities need that
/// is not here.
pub fn classify(doc: &serde_json::Value) -> Option<String> {
    let file_requirements =
        doc.get("runOnRequirements").and_then(|r| to_doc(&serde_json::json!({ "r": r })).ok());
    let file_requirements = file_requirements.as_ref().and_then(|d| d.get_array("r").ok());
    let runnable: Vec<&serde_json::Value> = doc
        .get("tests")
        .and_then(serde_json::Value::as_array)
        .map(|tests| {
            tests
                .iter()
                .filter(|t| {
                    let test =
                        t.get("runOnRequirements").and_then(|r| to_doc(&serde_json::json!({ "r": r })).ok());
                    let test = test.as_ref().and_then(|d| d.get_array("r").ok());
                    t.get("skipReason").is_none() && choose_topology(file_requirements, test).is_some()
                })
                .collect()
        })
        .unwrap_or_default();
    if runnable.is_empty() {
        let auth = doc.to_string().contains("\"auth\":true");
        return Some(if auth {
            "needs authentication (runOnRequirements auth: true)".into()
        } else {
            format!(
                "no test's runOnRequirements fits the scripted servers (MongoDB {}.{}, single / replicaset / sharded / load-balanced)",
                SERVER_VERSION[0], SERVER_VERSION[1]
            )
        });
    }
    let mut text = doc.get("createEntities").map(ToString::to_string).unwrap_or_default();
    for t in &runnable {
        text.push_str(&t.to_string());
    }
    if doc.get("runOnRequirements").is_some_and(|r| r.to_string().contains("\"auth\":true")) {
        return Some("needs authentication (runOnRequirements auth: true)".into());
    }
    for option in ["minPoolSize", "maxPoolSize", "maxConnecting"] {
        if text.contains(&format!("\"{option}\"")) {
            return Some(format!("needs a CMAP connection pool (uses {option})"));
        }
    }
    for event in [
        "connectionCheckedInEvent",
        "connectionCheckedOutEvent",
        "connectionClosedEvent",
        "connectionCheckOutStartedEvent",
        "connectionCreatedEvent",
        "connectionReadyEvent",
        "poolReadyEvent",
    ] {
        if text.contains(&format!("\"{event}\"")) {
            return Some(format!("needs CMAP events (expects {event}) of a connection pool"));
        }
    }
    for op in ["clientBulkWrite"] {
        if text.contains(&format!("\"{op}\"")) {
            return Some(format!("uses operation {op}, which this runner does not implement"));
        }
    }
    None
}

/// Runs every test of a unified file through `kind`; `Err` names the first failure.
pub fn run(doc: &serde_json::Value, kind: AdapterKind) -> Result<(), String> {
    let file = to_doc(doc)?;
    if let Some(reason) = classify(doc) {
        return Err(format!("cannot run here: {reason}"));
    }
    let file_requirements = file.get_array("runOnRequirements").ok().cloned();
    let tests = file.get_array("tests").map_err(|_| "a unified file needs tests")?;
    let mut ran = 0;
    let mut failures = Vec::new();
    for test in tests {
        let test = test.as_document().ok_or("a test must be a document")?;
        let description = test.get_str("description").unwrap_or("(no description)");
        if test.get("skipReason").is_some() {
            continue;
        }
        let Some(topology) =
            choose_topology(file_requirements.as_ref(), test.get_array("runOnRequirements").ok())
        else {
            continue; // the scripted servers do not meet this test's requirements
        };
        if let Err(e) = run_test(&file, test, topology, kind) {
            failures.push(format!("test \"{description}\": {e}"));
        }
        ran += 1;
    }
    if ran == 0 {
        return Err("no test of this file can run against the scripted servers (runOnRequirements)".into());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!("{} of {ran} tests failed:\n{}", failures.len(), failures.join("\n")))
    }
}

fn to_doc(value: &serde_json::Value) -> Result<Document, String> {
    crate::to_document(value)
}

/// The kinds of scripted deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topology {
    Single,
    ReplicaSet,
    Sharded,
    LoadBalanced,
}

fn version(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

fn version_ok(requirement: &Document) -> bool {
    let ours = SERVER_VERSION.to_vec();
    let min_ok = requirement.get_str("minServerVersion").map_or(true, |v| ours >= version(v));
    let max_ok = requirement.get_str("maxServerVersion").map_or(true, |v| {
        let mut max = version(v);
        max.resize(3, 0);
        ours <= max
    });
    min_ok && max_ok
}

fn topologies(requirement: &Document) -> Result<Vec<Topology>, ()> {
    if requirement.get_bool("auth").ok() == Some(true)
        || requirement.get_str("serverless").ok() == Some("require")
    {
        return Err(());
    }
    if !version_ok(requirement)
        || requirement.contains_key("serverParameters")
        || requirement.contains_key("csfle")
    {
        return Err(());
    }
    let Ok(list) = requirement.get_array("topologies") else {
        return Ok(vec![Topology::Single, Topology::ReplicaSet, Topology::Sharded, Topology::LoadBalanced]);
    };
    Ok(list
        .iter()
        .filter_map(|t| match t.as_str()? {
            "single" => Some(Topology::Single),
            "replicaset" => Some(Topology::ReplicaSet),
            "sharded" | "sharded-replicaset" => Some(Topology::Sharded),
            "load-balanced" => Some(Topology::LoadBalanced),
            _ => None,
        })
        .collect())
}

/// The topologies any requirement of `list` allows (`None` list: any).
fn allowed(list: Option<&bson::Array>) -> Vec<Topology> {
    let all = vec![Topology::Single, Topology::ReplicaSet, Topology::Sharded, Topology::LoadBalanced];
    let Some(list) = list else { return all };
    let mut out = Vec::new();
    for r in list.iter().filter_map(Bson::as_document) {
        for t in topologies(r).unwrap_or_default() {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

fn choose_topology(file: Option<&bson::Array>, test: Option<&bson::Array>) -> Option<Topology> {
    let file = allowed(file);
    let test = allowed(test);
    file.into_iter().find(|t| test.contains(t))
}

fn start_deployment(topology: Topology) -> Result<Cluster, String> {
    let built = match topology {
        Topology::Single => Standalone::builder().start(),
        Topology::ReplicaSet => ReplicaSet::builder("rs0")
            .member(MemberSpec::new(Role::Primary))
            .member(MemberSpec::new(Role::Secondary))
            .member(MemberSpec::new(Role::Secondary))
            .start(),
        Topology::Sharded => Mongos::builder()
            .member(MemberSpec::new(Role::Mongos))
            .member(MemberSpec::new(Role::Mongos))
            .start(),
        Topology::LoadBalanced => Mongos::builder().member(MemberSpec::new(Role::Mongos)).start(),
    };
    built.map_err(|e| format!("cannot start the scripted deployment: {e}"))
}

/// One client entity.
struct ClientEntity {
    client: Box<dyn AdapterClient>,
    log: Arc<EventLog>,
    observe_events: Vec<String>,
    observe_logs: Vec<(String, u8)>,
    handshake: RawDocumentBuf,
    connect_timeout: Option<Duration>,
    socket_timeout: Option<Duration>,
    retry_writes: bool,
    retry_reads: bool,
    write_concern: Option<Bson>,
    single: bool,
    closed: std::sync::atomic::AtomicBool,
    next_operation_id: std::sync::atomic::AtomicI64,
}

impl ClientEntity {
    /// Closes the client: once `close()` returned, every event (TopologyClosed last) was
    /// published, and the next read of the log has them all.
    fn close(&self) -> Result<(), String> {
        self.client.close();
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.log.complete_snapshot().map(drop)
    }

    fn executor(&self) -> Executor<'_> {
        Executor {
            client: &*self.client,
            log: &self.log,
            handshake: &self.handshake,
            connect_timeout: self.connect_timeout,
            socket_timeout: self.socket_timeout,
        }
    }

    /// Runs a command, retrying once on a retryable error when the client's options allow it
    /// (retryable writes need a replica set or sharded cluster).
    fn run(&self, db: &str, command: Document, write: bool) -> Result<Document, OpError> {
        self.run_with(db, command, write, None)
    }

    /// [`run`](Self::run); a read with `read_preference` (else primary).
    fn run_with(
        &self,
        db: &str,
        command: Document,
        write: bool,
        read_preference: Option<&ReadPreference>,
    ) -> Result<Document, OpError> {
        let criteria = || {
            if write {
                SelectionCriteria::write()
            } else {
                SelectionCriteria::read(
                    read_preference
                        .cloned()
                        .unwrap_or_else(|| ReadPreference::new(ReadPreferenceMode::Primary)),
                )
            }
        };
        // One operation id for the operation and its retry (server-selection.md, "Logging").
        let operation_id = self.next_operation_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let first = self.executor().run(db, command.clone(), criteria(), operation_id);
        let retry = if write { self.retry_writes && !self.single } else { self.retry_reads };
        match first {
            Err(ref e) if retry && retryable(e) => self.executor().run(db, command, criteria(), operation_id),
            other => other,
        }
    }
}

fn retryable(e: &OpError) -> bool {
    match e {
        OpError::Network(..) => true,
        OpError::Selection(_) => false,
        OpError::Command(reply) => {
            let code = reply.get_i32("code").unwrap_or(0);
            [11600, 11602, 10107, 13435, 13436, 189, 91, 7, 6, 89, 9001, 262].contains(&code)
                || reply
                    .get_array("errorLabels")
                    .is_ok_and(|l| l.iter().any(|x| x.as_str() == Some("RetryableWriteError")))
        }
    }
}

/// Log levels by severity (logging.md, "Log Severity Levels"): lower is more severe.
fn level_rank(name: &str) -> Option<u8> {
    Some(match name {
        "off" => 0,
        "emergency" => 1,
        "alert" => 2,
        "critical" => 3,
        "error" => 4,
        "warning" | "warn" => 5,
        "notice" => 6,
        "info" => 7,
        "debug" => 8,
        "trace" => 9,
        _ => return None,
    })
}

fn message_level(m: &LogMessage) -> (&'static str, u8) {
    match m.level {
        LogLevel::Info => ("info", 7),
        _ => ("debug", 8),
    }
}

/// A log message as the format's `data` document.
fn log_data(m: &LogMessage) -> Document {
    let mut d = doc! { "message": m.message };
    for (k, v) in &m.fields {
        let value = match v {
            LogValue::String(s) => Bson::String(s.clone()),
            LogValue::Int(i) => Bson::Int64(*i),
            LogValue::Double(x) => Bson::Double(*x),
            LogValue::Bool(b) => Bson::Boolean(*b),
            _ => Bson::Null,
        };
        d.insert(*k, value);
    }
    d
}

/// The format's name and fields of an observed event, if it is one the format knows.
fn event_doc(o: &Observed) -> Option<(&'static str, &'static str, Document)> {
    let sd = |d: &sdam::ServerDescription| doc! { "type": d.server_type.as_str() };
    let td = |d: &sdam::TopologyDescription| doc! { "type": d.topology_type.as_str() };
    Some(match o {
        Observed::Client(ClientEvent::Sdam(e)) => match e {
            Event::TopologyOpening { .. } => ("sdam", "topologyOpeningEvent", Document::new()),
            Event::TopologyClosed { .. } => ("sdam", "topologyClosedEvent", Document::new()),
            Event::TopologyDescriptionChanged { previous, new, .. } => (
                "sdam",
                "topologyDescriptionChangedEvent",
                doc! { "previousDescription": td(previous), "newDescription": td(new) },
            ),
            Event::ServerOpening { .. } => ("sdam", "serverOpeningEvent", Document::new()),
            Event::ServerClosed { .. } => ("sdam", "serverClosedEvent", Document::new()),
            Event::ServerDescriptionChanged { previous, new, .. } => (
                "sdam",
                "serverDescriptionChangedEvent",
                doc! { "previousDescription": sd(previous), "newDescription": sd(new) },
            ),
            Event::ServerHeartbeatStarted { awaited, .. } => {
                ("sdam", "serverHeartbeatStartedEvent", doc! { "awaited": *awaited })
            }
            Event::ServerHeartbeatSucceeded { awaited, .. } => {
                ("sdam", "serverHeartbeatSucceededEvent", doc! { "awaited": *awaited })
            }
            Event::ServerHeartbeatFailed { awaited, .. } => {
                ("sdam", "serverHeartbeatFailedEvent", doc! { "awaited": *awaited })
            }
            _ => return None,
        },
        Observed::Client(ClientEvent::PoolCleared { service_id, interrupt_in_use_connections, .. }) => (
            "cmap",
            "poolClearedEvent",
            doc! { "hasServiceId": service_id.is_some(), "interruptInUseConnections": *interrupt_in_use_connections },
        ),
        Observed::Command(CommandEvent::Started { command, name, database }) => (
            "command",
            "commandStartedEvent",
            doc! { "command": command.clone(), "commandName": name.as_str(), "databaseName": database.as_str() },
        ),
        Observed::Command(CommandEvent::Succeeded { reply, name, database }) => (
            "command",
            "commandSucceededEvent",
            doc! { "reply": reply.clone(), "commandName": name.as_str(), "databaseName": database.as_str() },
        ),
        Observed::Command(CommandEvent::Failed { name, database }) => (
            "command",
            "commandFailedEvent",
            doc! { "commandName": name.as_str(), "databaseName": database.as_str() },
        ),
        Observed::Client(_) => return None,
    })
}

/// Whether observed `o` matches an expected event `{name: {assertions}}`.
fn event_matches(expected: &Document, o: &Observed) -> Result<(), String> {
    let (name, assertions) = expected.iter().next().ok_or("an expected event needs a type")?;
    let Some((_, actual_name, actual)) = event_doc(o) else {
        return Err("not an event the format knows".into());
    };
    if name != actual_name {
        return Err(format!("expected {name}, found {actual_name}"));
    }
    let assertions = assertions.as_document().ok_or("event assertions must be a document")?;
    for (key, value) in assertions {
        let path = format!("{actual_name}.{key}");
        match (key.as_str(), value, actual.get(key)) {
            // A command and a reply are root-level documents (extra fields allowed); so are
            // descriptions ("Test runners SHOULD ignore any other fields present on the
            // previousDescription and newDescription fields").
            (
                "command" | "reply" | "previousDescription" | "newDescription",
                Bson::Document(e),
                Some(Bson::Document(a)),
            ) => {
                matching::matches_root(e, a, &path)?;
            }
            _ => matching::matches(value, actual.get(key), false, &path)?,
        }
    }
    Ok(())
}

/// The entity map (unified-test-format.md, "Entity Map"), cheap to clone into a thread.
#[derive(Default, Clone)]
struct Entities {
    clients: HashMap<String, Arc<ClientEntity>>,
    databases: HashMap<String, (String, String)>,
    collections: HashMap<String, (String, String, Option<ReadPreference>)>,
}

impl Entities {
    fn client(&self, id: &str) -> Result<&ClientEntity, String> {
        self.clients.get(id).map(|c| &**c).ok_or_else(|| format!("no client entity {id}"))
    }

    fn entity_operation(&self, object: &str, name: &str, args: &Document) -> Result<Option<Bson>, OpOutcome> {
        if let Some(c) = self.clients.get(object) {
            return match name {
                "close" => {
                    c.close().map_err(OpOutcome::Runner)?;
                    Ok(None)
                }
                other => Err(fail(&format!("unsupported client operation {other}"))),
            };
        }
        if let Some((client, db)) = self.databases.get(object).cloned() {
            let c = self.client(&client).map_err(OpOutcome::Runner)?;
            return match name {
                "runCommand" => {
                    let command =
                        args.get_document("command").map_err(|_| fail("runCommand needs a command"))?;
                    let name =
                        args.get_str("commandName").map_err(|_| fail("runCommand needs a commandName"))?;
                    let command = &name_first(command, name);
                    let read_preference = match args.get_document("readPreference") {
                        Ok(rp) => Some(parse_read_preference(rp).map_err(OpOutcome::Runner)?),
                        Err(_) => None,
                    };
                    let reply = c
                        .run_with(&db, command.clone(), false, read_preference.as_ref())
                        .map_err(OpOutcome::Op)?;
                    Ok(Some(Bson::Document(reply)))
                }
                other => Err(fail(&format!("unsupported database operation {other}"))),
            };
        }
        let (db_id, collection, read_preference) =
            self.collections.get(object).cloned().ok_or_else(|| fail(&format!("no entity {object}")))?;
        let (client, db) =
            self.databases.get(&db_id).cloned().ok_or_else(|| fail(&format!("no database {db_id}")))?;
        let c = self.client(&client).map_err(OpOutcome::Runner)?;
        let with_id = |d: &Document| {
            let mut d = d.clone();
            if !d.contains_key("_id") {
                // Drivers add an _id to documents without one (CRUD spec).
                let mut with = doc! { "_id": ObjectId::new() };
                with.extend(d);
                d = with;
            }
            d
        };
        let insert = |documents: Vec<Document>| -> Result<Document, OpOutcome> {
            let mut command = doc! { "insert": collection.as_str(), "ordered": true, "documents": documents };
            if let Some(w) = &c.write_concern {
                command.insert("writeConcern", doc! { "w": w.clone() });
            }
            let reply = c.run(&db, command, true).map_err(OpOutcome::Op)?;
            if reply.contains_key("writeErrors") {
                return Err(OpOutcome::Op(OpError::Command(reply)));
            }
            Ok(reply)
        };
        match name {
            "insertOne" => {
                let document =
                    with_id(args.get_document("document").map_err(|_| fail("insertOne needs a document"))?);
                let id = document.get("_id").cloned().unwrap_or(Bson::Null);
                insert(vec![document])?;
                Ok(Some(Bson::Document(doc! { "insertedId": id })))
            }
            "insertMany" => {
                let documents: Vec<Document> = args
                    .get_array("documents")
                    .map_err(|_| fail("insertMany needs documents"))?
                    .iter()
                    .filter_map(Bson::as_document)
                    .map(with_id)
                    .collect();
                let ids: Document = documents
                    .iter()
                    .enumerate()
                    .map(|(i, d)| (i.to_string(), d.get("_id").cloned().unwrap_or(Bson::Null)))
                    .collect();
                insert(documents)?;
                Ok(Some(Bson::Document(doc! { "insertedIds": ids })))
            }
            "bulkWrite" => {
                let mut documents = Vec::new();
                for request in args.get_array("requests").map_err(|_| fail("bulkWrite needs requests"))? {
                    let request =
                        request.as_document().ok_or_else(|| fail("a request must be a document"))?;
                    match request.get_document("insertOne").and_then(|r| r.get_document("document")) {
                        Ok(d) => documents.push(with_id(d)),
                        Err(_) => return Err(fail("this runner's bulkWrite has insertOne requests only")),
                    }
                }
                let n = documents.len();
                insert(documents)?;
                Ok(Some(Bson::Document(doc! { "insertedCount": i64::try_from(n).unwrap_or(0) })))
            }
            "find" => {
                let filter = args.get_document("filter").cloned().unwrap_or_default();
                let mut command = doc! { "find": collection.as_str(), "filter": filter };
                if let Ok(sort) = args.get_document("sort") {
                    command.insert("sort", sort.clone());
                }
                let reply =
                    c.run_with(&db, command, false, read_preference.as_ref()).map_err(OpOutcome::Op)?;
                let batch = reply
                    .get_document("cursor")
                    .and_then(|cursor| cursor.get_array("firstBatch"))
                    .cloned()
                    .unwrap_or_default();
                Ok(Some(Bson::Array(batch)))
            }
            other => Err(fail(&format!("unsupported collection operation {other}"))),
        }
    }
}

struct TestRun<'a> {
    kind: AdapterKind,
    cluster: &'a Cluster,
    topology: Topology,
    entities: Entities,
    /// Thread entities: their operations running, joined by waitForThread.
    threads: HashMap<String, Option<std::thread::JoinHandle<Result<(), String>>>>,
    fail_points: Vec<(String, Document)>,
    /// Topology descriptions recorded by recordTopologyDescription.
    descriptions: HashMap<String, Arc<sdam::TopologyDescription>>,
}

fn run_test(file: &Document, test: &Document, topology: Topology, kind: AdapterKind) -> Result<(), String> {
    let cluster = start_deployment(topology)?;
    if let Ok(data) = file.get_array("initialData") {
        initial_data(&cluster, topology, data)?;
    }
    let mut run = TestRun {
        kind,
        cluster: &cluster,
        topology,
        entities: Entities::default(),
        threads: HashMap::new(),
        fail_points: Vec::new(),
        descriptions: HashMap::new(),
    };
    let result = run.run_body(file, test);
    run.teardown();
    result?;
    if let Ok(outcome) = test.get_array("outcome") {
        check_outcome(&cluster, topology, outcome)?;
    }
    Ok(())
}

impl TestRun<'_> {
    fn run_body(&mut self, file: &Document, test: &Document) -> Result<(), String> {
        if let Ok(entities) = file.get_array("createEntities") {
            self.create_entities(entities)?;
        }
        let operations = test.get_array("operations").map_err(|_| "a test needs operations")?;
        for (i, op) in operations.iter().enumerate() {
            let op = op.as_document().ok_or("an operation must be a document")?;
            let name = op.get_str("name").unwrap_or("?");
            self.operation(op).map_err(|e| format!("operation {i} ({name}): {e}"))?;
        }
        if let Ok(expected) = test.get_array("expectEvents") {
            for e in expected {
                self.expect_events(e.as_document().ok_or("expectEvents entries must be documents")?)?;
            }
        }
        if let Ok(expected) = test.get_array("expectLogMessages") {
            for e in expected {
                self.expect_log_messages(
                    e.as_document().ok_or("expectLogMessages entries must be documents")?,
                )?;
            }
        }
        Ok(())
    }

    /// Turns the fail points off and closes every client.
    fn teardown(&mut self) {
        for (client, fail_point) in std::mem::take(&mut self.fail_points) {
            if let Some(c) = self.entities.clients.get(&client) {
                let off = doc! { "configureFailPoint": fail_point.get_str("configureFailPoint").unwrap_or("failCommand"), "mode": "off" };
                let _ = c.run("admin", off, false);
            }
        }
        for (_, thread) in self.threads.drain() {
            if let Some(handle) = thread {
                let _ = handle.join();
            }
        }
        for c in self.entities.clients.values() {
            if !c.closed.load(std::sync::atomic::Ordering::SeqCst) {
                let _ = c.close();
            }
        }
    }

    fn create_entities(&mut self, entities: &bson::Array) -> Result<(), String> {
        for entity in entities {
            let entity = entity.as_document().ok_or("an entity must be a document")?;
            let (kind, spec) = entity.iter().next().ok_or("an empty entity")?;
            let spec = spec.as_document().ok_or("an entity must be a document")?;
            let id = spec.get_str("id").map_err(|_| "an entity needs an id")?.to_owned();
            match kind.as_str() {
                "client" => {
                    let client = self.create_client(spec)?;
                    self.entities.clients.insert(id, Arc::new(client));
                }
                "database" => {
                    let client = spec.get_str("client").map_err(|_| "a database needs a client")?;
                    let name = spec.get_str("databaseName").map_err(|_| "a database needs a databaseName")?;
                    self.entities.databases.insert(id, (client.to_owned(), name.to_owned()));
                }
                "thread" => {
                    self.threads.insert(id, None);
                }
                "collection" => {
                    let db = spec.get_str("database").map_err(|_| "a collection needs a database")?;
                    let name =
                        spec.get_str("collectionName").map_err(|_| "a collection needs a collectionName")?;
                    let mut read_preference = None;
                    if let Ok(options) = spec.get_document("collectionOptions") {
                        for (k, v) in options {
                            match (k.as_str(), v) {
                                ("readPreference", Bson::Document(rp)) => {
                                    read_preference = Some(parse_read_preference(rp)?);
                                }
                                _ => return Err(format!("unsupported collection option {k}")),
                            }
                        }
                    }
                    self.entities.collections.insert(id, (db.to_owned(), name.to_owned(), read_preference));
                }
                other => return Err(format!("unsupported entity type {other}")),
            }
        }
        Ok(())
    }

    fn create_client(&self, spec: &Document) -> Result<ClientEntity, String> {
        for key in spec.keys() {
            if !matches!(
                key.as_str(),
                "id" | "uriOptions" | "observeEvents" | "observeLogMessages" | "useMultipleMongoses"
            ) {
                return Err(format!("unsupported client option {key}"));
            }
        }
        let multiple = spec.get_bool("useMultipleMongoses").unwrap_or(false);
        let mut hosts: Vec<String> = self.cluster.addresses().iter().map(ToString::to_string).collect();
        if matches!(self.topology, Topology::Sharded | Topology::LoadBalanced) && !multiple {
            hosts.truncate(1);
        }
        let mut query = Vec::new();
        match self.topology {
            Topology::ReplicaSet => query.push("replicaSet=rs0".to_owned()),
            Topology::LoadBalanced => query.push("loadBalanced=true".to_owned()),
            Topology::Single | Topology::Sharded => {}
        }
        let mut retry_writes = true;
        let mut retry_reads = true;
        let mut socket_timeout = None;
        let mut write_concern = None;
        if let Ok(options) = spec.get_document("uriOptions") {
            for (k, v) in options {
                let text = match v {
                    Bson::String(s) => s.clone(),
                    Bson::Boolean(b) => b.to_string(),
                    Bson::Int32(i) => i.to_string(),
                    Bson::Int64(i) => i.to_string(),
                    Bson::Double(d) => d.to_string(),
                    other => return Err(format!("unsupported uriOptions value {k}: {other}")),
                };
                // Options of the operation layer are the runner's; the rest go to the adapter.
                match k.as_str() {
                    "retryWrites" => retry_writes = v.as_bool().unwrap_or(true),
                    "retryReads" => retry_reads = v.as_bool().unwrap_or(true),
                    "socketTimeoutMS" => {
                        let ms: u64 = text.parse().map_err(|_| format!("bad socketTimeoutMS {text}"))?;
                        socket_timeout = (ms > 0).then(|| Duration::from_millis(ms));
                    }
                    "w" => write_concern = Some(v.clone()),
                    _ => query.push(format!("{k}={}", text.replace(' ', "%20"))),
                }
            }
        }
        let uri = format!("mongodb://{}/?{}", hosts.join(","), query.join("&"));
        let config = sdam_adapter::config_from_uri(&uri).map_err(|e| format!("{uri}: {e}"))?.topology;
        let handshake =
            sdam::handshake::handshake_command(&config.metadata.to_document(), &[], config.load_balanced);
        // One timeout convention: `None` is no limit (connectTimeoutMS=0).
        let connect_timeout = config.connect_timeout.filter(|t| !t.is_zero());
        let observe_events = spec
            .get_array("observeEvents")
            .map(|a| a.iter().filter_map(Bson::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        let mut observe_logs = Vec::new();
        if let Ok(logs) = spec.get_document("observeLogMessages") {
            for (component, level) in logs {
                let level = level.as_str().and_then(level_rank).ok_or("bad observeLogMessages level")?;
                observe_logs.push((component.clone(), level));
            }
        }
        let log = Arc::new(EventLog::default());
        let client = adapter::start(self.kind, config, Arc::clone(&log))?;
        Ok(ClientEntity {
            client,
            log,
            observe_events,
            observe_logs,
            handshake,
            connect_timeout,
            socket_timeout,
            retry_writes,
            retry_reads,
            write_concern,
            single: self.topology == Topology::Single,
            closed: std::sync::atomic::AtomicBool::new(false),
            next_operation_id: std::sync::atomic::AtomicI64::new(1),
        })
    }

    fn operation(&mut self, op: &Document) -> Result<(), String> {
        let name = op.get_str("name").map_err(|_| "an operation needs a name")?;
        let object = op.get_str("object").map_err(|_| "an operation needs an object")?;
        let empty = Document::new();
        let args = op.get_document("arguments").unwrap_or(&empty);
        let result = if object == "testRunner" {
            self.runner_operation(name, args).map(|()| None)
        } else {
            self.entities.entity_operation(object, name, args)
        };
        check_result(op, result)
    }

    fn runner_operation(&mut self, name: &str, args: &Document) -> Result<(), OpOutcome> {
        match name {
            "createEntities" => {
                let entities =
                    args.get_array("entities").map_err(|_| fail("createEntities needs entities"))?;
                self.create_entities(entities).map_err(OpOutcome::Runner)
            }
            "failPoint" => {
                let client = args.get_str("client").map_err(|_| fail("failPoint needs a client"))?;
                let fail_point =
                    args.get_document("failPoint").map_err(|_| fail("failPoint needs a failPoint"))?;
                let c = self.entities.client(client).map_err(OpOutcome::Runner)?;
                let reply = c
                    .run("admin", fail_point.clone(), false)
                    .map_err(|e| fail(&format!("configureFailPoint: {e}")))?;
                if reply.get_f64("ok").ok() != Some(1.0) {
                    return Err(fail(&format!("configureFailPoint: {reply}")));
                }
                self.fail_points.push((client.to_owned(), fail_point.clone()));
                Ok(())
            }
            "waitForEvent" | "assertEventCount" => {
                let client = args.get_str("client").map_err(|_| fail("needs a client"))?;
                let event = args.get_document("event").map_err(|_| fail("needs an event"))?;
                let count = args
                    .get_i32("count")
                    .ok()
                    .map(i64::from)
                    .or_else(|| args.get_i64("count").ok())
                    .unwrap_or(1);
                let count = usize::try_from(count).unwrap_or(0);
                let c = self.entities.client(client).map_err(OpOutcome::Runner)?;
                let counter =
                    |events: &[Observed]| events.iter().filter(|o| event_matches(event, o).is_ok()).count();
                if name == "waitForEvent" {
                    if !c.log.wait_until(WAIT_FOR_EVENT, |events| counter(events) >= count) {
                        let seen = counter(&c.log.snapshot());
                        return Err(fail(&format!(
                            "waited {WAIT_FOR_EVENT:?} for {count} × {event}, saw {seen}"
                        )));
                    }
                    Ok(())
                } else {
                    let seen = counter(&c.log.snapshot());
                    if seen == count {
                        Ok(())
                    } else {
                        Err(fail(&format!("expected {count} × {event}, observed {seen}")))
                    }
                }
            }
            "recordTopologyDescription" => {
                let client = args.get_str("client").map_err(|_| fail("needs a client"))?;
                let id = args.get_str("id").map_err(|_| fail("needs an id"))?;
                let description =
                    self.entities.client(client).map_err(OpOutcome::Runner)?.client.description();
                self.descriptions.insert(id.to_owned(), description);
                Ok(())
            }
            "assertTopologyType" => {
                let id =
                    args.get_str("topologyDescription").map_err(|_| fail("needs a topologyDescription"))?;
                let want = args.get_str("topologyType").map_err(|_| fail("needs a topologyType"))?;
                let description =
                    self.descriptions.get(id).ok_or_else(|| fail(&format!("no description {id}")))?;
                let actual = description.topology_type.as_str();
                if actual == want {
                    Ok(())
                } else {
                    Err(fail(&format!("expected topology type {want}, the description has {actual}")))
                }
            }
            "waitForPrimaryChange" => {
                let client = args.get_str("client").map_err(|_| fail("needs a client"))?;
                let id = args.get_str("priorTopologyDescription").map_err(|_| fail("needs a description"))?;
                let limit = args.get_i32("timeoutMS").ok().map_or(10_000, i64::from);
                let primary = |d: &sdam::TopologyDescription| {
                    d.servers
                        .iter()
                        .find(|s| s.server_type == sdam::ServerType::RSPrimary)
                        .map(|s| s.address.clone())
                };
                let prior =
                    primary(self.descriptions.get(id).ok_or_else(|| fail(&format!("no description {id}")))?);
                let c = self.entities.client(client).map_err(OpOutcome::Runner)?;
                let deadline =
                    std::time::Instant::now() + Duration::from_millis(u64::try_from(limit).unwrap_or(0));
                loop {
                    let now = primary(&c.client.description());
                    if now.is_some() && now != prior {
                        return Ok(());
                    }
                    if std::time::Instant::now() >= deadline {
                        return Err(fail(&format!(
                            "the primary did not change from {prior:?} within {limit} ms"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            "runOnThread" => {
                let thread = args.get_str("thread").map_err(|_| fail("runOnThread needs a thread"))?;
                let op =
                    args.get_document("operation").map_err(|_| fail("runOnThread needs an operation"))?;
                let slot = self
                    .threads
                    .get_mut(thread)
                    .ok_or_else(|| fail(&format!("no thread entity {thread}")))?;
                if slot.as_ref().is_some_and(|h| !h.is_finished()) {
                    return Err(fail(&format!("thread {thread} is still running an operation")));
                }
                let (entities, op) = (self.entities.clone(), op.clone());
                let name = format!("unified-{thread}");
                let handle = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || {
                        let object =
                            op.get_str("object").map_err(|_| "an operation needs an object")?.to_owned();
                        let name = op.get_str("name").map_err(|_| "an operation needs a name")?.to_owned();
                        let empty = Document::new();
                        let args = op.get_document("arguments").unwrap_or(&empty);
                        check_result(&op, entities.entity_operation(&object, &name, args))
                    })
                    .map_err(|e| fail(&e.to_string()))?;
                *slot = Some(handle);
                Ok(())
            }
            "waitForThread" => {
                let thread = args.get_str("thread").map_err(|_| fail("waitForThread needs a thread"))?;
                let slot = self
                    .threads
                    .get_mut(thread)
                    .ok_or_else(|| fail(&format!("no thread entity {thread}")))?;
                match slot.take() {
                    Some(handle) => match handle.join() {
                        Ok(result) => result.map_err(|e| fail(&format!("on {thread}: {e}"))),
                        Err(_) => Err(fail(&format!("{thread} panicked"))),
                    },
                    None => Ok(()),
                }
            }
            "wait" => {
                let ms =
                    args.get_i32("ms").ok().map(i64::from).or_else(|| args.get_i64("ms").ok()).unwrap_or(0);
                std::thread::sleep(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
                Ok(())
            }
            other => Err(fail(&format!("unsupported runner operation {other}"))),
        }
    }

    fn expect_events(&self, expected: &Document) -> Result<(), String> {
        let client = expected.get_str("client").map_err(|_| "expectEvents needs a client")?;
        let event_type = expected.get_str("eventType").unwrap_or("command");
        let events = expected.get_array("events").map_err(|_| "expectEvents needs events")?;
        let ignore_extra = expected.get_bool("ignoreExtraEvents").unwrap_or(false);
        let c = self.entities.client(client)?;
        let observed: Vec<Observed> = c
            .log
            .complete_snapshot()?
            .into_iter()
            .filter(|o| {
                event_doc(o)
                    .is_some_and(|(t, name, _)| t == event_type && c.observe_events.iter().any(|n| n == name))
            })
            .collect();
        let describe = |list: &[Observed]| -> String {
            list.iter()
                .filter_map(event_doc)
                .map(|(_, n, d)| format!("{n} {d}"))
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        if observed.len() < events.len() || (!ignore_extra && observed.len() != events.len()) {
            return Err(format!(
                "{client}: expected {} {event_type} events, observed {}:\n  {}",
                events.len(),
                observed.len(),
                describe(&observed)
            ));
        }
        for (i, (e, o)) in events.iter().zip(&observed).enumerate() {
            let e = e.as_document().ok_or("an expected event must be a document")?;
            event_matches(e, o).map_err(|why| {
                format!("{client}: {event_type} event {i}: {why}\n observed:\n  {}", describe(&observed))
            })?;
        }
        Ok(())
    }

    fn expect_log_messages(&self, expected: &Document) -> Result<(), String> {
        let client = expected.get_str("client").map_err(|_| "expectLogMessages needs a client")?;
        let messages = expected.get_array("messages").map_err(|_| "expectLogMessages needs messages")?;
        let ignore_extra = expected.get_bool("ignoreExtraMessages").unwrap_or(false);
        let empty = bson::Array::new();
        let ignore = expected.get_array("ignoreMessages").unwrap_or(&empty);
        let c = self.entities.client(client)?;
        let all = c.log.log_messages();
        let published = all.len();
        let observed: Vec<LogMessage> = all
            .into_iter()
            .filter(|m| {
                let (_, rank) = message_level(m);
                c.observe_logs
                    .iter()
                    .any(|(component, min)| component == component_name(m.component) && rank <= *min)
            })
            .filter(|m| !ignore.iter().filter_map(Bson::as_document).any(|i| log_matches(i, m).is_ok()))
            .collect();
        let describe = || {
            if observed.is_empty() {
                return "(none)".to_owned();
            }
            observed
                .iter()
                .map(|m| format!("{:?} {}", m.message, log_data(m)))
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        // What was expected, for the failure message.
        let expected_list = || {
            messages
                .iter()
                .map(|m| m.as_document().map_or_else(|| m.to_string(), |d| d.to_string()))
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        if observed.len() < messages.len() || (!ignore_extra && observed.len() != messages.len()) {
            return Err(format!(
                "{client}: expected {} log messages, observed {} ({} published before the \
                 observeLogMessages and ignoreMessages filters)\n expected:\n  {}\n observed:\n  {}",
                messages.len(),
                observed.len(),
                published,
                expected_list(),
                describe()
            ));
        }
        for (i, (e, m)) in messages.iter().zip(&observed).enumerate() {
            let e = e.as_document().ok_or("an expected log message must be a document")?;
            log_matches(e, m).map_err(|why| {
                format!("{client}: log message {i}: {why}\n expected:\n  {e}\n observed:\n  {}", describe())
            })?;
        }
        Ok(())
    }
}

/// `command` with its `name` key first: the command name is the first key of a command, and
/// the JSON reader does not keep the file's key order.
fn name_first(command: &Document, name: &str) -> Document {
    let mut out = Document::new();
    if let Some(v) = command.get(name) {
        out.insert(name, v.clone());
    }
    for (k, v) in command {
        if k != name {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// A read preference document of the format (`mode`, `tagSets`, `maxStalenessSeconds`).
fn parse_read_preference(rp: &Document) -> Result<ReadPreference, String> {
    let mode =
        match rp.get_str("mode").map_err(|_| "a read preference needs a mode")?.to_ascii_lowercase().as_str()
        {
            "primary" => ReadPreferenceMode::Primary,
            "primarypreferred" => ReadPreferenceMode::PrimaryPreferred,
            "secondary" => ReadPreferenceMode::Secondary,
            "secondarypreferred" => ReadPreferenceMode::SecondaryPreferred,
            "nearest" => ReadPreferenceMode::Nearest,
            other => return Err(format!("unknown read preference mode {other}")),
        };
    let mut read_preference = ReadPreference::new(mode);
    for (k, v) in rp {
        match k.as_str() {
            "mode" => {}
            "tagSets" => {
                let sets = v.as_array().ok_or("tagSets must be an array")?;
                let mut tag_sets = Vec::new();
                for set in sets {
                    let set = set.as_document().ok_or("a tag set must be a document")?;
                    let pairs = set
                        .iter()
                        .map(|(k, v)| {
                            v.as_str().map(|v| (k.clone(), v.to_owned())).ok_or("tags must be strings")
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    tag_sets.push(sdam::TagSet(pairs));
                }
                read_preference = read_preference.with_tag_sets(tag_sets).map_err(|e| e.to_string())?;
            }
            "maxStalenessSeconds" => {
                let seconds = v
                    .as_i32()
                    .map(i64::from)
                    .or_else(|| v.as_i64())
                    .ok_or("maxStalenessSeconds must be an integer")?;
                read_preference =
                    read_preference.with_max_staleness_seconds(Some(seconds)).map_err(|e| e.to_string())?;
            }
            other => return Err(format!("unsupported read preference field {other}")),
        }
    }
    Ok(read_preference)
}

fn component_name(c: LogComponent) -> &'static str {
    c.as_str()
}

fn log_matches(expected: &Document, m: &LogMessage) -> Result<(), String> {
    if let Ok(level) = expected.get_str("level") {
        let (actual, _) = message_level(m);
        if level != actual {
            return Err(format!("expected level {level}, found {actual} ({})", m.message));
        }
    }
    if let Ok(component) = expected.get_str("component") {
        if component != component_name(m.component) {
            return Err(format!("expected component {component}, found {}", m.component));
        }
    }
    if expected.contains_key("failureIsRedacted") {
        return Err("failureIsRedacted is not supported".into());
    }
    let data = expected.get_document("data").map_err(|_| "an expected log message needs data")?;
    matching::matches_root(data, &log_data(m), "data")
}

/// What an operation produced that the test did not expect.
enum OpOutcome {
    /// The runner could not carry it out.
    Runner(String),
    /// The operation failed.
    Op(OpError),
}

fn fail(message: &str) -> OpOutcome {
    OpOutcome::Runner(message.to_owned())
}

fn check_result(op: &Document, result: Result<Option<Bson>, OpOutcome>) -> Result<(), String> {
    match (result, op.get_document("expectError")) {
        (Err(OpOutcome::Runner(e)), _) => Err(e),
        (Ok(_), Ok(expected)) => Err(format!("expected an error {expected}, the operation succeeded")),
        (Err(OpOutcome::Op(e)), Ok(expected)) => {
            for (k, v) in expected {
                match k.as_str() {
                    "isError" => {}
                    "isClientError" => {
                        if v.as_bool() != Some(e.is_client_error()) {
                            return Err(format!("isClientError {v}, but the error was {e}"));
                        }
                    }
                    "errorCode" => {
                        let code = match &e {
                            OpError::Command(reply) => reply.get_i32("code").ok(),
                            _ => None,
                        };
                        let want = v.as_i32();
                        if code != want {
                            return Err(format!("expected error code {v}, got {e}"));
                        }
                    }
                    "errorLabelsContain" | "errorLabelsOmit" => {
                        let labels = e.labels();
                        let want = v.as_array().ok_or("error labels must be an array")?;
                        for label in want.iter().filter_map(Bson::as_str) {
                            let has = labels.iter().any(|l| l == label);
                            if has != (k == "errorLabelsContain") {
                                return Err(format!("{k} {label}: the error was {e}"));
                            }
                        }
                    }
                    other => return Err(format!("unsupported expectError assertion {other}")),
                }
            }
            Ok(())
        }
        (Err(OpOutcome::Op(e)), Err(_)) => Err(format!("unexpected error: {e}")),
        (Ok(actual), Err(_)) => {
            let Some(expected) = op.get("expectResult") else { return Ok(()) };
            let root = matches!(expected, Bson::Document(_));
            matching::matches(expected, actual.as_ref(), root, "result")
        }
    }
}

/// A connection to member 0 (the primary, the standalone or the first mongos: every
/// member serves the deployment's documents) for initial data and outcomes.
fn raw(cluster: &Cluster, _topology: Topology) -> Result<RawClient, String> {
    let address = cluster.address(0).map_err(|e| e.to_string())?;
    RawClient::connect(address.to_string()).map_err(|e| format!("cannot reach the deployment: {e}"))
}

fn raw_command(client: &mut RawClient, command: &Document) -> Result<Document, String> {
    let raw = RawDocumentBuf::try_from(command).map_err(|e| e.to_string())?;
    let reply = client.command(&raw).map_err(|e| e.to_string())?;
    let reply = Document::try_from(reply.as_ref()).map_err(|e| e.to_string())?;
    if reply.get_f64("ok").ok() == Some(1.0) {
        Ok(reply)
    } else {
        Err(format!("{command}: {reply}"))
    }
}

/// unified-test-format.md, "initialData": each collection dropped, then its documents
/// inserted.
fn initial_data(cluster: &Cluster, topology: Topology, data: &bson::Array) -> Result<(), String> {
    let mut client = raw(cluster, topology)?;
    for entry in data {
        let entry = entry.as_document().ok_or("initialData entries must be documents")?;
        let db = entry.get_str("databaseName").map_err(|_| "initialData needs databaseName")?;
        let coll = entry.get_str("collectionName").map_err(|_| "initialData needs collectionName")?;
        raw_command(&mut client, &doc! { "drop": coll, "$db": db })?;
        let documents = entry.get_array("documents").cloned().unwrap_or_default();
        if documents.is_empty() {
            raw_command(&mut client, &doc! { "create": coll, "$db": db })?;
        } else {
            raw_command(&mut client, &doc! { "insert": coll, "documents": documents, "$db": db })?;
        }
    }
    Ok(())
}

/// unified-test-format.md, "outcome": the collection holds exactly these documents, by _id.
fn check_outcome(cluster: &Cluster, topology: Topology, outcome: &bson::Array) -> Result<(), String> {
    let mut client = raw(cluster, topology)?;
    for entry in outcome {
        let entry = entry.as_document().ok_or("outcome entries must be documents")?;
        let db = entry.get_str("databaseName").map_err(|_| "outcome needs databaseName")?;
        let coll = entry.get_str("collectionName").map_err(|_| "outcome needs collectionName")?;
        let expected = entry.get_array("documents").cloned().unwrap_or_default();
        let reply =
            raw_command(&mut client, &doc! { "find": coll, "filter": {}, "sort": { "_id": 1 }, "$db": db })?;
        let actual =
            reply.get_document("cursor").and_then(|c| c.get_array("firstBatch")).cloned().unwrap_or_default();
        matching::matches(
            &Bson::Array(expected),
            Some(&Bson::Array(actual)),
            false,
            &format!("outcome {db}.{coll}"),
        )?;
    }
    Ok(())
}
