//! The scripted servers, tested over real loopback TCP with [`RawClient`].

use std::time::{Duration, Instant};

use bson::{rawdoc, RawDocumentBuf};

use crate::{Cluster, Fault, MemberSpec, Mongos, RawClient, ReplicaSet, Role, Standalone};

fn rs(members: &[Role]) -> Cluster {
    members.iter().fold(ReplicaSet::builder("rs0"), |b, r| b.member(MemberSpec::new(*r))).start().unwrap()
}

fn client(cluster: &Cluster, index: usize) -> RawClient {
    RawClient::connect(cluster.address(index).unwrap().to_string()).unwrap()
}

fn hello(c: &mut RawClient) -> RawDocumentBuf {
    c.command(&rawdoc! { "hello": 1, "helloOk": true, "$db": "admin" }).unwrap()
}

fn strings(doc: &RawDocumentBuf, key: &str) -> Vec<String> {
    doc.get_array(key)
        .map(|a| a.into_iter().filter_map(|v| v.ok()?.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// Polls `check` every 10 ms for up to 5 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(5), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn replica_set_members_tell_one_story() {
    let set = rs(&[Role::Primary, Role::Secondary, Role::Passive, Role::Arbiter, Role::Hidden]);
    let addr = |i: usize| set.address(i).unwrap().to_string();
    for i in 0..set.len() {
        let reply = hello(&mut client(&set, i));
        assert_eq!(reply.get_str("setName").unwrap(), "rs0");
        assert_eq!(strings(&reply, "hosts"), vec![addr(0), addr(1)]);
        assert_eq!(strings(&reply, "passives"), vec![addr(2)]);
        assert_eq!(strings(&reply, "arbiters"), vec![addr(3)]);
        assert_eq!(reply.get_str("me").unwrap(), addr(i));
        assert_eq!(reply.get_str("primary").unwrap(), addr(0));
        assert_eq!(reply.get_i64("setVersion").unwrap(), 1);
        assert_eq!(reply.get_i32("maxWireVersion").unwrap(), 21);
        assert!(reply.get_bool("helloOk").unwrap());
        assert_eq!(reply.get_bool("isWritablePrimary").unwrap(), i == 0);
        assert_eq!(reply.get_bool("secondary").unwrap(), matches!(i, 1 | 2 | 4));
        assert_eq!(reply.get_document("topologyVersion").unwrap().get_i64("counter").unwrap(), 0);
        assert_eq!(reply.get("electionId").unwrap().is_some(), i == 0);
    }
    let hidden = hello(&mut client(&set, 4));
    assert!(hidden.get_bool("hidden").unwrap());
    assert!(hello(&mut client(&set, 3)).get_bool("arbiterOnly").unwrap());
    assert!(hello(&mut client(&set, 2)).get_bool("passive").unwrap());
}

#[test]
fn legacy_hello_and_hello_ok() {
    let server = Standalone::builder().start().unwrap();
    let mut c = client(&server, 0);
    let legacy = c.command(&rawdoc! { "isMaster": 1, "$db": "admin" }).unwrap();
    assert!(legacy.get_bool("ismaster").unwrap());
    assert!(legacy.get("isWritablePrimary").unwrap().is_none());
    assert!(legacy.get("helloOk").unwrap().is_none(), "helloOk only when the client offers it");
    assert!(legacy.get("setName").unwrap().is_none());
    let legacy = c.command(&rawdoc! { "ismaster": 1, "helloOk": true, "$db": "admin" }).unwrap();
    assert!(legacy.get_bool("helloOk").unwrap());
    assert_eq!(server.hello_count(0).unwrap(), 2);
}

#[test]
fn commands_route_like_a_server() {
    let set = rs(&[Role::Primary, Role::Secondary]);
    let mut primary = client(&set, 0);
    let mut secondary = client(&set, 1);
    let insert = rawdoc! { "insert": "c", "documents": [{ "x": 1 }], "$db": "test" };
    assert_eq!(primary.command(&insert).unwrap().get_f64("ok").unwrap(), 1.0);
    let refused = secondary.command(&insert).unwrap();
    assert_eq!(refused.get_f64("ok").unwrap(), 0.0);
    assert_eq!(refused.get_i32("code").unwrap(), 10107);
    assert_eq!(refused.get_str("errmsg").unwrap(), "not writable primary");
    assert!(refused.get_document("topologyVersion").is_ok());
    let find = secondary.command(&rawdoc! { "find": "c", "$db": "test" }).unwrap();
    assert_eq!(find.get_document("cursor").unwrap().get_str("ns").unwrap(), "test.c");
    assert_eq!(
        secondary.command(&rawdoc! { "ping": 1, "$db": "admin" }).unwrap().get_f64("ok").unwrap(),
        1.0
    );
    let unknown = secondary.command(&rawdoc! { "frobnicate": 1, "$db": "admin" }).unwrap();
    assert_eq!(unknown.get_i32("code").unwrap(), 59);
    assert_eq!(set.command_count(1).unwrap(), 4);

    let mongos = Mongos::builder().member(MemberSpec::new(Role::Mongos)).start().unwrap();
    let reply = hello(&mut client(&mongos, 0));
    assert_eq!(reply.get_str("msg").unwrap(), "isdbgrid");
    assert_eq!(client(&mongos, 0).command(&insert).unwrap().get_f64("ok").unwrap(), 1.0);
}

#[test]
fn bad_roles_are_refused() {
    let err = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Mongos)).start().unwrap_err();
    assert_eq!(err.to_string(), "role Mongos does not fit this deployment");
    assert!(ReplicaSet::builder("rs0").start().is_err());
    let set = rs(&[Role::Primary]);
    assert_eq!(set.crash(7).unwrap_err().to_string(), "no member with index 7");
}

