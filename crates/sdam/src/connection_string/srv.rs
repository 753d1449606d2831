//! `mongodb+srv`, sans I/O: the DNS names to look up, the validation of the answers, the seed
//! list they produce (initial-dns-seedlist-discovery.md), and the rule for updating the host
//! list when the SRV records are polled again (polling-srv-records-for-mongos-discovery.md).
//!
//! The caller performs the lookups:
//!
//! ```
//! use sdam::connection_string::ConnectionString;
//! use sdam::connection_string::srv::{SrvRecord, TxtRecord};
//! use sdam::rng::Rng;
//!
//! let cs = ConnectionString::parse("mongodb+srv://cluster0.example.com/?authSource=admin").unwrap();
//! let query = cs.srv_query().unwrap();
//! assert_eq!(query.srv_name(), "_mongodb._tcp.cluster0.example.com");
//! assert_eq!(query.txt_name(), "cluster0.example.com");
//!
//! // ... the caller resolves those names, then:
//! let srv = [SrvRecord::new("shard-00.example.com.", 27017), SrvRecord::new("shard-01.example.com.", 27017)];
//! let txt = [TxtRecord::new(["replicaSet=rs0"])];
//! let resolved = cs.resolve_srv(&srv, &txt, &mut Rng::new(1)).unwrap();
//! let seeds = resolved.connection_string.hosts();
//! assert_eq!(seeds.len(), 2);
//! assert_eq!(resolved.connection_string.options().replica_set.as_deref(), Some("rs0"));
//! assert!(resolved.connection_string.tls_enabled());
//! ```

use std::time::Duration;

use super::{
    check_topology_options, parse_txt_options, ConnectionString, ConnectionStringError, Options, Warning,
    MAX_HOSTS,
};
use crate::address::ServerAddress;
use crate::rng::Rng;
use crate::topology_description::TopologyType;

/// The SRV service name used when `srvServiceName` is not given
/// (initial-dns-seedlist-discovery.md, "srvServiceName").
pub const DEFAULT_SERVICE_NAME: &str = "mongodb";

/// The shortest interval between SRV rescans, and the interval when the records' TTLs are
/// unknown (polling-srv-records-for-mongos-discovery.md, "Implementation").
pub const MIN_RESCAN_INTERVAL: Duration = Duration::from_secs(60);

/// One SRV record of an answer. Priority and weight are not kept: the spec says to ignore
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// The target host name (a trailing dot is allowed).
    pub target: String,
    /// The target port.
    pub port: u16,
    /// The record's TTL, if the resolver reports it.
    pub ttl: Option<Duration>,
}

impl SrvRecord {
    /// A record without a known TTL.
    pub fn new(target: impl Into<String>, port: u16) -> Self {
        Self { target: target.into(), port, ttl: None }
    }

    /// The same record with a TTL.
    pub fn with_ttl(self, ttl: Duration) -> Self {
        Self { ttl: Some(ttl), ..self }
    }
}

/// One TXT record: its character strings, in order. A record's strings are concatenated
/// (initial-dns-seedlist-discovery.md, "Default Connection String Options").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxtRecord {
    /// The character strings (each at most 255 bytes in DNS).
    pub strings: Vec<String>,
}

impl TxtRecord {
    /// A record from its character strings.
    pub fn new<S: Into<String>>(strings: impl IntoIterator<Item = S>) -> Self {
        Self { strings: strings.into_iter().map(Into::into).collect() }
    }

    /// The strings concatenated: the record's options text.
    pub fn text(&self) -> String {
        self.strings.concat()
    }
}

/// What to look up for a `mongodb+srv` host, and how to check the answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvQuery {
    hostname: String,
    domain: String,
    service_name: String,
}

impl SrvQuery {
    /// A query for `hostname` (a DNS name, any case, optional trailing dot) and an SRV
    /// service name ([`DEFAULT_SERVICE_NAME`] unless `srvServiceName` says otherwise).
    pub fn new(hostname: &str, service_name: &str) -> Result<Self, ConnectionStringError> {
        let hostname = super::parse_srv_host(hostname)?;
        if !super::options::valid_srv_service_name(service_name) {
            return Err(ConnectionStringError::InvalidOptionValue {
                option: "srvServiceName".into(),
                value: service_name.to_owned(),
                expected: "an RFC 6335 service name of at most 62 characters",
            });
        }
        // "Connection String Format": with three or more labels the domain name is all but
        // the first; with one or two, it is the whole host name.
        let domain = match hostname.split_once('.') {
            Some((_, rest)) if rest.contains('.') => rest.to_owned(),
            _ => hostname.clone(),
        };
        Ok(Self { hostname, domain, service_name: service_name.to_owned() })
    }

