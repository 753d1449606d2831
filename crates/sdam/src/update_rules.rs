//! Applying a new server description to a topology description
//! (server-discovery-and-monitoring.md, "Updating the TopologyDescription").

use std::cmp::Ordering;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::address::ServerAddress;
use crate::compatibility;
use crate::server_description::{ServerDescription, ServerType, TopologyVersion};
use crate::server_map::Slot;
use crate::topology_description::{TopologyDescription, TopologyType, MAX_SERVERS};

/// What an update did besides replacing descriptions: the servers it added and removed
/// (whose monitors must start and stop) and the servers to check at once.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Servers added to the topology, in the order they were added.
    pub(crate) added: SmallVec<[ServerAddress; 4]>,
    /// Servers removed from the topology.
    pub(crate) removed: SmallVec<[Arc<ServerDescription>; 4]>,
    /// Servers that must be checked as soon as possible (an invalidated old primary).
    pub(crate) check_now: SmallVec<[ServerAddress; 2]>,
    /// Hosts left out because the topology holds [`MAX_SERVERS`] servers: how many, and
    /// who reported them (a member's address, or "the SRV records").
    pub(crate) left_out: Option<(usize, String)>,
}

/// The settings the update rules depend on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RuleSettings {
    /// Whether the seed list had exactly one seed ("updateUnknownWithStandalone").
    pub(crate) single_seed: bool,
}

impl TopologyDescription {
    /// Applies the outcome of a check (successful or not) of `new.address`.
    ///
    /// Returns `false`, changing nothing, when the server is not in the topology (its
    /// outcome arrived after it was removed) or when `new` carries an older topologyVersion
    /// than the current description ("Parsing a hello or legacy hello response").
    ///
    /// `hint` is where the caller found the server in this map or in the one it was cloned
    /// from ([`ServerMap::slot`](crate::server_map::ServerMap::slot)), so the update does not
    /// search again; a hint that does not hold `new.address` is ignored and the server is
    /// looked up.
    pub(crate) fn apply(
        &mut self,
        new: Arc<ServerDescription>,
        hint: Option<Slot>,
        settings: RuleSettings,
        changes: &mut Changes,
    ) -> bool {
        let hinted =
            hint.and_then(|s| Some((s, self.servers.at(s)?))).filter(|(_, sd)| sd.address == new.address);
        let Some((slot, current)) =
            hinted.or_else(|| self.servers.slot(&new.address).and_then(|s| Some((s, self.servers.at(s)?))))
        else {
            // "the client MUST ignore hello or legacy hello outcomes from servers that are not
            // in the TopologyDescription".
            return false;
        };
        // Replace only if the new topologyVersion is >= the current one. A failed check has no
        // topologyVersion and always counts as newer.
        if new.topology_version.is_some()
            && TopologyVersion::compare(current.topology_version.as_ref(), new.topology_version.as_ref())
                == Ordering::Greater
        {
            return false;
        }
        self.apply_unchecked(new, slot, settings, changes);
        true
    }

