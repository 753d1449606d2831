//! A model of topology configurations and input sequences, small enough that random bytes
//! reach interesting states: eight hosts, two set names, small versions and electionIds,
//! topologyVersions from two processes, a handful of wire version ranges and tags.
//!
//! Every type has a total [`Codec`]: a fuzzer's bytes always decode to a plan, and a plan
//! built by hand (for example from a spec test's replies) encodes to a seed.

use std::time::Duration;

use bson::oid::ObjectId;
use bson::{doc, Bson, Document, RawDocumentBuf};

use super::bytes::{decode_list, encode_list, Codec, Reader};
use crate::address::ServerAddress;
use crate::connection_string::srv::{SrvQuery, SrvRecord};
use crate::monitor::ServerMonitoringMode;
use crate::read_preference::{ReadPreference, ReadPreferenceMode, TagSet};
use crate::selection::SelectionCriteria;
use crate::server_description::TopologyVersion;
use crate::topology::TopologyConfig;

/// The hosts plans talk about. The `example.com` ones can come from SRV records of
/// [`SRV_HOST`].
pub const HOSTS: [&str; 8] = [
    "a:27017",
    "b:27017",
    "c:27017",
    "d:27017",
    "e:27017",
    "s1.example.com:27017",
    "s2.example.com:27017",
    "s3.example.com:27017",
];

/// The `mongodb+srv` host of configurations with SRV polling.
pub const SRV_HOST: &str = "cluster.example.com";

/// Replica set names.
pub const SET_NAMES: [&str; 2] = ["rs", "other"];

/// Tags servers carry and tag sets ask for (a server's tags are a mask over this list).
pub const TAGS: [(&str, &str); 6] = [
    ("dc", "ny"),
    ("dc", "sf"),
    ("data_center", "nyc"),
    ("data_center", "tokyo"),
    ("rack", "1"),
    ("rack", "2"),
];

/// (minWireVersion, maxWireVersion) pairs: some too old, one too new for this client.
pub const WIRE_VERSIONS: [(i32, i32); 8] =
    [(0, 0), (0, 6), (0, 8), (0, 13), (0, 17), (0, 21), (6, 25), (99, 100)];

/// Error codes of application errors: state-change codes of every class, and others.
pub const ERROR_CODES: [Option<i32>; 10] = [
    None,
    Some(10107),
    Some(13435),
    Some(10058),
    Some(11600),
    Some(91),
    Some(11602),
    Some(13436),
    Some(189),
    Some(8),
];

/// The host of index `i` (modulo [`HOSTS`]).
pub fn host(i: u8) -> ServerAddress {
    let name = HOSTS[usize::from(i) % HOSTS.len()];
    ServerAddress::parse(name).unwrap_or_else(|_| unreachable!("HOSTS are valid addresses"))
}

/// The hosts of a mask over [`HOSTS`].
pub fn hosts_of(mask: u8) -> impl Iterator<Item = ServerAddress> {
    (0..8u8).filter(move |i| mask & (1 << i) != 0).map(host)
}

/// The tags of a mask over [`TAGS`] (on a repeated key, the later entry wins).
pub fn tags_of(mask: u8) -> Vec<(String, String)> {
    TAGS.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, (k, v))| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The set name of a reply's `set_name` byte (modulo 4): none, `rs`, `rs`, `other`.
pub fn set_name_of(b: u8) -> Option<&'static str> {
    [None, Some(SET_NAMES[0]), Some(SET_NAMES[0]), Some(SET_NAMES[1])][usize::from(b % 4)]
}

/// The base of generated `lastWriteDate`s (milliseconds since the epoch).
const WRITE_EPOCH_MS: i64 = 1_700_000_000_000;

/// What kind of topology a configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// Seeds only: discover the type.
    Discover,
    /// `replicaSet` set.
    ReplicaSet,
    /// `directConnection=true` (first seed only).
    Direct,
    /// `directConnection=true` with `replicaSet`.
    DirectWithSetName,
    /// `loadBalanced=true` (first seed only).
    LoadBalanced,
}

/// Config kinds by byte value: discovery and replica sets weigh most.
const CONFIG_KINDS: [ConfigKind; 9] = [
    ConfigKind::Discover,
    ConfigKind::ReplicaSet,
    ConfigKind::Direct,
    ConfigKind::DirectWithSetName,
    ConfigKind::LoadBalanced,
    ConfigKind::Discover,
    ConfigKind::ReplicaSet,
    ConfigKind::Discover,
    ConfigKind::ReplicaSet,
];

