//! The SDAM spec test format (server-discovery-and-monitoring/tests/README.md): a `uri`, then
//! phases of hello responses and application errors, each followed by an expected outcome
//! (a topology description, or for monitoring tests the events published).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use sdam::app_error::command_error_from_reply;
use sdam::{
    ApplicationError, ApplicationErrorKind, Command, ConnectionId, ErrorPhase, Event, FailureKind, Input,
    Output, RequestId, ServerAddress, ServerDescription, ServerType, Topology, TopologyDescription,
    TopologyType,
};

use crate::to_document;

/// Runs one SDAM test file.
pub fn run(test: &Value) -> Result<(), String> {
    let mut replay = Replay::new(test)?;
    while let Some(report) = replay.next_phase() {
        let label = report.label();
        report.input_error.map_or(Ok(()), Err).map_err(|e| format!("{label}: {e}"))?;
        if let Some(check) = report.check {
            check.map_err(|e| format!("{label}: {e}"))?;
        }
    }
    Ok(())
}

/// A file of the SDAM format replayed phase by phase through a [`Topology`] (what
/// `sdam replay` prints).
///
/// The responses go through the path a real I/O layer uses: the core's own monitors ask for
/// each check with `Command::SendHello`, and the replay answers the check in flight for the
/// response's address with `Input::MonitorReply`, or `Input::MonitorFailed` for `{}` (a
/// network error): pool clears, heartbeat events, retries and cancellations are the ones an
/// adapter sees. When no check of that server is in flight (its monitor sleeps), the replay
/// asks for one (`Input::RequestImmediateCheck`) and moves its clock to the moment the monitor
/// starts it (minHeartbeatFrequencyMS at most). A response for a server the topology no longer
/// has (or a load balancer, which is never monitored) is one no connection would deliver: it is
/// dropped. Exchanges have no deadline (`connectTimeoutMS` is no limit unless the URI sets it):
/// the replay answers at its own pace.
#[derive(Debug)]
pub struct Replay {
    topology: Topology,
    now: Instant,
    phases: Vec<Value>,
    next: usize,
    checks: Checks,
}

/// What the replay knows of the core's exchanges, from the outputs it drained.
#[derive(Debug, Default)]
struct Checks {
    /// Each server's monitoring connection, from its last `ServerHeartbeatStarted`: the
    /// exchanges on other connections (RTT measurements) are not checks.
    check_connection: BTreeMap<ServerAddress, ConnectionId>,
    /// Exchanges in flight: request, connection, server.
    in_flight: Vec<(RequestId, ConnectionId, ServerAddress)>,
}

impl Checks {
    fn observe(&mut self, output: &Output) {
        match output {
            Output::Event(Event::ServerHeartbeatStarted { address, connection_id, .. }) => {
                self.check_connection.insert(address.clone(), *connection_id);
            }
            Output::Command(Command::SendHello { request, connection, address, .. }) => {
                self.in_flight.push((*request, *connection, address.clone()));
            }
            Output::Command(Command::ReadReply { request, connection, .. }) => {
                if let Some(address) = self.in_flight.iter().find(|x| x.1 == *connection).map(|x| x.2.clone())
                {
                    self.in_flight.push((*request, *connection, address));
                }
            }
            Output::Command(Command::CloseConnection { connection }) => {
                self.in_flight.retain(|x| x.1 != *connection);
            }
            _ => {}
        }
    }

    /// The check of `address` in flight, if any (taken: it is being answered).
    fn take_check(&mut self, address: &ServerAddress) -> Option<RequestId> {
        let connection = self.check_connection.get(address)?;
        let i = self.in_flight.iter().position(|x| &x.2 == address && x.1 == *connection)?;
        Some(self.in_flight.remove(i).0)
    }
}

