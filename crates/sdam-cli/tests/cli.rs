//! The `sdam` binary run as a user runs it: exit codes, output, and `replay` over every SDAM
//! spec-test file of the pinned corpus.

use std::process::{Command, Output};

use sdam_spec_tests::{corpus_root, json_files, suites, Format};

fn sdam(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sdam")).args(args).env("NO_COLOR", "1").output().expect("run sdam")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_subcommand_has_help() {
    let top = sdam(&["--help"]);
    assert!(top.status.success());
    for sub in ["watch", "select", "replay", "demo"] {
        assert!(stdout(&top).contains(sub), "{sub} missing from --help");
        let help = sdam(&[sub, "--help"]);
        assert!(help.status.success(), "{sub} --help failed");
        assert!(stdout(&help).contains("Usage: sdam"), "{}", stdout(&help));
    }
    let bad = sdam(&["frobnicate"]);
    assert_eq!(bad.status.code(), Some(2), "unknown subcommand is a usage error");
}

#[test]
fn replay_passes_every_sdam_spec_file() {
    let root = corpus_root().expect("the spec corpus (see README)");
    let mut replayed = 0;
    for suite in suites().iter().filter(|s| s.format == Format::Sdam && s.ignored.is_none()) {
        for file in json_files(&root.join(suite.dir)).expect("suite folder") {
            let out = sdam(&["replay", "--quiet", file.to_str().expect("utf-8 path")]);
            assert!(out.status.success(), "{}: {}{}", file.display(), stdout(&out), stderr(&out));
            assert!(stdout(&out).contains("all as expected"), "{}", stdout(&out));
            replayed += 1;
        }
    }
    assert!(replayed > 100, "only {replayed} SDAM files found");
}

fn write_temp(name: &str, contents: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sdam-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write temp file");
    path
}

