//! What the client knows about one server (server-discovery-and-monitoring.md,
//! "ServerDescription").

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::oid::ObjectId;
use smallvec::SmallVec;

use crate::address::ServerAddress;

/// The kind of a server (server-discovery-and-monitoring.md, "ServerType").
///
/// `PossiblePrimary` only matters to single-threaded clients' scan order; this crate never
/// assigns it (the spec makes it synonymous with Unknown for multi-threaded clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ServerType {
    /// Not checked yet, or the last check failed.
    #[default]
    Unknown,
    /// A server that is not part of a replica set.
    Standalone,
    /// A `mongos` router (`msg: "isdbgrid"`).
    Mongos,
    /// The replica set's primary.
    RSPrimary,
    /// A replica set secondary.
    RSSecondary,
    /// A replica set arbiter.
    RSArbiter,
    /// A replica set member that is hidden, starting up or recovering.
    RSOther,
    /// A replica set member with no configuration, or removed from it (`isreplicaset: true`).
    RSGhost,
    /// A load balancer in front of mongoses (the topology is in load-balanced mode).
    LoadBalancer,
}

impl ServerType {
    /// The spec's name of this type ("RSPrimary", "Unknown", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "Unknown",
            Self::Standalone => "Standalone",
            Self::Mongos => "Mongos",
            Self::RSPrimary => "RSPrimary",
            Self::RSSecondary => "RSSecondary",
            Self::RSArbiter => "RSArbiter",
            Self::RSOther => "RSOther",
            Self::RSGhost => "RSGhost",
            Self::LoadBalancer => "LoadBalancer",
        }
    }

    /// Parses a spec name; `PossiblePrimary` maps to `Unknown` (see the type's docs).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Unknown" | "PossiblePrimary" => Self::Unknown,
            "Standalone" => Self::Standalone,
            "Mongos" => Self::Mongos,
            "RSPrimary" => Self::RSPrimary,
            "RSSecondary" => Self::RSSecondary,
            "RSArbiter" => Self::RSArbiter,
            "RSOther" => Self::RSOther,
            "RSGhost" => Self::RSGhost,
            "LoadBalancer" => Self::LoadBalancer,
            _ => return None,
        })
    }

    /// Whether servers of this type hold data (server-discovery-and-monitoring.md,
    /// "Data-Bearing Server Type").
    pub fn is_data_bearing(self) -> bool {
        matches!(
            self,
            Self::Standalone | Self::Mongos | Self::RSPrimary | Self::RSSecondary | Self::LoadBalancer
        )
    }

    /// Whether this is a replica set member type that reports a set name.
    pub fn is_replica_set_member(self) -> bool {
        matches!(self, Self::RSPrimary | Self::RSSecondary | Self::RSArbiter | Self::RSOther)
    }
}

impl fmt::Display for ServerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A server's tags (`tags` in a replica set member's hello reply), sorted by key.
///
/// Cloning is cheap: the pairs are shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Tags(Option<Arc<[(String, String)]>>);

/// Sorts by key keeping the last value of a repeated key.
fn normalize<T, K: Ord>(pairs: &mut SmallVec<[T; 8]>, key: impl Fn(&T) -> K) {
    pairs.reverse();
    pairs.sort_by_key(|p| key(p));
    pairs.dedup_by(|a, b| key(a) == key(b));
}

