//! The prose tests of mongodb-handshake/tests/README.md that the core can run: the `client`
//! document it builds and sends on every new monitoring connection, and the monitoring mode
//! it derives from `client.env`.

use std::collections::HashMap;
use std::time::Duration;

use bson::Document;

use super::*;
use crate::events::{Command, Output};
use crate::handshake::{ContainerEnv, DriverInfo, FaasEnv, MetadataError, MAX_METADATA_BYTES};
use crate::monitor::ServerMonitoringMode;
use crate::ClientMetadata;

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

/// A lookup over a fixed set of variables (the process environment is never touched).
fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> =
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    move |name| map.get(name).cloned()
}

fn metadata(pairs: &[(&str, &str)]) -> ClientMetadata {
    let mut m = ClientMetadata::default();
    m.detect_environment(vars(pairs), false);
    m
}

/// The `client` document of every handshake a topology sends until `limit` are seen, and
/// whether any check was awaitable (streaming).
fn handshakes(config: TopologyConfig) -> (Vec<Document>, Topology, Instant) {
    let now = crate::test_instant();
    let mut t = Topology::new(config, now).unwrap();
    let mut docs = Vec::new();
    while let Some(o) = t.poll_output() {
        if let Output::Command(Command::SendHello { open: true, command, .. }) = o {
            let d = Document::try_from(command.as_ref()).unwrap();
            docs.push(d.get_document("client").unwrap().clone());
        }
    }
    (docs, t, now)
}

fn client_doc(m: &ClientMetadata) -> Document {
    let d = m.to_document();
    let size = bson::RawDocumentBuf::try_from(&d).unwrap().as_bytes().len();
    assert!(size <= MAX_METADATA_BYTES, "{size} bytes");
    d
}

const AWS: [(&str, &str); 3] = [
    ("AWS_EXECUTION_ENV", "AWS_Lambda_java8"),
    ("AWS_REGION", "us-east-2"),
    ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
];

/// README "Test 1: Test that environment metadata is properly captured", cases 1 to 9: the
/// `client.env` document of the handshake for each set of variables, within 512 bytes.
#[test]
fn prose_test_1_environment_metadata_is_properly_captured() {
    // 1. Valid AWS.
    let d = client_doc(&metadata(&AWS));
    assert_eq!(
        d.get_document("env").unwrap(),
        &bson::doc! {"name": "aws.lambda", "memory_mb": 1024, "region": "us-east-2"}
    );
    // 2. Valid Azure.
    let d = client_doc(&metadata(&[("FUNCTIONS_WORKER_RUNTIME", "node")]));
    assert_eq!(d.get_document("env").unwrap(), &bson::doc! {"name": "azure.func"});
    // 3. Valid GCP.
    let d = client_doc(&metadata(&[
        ("K_SERVICE", "servicename"),
        ("FUNCTION_MEMORY_MB", "1024"),
        ("FUNCTION_TIMEOUT_SEC", "60"),
        ("FUNCTION_REGION", "us-central1"),
    ]));
    assert_eq!(
        d.get_document("env").unwrap(),
        &bson::doc! {"name": "gcp.func", "timeout_sec": 60, "memory_mb": 1024, "region": "us-central1"}
    );
    // 4. Valid Vercel.
    let d = client_doc(&metadata(&[("VERCEL", "1"), ("VERCEL_REGION", "cdg1")]));
    assert_eq!(d.get_document("env").unwrap(), &bson::doc! {"name": "vercel", "region": "cdg1"});
    // 5. Invalid - multiple providers: no env at all.
    let m = metadata(&[("AWS_EXECUTION_ENV", "AWS_Lambda_java8"), ("FUNCTIONS_WORKER_RUNTIME", "node")]);
    assert_eq!(m.env, None);
    assert!(client_doc(&m).get("env").is_none());
    // 6. Invalid - long string: the handshake stays within 512 bytes, env reduced to its name.
    let long = "a".repeat(512);
    let d = client_doc(&metadata(&[("AWS_EXECUTION_ENV", "AWS_Lambda_java8"), ("AWS_REGION", &long)]));
    assert_eq!(d.get_document("env").unwrap(), &bson::doc! {"name": "aws.lambda"});
    // 7. Invalid - wrong types: the field is omitted, no error.
    let d = client_doc(&metadata(&[
        ("AWS_EXECUTION_ENV", "AWS_Lambda_java8"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "big"),
    ]));
    assert_eq!(d.get_document("env").unwrap(), &bson::doc! {"name": "aws.lambda"});
    // 8. Invalid - AWS_EXECUTION_ENV does not start with "AWS_Lambda_".
    let m = metadata(&[("AWS_EXECUTION_ENV", "EC2")]);
    assert_eq!(m.env, None);
    assert!(client_doc(&m).get("env").is_none());
    // 9. Valid container and FaaS provider: both in client.env.
    let mut with_k8s = AWS.to_vec();
    with_k8s.push(("KUBERNETES_SERVICE_HOST", "1"));
    let d = client_doc(&metadata(&with_k8s));
    assert_eq!(
        d.get_document("env").unwrap(),
        &bson::doc! {
            "name": "aws.lambda", "memory_mb": 1024, "region": "us-east-2",
            "container": {"orchestrator": "kubernetes"},
        }
    );
}