fn awaitable_hello(c: &mut RawClient, tv: &bson::RawDocument, exhaust: bool) -> i32 {
    let body = rawdoc! {
        "hello": 1, "topologyVersion": tv.to_owned(), "maxAwaitTimeMS": 2_000i64, "$db": "admin",
    };
    c.send(&body, exhaust).unwrap()
}

#[test]
fn awaitable_hello_waits_for_a_change() {
    let set = rs(&[Role::Primary, Role::Secondary]);
    let mut c = client(&set, 1);
    let first = hello(&mut c);
    let tv = first.get_document("topologyVersion").unwrap();
    let started = Instant::now();
    awaitable_hello(&mut c, tv, false);
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            set.elect(1).unwrap();
        });
        let reply = c.read_reply().unwrap();
        assert!(!reply.more_to_come);
        assert!(started.elapsed() >= Duration::from_millis(150), "answered before the change");
        assert!(reply.body.get_bool("isWritablePrimary").unwrap());
        assert_eq!(reply.body.get_document("topologyVersion").unwrap().get_i64("counter").unwrap(), 1);
    });
    // Unchanged: the reply comes after maxAwaitTimeMS.
    let tv = hello(&mut c).get_document("topologyVersion").unwrap().to_owned();
    let started = Instant::now();
    let body = rawdoc! { "hello": 1, "topologyVersion": tv, "maxAwaitTimeMS": 300i64, "$db": "admin" };
    c.command(&body).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[test]
fn exhaust_streams_replies_with_more_to_come() {
    let set = rs(&[Role::Primary, Role::Secondary]);
    let mut c = client(&set, 1);
    let tv = hello(&mut c).get_document("topologyVersion").unwrap().to_owned();
    let request = awaitable_hello(&mut c, &tv, true);
    set.set_tags(1, [("dc", "ny")]).unwrap();
    let first = c.read_reply().unwrap();
    assert!(first.more_to_come);
    assert_eq!(first.response_to, request);
    assert_eq!(first.body.get_document("tags").unwrap().get_str("dc").unwrap(), "ny");
    set.step_down(0).unwrap();
    let second = c.read_reply().unwrap();
    assert!(second.more_to_come);
    assert_eq!(second.response_to, first.request_id, "each push answers the previous reply");
    assert!(second.body.get("primary").unwrap().is_none());
    assert_eq!(set.hello_count(1).unwrap(), 2, "pushes are not requests");
}