    /// The TopologyType table, after the server is known to be in the topology.
    /// `slot` is where the server is in `self.servers`.
    fn apply_unchecked(
        &mut self,
        new: Arc<ServerDescription>,
        slot: Slot,
        settings: RuleSettings,
        changes: &mut Changes,
    ) {
        let address = new.address.clone();
        let server_type = new.server_type;
        // "TopologyType Single": always replace, but verify setName if one was given. Other
        // types replace the description first, then apply their rules.
        let new = match (&self.set_name, self.topology_type) {
            (Some(expected), TopologyType::Single)
                if new.server_type != ServerType::Unknown && new.set_name.as_ref() != Some(expected) =>
            {
                let found = new.set_name.as_deref().unwrap_or("no setName");
                Arc::new(ServerDescription::unknown_with_error(
                    address.clone(),
                    format!("replica set name mismatch: expected {expected:?}, server reports {found:?}"),
                ))
            }
            _ => new,
        };
        self.servers.replace_at(slot, Arc::clone(&new));
        match self.topology_type {
            // "TopologyType LoadBalanced": the one server is always a LoadBalancer.
            TopologyType::Single | TopologyType::LoadBalanced => {}
            TopologyType::Unknown => {
                match server_type {
                    ServerType::Standalone => {
                        self.update_unknown_with_standalone(&address, settings, changes);
                    }
                    ServerType::Mongos => self.topology_type = TopologyType::Sharded,
                    ServerType::RSPrimary => {
                        self.topology_type = TopologyType::ReplicaSetWithPrimary;
                        self.update_rs_from_primary(&address, changes);
                    }
                    ServerType::RSSecondary | ServerType::RSArbiter | ServerType::RSOther => {
                        self.topology_type = TopologyType::ReplicaSetNoPrimary;
                        self.update_rs_without_primary(&address, changes);
                    }
                    // Unknown, and RSGhost ("TopologyType remains Unknown when an RSGhost is
                    // discovered"): no-op.
                    _ => {}
                }
            }
            TopologyType::Sharded => {
                // "TopologyType Sharded": keep Unknown servers and mongoses, remove others.
                if !matches!(server_type, ServerType::Unknown | ServerType::Mongos) {
                    self.remove(&address, changes);
                }
            }
            TopologyType::ReplicaSetNoPrimary => match server_type {
                ServerType::Standalone | ServerType::Mongos => self.remove(&address, changes),
                ServerType::RSPrimary => {
                    self.topology_type = TopologyType::ReplicaSetWithPrimary;
                    self.update_rs_from_primary(&address, changes);
                }
                ServerType::RSSecondary | ServerType::RSArbiter | ServerType::RSOther => {
                    self.update_rs_without_primary(&address, changes);
                }
                _ => {}
            },
            TopologyType::ReplicaSetWithPrimary => match server_type {
                ServerType::Standalone | ServerType::Mongos => {
                    self.remove(&address, changes);
                    self.check_if_has_primary();
                }
                ServerType::RSPrimary => self.update_rs_from_primary(&address, changes),
                ServerType::RSSecondary | ServerType::RSArbiter | ServerType::RSOther => {
                    self.update_rs_with_primary_from_member(&new, changes);
                }
                _ => self.check_if_has_primary(),
            },
        }
        self.update_compatibility();
        self.update_logical_session_timeout();
    }

    /// "updateUnknownWithStandalone".
    fn update_unknown_with_standalone(
        &mut self,
        address: &ServerAddress,
        settings: RuleSettings,
        changes: &mut Changes,
    ) {
        // "settings.seeds has one seed": SRV polling may have added hosts to a one-seed
        // topology, and Single holds exactly one server, so the seed must still be alone.
        if settings.single_seed && self.servers.len() == 1 {
            self.topology_type = TopologyType::Single;
        } else {
            self.remove(address, changes);
        }
    }

    /// "remove": drops the server; its monitor stops.
    pub(crate) fn remove(&mut self, address: &ServerAddress, changes: &mut Changes) {
        if let Some(sd) = self.servers.remove(address) {
            changes.added.retain(|a| a != address);
            changes.removed.push(sd);
        }
    }

    /// Adds an Unknown description for every reported member not yet in the topology, up to
    /// [`MAX_SERVERS`].
    pub(crate) fn add_missing_members(&mut self, reporter: &ServerAddress, changes: &mut Changes) {
        let Some(sd) = self.servers.get(reporter).cloned() else { return };
        self.add_members_of(&sd, changes);
    }

    /// Adds an Unknown description for every member `sd` reports that is not yet in the
    /// topology, up to [`MAX_SERVERS`] (`sd` need not be in the topology any more).
    pub(crate) fn add_members_of(&mut self, sd: &ServerDescription, changes: &mut Changes) {
        for member in sd.members() {
            self.add_unknown(member, || sd.address.to_string(), changes);
        }
    }

    /// Adds `address` as an Unknown server if it is not in the topology and the topology
    /// holds fewer than [`MAX_SERVERS`] servers; otherwise counts it as left out (reported
    /// by `reporter`) in `changes`. Every path by which discovery adds a server goes here.
    pub(crate) fn add_unknown(
        &mut self,
        address: &ServerAddress,
        reporter: impl FnOnce() -> String,
        changes: &mut Changes,
    ) {
        if self.servers.contains(address) {
            return;
        }
        if self.servers.len() >= MAX_SERVERS {
            changes.left_out.get_or_insert_with(|| (0, reporter())).0 += 1;
            return;
        }
        self.servers.insert(Arc::new(ServerDescription::unknown(address.clone())));
        changes.added.push(address.clone());
    }

    /// Records (or clears) [`TopologyDescription::server_limit_error`] after an update.
    pub(crate) fn note_server_limit(&mut self, changes: &Changes) {
        if let Some((count, reporter)) = &changes.left_out {
            self.server_limit_error = Some(format!(
                "{count} hosts reported by {reporter} were not added: the topology holds {} servers, \
                 the most it accepts (MAX_SERVERS)",
                self.servers.len()
            ));
        } else if self.servers.len() < MAX_SERVERS {
            self.server_limit_error = None;
        }
    }

