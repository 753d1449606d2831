//! The simulated deployment: members with scripted state, and the hello replies they give.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use bson::{doc, Bson, Document, RawDocumentBuf};
use sdam::ServerAddress;

/// The wall-clock time (milliseconds since the Unix epoch) that virtual time zero maps to,
/// for `lastWrite.lastWriteDate`.
pub const EPOCH_MILLIS: i64 = 1_700_000_000_000;

/// What a member is, as its hello reply tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The replica set primary.
    Primary,
    /// A replica set secondary.
    Secondary,
    /// A replica set arbiter.
    Arbiter,
    /// A hidden secondary (not listed in `hosts`).
    Hidden,
    /// A `mongos` router.
    Mongos,
    /// A standalone `mongod`.
    Standalone,
    /// A replica set member that was removed from the config (it answers as a ghost).
    Removed,
}

/// The kind of deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentKind {
    /// A replica set with this name.
    ReplicaSet(String),
    /// A sharded cluster (the members are mongoses).
    Sharded,
    /// Standalone servers.
    Standalone,
}

/// One simulated server.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its role.
    pub role: Role,
    /// Whether its process runs (a crashed member is down).
    pub up: bool,
    /// The round-trip time of every exchange with it.
    pub latency: Duration,
    /// Its replica set tags.
    pub tags: BTreeMap<String, String>,
    /// Whether it streams (answers awaitable hellos when its state changes or after
    /// `maxAwaitTimeMS`, with moreToCome) or answers them at once without moreToCome.
    pub streaming: bool,
    /// Whether it completes the handshake and then closes the connection on every awaitable
    /// hello (a hostile or broken server).
    pub closes_awaitable: bool,
    /// How many of the next hellos it answers with a command error (`ok: 0`, code 1234), like
    /// a `failCommand` fail point on `hello` with `times`.
    pub failing_hellos: u32,
    /// The `processId` of its `topologyVersion` (new on each restart).
    pub process_id: ObjectId,
    /// The `counter` of its `topologyVersion` (bumped on every change of its hello reply).
    pub counter: i64,
    /// When its `topologyVersion` last changed (virtual time), if ever.
    pub changed_at: Option<Instant>,
}

impl Member {
    /// An up, streaming member with this role, 1 ms latency and no tags.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            up: true,
            latency: Duration::from_millis(1),
            tags: BTreeMap::new(),
            streaming: true,
            closes_awaitable: false,
            failing_hellos: 0,
            process_id: ObjectId::from_bytes([0; 12]),
            counter: 0,
            changed_at: None,
        }
    }

    /// Sets the latency.
    #[must_use]
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets one tag.
    #[must_use]
    pub fn tag(mut self, key: &str, value: &str) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }

    /// Makes it a server that does not stream.
    #[must_use]
    pub fn non_streaming(mut self) -> Self {
        self.streaming = false;
        self
    }

    /// Makes it a server that completes the handshake and then closes the connection on every
    /// awaitable hello.
    #[must_use]
    pub fn closing_awaitable(mut self) -> Self {
        self.closes_awaitable = true;
        self
    }

    /// Makes it answer its next `n` hellos with a command error (`ok: 0`, code 1234).
    #[must_use]
    pub fn failing_hellos(mut self, n: u32) -> Self {
        self.failing_hellos = n;
        self
    }

    /// Makes it start down.
    #[must_use]
    pub fn down(mut self) -> Self {
        self.up = false;
        self
    }

    /// Its current `topologyVersion` as `(processId, counter)`.
    pub fn topology_version(&self) -> (ObjectId, i64) {
        (self.process_id, self.counter)
    }
}

/// A simulated deployment: its members and replica set config.
#[derive(Debug, Clone)]
pub struct Cluster {
    kind: DeploymentKind,
    set_version: i64,
    election: u32,
    members: BTreeMap<ServerAddress, Member>,
    next_process: u32,
}

impl Cluster {
    /// An empty replica set named `name` (setVersion 1, no election yet).
    pub fn replica_set(name: &str) -> Self {
        Self::new(DeploymentKind::ReplicaSet(name.into()))
    }

    /// An empty sharded cluster.
    pub fn sharded() -> Self {
        Self::new(DeploymentKind::Sharded)
    }

