//! Plans that once broke an invariant, kept as unit tests (the fix is tested next to its
//! code too).

use super::harness::Harness;
use super::plan::{ConfigKind, ConfigPlan, Plan, Reply, ReplyKind, Step};

fn config(seeds: u8, kind: ConfigKind, srv: bool) -> ConfigPlan {
    ConfigPlan {
        seeds,
        kind,
        set_name: 0,
        monitoring: 2,
        heartbeat_ms: 9500,
        local_threshold_ms: 15,
        srv,
        srv_max_hosts: 0,
        rng_seed: 1,
    }
}

fn reply(kind: ReplyKind, set_name: u8) -> Reply {
    Reply {
        kind,
        set_name,
        hosts: 0,
        passives: 0,
        arbiters: 0,
        primary: 0,
        me: 0,
        set_version: None,
        election_id: None,
        topology_version: None,
        wire: 5,
        last_write_s: None,
        tags: 0,
        session_timeout: None,
        hello_ok: false,
    }
}

fn run(plan: &Plan) {
    if let Err(violation) = Harness::run(plan, crate::test_instant()) {
        panic!("{violation}");
    }
}

/// One seed (`s1.example.com`), SRV polling adds `s3.example.com`, then the seed answers as a
/// standalone: the topology became Single with two servers.
#[test]
fn srv_added_host_then_standalone_seed() {
    let plan = Plan {
        config: config(0b0010_0000, ConfigKind::Discover, true),
        steps: vec![
            Step::Srv { hosts: 0b1010_0000, resolved: false },
            Step::MonitorReply {
                exchange: 0,
                reply: reply(ReplyKind::Standalone, 0),
                rtt_ms: 1,
                more_to_come: false,
            },
        ],
    };
    run(&plan);
}
