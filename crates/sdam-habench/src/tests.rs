//! The scripted servers answer what the peers send; the bench's pieces work end to end.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use sdam_testserver::{MemberSpec, ReplicaSet, Role};

use crate::deploy::{self, Flavour, Options, APP_NAME};
use crate::impls::{self, Env, Impl};

/// Set (as `.ci/run` does) to make the PyMongo tests fail instead of skipping when the
/// environment of `scripts/install-pymongo.sh` is absent.
const REQUIRE_PYMONGO: &str = "SDAM_REQUIRE_PYMONGO";

fn python() -> Option<crate::child::Python> {
    match crate::child::Python::find() {
        Ok(python) => Some(python),
        Err(e) if std::env::var_os(REQUIRE_PYMONGO).is_some() => panic!("{REQUIRE_PYMONGO} is set: {e}"),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

fn env() -> Env {
    Env { runtime: tokio::runtime::Runtime::new().unwrap(), python: crate::child::Python::find() }
}

#[test]
fn the_rust_driver_discovers_a_scripted_set_and_writes() {
    let set = deploy::replica_set(3).unwrap();
    let seed = [set.address(0).unwrap()];
    let options = Options { selection_timeout_ms: 10_000, ..Options::default() };
    let uri = deploy::uri(&seed, Some("rs0"), options, Flavour::Peer);
    let env = env();
    let d = impls::discovery(&env, Impl::RustDriver, &uri, 3).unwrap();
    assert!(d.first_write_ms > 0.0 && d.all_known_ms > 0.0, "{d:?}");
    assert!(set.command_count(0).unwrap() >= 1, "the insert reached the primary");
    // Every member answered the driver's handshake (OP_MSG legacy hello with metadata).
    for i in 0..3 {
        let handshakes = set.handshakes(i).unwrap();
        assert!(
            handshakes.iter().any(|(driver, app)| driver == "mongo-rust-driver" && app == APP_NAME),
            "member {i}: {handshakes:?}"
        );
    }
}

#[test]
fn the_rust_driver_sees_not_writable_primary_and_recovers() {
    // Non-streaming members and a 10 s heartbeat: the driver keeps its view of the old
    // primary until a write tells it otherwise.
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary).streaming(false))
        .member(MemberSpec::new(Role::Secondary).streaming(false))
        .start()
        .unwrap();
    let options = Options { selection_timeout_ms: 10_000, poll: true, ..Options::default() };
    let uri = deploy::uri(&set.addresses(), Some("rs0"), options, Flavour::Peer);
    let env = env();
    env.runtime.block_on(async {
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        let writes = client.database("habench").collection::<Document>("writes");
        writes.insert_one(doc! { "n": 1 }).await.unwrap();
        set.elect(1).unwrap();
        let error = writes.insert_one(doc! { "n": 2 }).await.unwrap_err();
        match &*error.kind {
            mongodb::error::ErrorKind::Command(c) => {
                assert_eq!(c.code, 10107, "{error}");
                assert_eq!(c.code_name, "NotWritablePrimary");
            }
            other => panic!("expected NotWritablePrimary, got {other:?}"),
        }
        // The application's retry: the driver marked the old primary Unknown and finds the
        // new one.
        tokio::time::timeout(Duration::from_secs(10), writes.insert_one(doc! { "n": 3 }))
            .await
            .unwrap()
            .unwrap();
        assert!(set.command_count(1).unwrap() >= 1);
        client.shutdown().await;
    });
}

#[test]
fn pymongo_handshakes_with_the_scripted_servers() {
    let Some(python) = python() else { return };
    let set = deploy::replica_set(3).unwrap();
    let uri = deploy::uri(&set.addresses(), Some("rs0"), Options::default(), Flavour::Peer);
    let child = python.spawn(&["handshake".into(), uri]).unwrap();
    let v = child.json().unwrap();
    child.finish().unwrap();
    assert_eq!(v["acknowledged"], true, "{v}");
    assert_eq!(v["ping"], 1.0, "{v}");
    let handshakes = set.handshakes(0).unwrap();
    assert!(
        handshakes.iter().any(|(driver, app)| driver.starts_with("PyMongo") && app == APP_NAME),
        "{handshakes:?}"
    );
}

