//! Which servers are suitable, by topology type and operation (server-selection.md, "Topology
//! type: Unknown" through "Topology type: Sharded"), with the read preference's mode,
//! `maxStalenessSeconds` and tag sets for replica sets.

use std::sync::Arc;

use crate::read_preference::{ReadPreference, ReadPreferenceMode, TagSet};
use crate::server_description::{ServerDescription, ServerType};
use crate::server_map::TypeSet;
use crate::topology_description::{TopologyDescription, TopologyType};

use super::criteria::{Operation, SelectionCriteria};
use super::explanation::{Observer, Rejection};
use super::{max_staleness, ServerList};

const UNKNOWN_TOPOLOGY: &str = "no server is suitable while the topology type is Unknown";
const SINGLE: &str = "a direct connection selects its server only while it is available";
const SHARDED: &str = "a sharded topology selects only mongoses";
const LOAD_BALANCED: &str = "a load-balanced topology selects only the load balancer";
const WRITE_PRIMARY: &str = "writes go to the primary";
const WRITE_NO_PRIMARY: &str = "no server takes writes while the replica set has no primary";
const MODE_PRIMARY: &str = "mode primary reads only from the primary";
const PRIMARY_PREFERRED_HAS_PRIMARY: &str = "mode primaryPreferred reads from the primary when there is one";
const PRIMARY_PREFERRED_NO_PRIMARY: &str =
    "mode primaryPreferred without a primary reads only from secondaries";
const MODE_SECONDARY: &str = "mode secondary reads only from secondaries";
const SECONDARY_PREFERRED: &str =
    "mode secondaryPreferred reads from an eligible secondary when there is one";
const SECONDARY_PREFERRED_FALLBACK: &str = "mode secondaryPreferred falls back only to the primary";
const MODE_NEAREST: &str = "mode nearest reads only from the primary and secondaries";

/// One pass of the topology-type rules over the topology's servers, skipping the
/// deprioritized ones when `skip_deprioritized` is set.
pub(crate) struct Rules<'a, 'c, O> {
    topology: &'a TopologyDescription,
    criteria: &'c SelectionCriteria,
    skip_deprioritized: bool,
    observer: &'c mut O,
}

impl<'a, 'c, O: Observer> Rules<'a, 'c, O> {
    pub(crate) fn new(
        topology: &'a TopologyDescription,
        criteria: &'c SelectionCriteria,
        skip_deprioritized: bool,
        observer: &'c mut O,
    ) -> Self {
        Self { topology, criteria, skip_deprioritized, observer }
    }

