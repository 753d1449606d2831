//! The core's `examples/driver_loop.rs` (a driver loop over `std::net`, no adapter) against a
//! scripted replica set: it discovers the set from one seed, reads, writes, and when the
//! primary is killed and another elected, finds the new primary and closes.

use std::io::Write;
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

use sdam_testserver::{MemberSpec, ReplicaSet, Role};

#[allow(dead_code, unreachable_pub, clippy::print_stdout)]
#[path = "../../sdam/examples/driver_loop.rs"]
mod driver_loop;

/// Sends each line the example writes to the test.
struct Lines(Sender<String>, Vec<u8>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        while let Some(end) = self.1.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.1.drain(..=end).collect();
            let _ = self.0.send(String::from_utf8_lossy(&line).trim_end().to_owned());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_driver_loop_example_survives_a_primary_kill_and_finds_the_new_primary() {
    let set = ReplicaSet::builder("rs0")
        .member(MemberSpec::new(Role::Primary))
        .member(MemberSpec::new(Role::Secondary))
        .member(MemberSpec::new(Role::Secondary))
        .start()
        .expect("the replica set starts");
    let (old, new) = (set.address(0).expect("member 0"), set.address(1).expect("member 1"));
    // One seed: the example discovers the rest.
    let uri =
        format!("mongodb://{}/?replicaSet=rs0&heartbeatFrequencyMS=500", set.address(2).expect("member 2"));
    let (tx, lines) = channel();
    let example = std::thread::spawn(move || {
        driver_loop::run(&uri, Box::new(Lines(tx, Vec::new()))).map_err(|e| e.to_string())
    });
    let mut seen = Vec::new();
    let mut next = |what: &str| loop {
        let line = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no {what} line; saw {seen:#?}"));
        seen.push(line.clone());
        if line.starts_with(what) {
            return line;
        }
    };
    let read = next("read (secondaryPreferred) -> ");
    assert!(!read.ends_with(&old.to_string()), "secondaryPreferred read a secondary: {read}");
    assert_eq!(next("write -> "), format!("write -> {old}"));
    set.crash(0).expect("crash the primary");
    set.elect(1).expect("elect member 1");
    assert_eq!(next("new primary: "), format!("new primary: {new}"));
    next("closed");
    assert_eq!(example.join().expect("the example thread"), Ok(()));
}
