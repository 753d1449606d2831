//! The invariants of the topology state machine and of server selection, as functions that
//! return a description of the first violation. Property tests and fuzz targets call them
//! after every input (see [`super::harness`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::address::ServerAddress;
use crate::events::{Event, TopologyId};
use crate::read_preference::{ReadPreference, ReadPreferenceMode};
use crate::rng::Rng;
use crate::selection::{
    estimate_staleness, in_latency_window, select_server, suitable_servers, OperationCounts,
    SelectionCriteria,
};
use crate::server_description::{ServerDescription, ServerType};
use crate::topology::{Topology, TopologyConfig};
use crate::topology_description::{TopologyDescription, TopologyType};

/// A broken invariant, described.
pub type Violation = String;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// The shape of a description: at most one RSPrimary; the topology type agrees with its
/// servers' types and its setName; in a replica set no member reports another set's name;
/// a configured `replicaSet` is never replaced.
pub fn check_description(td: &TopologyDescription, config: &TopologyConfig) -> Result<(), Violation> {
    let count = |t: ServerType| td.servers.iter().filter(|sd| sd.server_type == t).count();
    let primaries = count(ServerType::RSPrimary);
    ensure!(primaries <= 1, "{primaries} RSPrimary servers in {}", td.topology_type);
    let types_allowed =
        |allowed: &[ServerType]| td.servers.iter().all(|sd| allowed.contains(&sd.server_type));
    match td.topology_type {
        TopologyType::Unknown => {
            ensure!(
                types_allowed(&[ServerType::Unknown, ServerType::RSGhost]),
                "topology Unknown holds a server of a known type other than RSGhost"
            );
            ensure!(td.set_name.is_none(), "topology Unknown has setName {:?}", td.set_name);
        }
        TopologyType::Single => {
            ensure!(td.servers.len() == 1, "topology Single has {} servers", td.servers.len());
            if let Some(expected) = &config.replica_set_name {
                for sd in td.servers.iter().filter(|sd| sd.server_type != ServerType::Unknown) {
                    ensure!(
                        sd.set_name.as_deref() == Some(expected.as_str()),
                        "Single with replicaSet {expected:?} holds a {} of set {:?}",
                        sd.server_type,
                        sd.set_name
                    );
                }
            }
        }
        TopologyType::Sharded => {
            // An RSGhost found while the type was Unknown stays until its next check: the
            // spec's table changes only the type when a mongos makes the topology Sharded.
            ensure!(
                types_allowed(&[ServerType::Unknown, ServerType::Mongos, ServerType::RSGhost]),
                "topology Sharded holds a server that is not Unknown, Mongos or a lingering RSGhost"
            );
            ensure!(td.set_name.is_none(), "topology Sharded has setName {:?}", td.set_name);
        }
        TopologyType::ReplicaSetNoPrimary | TopologyType::ReplicaSetWithPrimary => {
            let with = td.topology_type == TopologyType::ReplicaSetWithPrimary;
            ensure!(
                primaries == usize::from(with),
                "{} with {primaries} RSPrimary servers",
                td.topology_type
            );
            for sd in td.servers.iter() {
                ensure!(
                    !matches!(
                        sd.server_type,
                        ServerType::Standalone | ServerType::Mongos | ServerType::LoadBalancer
                    ),
                    "{} holds {} {}",
                    td.topology_type,
                    sd.server_type,
                    sd.address
                );
                // RSGhost replies are a no-op in replica set topologies, whatever they say.
                if sd.server_type.is_replica_set_member() {
                    ensure!(
                        td.set_name.is_some() && sd.set_name == td.set_name,
                        "{} {} of set {:?} in a topology of set {:?}",
                        sd.server_type,
                        sd.address,
                        sd.set_name,
                        td.set_name
                    );
                }
            }
            if let Some(expected) = &config.replica_set_name {
                ensure!(
                    td.set_name.as_deref() == Some(expected.as_str()),
                    "replicaSet {expected:?} configured, topology setName is {:?}",
                    td.set_name
                );
            }
        }
        TopologyType::LoadBalanced => {
            ensure!(
                td.servers.len() == 1 && types_allowed(&[ServerType::LoadBalancer]),
                "topology LoadBalanced must hold exactly one LoadBalancer"
            );
        }
    }
    if td.topology_type != TopologyType::LoadBalanced {
        ensure!(count(ServerType::LoadBalancer) == 0, "a LoadBalancer server outside load-balanced mode");
    }
    Ok(())
}

