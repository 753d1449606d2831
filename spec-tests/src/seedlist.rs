//! Runner for the initial DNS seedlist discovery spec tests
//! (`initial-dns-seedlist-discovery/tests/{replica-set,sharded,load-balanced}/*.json`),
//! against an in-memory resolver holding the DNS records that the tests README publishes.
//!
//! Each file is one case: a `mongodb+srv` `uri`, and the expected `seeds` / `numSeeds`,
//! `hosts` / `numHosts`, `options`, `parsed_options`, `error` and `ping`. The runner parses the
//! URI and creates a [`Topology`] from it, which asks for the SRV and TXT lookups with
//! `Command::ResolveSrv` / `Command::ResolveTxt`; the runner answers them from the in-memory
//! zone (`Input::SrvResolved` / `Input::TxtResolved`), exactly as an adapter answers them from
//! DNS, and checks:
//!
//! - `error`: parsing or creating the topology fails, or the topology reports the discovery
//!   failure in `TopologyDescription::srv_error` (with no servers), exactly when it is true;
//! - `seeds` (as a set) and `numSeeds`: the servers the topology opened;
//! - `options`: the merged options the topology resolved (`ssl`/`tls` is whether TLS is on);
//! - `parsed_options`: `user`, `password`, and `db` / `auth_database` / `defaultDatabase`
//!   (all three name the auth database of the URI path);
//! - `hosts` and `numHosts` only in load-balanced mode, where the topology holds exactly the
//!   seed list as one LoadBalancer server (load-balancers.md).
//!
//! Not checkable without a live deployment: `hosts` and `numHosts` otherwise (they are the
//! members SDAM discovers after connecting, e.g. `localhost:27017..27019` of the replica set,
//! which no DNS record names), and `ping` (it runs a command against the servers).

use serde_json::{Map, Value};

use std::time::Instant;

use sdam::connection_string::srv::{SrvRecord, TxtRecord};
use sdam::connection_string::ConnectionString;
use sdam::{Command, Input, Output, ServerAddress, ServerType, Topology, TopologyConfig, TopologyType};

/// The TTL of every published record (86400 s).
const TTL_SECS: u64 = 86_400;

/// The seed of the random generator that picks hosts when `srvMaxHosts` limits them. Any
/// seed works: the tests only check how many hosts are picked.
const RNG_SEED: u64 = 0x5eed_115e;

