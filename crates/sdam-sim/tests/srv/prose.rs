//! The prose tests of polling-srv-records-for-mongos-discovery/tests/README.md, one test each,
//! against the simulator's in-memory DNS and its mongoses on ports 27017 to 27020 (virtual
//! time: "wait until 2*rescanSRVIntervalMS" is 120 s of it).

use super::*;

/// The test1 records, as the README's set-up has them.
const TEST1_URI: &str = "mongodb+srv://test1.test.build.10gen.cc/";

/// Starts a client on `uri` with `name` holding records on `ports`, lets it discover them,
/// applies `change` to the zone, waits 2*rescanSRVIntervalMS and returns the hosts.
fn after_change(
    uri: &str,
    name: &str,
    ports: &[u16],
    change: impl FnOnce(&mut DnsZone),
) -> (Sim, Vec<ServerAddress>) {
    let mut zone = DnsZone::new().with_latency(DNS_LATENCY);
    for &port in ports {
        zone.add_srv(name, HOST, port, None);
    }
    let mut sim = sim(zone, uri);
    sim.run_until(all_known, secs(1)).expect("the initial hosts are discovered");
    change(sim.dns_mut());
    // "Wait until 2*rescanSRVIntervalMS" (60 s each, the minimum).
    sim.run_for(secs(120));
    let found = hosts(&sim);
    (sim, found)
}

fn ports(list: &[u16]) -> Vec<ServerAddress> {
    list.iter().map(|&p| host(p)).collect()
}

/// README "Changing DNS records with test1.test.build.10gen.cc", "1. Addition of a new DNS
/// record".
#[test]
fn prose_test_1_addition_of_a_new_dns_record() {
    let (sim, found) =
        after_change(TEST1_URI, TEST1, &[27017, 27018], |z| z.add_srv(TEST1, HOST, 27019, None));
    assert_eq!(found, ports(&[27017, 27018, 27019]));
    assert!(all_known(&sim), "the new mongos is monitored");
}

/// README "2. Removal of an existing DNS record".
#[test]
fn prose_test_2_removal_of_an_existing_dns_record() {
    let (_, found) = after_change(TEST1_URI, TEST1, &[27017, 27018], |z| z.remove_srv(TEST1, HOST, 27018));
    assert_eq!(found, ports(&[27017]));
}

/// README "3. Replacement of a DNS record".
#[test]
fn prose_test_3_replacement_of_a_dns_record() {
    let (_, found) = after_change(TEST1_URI, TEST1, &[27017, 27018], |z| {
        z.remove_srv(TEST1, HOST, 27018);
        z.add_srv(TEST1, HOST, 27019, None);
    });
    assert_eq!(found, ports(&[27017, 27019]));
}

/// README "4. Replacement of both existing DNS records with *one* new record".
#[test]
fn prose_test_4_replacement_of_both_records_with_one_new_record() {
    let (_, found) =
        after_change(TEST1_URI, TEST1, &[27017, 27018], |z| z.set_srv(TEST1, vec![record(27019)]));
    assert_eq!(found, ports(&[27019]));
}

/// README "5. Replacement of both existing DNS records with *two* new records".
#[test]
fn prose_test_5_replacement_of_both_records_with_two_new_records() {
    let (sim, found) = after_change(TEST1_URI, TEST1, &[27017, 27018], |z| {
        z.set_srv(TEST1, vec![record(27019), record(27020)]);
    });
    assert_eq!(found, ports(&[27019, 27020]));
    assert!(all_known(&sim));
}

/// README "Error scenarios with test1.test.build.10gen.cc": the hosts are unchanged.
fn unchanged_through(outage: impl FnOnce(&mut DnsZone)) {
    let (sim, found) =
        after_change(&format!("{TEST1_URI}?connectTimeoutMS=3000"), TEST1, &[27017, 27018], outage);
    assert_eq!(found, ports(&[27017, 27018]), "the discovered mongoses have not changed");
    assert!(sim.dns().srv_lookup_times().len() > 2, "rescans were attempted");
    assert!(sim.events().iter().all(|(_, e)| !matches!(e, Event::ServerClosed { .. })));
}

