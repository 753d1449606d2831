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
    for sub in ["replay"] {
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
    assert!(text.contains("server a:27017 Unknown -> RSPrimary"), "{text}");
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