/// SRV records from the seedlist tests README ("Test Setup"): (name, port, target).
const SRV_RECORDS: &[(&str, u16, &str)] = &[
    ("_mongodb._tcp.test1.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test1.test.build.10gen.cc.", 27018, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test2.test.build.10gen.cc.", 27018, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test2.test.build.10gen.cc.", 27019, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test3.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test5.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test6.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test7.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test8.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test10.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test11.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test12.test.build.10gen.cc.", 27017, "localhost.build.10gen.cc."),
    ("_mongodb._tcp.test13.test.build.10gen.cc.", 27017, "test.build.10gen.cc."),
    ("_mongodb._tcp.test14.test.build.10gen.cc.", 27017, "localhost.not-test.build.10gen.cc."),
    ("_mongodb._tcp.test15.test.build.10gen.cc.", 27017, "localhost.test.not-build.10gen.cc."),
    ("_mongodb._tcp.test16.test.build.10gen.cc.", 27017, "localhost.test.build.not-10gen.cc."),
    ("_mongodb._tcp.test17.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.not-cc."),
    ("_mongodb._tcp.test18.test.build.10gen.cc.", 27017, "localhost.sub.test.build.10gen.cc."),
    ("_mongodb._tcp.test19.test.build.10gen.cc.", 27017, "localhost.evil.build.10gen.cc."),
    ("_mongodb._tcp.test19.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test20.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test21.test.build.10gen.cc.", 27017, "localhost.test.build.10gen.cc."),
    ("_customname._tcp.test22.test.build.10gen.cc", 27017, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test23.test.build.10gen.cc.", 8000, "localhost.test.build.10gen.cc."),
    ("_mongodb._tcp.test24.test.build.10gen.cc.", 8000, "localhost.test.build.10gen.cc."),
    // Erratum: the README's table lists one `_customname._tcp.test22` record, but the zone the
    // tests run against serves a second one on port 27018: `replica-set/srv-service-name.json`
    // expects the seeds `...:27017` and `...:27018`, as do drivers' tests that query the live
    // zone. Without this record that file fails on `seeds`.
    ("_customname._tcp.test22.test.build.10gen.cc", 27018, "localhost.test.build.10gen.cc."),
];

/// TXT records from the seedlist tests README: (name, character strings of one record).
const TXT_RECORDS: &[(&str, &[&str])] = &[
    ("test5.test.build.10gen.cc.", &["replicaSet=repl0&authSource=thisDB"]),
    ("test6.test.build.10gen.cc.", &["replicaSet=repl0"]),
    ("test6.test.build.10gen.cc.", &["authSource=otherDB"]),
    ("test7.test.build.10gen.cc.", &["ssl=false"]),
    ("test8.test.build.10gen.cc.", &["authSource"]),
    ("test10.test.build.10gen.cc.", &["socketTimeoutMS=500"]),
    ("test11.test.build.10gen.cc.", &["replicaS", "et=rep", "l0"]),
    ("test20.test.build.10gen.cc.", &["loadBalanced=true"]),
    ("test21.test.build.10gen.cc.", &["loadBalanced=false"]),
    ("test24.test.build.10gen.cc.", &["loadBalanced=true"]),
];

/// DNS names match without case and without the root's trailing dot.
fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// The in-memory SRV lookup: every record for `name` (none for an unknown name, like NXDOMAIN).
fn lookup_srv(name: &str) -> Vec<SrvRecord> {
    SRV_RECORDS
        .iter()
        .filter(|(n, _, _)| same_name(n, name))
        .map(|&(_, port, target)| {
            SrvRecord::new(target, port).with_ttl(std::time::Duration::from_secs(TTL_SECS))
        })
        .collect()
}

/// The in-memory TXT lookup.
fn lookup_txt(name: &str) -> Vec<TxtRecord> {
    TXT_RECORDS
        .iter()
        .filter(|(n, _)| same_name(n, name))
        .map(|(_, strings)| TxtRecord::new(strings.iter().copied()))
        .collect()
}

/// The most lookups one case may ask for: the initial SRV and TXT lookups. A failed attempt
/// is retried only after `handle_timeout`, which the runner never calls.
const MAX_LOOKUPS: usize = 2;

/// What the topology resolved: the connection string as resolved and the topology's servers
/// (sorted) with their types.
struct Discovered {
    cs: ConnectionString,
    servers: Vec<(ServerAddress, ServerType)>,
    topology_type: TopologyType,
}

/// Parses the URI, creates a topology from it and answers its DNS lookups from the
/// in-memory zone.
fn discover(uri: &str) -> Result<Discovered, String> {
    let cs = ConnectionString::parse(uri).map_err(|e| format!("parse error: {e}"))?;
    if !cs.is_srv() {
        return Err("not a mongodb+srv URI".into());
    }
    let mut config = TopologyConfig::from_connection_string(&cs);
    config.rng_seed = RNG_SEED;
    let now = Instant::now();
    let mut topology = Topology::new(config, now).map_err(|e| format!("configuration error: {e}"))?;
    let mut lookups = 0;
    loop {
        let mut answered = false;
        while let Some(output) = topology.poll_output() {
            let Output::Command(command) = output else { continue };
            if matches!(command, Command::ResolveSrv { .. } | Command::ResolveTxt { .. }) {
                lookups += 1;
                if lookups > MAX_LOOKUPS {
                    return Err(format!("the topology asked for more than {MAX_LOOKUPS} lookups"));
                }
            }
            match command {
                Command::ResolveSrv { request, name, .. } => {
                    let records = lookup_srv(&name);
                    topology.handle(Input::SrvResolved { request, result: Ok(&records) }, now);
                    answered = true;
                }
                Command::ResolveTxt { request, name, .. } => {
                    let records = lookup_txt(&name);
                    topology.handle(Input::TxtResolved { request, result: Ok(&records) }, now);
                    answered = true;
                }
                _ => {}
            }
        }
        if !answered {
            break;
        }
    }
    let td = topology.description();
    if let Some(error) = &td.srv_error {
        if !td.servers.is_empty() {
            return Err(format!("the discovery failed ({error}) yet the topology has servers"));
        }
        return Err(error.to_string());
    }
    let resolution = topology.srv_resolution().ok_or("the topology resolved no seed list")?;
    Ok(Discovered {
        cs: cs.with_srv_resolution(resolution),
        servers: td.servers.iter().map(|sd| (sd.address.clone(), sd.server_type)).collect(),
        topology_type: td.topology_type,
    })
}

/// Runs one seedlist test file (one case).
///
/// Returns `Err` naming the case (its URI) and its first difference, expected vs actual.
pub fn run(test_file: &Value) -> Result<(), String> {
    let uri = test_file.get("uri").and_then(Value::as_str).ok_or("the test file has no \"uri\" string")?;
    check(test_file, uri).map_err(|e| format!("case {uri:?}: {e}"))
}

fn check(case: &Value, uri: &str) -> Result<(), String> {
    let expect_error = case.get("error").and_then(Value::as_bool).unwrap_or(false);
    let found = match (expect_error, discover(uri)) {
        (true, Err(_)) => return Ok(()),
        (true, Ok(found)) => {
            return Err(format!("error: expected an error, actual seed list {:?}", found.cs.hosts()));
        }
        (false, Err(e)) => return Err(format!("error: expected none, actual {e}")),
        (false, Ok(found)) => found,
    };
    let cs = &found.cs;
    let seeds: Vec<ServerAddress> = found.servers.iter().map(|(a, _)| a.clone()).collect();
    if seeds != sorted(cs.hosts()) {
        return Err(format!("the topology opened {seeds:?}, its resolution lists {:?}", cs.hosts()));
    }

    if let Some(expected) = case.get("seeds").and_then(Value::as_array) {
        let expected = addresses(expected, "seeds")?;
        if expected != seeds {
            return Err(format!("seeds: expected {expected:?}, actual {seeds:?}"));
        }
    }
    if let Some(n) = case.get("numSeeds").and_then(Value::as_u64) {
        if n != seeds.len() as u64 {
            return Err(format!("numSeeds: expected {n}, actual {} ({seeds:?})", seeds.len()));
        }
    }
    if found.topology_type == TopologyType::LoadBalanced {
        // Load-balanced mode: the topology is the seed list (one load balancer).
        if found.servers.iter().any(|(_, t)| *t != ServerType::LoadBalancer) {
            return Err(format!("load-balanced topology with other servers: {:?}", found.servers));
        }
        if let Some(expected) = case.get("hosts").and_then(Value::as_array) {
            let expected = addresses(expected, "hosts")?;
            if expected != seeds {
                return Err(format!("hosts: expected {expected:?}, actual {seeds:?}"));
            }
        }
        if let Some(n) = case.get("numHosts").and_then(Value::as_u64) {
            if n != seeds.len() as u64 {
                return Err(format!("numHosts: expected {n}, actual {}", seeds.len()));
            }
        }
    } else if cs.options().load_balanced == Some(true) {
        return Err(format!("loadBalanced=true but the topology is {}", found.topology_type));
    } else if cs.options().replica_set.is_some() && found.topology_type != TopologyType::ReplicaSetNoPrimary {
        return Err(format!("replicaSet is set but the topology is {}", found.topology_type));
    }
    if let Some(options) = case.get("options").and_then(Value::as_object) {
        crate::connection_string::check_options(options, cs)?;
    }
    if let Some(parsed) = case.get("parsed_options").and_then(Value::as_object) {
        check_parsed_options(parsed, cs)?;
    }
    Ok(())
}

fn sorted(hosts: &[ServerAddress]) -> Vec<ServerAddress> {
    let mut v = hosts.to_vec();
    v.sort();
    v
}

fn addresses(list: &[Value], field: &str) -> Result<Vec<ServerAddress>, String> {
    let mut out = list
        .iter()
        .map(|v| {
            let s = v.as_str().ok_or_else(|| format!("{field}: {v} is not a string"))?;
            ServerAddress::parse(s).map_err(|e| format!("{field}: {s:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort();
    Ok(out)
}

fn check_parsed_options(expected: &Map<String, Value>, cs: &ConnectionString) -> Result<(), String> {
    for (name, want) in expected {
        let got = match name.as_str() {
            "user" => cs.username(),
            "password" => cs.password(),
            "db" | "auth_database" | "defaultDatabase" => cs.database(),
            _ => return Err(format!("parsed_options.{name}: not a field this runner knows")),
        };
        if want.as_str() != got {
            return Err(format!("parsed_options.{name}: expected {want}, actual {got:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{discover, run};

    /// The error cases fail for their own reason, through the topology (not by accident).
    #[test]
    fn errors_come_from_the_rule_each_case_tests() {
        let cases = [
            ("test4", "", "returned no records"),
            ("test12", "", "not in the connection string host's domain"),
            ("test19", "", "not in the connection string host's domain"),
            ("test6", "", "2 TXT records"),
            ("test7", "", "TXT record"),
            ("test10", "?replicaSet=repl0", "TXT record"),
            ("test5", "?srvMaxHosts=1", "srvMaxHosts=1"),
            ("test24", "?replicaSet=replset", "loadBalanced=true"),
            ("test1", "?loadBalanced=true", "requires exactly one host, found 2"),
        ];
        for (host, options, reason) in cases {
            let uri = format!("mongodb+srv://{host}.test.build.10gen.cc/{options}");
            let Err(error) = discover(&uri) else { panic!("{uri}: no error") };
            assert!(error.starts_with("mongodb+srv seed list discovery for"), "{uri}: {error}");
            assert!(error.contains(reason), "{uri}: {error:?} should say {reason:?}");
        }
        let Err(error) = discover("mongodb+srv://test5.test.build.10gen.cc:8123/") else { panic!() };
        assert!(error.starts_with("parse error"), "{error}");
    }

    #[test]
    fn checks_seeds_options_and_errors() {
        let ok = json!({
            "uri": "mongodb+srv://test2.test.build.10gen.cc/?replicaSet=repl0",
            "seeds": ["localhost.test.build.10gen.cc:27019", "localhost.test.build.10gen.cc:27018"],
            "hosts": ["localhost:27017"],
            "options": {"replicaSet": "repl0", "ssl": true}
        });
        assert_eq!(run(&ok), Ok(()));
        let wrong_seeds = json!({"uri": "mongodb+srv://test2.test.build.10gen.cc/", "seeds": ["a:1"]});
        assert!(run(&wrong_seeds).unwrap_err().contains("seeds: expected"));
        let wrong_option =
            json!({"uri": "mongodb+srv://test2.test.build.10gen.cc/", "options": {"ssl": false}});
        assert!(run(&wrong_option).unwrap_err().contains("options.ssl"));
        let unexpected_success = json!({"uri": "mongodb+srv://test2.test.build.10gen.cc/", "error": true});
        assert!(run(&unexpected_success).unwrap_err().contains("expected an error"));
        let unexpected_error = json!({"uri": "mongodb+srv://test4.test.build.10gen.cc/"});
        assert!(run(&unexpected_error).unwrap_err().contains("returned no records"));
        let count = json!({"uri": "mongodb+srv://test1.test.build.10gen.cc/?srvMaxHosts=1", "numSeeds": 2});
        assert!(run(&count).unwrap_err().contains("numSeeds"));
        // In load-balanced mode the topology's hosts are the seeds.
        let lb = json!({"uri": "mongodb+srv://test24.test.build.10gen.cc/", "hosts": ["localhost:27017"]});
        assert!(run(&lb).unwrap_err().contains("hosts: expected"));
        let user =
            json!({"uri": "mongodb+srv://a:b@test3.test.build.10gen.cc/x", "parsed_options": {"user": "z"}});
        assert!(run(&user).unwrap_err().contains("parsed_options.user"));
    }
}