#[test]
fn non_streaming_member_answers_at_once() {
    let set =
        ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary).streaming(false)).start().unwrap();
    let mut c = client(&set, 0);
    let tv = hello(&mut c).get_document("topologyVersion").unwrap().to_owned();
    let started = Instant::now();
    awaitable_hello(&mut c, &tv, true);
    let reply = c.read_reply().unwrap();
    assert!(!reply.more_to_come);
    assert!(started.elapsed() < Duration::from_millis(1_500));
}

#[test]
fn crash_closes_everything_and_restart_rejoins_as_secondary() {
    let set = rs(&[Role::Primary, Role::Secondary, Role::Secondary]);
    let mut c = client(&set, 0);
    let first = hello(&mut c);
    let before = first.get_document("topologyVersion").unwrap().get_object_id("processId").unwrap();
    let first_election = first.get_object_id("electionId").unwrap();
    eventually("one open connection", || set.open_connections(0).unwrap() == 1);
    set.crash(0).unwrap();
    assert!(c.is_closed_by_server());
    assert!(RawClient::connect(set.address(0).unwrap().to_string()).is_err(), "listener closed");
    eventually("no open connection", || set.open_connections(0).unwrap() == 0);
    set.elect(1).unwrap();
    set.restart(0).unwrap();
    let reply = hello(&mut client(&set, 0));
    assert!(reply.get_bool("secondary").unwrap());
    assert_eq!(reply.get_str("primary").unwrap(), set.address(1).unwrap().to_string());
    let after = reply.get_document("topologyVersion").unwrap().get_object_id("processId").unwrap();
    assert_ne!(before, after, "a restarted process has a new processId");
    let new_primary = hello(&mut client(&set, 1));
    assert!(new_primary.get_object_id("electionId").unwrap() > first_election);
}

#[test]
fn elections_and_reconfigs_move_versions_forward() {
    let set = rs(&[Role::Primary, Role::Secondary]);
    let first = hello(&mut client(&set, 0)).get_object_id("electionId").unwrap();
    set.elect(1).unwrap();
    let reply = hello(&mut client(&set, 1));
    assert!(reply.get_object_id("electionId").unwrap() > first);
    assert!(hello(&mut client(&set, 0)).get_bool("secondary").unwrap());
    let added = set.add_member(MemberSpec::new(Role::Secondary)).unwrap();
    let reply = hello(&mut client(&set, added));
    assert_eq!(reply.get_i64("setVersion").unwrap(), 2);
    assert_eq!(strings(&reply, "hosts").len(), 3);
    set.remove_member(0).unwrap();
    let reply = hello(&mut client(&set, 1));
    assert_eq!(reply.get_i64("setVersion").unwrap(), 3);
    assert!(!strings(&reply, "hosts").contains(&set.address(0).unwrap().to_string()));
    let removed = hello(&mut client(&set, 0));
    assert!(removed.get("setName").unwrap().is_none());
    assert!(removed.get_bool("isreplicaset").unwrap());
}