/// What one phase of a [`Replay`] did.
#[derive(Debug)]
pub struct PhaseReport {
    /// The phase's position, from 0.
    pub index: usize,
    /// The phase's `description`, if it has one.
    pub description: Option<String>,
    /// The events the phase's inputs published (heartbeat events excluded; the first phase
    /// also carries the events of the topology's creation).
    pub events: Vec<Event>,
    /// The topology description after the phase.
    pub topology: Arc<TopologyDescription>,
    /// The comparison with the phase's expected `outcome`: `None` when the file carries none,
    /// else `Err` naming the first difference.
    pub check: Option<Result<(), String>>,
    /// A phase input the replay could not understand (it then stops).
    pub input_error: Option<String>,
}

impl PhaseReport {
    /// "phase N" or "phase N (description)".
    pub fn label(&self) -> String {
        self.description
            .as_ref()
            .map_or_else(|| format!("phase {}", self.index), |d| format!("phase {} ({d})", self.index))
    }
}

impl Replay {
    /// Parses the file's `uri` and creates the topology; `Err` for a file that is not in the
    /// SDAM format or a URI the core rejects.
    pub fn new(test: &Value) -> Result<Self, String> {
        let uri = test["uri"].as_str().ok_or("missing uri")?;
        let cs = sdam::ConnectionString::parse(uri).map_err(|e| format!("invalid uri {uri:?}: {e}"))?;
        let mut config = sdam::TopologyConfig::from_connection_string(&cs);
        if cs.options().connect_timeout.is_none() {
            // The replay answers at its own pace: no deadline of the core's expires meanwhile.
            config.connect_timeout = None;
        }
        // The replay's clock: a fixed origin advanced by one millisecond per input.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let topology = Topology::new(config, now).map_err(|e| format!("invalid configuration: {e}"))?;
        let phases = test["phases"].as_array().ok_or("missing phases")?.clone();
        Ok(Self { topology, now, phases, next: 0, checks: Checks::default() })
    }

    /// The number of phases in the file.
    pub fn phase_count(&self) -> usize {
        self.phases.len()
    }

    /// The topology being replayed.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Runs the next phase; `None` when every phase ran or one could not be understood.
    pub fn next_phase(&mut self) -> Option<PhaseReport> {
        let phase = self.phases.get(self.next)?.clone();
        let index = self.next;
        self.next += 1;
        let mut events = Vec::new();
        let input_error =
            run_phase(&mut self.topology, &mut self.checks, &phase, &mut self.now, &mut events).err();
        if input_error.is_some() {
            self.next = self.phases.len();
        }
        let outcome = &phase["outcome"];
        let check = if input_error.is_some() || outcome.is_null() {
            None
        } else {
            Some(match outcome.get("events") {
                Some(expected) => check_events(expected, &events),
                None => check_outcome(outcome, &self.topology),
            })
        };
        Some(PhaseReport {
            index,
            description: phase["description"].as_str().map(str::to_owned),
            events,
            topology: self.topology.description(),
            check,
            input_error,
        })
    }
}

fn drain(topology: &mut Topology, checks: &mut Checks, events: &mut Vec<Event>) {
    while let Some(output) = topology.poll_output() {
        checks.observe(&output);
        // The SDAM monitoring tests list topology and server events; heartbeats are not part
        // of that format.
        if let Output::Event(e) = output {
            if !matches!(
                e,
                Event::ServerHeartbeatStarted { .. }
                    | Event::ServerHeartbeatSucceeded { .. }
                    | Event::ServerHeartbeatFailed { .. }
            ) {
                events.push(e);
            }
        }
    }
}

/// The check of `address` in flight, started first if its monitor sleeps; `None` if the
/// topology does not monitor `address` (removed, or a load balancer).
fn check_in_flight(
    topology: &mut Topology,
    checks: &mut Checks,
    address: &ServerAddress,
    now: &mut Instant,
    events: &mut Vec<Event>,
) -> Result<Option<RequestId>, String> {
    let td = topology.description();
    if td.topology_type == TopologyType::LoadBalanced || td.server(address).is_none() {
        return Ok(None);
    }
    if let Some(request) = checks.take_check(address) {
        return Ok(Some(request));
    }
    topology.handle(Input::RequestImmediateCheck, *now);
    drain(topology, checks, events);
    // minHeartbeatFrequencyMS at most, in steps of whatever else is due first.
    for _ in 0..64 {
        if let Some(request) = checks.take_check(address) {
            return Ok(Some(request));
        }
        let Some(at) = topology.poll_timeout() else { break };
        *now = (*now).max(at);
        topology.handle_timeout(*now);
        drain(topology, checks, events);
    }
    Err(format!("the core started no check of {address} to answer"))
}

