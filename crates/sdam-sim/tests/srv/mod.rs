//! `mongodb+srv` end to end: the core resolves its seed list and polls the SRV records
//! through `ResolveSrv` / `ResolveTxt`, answered by the simulated DNS zone in virtual time.
//! The record set-up follows the SRV polling prose tests
//! (polling-srv-records-for-mongos-discovery/tests/README.md).

use std::time::{Duration, Instant};

use sdam::connection_string::srv::SrvRecord;
use sdam::{ConnectionString, Event, ServerAddress, ServerType, TopologyConfig, TopologyType};
use sdam_sim::{Cluster, DnsHealth, DnsQuery, DnsZone, Member, Role, Sim};

mod prose;

const HOST: &str = "localhost.test.build.10gen.cc";
const TEST1: &str = "_mongodb._tcp.test1.test.build.10gen.cc";
/// The DNS lookup latency of every scenario.
const DNS_LATENCY: Duration = Duration::from_millis(20);
/// The latency of every mongos.
const MONGOS_LATENCY: Duration = Duration::from_millis(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `localhost.test.build.10gen.cc:{port}`.
fn host(port: u16) -> ServerAddress {
    ServerAddress::tcp(HOST, port).unwrap()
}

/// The one real instant of a test: virtual time zero.
#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

/// Mongoses on ports 27017 to 27020 (the prose tests' cluster).
fn mongoses() -> Cluster {
    (27017..=27020).fold(Cluster::sharded(), |c, port| {
        c.with(&host(port), Member::new(Role::Mongos).latency(MONGOS_LATENCY))
    })
}

/// The test1 records: 27017 and 27018, with this TTL.
fn test1_zone(ttl: Option<Duration>) -> DnsZone {
    DnsZone::new().with_latency(DNS_LATENCY).with_srv(TEST1, &format!("{HOST}."), 27017, ttl).with_srv(
        TEST1,
        &format!("{HOST}."),
        27018,
        ttl,
    )
}

fn config(uri: &str) -> TopologyConfig {
    let mut config = TopologyConfig::from_connection_string(&ConnectionString::parse(uri).unwrap());
    config.rng_seed = 5;
    config
}

fn sim(zone: DnsZone, uri: &str) -> Sim {
    Sim::with_dns(mongoses(), zone, config(uri), start())
}

fn hosts(sim: &Sim) -> Vec<ServerAddress> {
    sim.description().servers.addresses().cloned().collect()
}

fn all_known(sim: &Sim) -> bool {
    let td = sim.description();
    !td.servers.is_empty() && td.servers.iter().all(|sd| sd.server_type != ServerType::Unknown)
}

/// When `address` was opened / closed (every time, in order).
fn openings(sim: &Sim, address: &ServerAddress) -> Vec<Duration> {
    sim.events()
        .iter()
        .filter_map(|(t, e)| {
            matches!(e, Event::ServerOpening { address: a, .. } if a == address).then_some(*t)
        })
        .collect()
}

fn closings(sim: &Sim, address: &ServerAddress) -> Vec<Duration> {
    sim.events()
        .iter()
        .filter_map(|(t, e)| {
            matches!(e, Event::ServerClosed { address: a, .. } if a == address).then_some(*t)
        })
        .collect()
}

fn record(port: u16) -> SrvRecord {
    SrvRecord::new(format!("{HOST}."), port)
}

#[test]
fn initial_resolution_discovers_a_sharded_cluster() {
    let mut sim = sim(test1_zone(None), "mongodb+srv://test1.test.build.10gen.cc/");
    // Nothing but the two lookups at time zero: no server before the answers.
    let lookups = sim.dns().lookups();
    assert_eq!(lookups.len(), 2);
    assert_eq!((lookups[0].query, lookups[0].name.as_str()), (DnsQuery::Srv, TEST1));
    assert_eq!((lookups[1].query, lookups[1].name.as_str()), (DnsQuery::Txt, "test1.test.build.10gen.cc"));
    assert!(lookups.iter().all(|l| l.at == Duration::ZERO && l.timeout == secs(10)));
    assert!(sim.description().servers.is_empty());
    // The answers arrive at 20 ms and the seeds open; their handshakes take 5 ms.
    assert_eq!(sim.run_until(all_known, secs(1)), Some(DNS_LATENCY + MONGOS_LATENCY));
    assert_eq!(openings(&sim, &host(27017)), [DNS_LATENCY]);
    let td = sim.description();
    assert_eq!(td.topology_type, TopologyType::Sharded);
    assert_eq!(hosts(&sim), [host(27017), host(27018)]);
    assert!(td.servers.iter().all(|sd| sd.server_type == ServerType::Mongos));
    assert_eq!(sim.topology().srv_resolution().unwrap().hosts.len(), 2);
}

#[test]
fn rescans_follow_the_interval_exactly() {
    // No TTL: every 60 s from the end of the previous scan (each takes 20 ms).
    let mut s = sim(test1_zone(None), "mongodb+srv://test1.test.build.10gen.cc/");
    s.run_for(secs(200));
    assert_eq!(s.dns().srv_lookup_times(), [ms(0), ms(60_020), ms(120_040), ms(180_060)]);
    assert_eq!(s.dns().lookups().iter().filter(|l| l.query == DnsQuery::Txt).count(), 1, "TXT only once");
    // TTL 90 s: every 90 s.
    let mut s = sim(test1_zone(Some(secs(90))), "mongodb+srv://test1.test.build.10gen.cc/");
    s.run_for(secs(200));
    assert_eq!(s.dns().srv_lookup_times(), [ms(0), ms(90_020), ms(180_040)]);
    // TTL 5 s: never below 60 s.
    let mut s = sim(test1_zone(Some(secs(5))), "mongodb+srv://test1.test.build.10gen.cc/");
    s.run_for(secs(130));
    assert_eq!(s.dns().srv_lookup_times(), [ms(0), ms(60_020), ms(120_040)]);
}

#[test]
fn an_added_record_is_monitored_after_the_next_rescan() {
    // Prose test 1.
    let mut sim = sim(test1_zone(None), "mongodb+srv://test1.test.build.10gen.cc/");
    sim.run_for(secs(30));
    sim.dns_mut().add_srv(TEST1, HOST, 27019, None);
    let new = host(27019);
    let known =
        sim.run_until(|s| s.server(&new).is_some_and(|sd| sd.server_type == ServerType::Mongos), secs(60));
    // The rescan is sent at 60.020 s, answered at 60.040 s; the handshake takes 5 ms.
    assert_eq!(known, Some(ms(60_045)));
    assert_eq!(openings(&sim, &new), [ms(60_040)]);
    assert_eq!(hosts(&sim), [host(27017), host(27018), host(27019)]);
    assert!(sim.heartbeats_started(&new).contains(&ms(60_040)), "its monitor started");
}

#[test]
fn a_removed_record_is_closed_after_the_next_rescan() {
    // Prose test 2.
    let mut sim = sim(test1_zone(None), "mongodb+srv://test1.test.build.10gen.cc/");
    sim.run_for(secs(30));
    sim.dns_mut().remove_srv(TEST1, HOST, 27018);
    sim.run_for(secs(31));
    let gone = host(27018);
    assert_eq!(closings(&sim, &gone), [ms(60_040)]);
    assert_eq!(hosts(&sim), [host(27017)]);
    assert!(
        sim.closed_connections().iter().any(|(t, _, a)| *a == gone && *t == ms(60_040)),
        "its monitoring connection is closed"
    );
    // Nothing is checked on it any more.
    sim.run_for(secs(60));
    assert!(sim.heartbeats_started(&gone).iter().all(|t| *t < ms(60_040)));
}

#[test]
fn replaced_records_swap_the_hosts() {
    // Prose tests 3 to 5 and 13 (a custom service name).
    let cases: [(&str, &str, &[u16], &[u16]); 4] = [
        ("mongodb+srv://test1.test.build.10gen.cc/", TEST1, &[27017, 27019], &[27017, 27019]),
        ("mongodb+srv://test1.test.build.10gen.cc/", TEST1, &[27019], &[27019]),
        ("mongodb+srv://test1.test.build.10gen.cc/", TEST1, &[27019, 27020], &[27019, 27020]),
        (
            "mongodb+srv://test22.test.build.10gen.cc/?srvServiceName=customname",
            "_customname._tcp.test22.test.build.10gen.cc",
            &[27019, 27020],
            &[27019, 27020],
        ),
    ];
    for (uri, name, new_ports, expected) in cases {
        let zone = DnsZone::new()
            .with_latency(DNS_LATENCY)
            .with_srv(name, HOST, 27017, None)
            .with_srv(name, HOST, 27018, None);
        let mut sim = sim(zone, uri);
        sim.run_for(secs(1));
        sim.dns_mut().set_srv(name, new_ports.iter().map(|&p| record(p)).collect());
        // "Wait until 2*rescanSRVIntervalMS".
        sim.run_for(secs(120));
        let expected: Vec<ServerAddress> = expected.iter().map(|&p| host(p)).collect();
        assert_eq!(hosts(&sim), expected, "{uri} -> {new_ports:?}");
        assert!(all_known(&sim), "the new hosts are monitored");
    }
}

#[test]
fn failing_lookups_keep_the_hosts_and_retry_every_heartbeat() {
    // Prose tests 6 to 8: a failure, a timeout, no records at all.
    let outages = [
        DnsHealth::Failing("SERVFAIL".into()),
        DnsHealth::Unresponsive,
        DnsHealth::Answering, // with the records removed below
    ];
    for outage in outages {
        let mut sim = sim(test1_zone(None), "mongodb+srv://test1.test.build.10gen.cc/?connectTimeoutMS=3000");
        sim.run_for(secs(30));
        let empty = outage == DnsHealth::Answering;
        if empty {
            sim.dns_mut().set_srv(TEST1, Vec::new());
        }
        sim.dns_mut().set_health(outage.clone());
        // Sent at 60.020 s; the outcome comes 20 ms later (3 s for the timeout); then a
        // heartbeat (10 s) until the next lookup.
        let answer = if outage == DnsHealth::Unresponsive { ms(3_000) } else { DNS_LATENCY };
        let t1 = ms(60_020);
        let t2 = t1 + answer + secs(10);
        let t3 = t2 + answer + secs(10);
        sim.run_for(t3 + ms(1) - sim.elapsed());
        assert_eq!(sim.dns().srv_lookup_times(), [ms(0), t1, t2, t3], "{outage:?}");
        let before = hosts(&sim);
        assert_eq!(before, [host(27017), host(27018)], "{outage:?}: the hosts are kept");
        let error = sim.topology().srv_last_error().unwrap_or_default().to_owned();
        let reason = match &outage {
            DnsHealth::Failing(_) => "SERVFAIL",
            DnsHealth::Unresponsive => "no answer within 3000 ms",
            DnsHealth::Answering => "returned no records",
        };
        assert!(error.contains(reason), "{outage:?}: {error:?} should say {reason:?}");
        assert_eq!(sim.description().srv_error, None, "{outage:?}: but not an error of the topology");
        // The zone recovers: the next rescan succeeds and the interval is 60 s again.
        sim.dns_mut().set_health(DnsHealth::Answering);
        if empty {
            sim.dns_mut().set_srv(TEST1, vec![record(27017), record(27018)]);
        }
        let t4 = t3 + answer + secs(10);
        sim.run_for(t4 + secs(61) - sim.elapsed());
        assert_eq!(sim.dns().srv_lookup_times(), [ms(0), t1, t2, t3, t4, t4 + DNS_LATENCY + secs(60)]);
        assert_eq!(sim.topology().srv_last_error(), None);
        assert!(sim.events().iter().all(|(_, e)| !matches!(e, Event::ServerClosed { .. })), "{outage:?}");
        assert_eq!(hosts(&sim), before);
    }
}

#[test]
fn a_failing_initial_resolution_is_retried_until_it_succeeds() {
    let mut zone = test1_zone(None);
    zone.set_health(DnsHealth::Failing("SERVFAIL".into()));
    let mut sim = sim(zone, "mongodb+srv://test1.test.build.10gen.cc/");
    sim.run_for(secs(2));
    let error = sim.description().srv_error.clone().expect("the failure is in the description");
    assert!(!error.is_permanent(), "a failing lookup is retried: {error:?}");
    let error = error.message();
    assert!(
        error.contains("SRV lookup of \"_mongodb._tcp.test1.test.build.10gen.cc\" failed: SERVFAIL"),
        "{error}"
    );
    assert!(sim.description().servers.is_empty());
    sim.dns_mut().set_health(DnsHealth::Answering);
    let known = sim.run_until(all_known, secs(10)).expect("resolved once DNS answers");
    // Attempts at 0, 0.52 s, 1.54 s (backoff 0.5 s, 1 s), then 3.56 s (2 s): answered 20 ms later.
    assert_eq!(sim.dns().srv_lookup_times(), [ms(0), ms(520), ms(1_540), ms(3_560)]);
    assert_eq!(known, ms(3_580) + MONGOS_LATENCY);
    assert_eq!(sim.description().srv_error, None);
    assert_eq!(sim.description().topology_type, TopologyType::Sharded);
}

#[test]
fn srv_max_hosts_takes_a_subset_and_refills_it() {
    // Prose tests 10 to 12, and a removal under the cap.
    let mut zone = DnsZone::new().with_latency(DNS_LATENCY);
    for port in 27017..=27020 {
        zone.add_srv(TEST1, HOST, port, None);
    }
    let mut sim = sim(zone, "mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=2");
    sim.run_until(all_known, secs(1)).expect("discovered");
    let first = hosts(&sim);
    assert_eq!(first.len(), 2);
    // Unchanged records: the same two hosts after a rescan.
    sim.run_for(secs(61));
    assert_eq!(hosts(&sim), first);
    // One of the two disappears: one of the two others replaces it, the other stays.
    let gone = first[0].clone();
    sim.dns_mut().remove_srv(TEST1, HOST, gone.port().unwrap());
    sim.run_for(secs(61));
    let now = hosts(&sim);
    assert_eq!(now.len(), 2);
    assert!(now.contains(&first[1]) && !now.contains(&gone), "{first:?} -> {now:?}");
    assert!(all_known(&sim));
    // srvMaxHosts=0: every record.
    let mut zone = DnsZone::new().with_latency(DNS_LATENCY);
    for port in 27017..=27020 {
        zone.add_srv(TEST1, HOST, port, None);
    }
    let mut sim = self::sim(zone, "mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=0");
    sim.run_for(secs(1));
    assert_eq!(hosts(&sim).len(), 4);
}

#[test]
fn a_txt_replica_set_makes_a_replica_set_that_is_not_polled() {
    let name = "_mongodb._tcp.test5.test.build.10gen.cc";
    let zone = DnsZone::new()
        .with_latency(DNS_LATENCY)
        .with_srv(name, HOST, 27017, None)
        .with_txt("test5.test.build.10gen.cc", &["replicaSet=repl0&authSource=thisDB"]);
    let cluster = Cluster::replica_set("repl0")
        .with(&host(27017), Member::new(Role::Primary).latency(ms(5)))
        .with(&host(27018), Member::new(Role::Secondary).latency(ms(7)));
    let mut sim = Sim::with_dns(cluster, zone, config("mongodb+srv://test5.test.build.10gen.cc/"), start());
    sim.run_for(DNS_LATENCY);
    let td = sim.description();
    assert_eq!(td.topology_type, TopologyType::ReplicaSetNoPrimary, "replicaSet from the TXT record");
    assert_eq!(td.set_name.as_deref(), Some("repl0"));
    let resolution = sim.topology().srv_resolution().unwrap();
    assert_eq!(resolution.options.auth_source.as_deref(), Some("thisDB"));
    // The primary names the secondary: discovered like any replica set.
    assert_eq!(sim.run_until(all_known, secs(1)), Some(DNS_LATENCY + ms(5 + 7)));
    assert_eq!(sim.description().topology_type, TopologyType::ReplicaSetWithPrimary);
    // "Drivers MUST NOT rescan SRV DNS records when the Topology is not Sharded."
    sim.run_for(secs(300));
    assert_eq!(sim.dns().lookups().len(), 2, "only the initial SRV and TXT lookups");
}

#[test]
fn load_balanced_clusters_are_not_polled() {
    // Prose test 9.
    let name = "_mongodb._tcp.test3.test.build.10gen.cc";
    let zone = DnsZone::new().with_latency(DNS_LATENCY).with_srv(name, HOST, 27017, None);
    let mut sim = sim(zone, "mongodb+srv://test3.test.build.10gen.cc/?loadBalanced=true");
    sim.run_for(secs(1));
    sim.dns_mut().add_srv(name, HOST, 27018, None);
    sim.run_for(secs(120));
    let td = sim.description();
    assert_eq!(td.topology_type, TopologyType::LoadBalanced);
    assert_eq!(hosts(&sim), [host(27017)]);
    assert_eq!(td.servers.iter().next().unwrap().server_type, ServerType::LoadBalancer);
    assert_eq!(sim.dns().srv_lookup_times(), [ms(0)]);
}

/// initial-dns-seedlist-discovery.md: a record outside the parent domain "MUST raise an
/// error" and no host may be contacted. The error is permanent: a waiting selection fails
/// as soon as the answers arrive (not at serverSelectionTimeoutMS), and DNS is never asked
/// again (it used to be retried forever).
#[test]
fn a_permanent_discovery_error_fails_selection_at_once_and_is_never_retried() {
    let zone = DnsZone::new().with_latency(DNS_LATENCY).with_srv(TEST1, "evil.example.com.", 27017, None);
    let mut sim = sim(zone, "mongodb+srv://test1.test.build.10gen.cc/?serverSelectionTimeoutMS=30000");
    let options = sim.selection_options("find");
    let id = sim.start_selection(sdam::selection::SelectionCriteria::write(), options);
    let error = sim.run_selection_to_end(id).expect_err("no server can ever be selected");
    let at = sim.selection(id).poll_times().last().copied().unwrap();
    assert_eq!(at, DNS_LATENCY, "failed when the answers arrived");
    let sdam::selection::SelectionErrorKind::SeedListDiscoveryFailed(message) = &error.kind else {
        panic!("{:?}", error.kind)
    };
    assert!(message.contains("evil.example.com"), "{message}");
    assert!(sim.description().srv_error.as_ref().is_some_and(sdam::SrvError::is_permanent));
    sim.run_for(secs(3600));
    assert_eq!(sim.dns().lookups().len(), 2, "the SRV and TXT lookups, once");
    assert!(sim.description().servers.is_empty(), "no host contacted");
}
