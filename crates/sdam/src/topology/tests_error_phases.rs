//! Application errors by phase (server-discovery-and-monitoring.md, "Network error when
//! reading or writing" and "MongoDB Handshake errors"): a network error and a timeout in each
//! of the three phases.

use std::time::Duration;

use super::*;
use crate::app_error::{ApplicationError, ApplicationErrorKind, ErrorPhase, SYSTEM_OVERLOADED_LABEL};
use crate::events::{Command, Output};

fn addr(s: &str) -> ServerAddress {
    ServerAddress::parse(s).unwrap()
}

/// A replica set whose primary `a` is known, with its outputs drained.
fn with_primary() -> (Topology, Instant) {
    let now = crate::test_instant();
    let mut config = TopologyConfig::with_seeds([addr("a")]);
    config.replica_set_name = Some("rs".into());
    let mut t = Topology::new(config, now).unwrap();
    let reply = bson::rawdoc! {
        "ok": 1, "isWritablePrimary": true, "setName": "rs", "hosts": ["a:27017"], "maxWireVersion": 21,
    };
    t.handle(
        Input::HelloReply {
            address: addr("a"),
            reply: reply.clone(),
            round_trip_time: Duration::ZERO,
            awaited: false,
        },
        now,
    );
    while t.poll_output().is_some() {}
    assert_eq!(t.description().topology_type, TopologyType::ReplicaSetWithPrimary);
    (t, now)
}

/// Feeds the error; returns the server's type after it and whether the pool was cleared.
fn report(kind: ApplicationErrorKind, phase: ErrorPhase, labels: &[&str]) -> (ServerType, bool) {
    let (mut t, now) = with_primary();
    let mut error = ApplicationError::new(addr("a"), 0, kind);
    error.generation = 0;
    error.max_wire_version = 21;
    error.phase = phase;
    error.labels = labels.iter().map(|l| (*l).to_owned()).collect();
    t.handle(Input::ApplicationError(error), now);
    let cleared = std::iter::from_fn(|| t.poll_output())
        .any(|o| matches!(o, Output::Command(Command::ClearPool { .. })));
    (t.description().server(&addr("a")).unwrap().server_type, cleared)
}

const PHASES: [ErrorPhase; 3] =
    [ErrorPhase::ConnectionEstablishment, ErrorPhase::Authentication, ErrorPhase::AfterHandshakeCompletes];

#[test]
fn a_network_error_marks_the_server_unknown_except_while_connecting() {
    for phase in PHASES {
        let expected = match phase {
            // "If there is a network error or timeout on the connection establishment or the
            // hello, the client MUST NOT change the server's description."
            ErrorPhase::ConnectionEstablishment => (ServerType::RSPrimary, false),
            ErrorPhase::Authentication | ErrorPhase::AfterHandshakeCompletes => (ServerType::Unknown, true),
        };
        assert_eq!(report(ApplicationErrorKind::Network, phase, &[]), expected, "{phase:?}");
    }
}

#[test]
fn a_timeout_marks_the_server_unknown_only_during_authentication() {
    for phase in PHASES {
        let expected = match phase {
            // "If there is an network error or timeout during the authentication step, the
            // client MUST replace the server's description with ... Unknown".
            ErrorPhase::Authentication => (ServerType::Unknown, true),
            // A timeout while connecting changes nothing; after the handshake it may be a slow
            // operation.
            ErrorPhase::ConnectionEstablishment | ErrorPhase::AfterHandshakeCompletes => {
                (ServerType::RSPrimary, false)
            }
        };
        assert_eq!(report(ApplicationErrorKind::Timeout, phase, &[]), expected, "{phase:?}");
    }
}

/// The backpressure label keeps the server as it is in every phase.
#[test]
fn overloaded_errors_change_nothing_in_any_phase() {
    for phase in PHASES {
        for kind in [ApplicationErrorKind::Network, ApplicationErrorKind::Timeout] {
            let outcome = report(kind.clone(), phase, &[SYSTEM_OVERLOADED_LABEL]);
            assert_eq!(outcome, (ServerType::RSPrimary, false), "{phase:?} {kind:?}");
        }
    }
}

/// "MongoDB Handshake errors": a command error (e.g. an authentication failure) before the
/// handshake completes marks the server Unknown and clears its pool; after it, an error that
/// is not a state change error changes nothing.
#[test]
fn other_command_errors_mark_the_server_unknown_before_the_handshake_completes() {
    let auth_failed = || ApplicationErrorKind::Command {
        code: Some(18),
        message: "Authentication failed".into(),
        topology_version: None,
    };
    for phase in PHASES {
        let expected = if phase.before_handshake_completes() {
            (ServerType::Unknown, true)
        } else {
            (ServerType::RSPrimary, false)
        };
        assert_eq!(report(auth_failed(), phase, &[]), expected, "{phase:?}");
    }
}

/// In load-balanced mode the server stays a LoadBalancer whatever the phase.
#[test]
fn a_load_balancer_stays_one_in_every_phase() {
    let now = crate::test_instant();
    let mut config = TopologyConfig::with_seeds([addr("lb")]);
    config.load_balanced = true;
    for phase in PHASES {
        for kind in [ApplicationErrorKind::Network, ApplicationErrorKind::Timeout] {
            let mut t = Topology::new(config.clone(), now).unwrap();
            while t.poll_output().is_some() {}
            let mut error = ApplicationError::new(addr("lb"), 0, kind.clone());
            error.phase = phase;
            error.service_id = Some(ObjectId::from_bytes([7; 12]));
            t.handle(Input::ApplicationError(error), now);
            while t.poll_output().is_some() {}
            let sd = t.description().server(&addr("lb")).cloned().unwrap();
            assert_eq!(sd.server_type, ServerType::LoadBalancer, "{phase:?} {kind:?}");
        }
    }
}
