//! # sdam
//!
//! MongoDB's Server Discovery And Monitoring and Server Selection rules as a pure, sans-IO
//! state machine. Feed it `hello` replies, check failures, round-trip times and application
//! errors (always with the current time as an argument); get back topology events,
//! commands for your I/O layer, and server-selection decisions.
//!
//! The crate never opens a socket, spawns a thread, sleeps or reads a clock. Start with
//! [`Topology`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod app_error;
mod bson_scan;
pub mod compatibility;
pub mod connection_string;
pub mod display;
pub mod events;
pub mod handshake;
pub mod hello;
pub mod monitor;
pub mod names;
pub mod read_preference;
mod replica_set;
pub mod rng;
pub mod rtt;
pub mod selection;
#[cfg(feature = "serde")]
pub mod serialize;
pub mod server_description;
mod server_map;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod topology;
pub mod topology_description;
mod update_rules;

pub use address::{AddressError, ServerAddress};
pub use app_error::{ApplicationError, ApplicationErrorKind, ErrorPhase};
pub use connection_string::{ConnectionString, ConnectionStringError, Options, Warning};
pub use events::{Command, Event, Output, TopologyId};
pub use handshake::{ClientMetadata, ContainerEnv, DriverInfo, FaasEnv, MetadataError};
pub use hello::HelloError;
pub use monitor::{ConnectionId, FailureKind, MonitorOwner, RequestId, ServerMonitoringMode};
pub use names::UnknownName;
pub use read_preference::{ReadPreference, ReadPreferenceError, ReadPreferenceMode, TagSet};
pub use server_description::{AddressList, ServerDescription, ServerType, Tags, TopologyVersion};
pub use topology::{ConfigError, Input, Topology, TopologyConfig};
pub use topology_description::{ServerMap, SrvError, TopologyDescription, TopologyType};

/// Some instant for unit tests to start their virtual clock from, read outside the core (by
/// the benchmark crate, a dev-dependency).
#[cfg(test)]
pub(crate) fn test_instant() -> std::time::Instant {
    sdam_bench::clock::now()
}
