//! Issue 15: a task selecting in a tight loop must let the driver run. Before the fix, with
//! the driver on the same worker, every write kept selecting the crashed primary.

use std::time::{Duration, Instant};

use sdam::selection::SelectionCriteria;
use sdam::TopologyConfig;
use sdam_testserver::{MemberSpec, ReplicaSet, Role};
use sdam_tokio::Client;

/// One worker thread: the selecting task and the driver share it, as they do whenever the
/// runtime places them on the same worker.
#[tokio::test(flavor = "current_thread")]
async fn a_task_selecting_in_a_tight_loop_lets_the_driver_see_the_primary_crash() {
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .member(MemberSpec::new(Role::Secondary))
        .start()
        .expect("the replica set starts");
    let mut config = TopologyConfig::with_seeds(set.addresses());
    config.replica_set_name = Some("rs0".into());
    config.heartbeat_frequency = Duration::from_millis(500);
    let client = Client::new(config).expect("client");
    let old = set.address(0).expect("member 0");
    let start = Instant::now();
    loop {
        match client.select_server(SelectionCriteria::write()).await {
            Ok(guard) if *guard.address() == old => break,
            _ => assert!(start.elapsed() < Duration::from_secs(10), "the primary is never found"),
        }
    }
    // The primary dies and member 1 wins the election, while this task keeps writing.
    set.crash(0).expect("crash");
    set.elect(1).expect("elect");
    let new = set.address(1).expect("member 1");
    let start = Instant::now();
    let mut selections = 0u64;
    loop {
        let guard = client.select_server(SelectionCriteria::write()).await.expect("a primary");
        selections += 1;
        if *guard.address() == new {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "after {selections} selections in 6 s every write still went to the dead primary {old}"
        );
    }
    client.close().await;
}
