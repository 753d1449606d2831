//! Failover: the primary crashes, a secondary is elected, the old primary rejoins.

use std::time::Duration;

use sdam::selection::SelectionCriteria;
use sdam::{ApplicationError, ApplicationErrorKind, ServerType, TopologyType};

use super::{addr, config, start, types_are, wait_for, Harness};
use crate::{MemberSpec, ReplicaSet, Role};

/// The primary crashes: the network error an operation saw is retryable and, reported,
/// marks the primary Unknown; a write selection waits and gets the newly elected primary;
/// the old primary, restarted, rejoins as a secondary.
pub fn failover_to_new_primary<H: Harness>() {
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .member(MemberSpec::new(Role::Secondary))
        .start()
        .expect("the replica set starts");
    let (p, s1, s2) = (addr(&set, 0), addr(&set, 1), addr(&set, 2));
    let client: H = start(config(&set, set.addresses()), None);
    wait_for(&client, "the primary", Duration::from_secs(10), |d| {
        types_are(
            d,
            &[(&p, ServerType::RSPrimary), (&s1, ServerType::RSSecondary), (&s2, ServerType::RSSecondary)],
        )
    });
    assert_eq!(client.select(SelectionCriteria::write()), Ok(p.clone()));

    set.crash(0).expect("member exists");
    // The operation in flight on the primary saw its connection drop.
    // Its connection was made before any pool clear: generation 0.
    let error = ApplicationError::new(p.clone(), 0, ApplicationErrorKind::Network);
    assert!(error.is_retryable(), "a network error is retryable");
    client.report_error(error);
    wait_for(&client, "the old primary to be Unknown", Duration::from_secs(3), |d| {
        types_are(d, &[(&p, ServerType::Unknown)]) && d.topology_type == TopologyType::ReplicaSetNoPrimary
    });

    // The retry's selection waits for the election.
    let chosen = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(700));
            set.elect(1).expect("member exists");
        });
        client.select(SelectionCriteria::write())
    });
    assert_eq!(chosen, Ok(s1.clone()), "the write goes to the new primary");

    set.restart(0).expect("the old primary restarts");
    wait_for(&client, "the old primary to rejoin as a secondary", Duration::from_secs(10), |d| {
        types_are(
            d,
            &[(&p, ServerType::RSSecondary), (&s1, ServerType::RSPrimary), (&s2, ServerType::RSSecondary)],
        )
    });
    assert_eq!(client.select(SelectionCriteria::write()), Ok(s1));
    client.close();
}
