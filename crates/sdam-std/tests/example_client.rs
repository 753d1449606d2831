//! `examples/client.rs` against scripted servers: its `run` finds the primary for the write
//! and a server for the read, and fails with the explained error against a dead address.

#[allow(dead_code)] // the example's `main`, which reads the command line
#[path = "../examples/client.rs"]
mod client;

use sdam_std::Client;
use sdam_testserver::{MemberSpec, ReplicaSet, Role};

#[test]
fn the_example_selects_from_a_scripted_replica_set() {
    let rs = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .start()
        .expect("scripted replica set");
    let seed = rs.address(1).expect("the secondary's address");
    let client =
        Client::from_uri(&format!("mongodb://{seed}/?replicaSet=rs0&serverSelectionTimeoutMS=10000"))
            .expect("a valid URI");
    let result = client::run(&client);
    client.close();
    result.expect("the example selects a server for a write and a read");
}

#[test]
fn the_example_reports_a_failed_selection() {
    // A port nobody listens on (the scripted member is gone): the selection times out.
    let rs = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().expect("scripted set");
    let seed = rs.address(0).expect("address");
    rs.crash(0).expect("crash");
    let client = Client::from_uri(&format!("mongodb://{seed}/?replicaSet=rs0&serverSelectionTimeoutMS=300"))
        .expect("a valid URI");
    let result = client::run(&client);
    client.close();
    let error = result.expect_err("nothing to select");
    assert!(error.to_string().contains(&seed.to_string()), "{error}");
}
