//! # sdam
//!
//! MongoDB's Server Discovery And Monitoring and Server Selection rules as a pure, sans-IO
//! state machine. Feed it `hello` replies, check failures, round-trip times and application
//! errors (always with the current time as an argument); get back topology events,
//! commands for your I/O layer, and server-selection decisions.
//!
//! The crate never opens a socket, spawns a thread, sleeps or reads a clock.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod address;
pub mod connection_string;
pub mod read_preference;
pub mod rng;
pub mod server_description;
pub mod topology_description;

pub use address::{AddressError, ServerAddress};
pub use connection_string::{ConnectionString, ConnectionStringError, Options, Warning};
pub use read_preference::{ReadPreferenceMode, TagSet};
pub use server_description::{ServerDescription, ServerType, Tags, TopologyVersion};
pub use topology_description::{ServerMap, TopologyDescription, TopologyType};
