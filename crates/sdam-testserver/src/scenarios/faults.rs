//! Misbehaving servers: malformed and oversized reply frames.

use std::time::Duration;

use sdam::{Event, ServerType};

use super::{addr, config, events_until, eventually, start, types_are, wait_for, Harness};
use crate::{Fault, MemberSpec, ReplicaSet, Role};

/// A member whose replies become a malformed frame, then an oversized one: each time the
/// check fails (`ServerHeartbeatFailed` with a message), the member becomes Unknown with an
/// error, and once it behaves again it is rediscovered. The broken connections are closed:
/// afterwards the member holds at most its monitoring and RTT connections.
pub fn malformed_replies_fail_checks<H: Harness>() {
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .start()
        .expect("the replica set starts");
    let (p, s) = (addr(&set, 0), addr(&set, 1));
    let client: H = start(config(&set, set.addresses()), None);
    let healthy = |d: &sdam::TopologyDescription| {
        types_are(d, &[(&p, ServerType::RSPrimary), (&s, ServerType::RSSecondary)])
    };
    wait_for(&client, "both members", Duration::from_secs(10), healthy);

    for fault in [Fault::GarbageReply, Fault::OversizedReply] {
        let mut events = client.subscribe();
        set.set_fault(1, fault).expect("member exists");
        let seen = events_until(
            &mut events,
            Duration::from_secs(5),
            |e| matches!(e, Event::ServerHeartbeatFailed { address, .. } if *address == s),
        )
        .unwrap_or_else(|seen| panic!("no failed check after {fault:?}; saw {seen:#?}"));
        if let Some(Event::ServerHeartbeatFailed { failure, .. }) = seen.last() {
            assert!(!failure.is_empty(), "the failure explains itself");
        }
        wait_for(&client, "the member to be Unknown with an error", Duration::from_secs(3), |d| {
            d.server(&s).is_some_and(|sd| sd.server_type == ServerType::Unknown && sd.error.is_some())
        });
        set.set_fault(1, Fault::None).expect("member exists");
        wait_for(&client, "the member to recover", Duration::from_secs(10), healthy);
    }
    eventually("broken connections to be closed", Duration::from_secs(5), || {
        set.open_connections(1).expect("member exists") <= 2
    });
    client.close();
}