fn run_phase(
    topology: &mut Topology,
    checks: &mut Checks,
    phase: &Value,
    now: &mut Instant,
    events: &mut Vec<Event>,
) -> Result<(), String> {
    drain(topology, checks, events);
    for response in phase["responses"].as_array().into_iter().flatten() {
        *now += Duration::from_millis(1);
        let address = parse_address(&response[0])?;
        let reply = response[1].as_object().ok_or("response is not a document")?;
        let Some(request) = check_in_flight(topology, checks, &address, now, events)? else { continue };
        if reply.is_empty() {
            // `{}` stands for a network error.
            let error = "network error".to_owned();
            topology.handle(Input::MonitorFailed { request, kind: FailureKind::Network, error }, *now);
        } else {
            let doc = to_document(&response[1])?;
            let raw = bson::RawDocumentBuf::try_from(&doc).map_err(|e| e.to_string())?;
            let input = Input::MonitorReply {
                request,
                reply: raw,
                round_trip_time: Duration::ZERO,
                more_to_come: false,
            };
            topology.handle(input, *now);
        }
        drain(topology, checks, events);
    }
    for error in phase["applicationErrors"].as_array().into_iter().flatten() {
        *now += Duration::from_millis(1);
        if let Some(error) = application_error(error, topology)? {
            topology.handle(Input::ApplicationError(error), *now);
        }
        drain(topology, checks, events);
    }
    Ok(())
}

fn parse_address(v: &Value) -> Result<ServerAddress, String> {
    let s = v.as_str().ok_or("address is not a string")?;
    ServerAddress::parse(s).map_err(|e| format!("bad address {s:?}: {e}"))
}

/// Builds the error a test describes; `None` when its response carries no error at all
/// (errors inside `writeErrors` are never considered).
fn application_error(v: &Value, topology: &Topology) -> Result<Option<ApplicationError>, String> {
    let address = parse_address(&v["address"])?;
    let kind = match v["type"].as_str() {
        Some("network") => ApplicationErrorKind::Network,
        Some("timeout") => ApplicationErrorKind::Timeout,
        Some("command") => {
            let doc = to_document(&v["response"])?;
            let raw = bson::RawDocumentBuf::try_from(&doc).map_err(|e| e.to_string())?;
            match command_error_from_reply(&raw) {
                Some(kind) => kind,
                None => return Ok(None),
            }
        }
        other => return Err(format!("unknown application error type {other:?}")),
    };
    // "generation": absent means the pool's current generation (SDAM tests README).
    let generation = match v["generation"].as_u64() {
        Some(g) => u32::try_from(g).unwrap_or(u32::MAX),
        None => topology.connection_generation(&address, None).unwrap_or(0),
    };
    let mut error = ApplicationError::new(address, generation, kind);
    error.max_wire_version = v["maxWireVersion"].as_i64().map_or(0, |w| i32::try_from(w).unwrap_or(i32::MAX));
    error.phase = match v["when"].as_str() {
        Some("beforeHandshakeCompletes") => ErrorPhase::ConnectionEstablishment,
        Some("afterHandshakeCompletes") => ErrorPhase::AfterHandshakeCompletes,
        other => return Err(format!("unknown application error phase {other:?}")),
    };
    Ok(Some(error))
}

fn mismatch(what: &str, expected: impl std::fmt::Debug, actual: impl std::fmt::Debug) -> String {
    format!("{what}: expected {expected:?}, got {actual:?}")
}