#[test]
fn latency_is_injected_before_each_reply() {
    let server = Standalone::builder().start().unwrap();
    server.set_latency(0, Duration::from_millis(60)).unwrap();
    let mut c = client(&server, 0);
    let started = Instant::now();
    hello(&mut c);
    hello(&mut c);
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[test]
fn faults_send_malformed_frames() {
    let server = Standalone::builder().start().unwrap();
    server.set_fault(0, Fault::GarbageReply).unwrap();
    let err = client(&server, 0).command(&rawdoc! { "hello": 1, "$db": "admin" }).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    server.set_fault(0, Fault::OversizedReply).unwrap();
    let err = client(&server, 0).command(&rawdoc! { "hello": 1, "$db": "admin" }).unwrap_err();
    assert!(err.to_string().contains("exceeds the maximum"), "{err}");
    server.set_fault(0, Fault::None).unwrap();
    assert!(hello(&mut client(&server, 0)).get_bool("isWritablePrimary").unwrap());
}

#[test]
fn members_can_start_down() {
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary).down())
        .start()
        .unwrap();
    assert!(!set.is_up(1).unwrap());
    assert!(RawClient::connect(set.address(1).unwrap().to_string()).is_err());
    assert_eq!(strings(&hello(&mut client(&set, 0)), "hosts").len(), 2);
    set.restart(1).unwrap();
    assert!(hello(&mut client(&set, 1)).get_bool("secondary").unwrap());
}

#[test]
fn shutdown_closes_connections_and_streams() {
    let set = rs(&[Role::Primary, Role::Secondary]);
    let mut idle = client(&set, 0);
    hello(&mut idle);
    let mut streaming = client(&set, 1);
    let tv = hello(&mut streaming).get_document("topologyVersion").unwrap().to_owned();
    awaitable_hello(&mut streaming, &tv, true);
    eventually("two open connections", || set.total_open_connections() == 2);
    drop(set);
    assert!(idle.is_closed_by_server());
    assert!(streaming.is_closed_by_server());
}

#[test]
fn client_leaving_a_stream_frees_the_connection() {
    let set = rs(&[Role::Primary]);
    let mut c = client(&set, 0);
    let tv = hello(&mut c).get_document("topologyVersion").unwrap().to_owned();
    awaitable_hello(&mut c, &tv, true);
    eventually("open connection", || set.open_connections(0).unwrap() == 1);
    drop(c);
    eventually("closed connection", || set.open_connections(0).unwrap() == 0);
}

