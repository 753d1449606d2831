//! The handshake's `client.env` through an adapter: serverMonitoringMode=auto polls on a FaaS
//! (server-monitoring.md, "serverMonitoringMode"; handshake.md, "client.env").

use std::time::{Duration, Instant};

use sdam::{Event, ServerMonitoringMode, ServerType};

use super::{addr, config, start, types_are, wait_for, EventStream, Harness, HEARTBEAT};
use crate::{MemberSpec, ReplicaSet, Role};

/// The AWS Lambda variables of the handshake README's prose test 1, case 1 (a lookup: the
/// process environment is not touched).
fn aws_lambda(name: &str) -> Option<String> {
    match name {
        "AWS_EXECUTION_ENV" => Some("AWS_Lambda_java8".into()),
        "AWS_REGION" => Some("us-east-2".into()),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("1024".into()),
        _ => None,
    }
}

/// Counts the heartbeats started over `window`: (all, awaitable).
fn heartbeats<E: EventStream>(events: &mut E, window: Duration) -> (usize, usize) {
    let end = Instant::now() + window;
    let (mut all, mut awaited) = (0, 0);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match events.next_event(left) {
            Some(Event::ServerHeartbeatStarted { awaited: a, .. }) => {
                all += 1;
                awaited += usize::from(a);
            }
            Some(_) => {}
            None => break,
        }
    }
    (all, awaited)
}

/// Against a primary that streams: with `serverMonitoringMode=auto`, a client whose
/// `client.env` names a FaaS (AWS Lambda) polls (no awaitable hello), and one without
/// streams.
pub fn auto_monitoring_mode_polls_on_faas<H: Harness>() {
    let set = ReplicaSet::builder("rs0").member(MemberSpec::new(Role::Primary)).start().expect("starts");
    let p = addr(&set, 0);
    for faas in [true, false] {
        let mut config = config(&set, vec![p.clone()]);
        config.server_monitoring_mode = ServerMonitoringMode::Auto;
        if faas {
            config.metadata.detect_environment(aws_lambda, false);
            assert!(config.metadata.env.is_some());
        }
        let client: H = start(config, None);
        wait_for(&client, "the primary", Duration::from_secs(10), |d| {
            types_are(d, &[(&p, ServerType::RSPrimary)])
        });
        let mut events = client.subscribe();
        let (all, awaited) = heartbeats(&mut events, HEARTBEAT * 5);
        if faas {
            assert!(all >= 2, "polled: {all} heartbeats");
            assert_eq!(awaited, 0, "a FaaS never streams ({all} heartbeats)");
        } else {
            assert!(awaited >= 1, "streams elsewhere ({all} heartbeats, {awaited} awaitable)");
        }
        client.close();
    }
}
