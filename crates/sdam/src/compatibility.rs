//! Wire protocol compatibility (server-discovery-and-monitoring.md, "Checking wire protocol
//! compatibility").

use crate::server_description::{ServerDescription, ServerType};

/// The oldest wire version this client speaks: 8, MongoDB 4.2.
pub const MIN_WIRE_VERSION: i32 = 8;

/// The newest wire version this client knows: 27, MongoDB 8.2.
pub const MAX_WIRE_VERSION: i32 = 27;

/// The name this implementation gives itself in compatibility errors.
pub const DRIVER_NAME: &str = "sdam";

/// The MongoDB release that introduced a wire version, for error messages.
pub fn mongodb_version(wire_version: i32) -> &'static str {
    match wire_version {
        ..=6 => "3.6",
        7 => "4.0",
        8 => "4.2",
        9 => "4.4",
        10..=13 => "5.0",
        14..=17 => "6.0",
        18..=21 => "7.0",
        22..=25 => "8.0",
        _ => "8.2",
    }
}

/// Whether `server`'s wire version range overlaps this client's. Unknown servers and load
/// balancers (which report no range) always pass: the check applies to known servers.
pub fn is_compatible(server: &ServerDescription) -> bool {
    matches!(server.server_type, ServerType::Unknown | ServerType::LoadBalancer) || check(server).is_none()
}

/// The spec's compatibility error for one (non-Unknown) server, or `None` if it is compatible.
pub fn check(sd: &ServerDescription) -> Option<String> {
    let addr = &sd.address;
    if sd.min_wire_version > MAX_WIRE_VERSION {
        Some(format!(
            "Server at {addr} requires wire version {}, but this version of {DRIVER_NAME} only supports up to {MAX_WIRE_VERSION}.",
            sd.min_wire_version
        ))
    } else if sd.max_wire_version < MIN_WIRE_VERSION {
        Some(format!(
            "Server at {addr} reports wire version {}, but this version of {DRIVER_NAME} requires at least {MIN_WIRE_VERSION} (MongoDB {}).",
            sd.max_wire_version,
            mongodb_version(MIN_WIRE_VERSION)
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::ServerAddress;

    #[test]
    fn messages_follow_the_spec() {
        let mut sd = ServerDescription::unknown(ServerAddress::parse("example.com").unwrap());
        sd.max_wire_version = 7;
        assert_eq!(
            check(&sd).unwrap(),
            "Server at example.com:27017 reports wire version 7, but this version of sdam requires at least 8 (MongoDB 4.2)."
        );
        sd.min_wire_version = 999;
        sd.max_wire_version = 1000;
        assert!(check(&sd).unwrap().starts_with("Server at example.com:27017 requires wire version 999"));
        sd.min_wire_version = 0;
        sd.max_wire_version = 21;
        assert_eq!(check(&sd), None);
    }
}