/// A topology configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPlan {
    /// The seeds: a mask over [`HOSTS`] (empty means `a`).
    pub seeds: u8,
    /// The kind of topology.
    pub kind: ConfigKind,
    /// Index into [`SET_NAMES`] for `replicaSet`.
    pub set_name: u8,
    /// serverMonitoringMode: auto, stream, poll (modulo 3).
    pub monitoring: u8,
    /// heartbeatFrequencyMS minus 500.
    pub heartbeat_ms: u16,
    /// localThresholdMS.
    pub local_threshold_ms: u8,
    /// Whether the topology came from `mongodb+srv` (SRV answers then apply).
    pub srv: bool,
    /// srvMaxHosts (modulo 4).
    pub srv_max_hosts: u8,
    /// The topology's random seed.
    pub rng_seed: u64,
}

impl ConfigPlan {
    /// The configuration this plan describes (always valid).
    pub fn to_config(&self) -> TopologyConfig {
        let mut seeds: Vec<ServerAddress> = hosts_of(self.seeds).collect();
        if seeds.is_empty() {
            seeds.push(host(0));
        }
        if matches!(self.kind, ConfigKind::Direct | ConfigKind::DirectWithSetName | ConfigKind::LoadBalanced)
        {
            seeds.truncate(1);
        }
        let mut config = TopologyConfig::with_seeds(seeds);
        let set_name = SET_NAMES[usize::from(self.set_name) % SET_NAMES.len()].to_owned();
        match self.kind {
            ConfigKind::Discover => {}
            ConfigKind::ReplicaSet => config.replica_set_name = Some(set_name),
            ConfigKind::Direct => config.direct_connection = Some(true),
            ConfigKind::DirectWithSetName => {
                config.direct_connection = Some(true);
                config.replica_set_name = Some(set_name);
            }
            ConfigKind::LoadBalanced => config.load_balanced = true,
        }
        config.server_monitoring_mode =
            [ServerMonitoringMode::Auto, ServerMonitoringMode::Stream, ServerMonitoringMode::Poll]
                [usize::from(self.monitoring % 3)];
        config.heartbeat_frequency = Duration::from_millis(500 + u64::from(self.heartbeat_ms));
        config.local_threshold = Duration::from_millis(u64::from(self.local_threshold_ms));
        if self.srv && !config.load_balanced && config.direct_connection != Some(true) {
            config.srv = SrvQuery::new(SRV_HOST, "mongodb").ok();
            config.srv_max_hosts = u32::from(self.srv_max_hosts % 4);
        }
        config.rng_seed = Some(self.rng_seed);
        config
    }
}

impl Codec for ConfigPlan {
    fn decode(r: &mut Reader<'_>) -> Self {
        Self {
            seeds: r.u8(),
            kind: CONFIG_KINDS[usize::from(r.u8()) % CONFIG_KINDS.len()],
            set_name: r.u8(),
            monitoring: r.u8(),
            heartbeat_ms: u16::decode(r),
            local_threshold_ms: r.u8(),
            srv: bool::decode(r),
            srv_max_hosts: r.u8(),
            rng_seed: u64::decode(r),
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.seeds);
        out.push(CONFIG_KINDS.iter().position(|k| *k == self.kind).unwrap_or(0) as u8);
        out.push(self.set_name);
        out.push(self.monitoring);
        self.heartbeat_ms.encode(out);
        out.push(self.local_threshold_ms);
        self.srv.encode(out);
        out.push(self.srv_max_hosts);
        self.rng_seed.encode(out);
    }
}

/// A topologyVersion: one of two processes and a small counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TvPlan {
    /// The process (modulo 2).
    pub process: u8,
    /// The counter.
    pub counter: u8,
}

impl TvPlan {
    /// The topologyVersion.
    pub fn to_topology_version(self) -> TopologyVersion {
        TopologyVersion {
            process_id: ObjectId::from_bytes([self.process % 2; 12]),
            counter: i64::from(self.counter),
        }
    }

    fn to_document(self) -> Document {
        let tv = self.to_topology_version();
        doc! {"processId": tv.process_id, "counter": tv.counter}
    }
}

