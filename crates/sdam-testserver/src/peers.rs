//! What other drivers send the scripted servers, and how the servers answer it: the pieces
//! the HA benchmark (`crates/sdam-habench`) needs so that PyMongo and the official Rust
//! driver run against the same scripted clusters as this project's adapters.
//!
//! - Handshakes: both peers send `OP_MSG` for every command, the handshake included (PyMongo
//!   4.20 always, since its servers are 4.4+; the `mongodb` crate never sends `OP_QUERY`),
//!   the first as legacy `isMaster`/`ismaster` with `helloOk: true` and `client` metadata,
//!   then `hello`. A `compression` list is declined by leaving `compression` out of the reply,
//!   and `loadBalanced` is never answered (no `serviceId`), as a replica set member or mongos
//!   does. Each member records the `client.driver.name` / `client.application.name` pairs of
//!   the handshakes it answered ([`crate::Cluster::handshakes`]).
//! - Writes refused by a member that is not a writable primary answer `NotWritablePrimary`
//!   (code 10107) with the member's `topologyVersion`, and with the `RetryableWriteError`
//!   label when the write is a retryable one (it carries a `txnNumber` outside a
//!   transaction), as servers 4.4+ do; without retryable writes there is no label and the
//!   application's own retry is what recovers.
//! - [`MemberSpec::command_latency`]: a latency for replies other than hellos, so a mongos can
//!   be 40 ms away for the monitors (the round-trip times the latency window is computed
//!   from) while thousands of operations still run in seconds.

use std::time::Duration;

use bson::{doc, Document, RawDocument};

use crate::member::{MemberSpec, MemberState};

/// At most this many distinct (driver, application) pairs are kept per member.
pub(crate) const MAX_HANDSHAKES: usize = 16;

impl MemberSpec {
    /// The latency before replies to commands other than hellos (default: the same as
    /// [`latency`](Self::latency)). `Duration::ZERO` with a non-zero `latency` makes the
    /// member slow for its monitors only.
    pub fn command_latency(mut self, latency: Duration) -> Self {
        self.command_latency = Some(latency);
        self
    }
}

impl MemberState {
    /// The latency before a reply to a command other than a hello.
    pub(crate) fn command_latency(&self) -> Duration {
        self.command_latency.unwrap_or(self.latency)
    }

    /// Records the driver and application names of a handshake (a hello with `client`).
    pub(crate) fn note_handshake(&mut self, body: &RawDocument) {
        let Ok(client) = body.get_document("client") else { return };
        let name = |key: &str| {
            client.get_document(key).ok().and_then(|d| d.get_str("name").ok()).unwrap_or("").to_owned()
        };
        let pair = (name("driver"), name("application"));
        if !self.handshakes.contains(&pair) && self.handshakes.len() < MAX_HANDSHAKES {
            self.handshakes.push(pair);
        }
    }
}

/// Whether a write command is a retryable write: it carries a `txnNumber` and is not part of
/// a transaction (no `autocommit: false`).
pub(crate) fn is_retryable_write(body: &RawDocument) -> bool {
    body.get("txnNumber").ok().flatten().is_some() && body.get_bool("autocommit").is_err()
}

/// The reply of a member that is not a writable primary to a write command.
pub(crate) fn not_writable_primary(body: &RawDocument, topology_version: Document) -> Document {
    let mut reply = doc! {
        "ok": 0.0, "code": 10107, "codeName": "NotWritablePrimary",
        "errmsg": "not writable primary", "topologyVersion": topology_version,
    };
    if is_retryable_write(body) {
        reply.insert("errorLabels", ["RetryableWriteError"]);
    }
    reply
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use bson::rawdoc;

    use crate::{MemberSpec, Mongos, RawClient, ReplicaSet, Role};

    #[test]
    fn refused_retryable_writes_carry_the_retryable_write_label() {
        let set = ReplicaSet::builder("rs0")
            .member(MemberSpec::new(Role::Primary))
            .member(MemberSpec::new(Role::Secondary))
            .start()
            .unwrap();
        let mut secondary = RawClient::connect(set.address(1).unwrap().to_string()).unwrap();
        let plain = rawdoc! { "insert": "c", "documents": [{ "x": 1 }], "$db": "test" };
        let refused = secondary.command(&plain).unwrap();
        assert_eq!(refused.get_i32("code").unwrap(), 10107);
        assert_eq!(refused.get_str("codeName").unwrap(), "NotWritablePrimary");
        assert!(refused.get("errorLabels").unwrap().is_none(), "not a retryable write: no label");
        let retryable = rawdoc! {
            "insert": "c", "documents": [{ "x": 1 }], "txnNumber": 1i64,
            "lsid": { "id": bson::Binary { subtype: bson::spec::BinarySubtype::Uuid, bytes: vec![0; 16] } },
            "$db": "test",
        };
        let refused = secondary.command(&retryable).unwrap();
        let labels: Vec<&str> =
            refused.get_array("errorLabels").unwrap().into_iter().filter_map(|v| v.ok()?.as_str()).collect();
        assert_eq!(labels, ["RetryableWriteError"]);
        assert!(refused.get_document("topologyVersion").is_ok());
        let in_transaction = rawdoc! {
            "insert": "c", "documents": [{ "x": 1 }], "txnNumber": 1i64, "autocommit": false, "$db": "test",
        };
        assert!(secondary.command(&in_transaction).unwrap().get("errorLabels").unwrap().is_none());
        let mut primary = RawClient::connect(set.address(0).unwrap().to_string()).unwrap();
        assert_eq!(primary.command(&retryable).unwrap().get_f64("ok").unwrap(), 1.0);
    }

    #[test]
    fn handshakes_are_recorded_and_compression_is_declined() {
        let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().unwrap();
        let mut c = RawClient::connect(set.address(0).unwrap().to_string()).unwrap();
        let handshake = rawdoc! {
            "ismaster": 1, "helloOk": true,
            "client": { "driver": { "name": "PyMongo", "version": "4.20.1" }, "application": { "name": "bench" } },
            "compression": ["zstd", "snappy", "zlib"], "backpressure": "2", "$db": "admin",
        };
        let reply = c.command(&handshake).unwrap();
        assert!(reply.get_bool("ismaster").unwrap());
        assert!(reply.get_bool("helloOk").unwrap());
        assert!(reply.get("compression").unwrap().is_none(), "compression declined");
        assert!(reply.get("serviceId").unwrap().is_none(), "not a load balancer");
        c.command(&rawdoc! { "hello": 1, "$db": "admin" }).unwrap();
        assert_eq!(set.handshakes(0).unwrap(), [("PyMongo".to_owned(), "bench".to_owned())]);
        assert_eq!(
            c.command(&rawdoc! { "endSessions": [], "$db": "admin" }).unwrap().get_f64("ok").unwrap(),
            1.0
        );
    }

    #[test]
    fn command_latency_leaves_hellos_slow_and_commands_fast() {
        let mongos = Mongos::builder()
            .member(
                MemberSpec::new(Role::Mongos)
                    .latency(Duration::from_millis(300))
                    .command_latency(Duration::ZERO),
            )
            .start()
            .unwrap();
        let mut c = RawClient::connect(mongos.address(0).unwrap().to_string()).unwrap();
        let started = Instant::now();
        c.command(&rawdoc! { "hello": 1, "$db": "admin" }).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300), "the hello waited its latency");
        let started = Instant::now();
        c.command(&rawdoc! { "insert": "c", "documents": [{ "x": 1 }], "$db": "test" }).unwrap();
        assert!(started.elapsed() < Duration::from_millis(300), "the insert did not wait 300 ms");
    }
}
