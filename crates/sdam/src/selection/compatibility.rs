//! Wire-version compatibility as selection sees it (server-selection.md, "Server Selection
//! Algorithm", step 2: an incompatible topology fails selection immediately).
//!
//! The topology's update rules decide compatibility and record it in
//! [`TopologyDescription::compatibility_error`](crate::TopologyDescription); selection obeys
//! that. The per-server check here only explains *which* servers are out of range.

use crate::server_description::{ServerDescription, ServerType};

/// The oldest wire version this client speaks (clientMinWireVersion; 8 is MongoDB 4.2).
pub const CLIENT_MIN_WIRE_VERSION: i32 = 8;

/// The newest wire version this client speaks (clientMaxWireVersion; 25 is MongoDB 8.0).
pub const CLIENT_MAX_WIRE_VERSION: i32 = 25;

/// Whether `server`'s wire version range overlaps the client's
/// (server-discovery-and-monitoring.md, "Checking wire protocol compatibility"). Only
/// available servers are checked; load balancers report no range and always pass.
pub fn is_compatible(server: &ServerDescription) -> bool {
    // SDAM, "Checking wire protocol compatibility": the check applies to available servers.
    if matches!(server.server_type, ServerType::Unknown | ServerType::LoadBalancer) {
        return true;
    }
    server.min_wire_version <= CLIENT_MAX_WIRE_VERSION && server.max_wire_version >= CLIENT_MIN_WIRE_VERSION
}