impl Codec for TvPlan {
    fn decode(r: &mut Reader<'_>) -> Self {
        Self { process: r.u8(), counter: r.u8() }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.process, self.counter]);
    }
}

/// What a hello reply says the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// `isWritablePrimary: true`.
    Primary,
    /// `secondary: true`.
    Secondary,
    /// `arbiterOnly: true`.
    Arbiter,
    /// `hidden: true, secondary: true`.
    Hidden,
    /// A member with only a set name (starting up, recovering).
    Other,
    /// `isreplicaset: true`.
    Ghost,
    /// No set name, not a router.
    Standalone,
    /// `msg: "isdbgrid"`.
    Mongos,
    /// `ok: 0` (a command error).
    Failed,
}

const REPLY_KINDS: [ReplyKind; 9] = [
    ReplyKind::Primary,
    ReplyKind::Secondary,
    ReplyKind::Arbiter,
    ReplyKind::Hidden,
    ReplyKind::Other,
    ReplyKind::Ghost,
    ReplyKind::Standalone,
    ReplyKind::Mongos,
    ReplyKind::Failed,
];

/// A hello reply, built from what a server of some kind would say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The kind of server.
    pub kind: ReplyKind,
    /// `setName` (modulo 4): none, `rs`, `rs`, `other`.
    pub set_name: u8,
    /// `hosts`: a mask over [`HOSTS`].
    pub hosts: u8,
    /// `passives`: a mask over [`HOSTS`].
    pub passives: u8,
    /// `arbiters`: a mask over [`HOSTS`].
    pub arbiters: u8,
    /// `primary`: none (0) or a host index plus one.
    pub primary: u8,
    /// `me`: none (0), the server's own address (1), or a host index plus two.
    pub me: u8,
    /// `setVersion`.
    pub set_version: Option<u8>,
    /// `electionId` (a small counter in the last byte).
    pub election_id: Option<u8>,
    /// `topologyVersion`.
    pub topology_version: Option<TvPlan>,
    /// Index into [`WIRE_VERSIONS`].
    pub wire: u8,
    /// `lastWrite.lastWriteDate`, seconds after a fixed epoch.
    pub last_write_s: Option<u16>,
    /// `tags`: a mask over [`TAGS`].
    pub tags: u8,
    /// `logicalSessionTimeoutMinutes`.
    pub session_timeout: Option<u8>,
    /// `helloOk`.
    pub hello_ok: bool,
}

impl Reply {
    /// The reply document of the server at `address`.
    pub fn to_document(&self, address: &ServerAddress) -> RawDocumentBuf {
        let mut d = Document::new();
        let ok = self.kind != ReplyKind::Failed;
        d.insert("ok", if ok { 1.0 } else { 0.0 });
        match self.kind {
            ReplyKind::Primary => {
                d.insert("isWritablePrimary", true);
            }
            ReplyKind::Secondary => {
                d.insert("secondary", true);
            }
            ReplyKind::Arbiter => {
                d.insert("arbiterOnly", true);
            }
            ReplyKind::Hidden => {
                d.insert("hidden", true);
                d.insert("secondary", true);
            }
            ReplyKind::Ghost => {
                d.insert("isreplicaset", true);
            }
            ReplyKind::Mongos => {
                d.insert("msg", "isdbgrid");
            }
            ReplyKind::Failed => {
                d.insert("errmsg", "generated failure");
                d.insert("code", 11600);
            }
            ReplyKind::Other | ReplyKind::Standalone => {}
        }
        if self.kind != ReplyKind::Standalone && self.kind != ReplyKind::Mongos {
            if let Some(name) = set_name_of(self.set_name) {
                d.insert("setName", name);
            }
        }
        let list = |mask: u8| Bson::Array(hosts_of(mask).map(|h| Bson::String(h.to_string())).collect());
        if self.hosts != 0 {
            d.insert("hosts", list(self.hosts));
        }
        if self.passives != 0 {
            d.insert("passives", list(self.passives));
        }
        if self.arbiters != 0 {
            d.insert("arbiters", list(self.arbiters));
        }
        if let Some(p) = self.primary.checked_sub(1) {
            d.insert("primary", host(p).to_string());
        }
        match self.me {
            0 => {}
            1 => {
                d.insert("me", address.to_string());
            }
            n => {
                d.insert("me", host(n - 2).to_string());
            }
        }
        if let Some(v) = self.set_version {
            d.insert("setVersion", i64::from(v));
        }
        if let Some(e) = self.election_id {
            let mut bytes = [0x7f; 12];
            bytes[11] = e;
            d.insert("electionId", ObjectId::from_bytes(bytes));
        }
        if let Some(tv) = self.topology_version {
            d.insert("topologyVersion", tv.to_document());
        }
        let (min, max) = WIRE_VERSIONS[usize::from(self.wire) % WIRE_VERSIONS.len()];
        d.insert("minWireVersion", min);
        d.insert("maxWireVersion", max);
        if let Some(s) = self.last_write_s {
            let date = bson::DateTime::from_millis(WRITE_EPOCH_MS + 1000 * i64::from(s));
            d.insert("lastWrite", doc! {"lastWriteDate": date});
        }
        if self.tags != 0 {
            let mut tags = Document::new();
            for (k, v) in tags_of(self.tags) {
                tags.insert(k, v);
            }
            d.insert("tags", tags);
        }
        if let Some(t) = self.session_timeout {
            d.insert("logicalSessionTimeoutMinutes", i64::from(t));
        }
        if self.hello_ok {
            d.insert("helloOk", true);
        }
        RawDocumentBuf::try_from(&d).unwrap_or_else(|_| RawDocumentBuf::new())
    }
}