impl Tags {
    /// Builds the tag map; on a repeated key the last value wins.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        let mut pairs = SmallVec::from_vec(pairs);
        normalize(&mut pairs, |(k, _)| k.clone());
        Self((!pairs.is_empty()).then(|| Arc::from(pairs.into_vec())))
    }

    /// [`Tags::new`] from borrowed pairs.
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        if pairs.is_empty() {
            return Self::default();
        }
        let mut pairs: SmallVec<[(&str, &str); 8]> = SmallVec::from_slice(pairs);
        normalize(&mut pairs, |(k, _)| *k);
        Self(Some(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()))
    }

    /// Whether `Tags::from_pairs(pairs)` would equal `self` (checked without allocating).
    pub(crate) fn same_as(&self, pairs: &[(&str, &str)]) -> bool {
        if self.len() != pairs.len() && pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            // Sorted without repeated keys: normalizing would change nothing.
            return false;
        }
        if self.iter().zip(pairs).all(|(a, b)| short_eq(a.0, b.0) && short_eq(a.1, b.1))
            && self.len() == pairs.len()
        {
            // The same pairs in the same (sorted) order: the common case of a repeated reply.
            return true;
        }
        let mut pairs: SmallVec<[(&str, &str); 8]> = SmallVec::from_slice(pairs);
        normalize(&mut pairs, |(k, _)| *k);
        self.len() == pairs.len() && self.iter().zip(&pairs).all(|(a, b)| a == *b)
    }

    #[inline]
    fn pairs(&self) -> &[(String, String)] {
        self.0.as_deref().unwrap_or(&[])
    }

    /// The value of tag `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&str> {
        let pairs = self.pairs();
        if pairs.len() <= SCAN_TAGS {
            // A few short keys: comparing lengths, then bytes in line, beats a search.
            return pairs.iter().find(|(k, _)| short_eq(k, key)).map(|(_, v)| v.as_str());
        }
        pairs.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok().map(|i| pairs[i].1.as_str())
    }

    /// Whether the tag `key` has the value `value` (what a tag set asks, per pair).
    #[inline]
    pub(crate) fn has(&self, key: &str, value: &str) -> bool {
        self.get(key).is_some_and(|v| short_eq(v, value))
    }

    /// The tags, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs().iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no tags.
    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }

    /// The number of tags.
    pub fn len(&self) -> usize {
        self.pairs().len()
    }
}

/// Up to how many tags [`Tags::get`] scans instead of searching.
const SCAN_TAGS: usize = 8;

/// String equality for the short keys and values of tags: lengths first, then the bytes in
/// line (no call to `memcmp` for a few bytes).
#[inline]
fn short_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 16 {
        return a == b;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

impl fmt::Display for Tags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}:{v}")?;
        }
        f.write_str("}")
    }
}

/// A list of member addresses (`hosts`, `passives` or `arbiters` of a hello reply),
/// normalized, sorted and without duplicates. Reads as a slice of addresses.
///
/// Cloning is cheap: the addresses are shared, and a reply that repeats the server's previous
/// list shares that list instead of building a new one.
#[derive(Clone, Default, Eq)]
pub struct AddressList(Option<Arc<[ServerAddress]>>);

impl AddressList {
    /// The list of `addresses`, sorted and without duplicates.
    pub fn new(mut addresses: Vec<ServerAddress>) -> Self {
        addresses.sort_unstable();
        addresses.dedup();
        Self::from_sorted(addresses)
    }

    /// The list of addresses already sorted and without duplicates.
    pub(crate) fn from_sorted(addresses: Vec<ServerAddress>) -> Self {
        Self((!addresses.is_empty()).then(|| Arc::from(addresses)))
    }

    /// Whether both lists are the same shared allocation (or both empty).
    #[cfg(test)]
    pub(crate) fn shares(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }

    /// The addresses, sorted.
    #[inline]
    pub fn as_slice(&self) -> &[ServerAddress] {
        self.0.as_deref().unwrap_or(&[])
    }
}

impl std::ops::Deref for AddressList {
    type Target = [ServerAddress];

    #[inline]
    fn deref(&self) -> &[ServerAddress] {
        self.as_slice()
    }
}

impl PartialEq for AddressList {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl std::hash::Hash for AddressList {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl fmt::Debug for AddressList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl From<Vec<ServerAddress>> for AddressList {
    /// [`AddressList::new`].
    fn from(addresses: Vec<ServerAddress>) -> Self {
        Self::new(addresses)
    }
}

/// A server's `topologyVersion` (server-discovery-and-monitoring.md, "topologyVersion").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TopologyVersion {
    /// Identifies one run of the server process.
    pub process_id: ObjectId,
    /// Increases on every state change within that process.
    pub counter: i64,
}

impl TopologyVersion {
    /// Compares `self` (what we have) with `other` (what arrived), per "topologyVersion
    /// Comparison": a different process id means the arrival is newer.
    ///
    /// Returns `Less` when `other` is newer, `Equal` when they are the same, and `Greater`
    /// when `self` is newer. A missing value on either side means the arrival is newer.
    pub fn compare(current: Option<&Self>, other: Option<&Self>) -> Ordering {
        match (current, other) {
            (Some(c), Some(o)) if c.process_id == o.process_id => c.counter.cmp(&o.counter),
            _ => Ordering::Less,
        }
    }
}

/// The `lastWrite.opTime` of a replica set member: opaque, kept for callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OpTime {
    /// The oplog timestamp.
    pub ts: bson::Timestamp,
    /// The election term.
    pub t: i64,
}