/// maxElectionId and maxSetVersion never move backwards: from one description to the next,
/// the pair grows (or stays) in the order the spec compares it for the primary that moved it,
/// (electionId, setVersion) for MongoDB 6.0+ or (setVersion, electionId) before (null is
/// smaller than any value).
pub fn check_max_election(
    previous: &TopologyDescription,
    next: &TopologyDescription,
) -> Result<(), Violation> {
    let (pe, ps, ne, ns) =
        (previous.max_election_id, previous.max_set_version, next.max_election_id, next.max_set_version);
    ensure!(
        (ne, ns) >= (pe, ps) || (ns, ne) >= (ps, pe),
        "(maxElectionId, maxSetVersion) went backwards: ({pe:?}, {ps:?}) -> ({ne:?}, {ns:?})"
    );
    Ok(())
}

/// Every server of the description has a monitor (none in load-balanced mode) and no other
/// server is tracked; a closed topology tracks nothing.
pub fn check_monitors(topology: &Topology) -> Result<(), Violation> {
    let census = topology.monitor_census();
    if topology.is_closed() {
        ensure!(census.is_empty(), "a closed topology still tracks {} servers", census.len());
        return Ok(());
    }
    let td = topology.description();
    let tracked: Vec<&ServerAddress> = census.iter().map(|(a, _)| a).collect();
    let described: Vec<&ServerAddress> = td.servers.addresses().collect();
    ensure!(tracked == described, "servers tracked {tracked:?} differ from servers described {described:?}");
    let monitored = !topology.config().load_balanced;
    for (address, has_monitor) in &census {
        ensure!(
            *has_monitor == monitored,
            "{address}: monitor {} in {} mode",
            if *has_monitor { "running" } else { "missing" },
            if monitored { "monitored" } else { "load-balanced" }
        );
    }
    Ok(())
}

/// `poll_timeout()` is never before the last `now` the topology was given, and nothing that
/// was due by then is left undone (the topology would be woken in a loop).
pub fn check_poll_timeout(topology: &Topology, last_now: Instant) -> Result<(), Violation> {
    if let Some(deadline) = topology.poll_timeout() {
        ensure!(deadline >= last_now, "poll_timeout() is {:?} before the last now", last_now - deadline);
        ensure!(
            deadline > last_now,
            "poll_timeout() asks to be woken at the last now: work due was left undone"
        );
    }
    if topology.is_closed() {
        ensure!(topology.poll_timeout().is_none(), "a closed topology asks to be woken");
    }
    Ok(())
}

/// Checks the event stream: `TopologyOpening` first; each description-changed event's
/// `previous` is the `new` of the previous event for the same subject (spec equality) and
/// differs from its own `new`; `ServerOpening` before any event about that server,
/// `ServerClosed` after the last; `TopologyClosed` after every server closed, and last.
#[derive(Debug, Default)]
pub struct EventChecker {
    topology_id: Option<TopologyId>,
    closed: bool,
    published: Option<Arc<TopologyDescription>>,
    /// The open servers and the last description published for each.
    servers: BTreeMap<ServerAddress, Arc<ServerDescription>>,
    count: usize,
}