    /// The host name (lower-cased, without a trailing dot).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The `{domainname}` SRV targets must belong to.
    pub fn domain_name(&self) -> &str {
        &self.domain
    }

    /// The SRV service name.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The name to look up SRV records for: `_{srvServiceName}._tcp.{hostname}`
    /// ("Querying DNS").
    pub fn srv_name(&self) -> String {
        format!("_{}._tcp.{}", self.service_name, self.hostname)
    }

    /// The name to look up TXT records for: the host name itself ("Default Connection String
    /// Options").
    pub fn txt_name(&self) -> &str {
        &self.hostname
    }

    /// Checks one SRV record and returns its address ("Querying DNS"): the target must end
    /// with `.{domainname}`. This also requires, for a host name of one or two labels, that
    /// the target have at least one more label than it (so it cannot be the host itself).
    pub fn validate(&self, record: &SrvRecord) -> Result<ServerAddress, ConnectionStringError> {
        let target = record.target.strip_suffix('.').unwrap_or(&record.target).to_ascii_lowercase();
        let in_domain = target
            .strip_suffix(self.domain.as_str())
            .is_some_and(|head| head.len() > 1 && head.ends_with('.'));
        if !in_domain {
            return Err(ConnectionStringError::SrvTargetOutsideDomain {
                target: record.target.clone(),
                domain: self.domain.clone(),
            });
        }
        ServerAddress::tcp(&target, record.port).map_err(|reason| ConnectionStringError::InvalidSrvTarget {
            target: record.target.clone(),
            port: record.port,
            reason,
        })
    }

    /// The polling rule (polling-srv-records-for-mongos-discovery.md, "Implementation"):
    /// given the topology's `current` hosts and the records of a rescan, the new host list.
    ///
    /// Pass an empty `records` slice when the lookup failed. Invalid records are left out and
    /// reported in [`SrvRescan::rejected`] (never an error). If no record is valid, the hosts
    /// are unchanged and the next rescan is due after `heartbeat_frequency`. Otherwise hosts
    /// no longer returned are removed, the others are kept as they are, and new ones are
    /// added: all of them if `srv_max_hosts` is 0 or at least the number of valid hosts, else
    /// a random selection (shuffle, then take) until there are `srv_max_hosts` hosts.
    pub fn rescan(
        &self,
        current: &[ServerAddress],
        records: &[SrvRecord],
        srv_max_hosts: u32,
        heartbeat_frequency: Duration,
        rng: &mut Rng,
    ) -> SrvRescan {
        let mut valid: Vec<ServerAddress> = Vec::new();
        let mut rejected = Vec::new();
        for record in records {
            match self.validate(record) {
                Ok(address) if valid.len() < MAX_HOSTS => {
                    if !valid.contains(&address) {
                        valid.push(address);
                    }
                }
                Ok(_) => rejected.push(RejectedSrvRecord {
                    record: record.clone(),
                    reason: ConnectionStringError::TooManyHosts { count: records.len() },
                }),
                Err(reason) => rejected.push(RejectedSrvRecord { record: record.clone(), reason }),
            }
        }
        if valid.is_empty() {
            // "If the DNS request returns no verified hosts ...": change nothing, and rescan
            // after heartbeatFrequencyMS until a verified record is found.
            return SrvRescan {
                hosts: current.to_vec(),
                added: Vec::new(),
                removed: Vec::new(),
                rejected,
                lookup_succeeded: false,
                rescan_interval: heartbeat_frequency,
            };
        }
        let kept: Vec<ServerAddress> = current.iter().filter(|h| valid.contains(h)).cloned().collect();
        let removed: Vec<ServerAddress> = current.iter().filter(|h| !valid.contains(h)).cloned().collect();
        let mut candidates: Vec<ServerAddress> =
            valid.iter().filter(|h| !current.contains(h)).cloned().collect();
        let limit = usize::try_from(srv_max_hosts).unwrap_or(usize::MAX);
        if limit != 0 && limit < valid.len() {
            rng.shuffle(&mut candidates);
            candidates.truncate(limit.saturating_sub(kept.len()));
        }
        let mut hosts = kept;
        hosts.extend(candidates.iter().cloned());
        SrvRescan {
            hosts,
            added: candidates,
            removed,
            rejected,
            lookup_succeeded: true,
            rescan_interval: rescan_interval(records),
        }
    }
}

