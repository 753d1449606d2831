//! `mongodb+srv` end to end: a real DNS server on loopback (sdam-testserver's hickory-server
//! zone) answers the SRV and TXT lookups of the client's resolver, pointed at it with
//! `ClientOptions::dns`; the scripted servers are discovered from its answers, and a later SRV
//! change is picked up by the core's polling.

use std::time::{Duration, Instant};

use sdam::{ServerAddress, TopologyType};
use sdam_std::{Client, ClientOptions, DnsOptions};
use sdam_testserver::dns::DnsServer;
use sdam_testserver::{MemberSpec, Mongos, ReplicaSet, Role};

fn client(uri: &str, dns: &DnsServer) -> Client {
    let (config, tls) = sdam_adapter::config_from_uri(uri).expect("connection string");
    assert!(tls.is_none(), "these tests run without TLS");
    let options =
        ClientOptions { dns: DnsOptions { name_servers: vec![dns.address()] }, ..ClientOptions::default() };
    Client::with_options(config, options).expect("client")
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ports(addresses: &[ServerAddress]) -> Vec<(&'static str, u16)> {
    addresses
        .iter()
        .map(|a| match a {
            ServerAddress::Tcp { port, .. } => ("127.0.0.1", *port),
            ServerAddress::Unix { .. } => unreachable!("scripted servers listen on TCP"),
        })
        .collect()
}

#[test]
fn a_replica_set_is_discovered_from_srv_and_txt_records_served_over_dns() {
    let rs = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .member(MemberSpec::new(Role::Secondary))
        .start()
        .unwrap();
    let dns = DnsServer::start("0.0.1").unwrap();
    // Two of the three members as seeds; the third is discovered from their hosts.
    dns.set_srv("_mongodb._tcp.rs.0.0.1", &ports(&rs.addresses())[..2], 1).unwrap();
    dns.set_txt("rs.0.0.1", &["replicaSet=rs0"], 1).unwrap();
    let client = client("mongodb+srv://rs.0.0.1/?tls=false&heartbeatFrequencyMS=500", &dns);
    wait_for("discovery through DNS", Duration::from_secs(10), || client.nodes().len() == 3);
    let td = client.description();
    assert_eq!(td.topology_type, TopologyType::ReplicaSetWithPrimary);
    assert_eq!(td.set_name.as_deref(), Some("rs0"), "the TXT record's replicaSet");
    assert_eq!(td.srv_error, None);
    client.close();
}

#[test]
fn a_missing_srv_record_keeps_the_topology_empty_and_says_why() {
    let dns = DnsServer::start("0.0.1").unwrap();
    let client = client("mongodb+srv://nothing.0.0.1/?tls=false&serverSelectionTimeoutMS=500", &dns);
    wait_for("the discovery error", Duration::from_secs(10), || client.description().srv_error.is_some());
    let error = client.description().srv_error.clone().unwrap();
    assert!(error.message().contains("nothing.0.0.1") && !error.is_permanent(), "{error:?}");
    assert!(client.nodes().is_empty());
    client.close();
}

/// polling-srv-records-for-mongos-discovery.md: mongoses added to and removed from the SRV
/// records are picked up by the next rescan. rescanSRVIntervalMS is not configurable and is at
/// least 60 s (the records' 1 s TTL is raised to it), so this test waits that long.
#[test]
fn srv_polling_picks_up_a_mongos_added_and_one_removed() {
    let mongoses = Mongos::builder()
        .member(MemberSpec::new(Role::Mongos))
        .member(MemberSpec::new(Role::Mongos))
        .member(MemberSpec::new(Role::Mongos))
        .start()
        .unwrap();
    let all = mongoses.addresses();
    let dns = DnsServer::start("0.0.1").unwrap();
    let name = "_mongodb._tcp.shards.0.0.1";
    dns.set_srv(name, &ports(&all)[..2], 1).unwrap();
    let client = client("mongodb+srv://shards.0.0.1/?tls=false&heartbeatFrequencyMS=500", &dns);
    wait_for("two mongoses", Duration::from_secs(10), || client.nodes().len() == 2);
    assert_eq!(client.description().topology_type, TopologyType::Sharded);
    let changed = Instant::now();
    dns.set_srv(name, &[ports(&all)[0], ports(&all)[2]], 1).unwrap();
    let mut expected = vec![all[0].clone(), all[2].clone()];
    expected.sort();
    wait_for("the rescan", Duration::from_secs(80), || {
        let mut nodes = client.nodes();
        nodes.sort();
        nodes == expected
    });
    assert!(changed.elapsed() < Duration::from_secs(75), "one rescan interval: {:?}", changed.elapsed());
    client.close();
}
