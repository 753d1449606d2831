//! # sdam-testserver
//!
//! In-process, scripted MongoDB servers on `127.0.0.1` for the adapters' integration tests:
//! each member listens on an ephemeral port, speaks `OP_MSG` (framed, parsed and emitted with
//! `sdam-wire`) on plain std threads, and answers `hello` / legacy hello from one shared
//! deployment state, so every member's `hosts`, `setName`, `primary`, `setVersion`,
//! `electionId` and `topologyVersion` agree. Awaitable hellos stream (`moreToCome`) from
//! members that stream, and come back at once from members that don't.
//!
//! The handle's controls change the script while clients run: [`Cluster::crash`],
//! [`Cluster::restart`], [`Cluster::step_down`], [`Cluster::elect`], [`Cluster::set_tags`],
//! [`Cluster::add_member`], [`Cluster::remove_member`], [`Cluster::set_latency`],
//! [`Cluster::set_streaming`], [`Cluster::set_fault`]. Every change bumps the affected
//! members' `topologyVersion.counter`, so streaming monitors are pushed a new reply.
//!
//! Commands: `hello`, `isMaster`/`ismaster`, `ping`, reads (`find`, `aggregate`, `count`:
//! ok with an empty cursor) and writes (`insert`, `update`, `delete`, ...: ok on a primary,
//! mongos or standalone, `{ok: 0, code: 10107, errmsg: "not writable primary"}` elsewhere).
//! Anything else gets `{ok: 0, code: 59}`. `insert`, `find`, `delete`, `drop` and `create` keep
//! the deployment's documents (equality filters, `sort: {_id: 1}`, at most
//! [`MAX_DOCUMENTS`]). `configureFailPoint` sets the `failCommand` fail point of the member it
//! is sent to (`failCommands`, `appName`, `errorCode`, `errorLabels`, `closeConnection`,
//! `blockConnection` + `blockTimeMS`; modes `alwaysOn`, `{times}`, `{skip}`, `off`), as the
//! unified tests use it. `replSetStepDown` elects another member; `replSetFreeze` is accepted.
//!
//! Other drivers (PyMongo, the official Rust driver) run against them too: their handshakes
//! (client metadata, `helloOk`, compression lists declined), `endSessions`, and
//! `NotWritablePrimary` with `RetryableWriteError` on a refused retryable write; a member can
//! be slow for its monitors only ([`MemberSpec::command_latency`]), and
//! [`Cluster::handshakes`] tells which drivers shook hands.
//!
//! [`scenarios`] holds the end-to-end scenarios both adapters run through their [`scenarios::Harness`].
//!
//! ```
//! use sdam_testserver::{MemberSpec, ReplicaSet, Role};
//!
//! let rs = ReplicaSet::builder("rs0")
//!     .member(MemberSpec::new(Role::Primary))
//!     .member(MemberSpec::new(Role::Secondary).tags([("dc", "ny")]))
//!     .start()?;
//! let mut client = sdam_testserver::RawClient::connect(rs.address(1)?.to_string())?;
//! let reply = client.command(&bson::rawdoc! { "hello": 1, "$db": "admin" })?;
//! assert_eq!(reply.get_str("setName")?, "rs0");
//! assert!(reply.get_bool("secondary")?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))] // feature badges on docs.rs (nightly); stable never sets `docsrs`

mod builder;
mod cluster;
mod connection;
#[cfg(feature = "dns")]
pub mod dns;
mod fail_point;
pub mod hostile;
pub mod jongodb;
mod listener;
mod member;
mod peers;
mod raw_client;
mod repl_commands;
pub mod scenarios;
pub mod socks5_proxy;
mod store;
#[cfg(feature = "tls")]
mod tls;

pub use builder::{ClusterBuilder, Mongos, ReplicaSet, Standalone, TlsSpec};
pub use cluster::{Cluster, ClusterError};
pub use member::{Fault, MemberSpec, Role, MAX_WIRE_VERSION, MIN_WIRE_VERSION};
pub use raw_client::{RawClient, RawReply};
pub use store::MAX_DOCUMENTS;

#[cfg(test)]
mod tests;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