    /// The suitable servers, before the application selector and the latency window.
    pub(crate) fn suitable(mut self) -> ServerList<'a> {
        // server-selection.md, "Server Selection Algorithm", step 3: filter out deprioritized
        // servers first.
        if self.skip_deprioritized && O::RECORDS {
            for sd in &self.topology.servers {
                if self.criteria.is_deprioritized(&sd.address) {
                    self.observer.reject(sd, || Rejection::Deprioritized);
                }
            }
        }
        match self.topology.topology_type {
            // server-selection.md, "Topology type: Unknown": no server is suitable.
            TopologyType::Unknown => self.of_type(|_| false, UNKNOWN_TOPOLOGY),
            // server-selection.md, "Topology type: Single": the server is suitable if available;
            // the read preference is ignored.
            TopologyType::Single => self.of_type(|t| t != ServerType::Unknown, SINGLE),
            // server-selection.md, "Topology type: Sharded": every mongos, for reads and writes;
            // the read preference is passed through, not used.
            TopologyType::Sharded => self.of_type(|t| t == ServerType::Mongos, SHARDED),
            // load-balancers.md, "Server Selection": the load balancer is always selected.
            TopologyType::LoadBalanced => self.of_type(|t| t == ServerType::LoadBalancer, LOAD_BALANCED),
            TopologyType::ReplicaSetWithPrimary | TopologyType::ReplicaSetNoPrimary => {
                match self.criteria.operation() {
                    Operation::Read(rp) => self.replica_set_read(rp),
                    // server-selection.md, "Write operations": only the primary, and none without one.
                    Operation::Write
                        if self.topology.topology_type == TopologyType::ReplicaSetWithPrimary =>
                    {
                        self.of_type(|t| t == ServerType::RSPrimary, WRITE_PRIMARY)
                    }
                    Operation::Write => self.of_type(|_| false, WRITE_NO_PRIMARY),
                }
            }
        }
    }

    /// The servers this pass looks at.
    fn servers(&self) -> impl Iterator<Item = &'a Arc<ServerDescription>> + '_ {
        let topology: &'a TopologyDescription = self.topology;
        let skip = self.skip_deprioritized && !self.criteria.deprioritized().is_empty();
        topology.servers.iter().filter(move |sd| !(skip && self.criteria.is_deprioritized(&sd.address)))
    }

    /// The servers this pass looks at whose type `keep` accepts, in one pass and with at most
    /// one allocation.
    fn collect_types(&self, keep: impl Fn(ServerType) -> bool) -> ServerList<'a> {
        let mut list = ServerList::new();
        let n = self.topology.servers.len();
        if n > list.inline_size() {
            list.reserve_exact(n);
        }
        self.servers().for_each(|sd| {
            if keep(sd.server_type) {
                list.push(sd);
            }
        });
        list
    }

    /// The servers whose type `keep` accepts; the others are rejected (as Unknown when they
    /// are, else under `rule`).
    fn of_type(&mut self, keep: impl Fn(ServerType) -> bool, rule: &'static str) -> ServerList<'a> {
        self.reject_types(&keep, rule);
        self.collect_types(keep)
    }

    /// Rejects the servers whose type `handled` does not accept.
    fn reject_types(&mut self, handled: &dyn Fn(ServerType) -> bool, rule: &'static str) {
        if !O::RECORDS {
            return;
        }
        let topology: &'a TopologyDescription = self.topology;
        for sd in topology.servers.iter() {
            if self.skip_deprioritized && self.criteria.is_deprioritized(&sd.address) {
                continue;
            }
            if !handled(sd.server_type) {
                let server_type = sd.server_type;
                self.observer.reject(sd, || match server_type {
                    // server-selection.md, "Terms": an Unknown server is not available.
                    ServerType::Unknown => Rejection::Unknown,
                    _ => Rejection::WrongType { server_type, rule },
                });
            }
        }
    }

    /// server-selection.md, "Topology types: ReplicaSetWithPrimary or ReplicaSetNoPrimary",
    /// "Read operations".
    fn replica_set_read(&mut self, rp: &ReadPreference) -> ServerList<'a> {
        let is_primary = |t| t == ServerType::RSPrimary;
        let is_secondary = |t| t == ServerType::RSSecondary;
        match rp.mode() {
            // "If mode is 'primary', select the primary server."
            ReadPreferenceMode::Primary => self.of_type(is_primary, MODE_PRIMARY),
            // "select the primary if it is known, otherwise ... mode 'secondary'".
            ReadPreferenceMode::PrimaryPreferred => {
                if self.servers().any(|sd| is_primary(sd.server_type)) {
                    self.of_type(is_primary, PRIMARY_PREFERRED_HAS_PRIMARY)
                } else {
                    self.reject_types(&is_secondary, PRIMARY_PREFERRED_NO_PRIMARY);
                    self.eligible(rp, is_secondary)
                }
            }
            // "Select all secondaries", then staleness, then tag sets.
            ReadPreferenceMode::Secondary => {
                self.reject_types(&is_secondary, MODE_SECONDARY);
                self.eligible(rp, is_secondary)
            }
            // "attempt the selection algorithm with mode 'secondary' ... If no server matches,
            // select the primary."
            ReadPreferenceMode::SecondaryPreferred => {
                let secondaries = self.eligible(rp, is_secondary);
                if secondaries.is_empty() {
                    self.reject_types(&|t| is_primary(t) || is_secondary(t), SECONDARY_PREFERRED_FALLBACK);
                    self.servers().filter(|sd| is_primary(sd.server_type)).collect()
                } else {
                    self.reject_types(&is_secondary, SECONDARY_PREFERRED);
                    secondaries
                }
            }
            // "all secondaries and the primary if mode is 'nearest'", then staleness, then tags.
            ReadPreferenceMode::Nearest => {
                let candidate = |t| is_primary(t) || is_secondary(t);
                self.reject_types(&candidate, MODE_NEAREST);
                self.eligible(rp, candidate)
            }
        }
    }

    /// The candidates of the given types that pass `maxStalenessSeconds` and then the tag
    /// sets (server-selection.md: "maxStalenessSeconds" is applied before "tag_sets").
    fn eligible(&mut self, rp: &ReadPreference, candidate: impl Fn(ServerType) -> bool) -> ServerList<'a> {
        let mut list = self.collect_types(candidate);
        if let Some(max) = rp.max_staleness() {
            let topology = self.topology;
            let observer = &mut *self.observer;
            // server-selection.md, "maxStalenessSeconds": staleness <= maxStalenessSeconds.
            list.retain(|sd| match max_staleness::check(topology, sd, max) {
                Ok(()) => true,
                Err(estimate) => {
                    observer.reject(sd, || match estimate {
                        Some(staleness) => Rejection::Stale { staleness, max_staleness: max },
                        None => Rejection::StalenessUnknown,
                    });
                    false
                }
            });
        }
        self.filter_tag_sets(rp, &mut list);
        list
    }

    /// server-selection.md, "tag_sets": the first tag set that matches a candidate decides.
    fn filter_tag_sets(&mut self, rp: &ReadPreference, list: &mut ServerList<'a>) {
        let tag_sets = rp.tag_sets();
        // "If the tag_sets list is empty then all candidate servers are eligible servers."
        if tag_sets.is_empty() {
            return;
        }
        let used = tag_sets.iter().position(|ts| list.iter().any(|sd| ts.matches(&sd.tags)));
        let observer = &mut *self.observer;
        list.retain(|sd| {
            let keep = used.and_then(|i| tag_sets.get(i)).is_some_and(|ts| ts.matches(&sd.tags));
            if !keep {
                observer.reject(sd, || Rejection::NoTagSetMatched {
                    used_tag_set: used,
                    tag_set: used.and_then(|i| tag_sets.get(i)).cloned(),
                });
            }
            keep
        });
    }
}