    /// An empty set of standalone servers.
    pub fn standalone() -> Self {
        Self::new(DeploymentKind::Standalone)
    }

    fn new(kind: DeploymentKind) -> Self {
        Self { kind, set_version: 1, election: 0, members: BTreeMap::new(), next_process: 0 }
    }

    /// Adds a member (building the deployment; it gets a fresh processId). Adding a primary
    /// counts as an election.
    #[must_use]
    pub fn with(mut self, address: &ServerAddress, mut member: Member) -> Self {
        member.process_id = self.new_process_id();
        if member.role == Role::Primary {
            self.election += 1;
        }
        self.members.insert(address.clone(), member);
        self
    }

    /// The deployment kind.
    pub fn kind(&self) -> &DeploymentKind {
        &self.kind
    }

    /// The replica set config version.
    pub fn set_version(&self) -> i64 {
        self.set_version
    }

    /// The current electionId.
    pub fn election_id(&self) -> ObjectId {
        let mut bytes = [0u8; 12];
        bytes[0] = 0x7f;
        bytes[8..].copy_from_slice(&self.election.to_be_bytes());
        ObjectId::from_bytes(bytes)
    }

    /// A member.
    pub fn member(&self, address: &ServerAddress) -> Option<&Member> {
        self.members.get(address)
    }

    /// Every member, in address order.
    pub fn members(&self) -> impl Iterator<Item = (&ServerAddress, &Member)> {
        self.members.iter()
    }

    /// The up primary, if any.
    pub fn primary(&self) -> Option<&ServerAddress> {
        self.members.iter().find(|(_, m)| m.up && m.role == Role::Primary).map(|(a, _)| a)
    }

    pub(crate) fn member_mut(&mut self, address: &ServerAddress) -> &mut Member {
        self.members.get_mut(address).unwrap_or_else(|| panic!("no member {address} in the cluster"))
    }

    pub(crate) fn insert(&mut self, address: &ServerAddress, member: Member) {
        let mut member = member;
        member.process_id = self.new_process_id();
        self.members.insert(address.clone(), member);
    }

    pub(crate) fn new_process_id(&mut self) -> ObjectId {
        self.next_process += 1;
        let mut bytes = [0u8; 12];
        bytes[0] = 0x50;
        bytes[8..].copy_from_slice(&self.next_process.to_be_bytes());
        ObjectId::from_bytes(bytes)
    }

    pub(crate) fn bump_set_version(&mut self) {
        self.set_version += 1;
    }

    pub(crate) fn bump_election(&mut self) {
        self.election += 1;
    }

    fn listed(&self, wanted: &[Role]) -> Vec<Bson> {
        self.members
            .iter()
            .filter(|(_, m)| wanted.contains(&m.role))
            .map(|(a, _)| Bson::String(a.to_string()))
            .collect()
    }

    /// The fields of `address`'s hello reply that describe its state (everything but
    /// `topologyVersion` and `lastWrite`); `None` if it is not a member.
    pub fn hello_fields(&self, address: &ServerAddress) -> Option<Document> {
        let m = self.members.get(address)?;
        let mut d = doc! { "ok": 1 };
        let set_name = match &self.kind {
            DeploymentKind::ReplicaSet(name) => Some(name.clone()),
            _ => None,
        };
        match (m.role, set_name) {
            (Role::Mongos, _) => {
                d.insert("isWritablePrimary", true);
                d.insert("msg", "isdbgrid");
            }
            (Role::Standalone, _) | (_, None) => {
                d.insert("isWritablePrimary", true);
            }
            (Role::Removed, Some(_)) => {
                d.insert("isWritablePrimary", false);
                d.insert("secondary", false);
                d.insert("isreplicaset", true);
                d.insert("info", "Does not have a valid replica set config");
            }
            (role, Some(name)) => {
                d.insert("isWritablePrimary", role == Role::Primary);
                d.insert("secondary", matches!(role, Role::Secondary | Role::Hidden));
                if role == Role::Arbiter {
                    d.insert("arbiterOnly", true);
                }
                if role == Role::Hidden {
                    d.insert("hidden", true);
                }
                d.insert("setName", name);
                d.insert("setVersion", self.set_version);
                if role == Role::Primary {
                    d.insert("electionId", self.election_id());
                }
                if let Some(p) = self.primary() {
                    d.insert("primary", p.to_string());
                }
                d.insert("me", address.to_string());
                d.insert("hosts", self.listed(&[Role::Primary, Role::Secondary]));
                let arbiters = self.listed(&[Role::Arbiter]);
                if !arbiters.is_empty() {
                    d.insert("arbiters", arbiters);
                }
                if !m.tags.is_empty() {
                    let tags: Document =
                        m.tags.iter().map(|(k, v)| (k.clone(), Bson::String(v.clone()))).collect();
                    d.insert("tags", tags);
                }
            }
        }
        d.insert("minWireVersion", 0);
        d.insert("maxWireVersion", 21);
        d.insert("helloOk", true);
        Some(d)
    }