fn check_outcome(outcome: &Value, topology: &Topology) -> Result<(), String> {
    let td = topology.description();
    let expected_type = outcome["topologyType"].as_str().ok_or("outcome without topologyType")?;
    if TopologyType::parse(expected_type) != Some(td.topology_type) {
        return Err(mismatch("topologyType", expected_type, td.topology_type));
    }
    if let Some(set_name) = outcome.get("setName") {
        if set_name.as_str() != td.set_name.as_deref() {
            return Err(mismatch("setName", set_name, &td.set_name));
        }
    }
    if let Some(lst) = outcome.get("logicalSessionTimeoutMinutes") {
        if lst.as_i64() != td.logical_session_timeout_minutes {
            return Err(mismatch("logicalSessionTimeoutMinutes", lst, td.logical_session_timeout_minutes));
        }
    }
    if let Some(v) = outcome.get("maxSetVersion") {
        if v.as_i64() != td.max_set_version {
            return Err(mismatch("maxSetVersion", v, td.max_set_version));
        }
    }
    if let Some(v) = outcome.get("maxElectionId") {
        let expected = oid(v)?;
        if expected != td.max_election_id {
            return Err(mismatch("maxElectionId", expected, td.max_election_id));
        }
    }
    if let Some(v) = outcome.get("compatible") {
        if v.as_bool() != Some(td.is_compatible()) {
            return Err(mismatch("compatible", v, td.is_compatible()));
        }
    }
    let servers = outcome["servers"].as_object().ok_or("outcome without servers")?;
    let mut expected_addresses =
        servers.keys().map(|k| parse_address(&Value::from(k.as_str()))).collect::<Result<Vec<_>, _>>()?;
    expected_addresses.sort();
    let actual_addresses: Vec<ServerAddress> = td.servers.addresses().cloned().collect();
    if expected_addresses != actual_addresses {
        return Err(mismatch("servers", expected_addresses, actual_addresses));
    }
    for (address, expected) in servers {
        let address = parse_address(&Value::from(address.as_str()))?;
        let sd = td.server(&address).ok_or("server vanished")?;
        check_server(expected, sd, topology.pool_generation(&address))
            .map_err(|e| format!("server {address}: {e}"))?;
    }
    Ok(())
}

fn oid(v: &Value) -> Result<Option<bson::oid::ObjectId>, String> {
    if v.is_null() {
        return Ok(None);
    }
    match bson::Bson::try_from(v.clone()) {
        Ok(bson::Bson::ObjectId(o)) => Ok(Some(o)),
        _ => Err(format!("expected an ObjectId, found {v}")),
    }
}

fn server_type(v: &Value) -> Result<ServerType, String> {
    // PossiblePrimary is synonymous with Unknown for multi-threaded clients
    // (server-discovery-and-monitoring.md, "ServerType").
    v.as_str().and_then(ServerType::parse).ok_or_else(|| format!("unknown server type {v}"))
}

fn check_server(
    expected: &Value,
    sd: &ServerDescription,
    pool_generation: Option<u32>,
) -> Result<(), String> {
    let ty = server_type(&expected["type"])?;
    if ty != sd.server_type {
        return Err(mismatch("type", ty, sd.server_type));
    }
    if let Some(e) = expected.get("error").and_then(Value::as_str) {
        if !sd.error.as_deref().unwrap_or("").contains(e) {
            return Err(mismatch("error", e, &sd.error));
        }
    }
    if let Some(v) = expected.get("setName") {
        if v.as_str() != sd.set_name.as_deref() {
            return Err(mismatch("setName", v, &sd.set_name));
        }
    }
    if let Some(v) = expected.get("setVersion") {
        if v.as_i64() != sd.set_version {
            return Err(mismatch("setVersion", v, sd.set_version));
        }
    }
    if let Some(v) = expected.get("electionId") {
        if oid(v)? != sd.election_id {
            return Err(mismatch("electionId", v, sd.election_id));
        }
    }
    if let Some(v) = expected.get("logicalSessionTimeoutMinutes") {
        if v.as_i64() != sd.logical_session_timeout_minutes {
            return Err(mismatch("logicalSessionTimeoutMinutes", v, sd.logical_session_timeout_minutes));
        }
    }
    for (key, actual) in [("minWireVersion", sd.min_wire_version), ("maxWireVersion", sd.max_wire_version)] {
        if let Some(v) = expected.get(key) {
            // null means "not known", which this crate keeps as 0.
            if v.as_i64().unwrap_or(0) != i64::from(actual) {
                return Err(mismatch(key, v, actual));
            }
        }
    }
    if let Some(v) = expected.get("topologyVersion") {
        let expected_tv = if v.is_null() {
            None
        } else {
            let doc = to_document(v)?;
            let raw = bson::RawDocumentBuf::try_from(&doc).map_err(|e| e.to_string())?;
            Some(sdam::hello::parse_topology_version(&raw).map_err(|e| e.to_string())?)
        };
        if expected_tv != sd.topology_version {
            return Err(mismatch("topologyVersion", expected_tv, sd.topology_version));
        }
    }
    if let Some(g) = expected.pointer("/pool/generation").and_then(Value::as_u64) {
        if Some(g) != pool_generation.map(u64::from) {
            return Err(mismatch("pool.generation", g, pool_generation));
        }
    }
    Ok(())
}