/// The rest of "client.env": vercel over AWS, the other AWS variable, empty values, Docker,
/// and a container without FaaS.
#[test]
fn faas_precedence_and_container_detection() {
    let both = FaasEnv::detect(vars(&[("AWS_LAMBDA_RUNTIME_API", "x"), ("VERCEL", "1")]));
    assert_eq!(both.map(|e| e.name), Some("vercel".to_owned()));
    let aws = FaasEnv::detect(vars(&[("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")])).unwrap();
    assert_eq!(aws.name, "aws.lambda");
    assert_eq!(FaasEnv::detect(vars(&[("FUNCTION_NAME", "f")])).map(|e| e.name), Some("gcp.func".into()));
    assert_eq!(FaasEnv::detect(vars(&[("VERCEL", "")])), None, "an empty variable is not populated");
    assert_eq!(FaasEnv::detect(vars(&[("K_SERVICE", "s"), ("VERCEL", "1")])), None);
    let docker = ContainerEnv::detect(vars(&[]), true).unwrap();
    assert_eq!((docker.runtime.as_deref(), docker.orchestrator), (Some("docker"), None));
    assert_eq!(ContainerEnv::detect(vars(&[]), false), None);
    let mut m = ClientMetadata::default();
    m.detect_environment(vars(&[("KUBERNETES_SERVICE_HOST", "10.0.0.1")]), true);
    assert_eq!(m.env, None);
    assert_eq!(
        client_doc(&m).get_document("env").unwrap(),
        &bson::doc! {"container": {"runtime": "docker", "orchestrator": "kubernetes"}}
    );
}

/// handshake.md, "Limitations": the truncation order (env fields but name, os fields but
/// type, env, then platform), with a container.
#[test]
fn metadata_is_truncated_in_the_spec_order() {
    let mut m = metadata(&with(&AWS, ("KUBERNETES_SERVICE_HOST", "1")));
    m.os_name = Some("n".repeat(50));
    m.os_version = Some("v".repeat(50));
    m.platform = Some("p".repeat(200));
    // Without the environment it fits as it is.
    let mut bare = m.clone();
    bare.env = None;
    bare.container = None;
    assert_eq!(client_doc(&bare).get_document("os").unwrap().len(), 4);
    // Step 1 is enough with a 200-byte os: env keeps only its name (container gone).
    let d = client_doc(&m);
    assert_eq!(d.get_document("env").unwrap(), &bson::doc! {"name": "aws.lambda"});
    assert_eq!(d.get_document("os").unwrap().len(), 4, "os untouched");
    // Bigger: os reduced to its type as well.
    m.os_name = Some("n".repeat(250));
    let d = client_doc(&m);
    assert_eq!(d.get_document("os").unwrap().keys().collect::<Vec<_>>(), ["type"]);
    assert!(d.get_document("env").is_ok());
    // Bigger still: env goes, then platform is truncated.
    m.platform = Some("p".repeat(600));
    let d = client_doc(&m);
    assert!(d.get("env").is_none());
    assert!(d.get_str("platform").unwrap().len() < 600);
}

fn with<'a>(base: &[(&'a str, &'a str)], extra: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
    let mut v = base.to_vec();
    v.push(extra);
    v
}