    /// `address`'s full hello reply at virtual time `elapsed` (since the simulation start).
    pub fn hello_reply(&self, address: &ServerAddress, elapsed: Duration) -> Option<RawDocumentBuf> {
        let m = self.members.get(address)?;
        let mut d = self.hello_fields(address)?;
        d.insert("topologyVersion", doc! { "processId": m.process_id, "counter": m.counter });
        let millis = EPOCH_MILLIS.saturating_add(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
        d.insert("lastWrite", doc! { "lastWriteDate": bson::DateTime::from_millis(millis) });
        RawDocumentBuf::try_from(&d).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> ServerAddress {
        ServerAddress::parse(s).unwrap()
    }

    #[test]
    fn replies_look_like_a_servers() {
        let c = Cluster::replica_set("rs")
            .with(&addr("a"), Member::new(Role::Primary).tag("dc", "ny"))
            .with(&addr("b"), Member::new(Role::Secondary))
            .with(&addr("h"), Member::new(Role::Hidden))
            .with(&addr("z"), Member::new(Role::Arbiter));
        let a = c.hello_reply(&addr("a"), Duration::from_millis(1500)).unwrap();
        assert!(a.get_bool("isWritablePrimary").unwrap());
        assert_eq!(a.get_str("setName").unwrap(), "rs");
        assert_eq!(a.get_object_id("electionId").unwrap(), c.election_id());
        assert_eq!(a.get_str("primary").unwrap(), "a:27017");
        let hosts: Vec<&str> =
            a.get_array("hosts").unwrap().into_iter().map(|h| h.unwrap().as_str().unwrap()).collect();
        assert_eq!(hosts, ["a:27017", "b:27017"], "hidden members and arbiters are not hosts");
        assert_eq!(a.get_document("tags").unwrap().get_str("dc").unwrap(), "ny");
        let last_write = a.get_document("lastWrite").unwrap().get_datetime("lastWriteDate").unwrap();
        assert_eq!(last_write.timestamp_millis(), EPOCH_MILLIS + 1500);
        let tv = a.get_document("topologyVersion").unwrap();
        assert_eq!(tv.get_i64("counter").unwrap(), 0);
        let b = c.hello_fields(&addr("b")).unwrap();
        assert!(b.get_bool("secondary").unwrap());
        assert!(b.get("electionId").is_none(), "only the primary reports its electionId");
        assert!(c.hello_fields(&addr("h")).unwrap().get_bool("hidden").unwrap());
        assert!(c.hello_fields(&addr("z")).unwrap().get_bool("arbiterOnly").unwrap());
        let mut ghost = c.clone();
        ghost.member_mut(&addr("b")).role = Role::Removed;
        let g = ghost.hello_fields(&addr("b")).unwrap();
        assert!(g.get_bool("isreplicaset").unwrap() && g.get("setName").is_none());
    }

    #[test]
    fn mongos_and_standalone() {
        let c = Cluster::sharded().with(&addr("m"), Member::new(Role::Mongos));
        assert_eq!(c.hello_fields(&addr("m")).unwrap().get_str("msg").unwrap(), "isdbgrid");
        let s = Cluster::standalone().with(&addr("s"), Member::new(Role::Standalone));
        let d = s.hello_fields(&addr("s")).unwrap();
        assert!(d.get_bool("isWritablePrimary").unwrap() && d.get("setName").is_none());
        assert!(c.hello_fields(&addr("nope")).is_none());
    }
}
