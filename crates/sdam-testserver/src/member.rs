//! What each scripted server is, and the replies it gives: `hello` and legacy hello built from
//! the whole deployment's state so every member tells the same story, plus a few ordinary
//! commands.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bson::oid::ObjectId;
use bson::{doc, Bson, DateTime, Document, RawDocument, RawDocumentBuf};

use crate::listener::Acceptor;

/// The `maxWireVersion` every scripted server reports (MongoDB 7.0).
pub const MAX_WIRE_VERSION: i32 = 21;
/// The `minWireVersion` every scripted server reports.
pub const MIN_WIRE_VERSION: i32 = 0;

/// What a scripted server is, as its `hello` reply tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// The replica set primary.
    Primary,
    /// A replica set secondary (listed in `hosts`).
    Secondary,
    /// A priority-0 secondary (listed in `passives`).
    Passive,
    /// An arbiter (listed in `arbiters`).
    Arbiter,
    /// A hidden secondary (listed nowhere; answers `hidden: true`).
    Hidden,
    /// A `mongos` router.
    Mongos,
    /// A standalone `mongod`.
    Standalone,
}

/// A scripted misbehaviour of a server's replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Fault {
    /// Well-formed replies.
    #[default]
    None,
    /// Every reply is an `OP_MSG` frame whose body is not BSON.
    GarbageReply,
    /// Every reply starts with a header declaring a 64 MiB message (over the 48 MB limit).
    OversizedReply,
}

/// How one member of a deployment starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSpec {
    pub(crate) role: Role,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) latency: Duration,
    /// See [`MemberSpec::command_latency`] (`crate::peers`); `None`: `latency`.
    pub(crate) command_latency: Option<Duration>,
    pub(crate) streaming: bool,
    pub(crate) up: bool,
    pub(crate) advertised_host: Option<String>,
}

impl MemberSpec {
    /// A running, streaming member with this role, no tags and no added latency.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            tags: Vec::new(),
            latency: Duration::ZERO,
            command_latency: None,
            streaming: true,
            up: true,
            advertised_host: None,
        }
    }

    /// Replica set tags.
    pub fn tags<K: Into<String>, V: Into<String>>(mut self, tags: impl IntoIterator<Item = (K, V)>) -> Self {
        self.tags = tags.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self
    }

    /// Latency injected before each reply.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// `false`: ignore `maxAwaitTimeMS` and answer awaitable hellos at once, without
    /// `moreToCome`, like a server without the streaming protocol.
    pub fn streaming(mut self, streaming: bool) -> Self {
        self.streaming = streaming;
        self
    }

    /// The member calls itself `host:port` (its `me`, and its entry in every member's `hosts`,
    /// `primary`) instead of `127.0.0.1:port`, like a container or pod known to the replica set
    /// config by a name the client cannot resolve (the Docker / Kubernetes / tunnel case).
    pub fn advertised_as(mut self, host: &str) -> Self {
        self.advertised_host = Some(host.to_owned());
        self
    }

    /// The member is down at start (its port is reserved; [`crate::Cluster::restart`] starts it).
    pub fn down(mut self) -> Self {
        self.up = false;
        self
    }
}

/// The kind of deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Deployment {
    ReplicaSet(String),
    Sharded,
    Standalone,
}

/// The whole deployment, behind the cluster's mutex.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) deployment: Deployment,
    pub(crate) set_version: i64,
    /// The electionId of the current primary's term.
    pub(crate) election_id: ObjectId,
    election_term: u32,
    pub(crate) members: Vec<MemberState>,
    pub(crate) shutdown: bool,
    /// The documents every member serves (`insert`, `find`, ...).
    pub(crate) data: crate::store::Store,
}