/// An SRV record left out of a rescan, with the reason (to log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedSrvRecord {
    /// The record.
    pub record: SrvRecord,
    /// Why it was left out.
    pub reason: ConnectionStringError,
}

/// The outcome of an SRV rescan; see [`SrvQuery::rescan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRescan {
    /// The new host list: the kept hosts in their current order, then the added ones. Equal
    /// to the current hosts when `lookup_succeeded` is false.
    pub hosts: Vec<ServerAddress>,
    /// Hosts to add to the topology (as Unknown servers).
    pub added: Vec<ServerAddress>,
    /// Hosts to remove from the topology.
    pub removed: Vec<ServerAddress>,
    /// Records that failed validation (log them; they are not errors).
    pub rejected: Vec<RejectedSrvRecord>,
    /// False when the rescan found no valid record: the topology must not change.
    pub lookup_succeeded: bool,
    /// When to rescan next, measured from the end of this rescan.
    pub rescan_interval: Duration,
}

/// The rescan interval after a successful lookup: the lowest TTL among the records, but at
/// least [`MIN_RESCAN_INTERVAL`]; that minimum when no TTL is known
/// (polling-srv-records-for-mongos-discovery.md, "Implementation").
pub fn rescan_interval(records: &[SrvRecord]) -> Duration {
    records.iter().filter_map(|r| r.ttl).min().map_or(MIN_RESCAN_INTERVAL, |ttl| ttl.max(MIN_RESCAN_INTERVAL))
}

/// Whether SRV records are polled in a topology of this type: only Sharded and Unknown
/// (polling-srv-records-for-mongos-discovery.md, "Implementation"; never in load-balanced
/// mode, load-balancers.md).
pub fn rescans_srv(topology_type: TopologyType) -> bool {
    matches!(topology_type, TopologyType::Sharded | TopologyType::Unknown)
}

/// A `mongodb+srv` connection string after its DNS answers were applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSeedList {
    /// The connection string with [`hosts`](ConnectionString::hosts) set to the seed list and
    /// the TXT record's options merged in (the connection string's own values win).
    pub connection_string: ConnectionString,
    /// When to poll the SRV records again (see [`rescan_interval`]).
    pub rescan_interval: Duration,
}

impl ConnectionString {
    /// The DNS names to look up, for a `mongodb+srv` connection string.
    pub fn srv_query(&self) -> Option<SrvQuery> {
        let host = self.srv_host.as_deref()?;
        let service = self.options.srv_service_name.as_deref().unwrap_or(DEFAULT_SERVICE_NAME);
        // Both were validated by `parse`, so this cannot fail; stay total anyway.
        SrvQuery::new(host, service).ok()
    }

    /// Applies the answers to the SRV and TXT lookups of [`srv_query`](Self::srv_query)
    /// (initial-dns-seedlist-discovery.md, "Seedlist Discovery" and "Default Connection String
    /// Options").
    ///
    /// `srv` is the SRV answer (empty if there was none). A DNS error is the caller's to
    /// report; passing an empty `srv` yields [`ConnectionStringError::NoSrvRecords`]. `txt` is
    /// the TXT answer (empty if there is none, which is not an error).
    ///
    /// Every SRV record must be valid (see [`SrvQuery::validate`]); at most one TXT record may
    /// exist and it may only set `authSource`, `replicaSet` and `loadBalanced`, which the
    /// connection string's own values override. The option checks are then run again on the
    /// merged options and the resolved hosts. With a positive `srvMaxHosts` smaller than the
    /// number of records, `rng` picks the hosts (shuffle, then take).
    ///
    /// For a `mongodb://` connection string this returns it unchanged.
    pub fn resolve_srv(
        &self,
        srv: &[SrvRecord],
        txt: &[TxtRecord],
        rng: &mut Rng,
    ) -> Result<ResolvedSeedList, ConnectionStringError> {
        let Some(query) = self.srv_query() else {
            return Ok(ResolvedSeedList {
                connection_string: self.clone(),
                rescan_interval: MIN_RESCAN_INTERVAL,
            });
        };
        let resolution = query.resolve(srv, txt, &self.options, rng)?;
        Ok(ResolvedSeedList {
            connection_string: self.with_resolution(
                resolution.hosts,
                resolution.options,
                resolution.warnings,
            ),
            rescan_interval: resolution.rescan_interval,
        })
    }
}

