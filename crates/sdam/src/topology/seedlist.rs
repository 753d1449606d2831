//! `mongodb+srv` driven by the core: initial DNS seedlist discovery
//! (initial-dns-seedlist-discovery.md) and SRV polling
//! (polling-srv-records-for-mongos-discovery.md), through [`Command::ResolveSrv`] and
//! [`Command::ResolveTxt`] and their answers [`Input::SrvResolved`](crate::Input::SrvResolved) and
//! [`Input::TxtResolved`](crate::Input::TxtResolved).
//!
//! The rules themselves (names, parent-domain checks, TXT options, srvMaxHosts, the rescan
//! update and interval) live in [`crate::connection_string::srv`]; this file only schedules
//! the lookups and applies their outcome to the topology.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Topology, MIN_HEARTBEAT_FREQUENCY};
use crate::connection_string::srv::{
    rescans_srv, SrvQuery, SrvRecord, SrvRescan, SrvResolution, TxtRecord, MIN_RESCAN_INTERVAL,
};
use crate::connection_string::{ConnectionStringError, Options};
use crate::events::Command;
use crate::monitor::RequestId;
use crate::topology_description::{SrvError, TopologyType};

/// How long the first retry of a failed initial seedlist discovery waits. Each further retry
/// waits twice as long as the one before, up to `heartbeatFrequencyMS` (the interval the
/// polling spec uses after a failed rescan).
pub const SRV_RETRY_BACKOFF: Duration = MIN_HEARTBEAT_FREQUENCY;

/// The timeout of a DNS lookup when `connectTimeoutMS` is 0 (no limit). Otherwise lookups
/// get `connectTimeoutMS`.
pub const DEFAULT_DNS_TIMEOUT: Duration = Duration::from_secs(10);

/// Which record type a lookup asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Srv,
    Txt,
}

/// A lookup in flight.
#[derive(Debug, Clone)]
struct Pending {
    kind: Kind,
    request: RequestId,
    name: String,
    timeout: Duration,
    /// When the core stops waiting and counts the lookup as failed (the I/O layer should have
    /// reported its own timeout by then).
    deadline: Instant,
}

/// The state of `mongodb+srv` discovery and polling.
#[derive(Debug, Clone)]
pub(super) struct SrvDiscovery {
    query: SrvQuery,
    /// Lookups in flight: at most one SRV and one TXT.
    pending: Vec<Pending>,
    /// Answers of the current initial attempt, kept until both have arrived.
    srv_answer: Option<Result<Vec<SrvRecord>, String>>,
    txt_answer: Option<Result<Vec<TxtRecord>, String>>,
    /// Whether the seed list is known (resolved here, or given in the configuration).
    seeded: bool,
    /// The outcome of the initial discovery done by the core.
    resolution: Option<SrvResolution>,
    /// When to send the next lookup(s), if one is scheduled.
    next_lookup: Option<Instant>,
    /// The wait before the next retry of a failed initial discovery.
    retry_delay: Duration,
    /// Why the last discovery attempt or rescan failed; `None` after a success.
    last_error: Option<String>,
}

impl SrvDiscovery {
    fn new(query: SrvQuery) -> Self {
        Self {
            query,
            pending: Vec::new(),
            srv_answer: None,
            txt_answer: None,
            seeded: false,
            resolution: None,
            next_lookup: None,
            retry_delay: SRV_RETRY_BACKOFF,
            last_error: None,
        }
    }

    /// The next moment the discovery needs the topology to wake up (`topology_type`: the
    /// current one, which decides whether rescans are due at all).
    pub(super) fn next_deadline(&self, topology_type: TopologyType) -> Option<Instant> {
        let lookup = self.next_lookup.filter(|_| !self.seeded || rescans_srv(topology_type));
        self.pending.iter().map(|p| p.deadline).chain(lookup).min()
    }
}