/// serverMonitoringMode=auto polls on FaaS (server-monitoring.md, "Streaming disabled";
/// handshake.md "client.env"): the checks after the handshake are never awaitable.
#[test]
fn auto_monitoring_mode_polls_on_faas_and_streams_elsewhere() {
    for (env, streams) in [(None, true), (Some(metadata(&AWS)), false)] {
        let mut config = TopologyConfig::with_seeds([addr("a")]);
        config.server_monitoring_mode = ServerMonitoringMode::Auto;
        if let Some(m) = env {
            config.metadata = m;
        }
        let now = crate::test_instant();
        let mut t = Topology::new(config, now).unwrap();
        let request = std::iter::from_fn(|| t.poll_output())
            .find_map(|o| match o {
                Output::Command(Command::SendHello { request, .. }) => Some(request),
                _ => None,
            })
            .unwrap();
        let reply = bson::rawdoc! {
            "ok": 1, "isWritablePrimary": true, "helloOk": true, "maxWireVersion": 21,
            "topologyVersion": {"processId": ObjectId::from_bytes([1; 12]), "counter": 1_i64},
        };
        t.handle(
            Input::MonitorReply {
                request,
                reply: reply.clone(),
                round_trip_time: Duration::ZERO,
                more_to_come: false,
            },
            now,
        );
        let later = now + Duration::from_secs(20);
        t.handle_timeout(later);
        let awaitable = std::iter::from_fn(|| t.poll_output())
            .any(|o| matches!(o, Output::Command(Command::SendHello { exhaust_allowed: true, .. })));
        assert_eq!(awaitable, streams, "FaaS: {}", !streams);
    }
}

fn driver(d: &Document) -> (String, String, Option<String>) {
    let drv = d.get_document("driver").unwrap();
    (
        drv.get_str("name").unwrap().to_owned(),
        drv.get_str("version").unwrap().to_owned(),
        d.get_str("platform").ok().map(str::to_owned),
    )
}

fn info(name: &str, version: Option<&str>, platform: Option<&str>) -> DriverInfo {
    DriverInfo::new(name, version, platform)
}

/// A topology created with `initial` appended during initialization, one monitoring
/// connection open.
fn topology_with(initial: &[DriverInfo]) -> (Topology, Document) {
    let mut config = TopologyConfig::with_seeds([addr("a")]);
    for i in initial {
        config.metadata.append(i.clone()).unwrap();
    }
    let (docs, t, _) = handshakes(config);
    (t, docs[0].clone())
}

/// Appends `next` after initialization; returns the `client` document the next new
/// connection sends (the topology's metadata).
fn after_append(t: &mut Topology, next: DriverInfo) -> Document {
    t.append_metadata(next).unwrap();
    t.client_metadata().clone()
}

const CASES: [(&str, Option<&str>, Option<&str>); 4] = [
    ("framework", Some("2.0"), Some("Framework Platform")),
    ("framework", Some("2.0"), None),
    ("framework", None, Some("Framework Platform")),
    ("framework", None, None),
];

fn expected_after(
    base: (String, String, Option<String>),
    case: (&str, Option<&str>, Option<&str>),
) -> (String, String, Option<String>) {
    (
        format!("{}|{}", base.0, case.0),
        case.1.map_or(base.1.clone(), |v| format!("{}|{v}", base.1)),
        Some(case.2.map_or(base.2.clone().unwrap(), |p| format!("{}|{p}", base.2.clone().unwrap()))),
    )
}

/// README "Client Metadata Update Prose Tests", "Test 1: Test that the driver updates
/// metadata": appended after initialization, appended (not replaced), visible to new
/// connections, every other field unchanged.
#[test]
fn prose_metadata_test_1_the_driver_updates_metadata() {
    for case in CASES {
        let (mut t, initial) = topology_with(&[info("library", Some("1.2"), Some("Library Platform"))]);
        let base = driver(&initial);
        assert_eq!(base.0, "sdam|library");
        let updated = after_append(&mut t, info(case.0, case.1, case.2));
        assert_eq!(driver(&updated), expected_after(base, case), "{case:?}");
        assert_eq!(others(&updated), others(&initial));
    }
}