fn check_events(expected: &Value, actual: &[Event]) -> Result<(), String> {
    let expected = expected.as_array().ok_or("events is not an array")?;
    if expected.len() != actual.len() {
        return Err(format!(
            "expected {} events, got {}: {:?}",
            expected.len(),
            actual.len(),
            actual.iter().map(event_name).collect::<Vec<_>>()
        ));
    }
    for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
        check_event(e, a).map_err(|err| format!("event {i} ({}): {err}", event_name(a)))?;
    }
    Ok(())
}

fn event_name(e: &Event) -> &'static str {
    match e {
        Event::TopologyOpening { .. } => "topology_opening_event",
        Event::TopologyDescriptionChanged { .. } => "topology_description_changed_event",
        Event::ServerOpening { .. } => "server_opening_event",
        Event::ServerDescriptionChanged { .. } => "server_description_changed_event",
        Event::ServerClosed { .. } => "server_closed_event",
        Event::TopologyClosed { .. } => "topology_closed_event",
        _ => "other event",
    }
}

fn check_event(expected: &Value, actual: &Event) -> Result<(), String> {
    let (name, body) =
        expected.as_object().and_then(|o| o.iter().next()).ok_or("malformed expected event")?;
    if name != event_name(actual) {
        return Err(mismatch("event", name, event_name(actual)));
    }
    match actual {
        Event::ServerOpening { address, .. } | Event::ServerClosed { address, .. } => {
            check_address(body, address)
        }
        Event::ServerDescriptionChanged { address, previous, new, .. } => {
            check_address(body, address)?;
            check_event_server(&body["previousDescription"], previous)
                .map_err(|e| format!("previous: {e}"))?;
            check_event_server(&body["newDescription"], new).map_err(|e| format!("new: {e}"))
        }
        Event::TopologyDescriptionChanged { previous, new, .. } => {
            check_event_topology(&body["previousDescription"], previous)
                .map_err(|e| format!("previous: {e}"))?;
            check_event_topology(&body["newDescription"], new).map_err(|e| format!("new: {e}"))
        }
        _ => Ok(()),
    }
}

fn check_address(body: &Value, address: &ServerAddress) -> Result<(), String> {
    let expected = parse_address(&body["address"])?;
    if &expected != address {
        return Err(mismatch("address", expected, address));
    }
    Ok(())
}