#[test]
fn sdam_adapters_discover_and_fail_over() {
    let env = env();
    for which in [Impl::SdamTokio, Impl::SdamStd] {
        let set = deploy::replica_set(3).unwrap();
        let uri = deploy::uri(&[set.address(0).unwrap()], Some("rs0"), Options::default(), Flavour::Sdam);
        let d = impls::discovery(&env, which, &uri, 3).unwrap();
        assert!(d.first_write_ms > 0.0 && d.all_known_ms > 0.0, "{which:?}: {d:?}");
    }
    let options = Options { heartbeat_ms: 10_000, ..Options::default() };
    let (ms, errors, first) =
        crate::workloads::failover_once(&env, Impl::SdamTokio, options, Duration::ZERO).unwrap();
    assert!(ms >= 0.0 && errors >= 0.0, "{ms} {errors} {first}");
}

#[test]
fn the_idle_child_speaks_the_protocol() {
    // The bench's own binary is not built for unit tests; the in-process idle program is the
    // same code path up to `ready`, so run the PyMongo one if it is there.
    let Some(python) = python() else { return };
    let set = deploy::replica_set(3).unwrap();
    let uri = deploy::uri(&set.addresses(), Some("rs0"), Options::default(), Flavour::Peer);
    let child = python.spawn(&["idle".into(), uri, "3".into()]).unwrap();
    child.expect("ready").unwrap();
    let tasks = crate::procfs::tasks(child.pid()).unwrap();
    assert!(!tasks.is_empty());
    child.finish().unwrap();
}

#[test]
fn the_bench_reports_not_writable_primary_to_sdam_and_recovers() {
    // As the Rust driver's test above, through sdam-std and the bench's own connections.
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary).streaming(false))
        .member(MemberSpec::new(Role::Secondary).streaming(false))
        .start()
        .unwrap();
    let options = Options { selection_timeout_ms: 10_000, poll: true, ..Options::default() };
    let uri = deploy::uri(&set.addresses(), Some("rs0"), options, Flavour::Sdam);
    let client = sdam_std::Client::from_uri(&uri).unwrap();
    let mut pool = crate::conn::BlockingPool::default();
    assert_eq!(pool.write(&client, 1).unwrap(), set.address(0).unwrap());
    set.elect(1).unwrap();
    match pool.write(&client, 2) {
        Err(crate::conn::WriteError::Server(error)) => {
            assert!(error.is_retryable(), "{error:?}");
            assert!(
                matches!(
                    error.kind,
                    sdam::ApplicationErrorKind::Command { code: Some(10107), topology_version: Some(_), .. }
                ),
                "{error:?}"
            );
        }
        other => panic!("expected NotWritablePrimary, got {other:?}"),
    }
    // report_error marked the old primary Unknown: the retry waits for the new one.
    assert_eq!(pool.write(&client, 3).unwrap(), set.address(1).unwrap());
    client.close();
}

#[test]
fn every_client_gets_the_same_options() {
    let hosts = [
        sdam::ServerAddress::parse("127.0.0.1:1").unwrap(),
        sdam::ServerAddress::parse("127.0.0.1:2").unwrap(),
    ];
    let options =
        Options { heartbeat_ms: 500, selection_timeout_ms: 1000, local_threshold_ms: Some(15), poll: true };
    assert_eq!(
        deploy::uri(&hosts, Some("rs0"), options, Flavour::Peer),
        "mongodb://127.0.0.1:1,127.0.0.1:2/?replicaSet=rs0&heartbeatFrequencyMS=500&serverSelectionTimeoutMS=1000\
         &localThresholdMS=15&serverMonitoringMode=poll&retryWrites=false&directConnection=false&appName=sdam-habench"
    );
    let sdam = deploy::uri(&hosts, None, Options::default(), Flavour::Sdam);
    assert!(!sdam.contains("retryWrites") && sdam.contains("heartbeatFrequencyMS=10000"), "{sdam}");
    // The adapters accept every option the peers get.
    let config = sdam_config(&deploy::uri(&hosts, Some("rs0"), options, Flavour::Sdam));
    assert_eq!(config.heartbeat_frequency, Duration::from_millis(500));
    assert_eq!(config.local_threshold, Duration::from_millis(15));
    assert_eq!(config.server_selection_timeout, Duration::from_millis(1000));
    assert_eq!(config.server_monitoring_mode, sdam::ServerMonitoringMode::Poll);
}

/// The configuration the adapters' `from_uri` builds from a connection string.
fn sdam_config(uri: &str) -> sdam::TopologyConfig {
    sdam::TopologyConfig::from_connection_string(&sdam::ConnectionString::parse(uri).unwrap())
}