#[test]
fn replay_prints_phases_and_reports_differences() {
    let root = corpus_root().expect("the spec corpus (see README)");
    let file = root.join("server-discovery-and-monitoring/tests/rs/primary_becomes_standalone.json");
    let out = sdam(&["replay", file.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("== phase 0"), "{text}");
    assert!(text.contains("server a:27017 changed: type Unknown -> RSPrimary, setName none -> rs"), "{text}");
    assert!(text.contains("topology: ReplicaSetWithPrimary"), "{text}");

    // The same scenario with a wrong expectation: reported, exit code 1.
    let mut test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    test["phases"][0]["outcome"]["topologyType"] = "Sharded".into();
    let path = write_temp("wrong.json", &test.to_string());
    let out = sdam(&["replay", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("outcome differs: topologyType"), "{}", stdout(&out));
    assert!(stdout(&out).contains("1 differ"), "{}", stdout(&out));
}

#[test]
fn replay_rejects_bad_input_with_a_clear_error() {
    let missing = sdam(&["replay", "/nonexistent/file.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read /nonexistent/file.json"), "{}", stderr(&missing));

    let not_json = write_temp("not.json", "{ nope");
    let out = sdam(&["replay", not_json.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not JSON"), "{}", stderr(&out));

    let bad_uri =
        write_temp("bad-uri.json", r#"{"uri": "mongodb://a,b/?directConnection=true", "phases": []}"#);
    let out = sdam(&["replay", bad_uri.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not an SDAM scenario"), "{}", stderr(&out));
}

fn replica_set() -> sdam_testserver::Cluster {
    use sdam_testserver::{MemberSpec, ReplicaSet, Role};
    ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary).tags([("dc", "ny")]))
        .member(MemberSpec::new(Role::Secondary).tags([("dc", "ny")]))
        .member(MemberSpec::new(Role::Secondary).tags([("dc", "sf")]))
        .start()
        .expect("scripted replica set")
}

#[test]
fn select_prints_the_chosen_server_and_why() {
    let rs = replica_set();
    let uri = format!("{}&heartbeatFrequencyMS=500", rs.uri());
    let sf = rs.address(2).expect("member").to_string();
    let out = sdam(&["select", &uri, "--read-preference", "secondary", "--tags", "dc:sf"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with(&format!("selected: {sf} (RSSecondary")), "{text}");
    // Every server appears in the explanation with its verdict.
    for i in 0..3 {
        assert!(text.contains(&rs.address(i).expect("member").to_string()), "{text}");
    }
    assert!(text.contains("selected"), "{text}");

    let out = sdam(&["select", &uri, "--write"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&format!("selected: {} (RSPrimary", rs.address(0).expect("member"))));

    // Nothing matches: the explained error after the timeout, exit code 1.
    let out = sdam(&["select", &uri, "-r", "secondary", "--tags", "dc:mars", "--timeout", "800"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("server selection timed out after 800 ms"), "{err}");
    assert!(err.contains("tag set"), "{err}");
}

#[test]
fn select_rejects_bad_arguments_with_exit_code_2() {
    let bad_uri = sdam(&["select", "mongodb://a,b/?directConnection=true"]);
    assert_eq!(bad_uri.status.code(), Some(2));
    assert!(stderr(&bad_uri).contains("invalid"), "{}", stderr(&bad_uri));
    let not_a_uri = sdam(&["select", "http://example.com"]);
    assert_eq!(not_a_uri.status.code(), Some(2));
    assert!(stderr(&not_a_uri).contains("invalid URI"), "{}", stderr(&not_a_uri));
    let bad_mode = sdam(&["select", "mongodb://a", "-r", "fastest"]);
    assert_eq!(bad_mode.status.code(), Some(2));
    assert!(stderr(&bad_mode).contains("unknown read preference mode"), "{}", stderr(&bad_mode));
    let conflict = sdam(&["select", "mongodb://a", "--write", "--tags", "dc:ny"]);
    assert_eq!(conflict.status.code(), Some(2));
    let primary_tags = sdam(&["select", "mongodb://a", "-r", "primary", "--tags", "dc:ny"]);
    assert_eq!(primary_tags.status.code(), Some(2));
    assert!(stderr(&primary_tags).contains("invalid read preference"), "{}", stderr(&primary_tags));
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect()
}

#[test]
fn watch_shows_the_deployment_as_json_lines_and_as_a_table() {
    let rs = replica_set();
    let uri = format!("{}&heartbeatFrequencyMS=500", rs.uri());
    let out = sdam(&["watch", &uri, "--json", "--duration", "1.5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let primary = rs.address(0).expect("member").to_string();
    assert!(
        events.iter().any(|e| e["event"] == "ServerDescriptionChangedEvent"
            && e["address"] == primary.as_str()
            && e["newDescription"]["type"] == "RSPrimary"),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e["event"] == "ServerHeartbeatSucceededEvent"), "heartbeats in JSON");
    assert!(events.iter().all(|e| e["time"].is_u64()), "every event has a time");

    let out = sdam(&["watch", &uri, "--duration", "1.5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("ADDRESS") && text.contains("RTT avg/min ms"), "{text}");
    assert!(text.contains(&format!("server {primary} changed: type Unknown -> RSPrimary")), "{text}");
    assert!(!text.contains('\x1b'), "no colour when not on a terminal");
}

#[test]
fn demo_runs_the_storyline_without_a_server() {
    let out = sdam(&["demo", "--json", "--duration", "4", "--step", "0.4"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = json_lines(&stdout(&out));
    let notes: Vec<&str> = events.iter().filter_map(|e| e["note"].as_str()).collect();
    assert!(notes.iter().any(|n| n.starts_with("killed the primary")), "{notes:?}");
    assert!(notes.iter().any(|n| n.contains("won the election")), "{notes:?}");
    // The client saw the primary go Unknown and a new one elected.
    let changes: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["event"] == "ServerDescriptionChangedEvent")
        .filter_map(|e| {
            Some((e["previousDescription"]["type"].as_str()?, e["newDescription"]["type"].as_str()?))
        })
        .collect();
    assert!(changes.contains(&("RSPrimary", "Unknown")), "{changes:?}");
    assert!(changes.contains(&("RSSecondary", "RSPrimary")), "{changes:?}");
}

fn tcp_port(address: &sdam::ServerAddress) -> u16 {
    match address {
        sdam::ServerAddress::Tcp { port, .. } => *port,
        sdam::ServerAddress::Unix { .. } => unreachable!("scripted servers listen on TCP"),
    }
}

/// issue #15: `sdam watch` could not reach a `mongodb+srv` (TLS) deployment, and a change
/// within one server type showed as `RSSecondary -> RSSecondary`. Here a scripted TLS replica
/// set is reached through `mongodb+srv` via a DNS server started in the test, and a tag change
/// is logged with the fields that changed.
#[test]
fn watch_reaches_a_tls_replica_set_through_mongodb_srv_and_names_what_changed() {
    use sdam_testserver::{MemberSpec, ReplicaSet, Role};
    let rs = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary).tags([("dc", "ny")]))
        .tls()
        .start()
        .expect("scripted TLS replica set");
    let ca = write_temp("srv-ca.pem", rs.ca_pem().expect("a TLS set has a CA"));
    let dns = sdam_testserver::dns::DnsServer::start("0.0.1").expect("DNS server");
    let seeds: Vec<(&str, u16)> = rs.addresses().iter().map(|a| ("127.0.0.1", tcp_port(a))).collect();
    dns.set_srv("_mongodb._tcp.rs.0.0.1", &seeds, 1).expect("SRV records");
    dns.set_txt("rs.0.0.1", &["replicaSet=rs0"], 1).expect("TXT record");
    let dns_server = dns.address().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_sdam"))
        .args(["watch", "mongodb+srv://rs.0.0.1/?heartbeatFrequencyMS=500", "--duration", "4"])
        .args(["--tls-ca-file", ca.to_str().expect("utf-8 path"), "--dns-server", &dns_server])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sdam");
    std::thread::sleep(std::time::Duration::from_millis(2000));
    rs.set_tags(1, [("dc", "sf")]).expect("retag");
    let out = child.wait_with_output().expect("sdam watch");
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let (primary, secondary) = (rs.address(0).expect("member"), rs.address(1).expect("member"));
    assert!(
        text.contains(&format!("server {primary} changed: type Unknown -> RSPrimary, setName none -> rs0")),
        "{text}"
    );
    assert!(text.contains("topology: ReplicaSetWithPrimary  set: rs0"), "{text}");
    let retag = text
        .lines()
        .find(|l| l.contains(&format!("server {secondary} changed: ")) && l.contains("{dc:sf}"))
        .unwrap_or_else(|| panic!("no retag line: {text}"));
    assert!(retag.ends_with("topologyVersion 0 -> 1, tags {dc:ny} -> {dc:sf}"), "{retag}");
}

/// The Docker / Kubernetes / tunnel case: the seed is reached as 127.0.0.1 but the replica set
/// knows its members by names the client cannot resolve; SDAM drops the seed. `watch` and a
/// failed `select` say why, with the hint.
#[test]
fn watch_and_select_say_why_a_seed_was_dropped() {
    use sdam_testserver::{MemberSpec, ReplicaSet, Role};
    let rs = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary).advertised_as("mongo-0"))
        .start()
        .expect("scripted replica set");
    let seed = rs.address(0).expect("member");
    let port = tcp_port(&seed);
    let uri = format!("mongodb://{seed}/?replicaSet=rs0&heartbeatFrequencyMS=500&connectTimeoutMS=500");
    let out = sdam(&["watch", &uri, "--duration", "1.5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = format!(
        "{seed} was dropped: reached as {seed} but the server calls itself mongo-0:{port}: \
         use directConnection=true or make the names resolvable"
    );
    assert!(stdout(&out).contains(&expected), "{}", stdout(&out));

    let out = sdam(&["select", &uri, "--timeout", "1000"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("hint: {expected}")), "{err}");
}