/// One member's state.
#[derive(Debug)]
pub(crate) struct MemberState {
    pub(crate) port: u16,
    pub(crate) role: Role,
    /// Whether the replica set config lists it (false after `remove_member`).
    pub(crate) in_config: bool,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) latency: Duration,
    pub(crate) command_latency: Option<Duration>,
    pub(crate) streaming: bool,
    pub(crate) fault: Fault,
    /// The host it calls itself, if not `127.0.0.1` ([`MemberSpec::advertised_as`]).
    pub(crate) advertised_host: Option<String>,
    pub(crate) process_id: ObjectId,
    pub(crate) counter: i64,
    /// Bumped on every crash: connections of an older incarnation stop.
    pub(crate) incarnation: u64,
    pub(crate) up: bool,
    pub(crate) hello_count: u64,
    pub(crate) command_count: u64,
    /// The (driver, application) names of the handshakes answered (`crate::peers`).
    pub(crate) handshakes: Vec<(String, String)>,
    /// Clones of the open connections' sockets, to close them on a crash.
    pub(crate) connections: BTreeMap<u64, TcpStream>,
    pub(crate) next_connection_id: u64,
    pub(crate) acceptor: Option<Acceptor>,
    /// The `failCommand` fail point set by `configureFailPoint`.
    pub(crate) fail_point: Option<crate::fail_point::FailPoint>,
}

impl MemberState {
    pub(crate) fn new(spec: &MemberSpec, port: u16) -> Self {
        Self {
            port,
            role: spec.role,
            in_config: true,
            tags: spec.tags.clone(),
            latency: spec.latency,
            command_latency: spec.command_latency,
            streaming: spec.streaming,
            fault: Fault::None,
            advertised_host: spec.advertised_host.clone(),
            process_id: ObjectId::new(),
            counter: 0,
            incarnation: 0,
            up: spec.up,
            hello_count: 0,
            command_count: 0,
            handshakes: Vec::new(),
            connections: BTreeMap::new(),
            next_connection_id: 1,
            acceptor: None,
            fail_point: None,
        }
    }

    /// `127.0.0.1:port`, or the advertised host with the port.
    pub(crate) fn address(&self) -> String {
        format!("{}:{}", self.advertised_host.as_deref().unwrap_or("127.0.0.1"), self.port)
    }

    /// Whether writes are accepted here.
    pub(crate) fn writable(&self) -> bool {
        matches!(self.role, Role::Primary | Role::Mongos | Role::Standalone) && self.in_config
    }
}

impl State {
    pub(crate) fn new(deployment: Deployment) -> Self {
        let mut state = Self {
            deployment,
            set_version: 1,
            election_id: ObjectId::from_bytes([0; 12]),
            election_term: 0,
            members: Vec::new(),
            shutdown: false,
            data: crate::store::Store::default(),
        };
        state.new_term();
        state
    }

    /// Starts a new election term: a new, larger electionId (`7fffffff` + term, like servers).
    pub(crate) fn new_term(&mut self) {
        self.election_term += 1;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
        bytes[8..].copy_from_slice(&self.election_term.to_be_bytes());
        self.election_id = ObjectId::from_bytes(bytes);
    }

    /// Every member's state changed: bump each topologyVersion counter.
    pub(crate) fn bump_all(&mut self) {
        for m in &mut self.members {
            m.counter += 1;
        }
    }

    fn listed(&self, roles: &[Role]) -> Vec<String> {
        self.members
            .iter()
            .filter(|m| m.in_config && roles.contains(&m.role))
            .map(MemberState::address)
            .collect()
    }