/// README "6. DNS record lookup timeout".
#[test]
fn prose_test_6_dns_record_lookup_timeout() {
    unchanged_through(|z| z.set_health(DnsHealth::Unresponsive));
}

/// README "7. DNS record lookup failure".
#[test]
fn prose_test_7_dns_record_lookup_failure() {
    unchanged_through(|z| z.set_health(DnsHealth::Failing("NXDOMAIN".into())));
}

/// README "8. Removal of all DNS SRV records".
#[test]
fn prose_test_8_removal_of_all_dns_srv_records() {
    unchanged_through(|z| z.set_srv(TEST1, Vec::new()));
}

/// README "Changing DNS records with test3.test.build.10gen.cc", "9. Test that SRV polling
/// is not done for load balalanced clusters".
#[test]
fn prose_test_9_srv_polling_is_not_done_for_load_balanced_clusters() {
    let name = "_mongodb._tcp.test3.test.build.10gen.cc";
    let uri = "mongodb+srv://test3.test.build.10gen.cc/?loadBalanced=true";
    let (sim, found) = after_change(uri, name, &[27017], |z| z.add_srv(name, HOST, 27018, None));
    assert_eq!(found, ports(&[27017]), "only localhost.test.build.10gen.cc:27017");
    assert_eq!(sim.description().topology_type, TopologyType::LoadBalanced);
}

/// README "SRV polling with srvMaxHosts MongoClient option", "10. All DNS records are
/// selected (srvMaxHosts = 0)".
#[test]
fn prose_test_10_all_dns_records_are_selected_with_srv_max_hosts_zero() {
    let uri = format!("{TEST1_URI}?srvMaxHosts=0");
    let (_, found) = after_change(&uri, TEST1, &[27017, 27018], |z| {
        z.remove_srv(TEST1, HOST, 27018);
        z.add_srv(TEST1, HOST, 27019, None);
        z.add_srv(TEST1, HOST, 27020, None);
    });
    assert_eq!(found, ports(&[27017, 27019, 27020]));
}

/// README "11. All DNS records are selected (srvMaxHosts >= records)".
#[test]
fn prose_test_11_all_dns_records_are_selected_with_srv_max_hosts_at_least_the_records() {
    let uri = format!("{TEST1_URI}?srvMaxHosts=2");
    let (_, found) =
        after_change(&uri, TEST1, &[27017, 27018], |z| z.set_srv(TEST1, vec![record(27019), record(27020)]));
    assert_eq!(found, ports(&[27019, 27020]));
}

/// README "12. New DNS records are randomly selected (srvMaxHosts > 0)".
#[test]
fn prose_test_12_new_dns_records_are_randomly_selected() {
    let uri = format!("{TEST1_URI}?srvMaxHosts=2");
    let (_, found) = after_change(&uri, TEST1, &[27017, 27018], |z| {
        z.remove_srv(TEST1, HOST, 27018);
        z.add_srv(TEST1, HOST, 27019, None);
        z.add_srv(TEST1, HOST, 27020, None);
    });
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.contains(&host(27017)), "{found:?}");
    assert!(found.contains(&host(27019)) || found.contains(&host(27020)), "{found:?}");
}

/// README "SRV polling with srvServiceName MongoClient option", "13. DNS record with custom
/// service name can be found".
#[test]
fn prose_test_13_dns_record_with_custom_service_name_can_be_found() {
    let name = "_customname._tcp.test22.test.build.10gen.cc";
    let uri = "mongodb+srv://test22.test.build.10gen.cc/?srvServiceName=customname";
    let (_, found) =
        after_change(uri, name, &[27017], |z| z.set_srv(name, vec![record(27019), record(27020)]));
    assert_eq!(found, ports(&[27019, 27020]));
}