impl EventChecker {
    /// A checker that has seen no event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event.
    pub fn observe(&mut self, event: &Event) -> Result<(), Violation> {
        self.count += 1;
        let n = self.count;
        ensure!(!self.closed, "event {n} after TopologyClosed: {event:?}");
        let id = match event {
            Event::TopologyOpening { topology_id }
            | Event::TopologyDescriptionChanged { topology_id, .. }
            | Event::ServerOpening { topology_id, .. }
            | Event::ServerDescriptionChanged { topology_id, .. }
            | Event::ServerClosed { topology_id, .. }
            | Event::TopologyClosed { topology_id } => Some(*topology_id),
            _ => None,
        };
        if let Event::TopologyOpening { topology_id } = event {
            ensure!(self.topology_id.is_none(), "a second TopologyOpening (event {n})");
            self.topology_id = Some(*topology_id);
            return Ok(());
        }
        ensure!(self.topology_id.is_some(), "event {n} before TopologyOpening: {event:?}");
        ensure!(id.is_none() || id == self.topology_id, "event {n} names another topology");
        match event {
            Event::TopologyDescriptionChanged { previous, new, .. } => {
                match &self.published {
                    Some(last) => ensure!(
                        **previous == **last,
                        "TopologyDescriptionChanged (event {n}): previous is not the last published description"
                    ),
                    None => ensure!(previous.servers.is_empty(), "the first TopologyDescriptionChanged does not start empty"),
                }
                ensure!(previous != new, "TopologyDescriptionChanged (event {n}) without a change");
                for sd in new.servers.iter() {
                    if let Some(last) = self.servers.get(&sd.address) {
                        ensure!(
                            **last == **sd,
                            "{} changed in TopologyDescriptionChanged (event {n}) without a ServerDescriptionChanged",
                            sd.address
                        );
                    }
                }
                self.published = Some(Arc::clone(new));
            }
            Event::ServerOpening { address, .. } => {
                ensure!(
                    !self.servers.contains_key(address),
                    "ServerOpening for open server {address} (event {n})"
                );
                self.servers.insert(address.clone(), Arc::new(ServerDescription::unknown(address.clone())));
            }
            Event::ServerDescriptionChanged { address, previous, new, .. } => {
                let Some(last) = self.servers.get_mut(address) else {
                    return Err(format!(
                        "ServerDescriptionChanged for {address}, which is not open (event {n})"
                    ));
                };
                ensure!(
                    **previous == **last,
                    "ServerDescriptionChanged for {address} (event {n}): previous is not the last published description"
                );
                ensure!(
                    previous != new,
                    "ServerDescriptionChanged for {address} (event {n}) without a change"
                );
                ensure!(&new.address == address && &previous.address == address, "event {n} mixes addresses");
                *last = Arc::clone(new);
            }
            Event::ServerClosed { address, .. } => {
                ensure!(
                    self.servers.remove(address).is_some(),
                    "ServerClosed for {address}, which is not open (event {n})"
                );
            }
            Event::TopologyClosed { .. } => {
                ensure!(
                    self.servers.is_empty(),
                    "TopologyClosed while {:?} are open",
                    self.servers.keys().collect::<Vec<_>>()
                );
                self.closed = true;
            }
            Event::ServerHeartbeatStarted { address, .. }
            | Event::ServerHeartbeatSucceeded { address, .. }
            | Event::ServerHeartbeatFailed { address, .. } => {
                ensure!(
                    self.servers.contains_key(address),
                    "heartbeat event for {address}, which is not open (event {n})"
                );
            }
            Event::TopologyOpening { .. } => {}
        }
        Ok(())
    }

    /// Between inputs: the events told the whole story of `topology`'s current description
    /// (the open servers are its servers, with the descriptions last published).
    pub fn check_settled(&self, topology: &Topology) -> Result<(), Violation> {
        if topology.is_closed() {
            ensure!(self.closed, "the topology is closed but TopologyClosed was not published");
            return Ok(());
        }
        ensure!(!self.closed, "TopologyClosed was published but the topology is open");
        let td = topology.description();
        let published = self.published.as_ref().ok_or("no TopologyDescriptionChanged published yet")?;
        ensure!(**published == *td, "the description differs from the last one published");
        let open: Vec<&ServerAddress> = self.servers.keys().collect();
        let described: Vec<&ServerAddress> = td.servers.addresses().collect();
        ensure!(open == described, "open servers {open:?} differ from the servers described {described:?}");
        for sd in td.servers.iter() {
            ensure!(
                self.servers.get(&sd.address).is_some_and(|last| **last == **sd),
                "{}: unpublished change",
                sd.address
            );
        }
        Ok(())
    }
}

/// Whether `sd` may be selected for `criteria` in `td` by the spec's rules, before the
/// latency window (and ignoring deprioritization, which only orders the choice).
fn eligible(td: &TopologyDescription, criteria: &SelectionCriteria, sd: &ServerDescription) -> bool {
    let t = sd.server_type;
    match td.topology_type {
        TopologyType::Unknown => false,
        TopologyType::Single => t != ServerType::Unknown,
        TopologyType::Sharded => t == ServerType::Mongos,
        TopologyType::LoadBalanced => t == ServerType::LoadBalancer,
        TopologyType::ReplicaSetNoPrimary | TopologyType::ReplicaSetWithPrimary => {
            let Some(rp) = criteria.read_preference() else {
                return td.topology_type == TopologyType::ReplicaSetWithPrimary && t == ServerType::RSPrimary;
            };
            let primary = t == ServerType::RSPrimary;
            let secondary = t == ServerType::RSSecondary;
            let filtered = || fresh_and_tagged(td, rp, sd);
            match rp.mode() {
                ReadPreferenceMode::Primary => primary,
                ReadPreferenceMode::PrimaryPreferred | ReadPreferenceMode::SecondaryPreferred => {
                    primary || (secondary && filtered())
                }
                ReadPreferenceMode::Secondary => secondary && filtered(),
                ReadPreferenceMode::Nearest => (primary || secondary) && filtered(),
            }
        }
    }
}