/// Every field but driver and platform.
fn others(d: &Document) -> Document {
    d.iter()
        .filter(|(k, _)| *k != "driver" && *k != "platform")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// "Test 2: Multiple Successive Metadata Updates": appended after initialization twice.
#[test]
fn prose_metadata_test_2_multiple_successive_metadata_updates() {
    for case in CASES {
        let (mut t, _) = topology_with(&[]);
        let first = after_append(&mut t, info("library", Some("1.2"), Some("Library Platform")));
        let base = driver(&first);
        let updated = after_append(&mut t, info(case.0, case.1, case.2));
        assert_eq!(driver(&updated), expected_after(base, case), "{case:?}");
        assert_eq!(others(&updated), others(&first));
    }
}

/// "Test 3: Multiple Successive Metadata Updates with Duplicate Data": only an identical
/// driver info is not appended again.
#[test]
fn prose_metadata_test_3_successive_updates_with_duplicate_data() {
    let cases = [
        ("library", "1.2", "Library Platform"),
        ("framework", "1.2", "Library Platform"),
        ("library", "2.0", "Library Platform"),
        ("library", "1.2", "Framework Platform"),
        ("framework", "2.0", "Library Platform"),
        ("framework", "1.2", "Framework Platform"),
        ("library", "2.0", "Framework Platform"),
    ];
    for (i, (name, version, platform)) in cases.into_iter().enumerate() {
        let (mut t, _) = topology_with(&[]);
        let first = after_append(&mut t, info("library", Some("1.2"), Some("Library Platform")));
        let updated = after_append(&mut t, info(name, Some(version), Some(platform)));
        // Strip the driver's own info (the first part of each field).
        let (n, v, p) = driver(&updated);
        let strip = |s: &str| s.split('|').skip(1).collect::<Vec<_>>().join("|");
        if i == 0 {
            assert_eq!(
                (strip(&n), strip(&v), strip(&p.unwrap())),
                ("library".into(), "1.2".into(), "Library Platform".into())
            );
            assert_eq!(updated, first);
        } else {
            assert_eq!(strip(&n), format!("library|{name}"));
            assert_eq!(strip(&v), format!("1.2|{version}"));
            assert_eq!(strip(&p.unwrap()), format!("Library Platform|{platform}"));
        }
        assert_eq!(others(&updated), others(&first));
    }
}

/// "Test 4: Multiple Metadata Updates with Duplicate Data": library, framework, then library
/// again changes nothing.
#[test]
fn prose_metadata_test_4_multiple_updates_with_duplicate_data() {
    let (mut t, _) = topology_with(&[]);
    after_append(&mut t, info("library", Some("1.2"), Some("Library Platform")));
    let client_metadata = after_append(&mut t, info("framework", Some("2.0"), Some("Framework Platform")));
    let updated = after_append(&mut t, info("library", Some("1.2"), Some("Library Platform")));
    assert_eq!(client_metadata, updated);
}

/// "Test 5: Metadata is not appended if identical to initial metadata".
#[test]
fn prose_metadata_test_5_not_appended_if_identical_to_initial_metadata() {
    let (mut t, client_metadata) = topology_with(&[info("library", Some("1.2"), Some("Library Platform"))]);
    assert_eq!(t.append_metadata(info("library", Some("1.2"), Some("Library Platform"))), Ok(false));
    assert_eq!(t.client_metadata(), &client_metadata);
}

/// "Test 6: Metadata is not appended if identical to initial metadata (separated by
/// non-identical metadata)".
#[test]
fn prose_metadata_test_6_not_appended_if_identical_to_initial_separated() {
    let (mut t, _) = topology_with(&[info("library", Some("1.2"), Some("Library Platform"))]);
    let client_metadata = after_append(&mut t, info("framework", Some("1.2"), Some("Library Platform")));
    let updated = after_append(&mut t, info("library", Some("1.2"), Some("Library Platform")));
    assert_eq!(client_metadata, updated);
}

/// "Test 7: Empty strings are considered unset when appending duplicate metadata" (cases 2
/// and 3; case 1 needs a driver name that can be unset, which `DriverInfo` does not allow).
#[test]
fn prose_metadata_test_7_empty_strings_are_unset_when_appending_duplicates() {
    let cases = [
        (
            info("library", None, Some("Library Platform")),
            info("library", Some(""), Some("Library Platform")),
        ),
        (info("library", Some("1.2"), None), info("library", Some("1.2"), Some(""))),
    ];
    for (appended, duplicate) in cases {
        let (mut t, _) = topology_with(&[]);
        let client_metadata = after_append(&mut t, appended);
        let updated = after_append(&mut t, duplicate);
        assert_eq!(client_metadata, updated);
    }
}

/// "Test 8: Empty strings are considered unset when appending metadata identical to initial
/// metadata" (cases 2 and 3).
#[test]
fn prose_metadata_test_8_empty_strings_are_unset_when_identical_to_initial() {
    let cases = [
        (
            info("library", None, Some("Library Platform")),
            info("library", Some(""), Some("Library Platform")),
        ),
        (info("library", Some("1.2"), None), info("library", Some("1.2"), Some(""))),
    ];
    for (initial, appended) in cases {
        let (mut t, initial_client_metadata) = topology_with(&[initial]);
        let updated = after_append(&mut t, appended);
        assert_eq!(initial_client_metadata, updated);
    }
}

/// README "Test 9: Handshake documents include backpressure: "2"": every handshake the
/// core sends (each seed's, and the one after a failed check's reconnect).
#[test]
fn prose_test_9_handshake_documents_include_backpressure() {
    let now = crate::test_instant();
    let config = TopologyConfig::with_seeds([addr("a"), addr("b")]);
    let mut t = Topology::new(config, now).unwrap();
    let mut seen = 0;
    let mut at = now;
    // Each seed's first handshake, then (the checks failed) the reconnects a heartbeat later.
    for _ in 0..2 {
        let mut requests = Vec::new();
        while let Some(o) = t.poll_output() {
            if let Output::Command(Command::SendHello { request, open: true, command, .. }) = o {
                assert_eq!(command.get_str("backpressure").unwrap(), "2");
                seen += 1;
                requests.push(request);
            }
        }
        for request in requests {
            let kind = crate::monitor::FailureKind::Network;
            t.handle(Input::MonitorFailed { request, kind, error: "reset".into() }, at);
        }
        at = t.poll_timeout().unwrap();
        t.handle_timeout(at);
    }
    assert_eq!(seen, 4, "{seen} handshakes");
}

/// README "Test 2: Test that the driver accepts an arbitrary auth mechanism": a hello whose
/// `saslSupportedMechs` lists an unknown mechanism is a good reply.
#[test]
fn prose_test_2_the_driver_accepts_an_arbitrary_auth_mechanism() {
    let now = crate::test_instant();
    let mut t = Topology::new(TopologyConfig::with_seeds([addr("a")]), now).unwrap();
    let request = std::iter::from_fn(|| t.poll_output())
        .find_map(|o| match o {
            Output::Command(Command::SendHello { request, .. }) => Some(request),
            _ => None,
        })
        .unwrap();
    let reply = bson::rawdoc! {
        "ok": 1, "isWritablePrimary": true, "maxWireVersion": 21,
        "saslSupportedMechs": ["SCRAM-SHA-256", "ArBiTrArY!"],
    };
    t.handle(
        Input::MonitorReply {
            request,
            reply: reply.clone(),
            round_trip_time: Duration::ZERO,
            more_to_come: false,
        },
        now,
    );
    let sd = t.description().server(&addr("a")).cloned().unwrap();
    assert_eq!((sd.server_type, sd.error.as_deref()), (ServerType::Standalone, None));
}

/// "Drivers MUST throw an error if any of these strings contains that character", and the
/// bound on appended infos.
#[test]
fn driver_info_with_the_delimiter_is_refused() {
    let mut m = ClientMetadata::default();
    let err = m.append(info("a|b", None, None)).unwrap_err();
    assert_eq!(err, MetadataError::ContainsDelimiter { field: "name", value: "a|b".into() });
    assert!(m.append(info("x", Some("1|2"), None)).is_err());
    assert!(m.append(info("x", None, Some("p|q"))).is_err());
    assert_eq!(m, ClientMetadata::default(), "nothing changed");
    for i in 0..crate::handshake::MAX_DRIVER_INFOS {
        assert_eq!(m.append(info(&format!("l{i}"), None, None)), Ok(true));
    }
    assert_eq!(m.append(info("one-more", None, None)), Err(MetadataError::TooMany));
}

/// handshake.md, "Metadata updates after MongoClient initialization": appended metadata goes
/// to connections opened afterwards; appending opens, closes and re-handshakes nothing.
#[test]
fn appended_metadata_reaches_new_connections_only() {
    let now = crate::test_instant();
    let mut t = Topology::new(TopologyConfig::with_seeds([addr("a")]), now).unwrap();
    let first = std::iter::from_fn(|| t.poll_output())
        .find_map(|o| match o {
            Output::Command(Command::SendHello { request, open: true, command, .. }) => {
                Some((request, command))
            }
            _ => None,
        })
        .unwrap();
    let sent = Document::try_from(first.1.as_ref()).unwrap();
    assert_eq!(driver(sent.get_document("client").unwrap()).0, "sdam");
    assert_eq!(t.append_metadata(info("odm", Some("3.1"), None)), Ok(true));
    assert!(t.poll_output().is_none(), "no connection opened or closed for the update");
    // The monitoring connection breaks; a heartbeat later its replacement sends the new
    // metadata.
    let kind = crate::monitor::FailureKind::Network;
    t.handle(Input::MonitorFailed { request: first.0, kind, error: "reset".into() }, now);
    while t.poll_output().is_some() {}
    let at = t.poll_timeout().unwrap();
    t.handle_timeout(at);
    let reopened = std::iter::from_fn(|| t.poll_output())
        .find_map(|o| match o {
            Output::Command(Command::SendHello { open: true, command, .. }) => Some(command),
            _ => None,
        })
        .expect("a new connection");
    let sent = Document::try_from(reopened.as_ref()).unwrap();
    let (name, version, _) = driver(sent.get_document("client").unwrap());
    assert_eq!((name.as_str(), version.ends_with("|3.1")), ("sdam|odm", true));
}