fn address_list(v: &Value) -> Result<Vec<ServerAddress>, String> {
    let mut out = v.as_array().into_iter().flatten().map(parse_address).collect::<Result<Vec<_>, _>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

fn check_event_server(expected: &Value, sd: &Arc<ServerDescription>) -> Result<(), String> {
    check_address(expected, &sd.address)?;
    let ty = server_type(&expected["type"])?;
    if ty != sd.server_type {
        return Err(mismatch("type", ty, sd.server_type));
    }
    for (key, actual) in [("hosts", &sd.hosts), ("passives", &sd.passives), ("arbiters", &sd.arbiters)] {
        let list = address_list(&expected[key])?;
        if list[..] != actual[..] {
            return Err(mismatch(key, list, actual));
        }
    }
    if let Some(v) = expected.get("setName") {
        if v.as_str() != sd.set_name.as_deref() {
            return Err(mismatch("setName", v, &sd.set_name));
        }
    }
    if let Some(v) = expected.get("primary") {
        let p = v.as_str().map(|s| parse_address(&Value::from(s))).transpose()?;
        if p != sd.primary {
            return Err(mismatch("primary", p, &sd.primary));
        }
    }
    Ok(())
}

fn check_event_topology(expected: &Value, td: &TopologyDescription) -> Result<(), String> {
    let ty = expected["topologyType"].as_str().ok_or("missing topologyType")?;
    if TopologyType::parse(ty) != Some(td.topology_type) {
        return Err(mismatch("topologyType", ty, td.topology_type));
    }
    if let Some(v) = expected.get("setName") {
        if v.as_str() != td.set_name.as_deref() {
            return Err(mismatch("setName", v, &td.set_name));
        }
    }
    let servers = expected["servers"].as_array().ok_or("missing servers")?;
    let mut by_address: Map<String, Value> = Map::new();
    for s in servers {
        let a = parse_address(&s["address"])?;
        by_address.insert(a.to_string(), s.clone());
    }
    if by_address.len() != td.servers.len() {
        return Err(mismatch(
            "servers",
            by_address.keys().collect::<Vec<_>>(),
            td.servers.addresses().collect::<Vec<_>>(),
        ));
    }
    for sd in td.servers.iter() {
        let e = by_address
            .get(&sd.address.to_string())
            .ok_or_else(|| format!("unexpected server {}", sd.address))?;
        check_event_server(e, sd).map_err(|err| format!("server {}: {err}", sd.address))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    /// A file in the SDAM format (written for this runner, not from the corpus): a known
    /// primary's check fails with a network error. Fed through the core's own monitor (the
    /// path an adapter runs), the failed check clears the pool (server-monitoring.md, "Network
    /// or command error during server check", step 3): generation 1. The by-address inputs the
    /// runner used before left it at 0.
    #[test]
    fn a_failed_check_clears_the_pool() {
        let primary = json!({"ok": 1, "helloOk": true, "isWritablePrimary": true, "setName": "rs",
            "hosts": ["a:27017"], "minWireVersion": 0, "maxWireVersion": 21});
        let test = json!({
            "uri": "mongodb://a/?replicaSet=rs",
            "phases": [
                {"responses": [["a:27017", primary]],
                 "outcome": {"topologyType": "ReplicaSetWithPrimary", "setName": "rs",
                    "servers": {"a:27017": {"type": "RSPrimary", "setName": "rs", "pool": {"generation": 0}}}}},
                {"responses": [["a:27017", {}]],
                 "outcome": {"topologyType": "ReplicaSetNoPrimary", "setName": "rs",
                    "servers": {"a:27017": {"type": "Unknown", "setName": null, "pool": {"generation": 1}}}}},
                // The retry after the network error is answered: known again, same generation.
                {"responses": [["a:27017", primary]],
                 "outcome": {"topologyType": "ReplicaSetWithPrimary", "setName": "rs",
                    "servers": {"a:27017": {"type": "RSPrimary", "setName": "rs", "pool": {"generation": 1}}}}},
            ]
        });
        super::run(&test).unwrap();
    }

    /// A response for a server that is not (or no longer) in the topology reaches no
    /// connection: it is dropped, as a real I/O layer would never deliver it.
    #[test]
    fn a_response_for_a_server_not_monitored_is_dropped() {
        let test = json!({
            "uri": "mongodb://a/?replicaSet=rs",
            "phases": [{"responses": [["z:27017", {"ok": 1, "isWritablePrimary": true, "setName": "rs",
                    "hosts": ["z:27017"], "maxWireVersion": 21}]],
                 "outcome": {"topologyType": "ReplicaSetNoPrimary", "setName": "rs",
                    "servers": {"a:27017": {"type": "Unknown", "setName": null}}}}]
        });
        super::run(&test).unwrap();
    }
}