    /// The reply of member `index` to `hello` (`legacy`: to `isMaster`).
    pub(crate) fn hello_reply(
        &self,
        index: usize,
        legacy: bool,
        hello_ok: bool,
        connection_id: u64,
    ) -> Document {
        let Some(m) = self.members.get(index) else { return doc! { "ok": 0, "errmsg": "no such member" } };
        let writable_key = if legacy { "ismaster" } else { "isWritablePrimary" };
        let mut d = Document::new();
        let primary_like = match (&self.deployment, m.role) {
            (Deployment::ReplicaSet(_), Role::Primary) => m.in_config,
            (Deployment::ReplicaSet(_), _) => false,
            _ => true,
        };
        d.insert(writable_key, primary_like);
        d.insert("topologyVersion", doc! { "processId": m.process_id, "counter": m.counter });
        match &self.deployment {
            Deployment::ReplicaSet(name) if m.in_config => {
                d.insert("secondary", matches!(m.role, Role::Secondary | Role::Passive | Role::Hidden));
                d.insert("setName", name.as_str());
                d.insert("setVersion", self.set_version);
                d.insert("hosts", self.listed(&[Role::Primary, Role::Secondary]));
                let passives = self.listed(&[Role::Passive]);
                if !passives.is_empty() {
                    d.insert("passives", passives);
                }
                let arbiters = self.listed(&[Role::Arbiter]);
                if !arbiters.is_empty() {
                    d.insert("arbiters", arbiters);
                }
                if let Some(p) = self.members.iter().find(|p| p.in_config && p.role == Role::Primary) {
                    d.insert("primary", p.address());
                }
                d.insert("me", m.address());
                match m.role {
                    Role::Primary => {
                        d.insert("electionId", self.election_id);
                    }
                    Role::Passive => {
                        d.insert("passive", true);
                    }
                    Role::Arbiter => {
                        d.insert("arbiterOnly", true);
                    }
                    Role::Hidden => {
                        d.insert("hidden", true);
                    }
                    _ => {}
                }
                if !m.tags.is_empty() {
                    let tags: Document =
                        m.tags.iter().map(|(k, v)| (k.clone(), Bson::from(v.as_str()))).collect();
                    d.insert("tags", tags);
                }
                if m.role != Role::Arbiter {
                    d.insert("lastWrite", doc! { "lastWriteDate": DateTime::from_system_time(wall_clock()) });
                }
            }
            // A member removed from the config answers like a node without a valid config.
            Deployment::ReplicaSet(_) => {
                d.insert("secondary", false);
                d.insert("isreplicaset", true);
                d.insert("info", "Does not have a valid replica set config");
            }
            Deployment::Sharded => {
                d.insert("msg", "isdbgrid");
            }
            Deployment::Standalone => {}
        }
        if hello_ok {
            d.insert("helloOk", true);
        }
        d.insert("maxBsonObjectSize", 16_777_216);
        d.insert("maxMessageSizeBytes", 48_000_000);
        d.insert("maxWriteBatchSize", 100_000);
        d.insert("localTime", DateTime::from_system_time(wall_clock()));
        d.insert("logicalSessionTimeoutMinutes", 30);
        d.insert("connectionId", i64::try_from(connection_id).unwrap_or(i64::MAX));
        d.insert("minWireVersion", MIN_WIRE_VERSION);
        d.insert("maxWireVersion", MAX_WIRE_VERSION);
        d.insert("ok", 1.0);
        d
    }

    /// The reply of member `index` to any command other than hello.
    pub(crate) fn command_reply(&self, index: usize, name: &str, body: &RawDocument) -> Document {
        let Some(m) = self.members.get(index) else { return doc! { "ok": 0, "errmsg": "no such member" } };
        let tv = doc! { "processId": m.process_id, "counter": m.counter };
        match name {
            "ping" | "buildInfo" | "buildinfo" | "endSessions" => doc! { "ok": 1.0 },
            "find" | "aggregate" | "count" => {
                if m.role == Role::Arbiter || !m.in_config {
                    return doc! {
                        "ok": 0.0, "code": 13435, "codeName": "NotPrimaryNoSecondaryOk",
                        "errmsg": "not primary and secondaryOk=false", "topologyVersion": tv,
                    };
                }
                let collection = body.get_str(name).unwrap_or("unknown");
                doc! { "cursor": { "id": 0i64, "ns": format!("test.{collection}"), "firstBatch": [] }, "ok": 1.0 }
            }
            "insert" | "update" | "delete" | "findAndModify" | "create" | "drop" => {
                if m.writable() {
                    doc! { "n": 1, "ok": 1.0 }
                } else {
                    crate::peers::not_writable_primary(body, tv)
                }
            }
            other => doc! {
                "ok": 0.0, "code": 59, "codeName": "CommandNotFound",
                "errmsg": format!("no such command: '{other}'"),
            },
        }
    }
}

/// A document as raw BSON (a document built here always converts).
pub(crate) fn to_raw(d: &Document) -> RawDocumentBuf {
    RawDocumentBuf::try_from(d).unwrap_or_default()
}

#[allow(clippy::disallowed_methods)]
fn wall_clock() -> SystemTime {
    let now = SystemTime::now();
    // Millisecond precision, like a server.
    let millis = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}