#[cfg(feature = "tls")]
#[test]
fn serves_tls_with_the_generated_ca() {
    use std::io::{Read, Write};
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};

    let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).tls().start().unwrap();
    let ca = CertificateDer::from_pem_slice(set.ca_pem().unwrap().as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(set.address(0).unwrap().to_string()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let body = rawdoc! { "hello": 1, "$db": "admin" };
    tls.write_all(&sdam_wire::OpMsg::new(9, &body).to_vec().unwrap()).unwrap();
    let mut buf = vec![0u8; 4];
    tls.read_exact(&mut buf).unwrap();
    let len = usize::try_from(i32::from_le_bytes(buf[..4].try_into().unwrap())).unwrap();
    buf.resize(len, 0);
    tls.read_exact(&mut buf[4..]).unwrap();
    let reply = sdam_wire::OpMsg::parse(&buf).unwrap();
    assert_eq!(reply.response_to, 9);
    assert_eq!(reply.body.get_str("setName").unwrap(), "rs0");

    // A plaintext client gets no answer it can read.
    let mut plain = RawClient::connect(set.address(0).unwrap().to_string()).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert!(plain.command(&body).is_err());
}

/// configureFailPoint over the wire: errorCode and appName on hello (the handshake names the
/// application, later hellos on that connection match too), times counting down, blockTimeMS,
/// closeConnection, off.
#[test]
fn fail_points_over_the_wire() {
    let server = Standalone::builder().start().unwrap();
    let mut setup = client(&server, 0);
    let reply = setup
        .command(&rawdoc! {
            "configureFailPoint": "failCommand", "mode": { "times": 2 }, "$db": "admin",
            "data": { "failCommands": ["hello", "isMaster"], "appName": "app", "errorCode": 91 },
        })
        .unwrap();
    assert_eq!(reply.get_f64("ok").ok(), Some(1.0), "{reply:?}");
    // Another application's hello is not affected.
    assert_eq!(hello(&mut setup).get_f64("ok").ok(), Some(1.0));
    let mut app = client(&server, 0);
    let handshake = rawdoc! { "hello": 1, "client": { "application": { "name": "app" } }, "$db": "admin" };
    let failed = app.command(&handshake).unwrap();
    assert_eq!((failed.get_f64("ok").ok(), failed.get_i32("code").ok()), (Some(0.0), Some(91)));
    let failed = app.command(&rawdoc! { "isMaster": 1, "$db": "admin" }).unwrap();
    assert_eq!(failed.get_i32("code").ok(), Some(91), "the connection's appName matches");
    assert_eq!(hello(&mut app).get_f64("ok").ok(), Some(1.0), "times: 2 used up");

    setup
        .command(&rawdoc! {
            "configureFailPoint": "failCommand", "mode": "alwaysOn", "$db": "admin",
            "data": { "failCommands": ["ping"], "blockConnection": true, "blockTimeMS": 200 },
        })
        .unwrap();
    let start = Instant::now();
    assert_eq!(app.command(&rawdoc! { "ping": 1, "$db": "admin" }).unwrap().get_f64("ok").ok(), Some(1.0));
    assert!(start.elapsed() >= Duration::from_millis(200));

    setup
        .command(&rawdoc! {
            "configureFailPoint": "failCommand", "mode": "alwaysOn", "$db": "admin",
            "data": { "failCommands": ["ping"], "closeConnection": true },
        })
        .unwrap();
    assert!(app.command(&rawdoc! { "ping": 1, "$db": "admin" }).is_err(), "closed without a reply");
    let off = rawdoc! { "configureFailPoint": "failCommand", "mode": "off", "$db": "admin" };
    assert_eq!(setup.command(&off).unwrap().get_f64("ok").ok(), Some(1.0));
    assert_eq!(setup.command(&rawdoc! { "ping": 1, "$db": "admin" }).unwrap().get_f64("ok").ok(), Some(1.0));
    let refused = rawdoc! { "configureFailPoint": "failCommand", "mode": { "activationProbability": 0.5 }, "$db": "admin" };
    assert_eq!(setup.command(&refused).unwrap().get_f64("ok").ok(), Some(0.0));
}

/// A fail point on hello reaches a streaming hello at its next reply, not after maxAwaitTimeMS.
#[test]
fn a_fail_point_interrupts_a_streaming_hello() {
    let server = Standalone::builder().start().unwrap();
    let mut monitor = client(&server, 0);
    let first = hello(&mut monitor);
    let tv = first.get_document("topologyVersion").unwrap().to_owned();
    let awaitable = rawdoc! { "hello": 1, "topologyVersion": tv, "maxAwaitTimeMS": 10_000, "$db": "admin" };
    monitor.send(&awaitable, true).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut setup = client(&server, 0);
    setup
        .command(&rawdoc! {
            "configureFailPoint": "failCommand", "mode": "alwaysOn", "$db": "admin",
            "data": { "failCommands": ["hello"], "closeConnection": true },
        })
        .unwrap();
    let start = Instant::now();
    assert!(monitor.read_reply().is_err(), "the stream is closed");
    assert!(start.elapsed() < Duration::from_secs(2));
}

/// What insert writes, find reads back, on every member of a replica set.
#[test]
fn documents_are_kept() {
    let set = rs(&[Role::Primary, Role::Secondary]);
    let mut primary = client(&set, 0);
    let insert = rawdoc! { "insert": "c", "$db": "d", "documents": [{ "_id": 1 }, { "_id": 2 }] };
    assert_eq!(primary.command(&insert).unwrap().get_i32("n").ok(), Some(2));
    let mut secondary = client(&set, 1);
    assert_eq!(secondary.command(&insert).unwrap().get_i32("code").ok(), Some(10107), "not writable");
    let found = secondary.command(&rawdoc! { "find": "c", "$db": "d", "sort": { "_id": 1 } }).unwrap();
    let batch = found.get_document("cursor").unwrap().get_array("firstBatch").unwrap();
    assert_eq!(batch.into_iter().count(), 2);
}