impl Codec for Reply {
    fn decode(r: &mut Reader<'_>) -> Self {
        Self {
            kind: REPLY_KINDS[usize::from(r.u8()) % REPLY_KINDS.len()],
            set_name: r.u8(),
            hosts: r.u8(),
            passives: r.u8(),
            arbiters: r.u8(),
            primary: r.u8() % 9,
            me: r.u8() % 10,
            set_version: Codec::decode(r),
            election_id: Codec::decode(r),
            topology_version: Codec::decode(r),
            wire: r.u8(),
            last_write_s: Codec::decode(r),
            tags: r.u8(),
            session_timeout: Codec::decode(r),
            hello_ok: bool::decode(r),
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(REPLY_KINDS.iter().position(|k| *k == self.kind).unwrap_or(0) as u8);
        out.extend_from_slice(&[
            self.set_name,
            self.hosts,
            self.passives,
            self.arbiters,
            self.primary,
            self.me,
        ]);
        self.set_version.encode(out);
        self.election_id.encode(out);
        self.topology_version.encode(out);
        out.push(self.wire);
        self.last_write_s.encode(out);
        out.push(self.tags);
        self.session_timeout.encode(out);
        self.hello_ok.encode(out);
    }
}

/// An error an application operation saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppErrorPlan {
    /// Index into [`HOSTS`].
    pub server: u8,
    /// Network, timeout or command error (modulo 3).
    pub kind: u8,
    /// Index into [`ERROR_CODES`] for command errors.
    pub code: u8,
    /// The error's topologyVersion.
    pub topology_version: Option<TvPlan>,
    /// The connection's pool generation: none (0), or the current one minus `n - 1`.
    pub generation: u8,
    /// Whether the error happened before the handshake completed.
    pub before_handshake: bool,
    /// Whether it carries the `SystemOverloadedError` label.
    pub overloaded: bool,
    /// The `serviceId` (load-balanced mode).
    pub service: Option<u8>,
}

impl Codec for AppErrorPlan {
    fn decode(r: &mut Reader<'_>) -> Self {
        Self {
            server: r.u8(),
            kind: r.u8() % 3,
            code: r.u8() % ERROR_CODES.len() as u8,
            topology_version: Codec::decode(r),
            generation: r.u8() % 4,
            before_handshake: bool::decode(r),
            overloaded: bool::decode(r),
            service: Codec::decode(r),
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[self.server, self.kind, self.code]);
        self.topology_version.encode(out);
        out.push(self.generation);
        self.before_handshake.encode(out);
        self.overloaded.encode(out);
        self.service.encode(out);
    }
}