/// Within maxStalenessSeconds and matching one of the tag sets.
fn fresh_and_tagged(td: &TopologyDescription, rp: &ReadPreference, sd: &ServerDescription) -> bool {
    let fresh = rp.max_staleness().is_none_or(|max| estimate_staleness(td, sd).is_some_and(|s| s <= max));
    let tagged = rp.tag_sets().is_empty() || rp.tag_sets().iter().any(|ts| ts.matches(&sd.tags));
    fresh && tagged
}

/// Whether the spec's rules make some server of `td` selectable for `criteria`: then
/// selection must return one.
fn any_selectable(td: &TopologyDescription, criteria: &SelectionCriteria) -> bool {
    let any = |f: &dyn Fn(&ServerDescription) -> bool| td.servers.iter().any(|sd| f(sd));
    match (td.topology_type, criteria.read_preference()) {
        (TopologyType::ReplicaSetNoPrimary | TopologyType::ReplicaSetWithPrimary, Some(rp)) => {
            let primary = any(&|sd| sd.server_type == ServerType::RSPrimary);
            let secondary =
                any(&|sd| sd.server_type == ServerType::RSSecondary && fresh_and_tagged(td, rp, sd));
            match rp.mode() {
                ReadPreferenceMode::Primary => primary,
                ReadPreferenceMode::PrimaryPreferred | ReadPreferenceMode::SecondaryPreferred => {
                    primary || secondary
                }
                ReadPreferenceMode::Secondary => secondary,
                ReadPreferenceMode::Nearest => any(&|sd| {
                    matches!(sd.server_type, ServerType::RSPrimary | ServerType::RSSecondary)
                        && fresh_and_tagged(td, rp, sd)
                }),
            }
        }
        _ => any(&|sd| eligible(td, criteria, sd)),
    }
}