/// What the client knows about one server, from its latest hello reply or check failure.
///
/// Fields are public to read; construct with [`ServerDescription::unknown`] or by parsing a
/// hello reply ([`crate::hello`]). Equality ([`PartialEq`]) is the spec's "Server
/// Description Equality": it compares only the fields that decide whether SDAM events are
/// published, not round-trip times or update times.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerDescription {
    /// The address the client connects to (not necessarily `me`).
    pub address: ServerAddress,
    /// The server's type.
    pub server_type: ServerType,
    /// Why the server is Unknown, if it is because of an error.
    pub error: Option<Arc<str>>,
    /// The moving average of round-trip times. `None` while Unknown.
    pub round_trip_time: Option<Duration>,
    /// The minimum round-trip time over the recent samples. `None` while Unknown.
    pub min_round_trip_time: Option<Duration>,
    /// `lastWrite.lastWriteDate`.
    pub last_write_date: Option<bson::DateTime>,
    /// `lastWrite.opTime`.
    pub op_time: Option<OpTime>,
    /// When this description was made (by the monotonic clock the caller passes in).
    pub last_update_time: Option<Instant>,
    /// `minWireVersion` (0 when absent).
    pub min_wire_version: i32,
    /// `maxWireVersion` (0 when absent).
    pub max_wire_version: i32,
    /// `me`, normalized.
    pub me: Option<ServerAddress>,
    /// `hosts`, normalized, sorted and without duplicates.
    pub hosts: AddressList,
    /// `passives`, normalized, sorted and without duplicates.
    pub passives: AddressList,
    /// `arbiters`, normalized, sorted and without duplicates.
    pub arbiters: AddressList,
    /// `tags`.
    pub tags: Tags,
    /// `setName` (shared with the server's previous description when it repeats it).
    pub set_name: Option<Arc<str>>,
    /// `setVersion`.
    pub set_version: Option<i64>,
    /// `electionId`.
    pub election_id: Option<ObjectId>,
    /// `primary`, normalized: this server's opinion of who the primary is.
    pub primary: Option<ServerAddress>,
    /// `logicalSessionTimeoutMinutes`.
    pub logical_session_timeout_minutes: Option<i64>,
    /// `topologyVersion`, from a hello reply or a state change error.
    pub topology_version: Option<TopologyVersion>,
    /// `iscryptd`.
    pub iscryptd: bool,
    /// `helloOk`: the server understands the `hello` command.
    pub hello_ok: bool,
    /// `serviceId` (servers behind a load balancer).
    pub service_id: Option<ObjectId>,
    /// `maxBsonObjectSize`.
    pub max_bson_object_size: Option<i64>,
    /// `maxMessageSizeBytes`.
    pub max_message_size_bytes: Option<i64>,
    /// `maxWriteBatchSize`.
    pub max_write_batch_size: Option<i64>,
    /// `compression`: the compressors the server agreed to.
    pub compression: Vec<String>,
    /// `connectionId` of the monitoring connection.
    pub connection_id: Option<i64>,
}