/// When the suitable servers for `criteria` are exactly the servers of some types (no tag
/// sets, no staleness bound, no selector, nothing deprioritized), those types; the fast path
/// then reads the types and round-trip times straight from the server map.
pub(crate) fn type_filter(topology: &TopologyDescription, criteria: &SelectionCriteria) -> Option<TypeSet> {
    use ServerType::{LoadBalancer, Mongos, RSPrimary, RSSecondary, Unknown};
    if criteria.selector().is_some() || !criteria.deprioritized().is_empty() {
        return None;
    }
    Some(match topology.topology_type {
        TopologyType::Unknown => TypeSet::NONE,
        TopologyType::Single => TypeSet::except(&[Unknown]),
        TopologyType::Sharded => TypeSet::of(&[Mongos]),
        TopologyType::LoadBalanced => TypeSet::of(&[LoadBalancer]),
        TopologyType::ReplicaSetWithPrimary | TopologyType::ReplicaSetNoPrimary => match criteria.operation()
        {
            Operation::Write if topology.topology_type == TopologyType::ReplicaSetWithPrimary => {
                TypeSet::of(&[RSPrimary])
            }
            Operation::Write => TypeSet::NONE,
            Operation::Read(rp) => match rp.mode() {
                ReadPreferenceMode::Primary => TypeSet::of(&[RSPrimary]),
                _ if !rp.tag_sets().is_empty() || rp.max_staleness().is_some() => return None,
                ReadPreferenceMode::Secondary => TypeSet::of(&[RSSecondary]),
                ReadPreferenceMode::Nearest => TypeSet::of(&[RSPrimary, RSSecondary]),
                _ => return None,
            },
        },
    })
}

/// How the fast path finds the window of a replica set read with tag sets (or a mode that
/// falls back), when there is no staleness bound, selector or deprioritized server: the
/// servers of `types` matching the first tag set that matches any of them (all of them when
/// there are no tag sets).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TaggedRead<'c> {
    /// The candidates' types.
    pub(crate) types: TypeSet,
    /// The read preference's tag sets.
    pub(crate) tag_sets: &'c [TagSet],
    /// secondaryPreferred: when no candidate is eligible, the primary.
    pub(crate) else_primary: bool,
    /// primaryPreferred: the primary when there is one, before the candidates.
    pub(crate) primary_first: bool,
}

/// The [`TaggedRead`] plan of `criteria` on `topology`, when the fast path can answer it with
/// the same result as [`Rules`] (see [`type_filter`] for the reads without tag sets).
pub(crate) fn tagged_read<'c>(
    topology: &TopologyDescription,
    criteria: &'c SelectionCriteria,
) -> Option<TaggedRead<'c>> {
    use ServerType::{RSPrimary, RSSecondary};
    if criteria.selector().is_some()
        || !criteria.deprioritized().is_empty()
        || !topology.topology_type.is_replica_set()
    {
        return None;
    }
    let Operation::Read(rp) = criteria.operation() else { return None };
    if rp.max_staleness().is_some() {
        return None;
    }
    let plan = |types, else_primary, primary_first| TaggedRead {
        types,
        tag_sets: rp.tag_sets(),
        else_primary,
        primary_first,
    };
    Some(match rp.mode() {
        ReadPreferenceMode::Primary => return None,
        ReadPreferenceMode::PrimaryPreferred => plan(TypeSet::of(&[RSSecondary]), false, true),
        ReadPreferenceMode::Secondary => plan(TypeSet::of(&[RSSecondary]), false, false),
        ReadPreferenceMode::SecondaryPreferred => plan(TypeSet::of(&[RSSecondary]), true, false),
        ReadPreferenceMode::Nearest => plan(TypeSet::of(&[RSPrimary, RSSecondary]), false, false),
    })
}
