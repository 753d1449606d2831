//! # sdam-adapter
//!
//! The runtime-independent half of the [`sdam`] adapters: everything `sdam-std` (threads and
//! `std::net`) and `sdam-tokio` (tasks and tokio sockets) have in common, written once.
//!
//! - [`ClientEvent`]: what a client publishes to its subscribers.
//! - [`Error`] and [`SelectError`]: why a client could not be built, why a selection failed.
//! - [`ServerGuard`]: a selected server, counting one operation in progress until dropped.
//! - [`TlsOptions`] and, with the `tls` feature, [`tls::client_config`], the rustls (ring)
//!   client configuration built from them.
//! - [`subscribers`]: event subscriptions bounded by bytes, with [`ClientEvent::Lagged`] for
//!   a subscriber that fell behind (blocking and async receivers over one queue).
//! - [`config_from_uri`]: a connection string to a [`sdam::TopologyConfig`] and TLS options.
//! - [`environment`]: the handshake's `client.env` (FaaS, container) from the process
//!   environment, which both adapters fill in when a client starts.
//! - [`dns`]: hickory-resolver answers to the core's [`SrvRecord`](sdam::connection_string::srv::SrvRecord)
//!   and [`TxtRecord`](sdam::connection_string::srv::TxtRecord) (record types only; the
//!   adapters run the resolver on their runtime).
//!
//! Both adapters re-export these items (`sdam_std::ClientEvent`, `sdam_tokio::Error`, ...), so
//! they are the **same types** in both: code that handles events or errors, or a connection
//! pool that listens for [`ClientEvent::PoolCleared`], works unchanged with either adapter.
//! Applications normally use an adapter and never name this crate.

#![forbid(unsafe_code)]

#[cfg(feature = "dns")]
pub mod dns;
pub mod environment;
mod error;
mod events;
mod guard;
pub mod subscribers;
pub mod tls;
mod uri;

pub use error::{Error, SelectError};
pub use events::ClientEvent;
pub use guard::{InputSink, ServerGuard};
pub use tls::TlsOptions;

pub use uri::config_from_uri;

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;

use sdam::{ServerAddress, ServerType, TopologyDescription};

/// The servers of `description` whose type is known (not Unknown): what `Client::nodes`
/// returns.
pub fn known_servers(description: &TopologyDescription) -> Vec<ServerAddress> {
    description
        .servers
        .iter()
        .filter(|sd| sd.server_type != ServerType::Unknown)
        .map(|sd| sd.address.clone())
        .collect()
}

/// Where an adapter sends the SRV and TXT queries of `mongodb+srv` (its `dns` feature). The
/// servers' host names are resolved by the operating system when connecting, as for
/// `mongodb://`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsOptions {
    /// The name servers to ask, over UDP and TCP, in order; empty (the default): the
    /// system's configuration (`/etc/resolv.conf` on Unix).
    pub name_servers: Vec<SocketAddr>,
}

/// Refuses a configuration that needs DNS (`mongodb+srv`, [`sdam::TopologyConfig::srv`]) in
/// an adapter (`adapter`: its crate name) built without its `dns` feature.
pub fn refuse_srv_without_dns(config: &sdam::TopologyConfig, adapter: &str) -> Result<(), Error> {
    if config.srv.is_some() {
        return Err(Error::Unsupported(format!(
            "mongodb+srv needs SRV and TXT lookups, but {adapter} was built without its `dns` feature \
             (on by default): enable it, or list the hosts in a mongodb:// connection string"
        )));
    }
    Ok(())
}

/// The error a lookup gets in an adapter built without its `dns` feature.
pub fn no_dns(adapter: &str) -> String {
    format!("{adapter} was built without its `dns` feature: no DNS lookups")
}

/// A random, non-zero seed for [`sdam::TopologyConfig::rng_seed`] when the configuration
/// leaves it at 0 (std's hasher keys are drawn from the operating system's randomness).
pub fn random_seed() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x5d_a3);
    hasher.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_configurations_are_refused_without_dns_naming_the_feature() {
        let (srv, _) = config_from_uri("mongodb+srv://cluster0.example.com/?tls=false").unwrap();
        let e = refuse_srv_without_dns(&srv, "sdam-std").unwrap_err().to_string();
        assert!(e.contains("mongodb+srv") && e.contains("sdam-std") && e.contains("`dns` feature"), "{e}");
        let (plain, _) = config_from_uri("mongodb://a,b/?replicaSet=rs0").unwrap();
        assert!(refuse_srv_without_dns(&plain, "sdam-std").is_ok());
        assert!(no_dns("sdam-tokio").contains("`dns` feature"));
    }

    #[test]
    fn random_seeds_are_never_zero_and_differ() {
        let seeds: Vec<u64> = (0..8).map(|_| random_seed()).collect();
        assert!(seeds.iter().all(|&s| s != 0));
        assert!(seeds.windows(2).any(|w| w[0] != w[1]), "{seeds:?}");
    }
}