impl ServerDescription {
    /// The default description of a server: type Unknown, nothing known.
    pub fn unknown(address: ServerAddress) -> Self {
        Self {
            address,
            server_type: ServerType::Unknown,
            error: None,
            round_trip_time: None,
            min_round_trip_time: None,
            last_write_date: None,
            op_time: None,
            last_update_time: None,
            min_wire_version: 0,
            max_wire_version: 0,
            me: None,
            hosts: AddressList::default(),
            passives: AddressList::default(),
            arbiters: AddressList::default(),
            tags: Tags::default(),
            set_name: None,
            set_version: None,
            election_id: None,
            primary: None,
            logical_session_timeout_minutes: None,
            topology_version: None,
            iscryptd: false,
            hello_ok: false,
            service_id: None,
            max_bson_object_size: None,
            max_message_size_bytes: None,
            max_write_batch_size: None,
            compression: Vec::new(),
            connection_id: None,
        }
    }

    /// An Unknown description that records why (a failed check, a stale primary, an
    /// application error).
    pub fn unknown_with_error(address: ServerAddress, error: impl Into<Arc<str>>) -> Self {
        let mut sd = Self::unknown(address);
        sd.error = Some(error.into());
        sd
    }

    /// Whether the server's type is anything but Unknown.
    pub fn is_available(&self) -> bool {
        self.server_type != ServerType::Unknown
    }

    /// Every member this server reports: `hosts`, then `passives`, then `arbiters`.
    pub fn members(&self) -> impl Iterator<Item = &ServerAddress> {
        self.hosts.iter().chain(self.passives.iter()).chain(self.arbiters.iter())
    }

    /// Whether `address` is among this server's hosts, passives or arbiters.
    pub fn reports_member(&self, address: &ServerAddress) -> bool {
        [&self.hosts, &self.passives, &self.arbiters].iter().any(|list| list.binary_search(address).is_ok())
    }
}

impl PartialEq for ServerDescription {
    /// Server Description Equality: the fields marked (=) in the spec. The fields that
    /// change most often and compare in a few instructions come first.
    fn eq(&self, other: &Self) -> bool {
        self.server_type == other.server_type
            && self.topology_version == other.topology_version
            && self.set_version == other.set_version
            && self.election_id == other.election_id
            && self.min_wire_version == other.min_wire_version
            && self.max_wire_version == other.max_wire_version
            && self.logical_session_timeout_minutes == other.logical_session_timeout_minutes
            && self.iscryptd == other.iscryptd
            && self.address == other.address
            && self.me == other.me
            && self.primary == other.primary
            && self.set_name == other.set_name
            && self.error == other.error
            && self.hosts == other.hosts
            && self.passives == other.passives
            && self.arbiters == other.arbiters
            && self.tags == other.tags
    }
}

impl Eq for ServerDescription {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_last_value_wins_and_lookup() {
        let t = Tags::new(vec![
            ("dc".into(), "ny".into()),
            ("rack".into(), "1".into()),
            ("dc".into(), "sf".into()),
        ]);
        assert_eq!(t.get("dc"), Some("sf"));
        assert_eq!(t.get("rack"), Some("1"));
        assert_eq!(t.get("x"), None);
        assert_eq!(t.to_string(), "{dc:sf,rack:1}");
    }

    #[test]
    fn equality_ignores_rtt_and_time() {
        let a = ServerAddress::parse("a").unwrap();
        let mut x = ServerDescription::unknown(a.clone());
        let y = ServerDescription::unknown(a);
        x.round_trip_time = Some(Duration::from_millis(5));
        assert_eq!(x, y);
        x.error = Some("boom".into());
        assert_ne!(x, y);
    }

    #[test]
    fn topology_version_compare() {
        let p1 = ObjectId::from_bytes([1; 12]);
        let p2 = ObjectId::from_bytes([2; 12]);
        let tv = |p, c| TopologyVersion { process_id: p, counter: c };
        assert_eq!(TopologyVersion::compare(None, Some(&tv(p1, 1))), Ordering::Less);
        assert_eq!(TopologyVersion::compare(Some(&tv(p1, 1)), None), Ordering::Less);
        assert_eq!(TopologyVersion::compare(Some(&tv(p1, 2)), Some(&tv(p2, 1))), Ordering::Less);
        assert_eq!(TopologyVersion::compare(Some(&tv(p1, 2)), Some(&tv(p1, 1))), Ordering::Greater);
        assert_eq!(TopologyVersion::compare(Some(&tv(p1, 2)), Some(&tv(p1, 2))), Ordering::Equal);
    }
}