impl ConnectionString {
    /// This `mongodb+srv` connection string as `resolution` resolved it: the seed list as
    /// [`hosts`](Self::hosts), the merged options, and the TXT record's warnings appended. Use
    /// it with [`Topology::srv_resolution`](crate::Topology::srv_resolution) to see the
    /// connection string the topology is working from.
    pub fn with_srv_resolution(&self, resolution: &SrvResolution) -> Self {
        self.with_resolution(
            resolution.hosts.clone(),
            resolution.options.clone(),
            resolution.warnings.clone(),
        )
    }
}

/// The seed list and options of a `mongodb+srv` host once its SRV and TXT answers passed
/// validation; see [`SrvQuery::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvResolution {
    /// The seed list (at most `srvMaxHosts` hosts when that is positive).
    pub hosts: Vec<ServerAddress>,
    /// The options given, with the TXT record's `authSource`, `replicaSet` and `loadBalanced`
    /// filled in where the given options left them unset.
    pub options: Options,
    /// What the TXT record held that was ignored (for WARN logs).
    pub warnings: Vec<Warning>,
    /// When to poll the SRV records again (see [`rescan_interval`]).
    pub rescan_interval: Duration,
}

impl SrvQuery {
    /// Applies the answers to the SRV and TXT lookups (initial-dns-seedlist-discovery.md,
    /// "Seedlist Discovery" and "Default Connection String Options") to `options`, the
    /// options the client was given (a connection string's, or a topology configuration's).
    ///
    /// `srv` is the SRV answer (empty if there was none: that is
    /// [`ConnectionStringError::NoSrvRecords`]); `txt` is the TXT answer (empty if there is
    /// none, which is not an error). Every SRV record must be valid (see
    /// [`SrvQuery::validate`]); at most one TXT record may exist and it may only set
    /// `authSource`, `replicaSet` and `loadBalanced`, which `options` override. The option
    /// checks are then run again on the merged options and the resolved hosts. With a positive
    /// `srvMaxHosts` smaller than the number of records, `rng` picks the hosts (shuffle, then
    /// take).
    pub fn resolve(
        &self,
        srv: &[SrvRecord],
        txt: &[TxtRecord],
        options: &Options,
        rng: &mut Rng,
    ) -> Result<SrvResolution, ConnectionStringError> {
        if srv.is_empty() {
            return Err(ConnectionStringError::NoSrvRecords { name: self.srv_name() });
        }
        if srv.len() > MAX_HOSTS {
            return Err(ConnectionStringError::TooManyHosts { count: srv.len() });
        }
        let mut hosts: Vec<ServerAddress> = Vec::with_capacity(srv.len());
        for record in srv {
            let address = self.validate(record)?;
            if !hosts.contains(&address) {
                hosts.push(address);
            }
        }

        let mut options = options.clone();
        let mut warnings = Vec::new();
        match txt {
            [] => {}
            [record] => {
                let parsed = parse_txt_options(&record.text())?;
                // "A Client MUST use options specified in the Connection String ... to override
                // options provided through TXT records."
                let from_txt = parsed.options;
                options.auth_source = options.auth_source.or(from_txt.auth_source);
                options.replica_set = options.replica_set.or(from_txt.replica_set);
                options.load_balanced = options.load_balanced.or(from_txt.load_balanced);
                warnings = parsed.warnings;
            }
            _ => {
                return Err(ConnectionStringError::MultipleTxtRecords {
                    name: self.txt_name().to_owned(),
                    count: txt.len(),
                })
            }
        }
        // "URI Validation": validate after the SRV and TXT lookups. The load balancer host
        // count rule applies to every record returned, before any srvMaxHosts selection.
        check_topology_options(&options, Some(hosts.len()))?;

        // "Querying DNS": a positive srvMaxHosts below the number of hosts selects that many
        // at random (Fisher-Yates).
        let max = options.srv_max_hosts.map_or(0, |m| usize::try_from(m).unwrap_or(usize::MAX));
        if max != 0 && max < hosts.len() {
            rng.shuffle(&mut hosts);
            hosts.truncate(max);
        }
        Ok(SrvResolution { hosts, options, warnings, rescan_interval: rescan_interval(srv) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection_string::Warning;

    fn addr(s: &str) -> ServerAddress {
        ServerAddress::parse(s).unwrap()
    }

    fn rec(target: &str, port: u16) -> SrvRecord {
        SrvRecord::new(target, port)
    }

    fn cs(uri: &str) -> ConnectionString {
        ConnectionString::parse(uri).unwrap()
    }

    #[test]
    fn lookup_names() {
        let q = cs("mongodb+srv://Cluster0.Example.COM./?srvServiceName=custom").srv_query().unwrap();
        assert_eq!(q.srv_name(), "_custom._tcp.cluster0.example.com");
        assert_eq!(q.txt_name(), "cluster0.example.com");
        assert_eq!(q.domain_name(), "example.com");
        assert_eq!(SrvQuery::new("localhost", "mongodb").unwrap().domain_name(), "localhost");
        assert_eq!(SrvQuery::new("mongo.local", "mongodb").unwrap().domain_name(), "mongo.local");
        assert!(SrvQuery::new("a..b", "mongodb").is_err());
        assert!(SrvQuery::new("a.b", "bad_name").is_err());
        assert!(cs("mongodb://a").srv_query().is_none());
    }

    #[test]
    fn parent_domain_rules() {
        // Prose tests 2 to 4 of the seedlist tests README, and the records used by its tests.
        let cases = [
            ("localhost", "localhost.mongodb", false),
            ("localhost", "localhost", false),
            ("localhost", "test_1.cluster_1localhost", false),
            ("localhost", "test_1.localhost", true),
            ("mongo.local", "test_1.evil.local", false),
            ("mongo.local", "mongo.local", false),
            ("mongo.local", "test_1.my_hostmongo.local", false),
            ("mongo.local", "test_1.mongo.local", true),
            ("blogs.mongodb.com", "blogs.evil.com", false),
            ("blogs.mongodb.com", "cluster.testmongodb.com", false),
            ("blogs.mongodb.com", "mongodb.com", false),
            ("blogs.mongodb.com", "cluster.mongodb.com.", true),
            ("blogs.mongodb.com", "a.b.MONGODB.com", true),
        ];
        for (host, target, ok) in cases {
            let q = SrvQuery::new(host, DEFAULT_SERVICE_NAME).unwrap();
            assert_eq!(q.validate(&rec(target, 27017)).is_ok(), ok, "{host} -> {target}");
        }
        let q = SrvQuery::new("a.b.c", "mongodb").unwrap();
        assert_eq!(q.validate(&rec("X.B.C.", 1)).unwrap(), addr("x.b.c:1"));
        assert!(matches!(
            q.validate(&rec("x.b.c", 0)),
            Err(ConnectionStringError::InvalidSrvTarget { port: 0, .. })
        ));
        let err = q.validate(&rec("x.evil.c", 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SRV record target \"x.evil.c\" is not in the connection string host's domain \"b.c\""
        );
    }

    #[test]
    fn resolve_builds_seed_list_and_merges_txt() {
        let c = cs("mongodb+srv://u:p@host.example.com/db?authSource=mine");
        let srv = [rec("a.example.com.", 27017), rec("b.example.com", 27018), rec("a.example.com", 27017)];
        let txt = [TxtRecord::new(["replicaSet=r", "s0&authSource=theirs&loadBalanced=nope"])];
        let r = c.resolve_srv(&srv, &txt, &mut Rng::new(0)).unwrap();
        let c2 = &r.connection_string;
        assert_eq!(c2.hosts(), &[addr("a.example.com"), addr("b.example.com:27018")]);
        assert_eq!(c2.options().replica_set.as_deref(), Some("rs0"));
        assert_eq!(c2.options().auth_source.as_deref(), Some("mine"));
        assert_eq!(c2.options().load_balanced, None);
        assert!(matches!(c2.warnings(), [Warning::InvalidValue { .. }]));
        assert_eq!((c2.username(), c2.password(), c2.database()), (Some("u"), Some("p"), Some("db")));
        assert!(c2.is_srv() && c2.tls_enabled());
        assert_eq!(r.rescan_interval, MIN_RESCAN_INTERVAL);
        assert_eq!(c2.to_string(), "mongodb+srv://a.example.com:27017,b.example.com:27018/db");
    }

    #[test]
    fn resolve_errors() {
        let c = cs("mongodb+srv://host.example.com");
        let good = [rec("a.example.com", 1)];
        let mut rng = Rng::new(0);
        assert!(matches!(c.resolve_srv(&[], &[], &mut rng), Err(ConnectionStringError::NoSrvRecords { .. })));
        assert!(matches!(
            c.resolve_srv(&[rec("a.example.com", 1), rec("a.evil.com", 1)], &[], &mut rng),
            Err(ConnectionStringError::SrvTargetOutsideDomain { .. })
        ));
        let two = [TxtRecord::new(["replicaSet=a"]), TxtRecord::new(["authSource=b"])];
        assert!(matches!(
            c.resolve_srv(&good, &two, &mut rng),
            Err(ConnectionStringError::MultipleTxtRecords { count: 2, .. })
        ));
        for bad in ["ssl=false", "authSource", "socketTimeoutMS=5"] {
            assert!(
                matches!(
                    c.resolve_srv(&good, &[TxtRecord::new([bad])], &mut rng),
                    Err(ConnectionStringError::InvalidTxtRecord { .. })
                ),
                "{bad}"
            );
        }
        // TXT loadBalanced=true with several hosts, with replicaSet, with srvMaxHosts.
        let lb = [TxtRecord::new(["loadBalanced=true"])];
        assert!(c.resolve_srv(&[rec("a.example.com", 1), rec("b.example.com", 1)], &lb, &mut rng).is_err());
        assert!(c.resolve_srv(&good, &lb, &mut rng).is_ok());
        assert!(cs("mongodb+srv://host.example.com/?replicaSet=x")
            .resolve_srv(&good, &lb, &mut rng)
            .is_err());
        assert!(cs("mongodb+srv://host.example.com/?srvMaxHosts=1")
            .resolve_srv(&good, &lb, &mut rng)
            .is_err());
        let rs = [TxtRecord::new(["replicaSet=x"])];
        assert!(cs("mongodb+srv://host.example.com/?srvMaxHosts=1")
            .resolve_srv(&good, &rs, &mut rng)
            .is_err());
    }

    #[test]
    fn resolve_applies_srv_max_hosts() {
        let srv: Vec<SrvRecord> = (0..10).map(|i| rec(&format!("h{i}.example.com"), 27017)).collect();
        let all: Vec<ServerAddress> = srv.iter().map(|r| addr(&r.target)).collect();
        for (max, expect) in [(0, 10), (3, 3), (10, 10), (11, 10)] {
            let c = cs(&format!("mongodb+srv://x.example.com/?srvMaxHosts={max}"));
            let r = c.resolve_srv(&srv, &[], &mut Rng::new(7)).unwrap();
            let hosts = r.connection_string.hosts();
            assert_eq!(hosts.len(), expect);
            assert!(hosts.iter().all(|h| all.contains(h)));
        }
        // The same seed gives the same selection; another seed (very likely) another.
        let c = cs("mongodb+srv://x.example.com/?srvMaxHosts=3");
        let pick =
            |seed| c.resolve_srv(&srv, &[], &mut Rng::new(seed)).unwrap().connection_string.hosts().to_vec();
        assert_eq!(pick(1), pick(1));
        assert!((2..20).any(|s| pick(s) != pick(1)));
    }

    #[test]
    fn resolve_rescan_interval_from_ttls() {
        let c = cs("mongodb+srv://x.example.com");
        let ttl = |s| Duration::from_secs(s);
        let srv = [rec("a.example.com", 1).with_ttl(ttl(300)), rec("b.example.com", 1).with_ttl(ttl(120))];
        assert_eq!(c.resolve_srv(&srv, &[], &mut Rng::new(0)).unwrap().rescan_interval, ttl(120));
        assert_eq!(rescan_interval(&[rec("a", 1).with_ttl(ttl(5))]), MIN_RESCAN_INTERVAL);
        assert_eq!(rescan_interval(&[rec("a", 1)]), MIN_RESCAN_INTERVAL);
    }

    #[test]
    fn resolve_is_identity_for_mongodb_scheme() {
        let c = cs("mongodb://a,b");
        let r = c.resolve_srv(&[], &[], &mut Rng::new(0)).unwrap();
        assert_eq!(r.connection_string, c);
    }

    fn query() -> SrvQuery {
        SrvQuery::new("test.example.com", DEFAULT_SERVICE_NAME).unwrap()
    }

    const HEARTBEAT: Duration = Duration::from_secs(10);

    #[test]
    fn rescan_adds_and_removes() {
        let current = [addr("a.example.com"), addr("b.example.com")];
        let records = [rec("b.example.com", 27017), rec("c.example.com", 27017)];
        let r = query().rescan(&current, &records, 0, HEARTBEAT, &mut Rng::new(0));
        assert!(r.lookup_succeeded);
        assert_eq!(r.hosts, [addr("b.example.com"), addr("c.example.com")]);
        assert_eq!(r.added, [addr("c.example.com")]);
        assert_eq!(r.removed, [addr("a.example.com")]);
        assert_eq!(r.rescan_interval, MIN_RESCAN_INTERVAL);
    }

    #[test]
    fn rescan_unchanged_records_change_nothing() {
        let current = [addr("a.example.com"), addr("b.example.com")];
        let records = [rec("b.example.com.", 27017), rec("A.example.com", 27017)];
        let r = query().rescan(&current, &records, 0, HEARTBEAT, &mut Rng::new(0));
        assert_eq!(r.hosts, current);
        assert!(r.added.is_empty() && r.removed.is_empty());
    }

    #[test]
    fn rescan_failure_keeps_hosts() {
        let current = [addr("a.example.com")];
        for records in [vec![], vec![rec("a.evil.com", 27017), rec("b.example.com", 0)]] {
            let r = query().rescan(&current, &records, 0, HEARTBEAT, &mut Rng::new(0));
            assert!(!r.lookup_succeeded);
            assert_eq!(r.hosts, current);
            assert!(r.added.is_empty() && r.removed.is_empty());
            assert_eq!(r.rescan_interval, HEARTBEAT);
            assert_eq!(r.rejected.len(), records.len());
        }
    }

    #[test]
    fn rescan_skips_invalid_records_without_error() {
        let current = [addr("a.example.com")];
        let records = [rec("a.example.com", 27017), rec("x.evil.com", 27017), rec("c.example.com", 27017)];
        let r = query().rescan(&current, &records, 0, HEARTBEAT, &mut Rng::new(0));
        assert_eq!(r.hosts, [addr("a.example.com"), addr("c.example.com")]);
        assert_eq!(r.rejected.len(), 1);
        assert_eq!(r.rejected[0].record.target, "x.evil.com");
    }

    #[test]
    fn rescan_respects_srv_max_hosts() {
        // Two hosts, one removed, three new: with srvMaxHosts=2, one new host is added.
        let current = [addr("a.example.com"), addr("b.example.com")];
        let records: Vec<SrvRecord> =
            ["b", "c", "d", "e"].iter().map(|h| rec(&format!("{h}.example.com"), 27017)).collect();
        let r = query().rescan(&current, &records, 2, HEARTBEAT, &mut Rng::new(3));
        assert_eq!(r.hosts.len(), 2);
        assert_eq!(r.hosts[0], addr("b.example.com"));
        assert_eq!(r.added.len(), 1);
        assert_eq!(r.removed, [addr("a.example.com")]);
        // srvMaxHosts at least the number of valid hosts: all are added.
        let r = query().rescan(&current, &records, 4, HEARTBEAT, &mut Rng::new(3));
        assert_eq!(r.hosts.len(), 4);
        // Already at the limit: kept hosts stay, nothing is added.
        let current = [addr("b.example.com"), addr("c.example.com")];
        let r = query().rescan(&current, &records, 2, HEARTBEAT, &mut Rng::new(3));
        assert_eq!(r.hosts, current);
        assert!(r.added.is_empty());
    }

    #[test]
    fn rescan_interval_uses_lowest_ttl() {
        let records = [
            rec("a.example.com", 1).with_ttl(Duration::from_secs(600)),
            rec("b.example.com", 1).with_ttl(Duration::from_secs(90)),
        ];
        let r = query().rescan(&[], &records, 0, HEARTBEAT, &mut Rng::new(0));
        assert_eq!(r.rescan_interval, Duration::from_secs(90));
        assert_eq!(r.added.len(), 2);
    }

    #[test]
    fn polling_applies_to_sharded_and_unknown_only() {
        assert!(rescans_srv(TopologyType::Sharded));
        assert!(rescans_srv(TopologyType::Unknown));
        assert!(!rescans_srv(TopologyType::ReplicaSetWithPrimary));
        assert!(!rescans_srv(TopologyType::LoadBalanced));
        assert!(!rescans_srv(TopologyType::Single));
    }
}