/// A server selection: the operation and read preference, and a server to deprioritize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectPlan {
    /// A write (else a read).
    pub write: bool,
    /// The read preference mode (modulo 5).
    pub mode: u8,
    /// Tag sets, each a mask over [`TAGS`] (0 is the empty tag set, which matches anything).
    pub tag_sets: Vec<u8>,
    /// maxStalenessSeconds: twice this value (so both below and above the 90 s minimum).
    pub max_staleness: Option<u8>,
    /// None (0) or a host index plus one to deprioritize.
    pub deprioritized: u8,
}

/// Read preference modes, by index.
pub const MODES: [ReadPreferenceMode; 5] = [
    ReadPreferenceMode::Primary,
    ReadPreferenceMode::PrimaryPreferred,
    ReadPreferenceMode::Secondary,
    ReadPreferenceMode::SecondaryPreferred,
    ReadPreferenceMode::Nearest,
];

impl SelectPlan {
    /// The selection criteria. Combinations the read preference constructors reject (mode
    /// primary with tag sets or maxStalenessSeconds) drop the rejected part.
    pub fn to_criteria(&self) -> SelectionCriteria {
        let mut criteria = if self.write {
            SelectionCriteria::write()
        } else {
            let mut rp = ReadPreference::new(MODES[usize::from(self.mode) % MODES.len()]);
            let sets = self.tag_sets.iter().map(|&m| TagSet(tags_of(m))).collect();
            if let Ok(with) = rp.clone().with_tag_sets(sets) {
                rp = with;
            }
            if let Ok(with) =
                rp.clone().with_max_staleness_seconds(self.max_staleness.map(|s| 2 * i64::from(s)))
            {
                rp = with;
            }
            SelectionCriteria::read(rp)
        };
        if let Some(d) = self.deprioritized.checked_sub(1) {
            criteria.deprioritize(host(d));
        }
        criteria
    }
}

impl Codec for SelectPlan {
    fn decode(r: &mut Reader<'_>) -> Self {
        Self {
            write: bool::decode(r),
            mode: r.u8() % 5,
            tag_sets: decode_list(r, 3),
            max_staleness: Codec::decode(r),
            deprioritized: r.u8() % 9,
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        self.write.encode(out);
        out.push(self.mode);
        encode_list(&self.tag_sets, out);
        self.max_staleness.encode(out);
        out.push(self.deprioritized);
    }
}

/// One input, or a moment passing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An exchange the core asked for (index into those in flight, then recently abandoned
    /// ones) gets a reply.
    MonitorReply {
        /// Which exchange.
        exchange: u8,
        /// The reply.
        reply: Reply,
        /// Its round-trip time in milliseconds.
        rtt_ms: u16,
        /// The OP_MSG moreToCome flag.
        more_to_come: bool,
    },
    /// An exchange in flight fails.
    MonitorFailed {
        /// Which exchange.
        exchange: u8,
        /// A timeout (else a network error).
        timeout: bool,
    },
    /// A hello reply from an application connection's handshake.
    HelloReply {
        /// Index into [`HOSTS`].
        server: u8,
        /// The reply.
        reply: Reply,
        /// Its round-trip time in milliseconds.
        rtt_ms: u16,
    },
    /// A reply given as raw BSON bytes (seeds carry the spec tests' replies this way).
    RawReply {
        /// Index into [`HOSTS`].
        server: u8,
        /// The reply's bytes, valid BSON or not.
        reply: Vec<u8>,
    },
    /// A check failed outside the core's own monitors.
    CheckFailed {
        /// Index into [`HOSTS`].
        server: u8,
    },
    /// An application error.
    AppError(AppErrorPlan),
    /// An SRV rescan answered.
    Srv {
        /// The records' targets: a mask over [`HOSTS`].
        hosts: u8,
        /// The answer came as a `SrvResolved` (else as `SrvRecords`).
        resolved: bool,
    },
    /// Time passes; the topology is woken.
    Advance {
        /// Milliseconds.
        ms: u16,
    },
    /// Time jumps to the topology's deadline, which is then handled.
    WakeAtDeadline,
    /// Check every server as soon as allowed.
    ImmediateCheck,
    /// An operation started on a server.
    OperationStarted {
        /// Index into [`HOSTS`].
        server: u8,
    },
    /// An operation on a server ended.
    OperationFinished {
        /// Index into [`HOSTS`].
        server: u8,
    },
    /// A server selection against the current topology.
    Select(SelectPlan),
    /// The topology is closed.
    Close,
}

