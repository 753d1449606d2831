//! One selection attempt as pure functions over a topology snapshot: compatibility, read
//! preference validity, suitable servers (with the deprioritized fallback), the application
//! selector, the latency window and the in-window choice.
//!
//! For topologies of up to [`INLINE_SERVERS`](super::INLINE_SERVERS) servers these functions
//! do not allocate.

use std::fmt;
use std::sync::Arc;

use crate::read_preference::ReadPreferenceError;
use crate::rng::Rng;
use crate::server_description::{ServerDescription, ServerType};
use crate::server_map::TypeSet;
use crate::topology_description::TopologyDescription;

use super::criteria::SelectionCriteria;
use super::explanation::{Ignore, Observer, Rejection};
use super::in_window::{choose_in_window, OperationCounts};
use super::latency_window::retain_in_window;
use super::topology_rules::{tagged_read, type_filter, Rules, TaggedRead};
use super::ServerList;

/// Why a selection attempt cannot succeed whatever the servers' state: it fails at once
/// instead of waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImmediateFailure {
    /// The topology is incompatible with this client's wire versions; the message is
    /// [`TopologyDescription::compatibility_error`].
    IncompatibleTopology(String),
    /// The read preference is invalid for this topology (a caller mistake, e.g.
    /// `maxStalenessSeconds` below 90 seconds against a replica set).
    InvalidReadPreference(ReadPreferenceError),
}

impl fmt::Display for ImmediateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IncompatibleTopology(e) => write!(f, "incompatible topology: {e}"),
            Self::InvalidReadPreference(e) => write!(f, "invalid read preference: {e}"),
        }
    }
}

impl std::error::Error for ImmediateFailure {}

/// The servers that are suitable for `criteria`: the topology-type rules (with the
/// deprioritized fallback) and then the application selector, before the latency window.
///
/// `Err` when selection must fail at once (an incompatible topology, or a read preference
/// invalid for this topology).
pub fn suitable_servers<'a>(
    topology: &'a TopologyDescription,
    criteria: &SelectionCriteria,
) -> Result<ServerList<'a>, ImmediateFailure> {
    suitable_with(topology, criteria, &mut Ignore)
}

/// The suitable servers inside the latency window: the fast path, which does not allocate
/// for topologies of up to eight servers (unless the application selector does).
pub fn in_latency_window<'a>(
    topology: &'a TopologyDescription,
    criteria: &SelectionCriteria,
) -> Result<ServerList<'a>, ImmediateFailure> {
    window_with(topology, criteria, &mut Ignore)
}

/// One selection attempt: the servers in the latency window, then the in-window choice (two
/// random candidates, the one with fewer operations in flight wins). `Ok(None)` when no
/// server is suitable yet. Does not allocate for topologies of up to eight servers.
///
/// The caller must count the returned server's new operation in `counts` until it ends.
pub fn select_server<'a, C: OperationCounts + ?Sized>(
    topology: &'a TopologyDescription,
    criteria: &SelectionCriteria,
    counts: &C,
    rng: &mut Rng,
) -> Result<Option<&'a Arc<ServerDescription>>, ImmediateFailure> {
    let window = in_latency_window(topology, criteria)?;
    Ok(choose_in_window(&window, counts, rng))
}

/// Steps 2 and the maxStalenessSeconds check of server-selection.md, "Server Selection
/// Algorithm" (and its pseudocode).
fn check_preconditions(
    topology: &TopologyDescription,
    criteria: &SelectionCriteria,
) -> Result<(), ImmediateFailure> {
    // Step 2: "If the topology wire version is invalid, raise an error".
    if let Some(e) = &topology.compatibility_error {
        return Err(ImmediateFailure::IncompatibleTopology(e.clone()));
    }
    // server-selection.md, "maxStalenessSeconds": a replica set rejects a too-small value.
    if let Some(rp) = criteria.read_preference() {
        rp.validate_for(topology.topology_type, topology.heartbeat_frequency)
            .map_err(ImmediateFailure::InvalidReadPreference)?;
    }
    Ok(())
}