/// The outcome of one finished lookup.
enum Answer<'a> {
    Srv(Result<&'a [SrvRecord], String>),
    Txt(Result<&'a [TxtRecord], String>),
}

impl Topology {
    /// Sets up `mongodb+srv` handling in [`Topology::new`]: with no seeds, the initial
    /// lookups are sent now; with seeds (already resolved), the first rescan is due after
    /// [`MIN_RESCAN_INTERVAL`] (the records' TTLs are not known).
    pub(super) fn start_srv(&mut self, now: Instant) {
        let Some(query) = self.config.srv.clone() else { return };
        let mut srv = SrvDiscovery::new(query);
        if self.config.seeds.is_empty() {
            srv.next_lookup = Some(now);
        } else {
            srv.seeded = true;
            srv.next_lookup = Some(now + MIN_RESCAN_INTERVAL);
        }
        self.srv = Some(srv);
    }

    /// The timeout given to DNS lookups: `connectTimeoutMS`, or [`DEFAULT_DNS_TIMEOUT`] when
    /// that is 0.
    pub(super) fn dns_timeout(&self) -> Duration {
        self.config.connect_timeout.unwrap_or(DEFAULT_DNS_TIMEOUT)
    }

    /// The outcome of the initial discovery the core performed: the seed list, the merged
    /// options (e.g. the TXT record's `authSource`, which the topology itself does not use)
    /// and the TXT record's warnings. `None` before it succeeds, and when the configuration
    /// gave the seed list.
    pub fn srv_resolution(&self) -> Option<&SrvResolution> {
        self.srv.as_ref()?.resolution.as_ref()
    }

    /// Why the last `mongodb+srv` lookup failed (initial discovery or a rescan), for logs;
    /// `None` after a success and for other topologies. A failed rescan changes nothing in
    /// the topology (polling-srv-records-for-mongos-discovery.md): this is where it shows.
    pub fn srv_last_error(&self) -> Option<&str> {
        self.srv.as_ref()?.last_error.as_deref()
    }

    /// Expires lookups past their deadline and sends the lookups that are due.
    pub(super) fn run_srv_timers(&mut self, now: Instant) {
        let topology_type = self.description.topology_type;
        let Some(srv) = self.srv.as_mut() else { return };
        let expired: Vec<Pending> = srv.pending.iter().filter(|p| p.deadline <= now).cloned().collect();
        for p in expired {
            let error = format!("no answer within {} ms", p.timeout.as_millis());
            let answer = match p.kind {
                Kind::Srv => Answer::Srv(Err(error)),
                Kind::Txt => Answer::Txt(Err(error)),
            };
            self.on_lookup_answer(p.request, answer, now);
        }
        let Some(srv) = self.srv.as_mut() else { return };
        if srv.seeded && !rescans_srv(topology_type) {
            // "Drivers MUST NOT rescan SRV DNS records when the Topology is not Sharded" (or
            // Unknown); no topology type leads back to those, so polling stops for good.
            srv.next_lookup = None;
            return;
        }
        if srv.next_lookup.is_some_and(|t| t <= now) {
            self.send_lookups(now);
        }
    }

    /// Sends the SRV lookup, and the TXT lookup too while the seed list is unknown (the TXT
    /// record is only read by the initial discovery).
    fn send_lookups(&mut self, now: Instant) {
        let timeout = self.dns_timeout();
        let srv_request = RequestId::new(self.next_id());
        let txt_request = RequestId::new(self.next_id());
        let Some(srv) = self.srv.as_mut() else { return };
        srv.next_lookup = None;
        srv.srv_answer = None;
        srv.txt_answer = None;
        let mut lookups = vec![(Kind::Srv, srv_request, srv.query.srv_name())];
        if !srv.seeded {
            lookups.push((Kind::Txt, txt_request, srv.query.txt_name().to_owned()));
        }
        for (kind, request, name) in lookups {
            let deadline = now + timeout;
            srv.pending.push(Pending { kind, request, name: name.clone(), timeout, deadline });
            self.outputs.push_back(crate::Output::Command(match kind {
                Kind::Srv => Command::ResolveSrv { request, name, deadline },
                Kind::Txt => Command::ResolveTxt { request, name, deadline },
            }));
        }
    }

    /// [`Input::SrvResolved`](super::Input::SrvResolved).
    pub(super) fn on_srv_resolved(
        &mut self,
        request: RequestId,
        result: Result<&[SrvRecord], String>,
        now: Instant,
    ) {
        self.on_lookup_answer(request, Answer::Srv(result), now);
    }

    /// [`Input::TxtResolved`](super::Input::TxtResolved).
    pub(super) fn on_txt_resolved(
        &mut self,
        request: RequestId,
        result: Result<&[TxtRecord], String>,
        now: Instant,
    ) {
        self.on_lookup_answer(request, Answer::Txt(result), now);
    }

    /// An answer (or the core's own timeout) for one lookup; answers to lookups that are not
    /// in flight (stale, unknown, or of the wrong record type) are ignored.
    fn on_lookup_answer(&mut self, request: RequestId, answer: Answer<'_>, now: Instant) {
        let Some(srv) = self.srv.as_mut() else { return };
        let kind = match answer {
            Answer::Srv(_) => Kind::Srv,
            Answer::Txt(_) => Kind::Txt,
        };
        let Some(i) = srv.pending.iter().position(|p| p.request == request && p.kind == kind) else {
            return;
        };
        let pending = srv.pending.remove(i);
        let name = pending.name;
        let failed = |e: String, what: &str| format!("the {what} lookup of {name:?} failed: {e}");
        if srv.seeded {
            if let Answer::Srv(result) = answer {
                self.on_rescan(result.map_err(|e| failed(e, "SRV")), now);
            }
            return;
        }
        let failure = match answer {
            Answer::Srv(r) => {
                let r = r.map(<[_]>::to_vec).map_err(|e| failed(e, "SRV"));
                srv.srv_answer.insert(r).as_ref().err().cloned()
            }
            Answer::Txt(r) => {
                let r = r.map(<[_]>::to_vec).map_err(|e| failed(e, "TXT"));
                srv.txt_answer.insert(r).as_ref().err().cloned()
            }
        };
        // A failed lookup fails the attempt at once; the other lookup's answer is then stale.
        if let Some(error) = failure {
            srv.pending.clear();
            srv.srv_answer = None;
            srv.txt_answer = None;
            // A lookup that failed or timed out: DNS may answer later.
            self.initial_discovery_failed(SrvError::Transient(error), now);
        } else if srv.srv_answer.is_some() && srv.txt_answer.is_some() {
            self.finish_initial_discovery(now);
        }
    }

    /// Both initial answers are in: resolve the seed list and apply it, or fail the attempt.
    fn finish_initial_discovery(&mut self, now: Instant) {
        let base = self.srv_base_options();
        let Some(srv) = self.srv.as_mut() else { return };
        let (Some(Ok(records)), Some(Ok(txt))) = (srv.srv_answer.take(), srv.txt_answer.take()) else {
            return;
        };
        let query = srv.query.clone();
        let outcome = match query.resolve(&records, &txt, &base, &mut self.rng) {
            // initial-dns-seedlist-discovery.md, "Querying DNS": "If the DNS result returns
            // no SRV records ... an error MUST be raised"; records may be published later
            // (a cluster being created), so this one is retried.
            Err(e @ ConnectionStringError::NoSrvRecords { .. }) => Err(SrvError::Transient(e.to_string())),
            // Every other rule the answers break "MUST raise an error": a record outside the
            // parent domain, multiple TXT records, a TXT option that is not allowed, options
            // that conflict once merged. The DNS answered; asking again would not help.
            Err(e) => Err(SrvError::Permanent(e.to_string())),
            Ok(resolution) => self.apply_initial_seed_list(resolution, now).map_err(SrvError::Permanent),
        };
        if let Err(error) = outcome {
            self.initial_discovery_failed(error, now);
        }
    }

    /// Records why the initial discovery failed (in the description, where selections quote
    /// it) and, unless the error is permanent, schedules the next attempt. After a permanent
    /// error no lookup is ever sent again.
    fn initial_discovery_failed(&mut self, error: SrvError, now: Instant) {
        let heartbeat = self.config.heartbeat_frequency.max(SRV_RETRY_BACKOFF);
        let Some(srv) = self.srv.as_mut() else { return };
        let message = format!(
            "mongodb+srv seed list discovery for {:?} failed: {}",
            srv.query.hostname(),
            error.message()
        );
        srv.last_error = Some(message.clone());
        let error = match error {
            SrvError::Permanent(_) => {
                srv.pending.clear();
                srv.next_lookup = None;
                SrvError::Permanent(message)
            }
            _ => {
                srv.next_lookup = Some(now + srv.retry_delay);
                srv.retry_delay = (srv.retry_delay * 2).min(heartbeat);
                SrvError::Transient(message)
            }
        };
        if self.description.srv_error.as_ref() != Some(&error) {
            self.replace_servers(now, |td, _| {
                td.srv_error = Some(error);
                true
            });
        }
    }

    /// The options a TXT record is merged into: the connection string's (when the
    /// configuration came from one), with the configuration's topology fields on top.
    fn srv_base_options(&self) -> Options {
        let c = &self.config;
        let mut o = c.uri_options.as_deref().cloned().unwrap_or_default();
        o.replica_set.clone_from(&c.replica_set_name);
        // An explicit loadBalanced=false in the connection string overrides the TXT record.
        o.load_balanced = if c.load_balanced { Some(true) } else { o.load_balanced.filter(|lb| !lb) };
        o.direct_connection = c.direct_connection;
        if o.srv_max_hosts.unwrap_or(0) != c.srv_max_hosts {
            o.srv_max_hosts = Some(c.srv_max_hosts);
        }
        o
    }

    /// Adds the resolved seeds: the TXT options set the topology type (replicaSet:
    /// ReplicaSetNoPrimary with that set name; loadBalanced: LoadBalanced), then every seed
    /// opens as an Unknown server and its monitor starts. Fails (changing nothing) if the
    /// resulting configuration is one the spec forbids.
    fn apply_initial_seed_list(&mut self, resolution: SrvResolution, now: Instant) -> Result<(), String> {
        let mut config = self.config.clone();
        config.seeds.clone_from(&resolution.hosts);
        config.replica_set_name.clone_from(&resolution.options.replica_set);
        config.load_balanced = resolution.options.load_balanced == Some(true);
        config.validate().map_err(|e| e.to_string())?;
        self.config = config;
        let topology_type = self.config.initial_topology_type();
        let set_name = self.config.replica_set_name.as_deref().map(Arc::from);
        let hosts = resolution.hosts.clone();
        let rescan_interval = resolution.rescan_interval;
        self.replace_servers(now, |td, changes| {
            td.topology_type = topology_type;
            td.set_name = set_name;
            td.srv_error = None;
            for host in &hosts {
                td.add_unknown(host, || "the SRV records".to_owned(), changes);
            }
            true
        });
        if topology_type == TopologyType::LoadBalanced {
            self.make_load_balancer(now);
        }
        if let Some(srv) = self.srv.as_mut() {
            srv.seeded = true;
            srv.resolution = Some(resolution);
            srv.last_error = None;
            srv.retry_delay = SRV_RETRY_BACKOFF;
            // "The rescanSRVIntervalMS period SHOULD be calculated from the end of ... the
            // initial DNS seedlist discovery scan."
            srv.next_lookup = rescans_srv(topology_type).then(|| now + rescan_interval);
        }
        Ok(())
    }

    /// The answer to a rescan (polling-srv-records-for-mongos-discovery.md,
    /// "Implementation"): hosts are added and removed, and the next rescan scheduled.
    fn on_rescan(&mut self, result: Result<&[SrvRecord], String>, now: Instant) {
        let heartbeat = self.config.heartbeat_frequency;
        let (interval, error) = match result {
            Ok(records) => match self.apply_srv_records(records, now) {
                Some(rescan) if rescan.lookup_succeeded => (Some(rescan.rescan_interval), None),
                Some(rescan) => (Some(rescan.rescan_interval), Some(no_valid_records(&rescan))),
                // The topology no longer polls.
                None => (None, None),
            },
            // "If ... a DNS error happens, the driver MUST NOT change the topology ... MUST
            // temporarily set rescanSRVIntervalMS to heartbeatFrequencyMS."
            Err(e) => (Some(heartbeat), Some(e)),
        };
        let polls = rescans_srv(self.description.topology_type);
        if let Some(srv) = self.srv.as_mut() {
            srv.last_error = error;
            srv.next_lookup = interval.filter(|_| polls).map(|i| now + i);
        }
    }

    /// Applies a new SRV record set: removed hosts are closed, new ones added up to
    /// srvMaxHosts. `None` if the topology does not poll (not from `mongodb+srv`, or neither
    /// Unknown nor Sharded).
    fn apply_srv_records(&mut self, records: &[SrvRecord], now: Instant) -> Option<SrvRescan> {
        let query = self.srv.as_ref()?.query.clone();
        if !rescans_srv(self.description.topology_type) {
            return None;
        }
        let current: Vec<_> = self.description.servers.addresses().cloned().collect();
        let rescan = query.rescan(
            &current,
            records,
            self.config.srv_max_hosts,
            self.config.heartbeat_frequency,
            &mut self.rng,
        );
        if !rescan.added.is_empty() || !rescan.removed.is_empty() {
            self.replace_servers(now, |td, changes| {
                for gone in &rescan.removed {
                    td.remove(gone, changes);
                }
                for new in &rescan.added {
                    td.add_unknown(new, || "the SRV records".to_owned(), changes);
                }
                true
            });
        }
        Some(rescan)
    }
}

/// The log line for a rescan that found no usable record.
fn no_valid_records(rescan: &SrvRescan) -> String {
    if rescan.rejected.is_empty() {
        return "the SRV rescan returned no records; the hosts are unchanged".to_owned();
    }
    let reasons: Vec<String> = rescan.rejected.iter().map(|r| r.reason.to_string()).collect();
    format!("the SRV rescan returned no valid record ({}); the hosts are unchanged", reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bson::rawdoc;

    use super::{DEFAULT_DNS_TIMEOUT, SRV_RETRY_BACKOFF};
    use crate::connection_string::srv::{SrvQuery, SrvRecord, TxtRecord, MIN_RESCAN_INTERVAL};
    use crate::selection::{SelectionCriteria, SelectionOptions};
    use crate::{
        Command, ConnectionString, Event, Input, Output, RequestId, ServerAddress, ServerType, SrvError,
        Topology, TopologyConfig, TopologyType,
    };

    fn addr(s: &str) -> ServerAddress {
        ServerAddress::parse(s).unwrap()
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn rec(target: &str) -> SrvRecord {
        SrvRecord::new(target, 27017)
    }

    fn config(uri: &str) -> TopologyConfig {
        let mut c = TopologyConfig::from_connection_string(&ConnectionString::parse(uri).unwrap());
        c.rng_seed = Some(11);
        c
    }

    /// What one drain of the outputs held.
    #[derive(Debug, Default)]
    struct Drained {
        srv: Vec<(RequestId, String, Instant)>,
        txt: Vec<(RequestId, String, Instant)>,
        opened: Vec<ServerAddress>,
        closed: Vec<ServerAddress>,
        hellos: usize,
        description_changes: usize,
        selections: Vec<(
            crate::selection::SelectionId,
            Result<crate::selection::SelectedServer, Box<crate::selection::SelectionError>>,
        )>,
    }

    fn drain(t: &mut Topology) -> Drained {
        let mut d = Drained::default();
        while let Some(o) = t.poll_output() {
            match o {
                Output::Command(Command::ResolveSrv { request, name, deadline }) => {
                    d.srv.push((request, name, deadline));
                }
                Output::Command(Command::ResolveTxt { request, name, deadline }) => {
                    d.txt.push((request, name, deadline));
                }
                Output::Command(Command::SendHello { .. }) => d.hellos += 1,
                Output::Selection { id, result } => d.selections.push((id, result)),
                Output::Event(Event::ServerOpening { address, .. }) => d.opened.push(address),
                Output::Event(Event::ServerClosed { address, .. }) => d.closed.push(address),
                Output::Event(Event::TopologyDescriptionChanged { .. }) => d.description_changes += 1,
                // Not what these tests look at (events, hellos and lookups).
                Output::Event(_)
                | Output::Command(
                    Command::ReadReply { .. }
                    | Command::CloseConnection { .. }
                    | Command::ClearPool { .. }
                    | Command::MarkPoolReady { .. }
                    | Command::RequestCheck { .. }
                    | Command::CancelCheck { .. },
                )
                | Output::SelectionLog { .. } => {}
            }
        }
        d
    }

    fn start(uri: &str) -> (Topology, Instant, Drained) {
        let now = crate::test_instant();
        let mut t = Topology::new(config(uri), now).unwrap();
        let d = drain(&mut t);
        (t, now, d)
    }

    fn answer_srv(t: &mut Topology, request: RequestId, records: &[SrvRecord], now: Instant) {
        t.handle(Input::SrvResolved { request, result: Ok(records) }, now);
    }

    fn answer_txt(t: &mut Topology, request: RequestId, records: &[TxtRecord], now: Instant) {
        t.handle(Input::TxtResolved { request, result: Ok(records) }, now);
    }

    /// Starts `uri` and answers its two lookups at once.
    fn resolved(uri: &str, srv: &[SrvRecord], txt: &[TxtRecord]) -> (Topology, Instant, Drained) {
        let (mut t, now, d) = start(uri);
        answer_srv(&mut t, d.srv[0].0, srv, now);
        answer_txt(&mut t, d.txt[0].0, txt, now);
        let d = drain(&mut t);
        (t, now, d)
    }

    fn hosts(t: &Topology) -> Vec<ServerAddress> {
        t.description().servers.addresses().cloned().collect()
    }

    #[test]
    fn starts_with_no_servers_and_sends_both_lookups() {
        let (t, now, d) = start("mongodb+srv://cluster0.example.com/?connectTimeoutMS=2000");
        assert_eq!(d.srv.len(), 1);
        assert_eq!(d.txt.len(), 1);
        assert_eq!(d.srv[0].1, "_mongodb._tcp.cluster0.example.com");
        assert_eq!(d.txt[0].1, "cluster0.example.com");
        assert_eq!((d.srv[0].2, d.txt[0].2), (now + secs(2), now + secs(2)), "one overall deadline each");
        assert_ne!(d.srv[0].0, d.txt[0].0, "each lookup has its own request id");
        assert!(d.opened.is_empty() && d.hellos == 0, "no host is contacted before the answers");
        assert_eq!(d.description_changes, 0, "the empty Unknown description is unchanged");
        let td = t.description();
        assert_eq!(td.topology_type, TopologyType::Unknown);
        assert!(td.servers.is_empty());
        assert_eq!(td.srv_error, None);
        assert_eq!(t.poll_timeout(), Some(now + secs(2)), "the lookups' own deadline");
    }

    #[test]
    fn lookup_timeout_defaults_when_connect_timeout_is_zero() {
        let (_, now, d) =
            start("mongodb+srv://cluster0.example.com/?connectTimeoutMS=0&srvServiceName=custom");
        assert_eq!(d.srv[0].1, "_custom._tcp.cluster0.example.com");
        assert_eq!(d.srv[0].2, now + DEFAULT_DNS_TIMEOUT);
        let (_, now, d) = start("mongodb+srv://cluster0.example.com/");
        assert_eq!(d.srv[0].2, now + secs(10), "connectTimeoutMS's default");
    }

    #[test]
    fn answers_open_the_seeds_and_start_their_monitors() {
        let srv = [rec("a.example.com."), rec("b.example.com").with_ttl(secs(300))];
        let (t, now, d) = resolved("mongodb+srv://cluster0.example.com/", &srv, &[]);
        assert_eq!(d.opened, [addr("a.example.com"), addr("b.example.com")]);
        assert_eq!(d.hellos, 2, "one handshake per seed");
        let td = t.description();
        assert_eq!(td.topology_type, TopologyType::Unknown, "no topology is inferred from the record count");
        assert_eq!(hosts(&t), [addr("a.example.com"), addr("b.example.com")]);
        assert_eq!(t.config().seeds, hosts(&t));
        let resolution = t.srv_resolution().unwrap();
        assert_eq!(resolution.rescan_interval, secs(300), "the lowest TTL reported");
        assert_eq!(srv_deadline(&t), Some(now + secs(300)), "the first rescan");
    }

    #[test]
    fn answers_in_either_order_and_stale_ids_are_ignored() {
        let (mut t, now, d) = start("mongodb+srv://cluster0.example.com/");
        let (srv_id, txt_id) = (d.srv[0].0, d.txt[0].0);
        let records = [rec("a.example.com")];
        // An unknown id, and an SRV answer carrying the TXT lookup's id: ignored.
        answer_srv(&mut t, RequestId::new(9_999), &records, now);
        answer_srv(&mut t, txt_id, &records, now);
        assert!(hosts(&t).is_empty());
        answer_txt(&mut t, txt_id, &[], now);
        assert!(hosts(&t).is_empty(), "the SRV answer is still missing");
        answer_srv(&mut t, srv_id, &records, now);
        assert_eq!(hosts(&t), [addr("a.example.com")]);
        // A second answer to the same lookup changes nothing.
        answer_srv(&mut t, srv_id, &[rec("z.example.com")], now);
        assert_eq!(hosts(&t), [addr("a.example.com")]);
    }

    #[test]
    fn txt_replica_set_makes_a_replica_set_that_is_never_polled() {
        let txt = [TxtRecord::new(["replicaSet=rs0&authSource=admin"])];
        let (mut t, now, _) = resolved("mongodb+srv://cluster0.example.com/", &[rec("a.example.com")], &txt);
        let td = t.description();
        assert_eq!(td.topology_type, TopologyType::ReplicaSetNoPrimary);
        assert_eq!(td.set_name.as_deref(), Some("rs0"));
        assert_eq!(t.config().replica_set_name.as_deref(), Some("rs0"));
        assert_eq!(t.srv_resolution().unwrap().options.auth_source.as_deref(), Some("admin"));
        // The connection string's own value wins over the TXT record's.
        let (t2, _, _) =
            resolved("mongodb+srv://cluster0.example.com/?authSource=mine", &[rec("a.example.com")], &txt);
        assert_eq!(t2.srv_resolution().unwrap().options.auth_source.as_deref(), Some("mine"));
        // No rescan is ever due for a replica set.
        t.handle_timeout(now + secs(3600));
        assert!(drain(&mut t).srv.is_empty());
    }

    #[test]
    fn txt_load_balanced_makes_a_load_balancer() {
        let txt = [TxtRecord::new(["loadBalanced=true"])];
        let (t, _, d) = resolved("mongodb+srv://cluster0.example.com/", &[rec("lb.example.com")], &txt);
        let td = t.description();
        assert_eq!(td.topology_type, TopologyType::LoadBalanced);
        assert_eq!(td.server(&addr("lb.example.com")).unwrap().server_type, ServerType::LoadBalancer);
        assert_eq!(d.hellos, 0, "load balancers are not monitored");
        assert_eq!(srv_deadline(&t), None, "and not polled");
        // An explicit loadBalanced=false in the connection string overrides the record.
        let (t, _, _) = resolved(
            "mongodb+srv://cluster0.example.com/?loadBalanced=false",
            &[rec("lb.example.com")],
            &txt,
        );
        assert_eq!(t.description().topology_type, TopologyType::Unknown);
    }

    #[test]
    fn srv_max_hosts_picks_a_random_subset_with_the_seeded_rng() {
        let srv: Vec<SrvRecord> = (0..6).map(|i| rec(&format!("h{i}.example.com"))).collect();
        let uri = "mongodb+srv://cluster0.example.com/?srvMaxHosts=2";
        let (t1, _, d) = resolved(uri, &srv, &[]);
        let (t2, _, _) = resolved(uri, &srv, &[]);
        assert_eq!(d.opened.len(), 2);
        assert_eq!(hosts(&t1), hosts(&t2), "the same rng seed picks the same hosts");
        let mut other = config(uri);
        let picks: Vec<Vec<ServerAddress>> = (0..8)
            .map(|seed| {
                other.rng_seed = Some(seed);
                let now = crate::test_instant();
                let mut t = Topology::new(other.clone(), now).unwrap();
                let d = drain(&mut t);
                answer_srv(&mut t, d.srv[0].0, &srv, now);
                answer_txt(&mut t, d.txt[0].0, &[], now);
                hosts(&t)
            })
            .collect();
        assert!(picks.iter().any(|p| *p != picks[0]), "other seeds pick other hosts");
    }

    /// Every rule that rejects an initial answer "MUST raise an error"
    /// (initial-dns-seedlist-discovery.md): the error is permanent, visible on the
    /// description, and no lookup is ever sent again (it used to be retried forever).
    #[test]
    fn invalid_answers_are_raised_and_never_retried() {
        let one = [rec("a.example.com")];
        let two = [rec("a.example.com"), rec("b.example.com")];
        let cases: [(&str, &[SrvRecord], Vec<TxtRecord>, &str); 6] = [
            ("", &[rec("a.evil.com")], vec![], "not in the connection string host's domain"),
            (
                "",
                &one,
                vec![TxtRecord::new(["replicaSet=a"]), TxtRecord::new(["authSource=b"])],
                "2 TXT records",
            ),
            ("", &one, vec![TxtRecord::new(["ssl=false"])], "TXT"),
            ("", &two, vec![TxtRecord::new(["loadBalanced=true"])], "requires exactly one host"),
            ("?srvMaxHosts=1", &one, vec![TxtRecord::new(["loadBalanced=true"])], "srvMaxHosts=1"),
            ("?srvMaxHosts=1", &one, vec![TxtRecord::new(["replicaSet=rs"])], "srvMaxHosts=1"),
        ];
        for (options, srv, txt, expected) in cases {
            let uri = format!("mongodb+srv://cluster0.example.com/{options}");
            let (mut t, now, d) = start(&uri);
            answer_srv(&mut t, d.srv[0].0, srv, now);
            answer_txt(&mut t, d.txt[0].0, &txt, now);
            let after = drain(&mut t);
            let td = t.description();
            let error = td.srv_error.clone().unwrap_or_else(|| panic!("{uri} {srv:?} {txt:?}: no error"));
            assert!(error.is_permanent(), "{uri}: {error:?}");
            let message = error.message();
            assert!(message.contains(expected), "{message:?} should mention {expected:?}");
            assert!(
                message.starts_with("mongodb+srv seed list discovery for \"cluster0.example.com\" failed")
            );
            assert!(td.servers.is_empty() && after.opened.is_empty(), "{uri}: no host added");
            assert_eq!(after.description_changes, 1, "the error is published");
            assert_eq!(t.srv_last_error(), Some(message));
            assert_eq!(t.poll_timeout(), None, "{uri}: never retried");
            t.handle_timeout(now + secs(3600));
            assert!(drain(&mut t).srv.is_empty(), "{uri}: no lookup an hour later");
        }
    }

    /// An empty SRV answer is raised too, but DNS may publish the records later (a cluster
    /// being created): it is transient and retried.
    #[test]
    fn no_srv_records_is_transient_and_retried() {
        let (mut t, now, d) = start("mongodb+srv://cluster0.example.com/");
        answer_srv(&mut t, d.srv[0].0, &[], now);
        answer_txt(&mut t, d.txt[0].0, &[], now);
        let error = t.description().srv_error.clone().expect("the error is published");
        assert!(!error.is_permanent() && error.message().contains("returned no records"), "{error:?}");
        assert_eq!(t.poll_timeout(), Some(now + SRV_RETRY_BACKOFF));
    }

    #[test]
    fn failed_lookups_retry_with_backoff_then_succeed() {
        let (mut t, t0, d) = start("mongodb+srv://cluster0.example.com/?heartbeatFrequencyMS=3000");
        t.handle(Input::SrvResolved { request: d.srv[0].0, result: Err("NXDOMAIN".into()) }, t0);
        let td = t.description();
        assert_eq!(
            td.srv_error.as_ref().map(SrvError::message),
            Some(
                "mongodb+srv seed list discovery for \"cluster0.example.com\" failed: the SRV lookup of \
                 \"_mongodb._tcp.cluster0.example.com\" failed: NXDOMAIN"
            )
        );
        // The TXT lookup of the failed attempt is abandoned.
        answer_txt(&mut t, d.txt[0].0, &[], t0);
        assert!(drain(&mut t).srv.is_empty());
        // Retries at +0.5 s, then 1 s, 2 s, 3 s (heartbeatFrequencyMS caps the backoff), 3 s.
        let mut at = t0;
        let mut waits = Vec::new();
        for _ in 0..5 {
            let next = t.poll_timeout().unwrap();
            waits.push(next - at);
            t.handle_timeout(next);
            let d = drain(&mut t);
            assert_eq!((d.srv.len(), d.txt.len()), (1, 1), "both lookups again");
            at = next;
            t.handle(Input::TxtResolved { request: d.txt[0].0, result: Err("SERVFAIL".into()) }, at);
        }
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000].map(Duration::from_millis));
        assert!(t
            .description()
            .srv_error
            .as_ref()
            .map(SrvError::message)
            .unwrap()
            .contains("TXT lookup of \"cluster0.example.com\" failed: SERVFAIL"));
        // Then the lookups succeed: the error is gone and the seeds open.
        let next = t.poll_timeout().unwrap();
        t.handle_timeout(next);
        let d = drain(&mut t);
        answer_txt(&mut t, d.txt[0].0, &[], next);
        answer_srv(&mut t, d.srv[0].0, &[rec("a.example.com")], next);
        assert_eq!(t.description().srv_error, None);
        assert_eq!(t.srv_last_error(), None);
        assert_eq!(hosts(&t), [addr("a.example.com")]);
    }

    #[test]
    fn unanswered_lookups_time_out_in_the_core() {
        let (mut t, t0, d) = start("mongodb+srv://cluster0.example.com/?connectTimeoutMS=1500");
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_millis(1500)));
        t.handle_timeout(t0 + Duration::from_millis(1500));
        assert!(t
            .description()
            .srv_error
            .as_ref()
            .unwrap()
            .message()
            .ends_with("failed: no answer within 1500 ms"));
        // A late answer to the timed-out lookups is stale.
        let late = t0 + Duration::from_millis(1800);
        answer_srv(&mut t, d.srv[0].0, &[rec("a.example.com")], late);
        answer_txt(&mut t, d.txt[0].0, &[], late);
        assert!(hosts(&t).is_empty());
        assert_eq!(
            t.poll_timeout(),
            Some(t0 + Duration::from_millis(2000)),
            "retry 500 ms after the timeout"
        );
    }

    /// A waiting selection fails at once with a permanent discovery error, not at
    /// serverSelectionTimeoutMS; and a selection started afterwards fails on its first poll.
    #[test]
    fn a_permanent_discovery_error_fails_a_waiting_selection_at_once() {
        let (mut t, t0, d) = start("mongodb+srv://cluster0.example.com/");
        let options = SelectionOptions::new("find").with_timeout(secs(30));
        let id = t.start_selection(SelectionCriteria::write(), options.clone(), t0);
        assert_eq!(t.waiting_selections(), 1);
        let answered = t0 + Duration::from_millis(20);
        answer_srv(&mut t, d.srv[0].0, &[rec("a.evil.com")], answered);
        answer_txt(&mut t, d.txt[0].0, &[], answered);
        let woken = drain(&mut t);
        let error = woken
            .selections
            .into_iter()
            .find_map(|(i, result)| if i == id { result.err() } else { None })
            .expect("the waiting selection fails at once, not at its deadline");
        let crate::selection::SelectionErrorKind::SeedListDiscoveryFailed(message) = &error.kind else {
            panic!("{:?}", error.kind)
        };
        assert!(message.contains("not in the connection string host's domain"), "{message}");
        let later = t.start_selection(SelectionCriteria::write(), options, answered);
        let failed = drain(&mut t).selections.into_iter().any(|(i, result)| i == later && result.is_err());
        assert!(failed, "a selection started afterwards fails on its first poll");
    }

    #[test]
    fn a_waiting_selection_fails_with_the_discovery_error() {
        let (mut t, t0, d) = start("mongodb+srv://cluster0.example.com/");
        t.handle(Input::SrvResolved { request: d.srv[0].0, result: Err("NXDOMAIN".into()) }, t0);
        let options = SelectionOptions::new("find").with_timeout(secs(1));
        let id = t.start_selection(SelectionCriteria::write(), options, t0);
        assert_eq!(t.waiting_selections(), 1);
        t.handle_timeout(t0 + secs(1));
        let error = std::iter::from_fn(|| t.poll_output())
            .find_map(|o| match o {
                Output::Selection { id: i, result: Err(error) } if i == id => Some(error),
                _ => None,
            })
            .expect("the selection fails at its deadline");
        let message = error.to_string();
        assert!(
            message.contains("no servers known for write: mongodb+srv seed list discovery")
                && message.contains("NXDOMAIN"),
            "{message}"
        );
    }

    /// The next SRV lookup or lookup timeout (`poll_timeout` also holds the hosts' check
    /// deadlines, which these tests leave unanswered).
    fn srv_deadline(t: &Topology) -> Option<Instant> {
        t.srv.as_ref().and_then(|s| s.next_deadline(t.description.topology_type))
    }

    /// Drives the rescan due at `srv_deadline` and answers it.
    fn rescan(t: &mut Topology, result: Result<&[SrvRecord], String>) -> (Instant, Drained) {
        let at = srv_deadline(t).expect("a rescan is scheduled");
        t.handle_timeout(at);
        let d = drain(t);
        assert_eq!((d.srv.len(), d.txt.len()), (1, 0), "rescans look up SRV records only");
        t.handle(Input::SrvResolved { request: d.srv[0].0, result }, at);
        (at, drain(t))
    }

    #[test]
    fn rescans_add_and_remove_hosts_and_follow_the_ttl() {
        let srv = [rec("a.example.com").with_ttl(secs(90)), rec("b.example.com").with_ttl(secs(120))];
        let (mut t, t0, _) = resolved("mongodb+srv://cluster0.example.com/", &srv, &[]);
        assert_eq!(srv_deadline(&t), Some(t0 + secs(90)), "the lowest TTL");
        let next = [rec("b.example.com"), rec("c.example.com")];
        let (at, d) = rescan(&mut t, Ok(&next));
        assert_eq!(at, t0 + secs(90));
        assert_eq!(d.opened, [addr("c.example.com")]);
        assert_eq!(d.closed, [addr("a.example.com")]);
        assert_eq!(d.hellos, 1, "the new host's monitor starts");
        assert_eq!(hosts(&t), [addr("b.example.com"), addr("c.example.com")]);
        assert_eq!(srv_deadline(&t), Some(at + MIN_RESCAN_INTERVAL), "no TTL: 60 s");
    }

    #[test]
    fn failed_or_empty_rescans_keep_the_hosts_and_retry_at_heartbeat_frequency() {
        let (mut t, _, _) = resolved("mongodb+srv://cluster0.example.com/", &[rec("a.example.com")], &[]);
        let outcomes: [Result<&[SrvRecord], String>; 3] =
            [Err("timed out".into()), Ok(&[]), Ok(&[rec("x.evil.com")])];
        for result in outcomes {
            let (at, d) = rescan(&mut t, result);
            assert!(d.opened.is_empty() && d.closed.is_empty() && d.description_changes == 0);
            assert_eq!(hosts(&t), [addr("a.example.com")]);
            assert_eq!(srv_deadline(&t), Some(at + secs(10)), "heartbeatFrequencyMS");
            assert!(t.srv_last_error().is_some());
            assert_eq!(t.description().srv_error, None, "rescan failures never change the description");
        }
        assert!(t.srv_last_error().unwrap().contains("not in the connection string host's domain"));
        let (at, _) = rescan(&mut t, Ok(&[rec("a.example.com")]));
        assert_eq!(t.srv_last_error(), None);
        assert_eq!(srv_deadline(&t), Some(at + MIN_RESCAN_INTERVAL));
    }

    #[test]
    fn rescans_respect_srv_max_hosts_and_refill() {
        let srv = [rec("a.example.com"), rec("b.example.com"), rec("c.example.com")];
        let (mut t, _, _) = resolved("mongodb+srv://cluster0.example.com/?srvMaxHosts=2", &srv, &[]);
        let first = hosts(&t);
        assert_eq!(first.len(), 2);
        // Unchanged records: the two hosts stay.
        let (_, d) = rescan(&mut t, Ok(&srv));
        assert!(d.opened.is_empty() && d.closed.is_empty());
        // One of the two disappears: the third takes its place.
        let gone = first[0].clone();
        let rest: Vec<SrvRecord> = srv.iter().filter(|r| addr(&r.target) != gone).cloned().collect();
        let (_, d) = rescan(&mut t, Ok(&rest));
        assert_eq!(d.closed, std::slice::from_ref(&gone));
        assert_eq!(d.opened.len(), 1);
        let now: Vec<ServerAddress> = hosts(&t);
        assert_eq!(now.len(), 2);
        assert!(now.contains(&first[1]) && !now.contains(&gone));
    }

    #[test]
    fn polling_stops_once_the_topology_is_a_replica_set() {
        let (mut t, t0, _) = resolved("mongodb+srv://cluster0.example.com/", &[rec("a.example.com")], &[]);
        let primary = rawdoc! {"ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a.example.com:27017"], "maxWireVersion": 21};
        t.handle(
            Input::HelloReply {
                address: addr("a.example.com"),
                reply: primary.clone(),
                round_trip_time: secs(0),
                awaited: false,
            },
            t0,
        );
        drain(&mut t);
        assert_eq!(t.description().topology_type, TopologyType::ReplicaSetWithPrimary);
        t.handle_timeout(t0 + MIN_RESCAN_INTERVAL);
        assert!(drain(&mut t).srv.is_empty(), "no rescan for a replica set");
        t.handle_timeout(t0 + secs(3600));
        assert!(drain(&mut t).srv.is_empty());
    }

    #[test]
    fn sharded_topologies_keep_polling() {
        let (mut t, t0, _) = resolved("mongodb+srv://cluster0.example.com/", &[rec("a.example.com")], &[]);
        let mongos = rawdoc! {"ok": 1, "isWritablePrimary": true, "msg": "isdbgrid", "maxWireVersion": 21};
        t.handle(
            Input::HelloReply {
                address: addr("a.example.com"),
                reply: mongos.clone(),
                round_trip_time: secs(0),
                awaited: false,
            },
            t0,
        );
        drain(&mut t);
        assert_eq!(t.description().topology_type, TopologyType::Sharded);
        let (at, d) = rescan(&mut t, Ok(&[rec("a.example.com"), rec("b.example.com")]));
        assert!(at <= t0 + MIN_RESCAN_INTERVAL);
        assert_eq!(d.opened, [addr("b.example.com")]);
    }

    #[test]
    fn a_given_seed_list_is_only_polled() {
        let now = crate::test_instant();
        let mut config = TopologyConfig::with_seeds([addr("m1.example.com"), addr("m2.example.com")]);
        config.srv = Some(SrvQuery::new("cluster.example.com", "mongodb").unwrap());
        config.srv_max_hosts = 2;
        config.uri_options = None;
        let mut t = Topology::new(config, now).unwrap();
        let d = drain(&mut t);
        assert!(d.srv.is_empty() && d.txt.is_empty(), "no initial lookup");
        assert_eq!(d.opened.len(), 2);
        assert!(t.srv_resolution().is_none());
        let records = [rec("m2.example.com"), rec("m3.example.com"), rec("m4.example.com")];
        // Drive time past the monitors' handshakes (unanswered) to the first rescan.
        let (at, d) = rescan(&mut t, Ok(&records));
        assert_eq!(at, now + MIN_RESCAN_INTERVAL);
        assert_eq!(d.closed, [addr("m1.example.com")]);
        assert_eq!(d.opened.len(), 1);
        assert_eq!(t.description().servers.len(), 2, "srvMaxHosts caps the hosts");
        assert!(t.description().server(&addr("m2.example.com")).is_some(), "existing hosts are kept");
    }

    #[test]
    fn closing_abandons_lookups() {
        let (mut t, t0, d) = start("mongodb+srv://cluster0.example.com/");
        t.handle(Input::Close, t0);
        drain(&mut t);
        assert_eq!(t.poll_timeout(), None);
        answer_srv(&mut t, d.srv[0].0, &[rec("a.example.com")], t0);
        assert!(t.poll_output().is_none());
    }

    #[test]
    fn direct_connection_and_srv_is_refused() {
        let mut c = config("mongodb+srv://cluster0.example.com/");
        c.direct_connection = Some(true);
        let e = Topology::new(c, crate::test_instant()).unwrap_err();
        assert!(e.to_string().contains("directConnection=true cannot be used with mongodb+srv"));
    }
}