/// One selection attempt on `td` is sound and live: it fails at once exactly when the
/// topology is incompatible or the read preference invalid for it; otherwise every server in
/// the latency window satisfies the operation's mode, maxStalenessSeconds and tag sets and is
/// within localThresholdMS of the fastest suitable server; the window is empty only when no
/// server is selectable; and the choice is in the window. Returns the chosen server.
pub fn check_selection(
    td: &TopologyDescription,
    criteria: &SelectionCriteria,
    counts: &dyn OperationCounts,
    rng: &mut Rng,
) -> Result<Option<ServerAddress>, Violation> {
    let must_fail = td.compatibility_error.is_some()
        || criteria
            .read_preference()
            .is_some_and(|rp| rp.validate_for(td.topology_type, td.heartbeat_frequency).is_err());
    let (suitable, window) = match (suitable_servers(td, criteria), in_latency_window(td, criteria)) {
        (Err(a), Err(b)) if must_fail => {
            ensure!(a == b, "suitable_servers and in_latency_window fail differently: {a} / {b}");
            ensure!(select_server(td, criteria, counts, rng).is_err(), "select_server did not fail");
            return Ok(None);
        }
        (Ok(s), Ok(w)) if !must_fail => (s, w),
        (s, w) => {
            return Err(format!(
                "selection for {criteria} should {}fail at once: suitable {:?}, window {:?}",
                if must_fail { "" } else { "not " },
                s.map(|l| l.len()),
                w.map(|l| l.len())
            ))
        }
    };
    let fastest = suitable.iter().filter_map(|sd| sd.round_trip_time).min();
    for sd in &window {
        ensure!(
            suitable.iter().any(|s| Arc::ptr_eq(s, sd)),
            "{} is in the window but not suitable",
            sd.address
        );
        ensure!(
            eligible(td, criteria, sd),
            "{} ({}) does not satisfy {criteria} in {}",
            sd.address,
            sd.server_type,
            td.topology_type
        );
        if let (Some(rtt), Some(fastest)) = (sd.round_trip_time, fastest) {
            ensure!(
                rtt <= fastest.saturating_add(td.local_threshold),
                "{} is outside the latency window ({rtt:?} > {fastest:?} + {:?})",
                sd.address,
                td.local_threshold
            );
        }
    }
    for sd in &suitable {
        ensure!(
            eligible(td, criteria, sd),
            "{} ({}) is suitable but does not satisfy {criteria}",
            sd.address,
            sd.server_type
        );
    }
    let selectable = any_selectable(td, criteria);
    ensure!(
        window.is_empty() != selectable,
        "window has {} servers for {criteria} in {} but the rules say {}",
        window.len(),
        td.topology_type,
        if selectable { "one is selectable" } else { "none is" }
    );
    let chosen =
        select_server(td, criteria, counts, rng).map_err(|e| format!("select_server failed: {e}"))?;
    match chosen {
        Some(c) => {
            ensure!(window.iter().any(|w| Arc::ptr_eq(w, c)), "{} was chosen outside the window", c.address);
            Ok(Some(c.address.clone()))
        }
        None => {
            ensure!(window.is_empty(), "nothing chosen from a window of {}", window.len());
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use bson::oid::ObjectId;

    use super::*;

    fn addr(s: &str) -> ServerAddress {
        ServerAddress::parse(s).unwrap()
    }

    #[test]
    fn the_event_checker_rejects_broken_streams() {
        let id = TopologyId::new(ObjectId::from_bytes([1; 12]));
        let sd = |t: ServerType| {
            let mut sd = ServerDescription::unknown(addr("a"));
            sd.server_type = t;
            Arc::new(sd)
        };
        let change = |previous, new| Event::ServerDescriptionChanged {
            topology_id: id,
            address: addr("a"),
            previous,
            new,
        };
        // Nothing before TopologyOpening.
        let mut c = EventChecker::new();
        assert!(c.observe(&Event::ServerOpening { topology_id: id, address: addr("a") }).is_err());
        // A change for a server never opened, then a previous that is not the last new.
        let mut c = EventChecker::new();
        c.observe(&Event::TopologyOpening { topology_id: id }).unwrap();
        assert!(c.observe(&change(sd(ServerType::Unknown), sd(ServerType::Standalone))).is_err());
        c.observe(&Event::ServerOpening { topology_id: id, address: addr("a") }).unwrap();
        c.observe(&change(sd(ServerType::Unknown), sd(ServerType::Standalone))).unwrap();
        assert!(c.observe(&change(sd(ServerType::Unknown), sd(ServerType::Mongos))).is_err());
        // TopologyClosed while a server is open, and anything after it.
        assert!(c.observe(&Event::TopologyClosed { topology_id: id }).is_err());
        c.observe(&Event::ServerClosed { topology_id: id, address: addr("a") }).unwrap();
        c.observe(&Event::TopologyClosed { topology_id: id }).unwrap();
        assert!(c.observe(&Event::TopologyOpening { topology_id: id }).is_err());
    }

    #[test]
    fn election_tuples_must_not_go_backwards() {
        let eid = |n: u8| Some(ObjectId::from_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n]));
        let td = |e, s| {
            let mut td = TopologyDescription::new(TopologyType::ReplicaSetWithPrimary);
            td.max_election_id = e;
            td.max_set_version = s;
            td
        };
        // 6.0+: a newer electionId may come with a lower setVersion; before 6.0, the reverse.
        assert!(check_max_election(&td(eid(1), Some(5)), &td(eid(2), Some(1))).is_ok());
        assert!(check_max_election(&td(eid(2), Some(1)), &td(eid(1), Some(5))).is_ok());
        assert!(check_max_election(&td(eid(2), Some(5)), &td(eid(1), Some(4))).is_err());
        assert!(check_max_election(&td(eid(2), Some(5)), &td(None, None)).is_err());
    }

    #[test]
    fn descriptions_of_impossible_shapes_are_rejected() {
        let config = TopologyConfig::with_seeds([addr("a")]);
        let server = |host: &str, t: ServerType, set: Option<&str>| {
            let mut sd = ServerDescription::unknown(addr(host));
            sd.server_type = t;
            sd.set_name = set.map(Arc::from);
            sd
        };
        let mut td = TopologyDescription::new(TopologyType::ReplicaSetWithPrimary);
        td.set_name = Some("rs".into());
        td.insert_server(server("a", ServerType::RSPrimary, Some("rs")));
        assert!(check_description(&td, &config).is_ok());
        td.insert_server(server("b", ServerType::RSSecondary, Some("other")));
        assert!(check_description(&td, &config).unwrap_err().contains("of set"));
        td.insert_server(server("b", ServerType::RSPrimary, Some("rs")));
        assert!(check_description(&td, &config).unwrap_err().contains("2 RSPrimary"));
        let mut single = TopologyDescription::new(TopologyType::Single);
        single.insert_server(server("a", ServerType::Standalone, None));
        single.insert_server(server("b", ServerType::Standalone, None));
        assert!(check_description(&single, &config).unwrap_err().contains("2 servers"));
    }
}