pub(crate) fn suitable_with<'a, O: Observer>(
    topology: &'a TopologyDescription,
    criteria: &SelectionCriteria,
    observer: &mut O,
) -> Result<ServerList<'a>, ImmediateFailure> {
    check_preconditions(topology, criteria)?;
    // Step 3: find suitable servers without the deprioritized ones ...
    let mut servers = Rules::new(topology, criteria, true, observer).suitable();
    // ... and if there are none, again with them.
    if servers.is_empty() && topology.servers.iter().any(|sd| criteria.is_deprioritized(&sd.address)) {
        observer.restart();
        servers = Rules::new(topology, criteria, false, observer).suitable();
    }
    // Step 4: the optional application-provided selector.
    if let Some(selector) = criteria.selector() {
        if !servers.is_empty() {
            let before = servers.clone();
            selector.filter(&mut servers);
            // The selector may only narrow the list: drop anything it added or repeated.
            let mut kept = ServerList::new();
            for sd in servers {
                if before.iter().any(|b| Arc::ptr_eq(b, sd)) && !kept.iter().any(|k| Arc::ptr_eq(k, sd)) {
                    kept.push(sd);
                }
            }
            for sd in &before {
                if !kept.iter().any(|k| Arc::ptr_eq(k, sd)) {
                    observer.reject(sd, || Rejection::RejectedBySelector);
                }
            }
            servers = kept;
        }
    }
    Ok(servers)
}

pub(crate) fn window_with<'a, O: Observer>(
    topology: &'a TopologyDescription,
    criteria: &SelectionCriteria,
    observer: &mut O,
) -> Result<ServerList<'a>, ImmediateFailure> {
    if !O::RECORDS {
        if let Some(keep) = type_filter(topology, criteria) {
            // The same answer as the general path below, without its intermediate list.
            check_preconditions(topology, criteria)?;
            let mut servers = ServerList::new();
            if topology.servers.in_window_of_type(keep, topology.local_threshold, &mut servers) {
                return Ok(servers);
            }
        } else if let Some(plan) = tagged_read(topology, criteria) {
            check_preconditions(topology, criteria)?;
            if let Some(servers) = tagged_window(topology, &plan) {
                return Ok(servers);
            }
        }
    }
    let mut servers = suitable_with(topology, criteria, observer)?;
    // Step 5: filter by the latency window.
    retain_in_window(&mut servers, topology.local_threshold, observer);
    Ok(servers)
}

/// The window of a [`TaggedRead`] from the server map's compact entries; `None` when the map
/// cannot answer (a round-trip time too long for them) and the general path must.
fn tagged_window<'a>(topology: &'a TopologyDescription, plan: &TaggedRead<'_>) -> Option<ServerList<'a>> {
    const PRIMARY: TypeSet = TypeSet::of(&[ServerType::RSPrimary]);
    let map = &topology.servers;
    let threshold = topology.local_threshold;
    let mut servers = ServerList::new();
    // server-selection.md, "primaryPreferred": the primary if it is known.
    let done = if plan.primary_first && map.primary().is_some() {
        map.in_window_of_type(PRIMARY, threshold, &mut servers)
    } else if plan.tag_sets.is_empty() {
        // "If the tag_sets list is empty then all candidate servers are eligible servers."
        map.in_window_of_type(plan.types, threshold, &mut servers)
    } else {
        map.in_window_tagged(plan.types, plan.tag_sets, threshold, &mut servers)
    };
    // "secondaryPreferred": if no secondary is eligible, the primary.
    if done && servers.is_empty() && plan.else_primary {
        return map.in_window_of_type(PRIMARY, threshold, &mut servers).then_some(servers);
    }
    done.then_some(servers)
}