    /// "checkIfHasPrimary".
    pub(crate) fn check_if_has_primary(&mut self) {
        self.topology_type = if self.primary().is_some() {
            TopologyType::ReplicaSetWithPrimary
        } else {
            TopologyType::ReplicaSetNoPrimary
        };
    }

    /// "Checking wire protocol compatibility", over every server (the first incompatible
    /// server in address order names the error).
    pub(crate) fn update_compatibility(&mut self) {
        self.compatibility_error = self.servers.first_incompatible().and_then(|sd| compatibility::check(sd));
    }

    /// "Logical Session Timeout": the minimum over data-bearing servers, null if any is null.
    pub(crate) fn update_logical_session_timeout(&mut self) {
        self.logical_session_timeout_minutes = self.servers.logical_session_timeout();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standalone(host: &str) -> ServerDescription {
        let mut sd = ServerDescription::unknown(ServerAddress::parse(host).unwrap());
        sd.server_type = ServerType::Standalone;
        sd.max_wire_version = 21;
        sd
    }

    /// Found by the property tests: one seed, a host added by SRV polling, then the seed
    /// answers as a standalone. Single would hold two servers; the standalone is removed.
    #[test]
    fn a_standalone_seed_is_not_single_once_srv_added_hosts() {
        let mut td = TopologyDescription::new(TopologyType::Unknown);
        td.insert_server(ServerDescription::unknown(ServerAddress::parse("s1.example.com").unwrap()));
        td.insert_server(ServerDescription::unknown(ServerAddress::parse("s3.example.com").unwrap()));
        let mut changes = Changes::default();
        assert!(td.apply(
            Arc::new(standalone("s1.example.com")),
            None,
            RuleSettings { single_seed: true },
            &mut changes
        ));
        assert_eq!(td.topology_type, TopologyType::Unknown);
        assert_eq!(td.servers.len(), 1);
        assert_eq!(changes.removed.len(), 1);

        let mut alone = TopologyDescription::new(TopologyType::Unknown);
        alone.insert_server(ServerDescription::unknown(ServerAddress::parse("a").unwrap()));
        assert!(alone.apply(
            Arc::new(standalone("a")),
            None,
            RuleSettings { single_seed: true },
            &mut Changes::default()
        ));
        assert_eq!(alone.topology_type, TopologyType::Single);
    }

    /// A slot hint that does not hold the server (another server's, or one past the end of
    /// the map) is ignored: the update goes to the server the description names.
    #[test]
    fn a_wrong_slot_hint_is_ignored() {
        let address = |host: &str| ServerAddress::parse(host).unwrap();
        let mongos = |host: &str| {
            let mut sd = standalone(host);
            sd.server_type = ServerType::Mongos;
            Arc::new(sd)
        };
        let mut bigger = TopologyDescription::new(TopologyType::Unknown);
        for host in ["m1", "m2", "m3"] {
            bigger.insert_server(ServerDescription::unknown(address(host)));
        }
        let past_the_end = bigger.servers.slot(&address("m3"));
        // m1 has seen a newer topologyVersion than the update for m2 carries: an update that
        // trusted the hint to m1's slot would compare against m1's and be refused as stale.
        let process_id = bson::oid::ObjectId::from_bytes([7; 12]);
        let version = |counter| Some(TopologyVersion { process_id, counter });
        let mut td = TopologyDescription::new(TopologyType::Unknown);
        let mut m1 = ServerDescription::unknown(address("m1"));
        m1.topology_version = version(2);
        td.insert_server(m1);
        td.insert_server(ServerDescription::unknown(address("m2")));
        let other = td.servers.slot(&address("m1"));
        for (hint, host) in [(other, "m2"), (past_the_end, "m1")] {
            let mut td = td.clone();
            let mut new = mongos(host);
            Arc::make_mut(&mut new).topology_version = version(if host == "m2" { 1 } else { 3 });
            assert!(td.apply(new, hint, RuleSettings { single_seed: false }, &mut Changes::default()));
            assert_eq!(td.topology_type, TopologyType::Sharded);
            for sd in td.servers.iter() {
                let expected =
                    if sd.address == address(host) { ServerType::Mongos } else { ServerType::Unknown };
                assert_eq!(sd.server_type, expected, "{}", sd.address);
            }
            assert_eq!(td.servers.len(), 2);
        }
        // The right hint gives what no hint gives.
        let (mut hinted, mut searched) = (td.clone(), td.clone());
        let settings = RuleSettings { single_seed: false };
        assert!(hinted.apply(
            mongos("m2"),
            td.servers.slot(&address("m2")),
            settings,
            &mut Changes::default()
        ));
        assert!(searched.apply(mongos("m2"), None, settings, &mut Changes::default()));
        assert_eq!(hinted, searched);
    }
}
