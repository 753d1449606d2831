//! Property tests over plans decoded from random bytes (the fuzz targets' generator): every
//! invariant after every step, determinism, bounded wakeups, and selection on snapshots.

use proptest::prelude::*;

use super::bytes::Codec;
use super::harness::Harness;
use super::plan::{ConfigKind, ConfigPlan, Plan, Reply, ReplyKind, SelectPlan, Step};
use super::selection_case::SelectionCase;

fn plan() -> impl Strategy<Value = Plan> {
    proptest::collection::vec(any::<u8>(), 16..1500).prop_map(|bytes| Plan::from_bytes(&bytes))
}

fn selection_case() -> impl Strategy<Value = SelectionCase> {
    proptest::collection::vec(any::<u8>(), 0..200).prop_map(|bytes| SelectionCase::from_bytes(&bytes))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Every invariant of `invariants` holds after every step of any plan.
    #[test]
    fn every_invariant_holds_after_every_step(plan in plan()) {
        if let Err(violation) = Harness::run(&plan, crate::test_instant()) {
            prop_assert!(false, "{}", violation);
        }
    }

    /// Same configuration, seed and inputs: byte-for-byte the same outputs, descriptions and
    /// deadlines.
    #[test]
    fn runs_are_deterministic(plan in plan()) {
        let t0 = crate::test_instant();
        let first = Harness::run_traced(&plan, t0, true).map_err(TestCaseError::fail)?;
        let second = Harness::run_traced(&plan, t0, true).map_err(TestCaseError::fail)?;
        let (Some(first), Some(second)) = (first, second) else { return Ok(()) };
        prop_assert!(!first.trace().is_empty());
        prop_assert_eq!(first.trace(), second.trace());
    }

    /// With no reply (or only failures) after any history, the topology asks to be woken no
    /// more often than its schedules require: per heartbeat interval at most one check and
    /// one RTT measurement per server, plus the first wakeups (and the SRV lookup schedule).
    #[test]
    fn quiet_topologies_wake_only_on_schedule(plan in plan(), failing in any::<bool>()) {
        let t0 = crate::test_instant();
        let Some(mut h) = Harness::run(&plan, t0).map_err(TestCaseError::fail)? else { return Ok(()) };
        h.cancel_selections();
        let heartbeat = h.topology().config().heartbeat_frequency;
        let servers = h.topology().description().servers.len();
        const INTERVALS: u32 = 4;
        let start = h.now();
        let horizon = start + heartbeat * INTERVALS;
        let before = h.wakeups();
        // SRV: each lookup attempt may cost two wakeups (its timeout, then the retry), retried
        // with a backoff doubling from 500 ms up to the heartbeat, then once per heartbeat.
        let srv = if h.topology().config().srv.is_some() {
            let doublings = (heartbeat.as_millis() / 500).max(1).ilog2() as usize + 1;
            2 * (doublings + INTERVALS as usize + 2)
        } else {
            0
        };
        let bound = (INTERVALS as usize + 2) * (2 * servers + 1) + srv;
        while h.topology().poll_timeout().is_some_and(|d| d <= horizon) {
            h.wake_at_deadline().map_err(TestCaseError::fail)?;
            if failing {
                h.fail_all().map_err(TestCaseError::fail)?;
            }
            let wakeups = h.wakeups() - before;
            prop_assert!(
                wakeups <= bound,
                "{} wakeups in {:?} for {} servers (bound {})", wakeups, h.now() - start, servers, bound
            );
        }
    }

    /// Plans survive their byte encoding (seed corpora depend on it).
    #[test]
    fn plans_round_trip_through_bytes(plan in plan()) {
        prop_assert_eq!(Plan::from_bytes(&plan.to_bytes()), plan);
    }

    /// Selection on arbitrary snapshots is sound and live (see `check_selection`).
    #[test]
    fn selection_cases_keep_the_invariants(case in selection_case()) {
        if let Err(violation) = case.check(crate::test_instant()) {
            prop_assert!(false, "{}", violation);
        }
        prop_assert_eq!(SelectionCase::from_bytes(&case.to_bytes()), case);
    }
}

fn reply(kind: ReplyKind, hosts: u8) -> Reply {
    Reply {
        kind,
        set_name: 1,
        hosts,
        passives: 0,
        arbiters: 0,
        primary: 0,
        me: 1,
        set_version: Some(1),
        election_id: Some(1),
        topology_version: None,
        wire: 5,
        last_write_s: Some(10),
        tags: 0b1,
        session_timeout: Some(30),
        hello_ok: true,
    }
}

/// A hand-written discovery: the harness answers the core's own exchanges, a primary and a
/// secondary are found, a selection picks one, and close ends it all.
#[test]
fn a_replica_set_is_discovered_through_the_harness() {
    let config = ConfigPlan {
        seeds: 0b11,
        kind: ConfigKind::ReplicaSet,
        set_name: 0,
        monitoring: 2,
        heartbeat_ms: 9500,
        local_threshold_ms: 15,
        srv: false,
        srv_max_hosts: 0,
        rng_seed: 7,
    };
    let answer =
        |kind| Step::MonitorReply { exchange: 0, reply: reply(kind, 0b11), rtt_ms: 3, more_to_come: false };
    let select = Step::Select(SelectPlan {
        write: false,
        mode: 4,
        tag_sets: vec![0b1],
        max_staleness: None,
        deprioritized: 0,
    });
    let plan = Plan {
        config,
        steps: vec![
            answer(ReplyKind::Primary),
            answer(ReplyKind::Secondary),
            select,
            Step::WakeAtDeadline,
            Step::Close,
        ],
    };
    let h = Harness::run(&plan, crate::test_instant()).unwrap().unwrap();
    assert!(h.topology().is_closed());
    let before_close = Plan { steps: plan.steps[..3].to_vec(), ..plan.clone() };
    let h = Harness::run(&before_close, crate::test_instant()).unwrap().unwrap();
    let td = h.topology().description();
    assert_eq!(td.topology_type, crate::TopologyType::ReplicaSetWithPrimary);
    assert_eq!(td.servers.iter().filter(|sd| sd.is_available()).count(), 2);
    assert_eq!(Plan::from_bytes(&plan.to_bytes()), plan);
}

proptest! {
    /// Replies parsed with the reply cache give exactly what each one parsed alone gives.
    #[test]
    fn the_reply_cache_changes_no_outcome(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let replies = super::reply_cache::replies(&mut super::bytes::Reader::new(&bytes));
        if let Err(e) = super::reply_cache::check_cached_parse(&replies, crate::test_instant()) {
            prop_assert!(false, "{}", e);
        }
    }

    /// Hello documents with fields of any type never make the parser panic, and a rejected
    /// one says why.
    #[test]
    fn hello_fields_of_any_type_parse_or_are_explained(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let doc = super::hello_fields::hello_fields(&mut super::bytes::Reader::new(&bytes));
        let address = crate::ServerAddress::parse("a:27017").unwrap();
        if let Err(e) = crate::ServerDescription::from_hello(address, &doc, crate::test_instant()) {
            prop_assert!(e.to_string().starts_with("malformed hello reply"), "{}", e);
        }
    }
}