/// The largest raw reply a step carries.
pub const MAX_RAW_REPLY: usize = 4096;

impl Codec for Step {
    /// A tag byte chooses the step (replies and waking up weigh most; close is byte 255 only).
    fn decode(r: &mut Reader<'_>) -> Self {
        let tag = r.u8();
        if tag == 255 {
            return Self::Close;
        }
        match tag % 32 {
            0..=5 | 25..=31 => Self::MonitorReply {
                exchange: r.u8(),
                reply: Reply::decode(r),
                rtt_ms: u16::decode(r),
                more_to_come: bool::decode(r),
            },
            6..=7 => Self::MonitorFailed { exchange: r.u8(), timeout: bool::decode(r) },
            8..=9 => Self::HelloReply { server: r.u8(), reply: Reply::decode(r), rtt_ms: u16::decode(r) },
            10 => {
                let server = r.u8();
                let len = usize::from(u16::decode(r)) % (MAX_RAW_REPLY + 1);
                Self::RawReply { server, reply: r.bytes(len).to_vec() }
            }
            11 => Self::CheckFailed { server: r.u8() },
            12..=13 => Self::AppError(AppErrorPlan::decode(r)),
            14 => Self::Srv { hosts: r.u8(), resolved: bool::decode(r) },
            15..=16 => Self::Advance { ms: u16::decode(r) },
            17..=19 => Self::WakeAtDeadline,
            20 => Self::ImmediateCheck,
            21 => Self::OperationStarted { server: r.u8() },
            22 => Self::OperationFinished { server: r.u8() },
            _ => Self::Select(SelectPlan::decode(r)),
        }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::MonitorReply { exchange, reply, rtt_ms, more_to_come } => {
                out.extend_from_slice(&[0, *exchange]);
                reply.encode(out);
                rtt_ms.encode(out);
                more_to_come.encode(out);
            }
            Self::MonitorFailed { exchange, timeout } => {
                out.extend_from_slice(&[6, *exchange]);
                timeout.encode(out);
            }
            Self::HelloReply { server, reply, rtt_ms } => {
                out.extend_from_slice(&[8, *server]);
                reply.encode(out);
                rtt_ms.encode(out);
            }
            Self::RawReply { server, reply } => {
                out.extend_from_slice(&[10, *server]);
                let len = reply.len().min(MAX_RAW_REPLY);
                (len as u16).encode(out);
                out.extend_from_slice(&reply[..len]);
            }
            Self::CheckFailed { server } => out.extend_from_slice(&[11, *server]),
            Self::AppError(e) => {
                out.push(12);
                e.encode(out);
            }
            Self::Srv { hosts, resolved } => {
                out.extend_from_slice(&[14, *hosts]);
                resolved.encode(out);
            }
            Self::Advance { ms } => {
                out.push(15);
                ms.encode(out);
            }
            Self::WakeAtDeadline => out.push(17),
            Self::ImmediateCheck => out.push(20),
            Self::OperationStarted { server } => out.extend_from_slice(&[21, *server]),
            Self::OperationFinished { server } => out.extend_from_slice(&[22, *server]),
            Self::Select(s) => {
                out.push(23);
                s.encode(out);
            }
            Self::Close => out.push(255),
        }
    }
}

/// The most steps a plan runs.
pub const MAX_STEPS: usize = 256;

/// A configuration and the inputs that follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The configuration.
    pub config: ConfigPlan,
    /// The inputs, in order.
    pub steps: Vec<Step>,
}

impl Codec for Plan {
    /// The configuration, then steps until the bytes run out (at most [`MAX_STEPS`]).
    fn decode(r: &mut Reader<'_>) -> Self {
        let config = ConfigPlan::decode(r);
        let mut steps = Vec::new();
        while !r.is_empty() && steps.len() < MAX_STEPS {
            steps.push(Step::decode(r));
        }
        Self { config, steps }
    }
    fn encode(&self, out: &mut Vec<u8>) {
        self.config.encode(out);
        for step in &self.steps {
            step.encode(out);
        }
    }
}

/// The SRV records of a mask over [`HOSTS`].
pub fn srv_records(mask: u8) -> Vec<SrvRecord> {
    hosts_of(mask).map(|h| SrvRecord::new(h.host(), h.port().unwrap_or(27017))).collect()
}
