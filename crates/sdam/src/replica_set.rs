//! The replica set actions of the update rules (server-discovery-and-monitoring.md,
//! "updateRSWithoutPrimary", "updateRSWithPrimaryFromMember", "updateRSFromPrimary").

use std::sync::Arc;

use bson::oid::ObjectId;

use crate::address::ServerAddress;
use crate::server_description::{ServerDescription, ServerType};
use crate::topology_description::{TopologyDescription, TopologyType};
use crate::update_rules::Changes;

/// The wire version from which electionId is compared before setVersion (MongoDB 6.0).
const ELECTION_ID_FIRST_WIRE_VERSION: i32 = 17;

fn fmt_tuple(election_id: Option<ObjectId>, set_version: Option<i64>) -> String {
    let e = election_id.map_or_else(|| "null".to_owned(), |e| e.to_hex());
    let s = set_version.map_or_else(|| "null".to_owned(), |s| s.to_string());
    format!("({e}, {s})")
}

impl TopologyDescription {
    /// "updateRSWithoutPrimary": a secondary, arbiter or other member while no primary is known.
    pub(crate) fn update_rs_without_primary(&mut self, address: &ServerAddress, changes: &mut Changes) {
        let Some(sd) = self.servers.get(address).cloned() else { return };
        match &self.set_name {
            None => self.set_name.clone_from(&sd.set_name),
            Some(name) if sd.set_name.as_ref() != Some(name) => {
                self.remove(address, changes);
                return;
            }
            Some(_) => {}
        }
        self.add_missing_members(address, changes);
        // description.primary's Unknown entry would become PossiblePrimary here; that type only
        // orders single-threaded scans, so it stays Unknown (see `ServerType`).
        if sd.me.as_ref().is_some_and(|me| me != address) {
            // "me" mismatch: this member is known to the set by another name.
            self.remove(address, changes);
        }
    }

    /// "updateRSWithPrimaryFromMember": a secondary, arbiter or other member while a primary
    /// is known.
    /// `sd` is the member's description, just put in the topology.
    pub(crate) fn update_rs_with_primary_from_member(
        &mut self,
        sd: &Arc<ServerDescription>,
        changes: &mut Changes,
    ) {
        let address = &sd.address;
        // setName is never null here.
        if self.set_name.as_ref() != sd.set_name.as_ref() || sd.me.as_ref().is_some_and(|me| me != address) {
            self.remove(address, changes);
            self.check_if_has_primary();
            return;
        }
        // Had this member been the primary?
        if self.primary().is_none() {
            self.topology_type = TopologyType::ReplicaSetNoPrimary;
        }
    }

    /// "updateRSFromPrimary": a primary reported in.
    pub(crate) fn update_rs_from_primary(&mut self, address: &ServerAddress, changes: &mut Changes) {
        let Some(sd) = self.servers.get(address).cloned() else { return };
        match &self.set_name {
            None => self.set_name.clone_from(&sd.set_name),
            Some(name) if sd.set_name.as_ref() != Some(name) => {
                // A primary of another set: not ours.
                self.remove(address, changes);
                self.check_if_has_primary();
                return;
            }
            Some(_) => {}
        }

        if !self.accept_primary_tuple(&sd) {
            // "Using electionId and setVersion to detect stale primaries".
            let error = format!(
                "primary marked stale due to electionId/setVersion mismatch, {} is stale compared to {}",
                fmt_tuple(sd.election_id, sd.set_version),
                fmt_tuple(self.max_election_id, self.max_set_version),
            );
            self.servers.insert(Arc::new(ServerDescription::unknown_with_error(address.clone(), error)));
            self.check_if_has_primary();
            return;
        }

        // Any other primary is stale: mark it Unknown and check it as soon as possible. Its
        // pool is not cleared.
        let old_primaries: Vec<ServerAddress> = self
            .servers
            .iter()
            .filter(|other| other.server_type == ServerType::RSPrimary && &other.address != address)
            .map(|other| other.address.clone())
            .collect();
        for old in old_primaries {
            self.servers.insert(Arc::new(ServerDescription::unknown_with_error(
                old.clone(),
                "primary marked stale due to discovery of newer primary",
            )));
            changes.check_now.push(old);
        }

        // Remove every server the primary does not list, then add the ones it lists that are
        // missing. The spec adds first; the outcome is the same set, and removing first means
        // the primary's list always fits under `MAX_SERVERS`, whatever others reported before.
        self.servers.retain(|other| sd.reports_member(&other.address), |gone| changes.removed.push(gone));
        changes.added.retain(|a| sd.reports_member(a));
        // (The primary itself may be gone now, if it does not list itself.)
        self.add_members_of(&sd, changes);
        self.check_if_has_primary();
    }

    /// Compares the primary's (electionId, setVersion) with the maximum seen, and records it
    /// as the new maximum when it is not stale. Returns whether the primary is current.
    fn accept_primary_tuple(&mut self, sd: &ServerDescription) -> bool {
        if sd.max_wire_version >= ELECTION_ID_FIRST_WIRE_VERSION {
            // MongoDB 6.0+: electionId first, then setVersion; null is less than any value.
            let newer = sd.election_id > self.max_election_id
                || (sd.election_id == self.max_election_id && sd.set_version >= self.max_set_version);
            if !newer {
                return false;
            }
            self.max_election_id = sd.election_id;
            self.max_set_version = sd.set_version;
            return true;
        }
        // Before 6.0: setVersion first, then electionId, only when both are present.
        if let (Some(set_version), Some(election_id)) = (sd.set_version, sd.election_id) {
            if let (Some(max_sv), Some(max_eid)) = (self.max_set_version, self.max_election_id) {
                if max_sv > set_version || (max_sv == set_version && max_eid > election_id) {
                    return false;
                }
            }
            self.max_election_id = Some(election_id);
        }
        if let Some(set_version) = sd.set_version {
            if self.max_set_version.is_none_or(|max| set_version > max) {
                self.max_set_version = Some(set_version);
            }
        }
        true
    }
}
